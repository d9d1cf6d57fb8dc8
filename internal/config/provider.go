package config

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/ohfp/ohfp/internal/english"
	"github.com/ohfp/ohfp/internal/template"
)

// setting is one provider setting's value and where it came from.
type setting struct {
	val any    // string, int, bool or time.Duration; comparable
	src string // e.g. "config.yaml:12 (AWS_REGION)"
	v   value
}

// settingSpec is one provider setting: its snake_case name in the YAML, its
// IBM awsprov_config.json name (if any), and how to read each form.
type settingSpec struct {
	name  string
	ibm   string
	read  func(d *doc, v value) (any, bool) // the snake_case form
	ibmRd func(d *doc, v value) (any, bool) // the IBM form (nil: same as read)
}

func readString(d *doc, v value) (any, bool) {
	s, ok := v.str()
	s = strings.TrimSpace(s)
	if ok && s == "" {
		v.errorf("empty value (leave the key out instead)")
		return nil, false
	}
	return s, ok
}

func readPath(d *doc, v value) (any, bool) { return d.path(v) }

func readURL(d *doc, v value) (any, bool) {
	s, ok := v.str()
	if !ok {
		return nil, false
	}
	return checkURL(v, s)
}

// readIBMURL reads AWS_ENDPOINT_URL, which IBM's plugin takes with or
// without the protocol (ec2.us-west-1.amazonaws.com): https:// is added.
func readIBMURL(d *doc, v value) (any, bool) {
	s, ok := v.str()
	if !ok {
		return nil, false
	}
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	return checkURL(v, s)
}

func checkURL(v value, s string) (any, bool) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.errorf("%q is not an http(s) URL such as https://ec2.us-east-1.amazonaws.com", s)
		return nil, false
	}
	return strings.TrimSpace(s), true
}

func readProxy(d *doc, v value) (any, bool) {
	s, ok := v.str()
	if !ok {
		return nil, false
	}
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			v.errorf("%q is not a proxy URL such as http://proxy.example.com:3128", s)
			return nil, false
		}
		return s, true
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		v.errorf("%q is not host:port or a URL (e.g. proxy.example.com:3128)", s)
		return nil, false
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		v.errorf("%q: port must be 1-65535", s)
		return nil, false
	}
	return s, true
}

func readIntRange(lo, hi int) func(d *doc, v value) (any, bool) {
	return func(d *doc, v value) (any, bool) {
		i, ok := v.integer()
		if ok && (i < lo || i > hi) {
			v.errorf("%d is out of range %d-%d", i, lo, hi)
			return nil, false
		}
		return i, ok
	}
}

func readDurRange(lo, hi time.Duration) func(d *doc, v value) (any, bool) {
	return func(d *doc, v value) (any, bool) {
		dur, ok := v.duration()
		if ok && (dur < lo || dur > hi) {
			v.errorf("%s is out of range %s-%s", dur, lo, hi)
			return nil, false
		}
		return dur, ok
	}
}

// readIntUnit reads an IBM integer in unit (ms or s) as a duration.
func readIntUnit(unit time.Duration, lo, hi time.Duration) func(d *doc, v value) (any, bool) {
	return func(d *doc, v value) (any, bool) {
		i, ok := v.integer()
		if !ok {
			return nil, false
		}
		dur := time.Duration(i) * unit
		if dur > hi && i > 0 {
			// IBM's plugins take longer values; ohfp's bound is a
			// safety limit, so the value is capped rather than refused.
			v.warnf("%d is above ohfp's maximum; %s is used", i, hi)
			return hi, true
		}
		if dur < lo {
			if i == 0 {
				// IBM's plugins take 0 as "use the default".
				v.warnf("%d: taken as unset; ohfp's default is used", i)
				return nil, false
			}
			if i < 0 {
				v.errorf("%d is out of range %d-%d", i, lo/unit, hi/unit)
				return nil, false
			}
			v.warnf("%d is below ohfp's minimum; %s is used", i, lo)
			return lo, true
		}
		return dur, true
	}
}

