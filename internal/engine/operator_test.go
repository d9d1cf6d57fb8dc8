package engine

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/service"
)

const root = "uid 0 (root)"

// A launch AWS keeps throttling retries for up to 10 minutes; ohfp cancel
// stops it at once, for good (after a restart too), HF sees the request
// end with the reason, and the request's history says who did it.
func TestCancelStopsARetryingLaunch(t *testing.T) {
	h := newHarness(t)
	throttled := &provider.Error{Op: "RunInstances", Code: "RequestLimitExceeded", Message: "Request limit exceeded.", Kind: provider.Throttled}
	h.cloud.launchErr = []error{throttled, throttled, throttled}
	id := h.request("OnDemand-c5", 2)
	h.provision()
	if st := h.e.StatusReport(); st.NextRetry.IsZero() || st.CloudNote != "AWS throttling" {
		t.Fatalf("a throttled launch: next retry %v, cloud note %q", st.NextRetry, st.CloudNote)
	}
	ans, err := h.e.Cancel(id, false, root)
	if err != nil || !strings.Contains(ans.Message, "its launch will not be made") || !strings.Contains(ans.Message, "retried after 1 attempt)") {
		t.Fatalf("cancel: %+v, %v", ans, err)
	}
	h.restart()
	h.clk.Advance(5 * time.Minute)
	h.provision()
	h.reconcile()
	if h.cloud.launches != 1 {
		t.Fatalf("%d launches after the cancel, want the 1 before it", h.cloud.launches)
	}
	st := h.status(id)
	if st.Status != hf.StatusCompleteWithError || !strings.Contains(st.Message, "cancelled by the operator (uid 0 (root))") {
		t.Fatalf("HF's status after the cancel: %+v", st)
	}
	if rep := h.e.StatusReport(); !rep.NextRetry.IsZero() {
		t.Fatalf("no retry waits, yet status says %v", rep.NextRetry)
	}
	shown, err := h.e.Show(id)
	if err != nil || len(shown.Request.History) != 1 || shown.Request.History[0].Who != root || shown.Request.History[0].Action != "cancel" {
		t.Fatalf("history after a restart: %+v, %v", shown.Request, err)
	}
	var re *service.RefusedError
	if _, err := h.e.Cancel(id, false, root); !errors.As(err, &re) || !strings.Contains(err.Error(), "already finished") {
		t.Fatalf("cancelling twice: %v", err)
	}
	var nf *service.NotFoundError
	if _, err := h.e.Cancel("req-nope", false, root); !errors.As(err, &nf) {
		t.Fatalf("unknown request: %v", err)
	}
}

// A launch call under way when the operator cancels: what it brings is
// terminated, not left running behind HF's back.
func TestCancelDuringTheLaunchCall(t *testing.T) {
	h := newHarness(t)
	id := h.request("OnDemand-c5", 2)
	h.cloud.onLaunch = func() {
		h.cloud.onLaunch = nil
		if _, err := h.e.Cancel(id, false, root); err != nil {
			t.Error(err)
		}
	}
	h.provision() // the launch; the cancel lands during its call
	h.provision()
	if got := len(h.cloud.terms); got != 1 || len(h.cloud.terms[0]) != 2 {
		t.Fatalf("terminations %v: the 2 instances launched after the cancel must go", h.cloud.terms)
	}
}

