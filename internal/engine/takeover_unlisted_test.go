package engine

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/ibmstate"
	"github.com/ohfp/ohfp/internal/provider"
)

// hfHolds is HF's getReturnRequests call listing the given instances
// (every host HF holds), followed by a pass of ohfpd's, every 30 s for d.
func (h *harness) hfHolds(d time.Duration, ids ...string) {
	h.t.Helper()
	var refs []string
	for _, id := range ids {
		refs = append(refs, fmt.Sprintf(`{"name": "h-%s", "machineId": %q}`, id, id))
	}
	for end := h.clk.Now().Add(d); h.clk.Now().Before(end); {
		h.clk.Advance(30 * time.Second)
		if _, err := hfraw(h.e).GetReturnRequests(nil, []byte(`{"machines": [`+strings.Join(refs, ",")+`]}`)); err != nil {
			h.t.Fatal(err)
		}
		h.reconcile()
		h.provision()
		h.cloud.settle()
	}
}

// unlistedFleet is an IBM EC2 Fleet of four running instances, of which
// IBM's file lists two (the second returned by HF through IBM's plugin).
func unlistedFleet(t *testing.T) (*harness, *fleetCloud, ibmstate.File) {
	h, fc := newFleetHarness(t)
	old := h.clk.Now().Add(-time.Hour)
	fc.fleets["fleet-0ibm"] = &fakeFleet{id: "fleet-0ibm", target: 4, spec: provider.LaunchSpec{Template: h.tpls[0]}}
	for _, id := range []string{"i-00000000000000f01", "i-00000000000000f02", "i-00000000000000f03", "i-00000000000000f04"} {
		h.ibmInstance(id, "running", old, map[string]string{"aws:ec2:fleet-id": "fleet-0ibm"})
		h.cloud.insts[id].Handle = "fleet-0ibm"
	}
	f := ibmstate.File{Requests: []ibmstate.Request{{ID: "fleet-0ibm", TemplateID: "OnDemand-c5", Created: old, Machines: []ibmstate.Machine{
		{ID: "i-00000000000000f01", Result: "succeed", LaunchTime: old},
		{ID: "i-00000000000000f02", Result: "succeed", LaunchTime: old, ReturnID: "remove-4242-1799990000"}}}}}
	rep, err := h.e.TakeOver(context.Background(), "aws", f, fastTakeOver)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.FromFleets) != 2 {
		t.Fatalf("report %+v", rep)
	}
	return h, fc, f
}

// N2 of the second switch-over review: instances of a taken-over fleet
// that IBM's file does not list are hosts HF may or may not hold. The
// claim rule applies to them: one HF's getReturnRequests calls leave out
// for claim_timeout (at least three calls, in one process) is terminated
// (its fleet's capacity lowered), one they list is HF's and kept; a
// restart starts the evidence over. A host the file lists is claimed:
// never terminated by the rule, even when HF leaves it out.
func TestTakeOverIBMUnlistedFleetInstancesClaimRule(t *testing.T) {
	h, fc, _ := unlistedFleet(t)
	// HF holds f04 (it learned of it somehow) and the listed f01; it
	// leaves f01 out (e.g. a host it lost track of): f01 is claimed all
	// the same.
	h.hfHolds(20*time.Minute, "i-00000000000000f04")
	if s := h.cloud.insts["i-00000000000000f03"].State; s != "running" {
		t.Fatalf("unlisted f03 %s before claim_timeout", s)
	}
	h.restartWith(fc) // the evidence starts over
	h.hfHolds(20*time.Minute, "i-00000000000000f04")
	if s := h.cloud.insts["i-00000000000000f03"].State; s != "running" {
		t.Fatalf("unlisted f03 %s: a restart must start the evidence over", s)
	}
	h.hfHolds(15*time.Minute, "i-00000000000000f04")
	if s := h.cloud.insts["i-00000000000000f03"].State; s != "terminated" {
		t.Errorf("unlisted f03 HF never held is %s", s)
	}
	for _, id := range []string{"i-00000000000000f01", "i-00000000000000f04"} {
		if s := h.cloud.insts[id].State; s != "running" {
			t.Errorf("%s (held by HF) is %s", id, s)
		}
	}
	if s := h.cloud.insts["i-00000000000000f02"].State; s != "terminated" {
		t.Errorf("returned f02 is %s", s)
	}
	if g := fc.fleets["fleet-0ibm"].target; g != 2 {
		t.Errorf("fleet target %d, want 2 (lowered for f02 and f03)", g)
	}
	if st := h.status("fleet-0ibm"); len(st.Machines) != 4 {
		t.Errorf("IBM's request: %+v", st)
	}
}

// N3 of the second switch-over review: the store is lost and everything
// is rebuilt from the cloud's tags. The taken-over request is claimed (HF
// learned of it through IBM's plugin: the ohfp:taken-over=ibm tag says
// so): a host the file listed that HF leaves out is never terminated;
// the fleet's instances the file did not list follow the same claim rule
// as after the takeover.
func TestTakeOverIBMRebuildKeepsTheClaim(t *testing.T) {
	h, fc, _ := unlistedFleet(t)
	h.loseStore()
	h.restartWith(fc)
	h.reconcile()
	if r := h.e.st.Requests["fleet-0ibm"]; r == nil || r.AwaitingClaim || !r.TakenOver {
		t.Fatalf("rebuilt taken-over request: %+v (HF learned of it through IBM's plugin)", r)
	}
	h.hfHolds(40*time.Minute, "i-00000000000000f04")
	if s := h.cloud.insts["i-00000000000000f03"].State; s != "terminated" {
		t.Errorf("unlisted f03 HF never held is %s", s)
	}
	for _, id := range []string{"i-00000000000000f01", "i-00000000000000f04"} {
		if s := h.cloud.insts[id].State; s != "running" {
			t.Errorf("%s is %s", id, s)
		}
	}
}

// N5c of the second switch-over review: the takeover itself does not
// log its requests as "rebuilt from cloud tags" (a warning meant for a
// lost store or a failover); a rebuild from tags still does.
func TestTakeOverIBMNoRebuiltWarning(t *testing.T) {
	h, fc := newFleetHarness(t)
	var buf bytes.Buffer
	h.e.st.Log = slog.New(slog.NewTextHandler(&buf, nil))
	old := h.clk.Now().Add(-time.Hour)
	h.ibmInstance("i-0000000000000000a", "running", old, nil)
	f := ibmstate.File{Requests: []ibmstate.Request{{ID: "r-0aaaaaaaaaaaaaaaa", TemplateID: "OnDemand-c5", Created: old,
		Machines: []ibmstate.Machine{{ID: "i-0000000000000000a", Result: "succeed", LaunchTime: old}}}}}
	if _, err := h.e.TakeOver(context.Background(), "aws", f, fastTakeOver); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "rebuilt a request from cloud tags") {
		t.Errorf("takeover logged: %s", buf.String())
	}
	h.loseStore()
	h.restartWith(fc)
	buf.Reset()
	h.e.st.Log = slog.New(slog.NewTextHandler(&buf, nil))
	h.reconcile()
	if !strings.Contains(buf.String(), "rebuilt a request from cloud tags") {
		t.Errorf("a rebuild from tags logged: %s", buf.String())
	}
}
