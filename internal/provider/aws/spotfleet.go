package awsprov

import (
	"context"
	"regexp"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// Spot Fleet.
//
// RequestSpotFleet with ohfp's launch template and the types × subnets
// overrides, Type request (maintain only when fleetType says so),
// ValidUntil = now + spotFleetRequestExpiry minutes (default 30) and
// TerminateInstancesWithExpiration false: when the request expires, Poll
// reports it Closed and what has arrived stays.
//
// priceType heterogeneous, as IBM defines it (Spot first; what Spot has not
// filled near expiry is requested on-demand): the request carries the
// percentOnDemand share (if any) as OnDemandTargetCapacity, on vmTypes,
// and the rest as Spot; vmTypesOnDemand are not in the request's overrides
// but kept for the on-demand fallback. When
// Poll reports it Closed (expired, cancelled, failed) with Fulfilled below
// Target, the core Caps it (keepUnits = Fulfilled) and launches the
// shortfall (Target - Fulfilled units) again with Planner.Fallback.

// DefaultSpotFleetExpiry is how long a Spot Fleet request stays valid when
// the template does not say (spotFleetRequestExpiry, minutes).
const DefaultSpotFleetExpiry = 30

var spotFleetIDPattern = regexp.MustCompile(`\bsfr-[0-9a-zA-Z-]+\b`)

// OnDemandSpec is a launch for what a heterogeneous
// Spot Fleet request did not fill before it closed: a copy of spec for
// units units, through RunInstances (single type) or an instant EC2 Fleet
// (several types), on-demand only, with vmTypesOnDemand as the types when
// the template gives them, and its own request id suffix and client token
// (attempt distinguishes retries of the fallback itself).
func OnDemandSpec(spec provider.LaunchSpec, units int, attempt string) provider.LaunchSpec {
	out := spec
	t := spec.Template
	t.PriceType = template.PriceOnDemand
	t.PercentOnDemand = 0
	t.AllocationStrat, t.PoolsCount, t.MaxSpotPrice = "", 0, 0
	if len(t.VMTypesOnDemand) > 0 {
		t.VMTypes, t.VMType = t.VMTypesOnDemand, ""
	}
	t.VMTypesOnDemand = nil
	if len(t.InstanceTypes()) > 1 {
		t.ProviderAPI, t.FleetType = template.APIEC2Fleet, template.FleetInstant
	} else {
		t.ProviderAPI, t.FleetType = template.APIRunInstances, ""
	}
	out.Template = t
	out.Units = units
	out.RequestID = spec.RequestID + "-od" + attempt
	if spec.ClientToken != "" {
		out.ClientToken = deriveToken("od"+attempt, spec.ClientToken)
	}
	return out
}

// launchSpotFleet launches through RequestSpotFleet. The answer has the
// request id only: the engine finds the instances by tag and follows the
// request with Poll.
func (p *Provider) launchSpotFleet(ctx context.Context, spec provider.LaunchSpec) (provider.LaunchResult, error) {
	t := &spec.Template
	if spec.Units <= 0 {
		return provider.LaunchResult{}, fatal(t, "%d units asked: must be at least 1", spec.Units)
	}
	if t.FleetRole == "" {
		return provider.LaunchResult{}, fatal(t, "no fleetRole: a Spot Fleet needs the ARN of an IAM role it can launch with")
	}
	lt, err := p.ensureLaunchTemplate(ctx, spec)
	if err != nil {
		return provider.LaunchResult{}, err
	}
	cfg, err := p.spotFleetConfig(spec, lt)
	if err != nil {
		return provider.LaunchResult{}, err
	}
	out, err := p.fleet.RequestSpotFleet(ctx, &ec2.RequestSpotFleetInput{SpotFleetRequestConfig: cfg})
	if err != nil {
		return provider.LaunchResult{}, classify("RequestSpotFleet", err)
	}
	res := provider.LaunchResult{Handle: aws.ToString(out.SpotFleetRequestId)}
	p.log.Info("RequestSpotFleet", "request_id", spec.RequestID, "template_id", t.TemplateID, "spot_fleet_request", res.Handle,
		"type", cfg.Type, "units", spec.Units, "valid_until", aws.ToTime(cfg.ValidUntil))
	return res, nil
}

// spotFleetConfig builds the RequestSpotFleet configuration of spec.
func (p *Provider) spotFleetConfig(spec provider.LaunchSpec, lt ltRef) (*types.SpotFleetRequestConfigData, error) {
	t := &spec.Template
	ovs, err := overrides(t, false)
	if err != nil {
		return nil, err
	}
	_, sfSpot, _, err := spotStrategy(t)
	if err != nil {
		return nil, err
	}
	_, prioritized := priorities(t, false)
	_, sfOD, _, err := onDemandStrategy(t, prioritized)
	if err != nil {
		return nil, err
	}
	typ := types.FleetTypeRequest
	switch t.FleetType {
	case template.FleetMaintain:
		typ = types.FleetTypeMaintain
	case "", template.FleetRequest, template.FleetInstant:
	default:
		return nil, fatal(t, "fleetType %q: use request or maintain", t.FleetType)
	}
	od := onDemandUnits(t, spec.Units)
	c := types.LaunchTemplateConfig{LaunchTemplateSpecification: &types.FleetLaunchTemplateSpecification{
		LaunchTemplateId: aws.String(lt.ID), Version: aws.String(lt.Version)}}
	for _, o := range ovs {
		r := types.LaunchTemplateOverrides{InstanceType: types.InstanceType(o.Type), WeightedCapacity: aws.Float64(o.Weight), Priority: o.Priority}
		if o.Subnet != "" {
			r.SubnetId = aws.String(o.Subnet)
		}
		if t.MaxSpotPrice > 0 && od < spec.Units {
			r.SpotPrice = aws.String(priceString(t.MaxSpotPrice))
		}
		c.Overrides = append(c.Overrides, r)
	}
	cfg := &types.SpotFleetRequestConfigData{
		IamFleetRole:                     aws.String(t.FleetRole),
		LaunchTemplateConfigs:            []types.LaunchTemplateConfig{c},
		TargetCapacity:                   aws.Int32(int32(spec.Units)),
		AllocationStrategy:               types.AllocationStrategy(sfSpot),
		OnDemandAllocationStrategy:       types.OnDemandAllocationStrategy(sfOD),
		Type:                             typ,
		ValidUntil:                       p.validUntil(spec, DefaultSpotFleetExpiry),
		TerminateInstancesWithExpiration: aws.Bool(false),
		InstanceInterruptionBehavior:     types.InstanceInterruptionBehaviorTerminate,
	}
	if od > 0 {
		cfg.OnDemandTargetCapacity = aws.Int32(int32(od))
	}
	if sfSpot == string(types.AllocationStrategyLowestPrice) && t.PoolsCount > 0 {
		cfg.InstancePoolsToUseCount = aws.Int32(int32(t.PoolsCount))
	}
	if typ == types.FleetTypeMaintain {
		cfg.ExcessCapacityTerminationPolicy = types.ExcessCapacityTerminationPolicyNoTermination
	}
	if tags := ec2Tags(spec.Tags); len(tags) > 0 {
		cfg.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeSpotFleetRequest, Tags: tags}}
	}
	if spec.ClientToken != "" {
		cfg.ClientToken = aws.String(spec.ClientToken)
	}
	return cfg, nil
}

