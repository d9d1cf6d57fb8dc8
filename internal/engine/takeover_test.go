package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/ibmstate"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/reconcile"
)

// ibmInstance puts an instance IBM's plugin launched (no ohfp tag) in the
// fake cloud.
func (h *harness) ibmInstance(id string, state provider.State, launched time.Time, tags map[string]string) {
	h.cloud.mu.Lock()
	defer h.cloud.mu.Unlock()
	if tags == nil {
		tags = map[string]string{}
	}
	n := len(h.cloud.order) + 100
	h.cloud.insts[id] = &provider.Instance{ID: id, State: state, InstanceType: "c5.large", PrivateIP: fmt.Sprintf("10.0.1.%d", n),
		PrivateDNS: fmt.Sprintf("ip-10-0-1-%d.ec2.internal", n), LaunchTime: launched, Tags: tags, AZ: "us-east-1a"}
	h.cloud.order = append(h.cloud.order, id)
}

var fastTakeOver = reconcile.TakeOverOptions{Wait: 200 * time.Millisecond, Poll: 10 * time.Millisecond}

// The takeover's adversaries: a crash after some instances were tagged
// and before anything was recorded; an instance EC2 does not show yet;
// a tagging call that fails; an instance of another cluster; and the
// same command run twice. Nothing is adopted twice, nothing is lost, and
// the requests are claimed (HF knew them: no claim rule may terminate
// their hosts).
func TestTakeOverIBMState(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	now := h.clk.Now()
	old := now.Add(-time.Hour)
	h.ibmInstance("i-0000000000000000a", "running", old, nil)
	// Tagged by a takeover that crashed before recording anything.
	h.ibmInstance("i-0000000000000000b", "running", old, map[string]string{
		provider.TagManagedBy: "test", provider.TagProvider: "aws", provider.TagRequestID: "r-0aaaaaaaaaaaaaaaa", provider.TagTemplateID: "OnDemand-c5"})
	h.ibmInstance("i-0000000000000000c", "pending", now.Add(-5*time.Second), nil) // in flight, not visible yet
	h.cloud.hidden = map[string]bool{"i-0000000000000000c": true}
	h.ibmInstance("i-0000000000000000d", "running", old, map[string]string{provider.TagManagedBy: "another-cluster"})
	h.ibmInstance("i-0000000000000000e", "stopped", old, nil) // usable for HF, stopped since
	f := ibmstate.File{Requests: []ibmstate.Request{
		{ID: "r-0aaaaaaaaaaaaaaaa", TemplateID: "OnDemand-c5", Created: old, Machines: []ibmstate.Machine{
			{ID: "i-0000000000000000a", Result: "succeed", LaunchTime: old}, {ID: "i-0000000000000000b", Result: "succeed", LaunchTime: old},
			{ID: "i-0000000000000000e", Result: "succeed", LaunchTime: old}}},
		{ID: "dir-4242-1800000000", TemplateID: "OnDemand-c5", Created: now, Machines: []ibmstate.Machine{
			{ID: "i-0000000000000000c", Result: "executing", LaunchTime: now.Add(-5 * time.Second)}}},
		{ID: "r-0bbbbbbbbbbbbbbbb", TemplateID: "OnDemand-c5", Created: old, Machines: []ibmstate.Machine{
			{ID: "i-0000000000000000d", Result: "succeed", LaunchTime: old}}},
	}}

	// The young instance EC2 does not show: refused, nothing recorded.
	if _, err := h.e.TakeOver(ctx, "aws", f, fastTakeOver); err == nil || !strings.Contains(err.Error(), "i-0000000000000000c") || !strings.Contains(err.Error(), "run the same command again") {
		t.Fatalf("hidden young instance: %v", err)
	}
	if len(h.e.st.Machines) != 0 {
		t.Fatalf("a failed takeover recorded %d machines", len(h.e.st.Machines))
	}
	// Shown now; but the tagging call fails (AWS down): refused, nothing recorded.
	h.cloud.hidden = nil
	tagErr := &provider.Error{Op: "CreateTags", Kind: provider.Transient, Message: "connection reset"}
	h.restartWith2(&failingTagCloud{fakeCloud: h.cloud, err: tagErr})
	if _, err := h.e.TakeOver(ctx, "aws", f, fastTakeOver); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("failing CreateTags: %v", err)
	}
	if len(h.e.st.Machines) != 0 {
		t.Fatalf("a failed takeover recorded %d machines", len(h.e.st.Machines))
	}

	// Run again (a restart): everything adopted, tagged as ohfp tags.
	h.restart()
	rep, err := h.e.TakeOver(ctx, "aws", f, fastTakeOver)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Adopted != 4 || rep.Live != 4 || len(rep.Conflicts) != 1 || rep.Conflicts[0] != "i-0000000000000000d" {
		t.Errorf("report %+v", rep)
	}
	for _, id := range []string{"i-0000000000000000a", "i-0000000000000000c"} {
		tags := h.cloud.insts[id].Tags
		if tags[provider.TagManagedBy] != "test" || tags[provider.TagProvider] != "aws" || tags[provider.TagTemplateID] != "OnDemand-c5" || tags[provider.TagRequestID] == "" {
			t.Errorf("%s tags %v", id, tags)
		}
	}
	if h.cloud.insts["i-0000000000000000d"].Tags[provider.TagManagedBy] != "another-cluster" || h.e.st.Machines["i-0000000000000000d"] != nil {
		t.Error("another cluster's instance was taken")
	}
	for _, id := range []string{"r-0aaaaaaaaaaaaaaaa", "dir-4242-1800000000"} {
		r := h.e.st.Requests[id]
		if r == nil || r.AwaitingClaim {
			t.Fatalf("request %s: %+v (HF knew it: it must be claimed)", id, r)
		}
	}
	// The request whose only instance is another cluster's: finished.
	if r := h.e.st.Requests["r-0bbbbbbbbbbbbbbbb"]; r == nil || r.Status != hf.StatusCompleteWithError || !strings.Contains(r.Message, "1 carry another ohfp cluster's tags") {
		t.Errorf("request of a conflicting instance: %+v", r)
	}
	if st := h.status("r-0aaaaaaaaaaaaaaaa"); st.Status != "complete" || len(st.Machines) != 3 {
		t.Errorf("IBM's request: %+v", st)
	}
	// The stopped host HF holds is neither failed nor terminated: HF hears
	// of it through getReturnRequests, with no grace.
	if m := h.e.st.Machines["i-0000000000000000e"]; m == nil || m.Result != hf.ResultSucceed || m.Doomed || m.ReclaimedAt.IsZero() {
		t.Errorf("stopped IBM host: %+v", m)
	}
	rr, err := hfraw(h.e).GetReturnRequests(nil, []byte(`{"machines": [{"name": "x", "machineId": "i-0000000000000000e"}, {"name": "y", "machineId": "i-0000000000000000a"}]}`))
	if err != nil || len(rr.Requests) != 1 || rr.Requests[0].Machine != "x" || rr.Requests[0].GracePeriod != 0 {
		t.Errorf("getReturnRequests: %+v %v", rr, err)
	}
	if st := h.status("dir-4242-1800000000"); st.Status != "running" {
		t.Errorf("IBM's in-flight request: %+v", st)
	}
	// Followed to completion by the usual passes.
	h.cloud.settle()
	h.reconcile()
	if st := h.status("dir-4242-1800000000"); st.Status != "complete" || len(st.Machines) != 1 || st.Machines[0].Result != "succeed" {
		t.Errorf("IBM's in-flight request after its host runs: %+v", st)
	}

	// A restart and the same command again: nothing adopted or tagged
	// twice, the same answers.
	h.restart()
	tags := h.cloud.tagCalls
	rep, err = h.e.TakeOver(ctx, "aws", f, fastTakeOver)
	if err != nil || rep.Adopted != 0 || rep.Tagged != 0 || h.cloud.tagCalls != tags {
		t.Errorf("second run: %+v %v (tag calls %d -> %d)", rep, err, tags, h.cloud.tagCalls)
	}
	if st := h.status("r-0aaaaaaaaaaaaaaaa"); st.Status != "complete" || len(st.Machines) != 3 {
		t.Errorf("IBM's request after the second run: %+v", st)
	}
	if n := len(h.e.st.Machines); n != 4 {
		t.Errorf("%d machines after the second run, want 4", n)
	}
	h.reconcile()
	h.provision()
	for _, terms := range h.cloud.terms {
		t.Errorf("terminated %v: nothing HF holds may be", terms)
	}
}

