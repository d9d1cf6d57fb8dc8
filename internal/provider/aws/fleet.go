package awsprov

import (
	"context"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// Fleet handles and the provider.Fleets implementation.
//
// A launch through EC2 Fleet, Spot Fleet or Auto Scaling returns a handle
// whose prefix says the API: "fleet-..." (an EC2 Fleet id), "sfr-..." (a
// Spot Fleet request id) or "asg:<group name>". Poll, Release, Cap and
// Delete dispatch on it.
//
// EC2 accepts ModifyFleet and ModifySpotFleetRequest only for fleets of type
// maintain; fleets of type request (and instant) never replace an instance,
// so Release only terminates, and Cap stops them by deleting (cancelling)
// the fleet without terminating its instances. Poll then reports it Closed.

var _ provider.Fleets = (*Provider)(nil)

func init() {
	launchers[template.APIEC2Fleet] = (*Provider).launchEC2Fleet
	launchers[template.APISpotFleet] = (*Provider).launchSpotFleet
	launchers[template.APIASG] = (*Provider).launchASG
}

// Handle kinds.
const (
	kindEC2Fleet  = "EC2Fleet"
	kindSpotFleet = "SpotFleet"
	kindASG       = "ASG"
)

// asgHandlePrefix starts an Auto Scaling group's handle.
const asgHandlePrefix = "asg:"

// TagCapped marks a maintain fleet, Spot Fleet request or Auto Scaling
// group that Cap stopped: Poll reports it Closed.
const TagCapped = "ohfp:capped"

// Tags AWS puts on the instances of a fleet, Spot Fleet or group.
const (
	awsFleetTag     = "aws:ec2:fleet-id"
	awsSpotFleetTag = "aws:ec2spot:fleet-request-id"
	awsGroupTag     = "aws:autoscaling:groupName"
)

// handleFromTags names the fleet or group that launched an instance, from
// the tags AWS puts on it ("" for RunInstances).
func handleFromTags(tags map[string]string) string {
	if v := tags[awsFleetTag]; v != "" {
		return v
	}
	if v := tags[awsSpotFleetTag]; v != "" {
		return v
	}
	if v := tags[awsGroupTag]; v != "" {
		return asgHandlePrefix + v
	}
	return ""
}

// fleetBatchSize bounds the ids of one describe call.
const fleetBatchSize = 100

// handleKind returns the API of a handle and the id the API knows it by.
func handleKind(h string) (kind, id string) {
	switch {
	case strings.HasPrefix(h, "fleet-"):
		return kindEC2Fleet, h
	case strings.HasPrefix(h, "sfr-"):
		return kindSpotFleet, h
	case strings.HasPrefix(h, asgHandlePrefix) && len(h) > len(asgHandlePrefix):
		return kindASG, strings.TrimPrefix(h, asgHandlePrefix)
	}
	return "", h
}

func badHandle(op, h string) error {
	return &provider.Error{Op: op, Kind: provider.Fatal,
		Message: fmt.Sprintf("%q is not a fleet handle (fleet-..., sfr-... or asg:...)", h)}
}

// handleLocks serialises the read-modify-write of Release and Cap per
// handle within this process.
type handleLocks struct {
	mu sync.Mutex
	m  map[string]*handleLock
}

type handleLock struct {
	mu   sync.Mutex
	refs int
}

func (l *handleLocks) lock(h string) func() {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*handleLock{}
	}
	hl := l.m[h]
	if hl == nil {
		hl = &handleLock{}
		l.m[h] = hl
	}
	hl.refs++
	l.mu.Unlock()
	hl.mu.Lock()
	return func() {
		hl.mu.Unlock()
		l.mu.Lock()
		if hl.refs--; hl.refs == 0 {
			delete(l.m, h)
		}
		l.mu.Unlock()
	}
}

// Poll describes the handles with one describe per API (batched and
// paginated): DescribeFleets, DescribeSpotFleetRequests and
// DescribeAutoScalingGroups. Fleets and Spot Fleet requests whose activity
// is "error" cost one history call each (DescribeFleetHistory,
// DescribeSpotFleetRequestHistory) to give the reason; groups short of
// their desired capacity cost one DescribeScalingActivities each. A handle
// that is not a fleet handle comes back Gone with an error. A handle this
// provider created less than handleSettle ago is not described: it comes
// back NotFound, as EC2 would answer (eventual consistency).
func (p *Provider) Poll(ctx context.Context, handles []string) (map[string]provider.FleetStatus, error) {
	out := make(map[string]provider.FleetStatus, len(handles))
	byKind := map[string][]string{}
	now := p.clock.Now()
	for _, h := range slices.Compact(slices.Sorted(slices.Values(handles))) {
		kind, id := handleKind(h)
		if kind == "" {
			out[h] = provider.FleetStatus{Handle: h, Gone: true, Closed: true, Errors: []string{badHandle("Poll", h).Error()}}
			continue
		}
		if p.young(h, now) { // not visible yet: what EC2 would answer, without asking
			out[h] = provider.FleetStatus{Handle: h, NotFound: true}
			continue
		}
		byKind[kind] = append(byKind[kind], id)
	}
	polls := []struct {
		kind string
		fn   func(context.Context, []string) (map[string]provider.FleetStatus, error)
	}{{kindEC2Fleet, p.pollEC2Fleets}, {kindSpotFleet, p.pollSpotFleets}, {kindASG, p.pollASGs}}
	for _, x := range polls {
		if len(byKind[x.kind]) == 0 {
			continue
		}
		m, err := x.fn(ctx, byKind[x.kind])
		if err != nil {
			return nil, err
		}
		maps.Copy(out, m)
	}
	for h, st := range out {
		if hasCapacityError(st.Errors) {
			st.OutOfCapacity = true
			out[h] = st
		}
	}
	return out, nil
}

