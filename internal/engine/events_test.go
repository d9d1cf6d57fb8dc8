package engine

import (
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/provider"
)

// Events from the queue are hints, never proof: a state change is
// confirmed with EC2 before a machine HF holds is taken as gone; an
// interruption warning for an on-demand machine, a stale one, or one older
// than the instance is not acted on.
func TestQueueEventsAreCheckedBeforeTheyEndAMachine(t *testing.T) {
	h := newHarness(t)
	id := h.launched("OnDemand-c5", 1)
	od := h.status(id).Machines[0].MachineID
	sid := h.launched("Spot-m5", 1)
	spot := h.status(sid).Machines[0].MachineID
	now := h.clk.Now()
	apply := func(evs ...provider.Event) {
		t.Helper()
		if _, err := h.e.rc.ApplyMessages("aws", []provider.Message{{Handle: "h", ID: "m", Events: evs}}); err != nil {
			t.Fatal(err)
		}
	}
	machine := func(id string) domain.Machine {
		h.e.st.Mu.RLock()
		defer h.e.st.Mu.RUnlock()
		return *h.e.st.Machines[id]
	}

	// A "terminated" event for an instance EC2 shows running.
	apply(provider.Event{Kind: provider.EventStateChange, InstanceIDs: []string{od}, Time: now, State: "terminated"})
	if m := machine(od); m.State != "running" || !m.ReclaimedAt.IsZero() {
		t.Fatalf("a forged termination event ended a running machine: %+v", m)
	}
	// A Spot interruption warning for an on-demand machine.
	apply(provider.Event{Kind: provider.EventInterruption, InstanceIDs: []string{od}, Time: now})
	if m := machine(od); !m.InterruptAt.IsZero() {
		t.Fatal("an on-demand machine taken as interrupted")
	}
	// A stale warning (an hour old, the machine still running), and one
	// older than the instance.
	apply(provider.Event{Kind: provider.EventInterruption, InstanceIDs: []string{spot}, Time: now.Add(-time.Hour)})
	if m := machine(spot); !m.InterruptAt.IsZero() {
		t.Fatal("a stale interruption warning acted on")
	}
	// A real one: acted on, with the grace from its time.
	apply(provider.Event{Kind: provider.EventInterruption, InstanceIDs: []string{spot}, Time: now.Add(-20 * time.Second)})
	if m := machine(spot); m.InterruptAt.IsZero() {
		t.Fatal("a fresh Spot interruption warning ignored")
	}
	// The instance really terminated: the event, confirmed by EC2, ends it.
	h.cloud.mu.Lock()
	in := h.cloud.insts[od]
	in.State = "terminated"
	h.cloud.insts[od] = in
	h.cloud.mu.Unlock()
	apply(provider.Event{Kind: provider.EventStateChange, InstanceIDs: []string{od}, Time: now, State: "terminated"})
	if m := machine(od); m.State != "terminated" || m.ReclaimedAt.IsZero() {
		t.Fatalf("a confirmed termination not applied: %+v", m)
	}
}
