package reconcile

import (
	"context"
	"fmt"
	"slices"
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

// fakeCloud is a provider over a map of instances. It records its calls.
type fakeCloud struct {
	mu    sync.Mutex
	insts map[string]provider.Instance
	spot  []provider.SpotRequest
	calls []string
}

func (f *fakeCloud) note(c string) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
}

func (f *fakeCloud) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeCloud) put(in provider.Instance) {
	f.mu.Lock()
	f.insts[in.ID] = in
	f.mu.Unlock()
}

func (f *fakeCloud) Launch(context.Context, provider.LaunchSpec) (provider.LaunchResult, error) {
	panic("reconcile launched")
}

func (f *fakeCloud) List(_ context.Context, owner string) ([]provider.Instance, error) {
	f.note("List")
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []provider.Instance
	for _, in := range f.insts {
		if in.Tags[provider.TagManagedBy] == owner {
			out = append(out, in)
		}
	}
	return out, nil
}

func (f *fakeCloud) Describe(_ context.Context, owner string, ids, reqs []string) ([]provider.Instance, error) {
	slices.Sort(ids)
	f.note("Describe " + owner + " " + join(ids))
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []provider.Instance
	for _, in := range f.insts {
		if owner != "" && in.Tags[provider.TagManagedBy] != owner {
			continue
		}
		if slices.Contains(ids, in.ID) || slices.Contains(reqs, in.Tags[provider.TagRequestID]) {
			out = append(out, in)
		}
	}
	return out, nil
}

func (f *fakeCloud) Terminate(_ context.Context, ids []string) error {
	f.note("Terminate " + join(ids))
	return nil
}

func (f *fakeCloud) Tag(_ context.Context, ids []string, _ map[string]string) error {
	f.note("Tag " + join(ids))
	return nil
}

func (f *fakeCloud) Find(context.Context, string, provider.Query) ([]provider.Instance, error) {
	return nil, nil
}

func (f *fakeCloud) InstanceType(_ context.Context, name string) (provider.InstanceTypeInfo, error) {
	return provider.InstanceTypeInfo{Name: name, VCPUs: 2, Cores: 1, MemoryMiB: 4096, Arch: "x86_64"}, nil
}

func (f *fakeCloud) SpotRequests(_ context.Context, ids []string) ([]provider.SpotRequest, error) {
	slices.Sort(ids)
	f.note("SpotRequests " + join(ids))
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.spot), nil
}

// fleetCloud is a fakeCloud whose launches have handles (provider.Fleets):
// Poll answers status, the rest is recorded.
type fleetCloud struct {
	*fakeCloud
	status map[string]provider.FleetStatus
	capErr error // Cap's answer (after recording the call)
}

func (f *fleetCloud) Poll(_ context.Context, handles []string) (map[string]provider.FleetStatus, error) {
	f.note("Poll " + join(handles))
	out := map[string]provider.FleetStatus{}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range handles {
		st, ok := f.status[h]
		if !ok {
			st = provider.FleetStatus{Handle: h, NotFound: true}
		}
		out[h] = st
	}
	return out, nil
}

func (f *fleetCloud) Release(_ context.Context, h string, ids []string, units int) error {
	f.note(fmt.Sprintf("Release %s %s %d", h, join(ids), units))
	return nil
}

func (f *fleetCloud) Cap(_ context.Context, h string, keep int) error {
	f.note(fmt.Sprintf("Cap %s %d", h, keep))
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.capErr
}

func (f *fleetCloud) Delete(_ context.Context, h string) error {
	f.note("Delete " + h)
	return nil
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// world is a small fixture: one provider "aws" with template t1 in a
// cluster "c1", a fake clock at t0, an in-memory store.
type world struct {
	st    *state.State
	rc    *Reconciler
	cloud *fakeCloud
	clk   *clock.Fake
	kv    *store.Store
}

func newWorld(t *testing.T) *world { return newWorldOn(t, nil) }

// newWorldOn is newWorld over fc (nil: a plain fakeCloud without fleets).
func newWorldOn(t *testing.T, fc *fleetCloud) *world {
	t.Helper()
	kv, err := store.OpenInMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kv.Close() })
	cloud := &fakeCloud{insts: map[string]provider.Instance{}}
	var prov provider.Provider = cloud
	if fc != nil {
		fc.fakeCloud = cloud
		prov = fc
	}
	clk := clock.NewFake(t0)
	tpl := template.Template{TemplateID: "t1", MaxNumber: 10, VMType: "c5.large"}
	st, err := state.New(state.Options{
		ClusterID: "c1", Store: kv, Clock: clk,
		Providers: []state.ProviderConfig{{Name: "aws", Cloud: prov, Templates: []template.Template{tpl}, PendingTimeout: 180 * time.Second}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &world{st: st, rc: New(st), cloud: cloud, clk: clk, kv: kv}
}

// request records an acquire request of t1 for units, launched, claimed.
func (w *world) request(id string, units int) *domain.Request {
	r := &domain.Request{ID: id, Kind: domain.KindAcquire, Provider: "aws", TemplateID: "t1", Units: units,
		CreatedAt: w.clk.Now(), Phase: domain.PhaseLaunched, Attempts: 1}
	w.st.Mu.Lock()
	w.st.Requests[id] = r
	w.st.Mu.Unlock()
	return r
}

// machine records in as r's machine, as the launch's answer would (which
// is no sighting by a listing: LastSeen stays unset, as provision does).
func (w *world) machine(r *domain.Request, in provider.Instance) *domain.Machine {
	w.st.Mu.Lock()
	defer w.st.Mu.Unlock()
	m := w.st.NewMachineLocked(r, w.st.Providers["aws"].Templates["t1"], in, "", w.clk.Now())
	m.LastSeen = time.Time{}
	return m
}

// inst is an instance of request rid tagged for cluster c1.
func inst(id, rid string, s provider.State, ip string) provider.Instance {
	in := provider.Instance{ID: id, State: s, InstanceType: "c5.large", LaunchTime: t0, Tags: map[string]string{
		provider.TagManagedBy: "c1", provider.TagProvider: "aws", provider.TagRequestID: rid, provider.TagTemplateID: "t1",
	}}
	if ip != "" {
		in.PrivateIP, in.PrivateDNS = ip, "ip-"+ip+".ec2.internal"
	}
	return in
}

// onDisk loads the state a restart would see.
func (w *world) onDisk(t *testing.T) *state.State {
	t.Helper()
	s, err := state.New(state.Options{ClusterID: "c1", Store: w.kv, Clock: w.clk,
		Providers: []state.ProviderConfig{{Name: "aws", Cloud: w.cloud}}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (w *world) pass() time.Duration { return w.rc.ReconcileOnce(context.Background()) }

func resultOf(w *world, id string) (domain.State, hf.Result) {
	w.st.Mu.RLock()
	defer w.st.Mu.RUnlock()
	m := w.st.Machines[id]
	return m.State, m.Result
}
