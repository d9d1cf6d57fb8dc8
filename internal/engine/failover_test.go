package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/store"
)

// Master failover without a shared store: HF's calls move from one
// daemon (A) to another (B) on its own, empty or stale, store; both see
// the same cloud and cluster id. These tests are the operator's tries of
// issue 14 item 3, each of which failed before: B answered "not known"
// for A's request and then adopted its machines as complete; B ignored a
// host A launched that HF returned; A's ret- ids were not known on B.

// peer is a second daemon on its own empty store, sharing h's cloud and
// clock.
func (h *harness) peer() *harness {
	h.t.Helper()
	st, err := store.OpenInMemory(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { st.Close() })
	b := &harness{t: h.t, clk: h.clk, cloud: h.cloud, st: st, tpls: h.tpls}
	b.restart()
	return b
}

func (h *harness) returnRefs(refs string) hf.RequestReply {
	h.t.Helper()
	rep, err := hfraw(h.e).RequestReturnMachines(nil, []byte(`{"machines":[`+refs+`]}`))
	if err != nil {
		h.t.Fatal(err)
	}
	return rep
}

func ref(m hf.Machine) string {
	return fmt.Sprintf(`{"name":%q,"machineId":%q}`, m.Name, m.MachineID)
}

func (f *fakeCloud) state(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(f.insts[id].State)
}

func (f *fakeCloud) tag(id, key string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.insts[id].Tags[key]
}

// B, on an empty store, is asked about the request A made: it looks in
// the cloud first and answers from A's instances, never "not known"; the
// answer is remembered (one lookup, not one per call).
func TestFailoverAnswersFromTheCloud(t *testing.T) {
	a := newHarness(t)
	id := a.launched("OnDemand-c5", 3)
	if st := a.status(id); st.Status != hf.StatusComplete {
		t.Fatalf("on A: %+v", st)
	}
	b := a.peer()
	st := b.status(id)
	if st.Status != hf.StatusComplete || len(st.Machines) != 3 || strings.Contains(st.Message, "not known") {
		t.Fatalf("on B: %+v", st)
	}
	for _, m := range st.Machines {
		if m.Result != hf.ResultSucceed || a.cloud.state(m.MachineID) != "running" {
			t.Fatalf("machine on B %+v (cloud: %s)", m, a.cloud.state(m.MachineID))
		}
	}
	finds := a.cloud.finds
	b.status(id)
	if a.cloud.finds != finds {
		t.Fatalf("a second question looked in the cloud again (%d lookups)", a.cloud.finds)
	}
	// HF asked about it here: it is claimed, and HF's getReturnRequests
	// calls, which list the hosts, never make B terminate them.
	b.housekeeping(2*time.Hour, id)
	if n := b.terminated(); n != 0 {
		t.Fatalf("B terminated %d of the machines HF holds", n)
	}
}