// readIntCap reads an IBM integer; above hi it is capped with a warning
// (IBM's plugins take larger values; ohfp's bound is a safety limit).
func readIntCap(lo, hi int) func(d *doc, v value) (any, bool) {
	return func(d *doc, v value) (any, bool) {
		i, ok := v.integer()
		if !ok {
			return nil, false
		}
		switch {
		case i > hi:
			v.warnf("%d is above ohfp's maximum; %d is used", i, hi)
			return hi, true
		case i < lo:
			v.warnf("%d: taken as unset; ohfp's default is used", i)
			return nil, false
		}
		return i, true
	}
}

func readBool(d *doc, v value) (any, bool) { return v.boolean() }

// queueNameRe is an SQS queue name: 1-80 of letters, digits, '-' and '_'
// (a FIFO queue's ends in .fifo).
var queueNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}(\.fifo)?$`)

// readQueue reads an SQS queue URL
// (https://sqs.us-east-1.amazonaws.com/123456789012/name) or name.
func readQueue(d *doc, v value) (any, bool) {
	s, ok := v.str()
	if !ok {
		return nil, false
	}
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		return checkURL(v, s)
	}
	if !queueNameRe.MatchString(s) {
		v.errorf("%q is neither an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>) nor a queue name (1-80 of letters, digits, '-' and '_')", s)
		return nil, false
	}
	return s, true
}

func readEnum(allowed ...string) func(d *doc, v value) (any, bool) {
	return func(d *doc, v value) (any, bool) {
		s, ok := v.str()
		if !ok {
			return nil, false
		}
		for _, a := range allowed {
			if s == a {
				return s, true
			}
		}
		v.errorf("%q: one of %s", s, strings.Join(allowed, ", "))
		return nil, false
	}
}

// decodePrices reads a provider's prices: table, instance type to
// dollars per hour.
func decodePrices(v value) map[string]float64 {
	entries, ok := v.mapping()
	if !ok {
		return nil
	}
	out := map[string]float64{}
	for _, e := range entries {
		f, ok := e.val.number()
		if !ok {
			continue
		}
		if f <= 0 || f > 1000 {
			e.val.errorf("%v: an on-demand price in US dollars per hour, above 0 and at most 1000 (e.g. 0.085)", f)
			continue
		}
		if !instanceTypeRe.MatchString(e.name) {
			e.val.errorf("%q is not an instance type name such as c5.large", e.name)
			continue
		}
		out[e.name] = f
	}
	return out
}

// instanceTypeRe is the shape of an EC2 instance type name.
var instanceTypeRe = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9-]+$`)