// failingTagCloud is the fake cloud whose CreateTags fails.
type failingTagCloud struct {
	*fakeCloud
	err error
}

func (f *failingTagCloud) Tag(context.Context, []string, map[string]string) error { return f.err }

// An instance of one of IBM's fleets (its request id is the fleet's) is
// returned as ohfp returns its own fleets' instances: the fleet's capacity
// is lowered with the termination, so that the fleet does not replace it.
func TestTakeOverIBMFleetInstanceReturnLowersCapacity(t *testing.T) {
	h, fc := newFleetHarness(t)
	ctx := context.Background()
	old := h.clk.Now().Add(-time.Hour)
	fc.fleets["fleet-0ibm"] = &fakeFleet{id: "fleet-0ibm", target: 2,
		spec: provider.LaunchSpec{Template: h.tpls[0]}}
	for _, id := range []string{"i-00000000000000f01", "i-00000000000000f02"} {
		h.ibmInstance(id, "running", old, map[string]string{"aws:ec2:fleet-id": "fleet-0ibm"})
		h.cloud.insts[id].Handle = "fleet-0ibm"
	}
	f := ibmstate.File{Requests: []ibmstate.Request{{ID: "fleet-0ibm", TemplateID: "OnDemand-c5", Created: old, Machines: []ibmstate.Machine{
		{ID: "i-00000000000000f01", Result: "succeed"}, {ID: "i-00000000000000f02", Result: "succeed"}}}}}
	if _, err := h.e.TakeOver(ctx, "aws", f, fastTakeOver); err != nil {
		t.Fatal(err)
	}
	if st := h.status("fleet-0ibm"); st.Status != "complete" || len(st.Machines) != 2 {
		t.Fatalf("IBM's fleet request: %+v", st)
	}
	rep, err := hfraw(h.e).RequestReturnMachines(nil, []byte(`{"machines": [{"name": "x", "machineId": "i-00000000000000f01"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	h.provision()
	h.reconcile()
	h.provision()
	if !fc.has("Release fleet-0ibm 1 ids 1 units") {
		t.Errorf("the fleet's capacity was not lowered with the return: %v", fc.calls)
	}
	if fc.fleets["fleet-0ibm"].target != 1 {
		t.Errorf("IBM's fleet target %d, want 1", fc.fleets["fleet-0ibm"].target)
	}
	h.cloud.settle()
	h.reconcile()
	if st := h.status(rep.RequestID); st.Status != "complete" {
		t.Errorf("return: %+v", st)
	}
}

// Finding 3 of the switch-over review: IBM's file (wrong or stale) names
// an instance ohfpd launched itself, and one already taken over under
// another IBM request. Neither is retagged or moved: ohfpd's own request
// keeps answering HF with its host, across a rebuild from the cloud's
// tags, and the takeover names both.
func TestTakeOverIBMSkipsWhatThisClusterHolds(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	old := h.clk.Now().Add(-time.Hour)
	own := h.launched("OnDemand-c5", 1)
	ownID := h.status(own).Machines[0].MachineID
	h.ibmInstance("i-0000000000000000a", "running", old, nil)
	first := ibmstate.File{Requests: []ibmstate.Request{{ID: "r-0cccccccccccccccc", TemplateID: "OnDemand-c5", Created: old,
		Machines: []ibmstate.Machine{{ID: "i-0000000000000000a", Result: "succeed", LaunchTime: old}}}}}
	if _, err := h.e.TakeOver(ctx, "aws", first, fastTakeOver); err != nil {
		t.Fatal(err)
	}
	bad := ibmstate.File{Requests: []ibmstate.Request{
		{ID: "r-0aaaaaaaaaaaaaaaa", TemplateID: "OnDemand-c5", Created: old, Machines: []ibmstate.Machine{{ID: ownID, Result: "succeed"}}},
		{ID: "r-0bbbbbbbbbbbbbbbb", TemplateID: "NoSuchTemplate", Created: old, Machines: []ibmstate.Machine{{ID: "i-0000000000000000a", Result: "succeed"}}},
	}}
	tags := h.cloud.tagCalls
	rep, err := h.e.TakeOver(ctx, "aws", bad, fastTakeOver)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Tagged != 0 || h.cloud.tagCalls != tags {
		t.Errorf("retagged instances this cluster holds: %+v (tag calls %d -> %d)", rep, tags, h.cloud.tagCalls)
	}
	if len(rep.Skipped) != 2 || !strings.Contains(strings.Join(rep.Skipped, " "), ownID) || !strings.Contains(strings.Join(rep.Skipped, " "), "i-0000000000000000a") {
		t.Errorf("skipped %q, want both named", rep.Skipped)
	}
	if len(rep.UnknownTemplates) != 1 || rep.UnknownTemplates[0] != "NoSuchTemplate" {
		t.Errorf("unknown templates %q", rep.UnknownTemplates)
	}
	if g := h.cloud.insts[ownID].Tags[provider.TagRequestID]; g != own {
		t.Errorf("ohfp's own instance retagged to %q", g)
	}
	if g := h.cloud.insts["i-0000000000000000a"].Tags; g[provider.TagRequestID] != "r-0cccccccccccccccc" || g[provider.TagTemplateID] != "OnDemand-c5" {
		t.Errorf("taken-over instance retagged: %v", g)
	}
	for _, id := range []string{own, "r-0cccccccccccccccc"} {
		if st := h.status(id); st.Status != "complete" || len(st.Machines) != 1 {
			t.Errorf("%s: %+v", id, st)
		}
	}
	// The file's requests are told, not said to have lost running hosts.
	if r := h.e.st.Requests["r-0aaaaaaaaaaaaaaaa"]; r == nil || !strings.Contains(r.Message, "another request of this ohfp cluster") {
		t.Errorf("request of a skipped instance: %+v", r)
	}
	h.reconcile()
	h.provision()
	for _, terms := range h.cloud.terms {
		t.Errorf("terminated %v", terms)
	}
}

// FleetInstances lists a fake fleet's live instances, as
// DescribeSpotFleetInstances would.
func (f *fleetCloud) FleetInstances(_ context.Context, h string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "FleetInstances "+h)
	var out []string
	for _, id := range f.order {
		in := f.insts[id]
		if in.Handle == h && in.State != "terminated" && in.State != "shutting-down" {
			out = append(out, id)
		}
	}
	return out, nil
}

// Abandon ends a fake fleet without terminating its instances.
func (f *fleetCloud) Abandon(_ context.Context, h string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "Abandon "+h)
	if fl := f.fleets[h]; fl != nil {
		fl.deleted = true
	}
	return nil
}

// Finding 1 of the switch-over review: IBM's file lists one instance of
// its Spot Fleet of three. The fleet is taken over whole (AWS is asked for
// its instances), and when everything ohfpd holds of it has been returned
// the fleet is ended without terminating anything: an instance it
// launched since, which ohfpd never held, keeps running. The same holds
// after the store is lost and rebuilt from the cloud's tags.
func TestTakeOverIBMFleetWholeAndNeverTerminatesWhatIsNotHeld(t *testing.T) {
	h, fc := newFleetHarness(t)
	ctx := context.Background()
	old := h.clk.Now().Add(-time.Hour)
	const sfr = "sfr-e24ca077-0000-4000-8000-000000000001"
	fc.fleets[sfr] = &fakeFleet{id: sfr, target: 3, spec: provider.LaunchSpec{Template: h.tpls[0]}}
	ids := []string{"i-00000000000000f01", "i-00000000000000f02", "i-00000000000000f03"}
	for _, id := range ids {
		h.ibmInstance(id, "running", old, map[string]string{"aws:ec2spot:fleet-request-id": sfr})
		h.cloud.insts[id].Handle = sfr
	}
	f := ibmstate.File{Requests: []ibmstate.Request{{ID: sfr, TemplateID: "OnDemand-c5", Created: old, Machines: []ibmstate.Machine{
		{ID: ids[0], Result: "succeed", LaunchTime: old}}}}}
	rep, err := h.e.TakeOver(ctx, "aws", f, fastTakeOver)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.FromFleets) != 2 || rep.Live != 3 {
		t.Errorf("report %+v: want the fleet's two unlisted instances taken over", rep)
	}
	for _, id := range ids {
		if tags := h.cloud.insts[id].Tags; tags[provider.TagRequestID] != sfr || tags[provider.TagTakenOver] == "" {
			t.Errorf("%s tags %v", id, tags)
		}
	}
	if st := h.status(sfr); st.Status != "complete" || len(st.Machines) != 3 {
		t.Fatalf("IBM's fleet request: %+v", st)
	}
	// The fleet launches one more (a replacement) that ohfpd never holds.
	h.ibmInstance("i-00000000000000f04", "running", h.clk.Now(), map[string]string{"aws:ec2spot:fleet-request-id": sfr})
	h.cloud.insts["i-00000000000000f04"].Handle = sfr

	// The store is lost: rebuilt from the cloud's tags.
	h.loseStore()
	h.restartWith(fc)
	h.reconcile()
	if st := h.status(sfr); len(st.Machines) != 3 {
		t.Fatalf("rebuilt IBM's fleet request: %+v", st)
	}
	// HF returns all three hosts it holds.
	if _, err := hfraw(h.e).RequestReturnMachines(nil, []byte(`{"machines": [{"name": "a", "machineId": "i-00000000000000f01"}, {"name": "b", "machineId": "i-00000000000000f02"}, {"name": "c", "machineId": "i-00000000000000f03"}]}`)); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		h.provision()
		h.cloud.settle()
		h.reconcile()
		h.clk.Advance(time.Minute)
	}
	if fc.has("Delete "+sfr) || !fc.has("Abandon "+sfr) {
		t.Errorf("IBM's fleet must be ended without terminating its instances: %v", fc.calls)
	}
	if s := h.cloud.insts["i-00000000000000f04"].State; s != "running" {
		t.Errorf("the fleet's instance ohfpd never held is %s", s)
	}
	for _, id := range ids {
		if s := h.cloud.insts[id].State; s != "terminated" {
			t.Errorf("returned %s is %s", id, s)
		}
	}
}

// Finding 2 of the switch-over review: a host IBM's plugin launched that
// its state file does not list, which HF returns, is terminated as IBM's
// plugin would, once a takeover ran for the provider (recorded durably:
// across a restart). Not so an instance of another cluster, one launched
// after the takeover, or any before a takeover.
func TestTakeOverIBMReturnOfUnlistedHost(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	old := h.clk.Now().Add(-time.Hour)
	h.ibmInstance("i-0000000000000000a", "running", old, nil) // IBM's, not in the file
	h.ibmInstance("i-0000000000000000b", "running", old, map[string]string{provider.TagManagedBy: "another-cluster"})
	h.ibmInstance("i-0000000000000000c", "running", old, nil) // in the file
	ret := func(ids ...string) hf.RequestReply {
		t.Helper()
		var refs []string
		for _, id := range ids {
			refs = append(refs, fmt.Sprintf(`{"name": "h-%s", "machineId": %q}`, id, id))
		}
		rep, err := hfraw(h.e).RequestReturnMachines(nil, []byte(`{"machines": [`+strings.Join(refs, ",")+`]}`))
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	// No takeover yet: ignored as before.
	if rep := ret("i-0000000000000000a"); !strings.Contains(rep.Message, "1 was not provisioned by ohfpd") {
		t.Errorf("before any takeover: %+v", rep)
	}
	if g := h.cloud.insts["i-0000000000000000a"].Tags[provider.TagManagedBy]; g != "" {
		t.Errorf("tagged %q before any takeover", g)
	}
	f := ibmstate.File{Requests: []ibmstate.Request{{ID: "r-0cccccccccccccccc", TemplateID: "OnDemand-c5", Created: old,
		Machines: []ibmstate.Machine{{ID: "i-0000000000000000c", Result: "succeed", LaunchTime: old}}}}}
	if _, err := h.e.TakeOver(ctx, "aws", f, fastTakeOver); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(time.Minute)
	h.ibmInstance("i-0000000000000000d", "running", h.clk.Now(), nil) // launched after the takeover
	h.restart()

	rep := ret("i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000d")
	if !strings.HasPrefix(rep.Message, "Returning 1 machine.") || !strings.Contains(rep.Message, "2 were not provisioned by ohfpd") {
		t.Errorf("return after the takeover: %+v", rep)
	}
	for range 3 {
		h.provision()
		h.cloud.settle()
		h.reconcile()
	}
	if s := h.cloud.insts["i-0000000000000000a"].State; s != "terminated" {
		t.Errorf("IBM's unlisted host HF returned is %s", s)
	}
	for _, id := range []string{"i-0000000000000000b", "i-0000000000000000c", "i-0000000000000000d"} {
		if s := h.cloud.insts[id].State; s != "running" {
			t.Errorf("%s is %s", id, s)
		}
	}
	if g := h.cloud.insts["i-0000000000000000b"].Tags[provider.TagManagedBy]; g != "another-cluster" {
		t.Errorf("another cluster's instance retagged %q", g)
	}
	if st := h.status(rep.RequestID); st.Status != "complete" || len(st.Machines) != 1 || st.Machines[0].MachineID != "i-0000000000000000a" {
		t.Errorf("return: %+v", st)
	}
}

// Findings 4 and 5 of the switch-over review: IBM's hosts keep the names
// IBM's plugin gave HF when the cloud shows none; a taken-over request
// counts as running only the machines that still run; a return of IBM's
// plugin whose machines are all gone answers complete, as IBM's plugin
// does (awsv2's remove-<pid>-<time>, the Java plugin's ret-<uuid v4>),
// while an unknown id of ohfp's own shape still answers not known.
func TestTakeOverIBMNamesUnitsAndGoneReturns(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	old := h.clk.Now().Add(-time.Hour)
	// Before any takeover, an IBM-shaped return id is not known.
	if st := h.status("remove-4242-1734619942"); st.Status != "complete_with_error" {
		t.Errorf("IBM return id before any takeover: %+v", st)
	}
	h.ibmInstance("i-0000000000000000a", "running", old, nil)
	h.ibmInstance("i-0000000000000000b", "terminated", old, nil)
	h.ibmInstance("i-0000000000000000d", "running", old, nil)
	h.ibmInstance("i-0000000000000000e", "shutting-down", old, nil)
	h.cloud.insts["i-0000000000000000e"].PrivateDNS = ""
	h.cloud.insts["i-0000000000000000b"].PrivateDNS = ""
	const javaRet = "ret-6f1c2a3b-1111-4111-8111-111111111111"
	f := ibmstate.File{Requests: []ibmstate.Request{
		{ID: "r-083cf00000000000a", TemplateID: "OnDemand-c5", Created: old, Machines: []ibmstate.Machine{
			{ID: "i-0000000000000000a", Name: "ip-10-0-0-10.ec2.internal", Result: "succeed"},
			{ID: "i-0000000000000000b", Name: "ip-10-0-0-11.ec2.internal", Result: "succeed"},
			{ID: "i-0000000000000000d", Name: "ip-10-0-0-12.ec2.internal", Result: "succeed"}}},
		{ID: "r-0eeeeeeeeeeeeeeee", TemplateID: "OnDemand-c5", Created: old, Machines: []ibmstate.Machine{
			{ID: "i-0000000000000000e", Name: "ip-10-0-0-13.ec2.internal", Result: "succeed", ReturnID: javaRet}}},
	}}
	if _, err := h.e.TakeOver(ctx, "aws", f, fastTakeOver); err != nil {
		t.Fatal(err)
	}
	// The console terminates d after the takeover.
	h.cloud.insts["i-0000000000000000d"].State = "terminated"
	h.reconcile()
	h.restart()

	st := h.status("r-083cf00000000000a")
	if st.Status != "complete" || !strings.Contains(st.Message, "1 unit running") || !strings.Contains(st.Message, "2 ended") {
		t.Errorf("IBM's request with two of three machines terminated: %+v", st)
	}
	names := map[string]string{}
	for _, m := range st.Machines {
		names[m.MachineID] = m.Name
	}
	if names["i-0000000000000000b"] != "ip-10-0-0-11.ec2.internal" {
		t.Errorf("terminated IBM host's name %q, want the file's", names["i-0000000000000000b"])
	}
	rs := h.status(javaRet)
	if len(rs.Machines) != 1 || rs.Machines[0].Name != "ip-10-0-0-13.ec2.internal" {
		t.Errorf("IBM's return: %+v (the host's name must be the file's)", rs)
	}
	for _, id := range []string{"remove-4242-1734619942", "ret-0a1b2c3d-2222-4222-8222-222222222222"} {
		if st := h.status(id); st.Status != "complete" || len(st.Machines) != 0 {
			t.Errorf("IBM return %s whose machines are gone: %+v", id, st)
		}
	}
	if st := h.status("ret-01a22dde-0027-7669-88ca-5661f3cb05a8"); st.Status != "complete_with_error" {
		t.Errorf("unknown ohfp return id: %+v", st)
	}
}

// A request of IBM's file named otherwise than its fleet (its instance
// names the fleet by its aws:ec2 tag): the fleet is taken over whole all
// the same, under the file's request.
func TestTakeOverIBMFleetFoundByInstance(t *testing.T) {
	h, fc := newFleetHarness(t)
	old := h.clk.Now().Add(-time.Hour)
	fc.fleets["fleet-0ibm2"] = &fakeFleet{id: "fleet-0ibm2", target: 2, spec: provider.LaunchSpec{Template: h.tpls[0]}}
	for _, id := range []string{"i-00000000000000f11", "i-00000000000000f12"} {
		h.ibmInstance(id, "running", old, map[string]string{"aws:ec2:fleet-id": "fleet-0ibm2"})
		h.cloud.insts[id].Handle = "fleet-0ibm2"
	}
	f := ibmstate.File{Requests: []ibmstate.Request{{ID: "dir-4242-1734619942", TemplateID: "OnDemand-c5", Created: old,
		Machines: []ibmstate.Machine{{ID: "i-00000000000000f11", Result: "succeed"}}}}}
	rep, err := h.e.TakeOver(context.Background(), "aws", f, fastTakeOver)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.FromFleets) != 1 || rep.FromFleets[0] != "i-00000000000000f12" {
		t.Errorf("report %+v", rep)
	}
	if st := h.status("dir-4242-1734619942"); len(st.Machines) != 2 {
		t.Errorf("IBM's request: %+v", st)
	}
	if r := h.e.st.Requests["dir-4242-1734619942"]; r == nil || r.Handle != "fleet-0ibm2" || !r.TakenOver {
		t.Errorf("request record %+v", r)
	}
}