// A is killed during its terminate of a returned machine (its return tag
// written, the terminate never made); HF asks B about A's ret- id and
// returns the host again on B: the machine ends, the ret- id answers on
// B, running then complete, and the host is never reported as taken back.
func TestFailoverMidReturn(t *testing.T) {
	a := newHarness(t)
	id := a.launched("OnDemand-c5", 2)
	ms := a.status(id).Machines
	victim := ms[0]
	a.cloud.onTerminate = func([]string) error { return errors.New("ohfpd killed during the call") }
	ret := a.returnRefs(ref(victim)).RequestID
	a.provision()
	if got := a.cloud.tag(victim.MachineID, provider.TagReturnID); got != ret {
		t.Fatalf("return tag %q before the terminate, want %q", got, ret)
	}
	if a.cloud.state(victim.MachineID) != "running" {
		t.Fatalf("the terminate was not to happen: %s", a.cloud.state(victim.MachineID))
	}
	a.cloud.onTerminate = nil

	b := a.peer()
	rs := b.status(ret)
	if rs.Status != hf.StatusRunning || len(rs.Machines) != 1 || rs.Machines[0].MachineID != victim.MachineID || rs.Machines[0].Result != hf.ResultExecuting {
		t.Fatalf("A's return on B before B terminates: %+v", rs)
	}
	// HF retries the return on B, with a new request.
	again := b.returnRefs(ref(victim))
	if strings.Contains(again.Message, "not provisioned") {
		t.Fatalf("B ignored the host: %+v", again)
	}
	b.provision()
	if s := a.cloud.state(victim.MachineID); s != "shutting-down" {
		t.Fatalf("after B's provisioner: %s", s)
	}
	a.cloud.settle()
	b.reconcile()
	for _, r := range []string{ret, again.RequestID} {
		rs := b.status(r)
		if rs.Status != hf.StatusComplete || len(rs.Machines) != 1 || rs.Machines[0].Result != hf.ResultSucceed {
			t.Fatalf("return %s on B after termination: %+v", r, rs)
		}
	}
	if s := a.cloud.state(ms[1].MachineID); s != "running" {
		t.Fatalf("the machine HF kept is %s", s)
	}
	if n := b.holds(id); n != 0 {
		t.Fatalf("getReturnRequests on B reports %d of HF's hosts as taken back", n)
	}
}

// B, asked about a request no instance carries yet (A's launch not
// visible: eventual consistency), answers "not known" and remembers it,
// across a restart; when the instances show, they are terminated, and
// the request is never reported complete.
func TestToldFailedIsNeverReportedComplete(t *testing.T) {
	a := newHarness(t)
	id := a.request("OnDemand-c5", 2)
	a.provision()
	a.cloud.hidden = map[string]bool{}
	for _, iid := range a.cloud.order {
		a.cloud.hidden[iid] = true
	}
	b := a.peer()
	st := b.status(id)
	if st.Status != hf.StatusCompleteWithError || !strings.Contains(st.Message, "not known") {
		t.Fatalf("on B: %+v", st)
	}
	b.restart() // the record is durable
	a.cloud.hidden = nil
	a.cloud.settle()
	b.reconcile()
	b.provision()
	for _, iid := range a.cloud.order {
		if s := a.cloud.state(iid); s != "shutting-down" {
			t.Fatalf("instance %s of the request HF was told failed is %s", iid, s)
		}
	}
	a.cloud.settle()
	b.reconcile()
	st = b.status(id)
	if st.Status != hf.StatusCompleteWithError {
		t.Fatalf("after its instances showed: %+v", st)
	}
	for _, m := range st.Machines {
		if m.Result == hf.ResultSucceed {
			t.Fatalf("machine reported usable: %+v", m)
		}
	}
}

// An unknown ret- id no instance carries is "not known", as before; ids
// not of ohfpd's shape are not looked for.
func TestUnknownIdsStillNotKnown(t *testing.T) {
	h := newHarness(t)
	ret := "ret-" + uuid.NewString()
	for _, id := range []string{ret, "req-bogus", "something"} {
		st := h.status(id)
		if st.Status != hf.StatusCompleteWithError || !strings.Contains(st.Message, "is not known to ohfpd") {
			t.Fatalf("%s: %+v", id, st)
		}
	}
	if h.cloud.finds != 1 {
		t.Fatalf("%d lookups, want 1 (the ret- id)", h.cloud.finds)
	}
}

