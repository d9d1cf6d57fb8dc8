package config

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/ohfp/ohfp/internal/template"
)

var (
	templateIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	amiRe        = regexp.MustCompile(`^ami-[0-9a-f]{8,17}$`)
	attrNameRe   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	instTypeRe   = regexp.MustCompile(`^[a-z0-9-]+\.[a-z0-9-]+$`)
)

var (
	allocationStrategies = []string{"capacityOptimized", "capacityOptimizedPrioritized", "diversified", "lowestPrice", "priceCapacityOptimized"}
	onDemandStrategies   = []string{"lowestPrice", "prioritized"}
	volumeTypes          = []string{"gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"}
	numericAttrs         = map[string]bool{"ncpus": true, "nram": true, "ncores": true, "nthreads": true, "rank": true, "mem": true, "maxmem": true}
)

// unsupportedIBM are IBM template fields ohfp does not implement; the
// error says so instead of a plain "unknown key".
var unsupportedIBM = map[string]string{
	"placementGroupName": "set the placement group in a launch template (launchTemplateId)",
	"tenancy":            "set the tenancy in a launch template (launchTemplateId)",
	"ebsOptimized":       "set EBS optimisation in a launch template (launchTemplateId)",
	"interfaceType":      "set the network interface in a launch template (launchTemplateId)",
	"fleetTemplate":      "use providerApi and the template fields, or a launch template",
}

func templateHint(name string) string {
	if h, ok := unsupportedIBM[name]; ok {
		return "the IBM field " + name + " is not supported by ohfp: " + h
	}
	return ""
}

// templateFieldNames lists every template key, for ImportHF and hints.
var templateFieldNames []string

func init() {
	var t template.Template
	for _, f := range templateFields(&t, &doc{}, &tmplState{}) {
		templateFieldNames = append(templateFieldNames, f.name)
	}
}

// tmplState records, while decoding one template, which node set what,
// so cross-field checks can point at the right line.
type tmplState struct {
	nodes map[string]value
}

func (st *tmplState) seen(v value) {
	if st.nodes == nil {
		st.nodes = map[string]value{}
	}
	st.nodes[v.name] = v
}

