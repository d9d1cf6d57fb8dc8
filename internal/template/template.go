// Package template holds the HF template model: what a template says (IBM's
// awsprov_templates.json fields plus ohfp's providerApi and fleetType), in a
// normalised form the engine and the providers use. Parsing and validation
// of the files live in package config.
package template

import (
	"sort"
	"strings"
)

// Price types.
const (
	PriceOnDemand      = "ondemand"
	PriceSpot          = "spot"
	PriceHeterogeneous = "heterogeneous"
)

// Provider APIs (the providerApi extension).
const (
	APIRunInstances = "RunInstances"
	APIEC2Fleet     = "EC2Fleet"
	APISpotFleet    = "SpotFleet"
	APIASG          = "ASG"
)

// Fleet types (the fleetType extension).
const (
	FleetInstant  = "instant"
	FleetRequest  = "request"
	FleetMaintain = "maintain"
)

// APISpec is what a provider API takes of a template: the one place the
// template model says it, so that validation (package config) asks it
// instead of naming APIs. Adding a provider API is a line in APIs and its
// implementation in the provider (internal/provider/aws); see README,
// "Adding a provider API".
type APISpec struct {
	Name string // the providerApi value
	// Noun names what the API launches, for messages ("Spot Fleet");
	// Article is its indefinite article ("a").
	Noun, Article string
	// Heterogeneous: it can launch priceType heterogeneous (Spot and
	// on-demand in one request).
	Heterogeneous bool
	// FleetTypes are the fleetType values it takes; none: fleetType does
	// not apply. DefaultFleetType is set when the template gives none (""
	// leaves the choice to the provider).
	FleetTypes       []string
	DefaultFleetType string
	// Target: it launches a fleet or group working towards a target, so
	// spotFleetRequestExpiry (how long it may take) applies.
	Target bool
	// ExpiryRequired: it needs spotFleetRequestExpiry; validation gives
	// the default when the template does not.
	ExpiryRequired bool
	// NeedsSubnets: subnetId is required.
	NeedsSubnets bool
	// NeedsFleetRole: fleetRole is required.
	NeedsFleetRole bool
}

// APIs lists the provider APIs, in the order messages name them.
var APIs = []APISpec{
	{Name: APIRunInstances},
	{Name: APIEC2Fleet, Noun: "EC2 Fleet", Article: "an", Heterogeneous: true,
		FleetTypes: []string{FleetInstant, FleetRequest, FleetMaintain}, DefaultFleetType: FleetInstant, Target: true},
	{Name: APISpotFleet, Noun: "Spot Fleet", Article: "a", Heterogeneous: true,
		FleetTypes: []string{FleetRequest, FleetMaintain}, Target: true, ExpiryRequired: true, NeedsFleetRole: true},
	{Name: APIASG, Noun: "Auto Scaling group", Article: "an", Heterogeneous: true, Target: true, NeedsSubnets: true},
}

// SpecOf returns the spec of the provider API named name.
func SpecOf(name string) (APISpec, bool) {
	for _, a := range APIs {
		if a.Name == name {
			return a, true
		}
	}
	return APISpec{}, false
}

// APINames returns the names of the provider APIs for which keep is true
// (nil: all), in APIs' order.
func APINames(keep func(APISpec) bool) []string {
	var out []string
	for _, a := range APIs {
		if keep == nil || keep(a) {
			out = append(out, a.Name)
		}
	}
	return out
}

// TakesFleetType reports whether the API takes fleetType ft.
func (a APISpec) TakesFleetType(ft string) bool {
	for _, f := range a.FleetTypes {
		if f == ft {
			return true
		}
	}
	return false
}

// FleetOverride is one override of an ec2FleetConfig file: an instance
// type in a subnet ("" : the subnet EC2 picks).
type FleetOverride struct {
	Type   string `json:"type"`
	Subnet string `json:"subnet,omitempty"`
}