// hasCapacityError reports whether the cloud's reasons say it had no
// capacity for what it was asked.
func hasCapacityError(errs []string) bool {
	for _, e := range errs {
		if strings.Contains(e, "InsufficientInstanceCapacity") || strings.Contains(e, "InsufficientCapacity") {
			return true
		}
	}
	return false
}

// Release returns instances of a handle. For a maintain EC2 Fleet or Spot
// Fleet it first lowers the target capacity (ModifyFleet /
// ModifySpotFleetRequest, no-termination) by the units of those ids that
// are still alive (so a second call after a success lowers nothing), then
// terminates the ids. Fleets of type instant and request never replace an
// instance: they are only terminated. For a group, each id goes through
// TerminateInstanceInAutoScalingGroup with ShouldDecrementDesiredCapacity,
// which lowers and terminates in one step; ids no longer in the group are
// skipped.
func (p *Provider) Release(ctx context.Context, handle string, ids []string, units int) error {
	kind, id := handleKind(handle)
	if kind == "" {
		return badHandle("Release", handle)
	}
	unlock := p.handles.lock(handle)
	defer unlock()
	switch kind {
	case kindEC2Fleet:
		return p.releaseEC2Fleet(ctx, id, ids, units)
	case kindSpotFleet:
		return p.releaseSpotFleet(ctx, id, ids, units)
	}
	return p.releaseASG(ctx, id, ids, units)
}

// Cap stops a handle from launching more, without terminating anything:
// maintain fleets get target capacity keepUnits (no-termination) and the
// TagCapped tag; request fleets are deleted (cancelled) without
// terminating their instances; instant fleets need nothing; groups get
// MaxSize = DesiredCapacity = keepUnits and the TagCapped tag (their
// instances are protected from scale-in, so lowering the desired capacity
// terminates nothing).
func (p *Provider) Cap(ctx context.Context, handle string, keepUnits int) error {
	kind, id := handleKind(handle)
	if kind == "" {
		return badHandle("Cap", handle)
	}
	keepUnits = max(keepUnits, 0)
	unlock := p.handles.lock(handle)
	defer unlock()
	switch kind {
	case kindEC2Fleet:
		return p.capEC2Fleet(ctx, id, keepUnits)
	case kindSpotFleet:
		return p.capSpotFleet(ctx, id, keepUnits)
	}
	return p.capASG(ctx, id, keepUnits)
}

// Delete removes a handle, its instances and ohfp's launch template for
// it: DeleteFleets / CancelSpotFleetRequests with TerminateInstances, then
// TerminateInstances of any instance still alive under the fleet's tag
// (a fleet Cap deleted without terminating); DeleteAutoScalingGroup with
// ForceDelete. The launch templates are the ohfp-... ones the handle's
// description names (and LaunchTemplateName of its ohfp:request-id tag).
// A handle the cloud does not know is already deleted: success (its launch
// template, if any, is then left to DeleteRequestLaunchTemplate).
func (p *Provider) Delete(ctx context.Context, handle string) error {
	kind, id := handleKind(handle)
	if kind == "" {
		return badHandle("Delete", handle)
	}
	unlock := p.handles.lock(handle)
	defer unlock()
	switch kind {
	case kindEC2Fleet:
		return p.deleteEC2Fleet(ctx, id)
	case kindSpotFleet:
		return p.deleteSpotFleet(ctx, id)
	}
	return p.deleteASG(ctx, id)
}

// --- shared pieces of the fleet calls ---

// fleetTypes lists the instance types a fleet may launch: vmTypes (or
// vmType), then the vmTypesOnDemand types not among them when the price
// type has an on-demand part and withOD (EC2 Fleet, Auto Scaling; a Spot
// Fleet leaves them to the on-demand fallback, see OnDemandSpec).
func fleetTypes(t *template.Template, withOD bool) []string {
	out := t.InstanceTypes()
	if withOD && t.Price() != template.PriceSpot {
		for _, w := range t.VMTypesOnDemand {
			if !slices.Contains(out, w.Type) {
				out = append(out, w.Type)
			}
		}
	}
	return out
}

// onDemandUnits is the on-demand part of units: all for ondemand, none
// for spot, ceil(units*percentOnDemand/100) for heterogeneous.
func onDemandUnits(t *template.Template, units int) int {
	switch t.Price() {
	case template.PriceOnDemand:
		return units
	case template.PriceHeterogeneous:
		pct := min(max(t.PercentOnDemand, 0), 100)
		return (units*pct + 99) / 100
	}
	return 0
}

