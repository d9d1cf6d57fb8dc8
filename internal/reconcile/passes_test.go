package reconcile

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/state"
)

// Listing: an instance the listing shows running with its address makes
// its machine succeed and its request complete, on disk too; while it
// was starting the next pass came soon, once all is done it comes late.
func TestPassListingFoldsAndFinishes(t *testing.T) {
	w := newWorld(t)
	r := w.request("req-1", 1)
	in := inst("i-1", "req-1", provider.StatePending, "")
	w.machine(r, in)
	w.cloud.put(in)
	if next := w.pass(); next != w.st.Opts.ActiveInterval {
		t.Errorf("next pass in %v while a machine starts, want the active interval", next)
	}
	if st, res := resultOf(w, "i-1"); st != domain.StatePending || res != hf.ResultExecuting {
		t.Fatalf("pending instance: %s %s", st, res)
	}

	w.cloud.put(inst("i-1", "req-1", provider.StateRunning, "10.0.0.1"))
	w.clk.Advance(time.Minute)
	if next := w.pass(); next != w.st.Opts.IdleInterval {
		t.Errorf("next pass in %v with nothing in flight, want the idle interval", next)
	}
	if st, res := resultOf(w, "i-1"); st != domain.StateRunning || res != hf.ResultSucceed {
		t.Fatalf("running instance: %s %s, want running succeed", st, res)
	}
	d := w.onDisk(t)
	if got := d.Requests["req-1"]; got == nil || got.Status != hf.StatusComplete {
		t.Errorf("request on disk %+v, want complete", got)
	}
	if m := d.Machines["i-1"]; m == nil || m.Result != hf.ResultSucceed || m.PrivateIP != "10.0.0.1" {
		t.Errorf("machine on disk %+v, want succeed with its address", m)
	}
}

// Timeouts: a machine pending longer than the provider's pending timeout
// is given up on: failed, doomed for termination, with a message saying
// why; one pending less long is left alone.
func TestPassPendingTimeout(t *testing.T) {
	w := newWorld(t)
	r := w.request("req-1", 2)
	old := inst("i-old", "req-1", provider.StatePending, "")
	young := inst("i-young", "req-1", provider.StatePending, "")
	young.LaunchTime = t0.Add(100 * time.Second)
	w.machine(r, old)
	w.machine(r, young)
	w.cloud.put(old)
	w.cloud.put(young)
	w.clk.Advance(181 * time.Second)
	w.pass()
	w.st.Mu.RLock()
	defer w.st.Mu.RUnlock()
	m := w.st.Machines["i-old"]
	if m.Result != hf.ResultFail || !m.Doomed || !strings.Contains(m.Message, "pending timeout") {
		t.Errorf("pending 181 s: %+v; want failed, doomed, 'pending timeout'", m)
	}
	if y := w.st.Machines["i-young"]; y.Result != hf.ResultExecuting || y.Doomed {
		t.Errorf("pending 81 s: %+v; want left alone", y)
	}
}

// Vanished machines: a machine a full listing no longer shows is described
// by id, whatever its tags; only one the cloud does not know at all is
// taken as gone (failed if it never ran, reclaimed outside HF). One that
// lost the cluster's tag is still HF's machine and is observed as usual.
func TestPassVanishedConfirmedByID(t *testing.T) {
	w := newWorld(t)
	r := w.request("req-1", 2)
	gone := inst("i-gone", "req-1", provider.StateRunning, "10.0.0.1")
	retagged := inst("i-retag", "req-1", provider.StateRunning, "10.0.0.2")
	w.machine(r, gone)
	w.machine(r, retagged)
	w.cloud.put(gone)
	w.cloud.put(retagged)
	w.pass() // both seen

	w.cloud.mu.Lock()
	delete(w.cloud.insts, "i-gone")
	retagged.Tags[provider.TagManagedBy] = "someone-else"
	w.cloud.insts["i-retag"] = retagged
	w.cloud.mu.Unlock()
	w.clk.Advance(w.st.Opts.IdleInterval) // a full listing is due
	w.pass()
	if !slices.Contains(w.cloud.called(), "Describe  i-gone,i-retag") {
		t.Errorf("calls %q: want the missing ones described by id, with no owner", w.cloud.called())
	}
	w.st.Mu.RLock()
	defer w.st.Mu.RUnlock()
	if m := w.st.Machines["i-gone"]; m.State != domain.StateGone || m.ReclaimedAt.IsZero() || m.Result != hf.ResultSucceed {
		t.Errorf("unknown to the cloud: %+v; want gone, reclaimed, still succeed", m)
	}
	if m := w.st.Machines["i-retag"]; m.State != domain.StateRunning || !m.ReclaimedAt.IsZero() {
		t.Errorf("retagged: %+v; want kept running, not reclaimed", m)
	}
}

