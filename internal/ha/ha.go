// Package ha keeps at most one acting ohfpd per cluster when several
// Symphony master candidates run it on one shared store (the `ha:` section:
// DynamoDB, package store/dynamo).
//
// The lease is one item of the shared table: its holder, a fencing token
// raised at every acquisition and a record version number changed at every
// renewal. Only the holder runs the engine: it launches, terminates,
// modifies fleets and writes state, and every state write is conditional on
// its token (a newer holder's writes cannot be overwritten by an older
// one). A host that does not hold the lease runs no engine; when HF calls
// it (HF runs on one master at a time, so a call here means HF moved here)
// it asks for the lease, and takes it once it is released or has expired.
//
// Expiry is judged without trusting clocks across hosts, as the AWS
// DynamoDB Lock Client does: a waiting host takes the lease only after it
// has seen the same record version, unchanged, for a whole lease duration
// on its own monotonic clock. The holder stops acting before that can
// happen: its lease is valid until the time it sent its last successful
// renewal plus the lease duration less a fifth (for clock rate drift), and
// it checks that validity before each cloud action and each write. A
// holder that is paused (SIGSTOP, a VM freeze) and wakes after its lease
// expired therefore does nothing: its checks fail, and a write that raced
// the check is refused by the table when the new holder has written the
// same record.
//
// A holder that sees another host asking for the lease (Want) hands it
// over: it stops acting, waits for its cloud calls under way, and releases
// the lease, which the asking host then takes at once. Failback is the same
// move in the other direction; the taking host always loads the state from
// the table, so its old local view plays no part.
package ha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ohfp/ohfp/internal/state"
	"github.com/ohfp/ohfp/internal/store"
)

// Lease is the lease item (see store/dynamo.Lease, of the same layout).
type Lease struct {
	Holder   string
	Token    uint64
	Version  string
	Since    time.Time
	Renewed  time.Time
	Released bool
	Want     string
	WantAt   time.Time
}

// Errors of a Backend's lease calls.
var (
	// ErrLeaseTaken: the lease changed since it was read (someone else
	// acquired or renewed it).
	ErrLeaseTaken = errors.New("lease taken by another host")
	// ErrLeaseLost: this host no longer holds the lease.
	ErrLeaseLost = errors.New("lease lost")
	// ErrFenced: a state write was refused because a newer lease holder
	// wrote the same record.
	ErrFenced = errors.New("a newer lease holder wrote the same record")
)

// Backend is the shared store: state records and the lease.
type Backend interface {
	state.KV
	SetFence(token uint64)
	ReadLease(ctx context.Context) (Lease, bool, error)
	AcquireLease(ctx context.Context, host string, prev *Lease) (Lease, error)
	RenewLease(ctx context.Context, l Lease) (Lease, error)
	ReleaseLease(ctx context.Context, l Lease) error
	WantLease(ctx context.Context, host string) error
}

// Active is the engine a holder runs: built by Options.Start, stopped when
// the lease is handed over or lost.
type Active interface {
	// Stop stops acting and waits for the cloud calls under way.
	Stop()
}

// Options configure a Coordinator.
type Options struct {
	Host          string        // this host's name, as the lease shows it
	LeaseDuration time.Duration // default 10 s
	// TakeoverWait bounds how long an HF call waits for the lease (default
	// twice the lease duration plus 5 s).
	TakeoverWait time.Duration
	Backend      Backend
	// Start builds and starts the engine on the shared state (kv: writes
	// fenced and refused once the lease is not valid; mayAct: nil while
	// the lease is valid).
	Start  func(ctx context.Context, kv state.KV, mayAct func() error) (Active, error)
	Logger *slog.Logger
	// OnChange, when set, is called after the role or holder changed.
	OnChange func(Status)
}

// Role is what this host does.
type Role string

// Roles.
const (
	Standby  Role = "standby"  // another host holds the lease (or nobody yet)
	Starting Role = "starting" // lease taken, state loading
	Holder   Role = "holder"   // acting
	Stopping Role = "stopping" // handing over or lost: no longer acting
)

