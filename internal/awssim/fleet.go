package awssim

import (
	"fmt"
	"maps"
	"strings"
	"time"
)

// EC2 Fleet: CreateFleet (instant, request, maintain), DescribeFleets,
// DescribeFleetInstances, ModifyFleet, DeleteFleets.

// FleetIDTag is the tag EC2 Fleet puts on the instances it launches.
const FleetIDTag = "aws:ec2:fleet-id"

// EC2 Fleet states.
const (
	fleetSubmitted          = "submitted"
	fleetActive             = "active"
	fleetModifying          = "modifying"
	fleetDeleted            = "deleted"
	fleetDeletedRunning     = "deleted_running"
	fleetDeletedTerminating = "deleted_terminating"
)

type ec2Fleet struct {
	fleetRun
	created     time.Time
	clientToken string

	ltConfigs []fleetLTConfigXML

	total            int
	odReq, spotReq   int
	odSet, spotSet   bool
	defaultType      string
	unitType         string
	spotAllocRaw     string
	odAllocRaw       string
	excessPolicy     string
	replaceUnhealthy bool
	tags             map[string]string
	instanceTags     map[string]string

	instantSet []fleetInstancesXML
}

// targets splits the total target into on-demand and Spot units.
func (f *ec2Fleet) targets() (od, spot int) {
	if f.odSet {
		od = min(f.odReq, f.total)
	}
	if f.spotSet {
		spot = min(f.spotReq, f.total-od)
	}
	if rest := f.total - od - spot; rest > 0 {
		if f.defaultType == "spot" {
			spot += rest
		} else {
			od += rest
		}
	}
	return od, spot
}

type fleetService struct {
	r      *Region
	fleets map[string]*ec2Fleet
	order  []*ec2Fleet
}

func (r *Region) registerFleetActions() {
	s := &fleetService{r: r, fleets: map[string]*ec2Fleet{}}
	r.ec2["CreateFleet"] = s.createFleet
	r.ec2["DescribeFleets"] = s.describeFleets
	r.ec2["DescribeFleetInstances"] = s.describeFleetInstances
	r.ec2["ModifyFleet"] = s.modifyFleet
	r.ec2["DeleteFleets"] = s.deleteFleets
	r.ec2["DescribeFleetHistory"] = s.describeFleetHistory
	r.onInstanceGone = append(r.onInstanceGone, func(in *instance, _ time.Time) {
		if f := s.fleets[in.owner]; f != nil && f.m.gone(in) {
			f.record(r, f.ev.instance, "terminated", "", in.id)
		}
	})
	r.tagLookups["fleet-"] = func(id string) (map[string]string, error) {
		f, err := s.lookup(id)
		if err != nil {
			return nil, err
		}
		return f.tags, nil
	}
	r.tickers = append(r.tickers, s.tick)
}

type createFleetResult struct {
	FleetID   string              `xml:"fleetId"`
	Errors    []fleetErrorXML     `xml:"errorSet>item"`
	Instances []fleetInstancesXML `xml:"fleetInstanceSet>item"`
}

