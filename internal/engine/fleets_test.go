package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// fleetCloud adds fleets to fakeCloud: a launch of a non-RunInstances
// template opens a fleet whose instances arrive when the test calls fill.
type fleetCloud struct {
	*fakeCloud
	fleets map[string]*fakeFleet
	calls  []string // Release/Cap/Delete/Terminate in order
}

type fakeFleet struct {
	id      string
	spec    provider.LaunchSpec
	target  int
	errors  []string
	closed  bool
	deleted bool
}

func newFleetCloud() *fleetCloud {
	return &fleetCloud{fakeCloud: newFakeCloud(), fleets: map[string]*fakeFleet{}}
}

func (f *fleetCloud) Launch(ctx context.Context, s provider.LaunchSpec) (provider.LaunchResult, error) {
	if s.Template.API() == template.APIRunInstances {
		return f.fakeCloud.Launch(ctx, s)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.launches++
	for _, fl := range f.fleets {
		if fl.spec.ClientToken == s.ClientToken {
			return provider.LaunchResult{Handle: fl.id}, nil
		}
	}
	id := fmt.Sprintf("fleet-%d", len(f.fleets)+1)
	f.fleets[id] = &fakeFleet{id: id, spec: s, target: s.Units}
	return provider.LaunchResult{Handle: id}, nil
}

// fill launches n instances of the fleet's first type, as AWS would.
func (f *fleetCloud) fill(id string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := f.fleets[id]
	t := fl.spec.Template.InstanceTypes()[0]
	for i := 0; i < n; i++ {
		f.n++
		iid := fmt.Sprintf("i-%017x", f.n)
		tags := map[string]string{"aws:ec2:fleet-id": id}
		for k, v := range fl.spec.Tags {
			tags[k] = v
		}
		in := &provider.Instance{ID: iid, State: "pending", InstanceType: t, PrivateIP: fmt.Sprintf("10.0.1.%d", f.n),
			PrivateDNS: fmt.Sprintf("ip-10-0-1-%d.ec2.internal", f.n), LaunchTime: time.Unix(1_800_000_000, 0), Tags: tags,
			Handle: id, Spot: true, SpotRequestID: "sir-" + iid[2:]}
		f.spot[in.SpotRequestID] = provider.SpotRequest{ID: in.SpotRequestID, InstanceID: iid, State: "active", StatusCode: "fulfilled"}
		f.insts[iid] = in
		f.order = append(f.order, iid)
	}
}

func (f *fleetCloud) fulfilled(id string) int {
	n := 0
	for _, in := range f.insts {
		if in.Tags["aws:ec2:fleet-id"] == id && in.State != "terminated" && in.State != "shutting-down" {
			w, _ := f.fleets[id].spec.Template.VMTypes.Get(in.InstanceType)
			n += max(w, 1)
		}
	}
	return n
}

func (f *fleetCloud) Poll(_ context.Context, handles []string) (map[string]provider.FleetStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("Poll %d", len(handles)))
	out := map[string]provider.FleetStatus{}
	for _, h := range handles {
		fl := f.fleets[h]
		if fl == nil || fl.deleted {
			out[h] = provider.FleetStatus{Handle: h, Gone: true}
			continue
		}
		out[h] = provider.FleetStatus{Handle: h, Target: fl.target, Fulfilled: f.fulfilled(h), Errors: fl.errors, Closed: fl.closed,
			OutOfCapacity: len(fl.errors) > 0 && strings.HasPrefix(fl.errors[0], "InsufficientInstanceCapacity")}
	}
	return out, nil
}

func (f *fleetCloud) Release(_ context.Context, h string, ids []string, units int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("Release %s %d ids %d units", h, len(ids), units))
	f.fleets[h].target -= units
	for _, id := range ids {
		if in, ok := f.insts[id]; ok && in.State != "terminated" {
			in.State = "shutting-down"
		}
	}
	return nil
}