// A host HF returns that B does not hold but that carries this cluster's
// tags is terminated; one without them stays ignored, with the message.
func TestUnknownHostWithOurTagsIsTerminated(t *testing.T) {
	a := newHarness(t)
	id := a.launched("OnDemand-c5", 1)
	m := a.status(id).Machines[0]
	// A host of another cluster in the same account.
	other := a.cloud.insts[m.MachineID]
	foreign := *other
	foreign.ID, foreign.PrivateDNS = "i-0000000000000f00d", "ip-10-9-9-9.ec2.internal"
	foreign.Tags = map[string]string{provider.TagManagedBy: "someone-else", provider.TagRequestID: "req-" + uuid.NewString()}
	a.cloud.insts[foreign.ID] = &foreign
	a.cloud.order = append(a.cloud.order, foreign.ID)

	b := a.peer()
	// By host name only, as HF may send it.
	rep := b.returnRefs(fmt.Sprintf(`{"name":%q},{"name":%q,"machineId":%q}`, m.Name, foreign.PrivateDNS, foreign.ID))
	if !strings.Contains(rep.Message, "Returning 1 machine.") || !strings.Contains(rep.Message, "1 was not provisioned by ohfpd and is ignored: "+foreign.PrivateDNS) {
		t.Fatalf("return on B: %+v", rep)
	}
	b.provision()
	if s := a.cloud.state(m.MachineID); s != "shutting-down" {
		t.Fatalf("our host is %s", s)
	}
	if s := a.cloud.state(foreign.ID); s != "running" && s != "pending" {
		t.Fatalf("the other cluster's host is %s", s)
	}
	if got := a.cloud.tag(m.MachineID, provider.TagReturnID); got != rep.RequestID {
		t.Fatalf("return tag %q, want %q", got, rep.RequestID)
	}
}

// The return tag is written before the terminate, and an instance the
// cloud does not know for tagging is not terminated until it is tagged.
func TestReturnTagBeforeTerminate(t *testing.T) {
	h := newHarness(t)
	id := h.launched("OnDemand-c5", 2)
	ms := h.status(id).Machines
	ret := h.returnRefs(ref(ms[0]) + "," + ref(ms[1])).RequestID
	h.cloud.hidden = map[string]bool{ms[1].MachineID: true} // not visible to CreateTags
	h.cloud.trail = nil
	h.provision()
	want := []string{"Tag " + ms[0].MachineID + "," + ms[1].MachineID, "Terminate " + ms[0].MachineID}
	if strings.Join(h.cloud.trail, "|") != strings.Join(want, "|") {
		t.Fatalf("calls %q, want %q", h.cloud.trail, want)
	}
	h.cloud.hidden = nil
	h.clk.Advance(5 * time.Minute)
	h.provision()
	if s := h.cloud.state(ms[1].MachineID); s != "shutting-down" || h.cloud.tag(ms[1].MachineID, provider.TagReturnID) != ret {
		t.Fatalf("second machine %s, tag %q", s, h.cloud.tag(ms[1].MachineID, provider.TagReturnID))
	}
}

// A stale store is folded in before the provisioner acts: B's store has
// a machine running that A since terminated for HF's return, and a
// request B was launching when it stopped whose instances exist. B's
// first pass (engine.Run) lists before any launch or terminate; the
// machine is returned (its ret- id answers on B, complete), not taken
// back by the cloud; the launch asked again is the same (its client
// token), nothing launched twice.
func TestStaleStoreFoldedBeforeActing(t *testing.T) {
	b := newHarness(t)
	held := b.launched("OnDemand-c5", 2)
	ms := b.status(held).Machines
	// B stops while launching a second request: the call ran, its answer
	// was lost.
	b.cloud.dropAnswers = 1
	launching := b.request("OnDemand-c5", 1)
	b.status(launching)
	b.provision()
	if r := b.peek(launching); r.Status != hf.StatusRunning || len(r.Machines) != 0 {
		t.Fatalf("launching request on B: %+v", r)
	}

	// Meanwhile HF returned a host through A.
	a := b.peer()
	ret := a.returnRefs(ref(ms[0])).RequestID
	a.provision()
	a.cloud.settle()
	a.reconcile()
	before := b.cloud.count()

	b.restart()
	b.cloud.trail = nil
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.e.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.cloud.mu.Lock()
		n := b.cloud.launches
		b.cloud.mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(b.cloud.trail) == 0 || b.cloud.trail[0] != "List" {
		t.Fatalf("B acted before listing: %q", b.cloud.trail)
	}
	if b.cloud.count() != before {
		t.Fatalf("%d instances, %d before B started: launched twice", b.cloud.count(), before)
	}
	finds := b.cloud.finds
	if rs := b.status(ret); rs.Status != hf.StatusComplete || len(rs.Machines) != 1 {
		t.Fatalf("A's return on B: %+v", rs)
	}
	if b.cloud.finds != finds {
		t.Fatal("A's return was not folded in by B's first pass (B had to look for it)")
	}
	if n := b.holds(held); n != 0 {
		t.Fatalf("getReturnRequests on B reports %d hosts taken back", n)
	}
	b.e.st.Mu.RLock()
	m := b.e.st.Machines[ms[0].MachineID]
	b.e.st.Mu.RUnlock()
	if m.ReturnID != ret || !m.ReclaimedAt.IsZero() {
		t.Fatalf("returned machine on B: return %q reclaimed %v", m.ReturnID, m.ReclaimedAt)
	}
	if r := b.peek(launching); len(r.Machines) != 1 {
		t.Fatalf("launching request on B after the fold: %+v", r)
	}
}

