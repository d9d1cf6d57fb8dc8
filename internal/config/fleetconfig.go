package config

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/ohfp/ohfp/internal/template"
)

// IBM's LSF AWS plugin takes a template's EC2 Fleet from ec2FleetConfig: a
// JSON file holding a CreateFleet request (its keys in any letter case;
// older files hold the placeholders $LSF_TOTAL_TARGET_CAPACITY,
// $LSF_ONDEMAND_TARGET_CAPACITY and $LSF_SPOT_TARGET_CAPACITY, which the
// plugin fills with the request's counts). ohfp builds its own CreateFleet
// from the template (one launch template per request, tags, client token,
// capacity from the asked units), so it reads the file into the template
// instead: the launch template, the overrides (instance types with their
// weights and priorities, subnets), the fleet type, the allocation
// strategies and the default capacity type. The template's own fields win
// over the file's; what ohfp cannot carry is named in a warning. The
// target capacities are always the request's.

var lsfPlaceholderRe = regexp.MustCompile(`\$LSF_[A-Z_]+`)

// ciGet returns m's value for key in any letter case.
func ciGet(m map[string]any, key string) (any, bool) {
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

func ciMap(m map[string]any, key string) map[string]any {
	v, _ := ciGet(m, key)
	out, _ := v.(map[string]any)
	return out
}

func ciString(m map[string]any, key string) string {
	v, _ := ciGet(m, key)
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x)
	case float64:
		return fmt.Sprint(x)
	}
	return ""
}

// leftKeys lists m's keys not in known (compared in any case), sorted.
func leftKeys(m map[string]any, prefix string, known ...string) []string {
	var out []string
	for k := range m {
		ok := false
		for _, kn := range known {
			ok = ok || strings.EqualFold(k, kn)
		}
		if !ok {
			out = append(out, prefix+k)
		}
	}
	sort.Strings(out)
	return out
}

