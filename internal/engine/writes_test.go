package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/store"
)

// Writes are made outside the lock HF's reads take (state.Persist). These
// tests hold writes in a store that answers when the test says (a slow
// disk, a DynamoDB table taking seconds), and check that HF's reads go on
// meanwhile, and that no invariant rests on a write still under way:
// a crash is a new engine on the store while the old one's writes hang.

// gateStore is a store whose writes can be held until the test lets each
// through or refuses it.
type gateStore struct {
	*store.Store
	mu     sync.Mutex
	held   bool
	writes chan *heldWrite
}

// heldWrite is a write waiting for the test's answer: nil writes it, an
// error refuses it (nothing written).
type heldWrite struct {
	ops    []store.Op
	answer chan error
}

func (w *heldWrite) pass()          { w.answer <- nil }
func (w *heldWrite) fail(err error) { w.answer <- err }

// gate builds a new engine on a gate over h's store (as a restart would);
// h.restart() later is a restart on the store itself.
func (h *harness) gate() *gateStore {
	h.t.Helper()
	g := &gateStore{Store: h.st, writes: make(chan *heldWrite, 64)}
	e, err := New(Options{ClusterID: "test", Providers: []ProviderConfig{{Name: "aws", Templates: h.tpls, Cloud: h.cloud}}, Store: g, Clock: h.clk})
	if err != nil {
		h.t.Fatal(err)
	}
	h.e = e
	return g
}

func (g *gateStore) hold() { g.mu.Lock(); g.held = true; g.mu.Unlock() }

// open lets later writes through at once (held ones still wait).
func (g *gateStore) open() { g.mu.Lock(); g.held = false; g.mu.Unlock() }

func (g *gateStore) Write(ops ...store.Op) error {
	g.mu.Lock()
	held := g.held
	g.mu.Unlock()
	if held {
		w := &heldWrite{ops: ops, answer: make(chan error, 1)}
		g.writes <- w
		if err := <-w.answer; err != nil {
			return err
		}
	}
	return g.Store.Write(ops...)
}

// drain lets every write through from now on, held ones included.
func (g *gateStore) drain(t *testing.T) {
	g.open()
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			select {
			case w := <-g.writes:
				w.pass()
			case <-stop:
				return
			}
		}
	}()
}

// next returns the next held write carrying a key with prefix, letting
// the others (the instance type cache) through.
func (g *gateStore) next(t *testing.T, prefix string) *heldWrite {
	t.Helper()
	for {
		select {
		case w := <-g.writes:
			for _, op := range w.ops {
				if strings.HasPrefix(op.Key, prefix) {
					return w
				}
			}
			w.pass()
		case <-time.After(10 * time.Second):
			t.Fatalf("no write of %s came", prefix)
		}
	}
}

// statusAsync asks getRequestStatus for id, as HF does, in a goroutine.
func (h *harness) statusAsync(id string) <-chan hf.RequestStatus {
	out := make(chan hf.RequestStatus, 1)
	e := h.e
	go func() {
		rep, err := hfraw(e).GetRequestStatus(nil, []byte(fmt.Sprintf(`{"requests":[{"requestId":%q}]}`, id)))
		if err != nil || len(rep.Requests) != 1 {
			out <- hf.RequestStatus{Message: fmt.Sprintf("getRequestStatus failed: %v", err)}
			return
		}
		out <- rep.Requests[0]
	}()
	return out
}

func (f *fakeCloud) launchCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.launches
}

