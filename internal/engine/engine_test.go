package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/clock"
	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/provider"
	awsprov "github.com/ohfp/ohfp/internal/provider/aws"
	"github.com/ohfp/ohfp/internal/service"
	"github.com/ohfp/ohfp/internal/store"
	"github.com/ohfp/ohfp/internal/template"
)

// fakeCloud is a minimal cloud with RunInstances semantics: idempotent
// launches by client token, instances that a test moves along by hand.
type fakeCloud struct {
	awsprov.Planner // AWS's launch policy: pools, fallback

	mu        sync.Mutex
	n         int
	insts     map[string]*provider.Instance
	order     []string
	tokens    map[string][]string
	launches  int
	lists     int
	terms     [][]string
	launchErr []error // returned by the next launches, in order
	// dropAnswers: the next launches run, then answer a transient error
	// (their answer lost on the way back).
	dropAnswers int
	// hidden: instances List and Describe do not show yet (eventual
	// consistency).
	hidden    map[string]bool
	capacity  int // at most this many instances per launch when > 0
	spot      map[string]provider.SpotRequest
	afterList func() // runs after List took its snapshot, before it returns
	onLaunch  func() // runs as Launch is called, before it launches
	describes int
	// noCapacity: "type subnet" pairs that answer InsufficientInstanceCapacity.
	noCapacity map[string]bool
	specs      []provider.LaunchSpec // every launch asked, in order
	tagCalls   int
	finds      int
	// trail: the calls made, in order ("List", "Launch", "Tag",
	// "Terminate", "Find"), with the ids for Tag and Terminate.
	trail []string
	// onTerminate, when set, runs as Terminate is called; an error it
	// returns is Terminate's answer, nothing terminated (the daemon died
	// during the call).
	onTerminate func([]string) error
}

func newFakeCloud() *fakeCloud {
	return &fakeCloud{insts: map[string]*provider.Instance{}, tokens: map[string][]string{}, spot: map[string]provider.SpotRequest{}}
}