// priorities returns the override priority of each type (lower launches
// first; absent: lowest priority) and whether the on-demand part must use
// the prioritized strategy. With vmTypesOnDemand and an on-demand part,
// those types come first in their order (EC2 Fleet and Spot Fleet cannot
// restrict types per lifecycle; this is the nearest they offer), then the
// vmTypesPriority order.
func priorities(t *template.Template, withOD bool) (map[string]float64, bool) {
	out := map[string]float64{}
	base := 0
	od := withOD && t.Price() != template.PriceSpot && len(t.VMTypesOnDemand) > 0
	if od {
		for i, w := range t.VMTypesOnDemand {
			out[w.Type] = float64(i)
		}
		base = len(t.VMTypesOnDemand)
	}
	for _, w := range t.VMTypesPriority {
		if _, ok := out[w.Type]; !ok {
			out[w.Type] = float64(base + max(w.Weight, 0))
		}
	}
	return out, od
}

// Allocation strategies, keyed by the template's spelling folded to lower
// case without dashes, as each API spells them.
var spotStrategies = map[string]struct{ fleet, spotFleet, asg string }{
	"capacityoptimized":            {"capacity-optimized", "capacityOptimized", "capacity-optimized"},
	"capacityoptimizedprioritized": {"capacity-optimized-prioritized", "capacityOptimizedPrioritized", "capacity-optimized-prioritized"},
	"diversified":                  {"diversified", "diversified", "lowest-price"},
	"lowestprice":                  {"lowest-price", "lowestPrice", "lowest-price"},
	"pricecapacityoptimized":       {"price-capacity-optimized", "priceCapacityOptimized", "price-capacity-optimized"},
}

var onDemandStrategies = map[string]struct{ fleet, spotFleet, asg string }{
	"lowestprice": {"lowest-price", "lowestPrice", "lowest-price"},
	"prioritized": {"prioritized", "prioritized", "prioritized"},
}

func foldStrategy(s string) string { return strings.ToLower(strings.ReplaceAll(s, "-", "")) }

// spotStrategy looks up allocationStrategy; "" means the API's default.
func spotStrategy(t *template.Template) (fleet, spotFleet, asg string, err error) {
	if t.AllocationStrat == "" {
		return "", "", "", nil
	}
	s, ok := spotStrategies[foldStrategy(t.AllocationStrat)]
	if !ok {
		return "", "", "", fatal(t, "allocationStrategy %q: use capacityOptimized, capacityOptimizedPrioritized, diversified, lowestPrice or priceCapacityOptimized", t.AllocationStrat)
	}
	return s.fleet, s.spotFleet, s.asg, nil
}

// onDemandStrategy looks up allocationStrategyOnDemand; prioritized wins
// when vmTypesOnDemand orders the types.
func onDemandStrategy(t *template.Template, prioritized bool) (fleet, spotFleet, asg string, err error) {
	if prioritized {
		s := onDemandStrategies["prioritized"]
		return s.fleet, s.spotFleet, s.asg, nil
	}
	if t.AllocationOnDem == "" {
		return "", "", "", nil
	}
	s, ok := onDemandStrategies[foldStrategy(t.AllocationOnDem)]
	if !ok {
		return "", "", "", fatal(t, "allocationStrategyOnDemand %q: use lowestPrice or prioritized", t.AllocationOnDem)
	}
	return s.fleet, s.spotFleet, s.asg, nil
}

// override is one cell of the types × subnets matrix.
type override struct {
	Type     string
	Subnet   string // "": the default VPC
	Weight   float64
	Priority *float64
}

// overrides builds the types × subnets matrix of a template (withOD: see
// fleetTypes).
func overrides(t *template.Template, withOD bool) ([]override, error) {
	its := fleetTypes(t, withOD)
	if len(its) == 0 {
		return nil, fatal(t, "no vmType or vmTypes: a fleet needs instance types for its overrides")
	}
	prio, _ := priorities(t, withOD)
	subnets := t.SubnetIDs
	if len(subnets) == 0 {
		subnets = []string{""}
	}
	var out []override
	for _, it := range its {
		// An ec2FleetConfig file's pairs, as the file has them.
		var pinned []string
		for _, fo := range t.FleetOverrides {
			if fo.Type == it {
				pinned = append(pinned, fo.Subnet)
			}
		}
		sns := subnets
		if len(pinned) > 0 {
			sns = pinned
		}
		for _, sn := range sns {
			o := override{Type: it, Subnet: sn, Weight: float64(t.WeightOf(it))}
			if pr, ok := prio[it]; ok {
				o.Priority = aws.Float64(pr)
			}
			out = append(out, o)
		}
	}
	return out, nil
}

// validUntil is when a fleet of the template stops: spotFleetRequestExpiry
// minutes (def when unset; 0 def: no expiry) from the request (the
// engine's own expiry counts from there too), so that a retry with the
// same client token asks the same; from now if the spec has no time.
func (p *Provider) validUntil(spec provider.LaunchSpec, def int) *time.Time {
	m := spec.Template.SpotFleetExpiry
	if m <= 0 {
		m = def
	}
	if m <= 0 {
		return nil
	}
	from := spec.RequestedAt
	if from.IsZero() {
		from = p.clock.Now()
	}
	return aws.Time(from.Add(time.Duration(m) * time.Minute).UTC().Truncate(time.Second))
}