// HF's reads answer while a write (here a launch attempt of another
// request) is under way; and the launch waits for its attempt's write.
func TestHFReadsNotBlockedBySlowWrite(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.launched("OnDemand-c5", 1)
	if st := h.status(id); st.Status != hf.StatusComplete {
		t.Fatalf("before: %+v", st)
	}
	g := h.gate()
	other := h.request("OnDemand-c5", 2)
	launchesBefore := h.cloud.launchCount()
	g.hold()
	done := make(chan struct{})
	go func() {
		h.e.ProvisionOnce(context.Background())
		h.e.Wait()
		close(done)
	}()
	attempt := g.next(t, "r/"+other)

	select {
	case st := <-h.statusAsync(id):
		if st.Status != hf.StatusComplete || len(st.Machines) != 1 {
			t.Fatalf("getRequestStatus during a slow write: %+v", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("getRequestStatus waited for another request's write")
	}
	answered := make(chan error, 1)
	go func() {
		if _, err := hfraw(h.e).GetAvailableTemplates(nil, []byte(`{}`)); err != nil {
			answered <- err
			return
		}
		_, err := hfraw(h.e).GetReturnRequests(nil, []byte(`{"machines":[]}`))
		answered <- err
	}()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("getAvailableTemplates or getReturnRequests waited for a write")
	}
	if n := h.cloud.launchCount(); n != launchesBefore {
		t.Fatalf("launched before its attempt was written: %d launches", n-launchesBefore)
	}
	g.open()
	attempt.pass()
	<-done
	if n := h.cloud.launchCount(); n != launchesBefore+1 {
		t.Fatalf("once written, the launch is made: %d launches", n-launchesBefore)
	}
}

// A request's final status (here a refused launch) is not shown to HF
// while its write is under way: a crash before it is written resumes the
// request, which may then succeed, and HF must not have been told it
// failed.
func TestFinalStatusShownOnlyOnceWritten(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.cloud.launchErr = []error{&provider.Error{Op: "RunInstances", Code: "InvalidParameterValue", Message: "refused", Kind: provider.Fatal}}
	id := h.request("OnDemand-c5", 1)
	if st := h.status(id); st.Status != hf.StatusRunning {
		t.Fatalf("queued: %+v", st)
	}
	g := h.gate()
	g.hold()
	go func() {
		h.e.ProvisionOnce(context.Background())
	}()
	g.next(t, "r/"+id).pass() // the attempt
	final := g.next(t, "r/"+id)
	asked := h.statusAsync(id)
	select {
	case st := <-asked:
		if st.Status != hf.StatusRunning {
			t.Fatalf("HF was shown %s before it was written: %+v", st.Status, st)
		}
	case <-time.After(300 * time.Millisecond): // waits for the write: fine
	}
	// Crash: the write never lands; a new daemon on the store.
	h.restart()
	h.provision()
	h.cloud.settle()
	h.reconcile()
	if st := h.status(id); st.Status != hf.StatusComplete || len(st.Machines) != 1 {
		t.Fatalf("after the crash the request resumes and succeeds: %+v", st)
	}
	final.fail(errors.New("the daemon is dead"))
}

// HF's claim is written outside the lock; a concurrent getRequestStatus
// must not show the machines while no claim is on disk. The first claim
// write fails (full disk), the second's passes: the first call withholds
// the machines, the second shows them, and a restart finds the claim.
func TestClaimBeingWrittenWithholdsMachines(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.launched("OnDemand-c5", 2) // HF has not asked yet
	g := h.gate()
	g.hold()
	first := h.statusAsync(id)
	w1 := g.next(t, "r/"+id)
	second := h.statusAsync(id)
	answeredEarly := false
	select {
	case st := <-second:
		// Answered at once: then without the machines.
		answeredEarly = true
		if len(st.Machines) != 0 {
			t.Fatalf("shown %d machines while their claim was being written: %+v", len(st.Machines), st)
		}
	case <-time.After(300 * time.Millisecond): // claimed again itself, waiting for its turn
	}
	w1.fail(errors.New("no space left on device"))
	if st := <-first; len(st.Machines) != 0 || st.Status != hf.StatusRunning {
		t.Fatalf("the claim was not written, yet HF was shown: %+v", st)
	}
	if answeredEarly {
		second = h.statusAsync(id)
	}
	g.next(t, "r/"+id).pass() // the second call's own claim
	if st := <-second; st.Status != hf.StatusComplete || len(st.Machines) != 2 {
		t.Fatalf("once its claim is written: %+v", st)
	}
	g.open()
	h.restart()
	shown, err := h.e.Show(id)
	if err != nil || shown.Request == nil || shown.Request.AwaitingClaim {
		t.Fatalf("after a restart the claim HF was shown machines for is lost: %+v %v", shown.Request, err)
	}
}

// A machine failed by a rule (its pending timeout) is terminated only
// once that decision's write is done.
func TestTerminationWaitsForItsDecisionsWrite(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.request("OnDemand-c5", 1)
	h.status(id)
	h.provision() // pending for ever
	g := h.gate()
	h.clk.Advance(181 * time.Second)
	g.hold()
	go h.reconcile()
	doom := g.next(t, "m/")
	done := make(chan struct{})
	go func() {
		h.e.ProvisionOnce(context.Background())
		h.e.Wait()
		close(done)
	}()
	time.Sleep(200 * time.Millisecond)
	if n := h.terminated(); n != 0 {
		t.Fatalf("terminated %d machines before the decision was written", n)
	}
	g.open()
	doom.pass()
	<-done
	h.provision()
	if n := h.terminated(); n != 1 {
		t.Fatalf("once written, the stuck machine is terminated: %d", n)
	}
}

// A reconcile pass writing a machine HF is returning must not write it
// without its return: the return's write and its change in memory are
// one step for the other writers.
func TestReturnRacingReconcileKeepsReturn(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.launched("OnDemand-c5", 1)
	m := h.status(id).Machines[0]
	g := h.gate()
	g.hold()
	returned := make(chan hf.RequestReply, 1)
	go func() {
		rep, _ := hfraw(h.e).RequestReturnMachines(nil, []byte(`{"machines":[`+ref(m)+`]}`))
		returned <- rep
	}()
	ret := g.next(t, "r/ret-")
	// The cloud changes the machine; a pass folds it in meanwhile.
	h.cloud.mu.Lock()
	h.cloud.insts[m.MachineID].PublicIP = "203.0.113.7"
	h.cloud.mu.Unlock()
	passed := make(chan struct{})
	go func() {
		h.reconcile()
		close(passed)
	}()
	time.Sleep(200 * time.Millisecond) // the pass reaches its write, or waits for the lock
	ret.pass()
	time.Sleep(100 * time.Millisecond)
	g.drain(t)
	rep := <-returned
	<-passed
	if !strings.HasPrefix(rep.RequestID, "ret-") {
		t.Fatalf("return: %+v", rep)
	}
	h.restart()
	rows, err := h.e.ListMachines(id, true)
	if err != nil || len(rows) != 1 {
		t.Fatalf("machines: %v %v", rows, err)
	}
	if rows[0].ReturnID != rep.RequestID {
		t.Fatalf("after a restart the returned machine has return %q, want %q: it would never be terminated", rows[0].ReturnID, rep.RequestID)
	}
}
