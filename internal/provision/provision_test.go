package provision

import (
	"context"
	"errors"
	"github.com/ohfp/ohfp/internal/state/statetest"
	"slices"
	"strings"
	"sync"
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

// launchCloud answers launches from errs in turn (nil: one instance per
// unit) and records every call, with what the disk held for the request
// when the call was made.
type launchCloud struct {
	provider.Provider
	kv       state.KV
	mu       sync.Mutex
	errs     []error
	launches []provider.LaunchSpec
	onDisk   []string // the request's record at each launch
	calls    []string
}

func (c *launchCloud) Launch(_ context.Context, spec provider.LaunchSpec) (provider.LaunchResult, error) {
	var rec string
	c.kv.Scan(state.KeyRequest+spec.RequestID, func(_ string, v []byte) error { rec = string(v); return nil })
	c.mu.Lock()
	defer c.mu.Unlock()
	c.launches = append(c.launches, spec)
	c.onDisk = append(c.onDisk, rec)
	if len(c.errs) > 0 {
		err := c.errs[0]
		c.errs = c.errs[1:]
		if err != nil {
			return provider.LaunchResult{}, err
		}
	}
	var res provider.LaunchResult
	for i := range spec.Units {
		res.Instances = append(res.Instances, provider.Instance{ID: spec.RequestID + "-i" + string(rune('0'+i)), State: provider.StatePending, InstanceType: "c5.large"})
	}
	return res, nil
}

func (c *launchCloud) Tag(_ context.Context, ids []string, tags map[string]string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, "Tag "+strings.Join(ids, ",")+" "+tags[provider.TagReturnID])
	return nil
}

func (c *launchCloud) Terminate(_ context.Context, ids []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, "Terminate "+strings.Join(ids, ","))
	return nil
}

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