func priceString(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// units rounds a fulfilled capacity EC2 reports as a float.
func units(f *float64) int {
	if f == nil {
		return 0
	}
	return int(math.Round(*f))
}

// liveUnits returns how many of units the ids still alive stand for: all
// of them if all are alive, none if none is, else the weights (by instance
// type) of the live ones, at most units. One filtered DescribeInstances.
// od is the part of them that is on-demand (0 for capacity only: the
// cloud takes back Spot Instances).
func (p *Provider) liveUnits(ctx context.Context, ids []string, units int, weight map[string]float64) (total, od int, _ error) {
	if units <= 0 {
		return 0, 0, nil
	}
	if len(ids) == 0 {
		// Capacity only: the cloud already took the instances back.
		return units, 0, nil
	}
	live, err := p.describeIDs(ctx, ids, stateNames(provider.StatePending, provider.StateRunning, provider.StateStopping, provider.StateStopped))
	if err != nil {
		return 0, 0, err
	}
	if len(live) == 0 {
		return 0, 0, nil
	}
	all := len(live) >= len(slices.Compact(slices.Sorted(slices.Values(ids))))
	sum, odSum := 0.0, 0.0
	for _, in := range live {
		w := weight[in.InstanceType]
		if w <= 0 {
			w = float64(units) / float64(len(ids))
		}
		sum += w
		if !in.Spot {
			odSum += w
		}
	}
	total = min(units, int(math.Ceil(sum-1e-9)))
	if all {
		total = units
	}
	return total, min(total, int(math.Ceil(odSum-1e-9))), nil
}

// describeIDs describes instances by id (through an instance-id filter,
// so unknown ids are no error), optionally only in states, each call
// within EC2's filter-value limit.
func (p *Provider) describeIDs(ctx context.Context, ids []string, states []string) ([]provider.Instance, error) {
	var fixed []types.Filter
	if len(states) > 0 {
		fixed = append(fixed, types.Filter{Name: aws.String("instance-state-name"), Values: states})
	}
	return p.describeChunked(ctx, "instance-id", ids, fixed...)
}

// describeAll pages through a DescribeInstances.
func (p *Provider) describeAll(ctx context.Context, in *ec2.DescribeInstancesInput) ([]provider.Instance, error) {
	var out []provider.Instance
	pages := ec2.NewDescribeInstancesPaginator(p.ec2, in)
	for pages.HasMorePages() {
		provider.BeforePage(ctx)
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, classify("DescribeInstances", err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				out = append(out, toInstance(i))
			}
		}
	}
	return out, nil
}

// terminateTagged terminates the live instances carrying tag key=value
// (a fleet's leftovers).
func (p *Provider) terminateTagged(ctx context.Context, key, value string) error {
	live, err := p.describeFiltered(ctx, []types.Filter{
		{Name: aws.String("tag:" + key), Values: []string{value}},
		{Name: aws.String("instance-state-name"), Values: stateNames(provider.StatePending, provider.StateRunning, provider.StateStopping, provider.StateStopped)},
	})
	if err != nil || len(live) == 0 {
		return err
	}
	return p.Terminate(ctx, idsOf(live))
}

// idsOf lists the ids of instances.
func idsOf(in []provider.Instance) []string {
	out := make([]string, len(in))
	for i, x := range in {
		out[i] = x.ID
	}
	return out
}

// ltNames returns the ohfp launch template names a fleet's configuration
// and tags point at.
func ltNames(specs []*types.FleetLaunchTemplateSpecification, tags []types.Tag) []string {
	var out []string
	for _, s := range specs {
		if s != nil && strings.HasPrefix(aws.ToString(s.LaunchTemplateName), ltPrefix) {
			out = append(out, aws.ToString(s.LaunchTemplateName))
		}
	}
	if req, ok := tagValueOf(tags, provider.TagRequestID); ok && req != "" {
		out = append(out, LaunchTemplateName(req))
	}
	return out
}

func tagValueOf(tags []types.Tag, key string) (string, bool) {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value), true
		}
	}
	return "", false
}