// describeSpotFleets describes Spot Fleet requests by id, fleetBatchSize a
// call, paginated; ids EC2 does not know are left out.
func (p *Provider) describeSpotFleets(ctx context.Context, reqIDs []string) ([]types.SpotFleetRequestConfig, error) {
	return describeByID(ctx, p, "DescribeSpotFleetRequests", reqIDs, spotFleetIDPattern,
		[]string{"InvalidSpotFleetRequestId.NotFound", "InvalidSpotFleetRequestId.Malformed"},
		func(ids []string, token *string) ([]types.SpotFleetRequestConfig, *string, error) {
			page, err := p.fleet.DescribeSpotFleetRequests(ctx, &ec2.DescribeSpotFleetRequestsInput{SpotFleetRequestIds: ids, NextToken: token})
			if err != nil {
				return nil, nil, err
			}
			return page.SpotFleetRequestConfigs, page.NextToken, nil
		})
}

func sfrClosed(s types.BatchState) bool {
	switch s {
	case types.BatchStateCancelled, types.BatchStateCancelledRunning, types.BatchStateCancelledTerminatingInstances, types.BatchStateFailed:
		return true
	}
	return false
}

func (p *Provider) pollSpotFleets(ctx context.Context, reqIDs []string) (map[string]provider.FleetStatus, error) {
	reqs, err := p.describeSpotFleets(ctx, reqIDs)
	if err != nil {
		return nil, err
	}
	out := notFoundStatuses(reqIDs)
	now := p.clock.Now()
	for _, r := range reqs {
		id := aws.ToString(r.SpotFleetRequestId)
		if _, asked := out[id]; !asked {
			continue
		}
		st := provider.FleetStatus{Handle: id}
		cfg := r.SpotFleetRequestConfig
		if cfg == nil {
			cfg = &types.SpotFleetRequestConfigData{}
		}
		st.Target = int(aws.ToInt32(cfg.TargetCapacity))
		st.Fulfilled = units(cfg.FulfilledCapacity)
		_, capped := tagValueOf(r.Tags, TagCapped)
		switch {
		case r.SpotFleetRequestState == types.BatchStateCancelled:
			// Cancelled with no instance left running.
			st.Gone, st.Closed = true, true
		case sfrClosed(r.SpotFleetRequestState), capped,
			cfg.Type != types.FleetTypeMaintain && r.ActivityStatus == types.ActivityStatusFulfilled,
			cfg.ValidUntil != nil && !now.Before(*cfg.ValidUntil):
			st.Closed = true
		}
		// Launch errors are only in the history, up to 30 s late: read it
		// while the request is in error or short.
		if !st.Gone && (r.ActivityStatus == types.ActivityStatusError || st.Fulfilled < st.Target && !st.Closed) {
			st.Errors = p.spotFleetHistoryErrors(ctx, id, r.CreateTime, r.ActivityStatus == types.ActivityStatusError)
		}
		out[id] = st
	}
	return out, nil
}

