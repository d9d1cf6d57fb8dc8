package provider

import "github.com/ohfp/ohfp/internal/template"

// Planner is a provider's launch policy, decided by the provider alone:
// where else a launch may be tried when the cloud has no capacity, and
// what is asked instead when a fleet falls short. The core persists only
// which alternative it is at (write ahead), so a restart resumes there.
type Planner interface {
	// Alternatives is how many alternatives, tried in turn on a Capacity
	// error, a launch of t has; 0 or 1: none.
	Alternatives(t *template.Template) int
	// Alternative narrows spec to its i-th alternative (0 first), with an
	// idempotency token of its own, and names it for messages.
	Alternative(spec LaunchSpec, i int) (LaunchSpec, string)
	// Fallback is the launch that asks, another way, what a launch of
	// spec's template left unfilled once its fleet was capped short
	// (ok false: the template has none); its token is its own.
	Fallback(spec LaunchSpec) (fallback LaunchSpec, ok bool)
}

// PlannerOf returns p's Planner, or one with no alternatives and no
// fallback when p has none.
func PlannerOf(p Provider) Planner {
	if pl, ok := p.(Planner); ok {
		return pl
	}
	return noPlan{}
}

type noPlan struct{}

func (noPlan) Alternatives(*template.Template) int                  { return 0 }
func (noPlan) Alternative(s LaunchSpec, _ int) (LaunchSpec, string) { return s, s.Template.VMType }
func (noPlan) Fallback(s LaunchSpec) (LaunchSpec, bool)             { return s, false }
