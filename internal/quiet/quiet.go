// Package quiet lets background work wait for a pause in the calls ohfpd
// serves.
//
// HF's calls are short and come in bursts (a poll cycle every few
// seconds); the daemon's heaviest background work, the full reconcile
// listing (about a second of CPU at 10,000 instances), slowed the calls it
// ran beside by half on a two-core host. The rpc server marks each call on
// a Gate; the reconciler starts a listing at a pause in the calls (or once
// it has been put off long enough) and waits briefly for a pause before
// each page, so that under HF's cadence the two practically never meet,
// while under unbroken load the listing still runs.
package quiet

import (
	"context"
	"sync/atomic"
	"time"
)

// Gap is the pause that counts as quiet: no call for this long.
const Gap = 50 * time.Millisecond

// MaxWait bounds one wait of work already under way (a page of a listing):
// long enough for a burst of HF's calls to pass, short enough not to hold
// the work up under steady load.
const MaxWait = 250 * time.Millisecond

// MaxTotal bounds all the waits of one piece of work (a listing of ten
// pages), so that the pass it belongs to is held up by a second at most.
const MaxTotal = time.Second

// Gate counts the calls in flight and remembers when the last one ended.
// The zero value is ready; a nil *Gate is always quiet.
type Gate struct {
	inflight atomic.Int64
	lastEnd  atomic.Int64 // Unix nanoseconds
}

// Begin marks a call as started.
func (g *Gate) Begin() {
	if g != nil {
		g.inflight.Add(1)
	}
}

// End marks a call as finished.
func (g *Gate) End() {
	if g != nil {
		g.lastEnd.Store(time.Now().UnixNano())
		g.inflight.Add(-1)
	}
}

// idleFor is how long no call has been in flight (-1 while one is).
func (g *Gate) idleFor(now time.Time) time.Duration {
	if g.inflight.Load() > 0 {
		return -1
	}
	last := g.lastEnd.Load()
	if last == 0 {
		return time.Duration(1<<63 - 1)
	}
	return now.Sub(time.Unix(0, last))
}

// Quiet reports whether no call has been in flight for gap.
func (g *Gate) Quiet(gap time.Duration) bool {
	return g == nil || g.idleFor(time.Now()) >= gap
}

// Wait returns once no call has been in flight for gap, once until has
// passed, or when ctx ends. It reports whether it found the pause.
func (g *Gate) Wait(ctx context.Context, gap time.Duration, until time.Time) bool {
	if g == nil {
		return true
	}
	for {
		now := time.Now()
		idle := g.idleFor(now)
		if idle >= gap {
			return true
		}
		left := until.Sub(now)
		if left <= 0 || ctx.Err() != nil {
			return false
		}
		t := time.NewTimer(max(min(gap-max(idle, 0), left, gap/4+time.Millisecond), time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}
