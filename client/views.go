package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ohfp/ohfp/internal/english"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/rpc"
	"github.com/ohfp/ohfp/internal/template"
)

// The daemon's answers are decoded into package apitype's types, the
// same the daemon encodes.

// Exit codes of `ohfp status` (package health's): the verdict's.
const (
	statusDegraded = 1
	statusDown     = 2
)

// statusBound is how long ohfp status waits in all, unless OHFP_TIMEOUT
// or --wait says otherwise: a health check run by a monitor every minute
// must say "down" about a hung ohfpd in seconds, not after the two
// minutes an HF call may wait.
const statusBound = 10 * time.Second

// cmdStatus is `ohfp status`: it prints the status and exits with the
// health verdict's code, 0 healthy, 1 degraded, 2 down (ohfpd not
// answering at all is down too); a caller without access to the socket
// gets exitNoPerm, for ohfpd may be healthy.
func cmdStatus(ctx context.Context, inv *invocation, out *output) error {
	if err := needArgs(inv, 0, "status [--json]"); err != nil {
		return err
	}
	if !inv.timeoutSet {
		// The default wait for a missing socket (adminWait) counts in
		// statusBound; an explicit --wait comes on top of it.
		inv.timeout = statusBound
		if !inv.waitSet {
			inv.timeout -= adminWait
		}
	}
	raw, err := callDaemon(ctx, inv, apitype.MethodStatus, nil, nil, nil)
	if err != nil {
		h := apitype.Health{Level: apitype.Down, Code: statusDown, Reasons: []string{err.Error()}}
		msg := "ohfp status: down: " + err.Error()
		switch {
		case noPermission(err):
			// Not a verdict on ohfpd: this caller cannot ask it.
			h = apitype.Health{Level: "unknown", Code: exitNoPerm, Reasons: []string{err.Error()}}
			msg = "ohfp status: cannot ask ohfpd: " + err.Error()
		case errors.Is(err, rpc.ErrNoAnswer):
			h.Reasons[0] = fmt.Sprintf("ohfpd at %s did not answer status within %s (stopped, hung or overloaded? systemctl status ohfpd; OHFP_TIMEOUT sets how long status waits)", inv.socket, inv.callBound())
			msg = "ohfp status: down: " + h.Reasons[0]
		}
		if out.json {
			// A script reads the verdict where it always is, in a
			// document with nothing else: ohfpd said nothing.
			b, _ := json.Marshal(map[string]any{"health": h})
			if err := out.printJSON(b); err != nil {
				return err
			}
		}
		return &exitError{code: h.Code, msg: msg}
	}
	var st apitype.Status
	if err := decode("status", raw, &st); err != nil {
		return err
	}
	code := 0
	if st.Health != nil {
		code = st.Health.Code
	}
	if out.json {
		if err := out.printJSON(raw); err != nil {
			return err
		}
	} else if err := printStatus(inv, out, st); err != nil {
		return err
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

func printStatus(inv *invocation, out *output, st apitype.Status) error {
	now := out.now
	k := out.kv()
	if h := st.Health; h != nil {
		line := h.Level
		if len(h.Reasons) > 0 {
			line += ": " + strings.Join(h.Reasons, "; ")
		}
		k.add("health", line)
	}
	up := "up " + human(time.Duration(st.UptimeSeconds)*time.Second)
	if !st.Started.IsZero() {
		up += " (since " + st.Started.Local().Format("2006-01-02 15:04:05 MST") + ")"
	}
	k.add("ohfpd", "running, version "+orDash(st.Version)+", "+up)
	k.add("ohfp", "version "+version+", socket "+inv.socket)
	k.add("cluster", st.ClusterID)
	if l := st.HA; l != nil {
		k.add("lease", leaseText(now, l))
	}
	k.add("providers", strings.Join(st.Providers, ", "))
	names := providerOrder(st.Providers, st.AWS)
	for _, name := range names {
		key := "aws " + name
		if len(names) == 1 {
			key = "aws"
		}
		k.add(key, awsLine(now, st.AWS[name]))
	}
	for _, name := range st.Providers {
		e, ok := st.Events[name]
		if !ok {
			continue
		}
		line := fmt.Sprintf("%s: %d received, %d applied, %d malformed, %d foreign, %s", e.Queue, e.Received, e.Applied, e.Malformed, e.Foreign, english.Plural(e.Errors, "failed call"))
		if e.LastError != "" {
			line += "; failing: " + e.LastError
		}
		k.add("events "+name, line)
	}
	for _, d := range st.Drained {
		k.add("drained", d.TemplateID+" of "+d.Provider+", by "+d.By+", "+ago(now, d.Since))
	}
	for _, b := range st.Breakers {
		if !b.Tripped {
			k.add("breaker", b.TemplateID+" of "+b.Provider+": "+english.Plural(b.Failures, "failure")+" in a row (last: "+b.Reason+")")
			continue
		}
		until := "until ohfp rearm " + b.TemplateID
		if !b.Until.IsZero() {
			until = "until " + b.Until.Local().Format("15:04:05 MST") + " (in " + human(b.Until.Sub(now)) + ") or ohfp rearm " + b.TemplateID
		}
		k.add("stopped", b.TemplateID+" of "+b.Provider+", by its failure breaker "+ago(now, b.Since)+", "+until+": "+english.Plural(b.Failures, "failure")+" in a row (last: "+b.Reason+")")
	}
	for _, u := range st.Unavailable {
		k.add("no capacity", u.InstanceType+" in "+u.Where+" ("+u.PriceType+", provider "+u.Provider+"), remembered until "+u.Until.Local().Format("15:04:05 MST")+" (in "+human(u.Until.Sub(now))+"): "+u.Reason)
	}
	reqs := strconv.Itoa(st.InFlight) + " in flight"
	if s := counts(st.Requests); s != "" {
		reqs += "; " + s
	}
	k.add("requests", reqs)
	machines := strconv.Itoa(st.LiveMachines) + " live"
	if s := counts(st.Machines); s != "" {
		machines += "; by state: " + s
	}
	k.add("machines", machines)
	rec := "never"
	if !st.LastReconcile.IsZero() {
		rec = ago(now, st.LastReconcile) + ", took " + millis(st.LastReconcileMs) + ", " + english.Plurals(st.Reconciles, "pass", "passes")
	}
	k.add("last reconcile", rec)
	if !st.LastListing.IsZero() {
		k.add("last full listing", ago(now, st.LastListing)+", took "+millis(st.LastListingMs)+", "+english.Plural(st.Listings, "listing"))
	}
	k.add("reconcile error", st.LastReconcileError)
	cloud := st.CloudNote
	if !st.NextRetry.IsZero() {
		// The one retry time: when the next launch is due.
		cloud = orText(cloud, "a launch failed") + "; next launch attempt " + nextAttempt(now, st.NextRetry)
	}
	k.add("cloud", cloud)
	if st.Unsaved > 0 {
		k.add("disk", english.Plural(st.Unsaved, "record")+" not yet written")
	}
	if c := st.Cost; c != nil {
		k.add("cost", sumText(c.Total)+" (estimate)")
		for _, t := range c.Templates {
			name := t.TemplateID
			if len(st.Providers) > 1 {
				name += " (" + t.Provider + ")"
			}
			k.add("cost template", name+": "+sumText(t.Sum))
		}
		const maxRequests = 10
		for i, r := range c.Requests {
			if i == maxRequests {
				k.add("cost request", fmt.Sprintf("and %d more (ohfp status --json)", len(c.Requests)-maxRequests))
				break
			}
			k.add("cost request", r.ID+": "+sumText(r.Sum))
		}
	}
	return k.flush()
}

// dollars writes an hourly price.
func dollars(d float64) string { return fmt.Sprintf("$%.4f/h", d) }

// priceText says a machine's estimate: "$0.0850/h on-demand (table)", or
// why it is not known.
func priceText(p *apitype.Price) string {
	if p == nil {
		return ""
	}
	if !p.Known {
		return "unknown (" + p.Type + "): " + p.Reason
	}
	s := dollars(p.DollarsPerHour) + " " + p.Type
	if p.Source != "" {
		s += " (" + p.Source + ")"
	}
	return s
}

// sumText says a summed estimate: "$0.2000/h for 3 machines; 1 unknown: why".
func sumText(c apitype.CostSum) string {
	s := dollars(c.DollarsPerHour) + " for " + english.Plural(c.Machines, "machine")
	if c.Unknown > 0 {
		s += fmt.Sprintf("; %d unknown: %s", c.Unknown, c.Reason)
	}
	return s
}

// leaseText says who acts for a shared-store cluster (ha:).
func leaseText(now time.Time, l *apitype.HA) string {
	since := func(s string) string {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t.Local().Format("2006-01-02 15:04:05 MST") + ", " + ago(now, t)
		}
		return orDash(s)
	}
	var line string
	switch {
	case l.Role == "holder":
		line = "held by this host (" + l.Host + ") since " + since(l.Since) + ": it acts for the cluster"
	case l.Holder == "":
		line = "nobody holds it; this host (" + l.Host + ", " + l.Role + ") takes it at HF's next call here"
	case l.Expired:
		line = l.Holder + "'s lease (since " + since(l.Since) + ") expired; this host (" + l.Host + ") takes it at HF's next call here"
	default:
		line = "held by " + l.Holder + " since " + since(l.Since) + "; this host (" + l.Host + ") is " + l.Role
	}
	line += "; table " + orDash(l.Table) + ", token " + strconv.FormatUint(l.Token, 10)
	if l.LastError != "" {
		line += "; table error: " + l.LastError
	}
	return line
}

// providerOrder lists the providers in configuration order, then any other
// provider the AWS health names.
func providerOrder(order []string, aws map[string]apitype.CloudStatus) []string {
	out := []string{}
	for _, p := range order {
		if _, ok := aws[p]; ok {
			out = append(out, p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(aws)) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// awsLine is one provider's AWS health in a line: the summary, then the
// counts and the last error.
func awsLine(now time.Time, a apitype.CloudStatus) string {
	s := orText(a.Summary, "unknown")
	h := a.Health
	detail := fmt.Sprintf("%s, %s, %s", english.Plural(sum(h.Calls), "call"), english.Plural(sum(h.Errors), "error"), english.Plural(sum(h.Throttles), "throttle"))
	if t := counts(h.Throttles); t != "" {
		detail += " (" + t + ")"
	}
	if n := sum(h.Timeouts); n > 0 {
		detail += fmt.Sprintf(", %s (%s)", english.Plural(n, "timeout"), counts(h.Timeouts))
	}
	if h.InFlight > 0 {
		detail += fmt.Sprintf(", %d under way", h.InFlight)
	}
	if h.LastError != "" && !strings.Contains(s, h.LastError) {
		detail += "; last error " + ago(now, h.LastErrorAt) + ": " + h.LastError
	}
	return s + " — " + detail
}

// counts writes a map of counts as "a 2, b 1", largest first.
func counts(m map[string]int) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		if m[k] != 0 {
			parts = append(parts, k+" "+strconv.Itoa(m[k]))
		}
	}
	return strings.Join(parts, ", ")
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// cmdRequests is `ohfp requests [--all]` and `ohfp requests watch ID`.
func cmdRequests(ctx context.Context, inv *invocation, out *output) error {
	if len(inv.args) > 0 && inv.args[0] == "watch" {
		return cmdWatch(ctx, inv, out)
	}
	if inv.flags[optInterval] != "" {
		return usageErr("--interval goes with requests watch ID")
	}
	if err := needArgs(inv, 0, "requests [--all] [--json] | requests watch ID"); err != nil {
		return err
	}
	raw, err := callDaemon(ctx, inv, apitype.MethodRequests, apitype.RequestsArgs{All: inv.flags[optAll] != ""}, nil, nil)
	if err != nil {
		return err
	}
	if out.json {
		return out.printJSON(raw)
	}
	var rows []apitype.RequestRow
	if err := decode("requests", raw, &rows); err != nil {
		return err
	}
	tw := out.table("REQUEST", "KIND", "PROVIDER", "TEMPLATE", "UNITS", "MACHINES", "STATUS", "CREATED", "FINISHED", "MESSAGE")
	for _, r := range rows {
		row(tw, r.ID, r.Kind, r.Provider, r.TemplateID, itoaOr(r.Units), strconv.Itoa(r.Machines), r.Status, ago(out.now, r.Created), ago(out.now, r.Finished), r.Message)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rows) == 0 && out.tty {
		if inv.flags[optAll] != "" {
			fmt.Fprintln(out.err, "no requests")
		} else {
			fmt.Fprintln(out.err, "no requests in flight or finished in the last hour (--all shows every one)")
		}
	}
	return nil
}

// cmdMachines is `ohfp machines [--request ID] [--all]`.
func cmdMachines(ctx context.Context, inv *invocation, out *output) error {
	if err := needArgs(inv, 0, "machines [--request ID] [--all] [--json]"); err != nil {
		return err
	}
	args := apitype.MachinesArgs{Request: inv.flags[optRequest], All: inv.flags[optAll] != ""}
	raw, err := callDaemon(ctx, inv, apitype.MethodMachines, args, nil, nil)
	if err != nil {
		return err
	}
	if out.json {
		return out.printJSON(raw)
	}
	var rows []apitype.MachineRow
	if err := decode("machines", raw, &rows); err != nil {
		return err
	}
	tw := out.table("MACHINE", "NAME", "STATE", "RESULT", "TYPE", "PRICE", "WEIGHT", "PRIVATE-IP", "REQUEST", "RETURN", "TEMPLATE", "LAUNCHED", "MESSAGE")
	for _, m := range rows {
		row(tw, m.MachineID, m.Name, m.Status, string(m.Result), m.InstanceType, m.PriceType, itoaOr(m.Weight),
			deref(m.PrivateIPAddress), m.RequestID, m.ReturnID, m.TemplateID, epochAgo(out.now, m.LaunchTime), m.Message)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rows) == 0 && out.tty {
		fmt.Fprintln(out.err, "no machines")
	}
	return nil
}

// templateOut is one template of a getAvailableTemplates answer.
type templateOut struct {
	TemplateID      string              `json:"templateId"`
	MaxNumber       int                 `json:"maxNumber"`
	AvailableNumber int                 `json:"availableNumber"`
	Attributes      map[string][]string `json:"attributes"`
	VMType          string              `json:"vmType"`
	VMTypes         orderedWeights      `json:"vmTypes"`
	PriceType       string              `json:"priceType"`
	ProviderAPI     string              `json:"providerApi"`
	FleetType       string              `json:"fleetType"`
}

// orderedWeights reads {"c5.large": 1, "c5.xlarge": 2} keeping file order.
type orderedWeights []struct {
	Type   string
	Weight json.Number
}

// UnmarshalJSON implements json.Unmarshaler.
func (w *orderedWeights) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("vmTypes is not an object")
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return err
		}
		var n json.Number
		if err := dec.Decode(&n); err != nil {
			return err
		}
		*w = append(*w, struct {
			Type   string
			Weight json.Number
		}{k.(string), n})
	}
	return nil
}