// Status is what `ohfp status` and systemd show.
type Status struct {
	Host    string
	Role    Role
	Holder  string    // who holds the lease ("" when nobody)
	Since   time.Time // when Holder took it (wall clock of the holder)
	Renewed time.Time
	Token   uint64
	// Released: the last holder gave it up; Expired: this host has seen
	// it unrenewed for a lease duration.
	Released, Expired bool
	Want              string // a host asking for it
	LastError         string
	LeaseDuration     time.Duration
}

// errStart: the lease was taken but the engine did not start.
var errStart = errors.New("state store unavailable: the lease was taken but the shared state could not be loaded")

// ErrNotHolder is returned by writes and cloud actions once the lease is
// not (or no longer) valid.
var ErrNotHolder = errors.New("this host does not hold the lease")

// Coordinator runs the lease for one daemon.
type Coordinator struct {
	o   Options
	log *slog.Logger

	mu         sync.Mutex
	role       Role
	lease      Lease // last seen
	have       bool  // a lease item exists
	seenAt     time.Time
	validUntil time.Time // monotonic: holder's validity
	active     Active
	lastErr    string
	takeover   chan struct{} // closed when the takeover under way ends
	takeErr    error
	wanted     time.Time // when this host last asked for the lease
	dupName    string    // another live process uses this host's name (why the lease cannot be had)
	lastCall   time.Time // when HF last called this host while it held the lease
	bothNoted  bool      // "HF calls both hosts" logged for the current Want
}

// New returns a Coordinator; Run drives it.
func New(o Options) *Coordinator {
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = 10 * time.Second
	}
	if o.TakeoverWait <= 0 {
		o.TakeoverWait = 2*o.LeaseDuration + 5*time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Coordinator{o: o, log: o.Logger, role: Standby}
}

func (c *Coordinator) renewEvery() time.Duration { return c.o.LeaseDuration / 4 }
func (c *Coordinator) callTimeout() time.Duration {
	t := c.o.LeaseDuration / 4
	if t < time.Second {
		t = time.Second
	}
	return t
}

// MayAct is nil while this host holds a valid lease.
func (c *Coordinator) MayAct() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mayActLocked()
}

func (c *Coordinator) mayActLocked() error {
	if c.role != Holder && c.role != Starting {
		return fmt.Errorf("%w (%s)", ErrNotHolder, c.role)
	}
	if !time.Now().Before(c.validUntil) {
		return fmt.Errorf("%w: its lease was not renewed in time", ErrNotHolder)
	}
	return nil
}

// Status reports the lease as last seen.
func (c *Coordinator) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.statusLocked()
}

func (c *Coordinator) statusLocked() Status {
	s := Status{Host: c.o.Host, Role: c.role, LastError: c.lastErr, LeaseDuration: c.o.LeaseDuration}
	if c.dupName != "" {
		s.LastError = c.dupName
	}
	if c.have {
		l := c.lease
		s.Token, s.Since, s.Renewed, s.Released, s.Want = l.Token, l.Since, l.Renewed, l.Released, l.Want
		if !l.Released {
			s.Holder = l.Holder
		}
		s.Expired = c.role == Standby && !l.Released && time.Since(c.seenAt) >= c.o.LeaseDuration
	}
	return s
}

func (c *Coordinator) changed() {
	if c.o.OnChange != nil {
		c.o.OnChange(c.Status())
	}
}

// Run renews the lease while this host holds it and watches it otherwise,
// until ctx ends; then it stops the engine and releases the lease.
func (c *Coordinator) Run(ctx context.Context) {
	c.observe(ctx)
	t := time.NewTicker(c.renewEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.shutdown()
			return
		case <-t.C:
		}
		c.mu.Lock()
		role := c.role
		c.mu.Unlock()
		if role == Holder {
			c.renew(ctx)
		} else if role == Standby {
			c.observe(ctx)
		}
	}
}