// Vanished machines: one just launched that no listing has shown yet is
// not described, let alone taken as gone: EC2's listing may lag.
func TestPassJustLaunchedNotMissing(t *testing.T) {
	w := newWorld(t)
	r := w.request("req-1", 1)
	w.machine(r, inst("i-new", "req-1", provider.StatePending, ""))
	w.pass()
	for _, c := range w.cloud.called() {
		if strings.HasPrefix(c, "Describe ") && strings.Contains(c, "i-new") {
			t.Errorf("a machine within the visibility grace was described as missing: %q", c)
		}
	}
	if st, _ := resultOf(w, "i-new"); st != domain.StatePending {
		t.Errorf("state %s, want still pending", st)
	}
}

// Adoption: an instance with the cluster's tags whose request memory
// lacks (a lost store) rebuilds the request from its tags, awaiting HF's
// claim; one of a finished request is doomed (HF will never hear of it).
func TestPassAdoption(t *testing.T) {
	w := newWorld(t)
	w.cloud.put(inst("i-lost", "req-lost", provider.StateRunning, "10.0.0.3"))
	done := w.request("req-done", 1)
	done.Status, done.FinishedAt = hf.StatusComplete, t0
	w.cloud.put(inst("i-late", "req-done", provider.StateRunning, "10.0.0.4"))
	w.pass()
	w.st.Mu.RLock()
	defer w.st.Mu.RUnlock()
	r := w.st.Requests["req-lost"]
	if r == nil || !r.Rebuilt || !r.AwaitingClaim || r.Kind != domain.KindAcquire || !slices.Equal(r.MachineIDs, []string{"i-lost"}) {
		t.Fatalf("rebuilt request %+v", r)
	}
	if m := w.st.Machines["i-lost"]; m.Result != hf.ResultSucceed {
		t.Errorf("adopted running machine: %+v, want succeed", m)
	}
	if m := w.st.Machines["i-late"]; m == nil || !m.Doomed || m.Result != hf.ResultFail {
		t.Errorf("late instance of a finished request: %+v; want failed and doomed", m)
	}
}

// Listing plan: between full listings (one per idle interval) a pass
// describes only what is in flight, by id and by request.
func TestPassBusyDescribesInFlight(t *testing.T) {
	w := newWorld(t)
	r := w.request("req-1", 1)
	in := inst("i-1", "req-1", provider.StatePending, "")
	w.machine(r, in)
	w.cloud.put(in)
	w.pass()
	w.clk.Advance(w.st.Opts.ActiveInterval)
	w.pass()
	calls := w.cloud.called()
	if len(calls) < 2 || calls[0] != "List" || calls[len(calls)-1] != "Describe c1 i-1" {
		t.Errorf("calls %q: want a full listing, then a describe of the pending machine only", calls)
	}
}

// Interruptions: the Spot requests of live Spot machines are asked every
// pass; an interruption notice is recorded at the cloud's time, durably,
// and asked no more.
func TestPassSpotInterruption(t *testing.T) {
	w := newWorld(t)
	r := w.request("req-1", 1)
	in := inst("i-1", "req-1", provider.StateRunning, "10.0.0.1")
	in.Spot, in.SpotRequestID = true, "sir-1"
	w.machine(r, in)
	w.cloud.put(in)
	notice := t0.Add(10 * time.Second)
	w.cloud.spot = []provider.SpotRequest{{ID: "sir-1", InstanceID: "i-1", State: "active", StatusCode: "instance-terminated-no-capacity", StatusUpdate: notice, Interrupted: true}}
	w.pass()
	if m := w.onDisk(t).Machines["i-1"]; m == nil || !m.InterruptAt.Equal(notice) {
		t.Fatalf("machine on disk %+v; want interrupted at the notice's time", m)
	}
	n := len(w.cloud.called())
	w.clk.Advance(w.st.Opts.ActiveInterval)
	w.pass()
	for _, c := range w.cloud.called()[n:] {
		if strings.HasPrefix(c, "SpotRequests") {
			t.Errorf("an interrupted machine's Spot request was asked again: %q", c)
		}
	}
}