func (f *fakeCloud) Launch(_ context.Context, s provider.LaunchSpec) (provider.LaunchResult, error) {
	if f.onLaunch != nil {
		f.onLaunch()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trail = append(f.trail, "Launch")
	f.launches++
	f.specs = append(f.specs, s)
	if len(s.Template.SubnetIDs) > 0 && f.noCapacity[s.Template.VMType+" "+s.Template.SubnetIDs[0]] {
		return provider.LaunchResult{}, &provider.Error{Op: "RunInstances", Kind: provider.Capacity,
			Message: "InsufficientInstanceCapacity: no " + s.Template.VMType + " in " + s.Template.SubnetIDs[0]}
	}
	if len(f.launchErr) > 0 {
		err := f.launchErr[0]
		f.launchErr = f.launchErr[1:]
		if err != nil {
			return provider.LaunchResult{}, err
		}
	}
	if ids, ok := f.tokens[s.ClientToken]; ok {
		return provider.LaunchResult{Instances: f.get(ids)}, nil
	}
	n := s.Units
	if f.capacity > 0 && n > f.capacity {
		n = f.capacity
	}
	var ids []string
	for i := 0; i < n; i++ {
		f.n++
		id := fmt.Sprintf("i-%017x", f.n)
		tags := map[string]string{}
		for k, v := range s.Tags {
			tags[k] = v
		}
		in := &provider.Instance{ID: id, State: "pending", InstanceType: s.Template.VMType,
			PrivateIP: fmt.Sprintf("10.0.0.%d", f.n), PrivateDNS: fmt.Sprintf("ip-10-0-0-%d.ec2.internal", f.n),
			LaunchTime: time.Unix(1_800_000_000, 0), Tags: tags, Spot: s.Template.Price() == "spot", AZ: "us-east-1a"}
		if in.Spot {
			in.SpotRequestID = "sir-" + id[2:]
			f.spot[in.SpotRequestID] = provider.SpotRequest{ID: in.SpotRequestID, InstanceID: id, State: "active", StatusCode: "fulfilled"}
		}
		f.insts[id] = in
		f.order = append(f.order, id)
		ids = append(ids, id)
	}
	f.tokens[s.ClientToken] = ids
	if f.dropAnswers > 0 {
		f.dropAnswers--
		return provider.LaunchResult{}, &provider.Error{Op: "RunInstances", Kind: provider.Transient,
			Message: "read tcp: connection reset by peer (the call ran; its answer was lost)"}
	}
	return provider.LaunchResult{Instances: f.get(ids)}, nil
}

func (f *fakeCloud) get(ids []string) []provider.Instance {
	out := make([]provider.Instance, 0, len(ids))
	for _, id := range ids {
		if in, ok := f.insts[id]; ok {
			out = append(out, *in)
		}
	}
	return out
}

func (f *fakeCloud) List(_ context.Context, owner string) ([]provider.Instance, error) {
	f.mu.Lock()
	f.lists++
	f.trail = append(f.trail, "List")
	var out []provider.Instance
	for _, id := range f.order {
		in, ok := f.insts[id]
		if ok && !f.hidden[id] && (owner == "" || in.Tags[provider.TagManagedBy] == owner) {
			out = append(out, *in)
		}
	}
	hook := f.afterList
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	return out, nil
}

func (f *fakeCloud) Describe(ctx context.Context, owner string, ids, reqs []string) ([]provider.Instance, error) {
	f.mu.Lock()
	f.describes++
	f.mu.Unlock()
	all, err := f.List(ctx, owner)
	f.mu.Lock()
	f.lists--
	f.trail[len(f.trail)-1] = "Describe"
	f.mu.Unlock()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for _, r := range reqs {
		want["req:"+r] = true
	}
	var out []provider.Instance
	for _, in := range all {
		if want[in.ID] || want["req:"+in.Tags[provider.TagRequestID]] {
			out = append(out, in)
		}
	}
	return out, err
}

func (f *fakeCloud) Terminate(_ context.Context, ids []string) error {
	if f.onTerminate != nil {
		if err := f.onTerminate(ids); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trail = append(f.trail, "Terminate "+strings.Join(ids, ","))
	f.terms = append(f.terms, append([]string(nil), ids...))
	for _, id := range ids {
		if in, ok := f.insts[id]; ok && in.State != "terminated" {
			in.State = "shutting-down"
		}
	}
	return nil
}

// Tag writes tags on the instances it knows (hidden ones included, as
// EC2's tagging sees them once visible); the others come back NotFound.
func (f *fakeCloud) Tag(_ context.Context, ids []string, tags map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tagCalls++
	f.trail = append(f.trail, "Tag "+strings.Join(ids, ","))
	var missing []string
	for _, id := range ids {
		in, ok := f.insts[id]
		if !ok || f.hidden[id] {
			missing = append(missing, id)
			continue
		}
		for k, v := range tags {
			in.Tags[k] = v
		}
	}
	if len(missing) > 0 {
		return &provider.Error{Op: "CreateTags", Kind: provider.NotFound, IDs: missing, Message: "unknown instances"}
	}
	return nil
}

// Find matches q against what List shows.
func (f *fakeCloud) Find(ctx context.Context, owner string, q provider.Query) ([]provider.Instance, error) {
	f.mu.Lock()
	f.finds++
	f.mu.Unlock()
	all, err := f.List(ctx, owner)
	f.mu.Lock()
	f.lists--
	f.trail[len(f.trail)-1] = "Find"
	f.mu.Unlock()
	in := func(v string, vs []string) bool {
		for _, x := range vs {
			if v != "" && x == v {
				return true
			}
		}
		return false
	}
	var out []provider.Instance
	for _, i := range all {
		if in(i.ID, q.IDs) || in(i.PrivateDNS, q.Names) || in(i.Tags[provider.TagRequestID], q.RequestIDs) || in(i.Tags[provider.TagReturnID], q.ReturnIDs) {
			out = append(out, i)
		}
	}
	return out, err
}

func (f *fakeCloud) InstanceType(_ context.Context, name string) (provider.InstanceTypeInfo, error) {
	return provider.InstanceTypeInfo{Name: name, VCPUs: 2, MemoryMiB: 4096, Arch: "x86_64"}, nil
}

func (f *fakeCloud) SpotRequests(_ context.Context, ids []string) ([]provider.SpotRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []provider.SpotRequest
	for _, id := range ids {
		if sr, ok := f.spot[id]; ok {
			out = append(out, sr)
		}
	}
	return out, nil
}

// settle moves every instance along one step: pending -> running,
// shutting-down -> terminated.
func (f *fakeCloud) settle() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, in := range f.insts {
		switch in.State {
		case "pending":
			in.State = "running"
		case "shutting-down":
			in.State = "terminated"
		}
	}
}

func (f *fakeCloud) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.insts)
}

type harness struct {
	t     *testing.T
	clk   *clock.Fake
	cloud *fakeCloud
	st    *store.Store
	e     *Engine
	tpls  []template.Template
	// terminateOnReclaim: the provider's spot_terminate_on_reclaim.
	terminateOnReclaim bool
	// tagInstanceID: the provider's tag_instance_id.
	tagInstanceID bool
}

func testTemplates() []template.Template {
	return []template.Template{
		{TemplateID: "OnDemand-c5", MaxNumber: 10, VMType: "c5.large", ImageID: "ami-0123456789abcdef0",
			Attributes: template.Attributes{{Name: "type", Type: "String", Value: "X86_64"}}, InstanceTags: "team=hpc"},
		{TemplateID: "Spot-m5", MaxNumber: -1, VMType: "m5.large", ImageID: "ami-0123456789abcdef0", PriceType: "spot", ProviderAPI: "RunInstances",
			Attributes: template.Attributes{{Name: "type", Type: "String", Value: "X86_64"}, {Name: "ncpus", Type: "Numeric", Value: "2"}, {Name: "nram", Type: "Numeric", Value: "8192"}}},
	}
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, clk: clock.NewFake(time.Unix(1_800_000_000, 0)), cloud: newFakeCloud(), tpls: testTemplates()}
	h.loseStore()
	h.restart()
	return h
}

// loseStore gives the harness a new, empty in-memory store (the state
// directory lost): the next restart rebuilds from the cloud's tags.
func (h *harness) loseStore() {
	h.t.Helper()
	st, err := store.OpenInMemory(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { st.Close() })
	h.st = st
}