// Requests B rebuilt from A's tags are not exempt from the claim rule:
// the one whose hosts HF lists in getReturnRequests is kept however long;
// the one HF never asks about nor lists (its answer lost on A) has its
// machines terminated, on HF's own evidence, not on a timer.
func TestAdoptedRequestsFollowTheClaimRule(t *testing.T) {
	a := newHarness(t)
	held := a.launched("OnDemand-c5", 2)
	a.status(held)
	lost := a.launched("OnDemand-c5", 1)
	b := a.peer()
	b.reconcile() // the first pass adopts both from their tags
	heldMs, lostMs := b.peek(held).Machines, b.peek(lost).Machines
	if len(heldMs) != 2 || len(lostMs) != 1 {
		t.Fatalf("adopted %d and %d machines", len(heldMs), len(lostMs))
	}
	// No getReturnRequests call: no evidence, nothing ends however long.
	b.idle(2 * time.Hour)
	if n := b.terminated(); n != 0 {
		t.Fatalf("without HF's evidence B terminated %d machines", n)
	}
	b.housekeeping(2*time.Hour, held)
	for _, m := range heldMs {
		if s := a.cloud.state(m.MachineID); s != "running" {
			t.Fatalf("a machine HF holds is %s", s)
		}
	}
	if s := a.cloud.state(lostMs[0].MachineID); s != "shutting-down" {
		t.Fatalf("the machine of the request HF never learned of is %s", s)
	}
}

// B rebuilds A's request while EC2 shows only some of its instances
// (eventual consistency): it knows from the instances' tag how many HF
// asked for and answers running until the others show, never complete
// with the first one (HF would hold fewer than it got from A, and B would
// then terminate the late ones as orphans of a finished request).
func TestFailoverWaitsForEveryUnit(t *testing.T) {
	a := newHarness(t)
	id := a.launched("OnDemand-c5", 3)
	if st := a.status(id); st.Status != hf.StatusComplete || len(st.Machines) != 3 {
		t.Fatalf("on A: %+v", st)
	}
	for _, iid := range a.cloud.order {
		if got := a.cloud.tag(iid, provider.TagRequestUnits); got != "3" {
			t.Fatalf("instance %s tagged %s=%q, want 3", iid, provider.TagRequestUnits, got)
		}
	}
	a.cloud.hidden = map[string]bool{a.cloud.order[1]: true, a.cloud.order[2]: true}
	b := a.peer()
	st := b.status(id)
	if st.Status != hf.StatusRunning || !strings.Contains(st.Message, "1 of 3 units found") {
		t.Fatalf("on B with 2 of 3 hidden: %+v", st)
	}
	a.cloud.hidden = nil
	b.reconcile()
	st = b.status(id)
	if st.Status != hf.StatusComplete || len(st.Machines) != 3 {
		t.Fatalf("on B once all show: %+v", st)
	}
	if n := b.terminated(); n != 0 {
		t.Fatalf("B terminated %d machines", n)
	}

	// Some never show: after the visibility grace, what showed is the
	// answer, with why.
	id2 := a.launched("OnDemand-c5", 2)
	var lost string
	for _, iid := range a.cloud.order {
		if a.cloud.insts[iid].Tags[provider.TagRequestID] == id2 {
			lost = iid
		}
	}
	a.cloud.hidden = map[string]bool{lost: true}
	c := a.peer()
	if st := c.status(id2); st.Status != hf.StatusRunning {
		t.Fatalf("on C: %+v", st)
	}
	a.clk.Advance(10 * time.Minute)
	c.reconcile()
	if st := c.status(id2); st.Status != hf.StatusCompleteWithError || !strings.Contains(st.Message, "only 1 of 2 units found in the cloud") {
		t.Fatalf("on C past the grace: %+v", st)
	}
}