func (s *fleetService) createFleet(c *call) (any, error) {
	r := s.r
	p := c.p
	token := p.str("ClientToken")
	fp := p.fingerprint("ClientToken")
	if res, found, err := r.idempotent("CreateFleet", token, fp); err != nil {
		return nil, err
	} else if found {
		return res, nil
	}

	f := &ec2Fleet{fleetRun: fleetRun{id: r.newUUIDID("fleet-"), st: &ec2FleetStates, ev: &ec2FleetEvents, visibleAt: r.visibleFrom()}, created: c.now, clientToken: token, tags: map[string]string{}, instanceTags: map[string]string{}}
	f.typ = p.str("Type")
	if f.typ == "" {
		f.typ = "maintain"
	}
	tcs := p.sub("TargetCapacitySpecification")
	if !p.has("TargetCapacitySpecification") {
		return nil, errMissingParameter("TargetCapacitySpecification")
	}
	f.total = tcs.reqInt("TotalTargetCapacity")
	f.odSet, f.spotSet = tcs.has("OnDemandTargetCapacity"), tcs.has("SpotTargetCapacity")
	f.odReq = tcs.intOr("OnDemandTargetCapacity", 0)
	f.spotReq = tcs.intOr("SpotTargetCapacity", 0)
	f.defaultType = tcs.reqStr("DefaultTargetCapacityType")
	f.unitType = tcs.str("TargetCapacityUnitType")
	f.spotAllocRaw = p.str("SpotOptions.AllocationStrategy")
	f.odAllocRaw = p.str("OnDemandOptions.AllocationStrategy")
	f.poolsToUse = p.intOr("SpotOptions.InstancePoolsToUseCount", 1)
	f.excessPolicy = p.str("ExcessCapacityTerminationPolicy")
	f.validFrom = p.timeOr("ValidFrom")
	f.validUntil = p.timeOr("ValidUntil")
	f.termWithExpiration = p.boolOr("TerminateInstancesWithExpiration", false)
	f.replaceUnhealthy = p.boolOr("ReplaceUnhealthyInstances", false)
	if err := c.err(); err != nil {
		return nil, err
	}
	switch f.typ {
	case "instant", "request", "maintain":
	default:
		return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for Type. Valid values: instant, request, maintain", f.typ))
	}
	switch f.defaultType {
	case "spot", "on-demand":
	default:
		return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for DefaultTargetCapacityType. Valid values: spot, on-demand", f.defaultType))
	}
	if f.total < 0 || f.odReq < 0 || f.spotReq < 0 {
		return nil, errInvalidParameterValue("Target capacities must not be negative.")
	}
	if f.odReq+f.spotReq > f.total {
		return nil, errInvalidParameterValue(fmt.Sprintf("The sum of OnDemandTargetCapacity (%d) and SpotTargetCapacity (%d) cannot exceed TotalTargetCapacity (%d).", f.odReq, f.spotReq, f.total))
	}
	var ok bool
	f.spotAlloc = allocLowestPrice
	if f.spotAllocRaw != "" {
		if f.spotAlloc, ok = normAlloc(f.spotAllocRaw); !ok || f.spotAlloc != f.spotAllocRaw || f.spotAlloc == allocPrioritized {
			return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for SpotOptions.AllocationStrategy. Valid values: lowest-price, diversified, capacity-optimized, capacity-optimized-prioritized, price-capacity-optimized", f.spotAllocRaw))
		}
	}
	f.odAlloc = allocLowestPrice
	switch f.odAllocRaw {
	case "":
	case "lowest-price", "prioritized":
		f.odAlloc, _ = normAlloc(f.odAllocRaw)
	default:
		return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for OnDemandOptions.AllocationStrategy. Valid values: lowest-price, prioritized", f.odAllocRaw))
	}
	if f.poolsToUse < 1 {
		return nil, errInvalidParameterValue("InstancePoolsToUseCount must be at least 1.")
	}
	if err := fleetInterruptionBehavior(p.str("SpotOptions.InstanceInterruptionBehavior"), f.typ); err != nil {
		return nil, err
	}
	switch f.excessPolicy {
	case "":
		f.excessPolicy = "termination"
	case "termination", "no-termination":
	default:
		return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for ExcessCapacityTerminationPolicy. Valid values: termination, no-termination", f.excessPolicy))
	}
	if !f.validUntil.IsZero() && !f.validUntil.After(c.now) {
		return nil, errInvalidParameterValue("ValidUntil must be in the future.")
	}
	for _, ts := range p.structs("TagSpecification") {
		rt := ts.str("ResourceType")
		tags := ts.tags("Tag")
		switch rt {
		case "fleet":
			maps.Copy(f.tags, tags)
		case "instance":
			if f.typ != "instant" {
				return nil, errInvalidParameterValue("The resource type 'instance' is only supported in TagSpecifications for fleets of type 'instant'. To tag instances launched by fleets of type 'request' or 'maintain', specify the tags in the launch template.")
			}
			maps.Copy(f.instanceTags, tags)
		case "":
			return nil, errMissingParameter(fmt.Sprintf("TagSpecification.%s.ResourceType", "N"))
		default:
			// volumes and other resources are accepted and ignored
		}
	}
	if err := c.err(); err != nil {
		return nil, err
	}

	configs := p.structs("LaunchTemplateConfigs")
	if len(configs) == 0 {
		return nil, errMissingParameter("LaunchTemplateConfigs")
	}
	for i, lc := range configs {
		spec, overridden, err := f.addLTConfig(r, lc, i, "LaunchTemplateConfigs", "MaxPrice")
		if err != nil {
			return nil, err
		}
		cfg := fleetLTConfigXML{LaunchTemplateSpecification: spec}
		for _, pool := range overridden {
			if o := pool.overridesXML(false); o != nil { // an override with nothing the region models echoes as none
				cfg.Overrides = append(cfg.Overrides, *o)
			}
		}
		f.ltConfigs = append(f.ltConfigs, cfg)
	}

	if f.typ != "instant" {
		if err := checkNoAlias(f.pools, "an EC2 Fleet of type "+f.typ); err != nil {
			return nil, err
		}
	}
	if p.boolOr("DryRun", false) {
		// Allowed (pickFault refused Denied actions) and the request, its
		// launch templates and subnets check out: nothing is created
		// (doc.go, "Dry runs").
		return nil, errDryRun()
	}
	s.fleets[f.id] = f
	s.order = append(s.order, f)
	out := &createFleetResult{FleetID: f.id}
	switch {
	case f.typ == "instant":
		f.state = fleetActive
		od, sp := f.targets()
		var fails []fillFailure
		for _, spot := range []bool{false, true} {
			target := od
			if spot {
				target = sp
			}
			if target <= 0 {
				continue
			}
			res := s.fillFleet(f, spot, float64(target))
			out.Instances = append(out.Instances, groupLaunched(res, spot)...)
			fails = append(fails, res.fails...)
		}
		out.Errors = fleetErrorsXML(fails)
		f.instantSet = out.Instances
		f.errs = fails
		// An instant fleet is done when CreateFleet returns, whatever it
		// launched: ActivityStatus fulfilled; what it could not launch is
		// in Errors (supported only for instant fleets).
		f.activity = "fulfilled"
	case f.validFrom.After(c.now):
		f.setState(r, fleetSubmitted)
		f.activity = "pending_fulfillment"
	default:
		f.setState(r, fleetSubmitted)
		f.setState(r, fleetActive)
		s.topUp(f)
	}
	r.remember("CreateFleet", token, fp, out)
	r.log.Debug("fleet created", "fleet", f.id, "type", f.typ, "target", f.total)
	return out, nil
}