// restart builds a new engine on the same store and cloud, as after a crash.
func (h *harness) restart() {
	h.t.Helper()
	e, err := New(Options{
		ClusterID: "test",
		Providers: []ProviderConfig{{Name: "aws", Templates: h.tpls, Cloud: h.cloud, SpotTerminateOnReclaim: h.terminateOnReclaim, TagInstanceID: h.tagInstanceID}},
		Store:     h.st,
		Clock:     h.clk,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.e = e
}

func (h *harness) provision() {
	h.e.ProvisionOnce(context.Background())
	h.e.Wait()
}

func (h *harness) reconcile() time.Duration {
	return h.e.ReconcileOnce(context.Background())
}

func (h *harness) request(tpl string, n int) string {
	h.t.Helper()
	rep, err := hfraw(h.e).RequestMachines(nil, []byte(fmt.Sprintf(`{"template":{"templateId":%q,"machineCount":%d}}`, tpl, n)))
	if err != nil {
		h.t.Fatal(err)
	}
	if !strings.HasPrefix(rep.RequestID, "req-") {
		h.t.Fatalf("request id %q", rep.RequestID)
	}
	return rep.RequestID
}

func (h *harness) status(id string) hf.RequestStatus {
	h.t.Helper()
	rep, err := hfraw(h.e).GetRequestStatus(nil, []byte(fmt.Sprintf(`{"requests":[{"requestId":%q}]}`, id)))
	if err != nil {
		h.t.Fatal(err)
	}
	if len(rep.Requests) != 1 {
		h.t.Fatalf("status: %d entries", len(rep.Requests))
	}
	return rep.Requests[0]
}

func TestAcquireCycle(t *testing.T) {
	h := newHarness(t)
	id := h.request("OnDemand-c5", 3)
	if st := h.status(id); st.Status != hf.StatusRunning || len(st.Machines) != 0 {
		t.Fatalf("before launch: %+v", st)
	}
	h.provision()
	if h.cloud.launches != 1 || h.cloud.count() != 3 {
		t.Fatalf("launches=%d instances=%d", h.cloud.launches, h.cloud.count())
	}
	tok := ""
	for k := range h.cloud.tokens {
		tok = k
	}
	if tok != id {
		t.Fatalf("client token %q, want the request id", tok)
	}
	st := h.status(id)
	if st.Status != hf.StatusRunning || len(st.Machines) != 3 || st.Machines[0].Result != hf.ResultExecuting {
		t.Fatalf("after launch: %+v", st)
	}
	h.cloud.settle()
	if next := h.reconcile(); next != 30*time.Second {
		t.Fatalf("idle after completion, next pass in %v", next)
	}
	st = h.status(id)
	if st.Status != hf.StatusComplete {
		t.Fatalf("after running: %+v", st)
	}
	for _, m := range st.Machines {
		if m.Result != hf.ResultSucceed || m.PrivateIPAddress == nil || m.Name == "" || m.LaunchTime == 0 || m.InstanceTags != "team=hpc" {
			t.Fatalf("machine %+v", m)
		}
	}
	// Tags name the daemon, the request and the template.
	for _, in := range h.cloud.insts {
		if in.Tags[provider.TagRequestID] != id || in.Tags[provider.TagTemplateID] != "OnDemand-c5" || in.Tags["team"] != "hpc" {
			t.Fatalf("tags %v", in.Tags)
		}
	}

	// Return two of them.
	refs := fmt.Sprintf(`{"machines":[{"name":%q,"machineId":%q},{"name":"","machineId":%q},{"name":"ghost.example","machineId":"i-0000000000000dead"}]}`,
		st.Machines[0].Name, st.Machines[0].MachineID, st.Machines[1].MachineID)
	ret, err := hfraw(h.e).RequestReturnMachines(nil, []byte(refs))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ret.RequestID, "ret-") || !strings.Contains(ret.Message, "ghost.example") {
		t.Fatalf("return reply %+v", ret)
	}
	if rs := h.status(ret.RequestID); rs.Status != hf.StatusRunning || len(rs.Machines) != 2 || rs.Machines[0].Result != hf.ResultExecuting {
		t.Fatalf("return before termination: %+v", rs)
	}
	h.provision()
	if len(h.cloud.terms) != 1 || len(h.cloud.terms[0]) != 2 {
		t.Fatalf("terminations %v", h.cloud.terms)
	}
	h.cloud.settle()
	h.reconcile()
	rs := h.status(ret.RequestID)
	if rs.Status != hf.StatusComplete || rs.Machines[0].Result != hf.ResultSucceed || rs.Machines[0].Status != "terminated" {
		t.Fatalf("return after termination: %+v", rs)
	}
	// Returned machines are never reported as reclaimed.
	all := `{"machines":[` + fmt.Sprintf(`{"name":%q,"machineId":%q}`, st.Machines[0].Name, st.Machines[0].MachineID) + `]}`
	rr, err := hfraw(h.e).GetReturnRequests(nil, []byte(all))
	if err != nil || len(rr.Requests) != 0 {
		t.Fatalf("getReturnRequests %+v %v", rr, err)
	}
	// The template has 2 units held again out of 10 after the return.
	tr, err := hfraw(h.e).GetAvailableTemplates(nil, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Templates[0].AvailableNumber != 9 {
		t.Fatalf("available %d, want 9 (1 of 3 still held)", tr.Templates[0].AvailableNumber)
	}
}

func TestTemplatesFillAttributes(t *testing.T) {
	h := newHarness(t)
	h.reconcile()
	tr, err := hfraw(h.e).GetAvailableTemplates(nil, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(tr.Templates[0])
	for _, want := range []string{`"ncpus":["Numeric","2"]`, `"nram":["Numeric","4096"]`, `"type":["String","X86_64"]`, `"availableNumber":10`, `"maxNumber":10`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	if tr.Templates[1].AvailableNumber != service.UnlimitedAvailable {
		t.Errorf("unlimited template: available %d", tr.Templates[1].AvailableNumber)
	}
}

func TestMaxNumberEnforced(t *testing.T) {
	h := newHarness(t)
	h.request("OnDemand-c5", 8)
	_, err := hfraw(h.e).RequestMachines(nil, []byte(`{"template":{"templateId":"OnDemand-c5","machineCount":3}}`))
	var ie *hf.InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "2 units available") {
		t.Fatalf("over maxNumber: %v", err)
	}
	_, err = hfraw(h.e).RequestMachines(nil, []byte(`{"template":{"templateId":"nope","machineCount":1}}`))
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), `"nope" is not a template`) {
		t.Fatalf("unknown template: %v", err)
	}
	// With two providers, a name that matches neither is refused.
	h.restartWith2(h.cloud)
	_, err = hfraw(h.e).RequestMachines(Env{"HF_PROVIDER_NAME": "azure"}, []byte(`{"template":{"templateId":"OnDemand-c5","machineCount":1}}`))
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "azure") || !strings.Contains(err.Error(), "aws, aws-eu") {
		t.Fatalf("unknown provider: %v", err)
	}
	if len(h.e.st.Requests) != 1 {
		t.Fatalf("refused requests must change nothing: %d requests", len(h.e.st.Requests))
	}
}