// errorsOf formats a cloud's launch errors as "Code: Message".
func errorsOf[T any](items []T, f func(T) (string, string)) []string {
	var out []string
	for _, it := range items {
		code, msg := f(it)
		if code == "" && msg == "" {
			continue
		}
		s := code + ": " + msg
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// describeByID describes fleets (EC2 Fleets, Spot Fleet requests) by id,
// fleetBatchSize a call, paginated; ids EC2 does not know (the notFound
// codes) are left out. page makes one call of op.
func describeByID[T any](ctx context.Context, p *Provider, op string, ids []string, pattern *regexp.Regexp, notFound []string,
	page func(ids []string, token *string) ([]T, *string, error)) ([]T, error) {
	var out []T
	for batch := range slices.Chunk(ids, fleetBatchSize) {
		err := p.withoutMissing(ctx, batch, pattern, notFound, func(ids []string) error {
			var token *string
			for {
				items, next, err := page(ids, token)
				if err != nil {
					return err
				}
				out = append(out, items...)
				if aws.ToString(next) == "" {
					return nil
				}
				token = next
			}
		})
		if err != nil {
			return nil, classify(op, err)
		}
	}
	return out, nil
}

// notFoundStatuses is the Poll answer for handles the describe does not
// return: NotFound, neither Gone nor Closed. EC2 describes deleted fleets
// and cancelled Spot Fleet requests for two days after their instances
// are gone (API Reference, EventInformation: "will be deleted two days
// after its instances are terminated"), so a handle it does not know is,
// right after the launch, one it does not show yet (eventual
// consistency), not one that was deleted.
func notFoundStatuses(ids []string) map[string]provider.FleetStatus {
	out := map[string]provider.FleetStatus{}
	for _, id := range ids {
		out[id] = provider.FleetStatus{Handle: id, NotFound: true}
	}
	return out
}

// errHandleNotFound is Release's error for a handle the cloud does not
// know (yet): nothing is terminated, since the target of a maintain
// fleet could not be lowered first.
func errHandleNotFound(op, h string) error {
	return &provider.Error{Op: op, Kind: provider.NotFound, IDs: []string{h},
		Message: fmt.Sprintf("%s is not known to the cloud (not visible yet?): nothing released; try again", h)}
}

// lowerTarget lowers a maintain fleet's target (setTarget(-lower)) by the
// units of ids still alive (see liveUnits), so that terminating them does
// not make the fleet replace them.
func (p *Provider) lowerTarget(ctx context.Context, ids []string, units int, weights map[string]float64, setTarget func(delta, odLower int) error) error {
	lower, od, err := p.liveUnits(ctx, ids, units, weights)
	if err != nil || lower <= 0 {
		return err
	}
	return setTarget(-lower, od)
}

// newODTarget is the on-demand target that goes with a new total target:
// cur lowered by odLower (the on-demand units released), at most target;
// -1 when there is none (cur < 0).
func newODTarget(cur, odLower, target int) int {
	if cur < 0 {
		return -1
	}
	return min(max(cur-odLower, 0), target)
}

// newTarget is the target capacity setFleetTarget and setSpotFleetTarget
// set: cur+delta (at least 0) when delta < 0, else delta.
func newTarget(cur, delta int) int {
	if delta < 0 {
		return max(0, cur+delta)
	}
	return delta
}

// tagCapped puts TagCapped on a maintain fleet or Spot Fleet request Cap
// lowered; a failure is only logged.
func (p *Provider) tagCapped(ctx context.Context, id string) {
	_, err := p.fleet.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id},
		Tags: []types.Tag{{Key: aws.String(TagCapped), Value: aws.String("true")}}})
	if err != nil {
		// The capacity is capped; only Poll's Closed depends on the tag.
		p.log.Warn("could not tag a capped fleet: Poll will not report it closed", "handle", id, "err", classify("CreateTags", err))
	}
}

// deleteLeftovers finishes deleting a fleet or Spot Fleet request id:
// terminates the instances still alive under its tag (tagKey) and deletes
// the ohfp launch templates its specs and tags name.
func (p *Provider) deleteLeftovers(ctx context.Context, tagKey, id string, specs []*types.FleetLaunchTemplateSpecification, tags []types.Tag) error {
	if err := p.terminateTagged(ctx, tagKey, id); err != nil {
		return err
	}
	return p.deleteLaunchTemplates(ctx, ltNames(specs, tags))
}

// --- EC2 Fleet ---

var fleetIDPattern = regexp.MustCompile(`\bfleet-[0-9a-zA-Z-]+\b`)

// launchEC2Fleet launches through CreateFleet with ohfp's launch template.
// An instant fleet answers with its instances (described in full, batched)
// and its errors; a request or maintain fleet with its id only: the engine
// finds its instances by tag and follows it with Poll.
func (p *Provider) launchEC2Fleet(ctx context.Context, spec provider.LaunchSpec) (provider.LaunchResult, error) {
	t := &spec.Template
	if spec.Units <= 0 {
		return provider.LaunchResult{}, fatal(t, "%d units asked: must be at least 1", spec.Units)
	}
	lt, err := p.ensureLaunchTemplate(ctx, spec)
	if err != nil {
		return provider.LaunchResult{}, err
	}
	in, err := p.createFleetInput(spec, lt)
	if err != nil {
		return provider.LaunchResult{}, err
	}
	out, err := p.fleet.CreateFleet(ctx, in)
	if err != nil {
		return provider.LaunchResult{}, classify("CreateFleet", err)
	}
	res := provider.LaunchResult{Handle: aws.ToString(out.FleetId)}
	res.Errors = errorsOf(out.Errors, func(e types.CreateFleetError) (string, string) {
		return aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage)
	})
	p.rememberFleetErrors(out.Errors)
	if in.Type == types.FleetTypeInstant {
		res.Instances = p.fleetInstances(ctx, spec, out.Instances)
	}
	p.log.Info("CreateFleet", "request_id", spec.RequestID, "template_id", t.TemplateID, "fleet", res.Handle,
		"type", in.Type, "units", spec.Units, "instances", len(res.Instances), "errors", len(res.Errors))
	return res, nil
}