// fillFleet launches need units of one lifecycle for a fleet.
func (s *fleetService) fillFleet(f *ec2Fleet, spot bool, need float64) fillResult {
	extra := maps.Clone(f.instanceTags)
	extra[FleetIDTag] = f.id
	return f.launch(s.r, spot, need, extra, "")
}

// topUp brings a request or maintain fleet towards its target.
func (s *fleetService) topUp(f *ec2Fleet) {
	od, sp := f.targets()
	f.topUp(s.r, od, sp, func(spot bool, need float64) fillResult { return s.fillFleet(f, spot, need) })
}

// tick activates submitted fleets, expires fleets past ValidUntil, tops up
// request and maintain fleets and settles deleted ones.
func (s *fleetService) tick(now time.Time) {
	for _, f := range s.order {
		if f.typ == "instant" && f.state != fleetDeletedTerminating {
			continue
		}
		if _, topUp := f.advance(s.r, now); topUp {
			s.topUp(f)
		}
	}
}

func (s *fleetService) lookup(id string) (*ec2Fleet, error) {
	if !strings.HasPrefix(id, "fleet-") {
		return nil, &APIError{Code: "InvalidFleetId.Malformed", Message: fmt.Sprintf("The fleet ID '%s' is malformed.", id), Status: 400}
	}
	f := s.fleets[id]
	if f == nil || !s.r.visible(f.visibleAt) {
		return nil, &APIError{Code: "InvalidFleetId.NotFound", Message: fmt.Sprintf("The fleet ID '%s' does not exist.", id), Status: 400}
	}
	return f, nil
}

type describeFleetsResult struct {
	Fleets    []fleetDataXML `xml:"fleetSet>item"`
	NextToken string         `xml:"nextToken,omitempty"`
}

func (s *fleetService) describeFleets(c *call) (any, error) {
	ids := c.p.list("FleetId")
	filters := c.p.filters()
	token := c.p.str("NextToken")
	if err := c.err(); err != nil {
		return nil, err
	}
	maxResults, err := maxResults(c.p, 1, 1000)
	if err != nil {
		return nil, err
	}
	sel, err := selectIDs(ids, s.order, s.lookup)
	if err != nil {
		return nil, err
	}
	var matched []*ec2Fleet
	for _, f := range sel {
		if !s.r.visible(f.visibleAt) {
			continue
		}
		ok, err := fleetMatches(f, filters)
		if err != nil {
			return nil, err
		}
		if ok {
			matched = append(matched, f)
		}
	}
	start, end, next, err := pageBounds(len(matched), maxResults, token)
	if err != nil {
		return nil, err
	}
	out := &describeFleetsResult{NextToken: next}
	for _, f := range matched[start:end] {
		out.Fleets = append(out.Fleets, s.fleetXML(f))
	}
	return out, nil
}

