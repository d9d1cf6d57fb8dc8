package service

import (
	"errors"
	"github.com/ohfp/ohfp/internal/state/statetest"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/clock"
	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/state"
	"github.com/ohfp/ohfp/internal/store"
	"github.com/ohfp/ohfp/internal/template"
)

// noCloud satisfies the state's check for a cloud; the service never
// calls it.
type noCloud struct{ provider.Provider }

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

var attrs = template.Attributes{{Name: "type", Type: "String", Value: "X86_64"}, {Name: "ncpus", Type: "Numeric", Value: "1"}, {Name: "nram", Type: "Numeric", Value: "4096"}}

type fixture struct {
	sv  *Service
	st  *state.State
	kv  *statetest.FaultKV
	clk *clock.Fake
}

// newFixture: providers aws (templates t1, maxNumber 4, and t2) and aws2,
// on an in-memory store, no cloud lookup.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	st0, err := store.OpenInMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st0.Close() })
	kv := statetest.NewFaultKV(st0)
	clk := clock.NewFake(t0)
	st, err := state.New(state.Options{ClusterID: "c1", Store: kv, Clock: clk, Providers: []state.ProviderConfig{
		{Name: "aws", Cloud: noCloud{}, Templates: []template.Template{
			{TemplateID: "t1", MaxNumber: 4, VMType: "c5.large", Attributes: attrs},
			{TemplateID: "t2", MaxNumber: -1, VMType: "c5.large", Attributes: attrs},
		}},
		{Name: "aws2", Cloud: noCloud{}, Templates: []template.Template{{TemplateID: "t9", MaxNumber: 1, VMType: "c5.large", Attributes: attrs}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{sv: New(st, nil), st: st, kv: kv, clk: clk}
}

// machine records a running machine of a new claimed request of t1.
func (f *fixture) machine(id, name string) *domain.Machine {
	f.st.Mu.Lock()
	defer f.st.Mu.Unlock()
	r := &domain.Request{ID: "req-" + id, Kind: domain.KindAcquire, Provider: "aws", TemplateID: "t1", Units: 1,
		CreatedAt: t0, Phase: domain.PhaseLaunched}
	f.st.Requests[r.ID] = r
	return f.st.NewMachineLocked(r, f.st.Providers["aws"].Templates["t1"], provider.Instance{ID: id, State: provider.StateRunning,
		PrivateIP: "10.0.0.1", PrivateDNS: name, InstanceType: "c5.large", LaunchTime: t0}, "", t0)
}

func (f *fixture) onDisk(t *testing.T) *state.State {
	t.Helper()
	s, err := state.New(state.Options{ClusterID: "c1", Store: f.kv, Clock: f.clk, Providers: []state.ProviderConfig{{Name: "aws", Cloud: noCloud{}}, {Name: "aws2", Cloud: noCloud{}}}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// getAvailableTemplates: the named provider's templates with what each
// can still launch (maxNumber less live machines and outstanding units;
// unlimited as a large number); an unknown provider name among several is
// refused, not served by the wrong account.
func TestGetAvailableTemplates(t *testing.T) {
	f := newFixture(t)
	f.machine("i-1", "h1")
	rep, err := f.sv.GetAvailableTemplates("aws")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Templates) != 2 || rep.Templates[0].TemplateID != "t1" || rep.Templates[0].AvailableNumber != 3 ||
		rep.Templates[1].AvailableNumber != UnlimitedAvailable {
		t.Errorf("templates %+v; want t1 with 3 available, t2 unlimited", rep.Templates)
	}
	if rep, err := f.sv.GetAvailableTemplates("aws2"); err != nil || len(rep.Templates) != 1 || rep.Templates[0].TemplateID != "t9" {
		t.Errorf("aws2: %+v %v", rep, err)
	}
	var ie *hf.InputError
	if _, err := f.sv.GetAvailableTemplates("azure"); !errors.As(err, &ie) || !strings.Contains(err.Error(), "aws, aws2") {
		t.Errorf("unknown provider: %v; want an input error naming the configured ones", err)
	}
}

// requestMachines: the request is durable (queued, with its client token,
// awaiting HF's claim) before the answer, and held from launch until the
// answer is delivered; more than available, or a full disk, is refused
// with nothing recorded.
func TestRequestMachines(t *testing.T) {
	f := newFixture(t)
	rep, delivered, err := f.sv.RequestMachinesHeld("aws", hf.RequestMachines{TemplateID: "t1", MachineCount: 3})
	if err != nil || !domain.IsRequestID(rep.RequestID) || !strings.HasPrefix(rep.RequestID, "req-") {
		t.Fatalf("RequestMachinesHeld = %+v, %v", rep, err)
	}
	r := f.onDisk(t).Requests[rep.RequestID]
	if r == nil || r.Phase != domain.PhaseQueued || r.ClientToken == "" || r.Units != 3 || !r.AwaitingClaim || !r.AnswerPending {
		t.Fatalf("on disk before the answer: %+v", r)
	}
	if !f.st.Undelivered[rep.RequestID] {
		t.Error("launchable before its answer was delivered")
	}
	delivered(true)
	if f.st.Undelivered[rep.RequestID] || f.onDisk(t).Requests[rep.RequestID].AnswerPending {
		t.Error("delivered: still held, or the delivery not recorded")
	}

	var ie *hf.InputError
	if _, err := f.sv.RequestMachines("aws", hf.RequestMachines{TemplateID: "t1", MachineCount: 2}); !errors.As(err, &ie) || !strings.Contains(err.Error(), "1 unit available") {
		t.Errorf("over maxNumber: %v; want refused with what is available", err)
	}
	if _, err := f.sv.RequestMachines("aws", hf.RequestMachines{TemplateID: "nope", MachineCount: 1}); !errors.As(err, &ie) || !strings.Contains(err.Error(), "known: t1, t2") {
		t.Errorf("unknown template: %v", err)
	}
	f.kv.SetErr(errors.New("no space left on device"))
	var se *StoreError
	if _, err := f.sv.RequestMachines("aws", hf.RequestMachines{TemplateID: "t2", MachineCount: 1}); !errors.As(err, &se) {
		t.Errorf("full disk: %v; want a StoreError", err)
	}
	if len(f.st.Requests) != 1 {
		t.Errorf("%d requests in memory; the refused ones must leave none", len(f.st.Requests))
	}
}

// An answer that could not be delivered ends the request with nothing
// launched, durably.
func TestRequestMachinesUndelivered(t *testing.T) {
	f := newFixture(t)
	rep, delivered, err := f.sv.RequestMachinesHeld("aws", hf.RequestMachines{TemplateID: "t1", MachineCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	delivered(false)
	r := f.onDisk(t).Requests[rep.RequestID]
	if r == nil || r.Phase != domain.PhaseFailed || r.Status != hf.StatusCompleteWithError || !strings.Contains(r.LaunchError, "could not be delivered") {
		t.Errorf("on disk: %+v; want failed, complete_with_error, saying why", r)
	}
}

// getRequestStatus: one answer per id in the asked order; an id never made
// here is complete_with_error saying so; a machine the cloud no longer
// shows is reported terminated (HF's word, not ohfp's gone); asking claims the request,
// durably.
func TestGetRequestStatus(t *testing.T) {
	f := newFixture(t)
	m := f.machine("i-1", "h1")
	f.st.Requests[m.RequestID].AwaitingClaim = true
	m.AwaitingClaim = true
	g := f.machine("i-2", "h2")
	g.Vanish(t0)
	unknown := "req-00000000-0000-7000-8000-000000000000"
	rep := f.sv.GetRequestStatus([]string{unknown, m.RequestID, g.RequestID})
	if len(rep.Requests) != 3 || rep.Requests[0].RequestID != unknown || rep.Requests[1].RequestID != m.RequestID {
		t.Fatalf("answers %+v", rep.Requests)
	}
	if u := rep.Requests[0]; u.Status != hf.StatusCompleteWithError || !strings.Contains(u.Message, "not known to ohfpd") {
		t.Errorf("unknown id: %+v", u)
	}
	if a := rep.Requests[1]; a.Status != hf.StatusComplete || len(a.Machines) != 1 || a.Machines[0].Result != hf.ResultSucceed || a.Machines[0].Status != "running" {
		t.Errorf("running request: %+v", a)
	}
	if b := rep.Requests[2]; len(b.Machines) != 1 || b.Machines[0].Status != "terminated" || b.Machines[0].Result != hf.ResultSucceed {
		t.Errorf("gone machine: %+v; want status terminated (not ohfp's gone), result still succeed", b)
	}
	if f.onDisk(t).Requests[m.RequestID].AwaitingClaim {
		t.Error("asked about, but a restart still takes it as unclaimed")
	}
}

// requestReturnMachines: a return request is recorded with the machines
// HF named (by id or by name) marked returned, durably; hosts ohfpd does
// not hold are named in the answer and ignored.
func TestRequestReturnMachines(t *testing.T) {
	f := newFixture(t)
	f.machine("i-1", "h1")
	f.machine("i-2", "h2")
	rep, err := f.sv.RequestReturnMachines("aws", []hf.MachineRef{{MachineID: "i-1"}, {Name: "h2"}, {Name: "elsewhere"}})
	if err != nil || !strings.HasPrefix(rep.RequestID, "ret-") {
		t.Fatalf("RequestReturnMachines = %+v, %v", rep, err)
	}
	if !strings.Contains(rep.Message, "Returning 2 machines") || !strings.Contains(rep.Message, "not provisioned by ohfpd") || !strings.Contains(rep.Message, "elsewhere") {
		t.Errorf("message %q", rep.Message)
	}
	d := f.onDisk(t)
	for _, id := range []string{"i-1", "i-2"} {
		if d.Machines[id].ReturnID != rep.RequestID {
			t.Errorf("%s on disk not returned by %s: %+v", id, rep.RequestID, d.Machines[id])
		}
	}
	if r := d.Requests[rep.RequestID]; r == nil || r.Kind != domain.KindReturn || len(r.Unknown) != 1 {
		t.Errorf("return request on disk %+v", r)
	}
}

// getReturnRequests: of the hosts HF holds, those the cloud takes back:
// reclaimed with no grace, interrupted with what is left of the two
// minutes; the others, and hosts ohfpd does not know, are counted only.
func TestGetReturnRequests(t *testing.T) {
	f := newFixture(t)
	f.machine("i-1", "h1")
	r := f.machine("i-2", "h2")
	r.ReclaimedAt = t0
	s := f.machine("i-3", "h3")
	s.InterruptAt = t0
	f.clk.Advance(30 * time.Second)
	rep, ok := f.sv.GetReturnRequests(HostRefs([]hf.MachineRef{{Name: "h1"}, {Name: "h2", MachineID: "i-2"}, {MachineID: "i-3"}, {Name: "stranger"}}))
	if !ok {
		t.Fatal("not ok")
	}
	want := []hf.ReturnRequest{{Machine: "h2", GracePeriod: 0}, {Machine: "h3", GracePeriod: 90}}
	if len(rep.Requests) != 2 || rep.Requests[0] != want[0] || rep.Requests[1] != want[1] {
		t.Errorf("requests %+v, want %+v", rep.Requests, want)
	}
	if !strings.Contains(rep.Message, "2 of 4 hosts are being taken back") || !strings.Contains(rep.Message, "1 host is not known") {
		t.Errorf("message %q", rep.Message)
	}
}

// A request whose final status is still being written when
// getRequestStatus has waited all its rounds is answered running ("ask
// again"), never final: a crash before the write would undo it.
func TestFinalStatusStillBeingWrittenAnsweredRunning(t *testing.T) {
	f := newFixture(t)
	m := f.machine("i-1", "h1")
	r := f.st.Requests[m.RequestID]
	if st := f.sv.GetRequestStatus([]string{r.ID}).Requests[0]; st.Status != hf.StatusComplete {
		t.Fatalf("before: %+v", st)
	}
	f.kv.Hold()
	f.st.Mu.Lock()
	w := f.st.Stage([]*domain.Request{r}, nil)
	f.st.Mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- w.Wait() }()

	old := maxStatusRounds
	maxStatusRounds = 0
	defer func() { maxStatusRounds = old }()
	st := f.sv.GetRequestStatus([]string{r.ID}).Requests[0]
	if st.Status != hf.StatusRunning || len(st.Machines) != 0 || !strings.Contains(st.Message, "ask again") {
		t.Fatalf("final status shown while its write is under way: %+v", st)
	}
	f.kv.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := f.sv.GetRequestStatus([]string{r.ID}).Requests[0]; st.Status != hf.StatusComplete {
		t.Fatalf("written: %+v", st)
	}
}