type fixture struct {
	st    *state.State
	pv    *Provisioner
	cloud *launchCloud
	kv    *statetest.FaultKV
	clk   *clock.Fake
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	mem, err := store.OpenInMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	kv := statetest.NewFaultKV(mem)
	cloud := &launchCloud{kv: kv}
	clk := clock.NewFake(t0)
	st, err := state.New(state.Options{ClusterID: "c1", Store: kv, Clock: clk, Providers: []state.ProviderConfig{
		{Name: "aws", Cloud: cloud, Templates: []template.Template{{TemplateID: "t1", MaxNumber: 10, VMType: "c5.large"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, pv: New(st), cloud: cloud, kv: kv, clk: clk}
}

// queue records a queued request as requestMachines does, delivered.
func (f *fixture) queue(t *testing.T, id string, units int) *domain.Request {
	t.Helper()
	r := &domain.Request{ID: id, Kind: domain.KindAcquire, Provider: "aws", TemplateID: "t1", Units: units,
		CreatedAt: f.clk.Now(), ClientToken: "tok-" + id, Phase: domain.PhaseQueued}
	if err := f.st.Persist([]*domain.Request{r}, nil); err != nil {
		t.Fatal(err)
	}
	f.st.Mu.Lock()
	f.st.Requests[id] = r
	f.st.Mu.Unlock()
	return r
}

func (f *fixture) round() time.Duration {
	next := f.pv.ProvisionOnce(context.Background())
	f.pv.Wait()
	return next
}

func (f *fixture) request(id string) domain.Request {
	f.st.Mu.RLock()
	defer f.st.Mu.RUnlock()
	return *f.st.Requests[id]
}

// Write ahead: each launch's attempt and client token are on disk before
// the cloud call; a launched request is not launched again.
func TestLaunchWriteAhead(t *testing.T) {
	f := newFixture(t)
	f.queue(t, "req-1", 2)
	f.round()
	f.round()
	if len(f.cloud.launches) != 1 {
		t.Fatalf("%d launches, want 1", len(f.cloud.launches))
	}
	if s := f.cloud.launches[0]; s.ClientToken != "tok-req-1" || s.Units != 2 || s.Tags[provider.TagRequestID] != "req-1" || s.Tags[provider.TagManagedBy] != "c1" {
		t.Errorf("launch spec %+v", s)
	}
	if rec := f.cloud.onDisk[0]; !strings.Contains(rec, `"attempts":1`) || !strings.Contains(rec, `"clientToken":"tok-req-1"`) {
		t.Errorf("at the cloud call the disk held %s; want attempt 1 and the token", rec)
	}
	if r := f.request("req-1"); r.Phase != domain.PhaseLaunched || len(r.MachineIDs) != 2 {
		t.Errorf("after the launch: %+v", r)
	}
}

// A disk that refuses the attempt's record stops the launch: no cloud
// call without its token durable; the attempt is retried once it writes.
func TestLaunchNeedsTheDisk(t *testing.T) {
	f := newFixture(t)
	f.queue(t, "req-1", 1)
	f.kv.SetErr(errors.New("no space left on device"))
	f.round()
	if len(f.cloud.launches) != 0 {
		t.Fatalf("launched with the attempt not on disk: %+v", f.cloud.launches)
	}
	if r := f.request("req-1"); r.Phase != domain.PhaseQueued || r.Attempts != 0 {
		t.Errorf("after a refused write: %+v; want still queued, no attempt counted", r)
	}
	f.kv.SetErr(nil)
	f.clk.Advance(5 * time.Second)
	f.round()
	if len(f.cloud.launches) != 1 {
		t.Errorf("%d launches once the disk writes, want 1", len(f.cloud.launches))
	}
}

// A request whose requestMachines answer is not delivered yet is not
// launched.
func TestLaunchWaitsForDelivery(t *testing.T) {
	f := newFixture(t)
	f.queue(t, "req-1", 1)
	f.st.Mu.Lock()
	f.st.Undelivered["req-1"] = true
	f.st.Mu.Unlock()
	f.round()
	if len(f.cloud.launches) != 0 {
		t.Fatal("launched before the answer was delivered")
	}
}

// Throttling is retried later with backoff and the same token; a fatal
// refusal ends the request complete_with_error with AWS's reason.
func TestLaunchRetriesAndFailures(t *testing.T) {
	f := newFixture(t)
	f.cloud.errs = []error{
		&provider.Error{Op: "RunInstances", Code: "RequestLimitExceeded", Message: "slow down", Kind: provider.Throttled},
		nil,
	}
	f.queue(t, "req-1", 1)
	f.round()
	r := f.request("req-1")
	if r.Phase != domain.PhaseQueued || !r.NextAttempt.After(t0) || !strings.Contains(r.RetryNote, "AWS throttling") {
		t.Fatalf("after throttling: %+v", r)
	}
	if next := f.round(); next > r.NextAttempt.Sub(t0) {
		t.Errorf("next round in %v, after the retry is due (%v)", next, r.NextAttempt.Sub(t0))
	}
	if len(f.cloud.launches) != 1 {
		t.Fatal("retried before its backoff")
	}
	f.clk.Set(r.NextAttempt)
	f.round()
	if len(f.cloud.launches) != 2 || f.cloud.launches[1].ClientToken != f.cloud.launches[0].ClientToken {
		t.Fatalf("retry: %+v; want a second launch with the same token", f.cloud.launches)
	}

	f.cloud.errs = []error{&provider.Error{Op: "RunInstances", Code: "InvalidAMIID.NotFound", Message: "no such image", Kind: provider.Fatal}}
	f.queue(t, "req-2", 1)
	f.round()
	if r := f.request("req-2"); r.Phase != domain.PhaseFailed || r.Status != hf.StatusCompleteWithError || !strings.Contains(r.LaunchError, "InvalidAMIID.NotFound") {
		t.Errorf("after a fatal refusal: %+v", r)
	}
}

// A machine HF returned gets the return's id written on it before it is
// terminated; the termination is recorded durably.
func TestTerminateReturned(t *testing.T) {
	f := newFixture(t)
	f.queue(t, "req-1", 1)
	f.round()
	id := f.request("req-1").MachineIDs[0]
	f.st.Mu.Lock()
	ret := &domain.Request{ID: "ret-1", Kind: domain.KindReturn, Provider: "aws", CreatedAt: t0, MachineIDs: []string{id}}
	f.st.Requests[ret.ID] = ret
	f.st.Machines[id].ReturnID = ret.ID
	f.st.Mu.Unlock()
	f.round()
	want := []string{"Tag " + id + " ret-1", "Terminate " + id}
	if !slices.Equal(f.cloud.calls, want) {
		t.Errorf("calls %q, want %q", f.cloud.calls, want)
	}
	d, err := state.New(state.Options{ClusterID: "c1", Store: f.kv, Clock: f.clk, Providers: []state.ProviderConfig{{Name: "aws", Cloud: f.cloud}}})
	if err != nil {
		t.Fatal(err)
	}
	if m := d.Machines[id]; m == nil || !m.TerminateSent {
		t.Errorf("on disk: %+v; want the termination recorded", m)
	}
	f.round()
	if len(f.cloud.calls) != 2 {
		t.Errorf("terminated again: %q", f.cloud.calls)
	}
}
