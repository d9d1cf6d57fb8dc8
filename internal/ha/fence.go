package ha

import (
	"context"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// FenceProvider returns cloud with every action (launch, terminate, tag,
// fleet release, cap and delete) checked against mayAct just before it is made:
// a host whose lease ran out (paused, cut off from the table) makes none.
// A refused action is a Transient error, retried by whoever holds the
// lease next from the state (its intents and idempotency tokens are
// written before the action). Reads pass through. cloud's Fleets and
// Planner are kept, and so is its CapacityMemory (neutral when it has
// none: the order as given, nothing remembered). Reads pass through.
func FenceProvider(cloud provider.Provider, mayAct func() error) provider.Provider {
	f := fencedCloud{Provider: cloud, may: mayAct, plan: provider.PlannerOf(cloud)}
	f.mem, _ = cloud.(provider.CapacityMemory)
	if fl, ok := cloud.(provider.Fleets); ok {
		return fencedFleets{fencedCloud: f, fl: fl}
	}
	return f
}

type fencedCloud struct {
	provider.Provider
	may  func() error
	plan provider.Planner
	mem  provider.CapacityMemory // nil: none
}

func (f fencedCloud) Rank(spec provider.LaunchSpec, alts []int) []int {
	if f.mem == nil {
		return alts
	}
	return f.mem.Rank(spec, alts)
}

func (f fencedCloud) Unavailable() []provider.Unavailable {
	if f.mem == nil {
		return nil
	}
	return f.mem.Unavailable()
}

func (f fencedCloud) check(op string) error {
	if err := f.may(); err != nil {
		return &provider.Error{Op: op, Kind: provider.Transient, Message: "not made: " + err.Error()}
	}
	return nil
}

func (f fencedCloud) Launch(ctx context.Context, spec provider.LaunchSpec) (provider.LaunchResult, error) {
	if err := f.check("Launch"); err != nil {
		return provider.LaunchResult{}, err
	}
	return f.Provider.Launch(ctx, spec)
}

func (f fencedCloud) Terminate(ctx context.Context, ids []string) error {
	if err := f.check("Terminate"); err != nil {
		return err
	}
	return f.Provider.Terminate(ctx, ids)
}

func (f fencedCloud) Tag(ctx context.Context, ids []string, tags map[string]string) error {
	if err := f.check("Tag"); err != nil {
		return err
	}
	return f.Provider.Tag(ctx, ids, tags)
}

func (f fencedCloud) Alternatives(t *template.Template) int { return f.plan.Alternatives(t) }
func (f fencedCloud) Alternative(spec provider.LaunchSpec, i int) (provider.LaunchSpec, string) {
	return f.plan.Alternative(spec, i)
}
func (f fencedCloud) Fallback(spec provider.LaunchSpec) (provider.LaunchSpec, bool) {
	return f.plan.Fallback(spec)
}

type fencedFleets struct {
	fencedCloud
	fl provider.Fleets
}

func (f fencedFleets) Poll(ctx context.Context, handles []string) (map[string]provider.FleetStatus, error) {
	return f.fl.Poll(ctx, handles)
}

func (f fencedFleets) Release(ctx context.Context, handle string, ids []string, units int) error {
	if err := f.check("Release"); err != nil {
		return err
	}
	return f.fl.Release(ctx, handle, ids, units)
}

func (f fencedFleets) Cap(ctx context.Context, handle string, keepUnits int) error {
	if err := f.check("Cap"); err != nil {
		return err
	}
	return f.fl.Cap(ctx, handle, keepUnits)
}

func (f fencedFleets) Delete(ctx context.Context, handle string) error {
	if err := f.check("Delete"); err != nil {
		return err
	}
	return f.fl.Delete(ctx, handle)
}