func (f *fleetCloud) Cap(_ context.Context, h string, keep int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("Cap %s %d", h, keep))
	f.fleets[h].target = keep
	f.fleets[h].closed = true
	return nil
}

func (f *fleetCloud) Delete(_ context.Context, h string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "Delete "+h)
	f.fleets[h].deleted = true
	return nil
}

func (f *fleetCloud) Terminate(ctx context.Context, ids []string) error {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf("Terminate %d", len(ids)))
	f.mu.Unlock()
	return f.fakeCloud.Terminate(ctx, ids)
}

func (f *fleetCloud) has(call string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if strings.HasPrefix(c, call) {
			return true
		}
	}
	return false
}

func newFleetHarness(t *testing.T) (*harness, *fleetCloud) {
	h := newHarness(t)
	fc := newFleetCloud()
	fc.fakeCloud = h.cloud
	h.tpls = append(h.tpls,
		template.Template{TemplateID: "Fleet-weighted", MaxNumber: 40, ImageID: "ami-0123456789abcdef0", PriceType: "spot",
			ProviderAPI: "EC2Fleet", FleetType: "request", SpotFleetExpiry: 10,
			VMTypes: template.Weights{{Type: "m5.xlarge", Weight: 2}, {Type: "m5.2xlarge", Weight: 4}}},
		template.Template{TemplateID: "Hetero", MaxNumber: 40, ImageID: "ami-0123456789abcdef0", PriceType: "heterogeneous",
			ProviderAPI: "SpotFleet", FleetRole: "arn:aws:iam::123456789012:role/fleet", SpotFleetExpiry: 5,
			VMTypes: template.Weights{{Type: "m5.large", Weight: 1}}, VMTypesOnDemand: template.Weights{{Type: "c5.large", Weight: 1}}},
	)
	h.restartWith(fc)
	return h, fc
}

func (h *harness) restartWith(c provider.Provider) {
	h.t.Helper()
	e, err := New(Options{ClusterID: "test", Providers: []ProviderConfig{{Name: "aws", Templates: h.tpls, Cloud: c}}, Store: h.st, Clock: h.clk})
	if err != nil {
		h.t.Fatal(err)
	}
	h.e = e
}

func TestFleetWeightedFillReturnDelete(t *testing.T) {
	h, fc := newFleetHarness(t)
	id := h.request("Fleet-weighted", 8) // 8 units = 4 m5.xlarge of weight 2
	h.provision()
	h.reconcile()
	if st := h.status(id); st.Status != hf.StatusRunning || !strings.Contains(st.Message, "waiting for fleet-1") {
		t.Fatalf("fleet open, nothing yet: %+v", st)
	}
	fc.fill("fleet-1", 2)
	h.cloud.settle()
	h.reconcile()
	if st := h.status(id); st.Status != hf.StatusRunning || !strings.Contains(st.Message, "4 of 8 units") {
		t.Fatalf("half filled: %+v", st)
	}
	tr, _ := hfraw(h.e).GetAvailableTemplates(nil, []byte(`{}`))
	if got := tr.Templates[2].AvailableNumber; got != 32 {
		t.Fatalf("unfinished fleet request holds its 8 units: available %d", got)
	}
	fc.fill("fleet-1", 2)
	h.cloud.settle()
	h.reconcile()
	st := h.status(id)
	if st.Status != hf.StatusComplete || len(st.Machines) != 4 {
		t.Fatalf("complete in units: %+v", st)
	}
	// Return all four: capacity is lowered with the termination, never a
	// plain terminate behind the fleet's back.
	ret, err := hfraw(h.e).RequestReturnMachines(nil, []byte(fmt.Sprintf(`{"machines":[{"machineId":%q},{"machineId":%q},{"machineId":%q},{"machineId":%q}]}`,
		st.Machines[0].MachineID, st.Machines[1].MachineID, st.Machines[2].MachineID, st.Machines[3].MachineID)))
	if err != nil {
		t.Fatal(err)
	}
	h.provision()
	if !fc.has("Release fleet-1 4 ids 8 units") || fc.has("Terminate") {
		t.Fatalf("calls %v", fc.calls)
	}
	h.cloud.settle()
	h.reconcile()
	if rs := h.status(ret.RequestID); rs.Status != hf.StatusComplete {
		t.Fatalf("return: %+v", rs)
	}
	h.reconcile()
	if !fc.has("Delete fleet-1") {
		t.Fatalf("an empty fleet must be deleted: %v", fc.calls)
	}
	n := len(fc.calls)
	h.reconcile()
	if fc.has("Poll") && len(fc.calls) != n {
		t.Fatalf("a deleted fleet is neither polled nor deleted again: %v", fc.calls[n:])
	}
}

