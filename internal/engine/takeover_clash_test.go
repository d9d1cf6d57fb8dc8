package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/ibmstate"
	"github.com/ohfp/ohfp/internal/provider"
)

// N1 of the second switch-over review: IBM's file names hosts under ids
// ohfpd already knows (its own request, HF's return of one of its hosts)
// or under ids of ohfpd's own shape (req-/ret- with a UUIDv7). Such hosts
// are never taken over: each is named in the report's Skipped, nothing is
// tagged nor recorded, ohfpd's requests answer as before, and running it
// again changes nothing.
func TestTakeOverIBMClashingIDsSkipped(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	old := h.clk.Now().Add(-time.Hour)
	own := h.launched("OnDemand-c5", 1)
	gone := h.launched("OnDemand-c5", 1)
	h.status(own)
	goneM := h.status(gone).Machines[0]
	ret := h.returnRefs(ref(goneM)).RequestID
	h.status(ret)
	fresh := func(p string) string { return p + uuid.Must(uuid.NewV7()).String() }
	newReq, newRet := fresh("req-"), fresh("ret-")
	for _, id := range []string{"i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c", "i-0000000000000000d", "i-0000000000000000e"} {
		h.ibmInstance(id, "running", old, nil)
	}
	f := ibmstate.File{Requests: []ibmstate.Request{
		{ID: own, TemplateID: "OnDemand-c5", Created: old, Machines: []ibmstate.Machine{{ID: "i-0000000000000000a", Result: "succeed", LaunchTime: old}}},
		{ID: ret, TemplateID: "OnDemand-c5", Created: old, Machines: []ibmstate.Machine{{ID: "i-0000000000000000b", Result: "succeed", LaunchTime: old}}},
		{ID: newReq, TemplateID: "OnDemand-c5", Created: old, Machines: []ibmstate.Machine{{ID: "i-0000000000000000c", Result: "succeed", LaunchTime: old}}},
		{ID: "r-0aaaaaaaaaaaaaaaa", TemplateID: "OnDemand-c5", Created: old, Machines: []ibmstate.Machine{
			{ID: "i-0000000000000000d", Result: "succeed", LaunchTime: old, ReturnID: newRet},
			{ID: "i-0000000000000000e", Result: "succeed", LaunchTime: old}}},
	}}
	for run := range 2 {
		rep, err := h.e.TakeOver(ctx, "aws", f, fastTakeOver)
		if err != nil {
			t.Fatal(err)
		}
		skipped := strings.Join(rep.Skipped, " ")
		for _, id := range []string{"i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c", "i-0000000000000000d"} {
			if !strings.Contains(skipped, id) {
				t.Errorf("run %d: %s not named in skipped %q", run, id, rep.Skipped)
			}
			if g := h.cloud.insts[id].Tags[provider.TagManagedBy]; g != "" {
				t.Errorf("run %d: %s tagged %v", run, id, h.cloud.insts[id].Tags)
			}
			if h.e.st.Machines[id] != nil {
				t.Errorf("run %d: %s recorded", run, id)
			}
		}
		if run == 0 && (rep.Adopted != 1 || rep.Tagged != 1) {
			t.Errorf("run %d: report %+v, want only i-0000000000000000e adopted", run, rep)
		}
		if run == 1 && (rep.Adopted != 0 || rep.Tagged != 0) {
			t.Errorf("run again changed something: %+v", rep)
		}
		if st := h.status(own); st.Status != "complete" || len(st.Machines) != 1 {
			t.Errorf("ohfp's own request: %+v", st)
		}
		if st := h.status(ret); len(st.Machines) != 1 || st.Machines[0].MachineID != goneM.MachineID {
			t.Errorf("HF's return: %+v", st)
		}
		for _, id := range []string{newReq, newRet} {
			if r := h.e.st.Requests[id]; r != nil {
				t.Errorf("run %d: id of ohfp's shape %s recorded: %+v", run, id, r)
			}
		}
		if h.e.st.Requests[own].TakenOver || h.e.st.Requests[ret].TakenOver {
			t.Errorf("ohfp's own requests marked taken over")
		}
	}
}

// N1 (rebuild): an instance tagged with a return id as its request id
// (an older ohfpd's takeover wrote it) is never rebuilt as an acquire
// request, and so never terminated as one HF never learned of.
func TestRebuildNeverMakesAReturnAnAcquire(t *testing.T) {
	h := newHarness(t)
	old := h.clk.Now().Add(-time.Hour)
	retID := "ret-" + uuid.Must(uuid.NewV7()).String()
	h.ibmInstance("i-0000000000000000a", "running", old, map[string]string{
		provider.TagManagedBy: "test", provider.TagProvider: "aws", provider.TagRequestID: retID, provider.TagTemplateID: "OnDemand-c5", provider.TagTakenOver: "ibm"})
	h.loseStore()
	h.restart()
	h.reconcile()
	if r := h.e.st.Requests[retID]; r != nil && r.Kind == domain.KindAcquire {
		t.Fatalf("return id rebuilt as an acquire request: %+v", r)
	}
	h.housekeeping(10 * time.Minute)
	if s := h.cloud.insts["i-0000000000000000a"].State; s != "running" {
		t.Errorf("instance tagged with a return id as request id is %s", s)
	}
}
