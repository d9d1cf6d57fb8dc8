package awssim

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// params is a view of a flattened query-protocol form: keys like
// "InstanceId.1", "Filter.2.Value.1" (ec2query) or "Tags.member.1.Key"
// (awsquery). A view carries a prefix, so nested structures are read with
// the same getters. Getters record the first decoding error in *err (shared
// by every view of one request) and return the zero value; handlers check
// c.err() (or p.Err()) once after reading their parameters.
type params struct {
	m      map[string]string
	prefix string
	err    *error
}

func newParams(form url.Values) params {
	m := make(map[string]string, len(form))
	for k, v := range form {
		if len(v) > 0 {
			m[k] = v[0]
		}
	}
	var e error
	return params{m: m, err: &e}
}

// Err returns the first error a getter recorded.
func (p params) Err() error { return *p.err }

func (p params) fail(err error) {
	if *p.err == nil {
		*p.err = err
	}
}

// has reports whether the parameter (or any nested key under it) is set.
func (p params) has(name string) bool {
	k := p.prefix + name
	if _, ok := p.m[k]; ok {
		return true
	}
	k += "."
	for key := range p.m {
		if strings.HasPrefix(key, k) {
			return true
		}
	}
	return false
}

// str returns a parameter, "" if absent.
func (p params) str(name string) string { return p.m[p.prefix+name] }

// reqStr returns a required parameter; absent or empty: MissingParameter.
func (p params) reqStr(name string) string {
	v, ok := p.m[p.prefix+name]
	if !ok || v == "" {
		p.fail(errMissingParameter(p.prefix + name))
	}
	return v
}

// intOr returns an integer parameter or def when absent; a value that is
// not an integer: InvalidParameterValue.
func (p params) intOr(name string, def int) int {
	v, ok := p.m[p.prefix+name]
	if !ok {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		p.fail(errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for %s", v, p.prefix+name)))
		return def
	}
	return n
}

// reqInt returns a required integer parameter.
func (p params) reqInt(name string) int {
	if _, ok := p.m[p.prefix+name]; !ok {
		p.fail(errMissingParameter(p.prefix + name))
		return 0
	}
	return p.intOr(name, 0)
}

// floatOr returns a decimal parameter or def when absent.
func (p params) floatOr(name string, def float64) float64 {
	v, ok := p.m[p.prefix+name]
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		p.fail(errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for %s", v, p.prefix+name)))
		return def
	}
	return f
}

// boolOr returns a boolean parameter ("true"/"false") or def when absent.
func (p params) boolOr(name string, def bool) bool {
	v, ok := p.m[p.prefix+name]
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "true":
		return true
	case "false":
		return false
	}
	p.fail(errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for %s", v, p.prefix+name)))
	return def
}

// timeOr returns an ISO 8601 timestamp parameter or the zero time.
func (p params) timeOr(name string) time.Time {
	v, ok := p.m[p.prefix+name]
	if !ok || v == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z", "2006-01-02T15:04:05.000Z"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t
		}
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Unix(0, int64(secs*1e9)).UTC()
	}
	p.fail(errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for %s: expecting an ISO 8601 timestamp", v, p.prefix+name)))
	return time.Time{}
}

// indices returns the sorted distinct N in keys "<prefix><name>.N" and
// "<prefix><name>.N.<more>".
func (p params) indices(name string) []int {
	k := p.prefix + name + "."
	seen := map[int]bool{}
	for key := range p.m {
		if !strings.HasPrefix(key, k) {
			continue
		}
		rest := key[len(k):]
		if i := strings.IndexByte(rest, '.'); i >= 0 {
			rest = rest[:i]
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 1 {
			continue
		}
		seen[n] = true
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// list returns a list of scalars: name "InstanceId" (ec2query) reads
// InstanceId.1, InstanceId.2 ...; name "InstanceIds.member" (awsquery)
// reads InstanceIds.member.1 ...
func (p params) list(name string) []string {
	idx := p.indices(name)
	out := make([]string, 0, len(idx))
	for _, n := range idx {
		if v, ok := p.m[p.prefix+name+"."+strconv.Itoa(n)]; ok {
			out = append(out, v)
		}
	}
	return out
}

// structs returns one view per element of a list of structures: name
// "Filter" yields views reading Filter.1.Name, Filter.1.Value.1 ... as
// Name, Value.1; name "Tags.member" does the same for awsquery.
func (p params) structs(name string) []params {
	idx := p.indices(name)
	out := make([]params, 0, len(idx))
	for _, n := range idx {
		out = append(out, p.sub(name+"."+strconv.Itoa(n)))
	}
	return out
}

// sub returns the view of a nested structure: sub("LaunchTemplate") reads
// LaunchTemplate.LaunchTemplateId as LaunchTemplateId.
func (p params) sub(name string) params {
	return params{m: p.m, prefix: p.prefix + name + ".", err: p.err}
}

// tags reads a list of Key/Value structures (Tag.N.Key in ec2query,
// Tags.member.N.Key in awsquery) into a map.
func (p params) tags(name string) map[string]string {
	out := map[string]string{}
	for _, t := range p.structs(name) {
		k := t.reqStr("Key")
		out[k] = t.str("Value")
	}
	return out
}

// filter is one Name / Values filter of a describe call.
type filter struct {
	name   string
	values []string
}

// filters reads ec2query Filter.N.Name / Filter.N.Value.M.
func (p params) filters() []filter {
	var out []filter
	for _, f := range p.structs("Filter") {
		out = append(out, filter{name: f.reqStr("Name"), values: f.list("Value")})
	}
	return out
}

// MaxFilterValues is how many filter values EC2 takes in one call, over
// all its filters together.
const MaxFilterValues = 200

// filterValues counts the ec2query filter values of a request
// (Filter.N.Value.M), over all its filters.
func (p params) filterValues() int {
	n := 0
	for k := range p.m {
		if rest, ok := strings.CutPrefix(k, p.prefix+"Filter."); ok {
			if _, v, ok := strings.Cut(rest, "."); ok && strings.HasPrefix(v, "Value.") {
				n++
			}
		}
	}
	return n
}

// filterLimit rejects an EC2 call whose filters hold more than
// MaxFilterValues values in total, as EC2 does for every action that takes
// filters. Instance ids given as InstanceId.N are not filter values.
func filterLimit(c *call) error {
	if c.service != svcEC2 {
		return nil
	}
	if c.p.filterValues() > MaxFilterValues {
		return &APIError{Code: "FilterLimitExceeded",
			Message: fmt.Sprintf("The maximum number of filter values specified on a single call is %d", MaxFilterValues), Status: 400}
	}
	return nil
}

// fingerprint returns a canonical rendering of every parameter except the
// excluded ones, for idempotency checks.
func (p params) fingerprint(exclude ...string) string {
	keys := make([]string, 0, len(p.m))
outer:
	for k := range p.m {
		for _, x := range exclude {
			if k == x {
				continue outer
			}
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(p.m[k])
		b.WriteByte('&')
	}
	return b.String()
}