// fleetInstances turns an instant fleet's answer into instances: described
// in full when EC2 already knows them, else from the answer itself.
func (p *Provider) fleetInstances(ctx context.Context, spec provider.LaunchSpec, fis []types.CreateFleetInstance) []provider.Instance {
	var out []provider.Instance
	for _, fi := range fis {
		for _, id := range fi.InstanceIds {
			out = append(out, provider.Instance{ID: id, State: provider.StatePending, InstanceType: string(fi.InstanceType),
				SubnetID: aws.ToString(fi.SubnetId), Spot: fi.Lifecycle == types.InstanceLifecycleSpot, Tags: maps.Clone(spec.Tags)})
		}
	}
	if len(out) == 0 {
		return out
	}
	full, err := p.describeIDs(ctx, idsOf(out), nil)
	if err != nil {
		p.log.Warn("describing the instances of an instant fleet failed; answering with what CreateFleet said", "request_id", spec.RequestID, "err", err)
		return out
	}
	byID := map[string]provider.Instance{}
	for _, in := range full {
		byID[in.ID] = in
	}
	for i, in := range out {
		if f, ok := byID[in.ID]; ok {
			out[i] = f
		}
	}
	return out
}

// createFleetInput builds the CreateFleet call of spec.
func (p *Provider) createFleetInput(spec provider.LaunchSpec, lt ltRef) (*ec2.CreateFleetInput, error) {
	t := &spec.Template
	ovs, err := overrides(t, true)
	if err != nil {
		return nil, err
	}
	fleetSpot, _, _, err := spotStrategy(t)
	if err != nil {
		return nil, err
	}
	_, prioritized := priorities(t, true)
	fleetOD, _, _, err := onDemandStrategy(t, prioritized)
	if err != nil {
		return nil, err
	}
	typ := types.FleetType(t.FleetType)
	switch typ {
	case "":
		typ = types.FleetTypeInstant
	case types.FleetTypeInstant, types.FleetTypeRequest, types.FleetTypeMaintain:
	default:
		return nil, fatal(t, "fleetType %q: use instant, request or maintain", t.FleetType)
	}
	od := onDemandUnits(t, spec.Units)
	spot := spec.Units - od
	cfg := types.FleetLaunchTemplateConfigRequest{LaunchTemplateSpecification: &types.FleetLaunchTemplateSpecificationRequest{
		LaunchTemplateId: aws.String(lt.ID), Version: aws.String(lt.Version)}}
	for _, o := range ovs {
		r := types.FleetLaunchTemplateOverridesRequest{InstanceType: types.InstanceType(o.Type),
			WeightedCapacity: aws.Float64(o.Weight), Priority: o.Priority}
		if o.Subnet != "" {
			r.SubnetId = aws.String(o.Subnet)
		}
		if spot > 0 && t.MaxSpotPrice > 0 {
			r.MaxPrice = aws.String(priceString(t.MaxSpotPrice))
		}
		cfg.Overrides = append(cfg.Overrides, r)
	}
	tcs := &types.TargetCapacitySpecificationRequest{TotalTargetCapacity: aws.Int32(int32(spec.Units))}
	switch {
	case spot == 0:
		tcs.DefaultTargetCapacityType = types.DefaultTargetCapacityTypeOnDemand
	case od == 0:
		tcs.DefaultTargetCapacityType = types.DefaultTargetCapacityTypeSpot
	default:
		tcs.DefaultTargetCapacityType = types.DefaultTargetCapacityTypeSpot
		tcs.OnDemandTargetCapacity, tcs.SpotTargetCapacity = aws.Int32(int32(od)), aws.Int32(int32(spot))
	}
	in := &ec2.CreateFleetInput{
		Type:                             typ,
		LaunchTemplateConfigs:            []types.FleetLaunchTemplateConfigRequest{cfg},
		TargetCapacitySpecification:      tcs,
		TerminateInstancesWithExpiration: aws.Bool(false),
	}
	if spot > 0 {
		in.SpotOptions = &types.SpotOptionsRequest{AllocationStrategy: types.SpotAllocationStrategy(fleetSpot),
			InstanceInterruptionBehavior: types.SpotInstanceInterruptionBehaviorTerminate}
		if fleetSpot == string(types.SpotAllocationStrategyLowestPrice) && t.PoolsCount > 0 {
			in.SpotOptions.InstancePoolsToUseCount = aws.Int32(int32(t.PoolsCount))
		}
	}
	if od > 0 && fleetOD != "" {
		in.OnDemandOptions = &types.OnDemandOptionsRequest{AllocationStrategy: types.FleetOnDemandAllocationStrategy(fleetOD)}
	}
	if typ != types.FleetTypeInstant {
		in.ValidUntil = p.validUntil(spec, 0)
	}
	if typ == types.FleetTypeMaintain {
		in.ExcessCapacityTerminationPolicy = types.FleetExcessCapacityTerminationPolicyNoTermination
	}
	if tags := ec2Tags(spec.Tags); len(tags) > 0 {
		in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeFleet, Tags: tags}}
	}
	if spec.ClientToken != "" {
		in.ClientToken = aws.String(spec.ClientToken)
	}
	return in, nil
}

// describeFleets describes EC2 Fleets by id, fleetBatchSize a call,
// paginated; ids EC2 does not know are left out.
func (p *Provider) describeFleets(ctx context.Context, fleetIDs []string) ([]types.FleetData, error) {
	return describeByID(ctx, p, "DescribeFleets", fleetIDs, fleetIDPattern, []string{"InvalidFleetId.NotFound", "InvalidFleetId.Malformed"},
		func(ids []string, token *string) ([]types.FleetData, *string, error) {
			page, err := p.fleet.DescribeFleets(ctx, &ec2.DescribeFleetsInput{FleetIds: ids, NextToken: token})
			if err != nil {
				return nil, nil, err
			}
			return page.Fleets, page.NextToken, nil
		})
}