func (h *harness) restartWith2(c provider.Provider) {
	h.t.Helper()
	e, err := New(Options{ClusterID: "test", Store: h.st, Clock: h.clk, Providers: []ProviderConfig{
		{Name: "aws", Templates: h.tpls, Cloud: c}, {Name: "aws-eu", Templates: h.tpls, Cloud: c}}})
	if err != nil {
		h.t.Fatal(err)
	}
	h.e = e
}

func TestSingleProviderServesAnyName(t *testing.T) {
	h := newHarness(t)
	if _, err := hfraw(h.e).RequestMachines(Env{"HF_PROVIDER_NAME": "awsinst"}, []byte(`{"template":{"templateId":"OnDemand-c5","machineCount":1}}`)); err != nil {
		t.Fatalf("the only provider serves HF's instance name: %v", err)
	}
}

func TestCrashBeforeLaunchResumesWithSameToken(t *testing.T) {
	h := newHarness(t)
	id := h.request("OnDemand-c5", 2)
	h.restart() // crash: recorded, never launched
	h.reconcile()
	h.provision()
	if h.cloud.launches != 1 || h.cloud.count() != 2 {
		t.Fatalf("launches=%d instances=%d", h.cloud.launches, h.cloud.count())
	}
	if _, ok := h.cloud.tokens[id]; !ok {
		t.Fatal("resumed launch must use the persisted token")
	}
}

func TestCrashAfterLaunchAdoptsInstead(t *testing.T) {
	h := newHarness(t)
	id := h.request("OnDemand-c5", 2)
	// The cloud call succeeds but the daemon dies before recording it.
	spec := provider.LaunchSpec{RequestID: id, ClientToken: id, Template: h.tpls[0], Units: 2,
		Tags: map[string]string{provider.TagManagedBy: "test", provider.TagProvider: "aws", provider.TagRequestID: id, provider.TagTemplateID: "OnDemand-c5"}}
	if _, err := h.cloud.Launch(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	h.restart()
	h.reconcile() // Run does this before provisioning
	h.provision()
	// The launch is asked again with the same token (what a listing shows
	// may be part of it only): EC2 answers the first call's instances.
	if h.cloud.launches != 2 || h.cloud.count() != 2 || h.cloud.specs[1].ClientToken != id {
		t.Fatalf("after adoption: %d launches, %d instances, token %q; want the launch asked again with token %q, nothing more launched",
			h.cloud.launches, h.cloud.count(), h.cloud.specs[1].ClientToken, id)
	}
	h.cloud.settle()
	h.reconcile()
	if st := h.status(id); st.Status != hf.StatusComplete || len(st.Machines) != 2 {
		t.Fatalf("adopted request: %+v", st)
	}
}

func TestStoreFailureLaunchesNothing(t *testing.T) {
	h := newHarness(t)
	h.st.FailWrites(errors.New("no space left on device"))
	_, err := hfraw(h.e).RequestMachines(nil, []byte(`{"template":{"templateId":"OnDemand-c5","machineCount":1}}`))
	var se *service.StoreError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "nothing was launched") {
		t.Fatalf("err = %v", err)
	}
	h.st.FailWrites(nil)
	h.provision()
	if h.cloud.launches != 0 || len(h.e.st.Requests) != 0 {
		t.Fatalf("launches=%d requests=%d", h.cloud.launches, len(h.e.st.Requests))
	}
}