var settingSpecs = []settingSpec{
	{name: "region", ibm: "AWS_REGION", read: readString},
	{name: "profile", read: readString},
	{name: "credentials_file", ibm: "AWS_CREDENTIAL_FILE", read: readPath},
	{name: "endpoint_url", ibm: "AWS_ENDPOINT_URL", read: readURL, ibmRd: readIBMURL},
	{name: "proxy", read: readProxy},
	{name: "connection_timeout", ibm: "AWS_CONNECTION_TIMEOUT_MS",
		read: readDurRange(time.Millisecond, time.Hour), ibmRd: readIntUnit(time.Millisecond, time.Millisecond, time.Hour)},
	{name: "aws_response_timeout", read: readDurRange(time.Millisecond, time.Hour)},
	{name: "aws_call_timeout", read: readDurRange(time.Millisecond, time.Hour)},
	{name: "retry_attempts", ibm: "AWS_REQUEST_RETRY_ATTEMPTS", read: readIntRange(0, MaxRetryAttempts), ibmRd: readIntCap(0, MaxRetryAttempts)},
	{name: "pending_timeout", ibm: "AWS_INSTANCE_PENDING_TIMEOUT_SEC",
		read: readDurRange(MinPendingTimeout, MaxPendingTimeout), ibmRd: readIntUnit(time.Second, MinPendingTimeout, MaxPendingTimeout)},
	{name: "describe_retry_attempts", ibm: "AWS_DESCRIBE_REQUEST_RETRY_ATTEMPTS", read: readIntRange(0, MaxRetryAttempts), ibmRd: readIntCap(0, MaxRetryAttempts)},
	{name: "describe_interval", ibm: "AWS_DESCRIBE_REQUEST_INTERVAL",
		read: readDurRange(0, 10*time.Minute), ibmRd: readIntUnit(time.Millisecond, 0, 10*time.Minute)},
	{name: "key_file", ibm: "AWS_KEY_FILE", read: readPath},
	{name: "accept_propagated_log_setting", ibm: "ACCEPT_PROPAGATED_LOG_SETTING", read: readBool},
	{name: "aws_rate_limit", read: readBool},
	{name: "capacity_memory", read: readDurRange(0, 24*time.Hour)},
	{name: "breaker_failures", read: readIntRange(0, 1000)},
	{name: "breaker_cooldown", read: readDurRange(0, 7*24*time.Hour)},
	{name: "spot_terminate_on_reclaim", ibm: "AWS_SPOT_TERMINATE_ON_RECLAIM", read: readBool},
	{name: "tag_instance_id", ibm: "AWS_TAG_InstanceID", read: readBool},
	{name: "user_data_template", read: readPath},
	{name: "interruption_queue", read: readQueue},
	{name: "rebalance_as_reclaim", read: readBool},
	{name: "health_checks", read: readBool},
	{name: "health_check_grace", read: readDurRange(time.Minute, 24*time.Hour)},
	{name: "pricing", read: readEnum(PricingOff, PricingTable, PricingAPI)},
	{name: "spot_price_ttl", read: readDurRange(MinSpotPriceTTL, MaxSpotPriceTTL)},
	{name: "pricing_endpoint_url", read: readURL},
	// INSTANCE_CREATION_TIMEOUT (LSF, minutes): ohfp's nearest is
	// pending_timeout; see decodeProvider.
	{ibm: "INSTANCE_CREATION_TIMEOUT", read: readIntRange(1, 1<<20)},
	// IBM's federated credentials: a script printing them, run again
	// before they expire (provider/aws credscript.go).
	{name: "credential_script", ibm: "AWS_CREDENTIAL_SCRIPT", read: readPath},
	{name: "credential_renew_margin", ibm: "AWS_CREDENTIAL_RENEW_MARGIN",
		read: readDurRange(0, 24*time.Hour), ibmRd: readIntUnit(time.Second, 0, 24*time.Hour)},
	// AWS_PROXY_HOST and AWS_PROXY_PORT are combined into proxy.
	{ibm: "AWS_PROXY_HOST", name: "", read: readString},
	{ibm: "AWS_PROXY_PORT", name: "", read: func(d *doc, v value) (any, bool) {
		s, ok := v.text()
		p, err := strconv.Atoi(strings.TrimSpace(s))
		if ok && err == nil && p == 0 {
			// IBM's plugins write 0 for "no proxy" (an int's default).
			return nil, false
		}
		if ok && (err != nil || p < 1 || p > 65535) {
			v.errorf("%q is not a port (1-65535)", s)
			return nil, false
		}
		return strconv.Itoa(p), ok
	}},
}

// IBMKeys lists the awsprov_config.json keys ohfp understands.
func IBMKeys() []string {
	var out []string
	for _, s := range settingSpecs {
		if s.ibm != "" {
			out = append(out, s.ibm)
		}
	}
	return out
}