func templateFields(t *template.Template, d *doc, st *tmplState) []field {
	str := func(dst *string, check func(v value, s string) bool) func(value) {
		return func(v value) {
			st.seen(v)
			s, ok := v.str()
			if !ok {
				return
			}
			s = strings.TrimSpace(s)
			if s == "" {
				v.errorf("empty value (leave the key out instead)")
				return
			}
			if check != nil && !check(v, s) {
				return
			}
			*dst = s
		}
	}
	intIn := func(dst *int, lo, hi int, what string) func(value) {
		return func(v value) {
			st.seen(v)
			i, ok := v.integer()
			if !ok {
				return
			}
			if i < lo || i > hi {
				v.errorf("%d is out of range: %s", i, what)
				return
			}
			*dst = i
		}
	}
	const maxInt = 1 << 31
	return []field{
		{"templateId", str(&t.TemplateID, func(v value, s string) bool {
			if !templateIDRe.MatchString(s) {
				v.errorf("%q must be 1-64 of letters, digits, '_' and '-'", s)
				return false
			}
			return true
		})},
		{"maxNumber", intIn(&t.MaxNumber, -1, maxInt, "-1 (unlimited), 0 (disabled) or more")},
		{"attributes", func(v value) {
			st.seen(v)
			if a, ok := decodeAttributes(v); ok {
				t.Attributes = a
			}
		}},
		{"imageId", str(&t.ImageID, func(v value, s string) bool {
			if amiRe.MatchString(s) || (strings.HasPrefix(s, "/") && len(s) > 1 && !strings.ContainsAny(s, " \t")) {
				return true
			}
			v.errorf("%q is neither an AMI id (ami-0123456789abcdef0) nor an SSM parameter path (/aws/service/...)", s)
			return false
		})},
		{"subnetId", func(v value) {
			st.seen(v)
			if l, ok := v.list(); ok && checkIDs(v, l, "subnet-") {
				t.SubnetIDs = l
			}
		}},
		{"vmType", str(&t.VMType, checkInstanceType)},
		{"vmTypes", func(v value) {
			st.seen(v)
			if w, ok := decodeWeights(v, 1); ok {
				t.VMTypes = w
			}
		}},
		{"vmTypesOnDemand", func(v value) {
			st.seen(v)
			if w, ok := decodeWeights(v, 1); ok {
				t.VMTypesOnDemand = w
			}
		}},
		{"vmTypesPriority", func(v value) {
			st.seen(v)
			if w, ok := decodeWeights(v, 0); ok {
				t.VMTypesPriority = w
			}
		}},
		{"priceType", str(&t.PriceType, func(v value, s string) bool {
			return oneOf(v, s, template.PriceOnDemand, template.PriceSpot, template.PriceHeterogeneous)
		})},
		{"maxSpotPrice", func(v value) {
			st.seen(v)
			if f, ok := v.number(); ok {
				if f <= 0 {
					v.errorf("%v must be a positive price in USD per hour", f)
					return
				}
				t.MaxSpotPrice = f
			}
		}},
		{"percentOnDemand", intIn(&t.PercentOnDemand, 0, 100, "a percentage 0-100")},
		{"allocationStrategy", str(&t.AllocationStrat, func(v value, s string) bool { return oneOf(v, s, allocationStrategies...) })},
		{"allocationStrategyOnDemand", str(&t.AllocationOnDem, func(v value, s string) bool { return oneOf(v, s, onDemandStrategies...) })},
		{"poolsCount", intIn(&t.PoolsCount, 1, 1000, "at least 1")},
		{"spotFleetRequestExpiry", intIn(&t.SpotFleetExpiry, 1, maxInt, "minutes, at least 1")},
		{"fleetRole", str(&t.FleetRole, nil)},
		{"keyName", str(&t.KeyName, nil)},
		{"securityGroupIds", func(v value) {
			st.seen(v)
			if l, ok := v.list(); ok && checkIDs(v, l, "sg-") {
				t.SecurityGroupIDs = l
			}
		}},
		{"instanceProfile", str(&t.InstanceProfile, nil)},
		{"instanceTags", str(&t.InstanceTags, func(v value, s string) bool {
			if !checkTags(v, s) {
				return false
			}
			var items []string
			for _, item := range strings.Split(s, ";") {
				if k, val, ok := strings.Cut(strings.TrimSpace(item), "="); ok {
					items = append(items, strings.TrimSpace(k)+"="+strings.TrimSpace(val))
				}
			}
			t.InstanceTags = strings.Join(items, ";")
			return false // already stored, normalised
		})},
		{"userDataScript", func(v value) {
			st.seen(v)
			p, ok := d.path(v)
			if !ok {
				return
			}
			f, err := os.Open(p)
			if err != nil {
				v.errorf("cannot read the user data script: %v", err)
				return
			}
			fi, err := f.Stat()
			f.Close()
			if err != nil || !fi.Mode().IsRegular() {
				v.errorf("%s is not a regular file", p)
				return
			}
			if fi.Size() > 16<<10 {
				v.errorf("%s is %d bytes; EC2 user data is limited to 16 KiB", p, fi.Size())
				return
			}
			t.UserDataScript = p
		}},
		{"userData", str(&t.UserData, nil)},
		{"rootDeviceVolumeSize", intIn(&t.RootVolumeSize, 0, 65536, "GiB, 0-65536")},
		{"volumeType", str(&t.VolumeType, func(v value, s string) bool { return oneOf(v, s, volumeTypes...) })},
		{"iops", intIn(&t.Iops, 0, 256000, "0-256000")},
		{"launchTemplateId", str(&t.LaunchTemplateID, func(v value, s string) bool {
			if !strings.HasPrefix(s, "lt-") {
				v.errorf("%q is not a launch template id (lt-...)", s)
				return false
			}
			return true
		})},
		{"launchTemplateVersion", func(v value) {
			st.seen(v)
			s, ok := v.text()
			if !ok {
				return
			}
			s = strings.TrimSpace(s)
			if _, err := strconv.ParseUint(s, 10, 32); err != nil && s != "$Latest" && s != "$Default" {
				v.errorf("%q is not a version number, $Latest or $Default", s)
				return
			}
			t.LaunchTemplateV = s
		}},
		{"providerApi", str(&t.ProviderAPI, func(v value, s string) bool {
			return oneOf(v, s, template.APIRunInstances, template.APIEC2Fleet, template.APISpotFleet, template.APIASG)
		})},
		{"fleetType", str(&t.FleetType, func(v value, s string) bool {
			return oneOf(v, s, template.FleetInstant, template.FleetRequest, template.FleetMaintain)
		})},
	}
}