// Template is one HF template. Field tags give IBM's camelCase names, used
// both when reading templates and when answering getAvailableTemplates.
type Template struct {
	TemplateID string     `json:"templateId"`
	MaxNumber  int        `json:"maxNumber"` // -1: unlimited (units)
	Attributes Attributes `json:"attributes"`

	ImageID   string   `json:"imageId,omitempty"` // AMI id or SSM parameter path
	SubnetIDs []string `json:"subnetId,omitempty"`
	// FleetOverrides are the instance type and subnet pairs of an
	// ec2FleetConfig file that ties types to subnets: a fleet's overrides
	// are these, as the file has them, not every type in every subnet.
	// Not sent to HF.
	FleetOverrides   []FleetOverride `json:"-"`
	VMType           string          `json:"vmType,omitempty"`
	VMTypes          Weights         `json:"vmTypes,omitempty"` // type -> weight, in file order
	VMTypesOnDemand  Weights         `json:"vmTypesOnDemand,omitempty"`
	VMTypesPriority  Weights         `json:"vmTypesPriority,omitempty"` // type -> priority (lower first)
	PriceType        string          `json:"priceType,omitempty"`
	MaxSpotPrice     float64         `json:"maxSpotPrice,omitempty"`
	PercentOnDemand  int             `json:"percentOnDemand,omitempty"`
	AllocationStrat  string          `json:"allocationStrategy,omitempty"`
	AllocationOnDem  string          `json:"allocationStrategyOnDemand,omitempty"`
	PoolsCount       int             `json:"poolsCount,omitempty"`
	SpotFleetExpiry  int             `json:"spotFleetRequestExpiry,omitempty"` // minutes
	FleetRole        string          `json:"fleetRole,omitempty"`
	KeyName          string          `json:"keyName,omitempty"`
	SecurityGroupIDs []string        `json:"securityGroupIds,omitempty"`
	InstanceProfile  string          `json:"instanceProfile,omitempty"`
	InstanceTags     string          `json:"instanceTags,omitempty"` // "k=v;k2=v2"
	UserDataScript   string          `json:"userDataScript,omitempty"`
	UserData         string          `json:"userData,omitempty"`
	RootVolumeSize   int             `json:"rootDeviceVolumeSize,omitempty"`
	VolumeType       string          `json:"volumeType,omitempty"`
	Iops             int             `json:"iops,omitempty"`
	LaunchTemplateID string          `json:"launchTemplateId,omitempty"`
	LaunchTemplateV  string          `json:"launchTemplateVersion,omitempty"`
	ProviderAPI      string          `json:"providerApi,omitempty"`
	FleetType        string          `json:"fleetType,omitempty"`

	// IBM's placement and network fields (LSF's AWS plugin): the placement
	// group, the tenancy (default, dedicated, host), EBS optimisation, and
	// the primary network interface's type (interface or efa) with, for
	// efa, one EFA per network card on efaCount cards.
	PlacementGroupName string `json:"placementGroupName,omitempty"`
	Tenancy            string `json:"tenancy,omitempty"`
	EbsOptimized       bool   `json:"ebsOptimized,omitempty"`
	InterfaceType      string `json:"interfaceType,omitempty"`
	EfaCount           int    `json:"efaCount,omitempty"`

	// Priority and GPUExtend are LSF's (template priority, GPU
	// description): ohfp does nothing with them but hand them to HF in
	// getAvailableTemplates, where the scheduler reads them.
	Priority  int    `json:"priority,omitempty"`
	GPUExtend string `json:"gpuextend,omitempty"`

	// UserDataTemplate is the bootstrap script (IBM's user_data.sh) whose
	// %EXPORT_USER_DATA% marker receives userData's variables; set by the
	// configuration, never shown to HF. "" when the template's user data
	// is not made from it.
	UserDataTemplate string `json:"-"`
	// ProviderName is the provider instance the template belongs to,
	// exported to the host as providerName (as IBM's plugins do).
	ProviderName string `json:"-"`
}

// Attribute is one HF attribute: a type tag ("String" or "Numeric") and the
// value as a string. HF receives it as ["String", "X86_64"].
type Attribute struct {
	Name  string
	Type  string
	Value string
}

// Attributes keeps the template's attributes in file order.
type Attributes []Attribute

// Get returns the attribute named name.
func (a Attributes) Get(name string) (Attribute, bool) {
	for _, at := range a {
		if at.Name == name {
			return at, true
		}
	}
	return Attribute{}, false
}

// Set replaces or appends an attribute.
func (a *Attributes) Set(at Attribute) {
	for i := range *a {
		if (*a)[i].Name == at.Name {
			(*a)[i] = at
			return
		}
	}
	*a = append(*a, at)
}

// MarshalJSON writes the typed-array form HF expects:
// {"type": ["String", "X86_64"], "ncpus": ["Numeric", "2"]}.
func (a Attributes) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, at := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(quote(at.Name))
		b.WriteString(":[")
		b.WriteString(quote(at.Type))
		b.WriteByte(',')
		b.WriteString(quote(at.Value))
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// Weight is one instance type with its weight (or priority).
type Weight struct {
	Type   string
	Weight int
}

// Weights keeps instance types in file order.
type Weights []Weight

// Get returns the weight of type t.
func (w Weights) Get(t string) (int, bool) {
	for _, x := range w {
		if x.Type == t {
			return x.Weight, true
		}
	}
	return 0, false
}

// MarshalJSON writes {"c5.large": 1, ...} in order.
func (w Weights) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, x := range w {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(quote(x.Type))
		b.WriteByte(':')
		b.WriteString(itoa(x.Weight))
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// InstanceTypes lists the instance types the template may launch: vmTypes
// in order, else vmType.
func (t *Template) InstanceTypes() []string {
	if len(t.VMTypes) > 0 {
		out := make([]string, len(t.VMTypes))
		for i, w := range t.VMTypes {
			out[i] = w.Type
		}
		return out
	}
	if t.VMType != "" {
		return []string{t.VMType}
	}
	return nil
}

// WeightOf returns the units one instance of type it counts for: its vmTypes
// weight, else 1.
func (t *Template) WeightOf(it string) int {
	if w, ok := t.VMTypes.Get(it); ok && w > 0 {
		return w
	}
	if w, ok := t.VMTypesOnDemand.Get(it); ok && w > 0 {
		return w
	}
	return 1
}

// API returns the provider API the template uses: providerApi, else
// RunInstances for ondemand and SpotFleet for spot and heterogeneous, as
// IBM's plugin does.
func (t *Template) API() string {
	if t.ProviderAPI != "" {
		return t.ProviderAPI
	}
	switch t.Price() {
	case PriceSpot, PriceHeterogeneous:
		return APISpotFleet
	}
	return APIRunInstances
}

// Price returns priceType, defaulting to ondemand.
func (t *Template) Price() string {
	if t.PriceType == "" {
		return PriceOnDemand
	}
	return t.PriceType
}

// ParseTags parses instanceTags ("k=v;k2=v2") into a map. Empty items are
// skipped; an item without '=' is a key with an empty value.
func ParseTags(s string) map[string]string {
	out := map[string]string{}
	for _, item := range strings.Split(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, _ := strings.Cut(item, "=")
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out
}

// FormatTags writes tags as "k=v;k2=v2", sorted by key.
func FormatTags(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(tags[k])
	}
	return b.String()
}
