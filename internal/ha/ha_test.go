package ha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/state"
	"github.com/ohfp/ohfp/internal/store"
)

// fakeTable is the shared table as DynamoDB's conditional writes make it:
// per-item fences and one lease item (the real one is tested against
// dynalite in store/dynamo and in the failover soak).
type fakeTable struct {
	mu    sync.Mutex
	items map[string]fakeItem
	lease *Lease
	seq   int
	down  atomic.Bool // the table does not answer
}

type fakeItem struct {
	v []byte
	f uint64
}

type fakeClient struct {
	t     *fakeTable
	token atomic.Uint64
}

func newTable() *fakeTable { return &fakeTable{items: map[string]fakeItem{}} }

func (t *fakeTable) client() *fakeClient { return &fakeClient{t: t} }

var errDown = errors.New("state store unavailable: table not answering")

func (c *fakeClient) SetFence(tok uint64) { c.token.Store(tok) }

func (c *fakeClient) Write(ops ...store.Op) error {
	t := c.t
	if t.down.Load() {
		return errDown
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tok := c.token.Load()
	for _, op := range ops {
		if it, ok := t.items[op.Key]; ok && it.f > tok {
			return fmt.Errorf("%w: %s", ErrFenced, op.Key)
		}
		if op.Delete {
			delete(t.items, op.Key)
		} else {
			t.items[op.Key] = fakeItem{v: op.Value, f: tok}
		}
	}
	return nil
}

func (c *fakeClient) Scan(prefix string, fn func(string, []byte) error) error {
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	for k, it := range c.t.items {
		if strings.HasPrefix(k, prefix) {
			if err := fn(k, it.v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *fakeClient) ReadLease(context.Context) (Lease, bool, error) {
	t := c.t
	if t.down.Load() {
		return Lease{}, false, errDown
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lease == nil {
		return Lease{}, false, nil
	}
	return *t.lease, true, nil
}

func (t *fakeTable) version() string { t.seq++; return fmt.Sprint("v", t.seq) }

func (c *fakeClient) AcquireLease(_ context.Context, host string, prev *Lease) (Lease, error) {
	t := c.t
	if t.down.Load() {
		return Lease{}, errDown
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if (prev == nil) != (t.lease == nil) || prev != nil && prev.Version != t.lease.Version {
		return Lease{}, ErrLeaseTaken
	}
	var tok uint64 = 1
	if prev != nil {
		tok = prev.Token + 1
	}
	now := time.Now()
	t.lease = &Lease{Holder: host, Token: tok, Version: t.version(), Since: now, Renewed: now}
	return *t.lease, nil
}

func (c *fakeClient) RenewLease(_ context.Context, l Lease) (Lease, error) {
	t := c.t
	if t.down.Load() {
		return Lease{}, errDown
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lease == nil || t.lease.Holder != l.Holder || t.lease.Token != l.Token || t.lease.Released {
		return Lease{}, ErrLeaseLost
	}
	t.lease.Version, t.lease.Renewed = t.version(), time.Now()
	return *t.lease, nil
}

func (c *fakeClient) ReleaseLease(_ context.Context, l Lease) error {
	t := c.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lease == nil || t.lease.Holder != l.Holder || t.lease.Token != l.Token {
		return ErrLeaseLost
	}
	t.lease.Released, t.lease.Version = true, t.version()
	return nil
}

func (c *fakeClient) WantLease(_ context.Context, host string) error {
	t := c.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lease == nil {
		return errors.New("no lease")
	}
	t.lease.Want, t.lease.WantAt = host, time.Now()
	return nil
}

// events records, in order, when each host started and stopped acting.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.log, ",")
}

type fakeActive struct {
	host string
	ev   *events
	kv   state.KV
}

func (a *fakeActive) Stop() { a.ev.add("stop " + a.host) }

const lease = 400 * time.Millisecond

func coordinator(t *testing.T, host string, tab *fakeTable, ev *events, kvs map[string]state.KV) *Coordinator {
	t.Helper()
	var mu sync.Mutex
	return New(Options{
		Host: host, LeaseDuration: lease, Backend: tab.client(),
		Logger: slog.New(slog.DiscardHandler),
		Start: func(_ context.Context, kv state.KV, _ func() error) (Active, error) {
			ev.add("start " + host)
			mu.Lock()
			kvs[host] = kv
			mu.Unlock()
			return &fakeActive{host: host, ev: ev, kv: kv}, nil
		},
	})
}

func run(t *testing.T, c *Coordinator) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	return func() { cancel(); <-done }
}

// A live holder hands the lease over when HF calls the other host, and
// stops acting before the other starts.
func TestHandOverToTheHostHFCalls(t *testing.T) {
	tab, ev, kvs := newTable(), &events{}, map[string]state.KV{}
	a, b := coordinator(t, "a", tab, ev, kvs), coordinator(t, "b", tab, ev, kvs)
	defer run(t, a)()
	defer run(t, b)()
	ctx := context.Background()
	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if a.MayAct() != nil || b.MayAct() == nil {
		t.Fatalf("a may act: %v; b may act: %v", a.MayAct(), b.MayAct())
	}
	t0 := time.Now()
	if err := b.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	if a.MayAct() == nil || b.MayAct() != nil {
		t.Fatalf("after hand-over: a may act: %v; b may act: %v", a.MayAct(), b.MayAct())
	}
	if got := ev.String(); got != "start a,stop a,start b" {
		t.Fatalf("events %q: a must stop before b starts", got)
	}
	// A live holder hands over at its next renewal: well within a lease.
	if took >= lease {
		t.Fatalf("hand-over took %s, want < lease %s (the holder is alive)", took, lease)
	}
	waitFor(t, func() bool { st := a.Status(); return st.Holder == "b" && st.Role == Standby }, "a's status to show b as holder")
	if tab.lease.Token != 2 {
		t.Fatalf("token %d, want 2", tab.lease.Token)
	}
	// Failback: HF calls a again.
	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ev.String(); got != "start a,stop a,start b,stop b,start a" {
		t.Fatalf("events %q", got)
	}
}

// A holder that stops renewing (killed, or paused) loses the right to act
// when its validity runs out, before any other host may take the lease; a
// waiting host takes it only after seeing it unrenewed for a whole lease
// duration; the paused holder's late write to a record the new holder
// wrote is refused.
func TestPausedHolderNeitherActsNorWritesAfterExpiry(t *testing.T) {
	tab, ev, kvs := newTable(), &events{}, map[string]state.KV{}
	a, b := coordinator(t, "a", tab, ev, kvs), coordinator(t, "b", tab, ev, kvs)
	ctx := context.Background()
	// a acquires but never runs its renewal loop: it is paused.
	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := kvs["a"].Write(store.Op{Key: "r/1", Value: []byte("a1")}); err != nil {
		t.Fatal(err)
	}
	defer run(t, b)()
	t0 := time.Now()
	if err := b.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	if took < lease {
		t.Fatalf("b took the lease after %s, before a whole lease duration (%s) without renewal", took, lease)
	}
	if a.MayAct() == nil {
		t.Fatal("a may still act after b took the lease")
	}
	// a's write after expiry: refused before it reaches the table.
	if err := kvs["a"].Write(store.Op{Key: "r/2", Value: []byte("a2")}); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("late write by a: %v, want ErrNotHolder", err)
	}
	if err := kvs["b"].Write(store.Op{Key: "r/1", Value: []byte("b1")}); err != nil {
		t.Fatal(err)
	}
	// A write that raced a's check (made straight to the table with a's
	// token) is refused by the record's fence.
	late := tab.client()
	late.SetFence(1)
	if err := late.Write(store.Op{Key: "r/1", Value: []byte("a-late")}); !errors.Is(err, ErrFenced) {
		t.Fatalf("a's raced write: %v, want ErrFenced", err)
	}
	if v := string(tab.items["r/1"].v); v != "b1" {
		t.Fatalf("r/1 = %q after a's late write, want b1", v)
	}
}

// When the table does not answer, the holder stops acting once its lease
// runs out, and an HF call on a standby fails with "state store
// unavailable" instead of acting without the lease.
func TestUnreachableTableStopsActing(t *testing.T) {
	tab, ev, kvs := newTable(), &events{}, map[string]state.KV{}
	a, b := coordinator(t, "a", tab, ev, kvs), coordinator(t, "b", tab, ev, kvs)
	defer run(t, a)()
	if err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	tab.down.Store(true)
	deadline := time.Now().Add(3 * lease)
	for a.MayAct() == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if a.MayAct() == nil {
		t.Fatal("a still acts with the table unreachable past its lease")
	}
	waitFor(t, func() bool { return strings.Contains(ev.String(), "stop a") }, "a's engine to stop")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := b.Acquire(ctx)
	if err == nil || !strings.Contains(err.Error(), "state store unavailable") {
		t.Fatalf("b.Acquire with the table down: %v", err)
	}
	if b.MayAct() == nil {
		t.Fatal("b acts without a lease")
	}
}

// A failed start (the state does not load) releases the lease and acts on
// nothing.
func TestFailedStartReleases(t *testing.T) {
	tab := newTable()
	c := New(Options{Host: "a", LeaseDuration: lease, Backend: tab.client(), Logger: slog.New(slog.DiscardHandler),
		Start: func(context.Context, state.KV, func() error) (Active, error) {
			return nil, errors.New("state store unavailable: load failed")
		}})
	err := c.Acquire(context.Background())
	if err == nil || !strings.Contains(err.Error(), "load failed") {
		t.Fatalf("Acquire: %v", err)
	}
	if c.MayAct() == nil {
		t.Fatal("acts after a failed start")
	}
	if !tab.lease.Released {
		t.Fatal("lease kept after a failed start")
	}
}

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(3 * lease)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// HF calling both hosts (two HFs, or a script on the other host) does not
// move the lease at every call: the host HF keeps calling keeps it, and the
// other's calls fail saying who holds it. Once the calls stop there, the
// lease moves.
func TestNoPingPongWhenBothHostsAreCalled(t *testing.T) {
	tab, ev, kvs := newTable(), &events{}, map[string]state.KV{}
	a, b := coordinator(t, "a", tab, ev, kvs), coordinator(t, "b", tab, ev, kvs)
	defer run(t, a)()
	defer run(t, b)()
	if err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				_ = a.Acquire(context.Background())
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*lease)
	err := b.Acquire(ctx)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "host a holds the lease") {
		t.Fatalf("b.Acquire while HF still calls a: %v", err)
	}
	if got := ev.String(); got != "start a" {
		t.Fatalf("the lease moved while HF called both: %q", got)
	}
	close(stop)
	<-done
	if err := b.Acquire(context.Background()); err != nil {
		t.Fatalf("b.Acquire once a's calls stopped: %v", err)
	}
	if got := ev.String(); got != "start a,stop a,start b" {
		t.Fatalf("events %q", got)
	}
}

// Two candidates given the same host name: the live one never hands over
// (the other's request looks like its own); the other's calls say why.
func TestDuplicateHostName(t *testing.T) {
	tab, ev, kvs := newTable(), &events{}, map[string]state.KV{}
	a1, a2 := coordinator(t, "a", tab, ev, kvs), coordinator(t, "a", tab, ev, kvs)
	defer run(t, a1)()
	defer run(t, a2)()
	if err := a1.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*lease)
	defer cancel()
	err := a2.Acquire(ctx)
	if err == nil || !strings.Contains(err.Error(), "another candidate with this host's name (a)") {
		t.Fatalf("a2.Acquire: %v", err)
	}
}