func TestThrottledLaunchRetries(t *testing.T) {
	h := newHarness(t)
	h.cloud.launchErr = []error{&provider.Error{Op: "RunInstances", Code: "RequestLimitExceeded", Message: "Request limit exceeded.", Kind: provider.Throttled}}
	id := h.request("OnDemand-c5", 1)
	h.provision()
	st := h.status(id)
	// One retry time (issue 18, finding 6): the request's message names
	// the instant status reports, not a delay that goes stale.
	next := h.e.StatusReport().NextRetry
	if st.Status != hf.StatusRunning || next.IsZero() || st.Message != "AWS throttling; next attempt at "+next.UTC().Format("15:04:05Z") {
		t.Fatalf("throttled: %+v; status's next retry %v", st, next)
	}
	h.provision() // not due yet
	if h.cloud.launches != 1 {
		t.Fatalf("retried before the backoff: %d", h.cloud.launches)
	}
	h.clk.Advance(2 * time.Minute)
	h.provision()
	if h.cloud.launches != 2 || h.cloud.count() != 1 {
		t.Fatalf("after backoff: launches=%d instances=%d", h.cloud.launches, h.cloud.count())
	}
}

func TestFatalLaunchError(t *testing.T) {
	h := newHarness(t)
	h.cloud.launchErr = []error{&provider.Error{Op: "RunInstances", Code: "InvalidAMIID.NotFound", Message: "The image id '[ami-0123456789abcdef0]' does not exist", Kind: provider.Fatal}}
	id := h.request("OnDemand-c5", 1)
	h.provision()
	st := h.status(id)
	if st.Status != hf.StatusCompleteWithError || !strings.Contains(st.Message, "InvalidAMIID.NotFound") {
		t.Fatalf("fatal: %+v", st)
	}
	h.reconcile() // the instance types are known: no template is withheld
	tr, _ := hfraw(h.e).GetAvailableTemplates(nil, []byte(`{}`))
	if tr.Templates[0].AvailableNumber != 10 {
		t.Fatalf("a failed request holds nothing: available %d", tr.Templates[0].AvailableNumber)
	}
}

func TestShortfallEndsWithError(t *testing.T) {
	h := newHarness(t)
	h.cloud.capacity = 2
	id := h.request("OnDemand-c5", 5)
	h.provision()
	h.cloud.settle()
	h.reconcile()
	st := h.status(id)
	if st.Status != hf.StatusCompleteWithError || !strings.Contains(st.Message, "AWS launched 2 of 5 units") || len(st.Machines) != 2 {
		t.Fatalf("shortfall: %+v", st)
	}
}

func TestPendingTimeoutFailsAndTerminates(t *testing.T) {
	h := newHarness(t)
	id := h.request("OnDemand-c5", 1)
	h.provision()
	h.clk.Set(time.Unix(1_800_000_000, 0).Add(181 * time.Second))
	h.reconcile()
	st := h.status(id)
	if st.Status != hf.StatusCompleteWithError || st.Machines[0].Result != hf.ResultFail || !strings.Contains(st.Machines[0].Message, "pending") {
		t.Fatalf("pending timeout: %+v", st)
	}
	h.provision()
	if len(h.cloud.terms) != 1 {
		t.Fatalf("the stuck instance must be terminated: %v", h.cloud.terms)
	}
}

func TestReclaimedOutsideHF(t *testing.T) {
	h := newHarness(t)
	id := h.request("OnDemand-c5", 2)
	h.provision()
	h.cloud.settle()
	h.reconcile()
	st := h.status(id)
	a, b := st.Machines[0], st.Machines[1]
	// a: terminated from the console; b: vanished entirely.
	h.cloud.mu.Lock()
	h.cloud.insts[a.MachineID].State = "terminated"
	delete(h.cloud.insts, b.MachineID)
	h.cloud.mu.Unlock()
	listings := h.e.StatusReport().Listings
	h.reconcile() // a busy pass describes what is in flight only: not these
	in0 := fmt.Sprintf(`{"machines":[{"name":%q,"machineId":%q}]}`, a.Name, a.MachineID)
	if rr, _ := hfraw(h.e).GetReturnRequests(nil, []byte(in0)); len(rr.Requests) != 0 {
		t.Fatalf("seen before the next full listing? %+v", rr)
	}
	if n := h.e.StatusReport().Listings; n != listings {
		t.Fatalf("a busy pass counted as a full listing (%d -> %d)", listings, n)
	}
	h.clk.Advance(30 * time.Second) // the full listing, once per idle interval
	h.reconcile()
	if st := h.e.StatusReport(); st.Listings != listings+1 || !st.LastListing.Equal(h.clk.Now()) {
		t.Fatalf("after a full listing: %d listings (want %d), the last at %v (want %v)", st.Listings, listings+1, st.LastListing, h.clk.Now())
	}
	in := fmt.Sprintf(`{"machines":[{"name":%q,"machineId":%q},{"name":%q,"machineId":%q}]}`, a.Name, a.MachineID, b.Name, b.MachineID)
	rr, err := hfraw(h.e).GetReturnRequests(nil, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.Requests) != 2 || rr.Requests[0].Machine != a.Name || rr.Requests[0].GracePeriod != 0 || rr.Requests[1].Machine != b.Name {
		t.Fatalf("reclaims %+v", rr)
	}
	// The same hosts in a document the scan leaves to the parser half-way
	// (an escape in the last), with one host by its name only and one
	// ohfpd does not know: what the scan saw first is not counted twice.
	esc := fmt.Sprintf(`{"machines":[{"name":%q},{"name":"elsewhere","machineId":"i-0elsewhere"},{"name":"\u%04x%s","machineId":%q}]}`,
		b.Name, a.Name[0], a.Name[1:], a.MachineID)
	rr2, err := hfraw(h.e).GetReturnRequests(nil, []byte(esc))
	if err != nil || len(rr2.Requests) != 2 || rr2.Requests[0] != rr.Requests[1] || rr2.Requests[1] != rr.Requests[0] ||
		rr2.Message != "2 of 3 hosts are being taken back by the cloud; 1 host is not known to ohfpd" {
		t.Fatalf("reclaims from an escaped document %+v (%v), want those of %+v", rr2, err, rr)
	}
}