func applyFleetConfig(t *template.Template, st *tmplState, fail func(key, format string, a ...any), v value) {
	const key = "ec2FleetConfig"
	if r := v.d.read; r != nil && !slices.Contains(*r, st.fleetConfig) {
		*r = append(*r, st.fleetConfig) // watched even when it cannot be read: HF may write it next
	}
	data, err := os.ReadFile(st.fleetConfig)
	if err != nil {
		fail(key, "%v", err)
		return
	}
	data = lsfPlaceholderRe.ReplaceAll(data, []byte("0"))
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		fail(key, "%s is not a JSON object (an EC2 CreateFleet request): %v", st.fleetConfig, err)
		return
	}
	var ignored []string
	ignored = append(ignored, leftKeys(m, "", "LaunchTemplateConfigs", "TargetCapacitySpecification", "Type",
		"SpotOptions", "OnDemandOptions")...)

	// The launch template and its overrides.
	lv, _ := ciGet(m, "LaunchTemplateConfigs")
	configs, _ := lv.([]any)
	switch {
	case len(configs) == 0:
		fail(key, "%s has no LaunchTemplateConfigs", st.fleetConfig)
		return
	case len(configs) > 1:
		fail(key, "%s has %d LaunchTemplateConfigs; ohfp takes one launch template per template (write one ohfp template per launch template)", st.fleetConfig, len(configs))
		return
	}
	cfg, _ := configs[0].(map[string]any)
	spec := ciMap(cfg, "LaunchTemplateSpecification")
	if name := ciString(spec, "LaunchTemplateName"); name != "" && ciString(spec, "LaunchTemplateId") == "" {
		fail(key, "%s names launch template %q by name; ohfp needs its id (lt-...)", st.fleetConfig, name)
		return
	}
	if id := ciString(spec, "LaunchTemplateId"); id != "" && t.LaunchTemplateID == "" {
		if !strings.HasPrefix(id, "lt-") {
			fail(key, "%s: %q is not a launch template id (lt-...)", st.fleetConfig, id)
			return
		}
		t.LaunchTemplateID = id
		if ver := ciString(spec, "Version"); ver != "" && t.LaunchTemplateV == "" {
			t.LaunchTemplateV = ver
		}
	}
	ov, _ := ciGet(cfg, "Overrides")
	overrides, _ := ov.([]any)
	var weights, prios template.Weights
	var subnets []string
	var pairs []template.FleetOverride
	for i, o := range overrides {
		om, _ := o.(map[string]any)
		ignored = append(ignored, leftKeys(om, fmt.Sprintf("LaunchTemplateConfigs[0].Overrides[%d].", i), "InstanceType", "WeightedCapacity", "Priority", "SubnetId")...)
		var own []string // this override's subnets
		if sn := ciString(om, "SubnetId"); sn != "" {
			for _, s := range strings.Split(sn, ",") {
				if s = strings.TrimSpace(s); s != "" {
					own = append(own, s)
					if !contains(subnets, s) {
						subnets = append(subnets, s)
					}
				}
			}
		}
		it := ciString(om, "InstanceType")
		if it == "" {
			continue
		}
		if len(own) == 0 {
			own = []string{""}
		}
		for _, s := range own {
			if p := (template.FleetOverride{Type: it, Subnet: s}); !slices.Contains(pairs, p) {
				pairs = append(pairs, p)
			}
		}
		if !instTypeRe.MatchString(it) {
			fail(key, "%s: %q is not an instance type", st.fleetConfig, it)
			return
		}
		w := 1
		if wv, ok := ciGet(om, "WeightedCapacity"); ok {
			f, _ := wv.(float64)
			if f < 1 || f != math.Trunc(f) {
				fail(key, "%s: WeightedCapacity %v of %s: ohfp counts whole units, at least 1", st.fleetConfig, wv, it)
				return
			}
			w = int(f)
		}
		if _, dup := weights.Get(it); !dup {
			weights = append(weights, template.Weight{Type: it, Weight: w})
		}
		if pv, ok := ciGet(om, "Priority"); ok {
			if f, _ := pv.(float64); f >= 0 {
				if _, dup := prios.Get(it); !dup {
					prios = append(prios, template.Weight{Type: it, Weight: int(math.Round(f))})
				}
			}
		}
	}
	typesFromFile := t.VMType == "" && len(t.VMTypes) == 0 && len(weights) > 0
	subnetsFromFile := len(t.SubnetIDs) == 0 && len(subnets) > 0
	if typesFromFile {
		t.VMTypes = weights
		if len(t.VMTypesPriority) == 0 && len(prios) > 0 {
			t.VMTypesPriority = prios
		}
	}
	if subnetsFromFile {
		t.SubnetIDs = subnets
	}
	// The file ties types to subnets (c5.large in one, m5.large in
	// another): the fleet asks for those pairs, as IBM's plugin sends the
	// file, not every type in every subnet. The template's own vmTypes or
	// subnetId replace the file's, and then every pair is asked.
	if typesFromFile && subnetsFromFile && len(pairs) != len(weights)*len(subnets) {
		t.FleetOverrides = pairs
	}

	// Fleet type, strategies and pricing.
	if typ := strings.ToLower(ciString(m, "Type")); typ != "" && t.FleetType == "" {
		if typ != template.FleetInstant && typ != template.FleetRequest && typ != template.FleetMaintain {
			fail(key, "%s: Type %q is not instant, request or maintain", st.fleetConfig, typ)
			return
		}
		t.FleetType = typ
	}
	if so := ciMap(m, "SpotOptions"); so != nil {
		ignored = append(ignored, leftKeys(so, "SpotOptions.", "AllocationStrategy", "InstancePoolsToUseCount", "InstanceInterruptionBehavior")...)
		if b := ciString(so, "InstanceInterruptionBehavior"); b != "" && !strings.EqualFold(b, "terminate") {
			ignored = append(ignored, "SpotOptions.InstanceInterruptionBehavior "+b+" (ohfp's Spot instances terminate)")
		}
		if s := ciString(so, "AllocationStrategy"); s != "" && t.AllocationStrat == "" {
			t.AllocationStrat = foldOneOf(v, s, allocationStrategies...)
		}
		if n, _ := ciGet(so, "InstancePoolsToUseCount"); n != nil && t.PoolsCount == 0 {
			if f, _ := n.(float64); f >= 1 {
				t.PoolsCount = int(f)
			}
		}
	}
	if od := ciMap(m, "OnDemandOptions"); od != nil {
		ignored = append(ignored, leftKeys(od, "OnDemandOptions.", "AllocationStrategy")...)
		if s := ciString(od, "AllocationStrategy"); s != "" && t.AllocationOnDem == "" {
			t.AllocationOnDem = foldOneOf(v, s, onDemandStrategies...)
		}
	}
	tc := ciMap(m, "TargetCapacitySpecification")
	ignored = append(ignored, leftKeys(tc, "TargetCapacitySpecification.", "TotalTargetCapacity", "OnDemandTargetCapacity", "SpotTargetCapacity", "DefaultTargetCapacityType")...)
	if tc != nil && t.PriceType == "" && st.odRatio == nil {
		switch strings.ToLower(ciString(tc, "DefaultTargetCapacityType")) {
		case "spot":
			t.PriceType = template.PriceSpot
		case "on-demand", "ondemand":
			t.PriceType = template.PriceOnDemand
		}
	}
	if t.ProviderAPI == "" {
		t.ProviderAPI = template.APIEC2Fleet
	}
	if t.ProviderAPI != template.APIEC2Fleet {
		warnAt(v, st, key, "providerApi %s: the template launches with it, not as an EC2 Fleet", t.ProviderAPI)
	}
	if len(ignored) > 0 {
		warnAt(v, st, key, "%s: not carried (ohfp builds the CreateFleet call from the template, with the request's capacity and its own tags): %s",
			st.fleetConfig, strings.Join(ignored, ", "))
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