// Fleets: a fleet that closed short of its target is capped at what
// arrived and its request ends with the shortfall saying why; once its
// machines are all gone the fleet is deleted, once. A handle the cloud
// does not show yet right after the launch is left alone.
func TestPassFleets(t *testing.T) {
	fc := &fleetCloud{status: map[string]provider.FleetStatus{}}
	w := newWorldOn(t, fc)
	r := w.request("req-1", 2)
	r.Handle = "fleet-1"
	in := inst("i-1", "req-1", provider.StateRunning, "10.0.0.1")
	in.Handle = "fleet-1"
	w.machine(r, in)
	w.cloud.put(in)
	young := w.request("req-2", 1)
	young.Handle = "fleet-2" // not known to the cloud yet

	fc.mu.Lock()
	fc.status["fleet-1"] = provider.FleetStatus{Handle: "fleet-1", Target: 2, Fulfilled: 1, Closed: true, Errors: []string{"InsufficientInstanceCapacity: none left"}}
	fc.mu.Unlock()
	w.pass()
	calls := w.cloud.called()
	if !slices.Contains(calls, "Cap fleet-1 1") || slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, "Cap fleet-2") }) {
		t.Errorf("calls %q: want fleet-1 capped at 1 unit, fleet-2 left alone", calls)
	}
	got := w.onDisk(t).Requests["req-1"]
	if got == nil || !got.HandleCapped || got.Status != hf.StatusCompleteWithError || !strings.Contains(got.Shortfall, "closed before reaching its target: InsufficientInstanceCapacity") {
		t.Fatalf("request on disk %+v; want capped, complete_with_error, the shortfall with the cloud's reason", got)
	}
	if y := w.st.Requests["req-2"]; y.HandleCapped || y.Final() {
		t.Errorf("young fleet: %+v; want left waiting", y)
	}

	w.cloud.put(inst("i-1", "req-1", provider.StateTerminated, "10.0.0.1"))
	w.clk.Advance(w.st.Opts.IdleInterval)
	w.pass()
	w.clk.Advance(w.st.Opts.IdleInterval)
	w.pass()
	deletes := 0
	for _, c := range w.cloud.called() {
		if c == "Delete fleet-1" {
			deletes++
		}
	}
	if deletes != 1 || !w.onDisk(t).Requests["req-1"].HandleDeleted {
		t.Errorf("fleet-1 deleted %d times (calls %q); want once, recorded", deletes, w.cloud.called())
	}
}

// A cancelled request whose fleet EC2 does not show yet (eventual
// consistency): its count is not known, so it is not capped at a guess
// (0); once the cloud shows it, it is capped at the cloud's count, and a
// cap that fails is tried again rather than taken as done.
func TestPassCancelledFleetNotVisibleYet(t *testing.T) {
	fc := &fleetCloud{status: map[string]provider.FleetStatus{}}
	w := newWorldOn(t, fc)
	r := w.request("req-1", 4)
	r.Handle = "fleet-1"
	w.st.Mu.Lock()
	if err := w.st.AddNoteLocked("req-1", state.Note{At: t0, Who: "uid 0 (root)", Action: state.NoteCancel, Text: "cancelled"}); err != nil {
		t.Fatal(err)
	}
	w.st.Mu.Unlock()
	w.pass()
	if slices.ContainsFunc(w.cloud.called(), func(c string) bool { return strings.HasPrefix(c, "Cap") }) {
		t.Fatalf("calls %q: a fleet not visible yet is not capped", w.cloud.called())
	}
	fc.mu.Lock()
	fc.status["fleet-1"] = provider.FleetStatus{Handle: "fleet-1", Target: 4, Fulfilled: 3}
	fc.capErr = &provider.Error{Op: "ModifyFleet", Code: "InvalidFleetId.NotFound", Kind: provider.NotFound}
	fc.mu.Unlock()
	w.clk.Advance(time.Second)
	w.pass()
	if got := w.st.Requests["req-1"]; got.HandleCapped {
		t.Fatalf("a cap the cloud refused is taken as done: %+v", got)
	}
	fc.mu.Lock()
	fc.capErr = nil
	fc.mu.Unlock()
	w.clk.Advance(time.Second)
	w.pass()
	if !slices.Contains(w.cloud.called(), "Cap fleet-1 3") {
		t.Fatalf("calls %q: want the fleet capped at the 3 units the cloud counts", w.cloud.called())
	}
	if got := w.onDisk(t).Requests["req-1"]; !got.HandleCapped || got.Final() {
		t.Fatalf("on disk %+v: capped, and waiting for the 3 units to show", got)
	}
}
