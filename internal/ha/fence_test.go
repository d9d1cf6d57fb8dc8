package ha

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// cloud counts the calls that reach it.
type cloud struct{ calls map[string]int }

func (c *cloud) note(op string) { c.calls[op]++ }
func (c *cloud) Launch(context.Context, provider.LaunchSpec) (provider.LaunchResult, error) {
	c.note("Launch")
	return provider.LaunchResult{}, nil
}
func (c *cloud) List(context.Context, string) ([]provider.Instance, error) {
	c.note("List")
	return nil, nil
}
func (c *cloud) Describe(context.Context, string, []string, []string) ([]provider.Instance, error) {
	c.note("Describe")
	return nil, nil
}
func (c *cloud) Terminate(context.Context, []string) error { c.note("Terminate"); return nil }
func (c *cloud) Tag(context.Context, []string, map[string]string) error {
	c.note("Tag")
	return nil
}
func (c *cloud) Find(context.Context, string, provider.Query) ([]provider.Instance, error) {
	c.note("Find")
	return nil, nil
}
func (c *cloud) InstanceType(context.Context, string) (provider.InstanceTypeInfo, error) {
	c.note("InstanceType")
	return provider.InstanceTypeInfo{}, nil
}
func (c *cloud) SpotRequests(context.Context, []string) ([]provider.SpotRequest, error) {
	c.note("SpotRequests")
	return nil, nil
}
func (c *cloud) Poll(context.Context, []string) (map[string]provider.FleetStatus, error) {
	c.note("Poll")
	return nil, nil
}
func (c *cloud) Release(context.Context, string, []string, int) error { c.note("Release"); return nil }
func (c *cloud) Cap(context.Context, string, int) error               { c.note("Cap"); return nil }
func (c *cloud) Delete(context.Context, string) error                 { c.note("Delete"); return nil }
func (c *cloud) Alternatives(*template.Template) int                  { return 3 }
func (c *cloud) Alternative(s provider.LaunchSpec, i int) (provider.LaunchSpec, string) {
	return s, "pool"
}
func (c *cloud) Fallback(s provider.LaunchSpec) (provider.LaunchSpec, bool) { return s, true }
func (c *cloud) Rank(_ provider.LaunchSpec, alts []int) []int {
	out := append([]int(nil), alts...)
	slices.Reverse(out)
	return out
}
func (c *cloud) Unavailable() []provider.Unavailable { return []provider.Unavailable{{}} }

// Without the lease no action reaches the cloud (each refusal Transient,
// retried by the next holder); reads do; the cloud's fleets and launch
// policy are kept.
func TestFenceProvider(t *testing.T) {
	c := &cloud{calls: map[string]int{}}
	var may error
	p := FenceProvider(c, func() error { return may })
	fl, ok := p.(provider.Fleets)
	if !ok {
		t.Fatal("fenced cloud lost Fleets")
	}
	if n := provider.PlannerOf(p).Alternatives(nil); n != 3 {
		t.Fatalf("fenced cloud lost its Planner (%d alternatives)", n)
	}
	cm, ok := p.(provider.CapacityMemory)
	if !ok || !slices.Equal(cm.Rank(provider.LaunchSpec{}, []int{0, 1, 2}), []int{2, 1, 0}) || len(cm.Unavailable()) != 1 {
		t.Fatal("fenced cloud lost its capacity memory")
	}
	ctx := context.Background()
	acts := func() []error {
		_, e1 := p.Launch(ctx, provider.LaunchSpec{})
		return []error{e1, p.Terminate(ctx, nil), p.Tag(ctx, nil, nil), fl.Release(ctx, "h", nil, 1), fl.Cap(ctx, "h", 1), fl.Delete(ctx, "h")}
	}
	reads := func() {
		_, _ = p.List(ctx, "o")
		_, _ = p.Describe(ctx, "o", nil, nil)
		_, _ = p.Find(ctx, "o", provider.Query{})
		_, _ = fl.Poll(ctx, nil)
	}
	may = errors.New("this host does not hold the lease")
	for i, err := range acts() {
		if err == nil || provider.KindOf(err) != provider.Transient {
			t.Errorf("action %d without the lease: %v, want a Transient refusal", i, err)
		}
	}
	reads()
	for _, op := range []string{"Launch", "Terminate", "Tag", "Release", "Cap", "Delete"} {
		if c.calls[op] != 0 {
			t.Errorf("%s reached the cloud without the lease", op)
		}
	}
	for _, op := range []string{"List", "Describe", "Find", "Poll"} {
		if c.calls[op] != 1 {
			t.Errorf("read %s: %d calls, want 1", op, c.calls[op])
		}
	}
	may = nil
	for i, err := range acts() {
		if err != nil {
			t.Errorf("action %d with the lease: %v", i, err)
		}
	}
	if c.calls["Launch"] != 1 || c.calls["Delete"] != 1 {
		t.Errorf("calls with the lease: %v", c.calls)
	}
}