func TestSpotInterruptionGrace(t *testing.T) {
	h := newHarness(t)
	id := h.request("Spot-m5", 1)
	h.provision()
	h.cloud.settle()
	h.reconcile()
	m := h.status(id).Machines[0]
	if m.PriceType != "spot" {
		t.Fatalf("price type %q", m.PriceType)
	}
	h.cloud.mu.Lock()
	for k, sr := range h.cloud.spot {
		sr.StatusCode, sr.Interrupted = "instance-terminated-no-capacity", true // EC2's code for an instance set to terminate
		sr.StatusUpdate = h.clk.Now()
		h.cloud.spot[k] = sr
	}
	h.cloud.mu.Unlock()
	h.reconcile()
	h.clk.Advance(25 * time.Second)
	in := fmt.Sprintf(`{"machines":[{"name":%q,"machineId":%q}]}`, m.Name, m.MachineID)
	rr, _ := hfraw(h.e).GetReturnRequests(nil, []byte(in))
	if len(rr.Requests) != 1 || rr.Requests[0].GracePeriod != 95 {
		t.Fatalf("interruption: %+v", rr)
	}
}

func TestRebuildFromCloud(t *testing.T) {
	h := newHarness(t)
	id := h.request("OnDemand-c5", 2)
	h.provision()
	h.cloud.settle()
	h.reconcile()
	// The state directory is lost.
	h.loseStore()
	h.restart()
	h.reconcile()
	s := h.status(id)
	if s.Status != hf.StatusComplete || len(s.Machines) != 2 {
		t.Fatalf("rebuilt: %+v", s)
	}
	tr, _ := hfraw(h.e).GetAvailableTemplates(nil, []byte(`{}`))
	if tr.Templates[0].AvailableNumber != 8 {
		t.Fatalf("rebuilt machines hold capacity: available %d", tr.Templates[0].AvailableNumber)
	}
}

func TestUnknownRequestID(t *testing.T) {
	h := newHarness(t)
	st := h.status("req-00000000-0000-0000-0000-000000000000")
	if st.Status != hf.StatusCompleteWithError || !strings.Contains(st.Message, "not known") || st.Machines == nil {
		t.Fatalf("unknown: %+v", st)
	}
}

func TestStatusKeepsOrderAndSurvivesRestart(t *testing.T) {
	h := newHarness(t)
	a := h.request("OnDemand-c5", 1)
	b := h.request("Spot-m5", 1)
	h.provision()
	h.restart()
	rep, err := hfraw(h.e).GetRequestStatus(nil, []byte(fmt.Sprintf(`{"requests":[{"requestId":%q},{"requestId":%q}]}`, b, a)))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests[0].RequestID != b || rep.Requests[1].RequestID != a || len(rep.Requests[1].Machines) != 1 {
		t.Fatalf("order/restart: %+v", rep)
	}
	if got := h.e.st.Requests[a].Phase; got != domain.PhaseLaunched {
		t.Fatalf("phase after restart %q", got)
	}
}

func TestLaunchDuringListingIsNotAVanish(t *testing.T) {
	h := newHarness(t)
	id := h.request("OnDemand-c5", 2)
	// The launch completes after the pass took its listing but before it
	// folds the listing in: the new machines are absent from it.
	h.cloud.afterList = func() {
		h.cloud.afterList = nil
		h.provision()
	}
	h.clk.Advance(10 * time.Minute) // launch time far behind: only the ordering protects them
	h.reconcile()
	st := h.status(id)
	if len(st.Machines) != 2 {
		t.Fatalf("machines %+v", st)
	}
	for _, m := range st.Machines {
		if m.Result != hf.ResultExecuting || m.Status == "terminated" {
			t.Fatalf("a machine launched during the listing was taken as gone: %+v", m)
		}
	}
	h.cloud.settle()
	h.reconcile()
	if st := h.status(id); st.Status != hf.StatusComplete {
		t.Fatalf("after a normal pass: %+v", st)
	}
}

