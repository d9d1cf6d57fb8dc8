package config

import (
	"fmt"
	"github.com/ohfp/ohfp/internal/english"
	"math"
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
	"fleetTemplate": "use providerApi and the template fields, ec2FleetConfig, or a launch template",
}

// looseList reads a list of ids as IBM's files write them: a list, one id
// or a comma-separated string, where empty items (IBM's sample
// "securityGroupIds": [""]) are dropped with a warning, as IBM's plugin
// drops them. ok is false only on a real error.
func looseList(v value) ([]string, bool) {
	var raw []string
	var at []value // where each raw item is written
	switch n := v.node.(type) {
	case *ast.SequenceNode:
		for i, item := range n.Values {
			iv := value{d: v.d, node: unwrap(item), key: fmt.Sprintf("%s[%d]", v.key, i)}
			s, ok := scalarText(iv.node)
			if !ok {
				iv.errorf("expected a string, got %s", kind(iv.node))
				return nil, false
			}
			raw = append(raw, s)
			at = append(at, iv)
		}
	default:
		s, ok := scalarText(v.node)
		if !ok {
			v.errorf("expected a list or a comma-separated string, got %s", kind(v.node))
			return nil, false
		}
		raw = strings.Split(s, ",")
		for range raw {
			at = append(at, v)
		}
	}
	var out []string
	empty, good := 0, true
	for i, s := range raw {
		s = strings.TrimSpace(s)
		if s == "" {
			empty++
			continue
		}
		if at[i].placeholder(s) {
			good = false
			continue
		}
		out = append(out, s)
	}
	if !good {
		return nil, false
	}
	if empty > 0 {
		what := "EC2's default (the VPC's default security group, the default subnet)"
		if len(out) > 0 {
			what = "the other items"
		}
		v.warnf("%d empty item(s) ignored, as IBM's plugin does: %s apply", empty, what)
	}
	return out, true
}

