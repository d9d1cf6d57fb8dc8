package awsprov

import (
	"strconv"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// Planner is the AWS launch policy (provider.Planner): a RunInstances
// template's subnet x instance type pools, and a heterogeneous Spot
// Fleet's on-demand fallback. It holds no state: Provider embeds it, and
// test clouds may too.
type Planner struct{}

var _ provider.Planner = Planner{}

// Alternatives is how many instance type and subnet pairs a RunInstances
// template offers: on InsufficientInstanceCapacity (and kin) in one, the
// launch tries the next, subnets first (a subnet is a zone: capacity is
// per type and zone), then types, in the template's order. 0 for every
// other API, whose fleets and groups spread over the pairs themselves.
func (Planner) Alternatives(t *template.Template) int {
	if t.API() != template.APIRunInstances {
		return 0
	}
	return max(len(t.InstanceTypes()), 1) * max(len(t.SubnetIDs), 1)
}

// Alternative narrows spec's template to pair i, with its own client
// token: a pair EC2 refused launched nothing, and the next pair's call has
// other parameters, which the first pair's token would refuse.
func (Planner) Alternative(spec provider.LaunchSpec, i int) (provider.LaunchSpec, string) {
	tpl := spec.Template
	t := tpl
	j := i
	if n := len(tpl.SubnetIDs); n > 0 {
		t.SubnetIDs = []string{tpl.SubnetIDs[j%n]}
		j /= n
	}
	if types := tpl.InstanceTypes(); len(types) > 0 {
		it := types[j%len(types)]
		t.VMType = it
		if w, ok := tpl.VMTypes.Get(it); ok {
			t.VMTypes = template.Weights{{Type: it, Weight: w}}
		}
	}
	spec.Template = t
	if i > 0 {
		spec.ClientToken += "-p" + strconv.Itoa(i)
	}
	return spec, poolName(&t)
}

// poolName names a narrowed template's pair for messages.
func poolName(t *template.Template) string {
	s := t.VMType
	if s == "" {
		s = "the launch template's type"
	}
	if len(t.SubnetIDs) > 0 {
		s += " in " + t.SubnetIDs[0]
	}
	return s
}

// Fallback is IBM's heterogeneous: what a Spot Fleet did not fill is asked
// on-demand, by RunInstances of vmTypesOnDemand (else vmTypes), with its
// own idempotency token.
func (Planner) Fallback(spec provider.LaunchSpec) (provider.LaunchSpec, bool) {
	tpl := spec.Template
	ok := tpl.Price() == template.PriceHeterogeneous && tpl.API() == template.APISpotFleet
	t := tpl
	t.PriceType = template.PriceOnDemand
	t.ProviderAPI = template.APIRunInstances
	if len(tpl.VMTypesOnDemand) > 0 {
		t.VMTypes = tpl.VMTypesOnDemand
	}
	if t.VMType == "" && len(t.VMTypes) > 0 {
		t.VMType = t.VMTypes[0].Type
	}
	spec.Template = t
	spec.ClientToken += "-od"
	return spec, ok
}