// settingFields returns the fields that record provider settings into got,
// keyed by canonical name ("proxy_host"/"proxy_port" for IBM's pair). When
// withSnake is false only the IBM names are accepted (awsprov_config.json).
func settingFields(got map[string]*setting, withSnake bool) []field {
	var out []field
	for _, sp := range settingSpecs {
		sp := sp
		canon := sp.name
		switch sp.ibm {
		case "AWS_PROXY_HOST":
			canon = "proxy_host"
		case "AWS_PROXY_PORT":
			canon = "proxy_port"
		case "INSTANCE_CREATION_TIMEOUT":
			canon = "instance_creation_timeout"
		}
		record := func(v value, val any) {
			src := fmt.Sprintf("%s:%d (%s)", v.d.file, line(v.node), v.name)
			if prev, ok := got[canon]; ok {
				if prev.val != val {
					v.errorf("conflicts with %s: %v here, %v there; set it once", prev.src, show(val), show(prev.val))
				}
				return
			}
			got[canon] = &setting{val: val, src: src, v: v}
		}
		if withSnake && sp.name != "" {
			out = append(out, field{sp.name, func(v value) {
				if val, ok := sp.read(v.d, v); ok {
					record(v, val)
				}
			}})
		}
		if sp.ibm != "" {
			rd := sp.ibmRd
			if rd == nil {
				rd = sp.read
			}
			out = append(out, field{sp.ibm, func(v value) {
				if s, ok := v.node.(*ast.StringNode); ok && strings.TrimSpace(s.Value) == "" {
					// IBM's plugins take an empty value as unset
					// (their samples write "AWS_PROXY_HOST": "").
					return
				}
				if val, ok := rd(v.d, v); ok {
					record(v, val)
				}
			}})
		}
	}
	return out
}

func line(n ast.Node) int {
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}