// observe reads the lease and notes when its version last changed.
func (c *Coordinator) observe(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, c.callTimeout())
	l, ok, err := c.o.Backend.ReadLease(rctx)
	cancel()
	c.mu.Lock()
	if err != nil {
		c.lastErr = err.Error()
		c.mu.Unlock()
		return
	}
	c.lastErr = ""
	c.noteLocked(l, ok)
	c.mu.Unlock()
}

func (c *Coordinator) noteLocked(l Lease, ok bool) {
	if !ok {
		c.have = false
		return
	}
	if !c.have || l.Version != c.lease.Version {
		c.seenAt = time.Now()
	}
	c.lease, c.have = l, true
}

// freeLocked: the lease may be taken now (none yet, released, or seen
// unchanged for a whole lease duration).
func (c *Coordinator) freeLocked() bool {
	return !c.have || c.lease.Released || time.Since(c.seenAt) >= c.o.LeaseDuration
}

// renew renews the holder's lease, hands it over when another host asks,
// and steps down when it is lost or cannot be renewed in time.
func (c *Coordinator) renew(ctx context.Context) {
	c.mu.Lock()
	cur := c.lease
	c.mu.Unlock()
	sent := time.Now()
	rctx, cancel := context.WithTimeout(ctx, c.callTimeout())
	l, err := c.o.Backend.RenewLease(rctx, cur)
	cancel()
	switch {
	case err == nil:
		c.mu.Lock()
		c.lease, c.have, c.seenAt = l, true, sent
		c.validUntil = sent.Add(c.o.LeaseDuration - c.o.LeaseDuration/5)
		c.lastErr = ""
		c.mu.Unlock()
		if l.Want != "" && l.Want != c.o.Host {
			c.mu.Lock()
			busy := time.Since(c.lastCall) < c.renewEvery()
			noted := c.bothNoted
			c.bothNoted = busy
			c.mu.Unlock()
			if busy {
				// HF runs on one master at a time: calls here and there
				// mean two HFs (or a script calling HF's operations on the
				// other host). Keep the lease rather than move it at every
				// call; the other host's calls fail saying who holds it.
				if !noted {
					c.log.Error("another host asks for the lease but HF still calls this one: keeping it; is HF running on both?", "other", l.Want)
				}
				return
			}
			c.log.Warn("handing the lease over: HF now calls ohfpd on another host", "to", l.Want, "asked_at", l.WantAt)
			c.stepDown(ctx, true)
		}
	case errors.Is(err, ErrLeaseLost):
		c.log.Error("lease lost to another host: this host stops acting", "err", err)
		c.stepDown(ctx, false)
	default:
		c.mu.Lock()
		c.lastErr = err.Error()
		expired := !time.Now().Before(c.validUntil)
		c.mu.Unlock()
		if expired {
			c.log.Error("lease could not be renewed before it ran out: this host stops acting", "err", err)
			c.stepDown(ctx, false)
		} else {
			c.log.Warn("lease renewal failed; retrying", "err", err)
		}
	}
}

// stepDown stops the engine and, when release, gives the lease up so the
// asking host takes it at once.
func (c *Coordinator) stepDown(ctx context.Context, release bool) {
	c.mu.Lock()
	if c.role != Holder && c.role != Starting {
		c.mu.Unlock()
		return // already stepping down
	}
	act := c.active
	c.active = nil
	c.role = Stopping
	c.mu.Unlock()
	c.changed()
	if act != nil {
		act.Stop()
	}
	c.mu.Lock()
	cur := c.lease
	c.mu.Unlock()
	if release {
		rctx, cancel := context.WithTimeout(ctx, c.callTimeout())
		err := c.o.Backend.ReleaseLease(rctx, cur)
		cancel()
		if err != nil {
			c.log.Warn("lease not released; the other host takes it when it expires", "err", err)
		} else {
			c.log.Info("lease released", "token", cur.Token)
		}
	}
	c.mu.Lock()
	c.role = Standby
	c.validUntil = time.Time{}
	c.mu.Unlock()
	c.observe(context.WithoutCancel(ctx))
	c.changed()
}