func TestFleetICEEndsWithErrorAndCaps(t *testing.T) {
	h, fc := newFleetHarness(t)
	id := h.request("Fleet-weighted", 8)
	h.provision()
	fc.fill("fleet-1", 1)
	fc.fleets["fleet-1"].errors = []string{"InsufficientInstanceCapacity: We currently do not have sufficient m5.xlarge capacity"}
	h.cloud.settle()
	h.reconcile()
	st := h.status(id)
	if st.Status != hf.StatusCompleteWithError || !strings.Contains(st.Message, "InsufficientInstanceCapacity") || st.Machines[0].Result != hf.ResultSucceed {
		t.Fatalf("ICE: %+v", st)
	}
	if !fc.has("Cap fleet-1 2") {
		t.Fatalf("the rest of the target must be cancelled: %v", fc.calls)
	}
}

func TestFleetExpiry(t *testing.T) {
	h, fc := newFleetHarness(t)
	id := h.request("Fleet-weighted", 8)
	h.provision()
	fc.fill("fleet-1", 1)
	h.cloud.settle()
	h.reconcile()
	if st := h.status(id); st.Status != hf.StatusRunning {
		t.Fatalf("before expiry: %+v", st)
	}
	h.clk.Advance(11 * time.Minute)
	h.reconcile()
	st := h.status(id)
	if st.Status != hf.StatusCompleteWithError || !strings.Contains(st.Message, "did not reach its target within 10m0s") {
		t.Fatalf("after expiry: %+v", st)
	}
}

func TestFleetReclaimReleasesCapacity(t *testing.T) {
	h, fc := newFleetHarness(t)
	id := h.request("Fleet-weighted", 4)
	h.provision()
	fc.fill("fleet-1", 2)
	h.cloud.settle()
	h.reconcile()
	st := h.status(id)
	h.cloud.mu.Lock()
	h.cloud.insts[st.Machines[0].MachineID].State = "terminated"
	h.cloud.mu.Unlock()
	h.clk.Advance(30 * time.Second) // noticed by the next full listing
	h.reconcile()
	h.provision()
	if !fc.has("Release fleet-1 0 ids 2 units") {
		t.Fatalf("a reclaimed fleet machine must lower the fleet's capacity: %v", fc.calls)
	}
	in := fmt.Sprintf(`{"machines":[{"name":%q,"machineId":%q}]}`, st.Machines[0].Name, st.Machines[0].MachineID)
	rr, _ := hfraw(h.e).GetReturnRequests(nil, []byte(in))
	if len(rr.Requests) != 1 || rr.Requests[0].GracePeriod != 0 {
		t.Fatalf("reclaim reported: %+v", rr)
	}
}

