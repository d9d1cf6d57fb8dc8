package engine

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/hf"
)

// peek reads a request's HF status without being HF: it claims nothing.
func (h *harness) peek(id string) hf.RequestStatus {
	h.t.Helper()
	shown, err := h.e.Show(id) // the operator's read: no claim
	if err != nil || shown.Status == nil {
		h.t.Fatalf("peek %s: %v", id, err)
	}
	return *shown.Status
}

// holds makes HF's getReturnRequests call listing the hosts of the given
// requests (every host HF holds, as HF does), and returns how many hosts
// the answer says the cloud is taking back.
func (h *harness) holds(ids ...string) int {
	h.t.Helper()
	type ref struct {
		Name      string `json:"name"`
		MachineID string `json:"machineId"`
	}
	in := struct {
		Machines []ref `json:"machines"`
	}{Machines: []ref{}}
	for _, id := range ids {
		for _, m := range h.peek(id).Machines {
			in.Machines = append(in.Machines, ref{Name: m.Name, MachineID: m.MachineID})
		}
	}
	b, _ := json.Marshal(in)
	rep, err := hfraw(h.e).GetReturnRequests(nil, b)
	if err != nil {
		h.t.Fatal(err)
	}
	return len(rep.Requests)
}

// housekeeping runs what HF and ohfpd do for d: HF's getReturnRequests
// every 30 s listing the hosts of held, and a reconcile pass after each.
func (h *harness) housekeeping(d time.Duration, held ...string) {
	h.t.Helper()
	for end := h.clk.Now().Add(d); h.clk.Now().Before(end); {
		h.clk.Advance(30 * time.Second)
		if n := h.holds(held...); n != 0 {
			h.t.Fatalf("getReturnRequests says %d held hosts are being taken back", n)
		}
		h.reconcile()
		h.provision()
	}
}

// launched makes a request of n machines of tpl and brings them up (the
// launch, the cloud, one pass), without HF asking about it.
func (h *harness) launched(tpl string, n int) string {
	h.t.Helper()
	id := h.request(tpl, n)
	h.provision()
	h.cloud.settle()
	h.reconcile()
	return id
}

// idle runs d of ohfpd's passes, every 30 s, with no call from HF.
func (h *harness) idle(d time.Duration) {
	for end := h.clk.Now().Add(d); h.clk.Now().Before(end); {
		h.clk.Advance(30 * time.Second)
		h.reconcile()
		h.provision()
	}
}

func (h *harness) terminated() int {
	h.cloud.mu.Lock()
	defer h.cloud.mu.Unlock()
	n := 0
	for _, ids := range h.cloud.terms {
		n += len(ids)
	}
	return n
}

// A request whose answer was lost (HF never asks about it) has its
// machines terminated once HF's own getReturnRequests calls, which list
// every host HF holds, have left them out for the claim timeout; the
// request HF knows is untouched.
func TestUnclaimedRequestIsCleanedUp(t *testing.T) {
	h := newHarness(t)
	lost := h.request("OnDemand-c5", 2) // its answer never reached HF
	kept := h.request("OnDemand-c5", 1)
	h.provision()
	h.cloud.settle()
	h.status(kept) // HF asks about the one it knows
	h.reconcile()
	h.housekeeping(29*time.Minute, kept)
	if n := h.terminated(); n != 0 {
		t.Fatalf("terminated %d machines before the claim timeout", n)
	}
	h.housekeeping(3*time.Minute, kept)
	if len(h.cloud.terms) != 1 || len(h.cloud.terms[0]) != 2 {
		t.Fatalf("the unclaimed request's 2 machines must be terminated: %v", h.cloud.terms)
	}
	if st := h.peek(lost); !strings.Contains(st.Message, "HF never learned of this request") {
		t.Fatalf("unclaimed: %+v", st)
	}
	// Should HF ask after all, it is not told the terminated hosts are
	// usable (an operator's test found complete / succeed).
	if st := h.status(lost); st.Status != hf.StatusCompleteWithError || len(st.Machines) != 2 ||
		st.Machines[0].Result != hf.ResultFail || !strings.Contains(st.Machines[0].Message, "never asked") {
		t.Fatalf("HF asking late about the unclaimed request: %+v", st)
	}
	if st := h.status(kept); st.Status != hf.StatusComplete || strings.Contains(st.Message, "never learned") {
		t.Fatalf("claimed: %+v", st)
	}
}

// Issue 12, case 1: a plain restart must not make a request HF knows look
// unclaimed. HF polled the request to complete, ohfpd restarted, and HF,
// as it does, never asks about a completed request again: it only calls
// getReturnRequests. Nothing is ever terminated.
func TestRestartNeverUnclaimsARequestHFKnows(t *testing.T) {
	h := newHarness(t)
	id := h.launched("OnDemand-c5", 3)
	if st := h.status(id); st.Status != hf.StatusComplete {
		t.Fatalf("not complete: %+v", st)
	}
	h.restart() // SIGTERM and start: memory is gone, the store stays
	h.reconcile()
	h.housekeeping(2*time.Hour, id)
	if n := h.terminated(); n != 0 {
		t.Fatalf("a restart made ohfpd terminate %d machines HF is using", n)
	}
	// And with an HF that never calls getReturnRequests at all.
	h.restart()
	h.idle(2 * time.Hour)
	if n := h.terminated(); n != 0 {
		t.Fatalf("terminated %d machines HF is using", n)
	}
}