// spotFleetLaunchSubTypes are the information events of a Spot Fleet
// history that say a launch specification failed (API Reference,
// EventInformation); error events are all taken.
var spotFleetLaunchSubTypes = map[string]bool{"launchSpecTemporarilyBlacklisted": true, "launchSpecUnusable": true}

// spotFleetHistoryErrors reads the error events, and the information
// events of failed launch specifications, of a Spot Fleet request
// (DescribeSpotFleetRequestHistory takes one request; events come up to
// 30 s late), oldest first.
func (p *Provider) spotFleetHistoryErrors(ctx context.Context, id string, since *time.Time, inError bool) []string {
	start := aws.ToTime(since)
	if start.IsZero() {
		start = p.clock.Now().Add(-48 * time.Hour)
	}
	var errs []string
	in := &ec2.DescribeSpotFleetRequestHistoryInput{SpotFleetRequestId: aws.String(id), StartTime: aws.Time(start)}
	for range historyPages {
		h, err := p.fleet.DescribeSpotFleetRequestHistory(ctx, in)
		if err != nil {
			p.log.Debug("DescribeSpotFleetRequestHistory failed", "spot_fleet_request", id, "err", classify("DescribeSpotFleetRequestHistory", err))
			break
		}
		errs = append(errs, errorsOf(h.HistoryRecords, func(r types.HistoryRecord) (string, string) {
			ei := r.EventInformation
			if ei == nil || r.EventType != types.EventTypeError && !(r.EventType == types.EventTypeInformation && spotFleetLaunchSubTypes[aws.ToString(ei.EventSubType)]) {
				return "", ""
			}
			return aws.ToString(ei.EventSubType), aws.ToString(ei.EventDescription)
		})...)
		if aws.ToString(h.NextToken) == "" {
			break
		}
		in.NextToken = h.NextToken
	}
	if len(errs) == 0 && inError {
		return []string{"SpotFleetError: Spot Fleet request " + id + " reports activity status error"}
	}
	return slices.Compact(errs)
}

func (p *Provider) oneSpotFleet(ctx context.Context, id string) (types.SpotFleetRequestConfig, bool, error) {
	rs, err := p.describeSpotFleets(ctx, []string{id})
	if err != nil {
		return types.SpotFleetRequestConfig{}, false, err
	}
	for _, r := range rs {
		if aws.ToString(r.SpotFleetRequestId) == id && r.SpotFleetRequestConfig != nil {
			return r, true, nil
		}
	}
	return types.SpotFleetRequestConfig{}, false, nil
}

func spotFleetWeights(c *types.SpotFleetRequestConfigData) map[string]float64 {
	w := map[string]float64{}
	for _, lc := range c.LaunchTemplateConfigs {
		for _, o := range lc.Overrides {
			if o.WeightedCapacity != nil {
				w[string(o.InstanceType)] = *o.WeightedCapacity
			}
		}
	}
	return w
}

