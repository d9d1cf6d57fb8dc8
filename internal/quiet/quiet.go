// Package quiet lets background work wait for a pause in the calls ohfpd
// serves.
//
// HF's calls are short and come in bursts (a poll cycle every few
// seconds); the daemon's heaviest background work, the full reconcile
// listing (about a second of CPU at 10,000 instances), slowed the calls it
// ran beside by half on a two-core host. The rpc server marks each call on
// a Gate; the reconciler waits on it for a pause before the listing and
// between its pages, within a budget, so that under HF's cadence the two
// practically never meet, while under unbroken load the listing still runs
// once the budget is spent.
package quiet

import (
	"context"
	"sync/atomic"
	"time"
)

// Gap is the pause that counts as quiet: no call for this long.
const Gap = 50 * time.Millisecond

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

// idleFor is how long no call has been in flight (0 while one is).
func (g *Gate) idleFor(now time.Time) time.Duration {
	if g.inflight.Load() > 0 {
		return 0
	}
	last := g.lastEnd.Load()
	if last == 0 {
		return time.Duration(1<<63 - 1)
	}
	return now.Sub(time.Unix(0, last))
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
		t := time.NewTimer(min(gap-idle, left, gap/4+time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}