// shutdown stops the engine and releases the lease (the daemon stops).
func (c *Coordinator) shutdown() {
	c.mu.Lock()
	role := c.role
	c.mu.Unlock()
	if role == Holder || role == Starting {
		ctx, cancel := context.WithTimeout(context.Background(), 2*c.callTimeout())
		defer cancel()
		c.stepDown(ctx, true)
	}
}

// Acquire returns once this host holds the lease and its engine runs,
// taking the lease (asking the holder to hand it over) when needed. HF
// calls it: a call here means HF runs here.
func (c *Coordinator) Acquire(ctx context.Context) error {
	c.mu.Lock()
	if c.role == Holder && c.mayActLocked() == nil {
		c.lastCall = time.Now()
		c.mu.Unlock()
		return nil
	}
	ch := c.takeover
	if ch == nil {
		ch = make(chan struct{})
		c.takeover = ch
		go c.take(ch)
	}
	c.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return c.waitError(ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.role == Holder {
		c.lastCall = time.Now()
		return nil
	}
	return c.takeErr
}

func (c *Coordinator) waitError(err error) error {
	c.mu.Lock()
	dup := c.dupName
	c.mu.Unlock()
	if dup != "" {
		return fmt.Errorf("state store unavailable: %s", dup)
	}
	st := c.Status()
	if st.LastError != "" {
		// The table itself: name it, not the holder.
		return fmt.Errorf("state store unavailable: the lease could not be taken: %s (%v)", st.LastError, err)
	}
	if st.Holder != "" && st.Holder != c.o.Host {
		return fmt.Errorf("state store unavailable: host %s holds the lease (since %s) and has not handed it over yet (%v); it does within %s when it is alive, or the lease expires",
			st.Holder, st.Since.Format(time.RFC3339), err, c.o.LeaseDuration)
	}
	return fmt.Errorf("state store unavailable: the lease could not be taken (%v)", err)
}

// take runs one takeover, bounded by TakeoverWait, and closes ch.
func (c *Coordinator) take(ch chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), c.o.TakeoverWait)
	defer cancel()
	err := c.takeLoop(ctx)
	c.mu.Lock()
	c.takeErr = err
	c.takeover = nil
	c.mu.Unlock()
	close(ch)
	c.changed()
}

func (c *Coordinator) takeLoop(ctx context.Context) error {
	poll := c.o.LeaseDuration / 20
	if poll < 100*time.Millisecond {
		poll = 100 * time.Millisecond
	}
	if poll > time.Second {
		poll = time.Second
	}
	for {
		c.mu.Lock()
		role := c.role
		c.mu.Unlock()
		if role == Holder {
			return nil
		}
		if role == Standby {
			c.observe(ctx)
			c.mu.Lock()
			free, have, prev, lastErr := c.freeLocked(), c.have, c.lease, c.lastErr
			asked := time.Since(c.wanted) < c.o.LeaseDuration/2
			c.mu.Unlock()
			switch {
			case lastErr != "" && ctx.Err() == nil:
				// The table does not answer: keep trying until the wait ends.
			case free:
				var p *Lease
				if have {
					p = &prev
				}
				if err := c.acquire(ctx, p); err == nil {
					return nil
				} else if errors.Is(err, errStart) {
					return err
				} else if !errors.Is(err, ErrLeaseTaken) {
					c.mu.Lock()
					c.lastErr = err.Error()
					c.mu.Unlock()
				}
			case prev.Holder == c.o.Host:
				// Our own old lease (a restart): wait for it to expire.
				// Renewed meanwhile, it is another live process with this
				// host's name, which would never hand it over.
				c.mu.Lock()
				if c.lease.Renewed.After(prev.Since) && time.Since(c.seenAt) < c.o.LeaseDuration/2 && !c.lease.Released {
					if c.dupName == "" {
						c.log.Error("another candidate with this host's name holds the lease: give each candidate its own ha.host", "host", c.o.Host)
					}
					c.dupName = fmt.Sprintf("another candidate with this host's name (%s) holds the lease and renews it: give each candidate its own ha.host, or leave ha.host unset (the host name)", c.o.Host)
				}
				c.mu.Unlock()
			case !asked:
				wctx, wcancel := context.WithTimeout(ctx, c.callTimeout())
				err := c.o.Backend.WantLease(wctx, c.o.Host)
				wcancel()
				if err == nil {
					c.mu.Lock()
					c.wanted = time.Now()
					c.mu.Unlock()
					c.log.Info("HF calls this host: asking the lease holder to hand over", "holder", prev.Holder)
				}
			}
		}
		select {
		case <-ctx.Done():
			return c.waitError(ctx.Err())
		case <-time.After(poll):
		}
	}
}