func checkInstanceType(v value, s string) bool {
	if !instTypeRe.MatchString(s) {
		v.errorf("%q is not an instance type such as c5.large", s)
		return false
	}
	return true
}

func checkIDs(v value, ids []string, prefix string) bool {
	seen := map[string]bool{}
	for _, id := range ids {
		if !strings.HasPrefix(id, prefix) || strings.ContainsAny(id, " \t") {
			v.errorf("%q is not an id starting with %s", id, prefix)
			return false
		}
		if seen[id] {
			v.errorf("%q is listed twice", id)
			return false
		}
		seen[id] = true
	}
	return true
}

// checkTags validates instanceTags: "k=v;k2=v2", keys unique, at most 128
// characters, values at most 256, and not in the aws: or ohfp: namespaces.
func checkTags(v value, s string) bool {
	seen := map[string]bool{}
	for _, item := range strings.Split(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, val, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		switch {
		case !ok:
			v.errorf("tag %q has no '=': write key=value pairs separated by ';'", item)
			return false
		case k == "":
			v.errorf("tag %q has an empty key", item)
			return false
		case len(k) > 128:
			v.errorf("tag key %q is longer than 128 characters", k)
			return false
		case len(strings.TrimSpace(val)) > 256:
			v.errorf("the value of tag %q is longer than 256 characters", k)
			return false
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			v.errorf("tag key %q: the aws: prefix is reserved by AWS", k)
			return false
		case strings.HasPrefix(strings.ToLower(k), "ohfp:"):
			v.errorf("tag key %q: the ohfp: prefix is reserved for ohfp's own tags", k)
			return false
		case seen[k]:
			v.errorf("tag key %q is given twice", k)
			return false
		}
		seen[k] = true
	}
	return true
}

// decodeWeights reads {"c5.large": 1, "c5.xlarge": 2} in file order; every
// weight must be an integer >= min.
func decodeWeights(v value, min int) (template.Weights, bool) {
	entries, ok := v.mapping()
	if !ok {
		return nil, false
	}
	if len(entries) == 0 {
		v.errorf("empty: list at least one instance type")
		return nil, false
	}
	var out template.Weights
	good := true
	for _, e := range entries {
		if !checkInstanceType(value{d: v.d, node: e.key, key: e.val.key}, e.name) {
			good = false
			continue
		}
		if e.val.isNull() {
			e.val.errorf("missing weight")
			good = false
			continue
		}
		w, ok := e.val.integer()
		if !ok {
			good = false
			continue
		}
		if w < min {
			if min == 1 {
				e.val.errorf("weight %d must be a positive integer", w)
			} else {
				e.val.errorf("priority %d must be %d or more", w, min)
			}
			good = false
			continue
		}
		out = append(out, template.Weight{Type: e.name, Weight: w})
	}
	return out, good
}

// decodeAttributes reads HF attributes in either IBM's typed-array form
// {"ncpus": ["Numeric", "2"]} or as plain values {"ncpus": 2}.
func decodeAttributes(v value) (template.Attributes, bool) {
	entries, ok := v.mapping()
	if !ok {
		return nil, false
	}
	var out template.Attributes
	good := true
	for _, e := range entries {
		if !attrNameRe.MatchString(e.name) {
			e.val.errorf("%q is not an attribute name (letters, digits, '_')", e.name)
			good = false
			continue
		}
		at, ok := decodeAttribute(e.val)
		if !ok {
			good = false
			continue
		}
		out = append(out, at)
	}
	return out, good
}