// ohfp return: a ret- request recorded durably, the machine terminated as
// for HF, HF told by getReturnRequests that the host is taken back (no
// grace); unknown machines refuse the whole action.
func TestOperatorReturn(t *testing.T) {
	h := newHarness(t)
	id := h.request("OnDemand-c5", 2)
	h.provision()
	h.cloud.settle()
	h.reconcile()
	ms := h.status(id).Machines
	var re *service.RefusedError
	if _, err := h.e.Return([]string{ms[0].MachineID, "i-nope"}, "", root); !errors.As(err, &re) || !strings.Contains(err.Error(), "i-nope") {
		t.Fatalf("an unknown machine: %v", err)
	}
	ans, err := h.e.Return([]string{ms[0].Name}, "", root)
	if err != nil || len(ans.ReturnIDs) != 1 || !strings.HasPrefix(ans.ReturnIDs[0], "ret-") || !strings.Contains(ans.Message, "Returning 1 machine.") {
		t.Fatalf("return: %+v, %v", ans, err)
	}
	h.restart() // durable: the return and its note survive
	rr, _ := hfraw(h.e).GetReturnRequests(nil, []byte(`{"machines":[{"name":"`+ms[0].Name+`","machineId":"`+ms[0].MachineID+`"},{"name":"`+ms[1].Name+`","machineId":"`+ms[1].MachineID+`"}]}`))
	if len(rr.Requests) != 1 || rr.Requests[0].Machine != ms[0].Name || rr.Requests[0].GracePeriod != 0 {
		t.Fatalf("HF must be told the operator took %s back: %+v", ms[0].Name, rr)
	}
	// Finding 8: the operator, not the cloud, took it back.
	if strings.Contains(rr.Message, "by the cloud") || !strings.Contains(rr.Message, "returned by the operator") {
		t.Fatalf("getReturnRequests' message %q: the operator returned it", rr.Message)
	}
	h.provision()
	if len(h.cloud.terms) != 1 || h.cloud.terms[0][0] != ms[0].MachineID {
		t.Fatalf("terminations %v", h.cloud.terms)
	}
	shown, _ := h.e.Show(ans.ReturnIDs[0])
	if len(shown.Request.History) != 1 || shown.Request.History[0].Action != "return" {
		t.Fatalf("history of the return: %+v", shown.Request.History)
	}
	// --request: the rest of the request.
	ans2, err := h.e.Return(nil, id, root)
	if err != nil || !strings.Contains(ans2.Message, "Returning 1 machine.") {
		t.Fatalf("return --request: %+v, %v", ans2, err)
	}
	// Finding 4: both returns are in the acquire request's history.
	shown, _ = h.e.Show(id)
	if len(shown.Request.History) != 2 || !strings.Contains(shown.Request.History[0].Text, ans.ReturnIDs[0]) || !strings.Contains(shown.Request.History[1].Text, ans2.ReturnIDs[0]) ||
		shown.Request.History[0].Who != root || shown.Request.History[0].Action != "return" {
		t.Fatalf("the acquire request's history: %+v", shown.Request.History)
	}
	// Finding 10: once its machines are gone, its message says so, not
	// "2 of 2 units running" alone.
	h.provision()
	h.cloud.settle()
	h.reconcile()
	h.cloud.settle()
	h.clk.Advance(time.Minute)
	h.reconcile()
	if st := h.status(id); st.Status != hf.StatusComplete || !strings.Contains(st.Message, "since then 2 returned and terminated") {
		t.Fatalf("status of a request whose machines were all returned: %+v", st)
	}
}

// A launch whose answer was lost (RunInstances ran): the cancel must not
// say nothing was launched, the request's message must tell what became
// of what came, a second cancel must not point at machines there are
// none of, and cancel --return of it is refused, not logged as a cancel
// (issue 18, finding 7).
func TestCancelAfterALostAnswer(t *testing.T) {
	h := newHarness(t)
	h.cloud.dropAnswers = 1
	id := h.request("OnDemand-c5", 2)
	h.provision() // RunInstances ran; its answer was lost
	if h.cloud.count() != 2 {
		t.Fatalf("%d instances; want the 2 the lost answer launched", h.cloud.count())
	}
	ans, err := h.e.Cancel(id, false, root)
	if err != nil || strings.Contains(ans.Message, "will not be made") || strings.Contains(ans.Message, "nothing was launched") {
		t.Fatalf("cancel after a lost answer: %+v %v", ans, err)
	}
	h.clk.Advance(time.Minute)
	h.reconcile()
	h.provision()
	h.cloud.settle()
	h.clk.Advance(time.Minute)
	h.reconcile()
	if len(h.cloud.terms) == 0 {
		t.Fatalf("what the lost answer launched must be terminated")
	}
	st := h.status(id)
	if st.Status != hf.StatusCompleteWithError || strings.Contains(st.Message, "nothing was launched") || !strings.Contains(st.Message, "2 machines") {
		t.Fatalf("status after the cancel: %+v", st)
	}
	var re *service.RefusedError
	if _, err := h.e.Cancel(id, false, root); !errors.As(err, &re) || strings.Contains(err.Error(), "--return") {
		t.Fatalf("a second cancel: %v; there is nothing to return", err)
	}
	if _, err := h.e.Cancel(id, true, root); !errors.As(err, &re) {
		t.Fatalf("cancel --return of a finished request with no live machine: %v; want refused", err)
	}
}