func (p *Provider) releaseSpotFleet(ctx context.Context, id string, instanceIDs []string, units int) error {
	r, ok, err := p.oneSpotFleet(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return errHandleNotFound("ReleaseSpotFleet", id)
	}
	if ok && r.SpotFleetRequestConfig.Type == types.FleetTypeMaintain && !sfrClosed(r.SpotFleetRequestState) {
		if err := p.lowerTarget(ctx, instanceIDs, units, spotFleetWeights(r.SpotFleetRequestConfig),
			func(delta, od int) error { return p.setSpotFleetTarget(ctx, r, delta, od) }); err != nil {
			return err
		}
	}
	return p.Terminate(ctx, instanceIDs)
}

// setSpotFleetTarget is setFleetTarget for a maintain Spot Fleet request.
func (p *Provider) setSpotFleetTarget(ctx context.Context, r types.SpotFleetRequestConfig, delta, odLower int) error {
	c := r.SpotFleetRequestConfig
	cur := int(aws.ToInt32(c.TargetCapacity))
	target := newTarget(cur, delta)
	if target == cur {
		return nil
	}
	in := &ec2.ModifySpotFleetRequestInput{SpotFleetRequestId: r.SpotFleetRequestId, TargetCapacity: aws.Int32(int32(target)),
		ExcessCapacityTerminationPolicy: types.ExcessCapacityTerminationPolicyNoTermination}
	if cur := c.OnDemandTargetCapacity; cur != nil {
		if od := newODTarget(int(*cur), odLower, target); od != int(*cur) {
			in.OnDemandTargetCapacity = aws.Int32(int32(od))
		}
	}
	if _, err := p.fleet.ModifySpotFleetRequest(ctx, in); err != nil {
		return classify("ModifySpotFleetRequest", err)
	}
	p.log.Info("ModifySpotFleetRequest", "spot_fleet_request", aws.ToString(r.SpotFleetRequestId), "from", cur, "to", target)
	return nil
}

func (p *Provider) capSpotFleet(ctx context.Context, id string, keep int) error {
	r, ok, err := p.oneSpotFleet(ctx, id)
	if err != nil || !ok || sfrClosed(r.SpotFleetRequestState) {
		return err
	}
	if r.SpotFleetRequestConfig.Type == types.FleetTypeMaintain {
		if err := p.setSpotFleetTarget(ctx, r, keep, 0); err != nil {
			return err
		}
		p.tagCapped(ctx, id)
		return nil
	}
	// A request-type Spot Fleet cannot be modified: cancel it, keeping its
	// instances.
	return p.cancelSpotFleet(ctx, id, false)
}

// cancelSpotFleet cancels one Spot Fleet request; one EC2 does not know or
// has already cancelled is no error.
func (p *Provider) cancelSpotFleet(ctx context.Context, id string, terminate bool) error {
	out, err := p.fleet.CancelSpotFleetRequests(ctx, &ec2.CancelSpotFleetRequestsInput{
		SpotFleetRequestIds: []string{id}, TerminateInstances: aws.Bool(terminate)})
	switch code := apiCode(err); {
	case code == "InvalidSpotFleetRequestId.NotFound", code == "InvalidSpotFleetRequestId.Malformed":
		return nil
	case err != nil:
		return classify("CancelSpotFleetRequests", err)
	}
	for _, u := range out.UnsuccessfulFleetRequests {
		if u.Error == nil {
			continue
		}
		switch u.Error.Code {
		case types.CancelBatchErrorCodeFleetRequestIdDoesNotExist, types.CancelBatchErrorCodeFleetRequestNotInCancellableState:
		default:
			return &provider.Error{Op: "CancelSpotFleetRequests", Code: string(u.Error.Code), Message: aws.ToString(u.Error.Message), Kind: provider.Fatal}
		}
	}
	p.log.Info("CancelSpotFleetRequests", "spot_fleet_request", id, "terminate_instances", terminate)
	return nil
}

func (p *Provider) deleteSpotFleet(ctx context.Context, id string) error {
	r, ok, err := p.oneSpotFleet(ctx, id)
	if err != nil || !ok {
		return err
	}
	if err := p.cancelSpotFleet(ctx, id, true); err != nil {
		return err
	}
	var specs []*types.FleetLaunchTemplateSpecification
	for _, c := range r.SpotFleetRequestConfig.LaunchTemplateConfigs {
		specs = append(specs, c.LaunchTemplateSpecification)
	}
	return p.deleteLeftovers(ctx, awsSpotFleetTag, id, specs, r.Tags)
}