func fleetMatches(f *ec2Fleet, filters []filter) (bool, error) {
	for _, fl := range filters {
		var v string
		switch {
		case fl.name == "fleet-state":
			v = f.state
		case fl.name == "type":
			v = f.typ
		case fl.name == "activity-status":
			v = f.activity
		case fl.name == "excess-capacity-termination-policy":
			v = f.excessPolicy
		case fl.name == "replace-unhealthy-instances":
			v = fmt.Sprint(f.replaceUnhealthy)
		case fl.name == "tag-key":
			found := false
			for _, want := range fl.values {
				if _, ok := f.tags[want]; ok {
					found = true
				}
			}
			if !found {
				return false, nil
			}
			continue
		case strings.HasPrefix(fl.name, "tag:"):
			tv, ok := f.tags[fl.name[4:]]
			if !ok {
				return false, nil
			}
			v = tv
		default:
			return false, errInvalidParameterValue(fmt.Sprintf("The filter '%s' is invalid", fl.name))
		}
		if !contains(fl.values, v) {
			return false, nil
		}
	}
	return true, nil
}

func (s *fleetService) fleetXML(f *ec2Fleet) fleetDataXML {
	od, sp := f.targets()
	x := fleetDataXML{
		ActivityStatus:                  f.activity,
		ClientToken:                     f.clientToken,
		CreateTime:                      ts(f.created),
		ExcessCapacityTerminationPolicy: f.excessPolicy,
		FleetID:                         f.id,
		FleetState:                      f.state,
		FulfilledCapacity:               f.m.total(),
		FulfilledOnDemandCapacity:       f.m.liveUnits[0],
		LaunchTemplateConfigs:           f.ltConfigs,
		OnDemandOptions:                 onDemandOptionsXML{AllocationStrategy: f.odAlloc},
		ReplaceUnhealthyInstances:       f.replaceUnhealthy,
		SpotOptions:                     spotOptionsXML{AllocationStrategy: f.spotAlloc, InstancePoolsToUseCount: f.poolsToUse},
		Tags:                            tagsXML(f.tags),
		TargetCapacitySpecification: targetCapXML{TotalTargetCapacity: f.total, OnDemandTargetCapacity: od, SpotTargetCapacity: sp,
			DefaultTargetCapacityType: f.defaultType, TargetCapacityUnitType: f.unitType},
		TerminateInstancesWithExpiration: f.termWithExpiration,
		Type:                             f.typ,
		ValidFrom:                        ts(f.validFrom),
		ValidUntil:                       ts(f.validUntil),
	}
	if f.typ == "instant" {
		// Errors and Instances: "Supported only for fleets of type
		// instant" (API Reference, FleetData); request and maintain
		// fleets report launch errors in DescribeFleetHistory.
		x.Instances = f.instantSet
		x.Errors = fleetErrorsXML(f.errs)
	}
	return x
}

type describeFleetInstancesResult struct {
	FleetID   string              `xml:"fleetId"`
	Active    []activeInstanceXML `xml:"activeInstanceSet>item"`
	NextToken string              `xml:"nextToken,omitempty"`
}

func (s *fleetService) describeFleetInstances(c *call) (any, error) {
	id := c.p.reqStr("FleetId")
	maxResults := c.p.intOr("MaxResults", 0)
	token := c.p.str("NextToken")
	if err := c.err(); err != nil {
		return nil, err
	}
	f, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	active, next, err := liveInstancesPage(&f.m, maxResults, token)
	if err != nil {
		return nil, err
	}
	return &describeFleetInstancesResult{FleetID: f.id, Active: active, NextToken: next}, nil
}

type returnResult struct {
	Return bool `xml:"return"`
}