func show(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

// combineProxy folds IBM's AWS_PROXY_HOST/AWS_PROXY_PORT into proxy.
func combineProxy(d *doc, got map[string]*setting) {
	h, p := got["proxy_host"], got["proxy_port"]
	delete(got, "proxy_host")
	delete(got, "proxy_port")
	if h == nil && p == nil {
		return
	}
	if h == nil || p == nil {
		at := h
		if at == nil {
			at = p
		}
		at.v.errorf("AWS_PROXY_HOST and AWS_PROXY_PORT go together: give both")
		return
	}
	host := h.val.(string)
	if u, err := url.Parse(host); err == nil && u.Scheme != "" && u.Host != "" {
		host = u.Host // IBM examples sometimes write http://host
	}
	val := net.JoinHostPort(host, p.val.(string))
	src := h.src + " and " + p.src
	if prev, ok := got["proxy"]; ok {
		if prev.val != val {
			h.v.errorf("conflicts with %s: %q here, %q there; set it once", prev.src, val, prev.val)
		}
		return
	}
	got["proxy"] = &setting{val: val, src: src, v: h.v}
}

// ibmConfigHint explains keys of IBM's awsprov_config.json that ohfp does
// not carry.
func ibmConfigHint(name string) string {
	if strings.HasPrefix(name, "AWS_") || strings.ToUpper(name) == name {
		return "this IBM awsprov_config.json key is not supported by ohfp; remove it (known keys: " + strings.Join(IBMKeys(), ", ") + ")"
	}
	return ""
}

func decodeProviders(v value, c *Config) {
	seq, ok := v.node.(*ast.SequenceNode)
	if !ok {
		v.errorf("expected a list of providers (- name: ...), got %s", kind(v.node))
		return
	}
	if len(seq.Values) == 0 {
		v.errorf("empty: at least one provider is needed")
		return
	}
	names := map[string]int{}
	for i, item := range seq.Values {
		item = unwrap(item)
		label := fmt.Sprintf("providers[%d]", i)
		if n := peek(item, "name"); providerNameRe.MatchString(n) {
			label = fmt.Sprintf("providers[%s]", n)
		}
		if item == nil {
			v.errorf("empty provider")
			continue
		}
		p, ok := decodeProvider(value{d: v.d, node: item, key: label}, c)
		if !ok {
			continue
		}
		if first, dup := names[p.Name]; dup {
			v.d.errorf(item, label+".name", "duplicate provider name %q (first on line %d)", p.Name, first)
			continue
		}
		names[p.Name] = line(item)
		c.Providers = append(c.Providers, p)
	}
}

func decodeProvider(v value, c *Config) (Provider, bool) {
	d := v.d
	n0 := len(*d.errs)
	p := Provider{
		ConnectionTimeout:     DefaultConnectionTimeout,
		ResponseTimeout:       DefaultResponseTimeout,
		CallTimeout:           DefaultCallTimeout,
		RetryAttempts:         DefaultRetryAttempts,
		PendingTimeout:        DefaultPendingTimeout,
		DescribeRetryAttempts: DefaultDescribeRetries,
		AWSRateLimit:          true,
		CapacityMemory:        DefaultCapacityMemory,
		BreakerFailures:       DefaultBreakerFailures,
		BreakerCooldown:       DefaultBreakerCooldown,
		HealthChecks:          true,
		Pricing:               PricingTable,
		SpotPriceTTL:          DefaultSpotPriceTTL,
	}
	got := map[string]*setting{}
	var templatesNode, templatesFileNode, hfConfigNode, hfDirNode *value
	fields := settingFields(got, true)
	fields = append(fields,
		field{"name", func(v value) {
			if s, ok := v.str(); ok {
				if !providerNameRe.MatchString(s) {
					v.errorf("%q must be 1-64 of letters, digits, '.', '_' and '-' (it is matched against HF_PROVIDER_NAME)", s)
					return
				}
				p.Name = s
			}
		}},
		field{"templates_file", func(v value) {
			if s, ok := d.path(v); ok {
				p.TemplatesFile = s
				templatesFileNode = &v
			}
		}},
		field{"hf_config_file", func(v value) {
			if s, ok := d.path(v); ok {
				p.HFConfigFile = s
				hfConfigNode = &v
			}
		}},
		field{"templates", func(v value) { templatesNode = &v }},
		field{"prices", func(v value) { p.Prices = decodePrices(v) }},
		field{"hf_conf_dir", func(v value) {
			if dir, ok := d.path(v); ok {
				hfDirNode = &v
				p.HFConfDir = dir
			}
		}},
	)
	present := v.decode(fields, func(name string) string {
		if strings.HasPrefix(name, "AWS_") {
			return ibmConfigHint(name)
		}
		return ""
	})
	if present == nil {
		return p, false
	}
	if !present["name"] {
		d.errorf(v.node, v.key+".name", "missing (required): the name HF_PROVIDER_NAME will carry, e.g. awsinst")
	}
	combineProxy(d, got)

	// A provider naming no templates at all takes HF's folder from ohfpd's
	// own environment (the systemd unit's HF_PROVIDER_CONFDIR), the first
	// provider only (HF sets the variable per provider instance); else it
	// serves none, which is said (HF_PROVIDER_CONFDIR of HF's calls
	// cannot change where ohfpd reads templates).
	var noTemplates string // why the provider has none, when it names none
	if p.HFConfDir == "" && p.TemplatesFile == "" && templatesNode == nil && p.Name != "" {
		env := os.Getenv("HF_PROVIDER_CONFDIR")
		if env != "" && len(c.Providers) == 0 {
			if abs, err := filepath.Abs(env); err == nil {
				p.HFConfDir, hfDirNode = abs, &v
			}
		} else {
			noTemplates = fmt.Sprintf("%s:%d: provider %s has no templates: it names no hf_conf_dir, templates_file or templates, so HF is told of none; set hf_conf_dir to HF's folder of the provider (HF_PROVIDER_CONFDIR, e.g. $HF_TOP/conf/providers/%s), or HF_PROVIDER_CONFDIR in ohfpd's own environment for the first provider (the HF_PROVIDER_CONFDIR that HF gives each call cannot change where ohfpd reads templates)", d.file, line(v.node), p.Name, p.Name)
		}
	}

	// HF's provider folder (HF_PROVIDER_CONFDIR): its <name>prov_templates.json
	// and <name>prov_config.json, where the YAML names no file of its own.
	if p.HFConfDir != "" && p.Name != "" {
		tpl := filepath.Join(p.HFConfDir, p.Name+"prov_templates.json")
		if _, err := os.Stat(tpl); err != nil && p.Name != "aws" {
			if alt := filepath.Join(p.HFConfDir, "awsprov_templates.json"); fileExists(alt) {
				tpl = alt // HF's default instance name
			}
		}
		if p.TemplatesFile == "" {
			p.TemplatesFile, templatesFileNode = tpl, hfDirNode
		}
		cfg := strings.TrimSuffix(tpl, "prov_templates.json") + "prov_config.json"
		if p.HFConfigFile == "" && fileExists(cfg) {
			p.HFConfigFile, hfConfigNode = cfg, hfDirNode
		}
	}

	// Settings from IBM's awsprov_config.json apply where the YAML is silent.
	if p.HFConfigFile != "" {
		legacy := map[string]*setting{}
		if ld := readSub(d, p.HFConfigFile, *hfConfigNode); ld != nil {
			fields := append(settingFields(legacy, false), field{"LogLevel", func(v value) {
				c.Warnings = append(c.Warnings, fmt.Sprintf("%s:%d: LogLevel is ignored; set log_level in %s", v.d.file, line(v.node), d.file))
			}})
			ld.root.decode(fields, ibmConfigHint)
			combineProxy(ld.doc, legacy)
		}
		for k, s := range legacy {
			if _, ok := got[k]; !ok {
				got[k] = s
			}
		}
	}
	for _, k := range sortedKeys(got) {
		s := got[k]
		switch k {
		case "region":
			p.Region = s.val.(string)
		case "profile":
			p.Profile = s.val.(string)
		case "credentials_file":
			p.CredentialsFile = s.val.(string)
		case "endpoint_url":
			p.EndpointURL = s.val.(string)
		case "proxy":
			p.Proxy = s.val.(string)
		case "connection_timeout":
			p.ConnectionTimeout = s.val.(time.Duration)
		case "aws_response_timeout":
			p.ResponseTimeout = s.val.(time.Duration)
		case "aws_call_timeout":
			p.CallTimeout = s.val.(time.Duration)
		case "retry_attempts":
			p.RetryAttempts = s.val.(int)
		case "pending_timeout":
			p.PendingTimeout = s.val.(time.Duration)
		case "describe_retry_attempts":
			p.DescribeRetryAttempts = s.val.(int)
		case "describe_interval":
			p.DescribeInterval = s.val.(time.Duration)
		case "key_file":
			p.KeyFile = s.val.(string)
		case "accept_propagated_log_setting":
			p.AcceptPropagatedLogSetting = s.val.(bool)
		case "aws_rate_limit":
			p.AWSRateLimit = s.val.(bool)
		case "capacity_memory":
			p.CapacityMemory = s.val.(time.Duration)
		case "breaker_failures":
			p.BreakerFailures = s.val.(int)
		case "breaker_cooldown":
			p.BreakerCooldown = s.val.(time.Duration)
		case "spot_terminate_on_reclaim":
			p.SpotTerminateOnReclaim = s.val.(bool)
		case "tag_instance_id":
			p.TagInstanceID = s.val.(bool)
		case "user_data_template":
			p.UserDataTemplate = s.val.(string)
		case "interruption_queue":
			p.InterruptionQueue = s.val.(string)
		case "rebalance_as_reclaim":
			p.RebalanceAsReclaim = s.val.(bool)
		case "health_checks":
			p.HealthChecks = s.val.(bool)
		case "health_check_grace":
			p.HealthCheckGrace = s.val.(time.Duration)
		case "pricing":
			p.Pricing = s.val.(string)
		case "spot_price_ttl":
			p.SpotPriceTTL = s.val.(time.Duration)
		case "pricing_endpoint_url":
			p.PricingEndpointURL = s.val.(string)
		case "instance_creation_timeout":
			mins := s.val.(int)
			if _, set := got["pending_timeout"]; set {
				s.v.warnf("ignored beside AWS_INSTANCE_PENDING_TIMEOUT_SEC / pending_timeout, which ohfp uses")
				continue
			}
			dur := min(max(time.Duration(mins)*time.Minute, MinPendingTimeout), MaxPendingTimeout)
			p.PendingTimeout = dur
			s.v.warnf("%s: ohfp fails (and terminates) an instance not running within pending_timeout, set to %s from this (ohfp's bounds %s-%s)", english.Plural(mins, "minute"), dur, MinPendingTimeout, MaxPendingTimeout)
		case "credential_script":
			p.CredentialScript = s.val.(string)
			if err := checkScript(p.CredentialScript); err != nil {
				// IBM's Java plugin warns and goes on; ohfpd runs it at
				// each renewal, so a script installed later is found.
				// --check-config runs it and fails.
				s.v.warnf("cannot be run: %v; no AWS call can be made until it gives credentials (ohfpd --check-config runs it)", err)
			}
		case "credential_renew_margin":
			p.CredentialRenewMargin = s.val.(time.Duration)
		default:
			panic("config: unmapped setting " + k)
		}
	}
	if sc := got["credential_script"]; sc != nil && (p.CredentialsFile != "" || p.Profile != "") {
		// IBM's plugin: "The system will ignore AWS_CREDENTIAL_FILE and
		// use AWS_CREDENTIAL_SCRIPT" (AWSClient.java).
		sc.v.warnf("the script's credentials are used and credentials_file / profile are ignored for them, as IBM's Java plugin (hostProviders/aws) does; IBM's Python plugin (awsv2) used the file instead: leave out the one you do not mean")
	}
	for _, f := range []struct{ path, key string }{{p.CredentialsFile, "credentials_file"}, {p.KeyFile, "key_file"}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			s := got[f.key]
			if f.key == "key_file" {
				// ohfpd never uses the key file (EC2 takes keyName); IBM's
				// awsv2 plugin only warns when it is missing.
				s.v.warnf("%v: ohfpd does not use the key file (instances get the template's keyName), so it is not needed", err)
				continue
			}
			s.v.errorf("%v", err)
		}
	}

	// Templates: inline first, then the templates file.
	seen, at := map[string]string{}, map[string]value{}
	if templatesNode != nil {
		ts, _ := decodeTemplates(*templatesNode, v.key+".templates", seen, at)
		p.Templates = append(p.Templates, ts...)
	}
	if p.TemplatesFile != "" {
		if ld := readSub(d, p.TemplatesFile, *templatesFileNode); ld != nil {
			var list *value
			ld.root.decode([]field{{"templates", func(v value) { list = &v }}}, nil)
			if list == nil {
				ld.doc.errorf(ld.root.node, "templates", "missing: the file must hold {\"templates\": [...]}")
			} else {
				list.key = "templates"
				ts, _ := decodeTemplates(*list, "templates", seen, at)
				p.Templates = append(p.Templates, ts...)
			}
		}
	}
	setUserData(v, &p, at)
	if len(*d.errs) > n0 {
		return p, false
	}
	switch {
	case len(p.Templates) > 0:
	case noTemplates != "":
		c.Warnings = append(c.Warnings, noTemplates)
	default:
		c.Warnings = append(c.Warnings, fmt.Sprintf("provider %s has no templates: HF will get an empty list", p.Name))
	}
	if len(p.Prices) > 0 && len(p.Templates) > 0 {
		used := map[string]bool{}
		for _, t := range p.Templates {
			for _, typ := range t.InstanceTypes() {
				used[typ] = true
			}
		}
		for _, typ := range slices.Sorted(maps.Keys(p.Prices)) {
			if !used[typ] {
				c.Warnings = append(c.Warnings, fmt.Sprintf("provider %s: prices names %s, which no template uses (a typo?): its machines' cost stays unknown", p.Name, typ))
			}
		}
	}
	if p.Templates == nil {
		p.Templates = []template.Template{}
	}
	return p, true
}