func TestHeterogeneousFallsBackOnDemand(t *testing.T) {
	h, fc := newFleetHarness(t)
	id := h.request("Hetero", 3)
	h.provision()
	fc.fill("fleet-1", 1)
	h.cloud.settle()
	h.reconcile()
	h.clk.Advance(6 * time.Minute)
	h.reconcile() // expiry: cap the Spot Fleet, ask the rest on-demand
	// A Spot instance arriving late, before the fallback launched, is
	// adopted but does not cancel the fallback.
	fc.fill("fleet-1", 1)
	h.cloud.settle()
	h.reconcile()
	h.provision()
	if _, ok := h.cloud.tokens[id+"-od"]; !ok {
		t.Fatalf("on-demand fallback launch with its own token: tokens %v calls %v", h.cloud.tokens, fc.calls)
	}
	h.cloud.settle()
	h.reconcile()
	st := h.status(id)
	if st.Status != hf.StatusComplete || len(st.Machines) != 3 {
		t.Fatalf("spot + late spot + on-demand, never more than asked: %+v", st)
	}
	od := 0
	for _, m := range st.Machines {
		if m.PriceType == "ondemand" && m.InstanceType == "c5.large" {
			od++
		}
	}
	if od != 1 {
		t.Fatalf("1 on-demand c5.large expected (2 came from Spot): %+v", st.Machines)
	}
}

// Found by an operator's test against the strict region: a maintain fleet
// or group replaces an instance that fails before it is usable, and that
// replacement is what its request waits for; ohfp lowered the capacity for
// each failure anyway, leaving the request short until expiry (and an
// Auto Scaling group below its instances, which refuses every return).
func TestFailedLaunchInAFleetReleasesNoCapacity(t *testing.T) {
	h, fc := newFleetHarness(t)
	id := h.request("Fleet-weighted", 4) // 2 m5.xlarge
	h.provision()
	fc.fill("fleet-1", 2)
	h.reconcile()
	fc.mu.Lock()
	var failed string
	for iid, in := range fc.insts {
		if in.State == "pending" {
			in.State, in.StateReason, failed = "terminated", "Server.InternalError", iid
			break
		}
	}
	fc.mu.Unlock()
	h.reconcile()
	h.provision()
	h.reconcile()
	h.provision()
	for _, c := range fc.calls {
		if strings.HasPrefix(c, "Release") || strings.HasPrefix(c, "Cap") {
			t.Fatalf("capacity lowered for %s, which failed before it was usable: %v", failed, fc.calls)
		}
	}
	fc.fill("fleet-1", 1) // the fleet's replacement
	h.cloud.settle()
	h.reconcile()
	if st := h.status(id); st.Status != hf.StatusComplete {
		t.Fatalf("with the replacement: %s %q", st.Status, st.Message)
	}
}

// failingRelease refuses every Release, as an Auto Scaling group does
// when its desired capacity is already at its minimum.
type failingRelease struct {
	*fleetCloud
	releases int
}

func (f *failingRelease) Release(context.Context, string, []string, int) error {
	f.releases++
	return &provider.Error{Op: "TerminateInstanceInAutoScalingGroup", Code: "ValidationError", Message: "desiredSize equals minSize (0)", Kind: provider.Fatal}
}

// A termination the cloud keeps refusing is tried again with a backoff,
// not on every pass (it was 5 calls a second, for ever).
func TestRefusedTerminationBacksOff(t *testing.T) {
	h, fc := newFleetHarness(t)
	fr := &failingRelease{fleetCloud: fc}
	h.restartWith(fr)
	id := h.request("Fleet-weighted", 2)
	h.provision()
	fc.fill("fleet-1", 1)
	h.cloud.settle()
	h.reconcile()
	st := h.status(id)
	if st.Status != hf.StatusComplete {
		t.Fatalf("%+v", st)
	}
	if _, err := hfraw(h.e).RequestReturnMachines(nil, []byte(fmt.Sprintf(`{"machines":[{"machineId":%q}]}`, st.Machines[0].MachineID))); err != nil {
		t.Fatal(err)
	}
	h.provision()
	if fr.releases != 1 {
		t.Fatalf("%d releases", fr.releases)
	}
	for range 5 { // five passes 200 ms apart
		h.clk.Advance(200 * time.Millisecond)
		h.reconcile()
		h.provision()
	}
	if fr.releases != 1 {
		t.Fatalf("a refused release was tried %d times in 1 s", fr.releases)
	}
	h.clk.Advance(time.Minute)
	h.provision()
	if fr.releases != 2 {
		t.Fatalf("not tried again after its backoff: %d releases", fr.releases)
	}
}
