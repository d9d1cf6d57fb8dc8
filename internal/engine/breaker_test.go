package engine

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// restartBreaker builds the engine with the failure breaker on.
func (h *harness) restartBreaker(failures int, cooldown time.Duration) {
	h.t.Helper()
	e, err := New(Options{
		ClusterID: "test",
		Providers: []ProviderConfig{{Name: "aws", Templates: h.tpls, Cloud: h.cloud, BreakerFailures: failures, BreakerCooldown: cooldown}},
		Store:     h.st,
		Clock:     h.clk,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.e = e
}

func (h *harness) available(tpl string) (int, string) {
	h.t.Helper()
	tr, err := hfraw(h.e).GetAvailableTemplates(nil, []byte(`{}`))
	if err != nil {
		h.t.Fatal(err)
	}
	for _, t := range tr.Templates {
		if t.TemplateID == tpl {
			return t.AvailableNumber, tr.Message
		}
	}
	h.t.Fatalf("no template %s in %+v", tpl, tr)
	return 0, ""
}

func badAMI() error {
	return &provider.Error{Op: "RunInstances", Code: "InvalidAMIID.NotFound", Message: "The image id '[ami-0123456789abcdef0]' does not exist", Kind: provider.Fatal}
}

func TestBreakerStopsATemplateAndRearms(t *testing.T) {
	h := newHarness(t)
	h.restartBreaker(2, 10*time.Minute)
	h.reconcile() // instance types known
	// Throttling, AWS failures and capacity never count.
	h.cloud.launchErr = []error{&provider.Error{Op: "RunInstances", Code: "VcpuLimitExceeded", Kind: provider.Quota, Message: "limit"}}
	first := h.request("OnDemand-c5", 1)
	h.provision()
	if st := h.status(first); st.Status != hf.StatusCompleteWithError {
		t.Fatalf("quota: %+v", st)
	}
	h.cloud.launchErr = []error{badAMI(), badAMI()}
	second := h.request("OnDemand-c5", 1)
	h.provision()
	st := h.status(second)
	if st.Status != hf.StatusCompleteWithError || !strings.Contains(st.Message, "stopped launching after 2 failures") {
		t.Fatalf("the second failure trips it: %+v", st)
	}
	if n, msg := h.available("OnDemand-c5"); n != 0 || !strings.Contains(msg, "template OnDemand-c5 stopped launching") || !strings.Contains(msg, "ohfp rearm OnDemand-c5") {
		t.Fatalf("tripped: available %d, message %q", n, msg)
	}
	if n, _ := h.available("Spot-m5"); n == 0 {
		t.Fatal("another template is not stopped")
	}
	_, err := hfraw(h.e).RequestMachines(nil, []byte(`{"template":{"templateId":"OnDemand-c5","machineCount":1}}`))
	if err == nil || !strings.Contains(err.Error(), "ohfp rearm OnDemand-c5") {
		t.Fatalf("requestMachines on a stopped template: %v", err)
	}
	rep := h.e.StatusReport()
	if len(rep.Breakers) != 1 || !rep.Breakers[0].Tripped || rep.Breakers[0].Failures != 2 || !strings.Contains(rep.Breakers[0].Reason, "InvalidAMIID.NotFound") {
		t.Fatalf("status breakers %+v", rep.Breakers)
	}
	launches := h.cloud.launches

	// Durable: a restart does not re-arm it.
	h.restartBreaker(2, 10*time.Minute)
	if n, _ := h.available("OnDemand-c5"); n != 0 {
		t.Fatal("a restart re-armed the breaker")
	}
	// The operator re-arms it.
	if ans, err := h.e.Rearm("", "OnDemand-c5", "uid 0 (root)"); err != nil || !strings.Contains(ans.Message, "re-armed") {
		t.Fatalf("rearm: %+v %v", ans, err)
	}
	if n, _ := h.available("OnDemand-c5"); n != 10 {
		t.Fatalf("re-armed: available %d", n)
	}
	h.restartBreaker(2, 10*time.Minute)
	if n, _ := h.available("OnDemand-c5"); n != 10 {
		t.Fatal("the re-arm was not durable")
	}

	// Trips again; the cooldown re-arms it.
	h.cloud.launchErr = []error{badAMI(), badAMI()}
	for range 2 {
		h.request("OnDemand-c5", 1)
		h.provision()
	}
	if n, _ := h.available("OnDemand-c5"); n != 0 {
		t.Fatal("not tripped again")
	}
	h.clk.Advance(10 * time.Minute)
	if n, _ := h.available("OnDemand-c5"); n != 10 {
		t.Fatalf("after the cooldown: available %d", n)
	}
	h.reconcile() // forgets it durably
	h.restartBreaker(2, 10*time.Minute)
	if n, _ := h.available("OnDemand-c5"); n != 10 || len(h.e.StatusReport().Breakers) != 0 {
		t.Fatalf("cooldown re-arm not durable: %+v", h.e.StatusReport().Breakers)
	}
	if h.cloud.launches != launches+2 {
		t.Fatalf("launches while stopped: %d", h.cloud.launches-launches-2)
	}

	// A success resets the count; a reload re-arms.
	h.cloud.launchErr = []error{badAMI()}
	h.request("OnDemand-c5", 1)
	h.provision()
	ok := h.request("OnDemand-c5", 1)
	h.provision()
	h.cloud.settle()
	h.reconcile()
	if st := h.status(ok); st.Status != hf.StatusComplete {
		t.Fatalf("ok: %+v", st)
	}
	if bs := h.e.StatusReport().Breakers; len(bs) != 0 {
		t.Fatalf("a machine running resets the count: %+v", bs)
	}
	h.cloud.launchErr = []error{badAMI(), badAMI()}
	for range 2 {
		h.request("OnDemand-c5", 1)
		h.provision()
	}
	if n, _ := h.available("OnDemand-c5"); n != 0 {
		t.Fatal("not tripped a third time")
	}
	// A reload of the same definition (a file rewritten as it was) is no
	// fix: it stays stopped. One that changes the template re-arms it.
	if err := h.e.Reload([]ProviderConfig{{Name: "aws", Templates: h.tpls, Cloud: h.cloud, BreakerFailures: 2, BreakerCooldown: 10 * time.Minute}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := h.available("OnDemand-c5"); n != 0 {
		t.Fatal("a reload of the unchanged template re-armed it")
	}
	changed := slices.Clone(h.tpls)
	for i := range changed {
		if changed[i].TemplateID == "OnDemand-c5" {
			changed[i].ImageID = "ami-0fixed0000000000"
		}
	}
	if err := h.e.Reload([]ProviderConfig{{Name: "aws", Templates: changed, Cloud: h.cloud, BreakerFailures: 2, BreakerCooldown: 10 * time.Minute}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := h.available("OnDemand-c5"); n == 0 {
		t.Fatal("a reload that changed the template did not re-arm it")
	}
}

func TestBreakerCountsInstancesDyingBeforeRunning(t *testing.T) {
	h := newHarness(t)
	h.restartBreaker(2, 0)
	h.reconcile()
	die := func(reason string) {
		id := h.request("OnDemand-c5", 2)
		h.provision()
		h.cloud.mu.Lock()
		for _, in := range h.cloud.insts {
			if in.Tags[provider.TagRequestID] == id {
				in.State, in.StateReason = "terminated", reason
			}
		}
		h.cloud.mu.Unlock()
		h.clk.Advance(time.Minute)
		h.reconcile()
		h.reconcile()
	}
	die("Server.InsufficientInstanceCapacity") // capacity: never counts
	die("Client.UserInitiatedShutdown")        // a person: never counts
	if bs := h.e.StatusReport().Breakers; len(bs) != 0 {
		t.Fatalf("counted: %+v", bs)
	}
	die("Server.InternalError") // two machines, one request: one failure
	if bs := h.e.StatusReport().Breakers; len(bs) != 1 || bs[0].Failures != 1 || bs[0].Tripped {
		t.Fatalf("one request counts once: %+v", bs)
	}
	die("Client.VolumeLimitExceeded")
	bs := h.e.StatusReport().Breakers
	if len(bs) != 1 || !bs[0].Tripped || !strings.Contains(bs[0].Reason, "Client.VolumeLimitExceeded") || !bs[0].Until.IsZero() {
		t.Fatalf("tripped by deaths, no cooldown: %+v", bs)
	}
	h.clk.Advance(24 * time.Hour)
	if n, _ := h.available("OnDemand-c5"); n != 0 {
		t.Fatal("breaker_cooldown 0: only the operator or a reload re-arm")
	}
}

// A RunInstances template with several pools: a pool the provider
// remembers without capacity is asked last, with its own token.
func TestLaunchSkipsRememberedPoolsFirst(t *testing.T) {
	h := newHarness(t)
	h.tpls = append(h.tpls, template.Template{TemplateID: "Multi", MaxNumber: 10, VMType: "c5.large", ImageID: "ami-0123456789abcdef0",
		SubnetIDs: []string{"subnet-a", "subnet-b", "subnet-c"}, Attributes: template.Attributes{{Name: "type", Type: "String", Value: "X86_64"}}})
	mem := &rankingCloud{fakeCloud: h.cloud, remembered: map[string]bool{}}
	e, err := New(Options{ClusterID: "test", Providers: []ProviderConfig{{Name: "aws", Templates: h.tpls, Cloud: mem}}, Store: h.st, Clock: h.clk})
	if err != nil {
		t.Fatal(err)
	}
	h.e = e
	h.cloud.noCapacity = map[string]bool{"c5.large subnet-a": true}
	mem.remembered["subnet-a"] = true
	id := h.request("Multi", 1)
	h.provision()
	for h.cloud.launches < 1 {
		h.provision()
	}
	specs := h.cloud.specs
	if len(specs) != 1 || specs[0].Template.SubnetIDs[0] != "subnet-b" || specs[0].ClientToken != id+"-p1" {
		t.Fatalf("first launch %+v, want subnet-b with its own token", specs)
	}
	// Everything remembered: AWS is still asked, in the ranked order.
	mem.remembered["subnet-b"], mem.remembered["subnet-c"] = true, true
	h.cloud.noCapacity["c5.large subnet-b"], h.cloud.noCapacity["c5.large subnet-c"] = true, true
	id2 := h.request("Multi", 1)
	for range 5 {
		h.provision()
	}
	var asked []string
	for _, s := range h.cloud.specs[1:] {
		asked = append(asked, s.Template.SubnetIDs[0])
	}
	if !slices.Equal(asked, []string{"subnet-a", "subnet-b", "subnet-c"}) {
		t.Fatalf("all remembered: asked %v", asked)
	}
	if st := h.status(id2); st.Status != hf.StatusCompleteWithError || !strings.Contains(st.Message, "no capacity in any") {
		t.Fatalf("%+v", st)
	}
}

// rankingCloud is the fake cloud with a capacity memory by subnet.
type rankingCloud struct {
	*fakeCloud
	remembered map[string]bool
}

func (c *rankingCloud) Rank(spec provider.LaunchSpec, alts []int) []int {
	var fresh, old []int
	for _, i := range alts {
		s, _ := c.Alternative(spec, i)
		if c.remembered[s.Template.SubnetIDs[0]] {
			old = append(old, i)
		} else {
			fresh = append(fresh, i)
		}
	}
	return append(fresh, old...)
}

func (c *rankingCloud) Unavailable() []provider.Unavailable { return nil }