// sub is another file referenced by the config, parsed.
type sub struct {
	doc  *doc
	root value
}

// readSub reads and parses a referenced file; problems are reported at the
// referencing key, or inside the file.
func readSub(d *doc, path string, at value) *sub {
	data, err := os.ReadFile(path)
	if err != nil {
		at.errorf("%v", err)
		return nil
	}
	name := path
	if rel, err := filepath.Rel(d.dir, path); err == nil && !filepath.IsAbs(d.file) {
		name = filepath.Join(filepath.Dir(d.file), rel)
	}
	nd := &doc{file: name, dir: filepath.Dir(path), errs: d.errs, warns: d.warns, read: d.read}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		// IBM's files are JSON: say what is wrong in JSON's words, not
		// the YAML parser's (which would also let a trailing comma by).
		if e := jsonSyntaxError(data, name); e != nil {
			nd.add(e)
			return nil
		}
	}
	body, ok := parseFile(data, name, d.errs)
	if !ok {
		return nil
	}
	if body == nil {
		nd.add(&Error{File: name, Msg: "the file is empty"})
		return nil
	}
	return &sub{doc: nd, root: value{d: nd, node: unwrap(body)}}
}

// DefaultUserDataTemplateName is the user-data script a provider uses when
// user_data_template is not set: this file in the configuration's folder
// (the package installs /etc/ohfp/user_data.sh).
const DefaultUserDataTemplateName = "user_data.sh"