func (p *Provider) pollEC2Fleets(ctx context.Context, fleetIDs []string) (map[string]provider.FleetStatus, error) {
	fleets, err := p.describeFleets(ctx, fleetIDs)
	if err != nil {
		return nil, err
	}
	out := notFoundStatuses(fleetIDs)
	now := p.clock.Now()
	for _, f := range fleets {
		id := aws.ToString(f.FleetId)
		if _, asked := out[id]; !asked {
			continue
		}
		st := provider.FleetStatus{Handle: id, Fulfilled: units(f.FulfilledCapacity)}
		if tcs := f.TargetCapacitySpecification; tcs != nil {
			st.Target = int(aws.ToInt32(tcs.TotalTargetCapacity))
		}
		if f.Type == types.FleetTypeInstant {
			// FleetData.Errors: "Supported only for fleets of type instant".
			st.Errors = errorsOf(f.Errors, func(e types.DescribeFleetError) (string, string) {
				return aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage)
			})
		}
		_, capped := tagValueOf(f.Tags, TagCapped)
		switch {
		case f.FleetState == types.FleetStateCodeDeleted:
			st.Gone, st.Closed = true, true
		case f.Type == types.FleetTypeInstant, capped,
			f.FleetState == types.FleetStateCodeFailed,
			f.FleetState == types.FleetStateCodeDeletedRunning,
			f.FleetState == types.FleetStateCodeDeletedTerminatingInstances,
			f.Type == types.FleetTypeRequest && f.ActivityStatus == types.FleetActivityStatusFulfilled,
			f.ValidUntil != nil && !now.Before(*f.ValidUntil):
			st.Closed = true
		}
		// Request and maintain fleets report launch errors only in their
		// history, up to 30 s late: read it while the fleet is short.
		if f.Type != types.FleetTypeInstant && !st.Gone && (f.ActivityStatus == types.FleetActivityStatusError || st.Fulfilled < st.Target && !st.Closed) {
			st.Errors = p.fleetHistoryErrors(ctx, id, f.CreateTime, f.ActivityStatus == types.FleetActivityStatusError)
		}
		out[id] = st
	}
	return out, nil
}

// historyPages bounds the pages one history read fetches.
const historyPages = 5

// fleetHistoryErrors reads the service-error events of a request or
// maintain EC2 Fleet (DescribeFleetHistory, EventType service-error, since
// its creation), oldest first. With none yet (they come up to 30 s late),
// a fleet in activity status error says so; one merely short says nothing.
func (p *Provider) fleetHistoryErrors(ctx context.Context, id string, since *time.Time, inError bool) []string {
	start := aws.ToTime(since)
	if start.IsZero() {
		start = p.clock.Now().Add(-48 * time.Hour)
	}
	var errs []string
	in := &ec2.DescribeFleetHistoryInput{FleetId: aws.String(id), EventType: types.FleetEventTypeServiceError, StartTime: aws.Time(start)}
	for range historyPages {
		h, err := p.fleet.DescribeFleetHistory(ctx, in)
		if err != nil {
			p.log.Debug("DescribeFleetHistory failed", "fleet", id, "err", classify("DescribeFleetHistory", err))
			break
		}
		errs = append(errs, errorsOf(h.HistoryRecords, func(r types.HistoryRecordEntry) (string, string) {
			if r.EventInformation == nil {
				return "", ""
			}
			return aws.ToString(r.EventInformation.EventSubType), aws.ToString(r.EventInformation.EventDescription)
		})...)
		if aws.ToString(h.NextToken) == "" {
			break
		}
		in.NextToken = h.NextToken
	}
	if len(errs) == 0 && inError {
		return []string{"FleetError: EC2 Fleet " + id + " reports activity status error"}
	}
	return slices.Compact(errs)
}

// oneFleet describes one EC2 Fleet; ok is false when EC2 does not know it.
func (p *Provider) oneFleet(ctx context.Context, id string) (types.FleetData, bool, error) {
	fs, err := p.describeFleets(ctx, []string{id})
	if err != nil {
		return types.FleetData{}, false, err
	}
	for _, f := range fs {
		if aws.ToString(f.FleetId) == id {
			return f, true, nil
		}
	}
	return types.FleetData{}, false, nil
}

func fleetWeights(f types.FleetData) map[string]float64 {
	w := map[string]float64{}
	for _, c := range f.LaunchTemplateConfigs {
		for _, o := range c.Overrides {
			if o.WeightedCapacity != nil {
				w[string(o.InstanceType)] = *o.WeightedCapacity
			}
		}
	}
	return w
}

func (p *Provider) releaseEC2Fleet(ctx context.Context, id string, instanceIDs []string, units int) error {
	f, ok, err := p.oneFleet(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return errHandleNotFound("ReleaseFleet", id)
	}
	if ok && f.Type == types.FleetTypeMaintain && f.FleetState != types.FleetStateCodeDeleted &&
		f.FleetState != types.FleetStateCodeDeletedRunning && f.FleetState != types.FleetStateCodeDeletedTerminatingInstances {
		if err := p.lowerTarget(ctx, instanceIDs, units, fleetWeights(f), func(delta, od int) error { return p.setFleetTarget(ctx, f, delta, od) }); err != nil {
			return err
		}
	}
	return p.Terminate(ctx, instanceIDs)
}