func TestFailedMachineStillUpIsTerminated(t *testing.T) {
	h := newHarness(t)
	id := h.request("OnDemand-c5", 1)
	h.provision()
	mid := h.status(id).Machines[0].MachineID
	// The cloud hides it for a pass (eventual consistency), then shows it
	// running again: HF was told it failed, so it must not live on.
	h.cloud.mu.Lock()
	hidden := h.cloud.insts[mid]
	delete(h.cloud.insts, mid)
	h.cloud.mu.Unlock()
	h.clk.Advance(5 * time.Minute)
	h.reconcile()
	if m := h.status(id).Machines[0]; m.Result != hf.ResultFail {
		t.Fatalf("hidden past the grace: %+v", m)
	}
	h.cloud.mu.Lock()
	hidden.State = "running"
	h.cloud.insts[mid] = hidden
	h.cloud.mu.Unlock()
	h.clk.Advance(30 * time.Second)
	h.reconcile()
	h.provision()
	if len(h.cloud.terms) != 1 || h.cloud.terms[0][0] != mid {
		t.Fatalf("the reappeared failed machine must be terminated: %v", h.cloud.terms)
	}
}

func TestBusyPassesDescribeOnlyWhatIsInFlight(t *testing.T) {
	h := newHarness(t)
	id := h.request("OnDemand-c5", 2)
	h.provision()
	h.reconcile() // first pass: a full listing
	if h.cloud.lists != 1 || h.cloud.describes != 0 {
		t.Fatalf("first pass: lists=%d describes=%d", h.cloud.lists, h.cloud.describes)
	}
	h.cloud.settle()
	h.reconcile() // busy: the two pending machines, by id
	if h.cloud.lists != 1 || h.cloud.describes != 1 {
		t.Fatalf("busy pass: lists=%d describes=%d", h.cloud.lists, h.cloud.describes)
	}
	if st := h.status(id); st.Status != hf.StatusComplete {
		t.Fatalf("the busy pass saw them running: %+v", st)
	}
	h.reconcile() // nothing in flight: no call at all
	if h.cloud.lists != 1 || h.cloud.describes != 1 {
		t.Fatalf("quiet pass: lists=%d describes=%d", h.cloud.lists, h.cloud.describes)
	}
	h.clk.Advance(30 * time.Second)
	h.reconcile()
	if h.cloud.lists != 2 {
		t.Fatalf("a full listing once per idle interval: lists=%d", h.cloud.lists)
	}
}

// A RunInstances template with several instance types and subnets tries
// the next pair when EC2 has no capacity in one: subnets first, then types,
// each pair with its own token, moved on durably before the call (a
// restart resumes at the same pair, with the same token); when none has
// capacity the request fails saying so.
func TestRunInstancesTriesNextPool(t *testing.T) {
	h := newHarness(t)
	h.tpls = append(h.tpls, template.Template{TemplateID: "OnDemand-pools", MaxNumber: 20, ImageID: "ami-0123456789abcdef0",
		VMTypes: template.Weights{{Type: "c5.large", Weight: 1}, {Type: "m5.large", Weight: 1}}, SubnetIDs: []string{"subnet-a", "subnet-b"}})
	h.restart()
	h.cloud.noCapacity = map[string]bool{"c5.large subnet-a": true, "c5.large subnet-b": true}

	id := h.request("OnDemand-pools", 2)
	h.provision()
	if st := h.status(id); st.Status != hf.StatusRunning || !strings.Contains(st.Message, "no capacity for c5.large in subnet-a") ||
		!strings.Contains(st.Message, "trying c5.large in subnet-b") {
		t.Fatalf("after the first pair: %s %q", st.Status, st.Message)
	}
	h.restart() // as after a crash: the pair moved on durably
	h.provision()
	h.provision()
	h.cloud.settle()
	h.reconcile()
	st := h.status(id)
	if st.Status != hf.StatusComplete || len(st.Machines) != 2 || st.Machines[0].InstanceType != "m5.large" {
		t.Fatalf("after the third pair: %s with %d machines (%+v): %q", st.Status, len(st.Machines), st.Machines, st.Message)
	}
	var got []string
	for _, s := range h.cloud.specs {
		got = append(got, s.Template.VMType+" "+s.Template.SubnetIDs[0]+" "+strings.TrimPrefix(s.ClientToken, id))
	}
	want := []string{"c5.large subnet-a ", "c5.large subnet-b -p1", "m5.large subnet-a -p2"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("launches asked %q, want %q", got, want)
	}

	// No pair has capacity: the request fails after the four, saying so.
	h.cloud.noCapacity["m5.large subnet-a"], h.cloud.noCapacity["m5.large subnet-b"] = true, true
	id2 := h.request("OnDemand-pools", 1)
	for range 4 {
		h.provision()
	}
	if st := h.status(id2); st.Status != hf.StatusCompleteWithError ||
		!strings.Contains(st.Message, "no capacity in any of the template's 4 instance type and subnet pairs") {
		t.Fatalf("with no capacity anywhere: %s %q", st.Status, st.Message)
	}
	if n := len(h.cloud.specs); n != 7 {
		t.Fatalf("%d launches asked in all, want 7", n)
	}
}