// ohfp drain: availableNumber 0, requestMachines refused, across a
// restart, until undrain.
func TestDrainIsDurable(t *testing.T) {
	h := newHarness(t)
	avail := func() int {
		tr, err := hfraw(h.e).GetAvailableTemplates(nil, []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		for _, tp := range tr.Templates {
			if tp.TemplateID == "OnDemand-c5" {
				return tp.AvailableNumber
			}
		}
		t.Fatalf("OnDemand-c5 not offered: %s", tr.Message)
		return -1
	}
	h.reconcile() // the instance type's facts, which the template's attributes need
	if _, err := h.e.Drain("", "OnDemand-c5", root); err != nil {
		t.Fatal(err)
	}
	h.restart()
	h.reconcile()
	if n := avail(); n != 0 {
		t.Fatalf("drained template offers %d", n)
	}
	if _, err := hfraw(h.e).RequestMachines(nil, []byte(`{"template":{"templateId":"OnDemand-c5","machineCount":1}}`)); err == nil || !strings.Contains(err.Error(), "drained by the operator") {
		t.Fatalf("requestMachines of a drained template: %v", err)
	}
	if st := h.e.StatusReport(); len(st.Drained) != 1 || st.Drained[0].By != root {
		t.Fatalf("status drained: %+v", st.Drained)
	}
	var nf *service.NotFoundError
	if _, err := h.e.Drain("", "NoSuch", root); !errors.As(err, &nf) {
		t.Fatalf("unknown template: %v", err)
	}
	if _, err := h.e.Undrain("", "OnDemand-c5", root); err != nil {
		t.Fatal(err)
	}
	h.restart()
	if n := avail(); n != 10 {
		t.Fatalf("undrained template offers %d, want 10", n)
	}
}

// Cancelling a fleet caps it at what came (by the next pass), with no
// on-demand fallback, and the request ends with the reason.
func TestCancelCapsTheFleet(t *testing.T) {
	h, fc := newFleetHarness(t)
	id := h.request("Fleet-weighted", 8)
	h.provision()
	fc.fill("fleet-1", 1)
	h.cloud.settle()
	h.reconcile()
	ans, err := h.e.Cancel(id, false, root)
	if err != nil || !strings.Contains(ans.Message, "caps it at what has come as AWS counts it then (2 of 8 units shown by EC2 so far)") {
		t.Fatalf("cancel: %+v %v", ans, err)
	}
	h.reconcile()
	if !fc.has("Cap fleet-1 2") {
		t.Fatalf("calls %v: the fleet must be capped", fc.calls)
	}
	h.reconcile()
	if st := h.status(id); st.Status != hf.StatusCompleteWithError || !strings.Contains(st.Message, "cancelled by the operator") || len(st.Machines) != 1 {
		t.Fatalf("after the cap: %+v", st)
	}
}

// ohfp requests: the finished requests of the last hour, then only with
// --all; status counts live machines, not terminated ones.
func TestRequestsShowRecentlyFinished(t *testing.T) {
	h := newHarness(t)
	h.cloud.launchErr = []error{&provider.Error{Op: "RunInstances", Code: "InvalidAMIID.NotFound", Message: "no", Kind: provider.Fatal}}
	id := h.request("OnDemand-c5", 1)
	h.provision()
	if rows := h.e.ListRequests(false); len(rows) != 1 || rows[0].ID != id || rows[0].Finished.IsZero() {
		t.Fatalf("a request that just failed must show: %+v", rows)
	}
	h.clk.Advance(2 * time.Hour)
	if rows := h.e.ListRequests(false); len(rows) != 0 {
		t.Fatalf("finished 2 h ago: %+v", rows)
	}
	if rows := h.e.ListRequests(true); len(rows) != 1 {
		t.Fatalf("--all: %+v", rows)
	}
	id2 := h.request("OnDemand-c5", 2)
	h.provision()
	h.cloud.settle()
	h.reconcile()
	ms := h.status(id2).Machines
	if err := h.cloud.Terminate(t.Context(), []string{ms[0].MachineID, ms[1].MachineID}); err != nil {
		t.Fatal(err)
	}
	h.cloud.settle()
	h.clk.Advance(time.Minute)
	h.reconcile()
	if st := h.e.StatusReport(); st.LiveMachines != 0 || st.Machines["terminated"] != 2 {
		t.Fatalf("status after the console terminated both: live %d, by state %v", st.LiveMachines, st.Machines)
	}
}

// hideFleet makes the instances fleet h launched so far invisible to
// List and Describe (EC2's eventual consistency), or visible again.
func hideFleet(fc *fleetCloud, h string, hide bool) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.hidden == nil {
		fc.hidden = map[string]bool{}
	}
	for id, in := range fc.insts {
		if in.Handle == h {
			fc.hidden[id] = hide
		}
	}
}