// setFleetTarget sets a maintain fleet's total target capacity: to -delta
// below the current one when delta < 0, else to delta; never below 0, with
// no-termination. Its on-demand target, if set, goes down by odLower (the
// on-demand units released: else the fleet would replace them with
// on-demand and leave Spot over target) and never above the total.
func (p *Provider) setFleetTarget(ctx context.Context, f types.FleetData, delta, odLower int) error {
	cur, curOD := 0, -1
	if tcs := f.TargetCapacitySpecification; tcs != nil {
		cur = int(aws.ToInt32(tcs.TotalTargetCapacity))
		if tcs.OnDemandTargetCapacity != nil {
			curOD = int(*tcs.OnDemandTargetCapacity)
		}
	}
	target := newTarget(cur, delta)
	if target == cur {
		return nil
	}
	tcs := &types.TargetCapacitySpecificationRequest{TotalTargetCapacity: aws.Int32(int32(target))}
	if od := newODTarget(curOD, odLower, target); od >= 0 && od != curOD {
		tcs.OnDemandTargetCapacity = aws.Int32(int32(od))
	}
	_, err := p.fleet.ModifyFleet(ctx, &ec2.ModifyFleetInput{FleetId: f.FleetId, TargetCapacitySpecification: tcs,
		ExcessCapacityTerminationPolicy: types.FleetExcessCapacityTerminationPolicyNoTermination})
	if err != nil {
		return classify("ModifyFleet", err)
	}
	p.log.Info("ModifyFleet", "fleet", aws.ToString(f.FleetId), "from", cur, "to", target)
	return nil
}

func (p *Provider) capEC2Fleet(ctx context.Context, id string, keep int) error {
	f, ok, err := p.oneFleet(ctx, id)
	if err != nil || !ok {
		return err
	}
	switch {
	case f.FleetState == types.FleetStateCodeDeleted, f.FleetState == types.FleetStateCodeDeletedRunning,
		f.FleetState == types.FleetStateCodeDeletedTerminatingInstances, f.FleetState == types.FleetStateCodeFailed,
		f.Type == types.FleetTypeInstant:
		return nil
	case f.Type == types.FleetTypeMaintain:
		if err := p.setFleetTarget(ctx, f, keep, 0); err != nil {
			return err
		}
		p.tagCapped(ctx, id)
		return nil
	}
	// A request fleet cannot be modified: delete it, keeping its instances.
	return p.deleteFleet(ctx, id, false)
}

// deleteFleet deletes one EC2 Fleet; a fleet EC2 does not know or has
// already deleted is no error.
func (p *Provider) deleteFleet(ctx context.Context, id string, terminate bool) error {
	out, err := p.fleet.DeleteFleets(ctx, &ec2.DeleteFleetsInput{FleetIds: []string{id}, TerminateInstances: aws.Bool(terminate)})
	switch code := apiCode(err); {
	case code == "InvalidFleetId.NotFound", code == "InvalidFleetId.Malformed":
		return nil
	case err != nil:
		return classify("DeleteFleets", err)
	}
	for _, u := range out.UnsuccessfulFleetDeletions {
		if u.Error == nil {
			continue
		}
		switch u.Error.Code {
		case types.DeleteFleetErrorCodeFleetIdDoesNotExist, types.DeleteFleetErrorCodeFleetNotInDeletableState:
		default:
			return &provider.Error{Op: "DeleteFleets", Code: string(u.Error.Code), Message: aws.ToString(u.Error.Message), Kind: provider.Fatal}
		}
	}
	p.log.Info("DeleteFleets", "fleet", id, "terminate_instances", terminate)
	return nil
}

func (p *Provider) deleteEC2Fleet(ctx context.Context, id string) error {
	f, ok, err := p.oneFleet(ctx, id)
	if err != nil || !ok {
		return err
	}
	if err := p.deleteFleet(ctx, id, true); err != nil {
		return err
	}
	var specs []*types.FleetLaunchTemplateSpecification
	for _, c := range f.LaunchTemplateConfigs {
		specs = append(specs, c.LaunchTemplateSpecification)
	}
	return p.deleteLeftovers(ctx, awsFleetTag, id, specs, f.Tags)
}

// rememberFleetErrors records in the capacity memory the pools an instant
// EC2 Fleet's answer says had no capacity: each error names its launch
// template overrides (instance type, subnet or Availability Zone) and
// lifecycle (EC2 API Reference, CreateFleetError).
func (p *Provider) rememberFleetErrors(errs []types.CreateFleetError) {
	for _, e := range errs {
		code := aws.ToString(e.ErrorCode)
		lo := e.LaunchTemplateAndOverrides
		if !poolCapacityCodes[code] || lo == nil || lo.Overrides == nil {
			continue
		}
		where := aws.ToString(lo.Overrides.SubnetId)
		if where == "" {
			where = aws.ToString(lo.Overrides.AvailabilityZone)
		}
		price := template.PriceOnDemand
		if e.Lifecycle == types.InstanceLifecycleSpot {
			price = template.PriceSpot
		}
		p.capmem.Remember(string(lo.Overrides.InstanceType), where, price, code+": "+aws.ToString(e.ErrorMessage))
	}
}