func (t templateOut) attr(name string) string {
	if v := t.Attributes[name]; len(v) == 2 {
		return v[1]
	}
	return ""
}

func (t templateOut) types() string {
	if len(t.VMTypes) == 0 {
		return t.VMType
	}
	parts := make([]string, len(t.VMTypes))
	for i, w := range t.VMTypes {
		parts[i] = w.Type
		if w.Weight != "1" {
			parts[i] += "×" + w.Weight.String()
		}
	}
	return strings.Join(parts, ",")
}

// cmdTemplates is `ohfp templates [--provider NAME]`: every provider's
// templates unless one is named.
func cmdTemplates(ctx context.Context, inv *invocation, out *output) error {
	if err := needArgs(inv, 0, "templates [--provider NAME] [--json]"); err != nil {
		return err
	}
	raw, err := callDaemon(ctx, inv, apitype.MethodStatus, nil, nil, nil)
	if err != nil {
		return err
	}
	var st apitype.Status
	if err := decode("status", raw, &st); err != nil {
		return err
	}
	providers := st.Providers
	if p := inv.flags[optProvider]; p != "" {
		// HF's call names its provider by HF_PROVIDER_NAME, which ohfpd
		// may map to its only provider: an operator's typo must not list
		// another provider's templates under the name typed.
		if !slices.Contains(st.Providers, p) {
			return fmt.Errorf("no provider %s (known: %s)", p, strings.Join(st.Providers, ", "))
		}
		providers = []string{p}
	}
	answers := make([]json.RawMessage, len(providers))
	for i, p := range providers {
		// An operator's view, not HF's call: on a master candidate that
		// does not hold the lease it must not take it (ha:).
		raw, err := callDaemon(ctx, inv, hf.OpGetAvailableTemplates, apitype.ViewArgs{View: true}, map[string]string{"HF_PROVIDER_NAME": p}, []byte("{}"))
		if err != nil {
			return err
		}
		answers[i] = raw
	}
	if out.json {
		if inv.flags[optProvider] != "" {
			return out.printJSON(answers[0])
		}
		// Every provider: an object of provider name to its answer.
		var b bytes.Buffer
		b.WriteByte('{')
		for i, p := range providers {
			if i > 0 {
				b.WriteByte(',')
			}
			name, _ := json.Marshal(p)
			b.Write(name)
			b.WriteByte(':')
			b.Write(answers[i])
		}
		b.WriteByte('}')
		return out.printJSON(b.Bytes())
	}
	tw := out.table("PROVIDER", "TEMPLATE", "AVAILABLE", "MAX", "TYPE", "NCPUS", "NRAM", "VMTYPES", "PRICE", "API")
	n := 0
	var notes []string
	for i, p := range providers {
		var reply struct {
			Message   string        `json:"message"`
			Templates []templateOut `json:"templates"`
		}
		if err := decode(hf.OpGetAvailableTemplates, answers[i], &reply); err != nil {
			return err
		}
		if _, more, ok := strings.Cut(reply.Message, "; "); ok {
			notes = append(notes, p+": "+more) // withheld or stopped templates
		}
		for _, t := range reply.Templates {
			n++
			maxN := strconv.Itoa(t.MaxNumber)
			if t.MaxNumber < 0 {
				maxN = "unlimited"
			}
			// The API the daemon will use: providerApi, else its default
			// for the price type (the same rule as the daemon's).
			api := (&template.Template{ProviderAPI: t.ProviderAPI, PriceType: t.PriceType}).API()
			if t.FleetType != "" {
				api += "/" + t.FleetType
			}
			row(tw, p, t.TemplateID, strconv.Itoa(t.AvailableNumber), maxN, t.attr("type"), t.attr("ncpus"), t.attr("nram"),
				t.types(), t.PriceType, api)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, note := range notes {
		fmt.Fprintln(out.w, note)
	}
	if n == 0 && out.tty {
		fmt.Fprintln(out.err, "no templates")
	}
	return nil
}

// cmdShow is `ohfp show ID`.
func cmdShow(ctx context.Context, inv *invocation, out *output) error {
	if err := needArgs(inv, 1, "show ID [--json]"); err != nil {
		return err
	}
	raw, err := callDaemon(ctx, inv, apitype.MethodShow, apitype.ShowArgs{ID: inv.args[0]}, nil, nil)
	if err != nil {
		return err
	}
	if out.json {
		return out.printJSON(raw)
	}
	var s apitype.Shown
	if err := decode("show", raw, &s); err != nil {
		return err
	}
	now := out.now
	k := out.kv()
	switch {
	case s.Request != nil:
		r := s.Request
		status, message := r.Status, r.Message
		var machines []hf.Machine
		if s.Status != nil {
			status, message, machines = string(s.Status.Status), s.Status.Message, s.Status.Machines
		}
		k.add("request", r.ID)
		k.add("kind", r.Kind)
		k.add("provider", r.Provider)
		k.add("template", r.TemplateID)
		k.add("units", itoaOr(r.Units))
		k.add("status", status)
		k.add("message", message)
		k.add("phase", r.Phase)
		k.add("handle", r.Handle)
		k.add("attempts", itoaOr(r.Attempts))
		k.add("next attempt", agoAbs(now, r.NextAttempt))
		k.add("launch error", r.LaunchError)
		k.add("shortfall", r.Shortfall)
		k.add("retry", r.RetryNote)
		if r.Rebuilt {
			k.add("rebuilt", "from cloud tags")
		}
		k.add("machines", strconv.Itoa(len(machines)))
		k.add("unknown", strings.Join(r.Unknown, ", "))
		k.add("created", agoAbs(now, r.CreatedAt))
		k.add("finished", agoAbs(now, r.FinishedAt))
		for _, n := range r.History {
			k.add("history", agoAbs(now, n.At)+": "+n.Text+", by "+n.Who)
		}
		prices := map[string]*apitype.Price{}
		if c := r.Cost; c != nil {
			k.add("cost", sumText(c.Sum)+" (live machines, estimate)")
			for _, mc := range c.Machines {
				prices[mc.ID] = mc.Price
			}
		}
		if err := k.flush(); err != nil {
			return err
		}
		if len(machines) == 0 {
			return nil
		}
		fmt.Fprintln(out.w)
		if r.Cost == nil {
			tw := out.table("MACHINE", "NAME", "STATE", "RESULT", "TYPE", "PRICE", "PRIVATE-IP", "LAUNCHED", "MESSAGE")
			for _, m := range machines {
				row(tw, m.MachineID, m.Name, m.Status, string(m.Result), m.InstanceType, m.PriceType, deref(m.PrivateIPAddress), epochAgo(now, m.LaunchTime), m.Message)
			}
			return tw.Flush()
		}
		tw := out.table("MACHINE", "NAME", "STATE", "RESULT", "TYPE", "PRICE", "$/HOUR", "PRIVATE-IP", "LAUNCHED", "MESSAGE")
		for _, m := range machines {
			est := ""
			if p := prices[m.MachineID]; p != nil && p.Known {
				est = fmt.Sprintf("%.4f", p.DollarsPerHour)
			} else if p != nil {
				est = "unknown"
			}
			row(tw, m.MachineID, m.Name, m.Status, string(m.Result), m.InstanceType, m.PriceType, est, deref(m.PrivateIPAddress), epochAgo(now, m.LaunchTime), m.Message)
		}
		return tw.Flush()
	case s.Machine != nil:
		m := s.Machine
		k.add("machine", m.ID)
		k.add("name", m.Name)
		state := m.State
		if m.StateReason != "" {
			state += " (" + m.StateReason + ")"
		}
		k.add("state", state)
		k.add("result", m.Result)
		k.add("message", m.Message)
		k.add("request", m.RequestID)
		k.add("return", m.ReturnID)
		k.add("provider", m.Provider)
		k.add("template", m.TemplateID)
		typ := m.InstanceType
		if m.Spot {
			typ += " (spot)"
		}
		k.add("type", typ)
		k.add("zone", m.AZ)
		k.add("price", priceText(m.Price))
		k.add("spot request", m.SpotRequest)
		k.add("weight", itoaOr(m.Weight))
		k.add("private ip", m.PrivateIP)
		k.add("public ip", m.PublicIP)
		k.add("handle", m.Handle)
		k.add("tags", m.Tags)
		if m.Doomed {
			k.add("doomed", "yes: ohfpd will terminate it")
		}
		k.add("launched", agoAbs(now, m.LaunchTime))
		k.add("interruption", agoAbs(now, m.InterruptAt))
		if m.DrainReason != "" {
			k.add("drain", m.DrainReason+" ("+agoAbs(now, m.DrainAt)+")")
		}
		k.add("last seen", agoAbs(now, m.LastSeen))
		k.add("ended", agoAbs(now, m.EndedAt))
		return k.flush()
	}
	return fmt.Errorf("ohfpd's answer about %s holds neither a request nor a machine", inv.args[0])
}

func itoaOr(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func orDash(s string) string { return orText(s, "-") }

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// nextAttempt writes when a retried launch is due: the instant the
// requests' messages name ("next attempt at 12:00:08Z"), and how far off;
// never a time in the past (a retry that is due is made as its turn
// comes).
func nextAttempt(now, t time.Time) string {
	when := "due now"
	if d := t.Sub(now); d >= time.Second {
		when = "in " + human(d)
	}
	return "at " + t.UTC().Format("15:04:05Z") + " (" + when + ")"
}