// foldOneOf matches s against allowed ignoring letter case, '-' and '_'
// (IBM's LSF plugin takes allocationStrategy in any case), returning the
// allowed spelling, or "" after an error.
func foldOneOf(v value, s string, allowed ...string) string {
	fold := func(x string) string {
		return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(x))
	}
	for _, a := range allowed {
		if fold(a) == fold(s) {
			return a
		}
	}
	v.errorf("%q is not one of %s", s, strings.Join(allowed, ", "))
	return ""
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
	nodes         map[string]value
	vmTypeList    template.Weights // vmType written as a comma list
	spotPrice     float64          // spotPrice (LSF's name of maxSpotPrice)
	spotPriceZero bool
	odRatio       *float64 // onDemandTargetCapacityRatio
	fleetConfig   string   // ec2FleetConfig, resolved
	validity      int      // requestValidity in minutes
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
				// IBM's plugins take an empty value as unset (their samples
				// write "" for fields a site leaves blank).
				v.warnf("empty: taken as unset, as IBM's plugin does")
				return
			}
			if check != nil && !check(v, s) {
				return
			}
			*dst = s
		}
	}
	// empty tells whether v is an empty string, warning that it is taken
	// as unset, as IBM's plugins do.
	empty := func(v value) bool {
		if n, ok := v.node.(*ast.StringNode); ok && strings.TrimSpace(n.Value) == "" {
			v.warnf("empty: taken as unset, as IBM's plugin does")
			return true
		}
		return false
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
			if strings.HasPrefix(s, "ami-") && !strings.ContainsAny(s, " \t") {
				// IBM's own sample writes "ami-27a1"; IBM's plugins pass the
				// id to EC2 unchecked. EC2 refuses it at launch.
				v.warnf("%q is not an AMI id's shape (ami- and 8 or 17 hex digits): EC2 will refuse to launch it (InvalidAMIID.Malformed); put your AMI's id here", s)
				return true
			}
			v.errorf("%q is neither an AMI id (ami-0123456789abcdef0) nor an SSM parameter path (/aws/service/...)", s)
			return false
		})},
		{"subnetId", func(v value) {
			st.seen(v)
			if l, ok := looseList(v); ok && checkIDs(v, l, "subnet-") {
				t.SubnetIDs = l
			}
		}},
		{"vmType", str(&t.VMType, func(v value, s string) bool {
			// IBM's LSF plugin (awsv2) takes a comma-separated list of
			// types: EC2 is asked for them in order. That is vmTypes with
			// weight 1 each.
			if !strings.Contains(s, ",") {
				return checkInstanceType(v, s)
			}
			var w template.Weights
			for _, it := range strings.Split(s, ",") {
				it = strings.TrimSpace(it)
				if it == "" {
					continue
				}
				if !checkInstanceType(v, it) {
					return false
				}
				if _, dup := w.Get(it); dup {
					v.errorf("%s is listed twice", it)
					return false
				}
				w = append(w, template.Weight{Type: it, Weight: 1})
			}
			if len(w) == 1 {
				t.VMType = w[0].Type
				return false
			}
			st.vmTypeList = w
			return false
		})},
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
		{"spotPrice", func(v value) {
			// LSF's AWS plugin: the Spot bid, which also makes the
			// template a Spot one. ohfp: maxSpotPrice, and priceType spot
			// when the template does not say.
			st.seen(v)
			if f, ok := v.number(); ok {
				if f <= 0 {
					v.warnf("%v: no price cap; taken as unset (Spot instances at the market price)", f)
					st.spotPriceZero = true
					return
				}
				st.spotPrice = f
			}
		}},
		{"percentOnDemand", intIn(&t.PercentOnDemand, 0, 100, "a percentage 0-100")},
		{"allocationStrategy", str(&t.AllocationStrat, func(v value, s string) bool {
			t.AllocationStrat = foldOneOf(v, s, allocationStrategies...)
			return false
		})},
		{"allocationStrategyOnDemand", str(&t.AllocationOnDem, func(v value, s string) bool {
			t.AllocationOnDem = foldOneOf(v, s, onDemandStrategies...)
			return false
		})},
		{"poolsCount", intIn(&t.PoolsCount, 1, 1000, "at least 1")},
		{"spotFleetRequestExpiry", intIn(&t.SpotFleetExpiry, 1, maxInt, "minutes, at least 1")},
		{"fleetRole", str(&t.FleetRole, nil)},
		{"keyName", str(&t.KeyName, nil)},
		{"securityGroupIds", func(v value) {
			st.seen(v)
			if l, ok := looseList(v); ok && checkIDs(v, l, "sg-") {
				t.SecurityGroupIDs = l
			}
		}},
		{"instanceProfile", str(&t.InstanceProfile, nil)},
		{"instanceTags", str(&t.InstanceTags, func(v value, s string) bool {
			if pieces, ok := awsv2Tags(s); ok {
				s = strings.Join(pieces, ";")
				v.warnf("read as IBM's awsv2 plugin reads it, %s separated by ',' (%s); IBM's Java aws plugin separates tags with ';' and would make one tag of it: write ';' to say which", english.Plural(len(pieces), "tag"), s)
			}
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
		{"userData", str(&t.UserData, func(v value, s string) bool {
			// IBM's meaning: variables for the user-data script.
			if _, err := template.UserDataVars(s); err != nil {
				v.errorf("%v", err)
				return false
			}
			return true
		})},
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
			if empty(v) {
				return
			}
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
		{"placementGroupName", str(&t.PlacementGroupName, nil)},
		{"tenancy", str(&t.Tenancy, func(v value, s string) bool { return oneOf(v, s, "default", "dedicated", "host") })},
		{"ebsOptimized", func(v value) {
			st.seen(v)
			if b, ok := v.boolean(); ok {
				t.EbsOptimized = b
			}
		}},
		{"interfaceType", str(&t.InterfaceType, func(v value, s string) bool {
			t.InterfaceType = foldOneOf(v, s, "interface", "efa")
			return false
		})},
		{"efaCount", intIn(&t.EfaCount, 1, 32, "network cards with an EFA, 1-32")},
		{"priority", intIn(&t.Priority, -maxInt, maxInt, "an integer")},
		{"gpuextend", str(&t.GPUExtend, nil)},
		{"onDemandTargetCapacityRatio", func(v value) {
			st.seen(v)
			if f, ok := v.number(); ok {
				if f < 0 || f > 1 {
					v.errorf("%v must be between 0.0 and 1.0", f)
					return
				}
				st.odRatio = &f
			}
		}},
		{"ec2FleetConfig", func(v value) {
			st.seen(v)
			if empty(v) {
				return
			}
			if p, ok := d.path(v); ok {
				st.fleetConfig = p
			}
		}},
		{"requestValidity", func(v value) {
			// LSF's AWS plugin: how long a Spot request stays valid,
			// HH:MM. ohfp: spotFleetRequestExpiry in minutes.
			st.seen(v)
			if empty(v) {
				return
			}
			s, ok := v.text()
			if !ok {
				return
			}
			h, m, found := strings.Cut(strings.TrimSpace(s), ":")
			hi, err1 := strconv.Atoi(h)
			mi, err2 := strconv.Atoi(m)
			if !found || err1 != nil || err2 != nil || hi < 0 || mi < 0 || mi > 59 || hi*60+mi < 1 {
				v.errorf("%q is not a duration HH:MM of at least 00:01", s)
				return
			}
			st.validity = hi*60 + mi
		}},
		{"durationInHours", func(v value) {
			st.seen(v)
			v.warnf("ignored: AWS no longer offers Spot blocks (a fixed duration); the instances are ordinary Spot instances")
		}},
		{"ttl", func(v value) {
			st.seen(v)
			v.warnf("ignored: ohfp does not end hosts by age; HF returns them")
		}},
		{"computeUnit", func(v value) {
			st.seen(v) // warned once the template's types are known (computeUnitNote)
		}},
		{"machineCount", func(v value) {
			// IBM's Java plugin (AwsTemplate) carries it from a request;
			// in a template file it means nothing.
			st.seen(v)
			v.warnf("ignored: the number of machines is what HF's requestMachines asks for")
		}},
		{"providerApi", str(&t.ProviderAPI, func(v value, s string) bool {
			return oneOf(v, s, template.APINames(nil)...)
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

// awsv2Tags splits instanceTags written as IBM's awsv2 plugin reads them
// (aws_client.py _build_instance_tags: "k=v,k2=v2", split at ','): ok
// when s has no ';' and every ','-separated piece is a k=v pair, so a
// value with a comma ("group=a,b") stays one tag, as both plugins read it.
func awsv2Tags(s string) ([]string, bool) {
	if strings.Contains(s, ";") || !strings.Contains(s, ",") {
		return nil, false
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if k, _, ok := strings.Cut(p, "="); !ok || strings.TrimSpace(k) == "" {
			return nil, false
		}
		out = append(out, p)
	}
	return out, len(out) > 1
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
		case "boolean":
			at.Type = "Boolean"
		default:
			v.errorf("attribute type %q is not String, Numeric or Boolean", typ)
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
	case *ast.BoolNode:
		at.Type = "Boolean"
		at.Value = "0"
		if n.Value {
			at.Value = "1"
		}
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
	if at.Type == "Boolean" && numericAttrs[at.Name] {
		v.errorf("%s is a number: write [\"Numeric\", ...]", at.Name)
		return at, false
	}
	switch at.Type {
	case "Boolean":
		// IBM: a Boolean attribute is 1 (the host has it) or 0.
		switch strings.ToLower(at.Value) {
		case "1", "true":
			at.Value = "1"
		case "0", "false":
			at.Value = "0"
		default:
			v.errorf("%q: a Boolean attribute is 1 or 0", at.Value)
			return at, false
		}
	case "Numeric":
		// IBM: a number, or a range "[min:max]" (LSF's resource ranges).
		lo, hi := at.Value, at.Value
		if strings.HasPrefix(at.Value, "[") && strings.HasSuffix(at.Value, "]") {
			var ok bool
			lo, hi, ok = strings.Cut(at.Value[1:len(at.Value)-1], ":")
			if !ok {
				v.errorf("%q: a Numeric range is written [min:max]", at.Value)
				return at, false
			}
		}
		flo, err1 := strconv.ParseFloat(strings.TrimSpace(lo), 64)
		fhi, err2 := strconv.ParseFloat(strings.TrimSpace(hi), 64)
		if err1 != nil || err2 != nil {
			v.errorf("%q is not a number or a range [min:max]", at.Value)
			return at, false
		}
		if flo > fhi {
			v.errorf("%q: the range's minimum is above its maximum", at.Value)
			return at, false
		}
		if (at.Name == "ncpus" || at.Name == "nram") && flo <= 0 {
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

	ibmTemplateFields(&t, st, fail, v)

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
		// The script is the user data; userData's variables go to its
		// marker, as they go to user_data.sh's.
		if b, err := os.ReadFile(t.UserDataScript); err == nil && !strings.Contains(string(b), template.ExportMarker) {
			fail("userData", "userDataScript %s has no %s line to receive these variables", t.UserDataScript, template.ExportMarker)
		}
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
	// What each provider API takes is the template model's (template.APIs):
	// these rules name no API. An unknown providerApi was refused already.
	api := t.API()
	spec, known := template.SpecOf(api)
	if known && t.PriceType == template.PriceHeterogeneous && !spec.Heterogeneous {
		fail("priceType", "heterogeneous needs providerApi %s", orList(template.APINames(func(a template.APISpec) bool { return a.Heterogeneous })))
	}
	if t.PercentOnDemand != 0 && t.PriceType != template.PriceHeterogeneous {
		// IBM's files carry it beside priceType spot; it means nothing there.
		warnAt(v, st, "percentOnDemand", "ignored: it applies to priceType heterogeneous; with %s no instance is on-demand by it", t.PriceType)
		t.PercentOnDemand = 0
	}
	if t.MaxSpotPrice != 0 && t.PriceType == template.PriceOnDemand {
		warnAt(v, st, "maxSpotPrice", "ignored: priceType ondemand launches no Spot instance")
		t.MaxSpotPrice = 0
	}
	if _, ok := st.nodes["computeUnit"]; ok {
		warnAt(v, st, "computeUnit", "%s", computeUnitNote(&t))
	}
	if known {
		checkAPI(v, st, &t, spec, fail)
	}
	if t.Iops != 0 && t.VolumeType != "" && t.VolumeType != "io1" && t.VolumeType != "io2" && t.VolumeType != "gp3" {
		fail("iops", "only applies to volumeType io1, io2 or gp3")
	}
	t.ProviderAPI = api
	return t, len(*v.d.errs) == n0
}

// checkAPI checks what t asks of its provider API against what the API
// takes (spec, from template.APIs), and fills the API's defaults.
func checkAPI(v value, st *tmplState, t *template.Template, spec template.APISpec, fail func(key, format string, a ...any)) {
	api := spec.Name
	switch {
	case t.FleetType != "" && len(spec.FleetTypes) == 0:
		// IBM's Java plugin reads fleetType into every template and uses
		// it only for fleets.
		warnAt(v, st, "fleetType", "ignored: it only applies to providerApi %s (this template uses %s)", orList(template.APINames(func(a template.APISpec) bool { return len(a.FleetTypes) > 0 })), api)
		t.FleetType = ""
	case t.FleetType != "" && !spec.TakesFleetType(t.FleetType):
		fail("fleetType", "%s %s is %s; %s is for %s", spec.Article, spec.Noun, orList(spec.FleetTypes), t.FleetType,
			orList(template.APINames(func(a template.APISpec) bool { return a.TakesFleetType(t.FleetType) })))
	}
	if spec.NeedsSubnets && len(t.SubnetIDs) == 0 {
		fail("subnetId", "%s %s launches into subnets: give subnetId (one or several, comma-separated)", spec.Article, spec.Noun)
	}
	if t.FleetType == "" {
		t.FleetType = spec.DefaultFleetType
	}
	if spec.NeedsFleetRole && t.FleetRole == "" {
		fail("fleetRole", "%s needs fleetRole (the IAM role ARN or name the %s uses)", api, spec.Noun)
	}
	switch {
	case spec.ExpiryRequired:
		if t.SpotFleetExpiry == 0 {
			t.SpotFleetExpiry = DefaultSpotFleetExpiry
		}
	case t.SpotFleetExpiry != 0 && !spec.Target && st.validity != 0 && st.nodes["spotFleetRequestExpiry"].node == nil:
		warnAt(v, st, "requestValidity", "ignored: this template launches with %s, which has no request to expire", api)
		t.SpotFleetExpiry = 0
	case t.SpotFleetExpiry != 0 && !spec.Target:
		fail("spotFleetRequestExpiry", "only applies to fleets and groups (%s: how long they may take to reach their target); this template uses %s",
			strings.Join(template.APINames(func(a template.APISpec) bool { return a.Target }), ", "), api)
	}
}

// pair is the key/value pair of key in mapping n, or nil.
func pair(n ast.Node, key string) *ast.MappingValueNode {
	var pairs []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		pairs = m.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{m}
	}
	for _, p := range pairs {
		if k, ok := scalarText(unwrap(p.Key)); ok && k == key {
			return p
		}
	}
	return nil
}

// peek returns the string value of key in a mapping node, if present and a
// scalar, without reporting anything.
func peek(n ast.Node, key string) string {
	if p := pair(n, key); p != nil {
		if s, ok := scalarText(unwrap(p.Value)); ok {
			return s
		}
	}
	return ""
}

// fieldNode is the value node of key in mapping n, else n.
func fieldNode(n ast.Node, key string) ast.Node {
	p := pair(n, key)
	if p == nil {
		return n
	}
	if v := unwrap(p.Value); v != nil {
		return v
	}
	return p.Key
}

// decodeTemplates reads a list of templates. Keys are labelled by their
// templateId when it is valid, else by index.
// seen maps templateIds already defined (in this provider) to where; at
// receives each template's value, for messages about it found later.
func decodeTemplates(v value, prefix string, seen map[string]string, at map[string]value) ([]template.Template, bool) {
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
		at[t.TemplateID] = value{d: v.d, node: item, key: label}
		out = append(out, t)
	}
	return out, good
}

// warnAt warns at the node that set key in the template (else the
// template).
func warnAt(v value, st *tmplState, key, format string, a ...any) {
	node := v.node
	if nv, ok := st.nodes[key]; ok {
		node = nv.node
	}
	v.d.warnf(node, v.key+"."+key, format, a...)
}

// ibmTemplateFields folds the fields of IBM's LSF AWS plugin that are
// other names (or other shapes) of ohfp's into the template: the vmType
// comma list, spotPrice, onDemandTargetCapacityRatio, requestValidity,
// ec2FleetConfig and efaCount.
func ibmTemplateFields(t *template.Template, st *tmplState, fail func(key, format string, a ...any), v value) {
	if len(st.vmTypeList) > 0 {
		if len(t.VMTypes) > 0 {
			fail("vmTypes", "give either vmType or vmTypes, not both")
		} else {
			t.VMTypes = st.vmTypeList
		}
	}
	if st.fleetConfig != "" {
		applyFleetConfig(t, st, fail, v)
	}
	if st.spotPrice > 0 {
		if t.MaxSpotPrice != 0 && t.MaxSpotPrice != st.spotPrice {
			fail("spotPrice", "%v differs from maxSpotPrice %v: give one of them", st.spotPrice, t.MaxSpotPrice)
		}
		t.MaxSpotPrice = st.spotPrice
	}
	if (st.spotPrice > 0 || st.spotPriceZero) && t.PriceType == "" {
		// In LSF's plugin a template with spotPrice asks for Spot
		// instances: through a Spot Fleet when it has fleetRole, an EC2
		// Fleet with ec2FleetConfig, else directly.
		t.PriceType = template.PriceSpot
		if t.ProviderAPI == "" && t.FleetRole == "" {
			t.ProviderAPI = template.APIRunInstances
		}
	}
	if st.odRatio != nil {
		r := *st.odRatio
		pct := int(math.Round(r * 100))
		if float64(pct) != r*100 {
			warnAt(v, st, "onDemandTargetCapacityRatio", "%v is taken as %d%% on-demand (ohfp counts whole percents)", r, pct)
		}
		price := template.PriceHeterogeneous
		switch pct {
		case 0:
			price = template.PriceSpot
		case 100:
			price = template.PriceOnDemand
		}
		switch {
		case t.PriceType == "" || t.PriceType == price:
			t.PriceType = price
			if price == template.PriceHeterogeneous {
				if t.PercentOnDemand != 0 && t.PercentOnDemand != pct {
					fail("onDemandTargetCapacityRatio", "%v differs from percentOnDemand %d: give one of them", r, t.PercentOnDemand)
				}
				t.PercentOnDemand = pct
			}
		default:
			warnAt(v, st, "onDemandTargetCapacityRatio", "ignored: priceType %s says how the template is priced", t.PriceType)
		}
		if t.Price() == template.PriceHeterogeneous && t.ProviderAPI == "" && t.FleetRole == "" {
			t.ProviderAPI = template.APIEC2Fleet // IBM's ratio is an EC2 Fleet's
		}
	}
	if st.validity > 0 && t.SpotFleetExpiry == 0 {
		t.SpotFleetExpiry = st.validity
	}
	switch {
	case t.EfaCount > 0 && t.InterfaceType != "efa":
		warnAt(v, st, "efaCount", "ignored: it counts EFA interfaces, and interfaceType is not efa")
		t.EfaCount = 0
	case t.InterfaceType == "efa" && t.EfaCount == 0:
		t.EfaCount = 1
	}
}

// orList writes items as "a", "a or b", "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// computeUnitNote is the warning for IBM's computeUnit, in the terms of
// the template's own instance types.
func computeUnitNote(t *template.Template) string {
	if len(t.VMTypes) == 0 {
		if t.VMType == "" {
			return "ignored: ohfp counts one unit per instance; to count otherwise give vmTypes with weights"
		}
		return fmt.Sprintf("ignored: ohfp counts one unit per instance of %s; to count otherwise give vmTypes with weights, e.g. {%q: 1}", t.VMType, t.VMType)
	}
	parts := make([]string, len(t.VMTypes))
	for i, w := range t.VMTypes {
		parts[i] = fmt.Sprintf("%s: %d", w.Type, w.Weight)
	}
	return "ignored: ohfp counts units by the weights of the template's vmTypes (" + strings.Join(parts, ", ") + ")"
}