// A launch whose answer is lost (the call ran, ohfpd saw a transient
// error) is retried later with the same client token and the same request
// time, so that EC2 answers the first call's instances (a fleet's
// ValidUntil, derived from that time, is the same too, or EC2 would answer
// IdempotentParameterMismatch); the request adopts them: nothing launched
// twice.
func TestLaunchAnswerLostRetriedWithSameToken(t *testing.T) {
	h := newHarness(t)
	id := h.request("OnDemand-c5", 2)
	created := h.clk.Now()
	h.clk.Advance(time.Second)
	h.cloud.dropAnswers = 1
	h.provision()
	if h.cloud.launches != 1 || h.cloud.count() != 2 {
		t.Fatalf("after the lost answer: launches=%d instances=%d", h.cloud.launches, h.cloud.count())
	}
	if st := h.status(id); st.Status != hf.StatusRunning || len(st.Machines) != 0 {
		t.Fatalf("after the lost answer: %+v", st)
	}
	h.clk.Advance(2 * time.Minute) // past the retry's backoff
	h.provision()
	if h.cloud.launches != 2 || h.cloud.count() != 2 {
		t.Fatalf("after the retry: launches=%d instances=%d, want 2 launches and the 2 instances of the first", h.cloud.launches, h.cloud.count())
	}
	a, b := h.cloud.specs[0], h.cloud.specs[1]
	if a.ClientToken == "" || a.ClientToken != b.ClientToken {
		t.Fatalf("client tokens %q then %q, want the same", a.ClientToken, b.ClientToken)
	}
	if !a.RequestedAt.Equal(created) || !b.RequestedAt.Equal(created) {
		t.Fatalf("RequestedAt %v then %v, want the request's time %v on both", a.RequestedAt, b.RequestedAt, created)
	}
	h.cloud.settle()
	h.reconcile()
	st := h.status(id)
	if st.Status != hf.StatusComplete || len(st.Machines) != 2 {
		t.Fatalf("after the retry: %+v", st)
	}
	for _, m := range st.Machines {
		if _, ok := h.cloud.insts[m.MachineID]; !ok {
			t.Fatalf("machine %s is not one the first call launched", m.MachineID)
		}
	}
}

// A launch whose answer is lost, and of whose instances a reconcile pass
// sees only some (EC2 shows each new instance after its own delay): the
// pass adopts what it sees, but the request is not taken as launched with
// that part: it stays queued and the launch is asked again at once with
// the same token, which answers every instance of the first call. Before,
// the request ended complete_with_error with the part, and the rest,
// arriving late, were terminated as orphans.
func TestLaunchAnswerLostPartlyVisible(t *testing.T) {
	h := newHarness(t)
	id := h.request("OnDemand-c5", 3)
	h.cloud.dropAnswers = 1
	h.provision()
	if h.cloud.count() != 3 {
		t.Fatalf("the first call launched %d instances, want 3", h.cloud.count())
	}
	h.cloud.hidden = map[string]bool{h.cloud.order[1]: true, h.cloud.order[2]: true}
	h.cloud.settle()
	h.reconcile()
	if st := h.status(id); st.Status != hf.StatusRunning {
		t.Fatalf("after a pass that saw 1 of the 3 instances: %+v, want running", st)
	}
	h.provision() // due at once: no wait for the backoff
	if h.cloud.launches != 2 || h.cloud.count() != 3 || h.cloud.specs[1].ClientToken != h.cloud.specs[0].ClientToken {
		t.Fatalf("after the retry: %d launches, %d instances; want the launch asked again with its token and nothing more launched", h.cloud.launches, h.cloud.count())
	}
	h.cloud.hidden = nil
	h.reconcile()
	h.clk.Advance(time.Minute)
	h.reconcile()
	st := h.status(id)
	if st.Status != hf.StatusComplete || len(st.Machines) != 3 {
		t.Fatalf("after the retry: %+v, want complete with 3 machines", st)
	}
	if len(h.cloud.terms) != 0 {
		t.Fatalf("terminated %v, want nothing terminated", h.cloud.terms)
	}
}

// If asking again with the token fails for good after a pass adopted part
// of a lost launch, the request ends with the machines found (HF holds
// and returns them), saying why, instead of failing with them unlisted.
func TestLaunchAnswerLostRetryRefused(t *testing.T) {
	h := newHarness(t)
	id := h.request("OnDemand-c5", 3)
	h.cloud.dropAnswers = 1
	h.provision()
	h.cloud.hidden = map[string]bool{h.cloud.order[1]: true, h.cloud.order[2]: true}
	h.cloud.settle()
	h.reconcile()
	h.cloud.launchErr = []error{&provider.Error{Op: "RunInstances", Code: "IdempotentParameterMismatch", Message: "Arguments on this idempotent request are inconsistent", Kind: provider.Fatal}}
	h.provision()
	st := h.status(id)
	if st.Status != hf.StatusCompleteWithError || len(st.Machines) != 1 || st.Machines[0].Result != hf.ResultSucceed ||
		!strings.Contains(st.Message, "answer was lost") || !strings.Contains(st.Message, "IdempotentParameterMismatch") {
		t.Fatalf("after the retry was refused: %+v", st)
	}
}