// HF listing a host in getReturnRequests proves it holds it, even when
// the claim from its getRequestStatus was never recorded (here: HF never
// polled, e.g. the poll's claim was lost with a crash): the request is
// claimed and nothing is terminated.
func TestGetReturnRequestsClaimsTheHostsHFHolds(t *testing.T) {
	h := newHarness(t)
	id := h.launched("OnDemand-c5", 2)
	h.housekeeping(2*time.Hour, id)
	if n := h.terminated(); n != 0 {
		t.Fatalf("terminated %d machines HF lists as held", n)
	}
	h.e.st.Mu.RLock()
	awaiting := h.e.st.Requests[id].AwaitingClaim
	h.e.st.Mu.RUnlock()
	if awaiting {
		t.Fatal("listing its hosts did not claim the request")
	}
	h.restart() // the claim is durable
	h.housekeeping(time.Hour)
	if n := h.terminated(); n != 0 {
		t.Fatalf("terminated %d machines after a restart", n)
	}
}

// The evidence that HF never learned of a request is counted in the
// process that sees it: a restart starts it again (it never shortens it),
// and an HF that never calls getReturnRequests gives none.
func TestUnclaimedEvidenceStartsAgainAfterARestart(t *testing.T) {
	h := newHarness(t)
	lost := h.launched("OnDemand-c5", 1)
	h.idle(2 * time.Hour) // without getReturnRequests: no evidence
	if n := h.terminated(); n != 0 {
		t.Fatalf("terminated %d machines without any evidence from HF", n)
	}
	h.housekeeping(20 * time.Minute)
	h.restart()
	h.reconcile()
	h.housekeeping(20 * time.Minute)
	if n := h.terminated(); n != 0 {
		t.Fatalf("the evidence of two processes was added up: %d terminated", n)
	}
	h.housekeeping(12 * time.Minute)
	if n := h.terminated(); n != 1 {
		t.Fatalf("after 32 minutes of evidence in one process: %d terminated, want 1", n)
	}
	if st := h.peek(lost); !strings.Contains(st.Message, "HF never learned") {
		t.Fatalf("message: %q", st.Message)
	}
}

// Issue 12, case 6: a requestMachines whose answer could not be delivered
// (HF gave up on the call, or was killed) launches nothing, and nothing is
// launched before the answer is out.
func TestUndeliveredRequestLaunchesNothing(t *testing.T) {
	h := newHarness(t)
	in := []byte(`{"template":{"templateId":"OnDemand-c5","machineCount":2}}`)
	rep, delivered, err := hfraw(h.e).RequestMachinesHeld(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	h.provision()
	h.reconcile()
	if h.cloud.launches != 0 {
		t.Fatalf("launched before the answer was delivered: %d", h.cloud.launches)
	}
	delivered(false)
	h.provision()
	h.reconcile()
	h.provision()
	if h.cloud.launches != 0 {
		t.Fatalf("launched for an answer HF never got: %d", h.cloud.launches)
	}
	st := h.peek(rep.RequestID)
	if st.Status != hf.StatusCompleteWithError || !strings.Contains(st.Message, "could not be delivered") {
		t.Fatalf("undelivered request: %s %q", st.Status, st.Message)
	}
	h.restart() // and it stays so
	h.provision()
	h.reconcile()
	if h.cloud.launches != 0 || h.peek(rep.RequestID).Status != hf.StatusCompleteWithError {
		t.Fatalf("after a restart: %d launches, %+v", h.cloud.launches, h.peek(rep.RequestID))
	}

	rep2, delivered2, err := hfraw(h.e).RequestMachinesHeld(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	delivered2(true)
	h.provision()
	if h.cloud.launches != 1 {
		t.Fatalf("a delivered request launches: %d", h.cloud.launches)
	}
	delivered2(false) // a late second word changes nothing
	h.cloud.settle()
	h.reconcile()
	if st := h.status(rep2.RequestID); st.Status != hf.StatusComplete {
		t.Fatalf("delivered request: %+v", st)
	}
}

// Found by an operator's test of issue 12: HF's claim of a request could
// not be written (full disk), HF was shown the machines anyway, ohfpd
// crashed before space returned, and after the restart the request looked
// unclaimed. Now HF is not shown the machines until the claim is on disk.
func TestClaimNotWrittenWithholdsMachines(t *testing.T) {
	h := newHarness(t)
	id := h.launched("OnDemand-c5", 2)
	h.st.FailWrites(errors.New("state directory full"))
	st := h.status(id)
	if st.Status != hf.StatusRunning || len(st.Machines) != 0 || !strings.Contains(st.Message, "cannot yet record") {
		t.Fatalf("with the claim unwritten HF saw %s with %d machines: %q", st.Status, len(st.Machines), st.Message)
	}
	h.housekeeping(2 * time.Hour) // HF does not hold them yet: no evidence counts against an asked request
	if n := h.terminated(); n != 0 {
		t.Fatalf("terminated %d machines of a request HF asked about", n)
	}
	h.st.FailWrites(nil)
	if st := h.status(id); st.Status != hf.StatusComplete || len(st.Machines) != 2 {
		t.Fatalf("once the claim is written: %+v", st)
	}
	h.restart()
	h.reconcile()
	h.housekeeping(2*time.Hour, id)
	if n := h.terminated(); n != 0 {
		t.Fatalf("after a restart %d machines HF holds were terminated", n)
	}
}