func decodeAttribute(v value) (template.Attribute, bool) {
	at := template.Attribute{Name: v.name}
	switch n := v.node.(type) {
	case *ast.SequenceNode:
		if len(n.Values) != 2 {
			v.errorf("expected [\"String\", \"value\"] or [\"Numeric\", \"2\"], got a list of %d", len(n.Values))
			return at, false
		}
		typ, ok1 := scalarText(unwrap(n.Values[0]))
		val, ok2 := scalarText(unwrap(n.Values[1]))
		if !ok1 || !ok2 {
			v.errorf("expected [\"String\", \"value\"] or [\"Numeric\", \"2\"]")
			return at, false
		}
		switch strings.ToLower(typ) {
		case "string":
			at.Type = "String"
		case "numeric":
			at.Type = "Numeric"
		default:
			v.errorf("attribute type %q is not String or Numeric", typ)
			return at, false
		}
		at.Value = strings.TrimSpace(val)
		if at.Type == "String" && numericAttrs[at.Name] {
			v.errorf("%s is a number: write [\"Numeric\", %q]", at.Name, at.Value)
			return at, false
		}
	case *ast.IntegerNode, *ast.FloatNode:
		at.Type = "Numeric"
		at.Value = n.GetToken().Value
	case *ast.StringNode, *ast.LiteralNode:
		s, _ := scalarText(n)
		at.Value = strings.TrimSpace(s)
		at.Type = "String"
		if numericAttrs[at.Name] {
			at.Type = "Numeric"
		}
	default:
		v.errorf("expected a value or [type, value], got %s", kind(v.node))
		return at, false
	}
	if at.Value == "" {
		v.errorf("empty value")
		return at, false
	}
	if at.Type == "Numeric" {
		f, err := strconv.ParseFloat(at.Value, 64)
		if err != nil {
			v.errorf("%q is not a number", at.Value)
			return at, false
		}
		if (at.Name == "ncpus" || at.Name == "nram") && f <= 0 {
			v.errorf("%s must be positive, got %s", at.Name, at.Value)
			return at, false
		}
	}
	return at, true
}