// A cancel that lands while the fleet's instances are launched but not
// visible yet (eventual consistency): the fleet is capped at what AWS
// counts when the cap is applied, not at the 0 units ohfp had seen; the
// request waits for those to show, keeps them, and neither its message
// nor its history says anything false (issue 18, finding 1).
func TestCancelFleetCapsAtWhatAWSCounts(t *testing.T) {
	h, fc := newFleetHarness(t)
	id := h.request("Fleet-weighted", 8)
	h.provision()
	fc.fill("fleet-1", 2) // 4 units AWS launched, not visible yet
	hideFleet(fc, "fleet-1", true)
	h.reconcile()
	ans, err := h.e.Cancel(id, false, root)
	if err != nil || strings.Contains(ans.Message, "at the 0") || !strings.Contains(ans.Message, "as AWS counts") {
		t.Fatalf("cancel: %+v %v; must not promise a count ohfp has not seen from AWS", ans, err)
	}
	h.reconcile()
	if !fc.has("Cap fleet-1 4") || fc.has("Cap fleet-1 0") {
		t.Fatalf("calls %v: the fleet must be capped at the 4 units AWS counts", fc.calls)
	}
	if st := h.status(id); st.Status != hf.StatusRunning {
		t.Fatalf("capped with 4 units not yet visible: %+v; the request must wait for them", st)
	}
	hideFleet(fc, "fleet-1", false)
	h.cloud.settle()
	h.reconcile()
	h.reconcile()
	st := h.status(id)
	if st.Status != hf.StatusCompleteWithError || len(st.Machines) != 2 || !strings.Contains(st.Message, "4 of 8 units running") || !strings.Contains(st.Message, "cancelled by the operator") {
		t.Fatalf("after the cap: %+v", st)
	}
	for _, m := range st.Machines {
		if m.Result != hf.ResultSucceed {
			t.Fatalf("machine %+v: what the capped fleet launched is HF's", m)
		}
	}
	if fc.has("Terminate") {
		t.Fatalf("calls %v: nothing the fleet launched before the cap is terminated", fc.calls)
	}
	h.restart()
	shown, err := h.e.Show(id)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, n := range shown.Request.History {
		texts = append(texts, n.Text)
	}
	all := strings.Join(texts, " | ")
	if !strings.Contains(all, "capped at 4 units") || strings.Contains(all, "at the 0") || strings.Contains(all, "capped at 0") {
		t.Fatalf("history %q: must say the fleet was capped at 4 units, not at 0", all)
	}
}

// The fleet reached its target before the cap landed: nothing is capped
// or terminated (the units are HF's, paid for and usable), the request
// completes, and its history says the cancel came too late and how to
// return them.
func TestCancelFleetTooLate(t *testing.T) {
	h, fc := newFleetHarness(t)
	id := h.request("Fleet-weighted", 8)
	h.provision()
	fc.fill("fleet-1", 4) // all 8 units, not visible yet
	hideFleet(fc, "fleet-1", true)
	h.reconcile()
	if _, err := h.e.Cancel(id, false, root); err != nil {
		t.Fatal(err)
	}
	h.reconcile()
	if fc.has("Cap fleet-1") {
		t.Fatalf("calls %v: a fleet that reached its target is not capped", fc.calls)
	}
	hideFleet(fc, "fleet-1", false)
	h.cloud.settle()
	h.reconcile()
	h.reconcile()
	st := h.status(id)
	if st.Status != hf.StatusComplete || len(st.Machines) != 4 || fc.has("Terminate") {
		t.Fatalf("after a cancel that came too late: %+v, calls %v", st, fc.calls)
	}
	shown, _ := h.e.Show(id)
	last := shown.Request.History[len(shown.Request.History)-1]
	if !strings.Contains(last.Text, "too late") || !strings.Contains(last.Text, "ohfp return --request "+id) {
		t.Fatalf("history %+v: must say the cancel came too late and how to return the machines", shown.Request.History)
	}
}

// cancel --return of a fleet still filling returns what has shown, and
// says that what EC2 shows later is not returned by it, and how to.
func TestCancelReturnFleetSaysWhatItLeaves(t *testing.T) {
	h, fc := newFleetHarness(t)
	id := h.request("Fleet-weighted", 8)
	h.provision()
	fc.fill("fleet-1", 1)
	h.cloud.settle()
	h.reconcile()
	fc.fill("fleet-1", 1)
	hideFleet(fc, "fleet-1", true)
	hideFleet(fc, "fleet-1", false) // the first stays visible...
	fc.mu.Lock()
	fc.hidden[fc.order[len(fc.order)-1]] = true // ...the second is not shown yet
	fc.mu.Unlock()
	ans, err := h.e.Cancel(id, true, root)
	if err != nil || len(ans.ReturnIDs) != 1 || !strings.Contains(ans.Message, "EC2 shows later are not returned by this: ohfp return --request "+id) {
		t.Fatalf("cancel --return: %+v %v", ans, err)
	}
}