// acquire takes the lease and starts the engine on the shared state.
func (c *Coordinator) acquire(ctx context.Context, prev *Lease) error {
	sent := time.Now()
	actx, cancel := context.WithTimeout(ctx, c.callTimeout())
	l, err := c.o.Backend.AcquireLease(actx, c.o.Host, prev)
	cancel()
	if err != nil {
		return err
	}
	c.o.Backend.SetFence(l.Token)
	c.mu.Lock()
	c.lease, c.have, c.seenAt = l, true, sent
	c.validUntil = sent.Add(c.o.LeaseDuration - c.o.LeaseDuration/5)
	c.role = Starting
	c.dupName = ""
	c.mu.Unlock()
	from := "nobody"
	if prev != nil && prev.Holder != "" {
		from = prev.Holder
	}
	c.log.Info("lease taken: this host acts for the cluster", "token", l.Token, "from", from, "at_unix_nano", sent.UnixNano())
	// Loading may take longer than a renewal period: renew meanwhile.
	stopRenew := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(c.renewEvery())
		defer t.Stop()
		for {
			select {
			case <-stopRenew:
				return
			case <-t.C:
				c.renewStarting(ctx)
			}
		}
	}()
	act, err := c.o.Start(context.Background(), fenced{c}, c.MayAct)
	close(stopRenew)
	<-renewed
	if err == nil {
		err = c.MayAct()
		if err != nil {
			act.Stop()
		}
	}
	if err != nil {
		c.log.Error("could not start acting on the shared state; releasing the lease", "err", err)
		c.mu.Lock()
		cur := c.lease
		c.role = Standby
		c.validUntil = time.Time{}
		c.mu.Unlock()
		rctx, cancel := context.WithTimeout(context.Background(), c.callTimeout())
		_ = c.o.Backend.ReleaseLease(rctx, cur)
		cancel()
		return fmt.Errorf("%w: %w", errStart, err)
	}
	c.mu.Lock()
	c.active = act
	c.role = Holder
	c.mu.Unlock()
	return nil
}

// renewStarting renews while the engine loads; failures leave validity to
// run out (then Start's result is discarded).
func (c *Coordinator) renewStarting(ctx context.Context) {
	c.mu.Lock()
	cur := c.lease
	c.mu.Unlock()
	sent := time.Now()
	rctx, cancel := context.WithTimeout(ctx, c.callTimeout())
	l, err := c.o.Backend.RenewLease(rctx, cur)
	cancel()
	if err != nil {
		c.log.Warn("lease renewal while loading failed", "err", err)
		return
	}
	c.mu.Lock()
	c.lease, c.seenAt = l, sent
	c.validUntil = sent.Add(c.o.LeaseDuration - c.o.LeaseDuration/5)
	c.mu.Unlock()
}

// fenced is the state's store on a holder: writes only while the lease is
// valid, and the table refuses those a newer holder overtook.
type fenced struct{ c *Coordinator }

func (f fenced) Write(ops ...store.Op) error {
	if err := f.c.MayAct(); err != nil {
		return err
	}
	err := f.c.o.Backend.Write(ops...)
	if err != nil && errors.Is(err, ErrFenced) {
		f.c.log.Error("a newer lease holder wrote the same record: this host stops acting", "err", err)
		go f.c.stepDown(context.Background(), false)
	}
	return err
}

func (f fenced) Scan(prefix string, fn func(key string, value []byte) error) error {
	return f.c.o.Backend.Scan(prefix, fn)
}