func (s *fleetService) modifyFleet(c *call) (any, error) {
	p := c.p
	id := p.reqStr("FleetId")
	policy := p.str("ExcessCapacityTerminationPolicy")
	tcs := p.sub("TargetCapacitySpecification")
	hasTotal := tcs.has("TotalTargetCapacity")
	total := tcs.intOr("TotalTargetCapacity", 0)
	odSet, spotSet := tcs.has("OnDemandTargetCapacity"), tcs.has("SpotTargetCapacity")
	od := tcs.intOr("OnDemandTargetCapacity", 0)
	sp := tcs.intOr("SpotTargetCapacity", 0)
	if err := c.err(); err != nil {
		return nil, err
	}
	f, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	if f.typ != "maintain" {
		return nil, &APIError{Code: "UnsupportedOperation", Message: fmt.Sprintf("Fleet %s is of type '%s'; you can only modify an EC2 Fleet of type 'maintain'.", f.id, f.typ), Status: 400}
	}
	if f.state != fleetActive && f.state != fleetSubmitted && f.state != fleetModifying {
		return nil, &APIError{Code: "IncorrectState", Message: fmt.Sprintf("The fleet %s is in state %s and cannot be modified.", f.id, f.state), Status: 400}
	}
	switch policy {
	case "", "termination", "no-termination":
	default:
		return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for ExcessCapacityTerminationPolicy. Valid values: termination, no-termination", policy))
	}
	if !hasTotal && !odSet && !spotSet {
		return nil, errMissingParameter("TargetCapacitySpecification.TotalTargetCapacity")
	}
	if hasTotal {
		if total < 0 {
			return nil, errInvalidParameterValue("TotalTargetCapacity must not be negative.")
		}
		f.total = total
	}
	if odSet {
		f.odSet, f.odReq = true, od
	}
	if spotSet {
		f.spotSet, f.spotReq = true, sp
	}
	if policy != "" {
		f.excessPolicy = policy
	}
	odT, spT := f.targets()
	f.modified(s.r, c.now, odT, spT, f.excessPolicy == "termination")
	return &returnResult{Return: true}, nil
}

type deleteFleetSuccessXML struct {
	CurrentFleetState  string `xml:"currentFleetState"`
	PreviousFleetState string `xml:"previousFleetState"`
	FleetID            string `xml:"fleetId"`
}

type deleteFleetErrorXML struct {
	Error struct {
		Code    string `xml:"code"`
		Message string `xml:"message"`
	} `xml:"error"`
	FleetID string `xml:"fleetId"`
}

type deleteFleetsResult struct {
	Successful   []deleteFleetSuccessXML `xml:"successfulFleetDeletionSet>item"`
	Unsuccessful []deleteFleetErrorXML   `xml:"unsuccessfulFleetDeletionSet>item"`
}

func (s *fleetService) deleteFleets(c *call) (any, error) {
	ids := c.p.list("FleetId")
	c.p.reqStr("TerminateInstances")
	terminate := c.p.boolOr("TerminateInstances", true)
	if err := c.err(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errMissingParameter("FleetId")
	}
	out := &deleteFleetsResult{}
	fail := func(id, code, msg string) {
		var e deleteFleetErrorXML
		e.FleetID, e.Error.Code, e.Error.Message = id, code, msg
		out.Unsuccessful = append(out.Unsuccessful, e)
	}
	for _, id := range ids {
		f, err := s.lookup(id)
		if err != nil {
			code := "fleetIdDoesNotExist"
			if strings.HasSuffix(err.(*APIError).Code, "Malformed") {
				code = "fleetIdMalformed"
			}
			fail(id, code, err.(*APIError).Message)
			continue
		}
		switch {
		case f.ended():
			fail(id, "fleetNotInDeletableState", fmt.Sprintf("The fleet %s is already in state %s.", id, f.state))
			continue
		case f.typ == "instant" && !terminate:
			fail(id, "fleetNotInDeletableState", "NoTerminateInstances is not supported for fleets of type 'instant': a deleted instant fleet with running instances is not supported.")
			continue
		}
		prev := f.state
		f.end(s.r, terminate)
		out.Successful = append(out.Successful, deleteFleetSuccessXML{CurrentFleetState: f.state, PreviousFleetState: prev, FleetID: id})
	}
	return out, nil
}

// fleetInterruptionBehavior checks an EC2 Fleet's or Spot Fleet's
// InstanceInterruptionBehavior. Stop and hibernate need a maintain fleet
// (EC2 User Guide, "Behavior of Spot Instance interruptions"); awssim's
// fleets do not model them (their instances are always terminated when
// interrupted), so it refuses them rather than ignoring them.
func fleetInterruptionBehavior(b, fleetType string) error {
	switch b {
	case "", "terminate":
		return nil
	case "stop", "hibernate":
		if fleetType != "maintain" {
			return errInvalidParameterCombination(fmt.Sprintf("InstanceInterruptionBehavior %s is only supported for fleets of type maintain.", b))
		}
		return &APIError{Code: "Unsupported", Message: "The simulated region does not model fleets that stop or hibernate interrupted Spot Instances.", Status: 400}
	}
	return errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for InstanceInterruptionBehavior. Valid values: hibernate, stop, terminate", b))
}