// setUserData gives each template the user-data script it launches with,
// and checks it now (readable, the marker where variables must go, within
// EC2's 16 KiB once filled in) rather than at the first launch:
//   - userDataScript: that script (userData's variables at its marker);
//   - else, with userData (IBM's variables) or an explicit
//     user_data_template: the provider's user data template, IBM's
//     user_data.sh, with the variables, template_id and providerName
//     exported at its %EXPORT_USER_DATA% marker;
//   - else none.
//
// A template's problem is placed at its field (at: each template's value,
// in whichever file defines it).
func setUserData(v value, p *Provider, at map[string]value) {
	explicit := p.UserDataTemplate != ""
	path := p.UserDataTemplate
	if !explicit {
		path = filepath.Join(v.d.dir, DefaultUserDataTemplateName)
	}
	var script []byte
	var readErr error
	read := false
	for i := range p.Templates {
		t := &p.Templates[i]
		t.ProviderName = p.Name
		key := fmt.Sprintf("%s.templates[%s]", v.key, t.TemplateID)
		fail := func(field, format string, a ...any) {
			if tv, ok := at[t.TemplateID]; ok {
				tv.d.errorf(fieldNode(tv.node, field), tv.key+"."+field, format, a...)
			} else {
				v.d.errorf(v.node, key+"."+field, format, a...)
			}
		}
		if t.UserDataScript != "" {
			if b, err := os.ReadFile(t.UserDataScript); err == nil {
				if out, err := t.RenderUserData(b); err == nil && len(out) > template.MaxUserData {
					fail("userDataScript", "%s with its variables is %d bytes; EC2 user data is limited to 16 KiB", t.UserDataScript, len(out))
				}
			}
			continue
		}
		if t.UserData == "" && !explicit {
			continue
		}
		if !read {
			script, readErr = os.ReadFile(path)
			read = true
		}
		switch {
		case readErr != nil && explicit:
			v.d.errorf(v.node, v.key+".user_data_template", "%v", readErr)
			return
		case readErr != nil:
			fail("userData", "userData is variables for the user-data script (IBM's user_data.sh), and there is none: %v (set user_data_template, or put a script in userDataScript)", readErr)
			continue
		case t.UserData != "" && !strings.Contains(string(script), template.ExportMarker):
			fail("userData", "the user data template %s has no %s line to receive these variables", path, template.ExportMarker)
			continue
		}
		out, err := t.RenderUserData(script)
		if err != nil {
			fail("userData", "%v", err)
			continue
		}
		if len(out) > template.MaxUserData {
			fail("userData", "%s with the template's variables is %d bytes; EC2 user data is limited to 16 KiB", path, len(out))
			continue
		}
		t.UserDataTemplate = path
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// checkScript checks that IBM's AWS_CREDENTIAL_SCRIPT can be run: a
// regular file with an execute bit (ohfpd runs it itself, without a shell).
func checkScript(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not executable: chmod +x it (ohfpd runs it without a shell)", path)
	}
	return nil
}