// decodeTemplate reads one template mapping; label names it in key paths.
func decodeTemplate(v value) (template.Template, bool) {
	var t template.Template
	st := &tmplState{}
	n0 := len(*v.d.errs)
	present := v.decode(templateFields(&t, v.d, st), templateHint)
	if present == nil {
		return t, false
	}
	fail := func(key, format string, a ...any) {
		path := v.key + "." + key
		node := v.node
		if nv, ok := st.nodes[key]; ok {
			node = nv.node
		}
		v.d.errorf(node, path, format, a...)
	}
	missing := func(key string) {
		v.d.errorf(v.node, v.key+"."+key, "missing (required)")
	}
	if !present["templateId"] {
		missing("templateId")
	}
	if !present["maxNumber"] {
		missing("maxNumber")
	}
	if len(*v.d.errs) > n0 {
		return t, false // field errors: skip cross checks that would repeat them
	}

	// Instance types.
	hasTypes := t.VMType != "" || len(t.VMTypes) > 0
	switch {
	case t.VMType != "" && len(t.VMTypes) > 0:
		fail("vmTypes", "give either vmType or vmTypes, not both")
	case !hasTypes && t.LaunchTemplateID == "":
		missing("vmType")
	}
	for _, w := range t.VMTypesOnDemand {
		if len(t.VMTypes) > 0 {
			if _, ok := t.VMTypes.Get(w.Type); !ok {
				fail("vmTypesOnDemand", "%s is not listed in vmTypes", w.Type)
			}
		}
	}
	for _, w := range t.VMTypesPriority {
		if _, ok := t.VMTypes.Get(w.Type); !ok && w.Type != t.VMType {
			fail("vmTypesPriority", "%s is not one of the template's instance types", w.Type)
		}
	}

	// Image.
	if t.ImageID == "" && t.LaunchTemplateID == "" {
		missing("imageId")
	}
	if t.UserData != "" && t.UserDataScript != "" {
		fail("userData", "give either userData or userDataScript, not both")
	}
	if t.LaunchTemplateV != "" && t.LaunchTemplateID == "" {
		fail("launchTemplateVersion", "needs launchTemplateId")
	}

	// Attributes: type, ncpus and nram, unless the engine can fill them from
	// the instance type (DescribeInstanceTypes).
	for _, name := range []string{"type", "ncpus", "nram"} {
		if _, ok := t.Attributes.Get(name); !ok && !hasTypes {
			fail("attributes", "%s is required when the template has no vmType or vmTypes to take it from", name)
		}
	}

	// Pricing and API.
	if t.PriceType == "" {
		t.PriceType = template.PriceOnDemand
	}
	api := t.API()
	if t.PriceType == template.PriceHeterogeneous && api == template.APIRunInstances {
		fail("priceType", "heterogeneous needs providerApi EC2Fleet, SpotFleet or ASG")
	}
	if t.PercentOnDemand != 0 && t.PriceType != template.PriceHeterogeneous {
		fail("percentOnDemand", "only applies to priceType heterogeneous")
	}
	if t.MaxSpotPrice != 0 && t.PriceType == template.PriceOnDemand {
		fail("maxSpotPrice", "only applies to priceType spot or heterogeneous")
	}
	switch {
	case t.FleetType != "" && api != template.APIEC2Fleet && api != template.APISpotFleet:
		fail("fleetType", "only applies to providerApi EC2Fleet or SpotFleet (this template uses %s)", api)
	case t.FleetType == template.FleetInstant && api == template.APISpotFleet:
		fail("fleetType", "a Spot Fleet is request or maintain; instant is for EC2Fleet")
	}
	if api == template.APIASG && len(t.SubnetIDs) == 0 {
		fail("subnetId", "an Auto Scaling group launches into subnets: give subnetId (one or several, comma-separated)")
	}
	if api == template.APIEC2Fleet && t.FleetType == "" {
		t.FleetType = template.FleetInstant
	}
	if api == template.APISpotFleet {
		if t.FleetRole == "" {
			fail("fleetRole", "SpotFleet needs fleetRole (the IAM role ARN or name the Spot Fleet uses)")
		}
		if t.SpotFleetExpiry == 0 {
			t.SpotFleetExpiry = DefaultSpotFleetExpiry
		}
	} else if t.SpotFleetExpiry != 0 && api == template.APIRunInstances {
		fail("spotFleetRequestExpiry", "only applies to fleets and groups (EC2Fleet, SpotFleet, ASG: how long they may take to reach their target); this template uses RunInstances")
	}
	if t.Iops != 0 && t.VolumeType != "" && t.VolumeType != "io1" && t.VolumeType != "io2" && t.VolumeType != "gp3" {
		fail("iops", "only applies to volumeType io1, io2 or gp3")
	}
	t.ProviderAPI = api
	return t, len(*v.d.errs) == n0
}

// peek returns the string value of key in a mapping node, if present and a
// scalar, without reporting anything.
func peek(n ast.Node, key string) string {
	var pairs []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		pairs = m.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{m}
	}
	for _, p := range pairs {
		if k, ok := scalarText(unwrap(p.Key)); ok && k == key {
			if s, ok := scalarText(unwrap(p.Value)); ok {
				return s
			}
		}
	}
	return ""
}

// decodeTemplates reads a list of templates. Keys are labelled by their
// templateId when it is valid, else by index.
// seen maps templateIds already defined (in this provider) to where.
func decodeTemplates(v value, prefix string, seen map[string]string) ([]template.Template, bool) {
	seq, ok := v.node.(*ast.SequenceNode)
	if !ok {
		v.errorf("expected a list of templates, got %s", kind(v.node))
		return nil, false
	}
	var out []template.Template
	good := true
	for i, item := range seq.Values {
		item = unwrap(item)
		label := fmt.Sprintf("%s[%d]", prefix, i)
		if id := peek(item, "templateId"); templateIDRe.MatchString(id) {
			label = fmt.Sprintf("%s[%s]", prefix, id)
		}
		if item == nil {
			v.errorf("empty template")
			good = false
			continue
		}
		t, ok := decodeTemplate(value{d: v.d, node: item, key: label})
		if !ok {
			good = false
			continue
		}
		line := item.GetToken().Position.Line
		if first, dup := seen[t.TemplateID]; dup {
			v.d.errorf(item, label+".templateId", "duplicate templateId %q (first defined at %s)", t.TemplateID, first)
			good = false
			continue
		}
		seen[t.TemplateID] = fmt.Sprintf("%s:%d", v.d.file, line)
		out = append(out, t)
	}
	return out, good
}