// v7At is a version 7 UUID made at t (RFC 9562: 48-bit Unix milliseconds,
// version 7, variant 10).
func v7At(t time.Time) string {
	var u uuid.UUID
	ms := uint64(t.UnixMilli())
	for i := 0; i < 6; i++ {
		u[i] = byte(ms >> (40 - 8*i))
	}
	u[6] = 0x70 | 0x01
	u[8] = 0x80 | 0x02
	u[15] = 0x42
	return u.String()
}

// An id HF asks about that neither this daemon nor the cloud knows, made
// moments ago (its version 7 UUID says when): another daemon made it and
// EC2 does not show its instances yet. It answers running, never failed,
// until the visibility grace has passed; then not known, and remembered.
func TestFailoverYoungUnknownIDWaits(t *testing.T) {
	a := newHarness(t)
	b := a.peer()
	id := "req-" + v7At(a.clk.Now().Add(-10*time.Second))
	st := b.status(id)
	if st.Status != hf.StatusRunning || !strings.Contains(st.Message, "made less than") {
		t.Fatalf("a young unknown id: %+v", st)
	}
	a.clk.Advance(3 * time.Minute)
	st = b.status(id)
	if st.Status != hf.StatusCompleteWithError || !strings.Contains(st.Message, "not known") {
		t.Fatalf("the same id past the grace: %+v", st)
	}
	// An old-style (version 4) id is answered at once, as before.
	old := "req-" + uuid.NewString()
	if st := b.status(old); st.Status != hf.StatusCompleteWithError {
		t.Fatalf("a version 4 unknown id: %+v", st)
	}
}

// A request recorded whose answer never reached HF (the daemon died
// before delivering it; or a shared table applied a write whose answer
// timed out while HF was told nothing was recorded) is not launched by the
// daemon that loads it until HF asks about it; never asked, it ends
// unlaunched.
func TestAnswerPendingIsNotLaunchedUntilHFAsks(t *testing.T) {
	h := newHarness(t)
	held := func() string {
		rep, _, err := h.e.RequestMachinesHeld("aws", hf.RequestMachines{TemplateID: "OnDemand-c5", MachineCount: 2})
		if err != nil {
			t.Fatal(err)
		}
		return rep.RequestID // never delivered: the caller is gone
	}
	asked, never := held(), held()
	h.restart()
	h.reconcile()
	h.provision()
	if n := len(h.cloud.order); n != 0 {
		t.Fatalf("%d instances launched for requests whose answers never reached HF", n)
	}
	// HF asks about one: it got the answer; launched now.
	if st := h.status(asked); st.Status != hf.StatusRunning {
		t.Fatalf("asked: %+v", st)
	}
	h.provision()
	if n := len(h.cloud.order); n != 2 {
		t.Fatalf("after HF's question: %d instances, want 2", n)
	}
	// The other, never asked about: ended unlaunched after the wait.
	h.clk.Advance(11 * time.Minute)
	h.reconcile()
	h.provision()
	if n := len(h.cloud.order); n != 2 {
		t.Fatalf("the request HF never asked about launched: %d instances", n)
	}
	if st := h.status(never); st.Status != hf.StatusCompleteWithError || !strings.Contains(st.Message, "never asked about it") {
		t.Fatalf("never asked: %+v", st)
	}
}
