package awssim

import (
	"fmt"
	"maps"
	"strings"
	"time"
)

// Spot Fleet: RequestSpotFleet, DescribeSpotFleetRequests,
// DescribeSpotFleetInstances, ModifySpotFleetRequest,
// CancelSpotFleetRequests.

// SpotFleetIDTag is the tag Spot Fleet puts on the instances it launches.
const SpotFleetIDTag = "aws:ec2spot:fleet-request-id"

// Spot Fleet request states (BatchState).
const (
	sfrSubmitted   = "submitted"
	sfrActive      = "active"
	sfrModifying   = "modifying"
	sfrCancelled   = "cancelled"
	sfrCancelledRn = "cancelled_running"
	sfrCancelledTm = "cancelled_terminating"
)

type spotFleet struct {
	fleetRun // typ: request | maintain
	created  time.Time

	iamFleetRole     string
	target, odTarget int
	allocRaw         string
	odAllocRw        string
	spotPrice        string
	excessPolicy     string
	replaceUnhealthy bool
	clientToken      string
	tags             map[string]string

	specsXML  []spotFleetLaunchSpecXML
	ltConfigs []spotFleetLTConfigXML
}

func (f *spotFleet) targets() (od, spot int) {
	od = min(f.odTarget, f.target)
	return od, f.target - od
}

type spotFleetService struct {
	r      *Region
	fleets map[string]*spotFleet
	order  []*spotFleet
}

func (r *Region) registerSpotFleetActions() {
	s := &spotFleetService{r: r, fleets: map[string]*spotFleet{}}
	r.ec2["RequestSpotFleet"] = s.requestSpotFleet
	r.ec2["DescribeSpotFleetRequests"] = s.describeSpotFleetRequests
	r.ec2["DescribeSpotFleetInstances"] = s.describeSpotFleetInstances
	r.ec2["ModifySpotFleetRequest"] = s.modifySpotFleetRequest
	r.ec2["CancelSpotFleetRequests"] = s.cancelSpotFleetRequests
	r.ec2["DescribeSpotFleetRequestHistory"] = s.describeSpotFleetRequestHistory
	r.onInstanceGone = append(r.onInstanceGone, func(in *instance, _ time.Time) {
		if f := s.fleets[in.owner]; f != nil && f.m.gone(in) {
			f.record(r, f.ev.instance, "terminated", "", in.id)
		}
	})
	r.tagLookups["sfr-"] = func(id string) (map[string]string, error) {
		f, err := s.lookup(id)
		if err != nil {
			return nil, err
		}
		return f.tags, nil
	}
	r.tickers = append(r.tickers, s.tick)
}

type requestSpotFleetResult struct {
	SpotFleetRequestID string `xml:"spotFleetRequestId"`
}

func (s *spotFleetService) requestSpotFleet(c *call) (any, error) {
	r := s.r
	if !c.p.has("SpotFleetRequestConfig") {
		return nil, errMissingParameter("SpotFleetRequestConfig")
	}
	p := c.p.sub("SpotFleetRequestConfig")
	token := p.str("ClientToken")
	fp := c.p.fingerprint("SpotFleetRequestConfig.ClientToken")
	if res, found, err := r.idempotent("RequestSpotFleet", token, fp); err != nil {
		return nil, err
	} else if found {
		return res, nil
	}
	f := &spotFleet{fleetRun: fleetRun{id: r.newUUIDID("sfr-"), st: &spotFleetStates, ev: &spotFleetEvents, visibleAt: r.visibleFrom()}, created: c.now, clientToken: token, tags: map[string]string{}}
	f.iamFleetRole = p.reqStr("IamFleetRole")
	f.target = p.reqInt("TargetCapacity")
	f.odTarget = p.intOr("OnDemandTargetCapacity", 0)
	f.allocRaw = p.str("AllocationStrategy")
	f.odAllocRw = p.str("OnDemandAllocationStrategy")
	f.poolsToUse = p.intOr("InstancePoolsToUseCount", 1)
	f.spotPrice = p.str("SpotPrice")
	f.excessPolicy = p.str("ExcessCapacityTerminationPolicy")
	f.typ = p.str("Type")
	f.validFrom = p.timeOr("ValidFrom")
	f.validUntil = p.timeOr("ValidUntil")
	f.termWithExpiration = p.boolOr("TerminateInstancesWithExpiration", false)
	f.replaceUnhealthy = p.boolOr("ReplaceUnhealthyInstances", false)
	if err := c.err(); err != nil {
		return nil, err
	}
	if f.typ == "" {
		f.typ = "maintain"
	}
	if f.typ != "request" && f.typ != "maintain" {
		return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for Type. Valid values: request, maintain", f.typ))
	}
	if f.target < 0 || f.odTarget < 0 {
		return nil, errInvalidParameterValue("Target capacities must not be negative.")
	}
	if err := fleetInterruptionBehavior(p.str("InstanceInterruptionBehavior"), f.typ); err != nil {
		return nil, err
	}
	if f.odTarget > f.target {
		return nil, errInvalidParameterValue(fmt.Sprintf("OnDemandTargetCapacity (%d) cannot exceed TargetCapacity (%d).", f.odTarget, f.target))
	}
	var ok bool
	f.spotAlloc = allocLowestPrice
	if f.allocRaw != "" {
		switch f.allocRaw {
		case "lowestPrice", "diversified", "capacityOptimized", "capacityOptimizedPrioritized", "priceCapacityOptimized":
			f.spotAlloc, ok = normAlloc(f.allocRaw)
		}
		if !ok {
			return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for AllocationStrategy. Valid values: lowestPrice, diversified, capacityOptimized, capacityOptimizedPrioritized, priceCapacityOptimized", f.allocRaw))
		}
	}
	f.odAlloc = allocLowestPrice
	switch f.odAllocRw {
	case "", "lowestPrice":
	case "prioritized":
		f.odAlloc = allocPrioritized
	default:
		return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for OnDemandAllocationStrategy. Valid values: lowestPrice, prioritized", f.odAllocRw))
	}
	if f.poolsToUse < 1 {
		return nil, errInvalidParameterValue("InstancePoolsToUseCount must be at least 1.")
	}
	switch f.excessPolicy {
	case "", "default", "noTermination":
	default:
		return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for ExcessCapacityTerminationPolicy. Valid values: default, noTermination", f.excessPolicy))
	}
	if !f.validUntil.IsZero() && !f.validUntil.After(c.now) {
		return nil, errInvalidParameterValue("ValidUntil must be in the future.")
	}
	for _, ts := range p.structs("TagSpecification") {
		if rt := ts.str("ResourceType"); rt != "spot-fleet-request" {
			return nil, errInvalidParameterValue(fmt.Sprintf("The resource type '%s' is not supported in TagSpecification of a Spot Fleet request; tag instances in the launch specification or launch template.", rt))
		}
		maps.Copy(f.tags, ts.tags("Tag"))
	}
	if err := c.err(); err != nil {
		return nil, err
	}

	specs := p.structs("LaunchSpecifications")
	configs := p.structs("LaunchTemplateConfigs")
	switch {
	case len(specs) > 0 && len(configs) > 0:
		return nil, errInvalidParameterCombination("LaunchSpecifications and LaunchTemplateConfigs cannot both be specified.")
	case len(specs) == 0 && len(configs) == 0:
		return nil, errMissingParameter("SpotFleetRequestConfig.LaunchSpecifications or SpotFleetRequestConfig.LaunchTemplateConfigs")
	}
	for _, ls := range specs {
		if err := s.addLaunchSpec(f, ls); err != nil {
			return nil, err
		}
	}
	for i, lc := range configs {
		spec, overridden, err := f.addLTConfig(r, lc, i, "SpotFleetRequestConfig.LaunchTemplateConfigs", "SpotPrice")
		if err != nil {
			return nil, err
		}
		cfg := spotFleetLTConfigXML{LaunchTemplateSpecification: spec}
		for _, pool := range overridden {
			if o := pool.overridesXML(true); o != nil {
				cfg.Overrides = append(cfg.Overrides, *o)
			}
		}
		f.ltConfigs = append(f.ltConfigs, cfg)
	}

	if err := checkNoAlias(f.pools, "a Spot Fleet"); err != nil {
		return nil, err
	}
	if c.p.boolOr("DryRun", false) {
		// As CreateFleet's (doc.go, "Dry runs").
		return nil, errDryRun()
	}
	s.fleets[f.id] = f
	s.order = append(s.order, f)
	f.setState(r, sfrSubmitted)
	if f.validFrom.After(c.now) {
		f.activity = "pending_fulfillment"
	} else {
		f.setState(r, sfrActive)
		s.topUp(f)
	}
	out := &requestSpotFleetResult{SpotFleetRequestID: f.id}
	r.remember("RequestSpotFleet", token, fp, out)
	r.log.Debug("spot fleet requested", "sfr", f.id, "type", f.typ, "target", f.target)
	return out, nil
}

// addLaunchSpec turns one SpotFleetLaunchSpecification into pools, one per
// subnet of its comma-separated SubnetId.
func (s *spotFleetService) addLaunchSpec(f *spotFleet, ls params) error {
	r := s.r
	x := spotFleetLaunchSpecXML{
		ImageID: ls.reqStr("ImageId"), InstanceType: ls.reqStr("InstanceType"), SubnetID: ls.str("SubnetId"),
		KeyName: ls.str("KeyName"), SpotPrice: ls.str("SpotPrice"), UserData: ls.str("UserData"),
	}
	if ls.has("WeightedCapacity") {
		w := ls.floatOr("WeightedCapacity", 1)
		x.WeightedCapacity = &w
	}
	if ls.has("IamInstanceProfile") {
		x.IamInstanceProfile = &iamProfileSpecXML{Arn: ls.str("IamInstanceProfile.Arn"), Name: ls.str("IamInstanceProfile.Name")}
	}
	base := launchSpec{instanceType: x.InstanceType, imageID: x.ImageID, keyName: x.KeyName, userData: x.UserData, tags: map[string]string{}}
	for _, g := range ls.structs("GroupSet") {
		id := g.str("GroupId")
		base.sgIDs = append(base.sgIDs, id)
		x.Groups = append(x.Groups, groupIdentXML{GroupID: id})
	}
	if x.IamInstanceProfile != nil {
		base.iamProfile = x.IamInstanceProfile.Arn
		if base.iamProfile == "" {
			base.iamProfile = x.IamInstanceProfile.Name
		}
	}
	for _, ts := range ls.structs("TagSpecificationSet") {
		rt := ts.str("ResourceType")
		tags := ts.tags("Tag")
		if rt != "instance" {
			return errInvalidParameterValue(fmt.Sprintf("The resource type '%s' is not supported in a launch specification's TagSpecificationSet; use 'instance'.", rt))
		}
		maps.Copy(base.tags, tags)
		x.TagSpecs = append(x.TagSpecs, spotFleetTagSpecXML{ResourceType: rt, Tags: tagsXML(tags)})
	}
	if az := ls.str("Placement.AvailabilityZone"); az != "" {
		x.Placement = &spotPlacementXML{AvailabilityZone: az}
	}
	if err := ls.Err(); err != nil {
		return err
	}
	subnets := []string{""}
	if x.SubnetID != "" {
		subnets = strings.Split(x.SubnetID, ",")
	} else if x.Placement != nil {
		sn := r.subnetInAZ(x.Placement.AvailabilityZone)
		if sn == nil {
			return errInvalidParameterValue("Invalid availability zone: [" + x.Placement.AvailabilityZone + "]")
		}
		subnets = []string{sn.id}
	}
	for _, sid := range subnets {
		sid = strings.TrimSpace(sid)
		if sid != "" && r.subnetBy[sid] == nil {
			return &APIError{Code: "InvalidSubnetID.NotFound", Message: fmt.Sprintf("The subnet ID '%s' does not exist", sid), Status: 400}
		}
		fp := &fleetPool{idx: len(f.pools), base: base, maxPrice: x.SpotPrice}
		fp.base.subnetID = sid
		fp.base.tags = maps.Clone(base.tags)
		if x.WeightedCapacity != nil {
			fp.weight = *x.WeightedCapacity
			if fp.weight <= 0 {
				return errInvalidParameterValue("WeightedCapacity must be greater than 0.")
			}
		}
		fp.ovType, fp.ovSubnet, fp.ovImage, fp.ovWeight, fp.ovMaxPrice = x.InstanceType, sid, x.ImageID, x.WeightedCapacity, x.SpotPrice
		f.pools = append(f.pools, fp)
	}
	f.specsXML = append(f.specsXML, x)
	return nil
}

func (s *spotFleetService) topUp(f *spotFleet) {
	od, sp := f.targets()
	f.topUp(s.r, od, sp, func(spot bool, need float64) fillResult {
		return f.launch(s.r, spot, need, map[string]string{SpotFleetIDTag: f.id}, f.spotPrice)
	})
}

func (s *spotFleetService) tick(now time.Time) {
	for _, f := range s.order {
		expired, topUp := f.advance(s.r, now)
		if expired {
			s.r.log.Debug("spot fleet expired", "sfr", f.id)
		}
		if topUp {
			s.topUp(f)
		}
	}
}

func (s *spotFleetService) lookup(id string) (*spotFleet, error) {
	if !strings.HasPrefix(id, "sfr-") {
		return nil, &APIError{Code: "InvalidSpotFleetRequestId.Malformed", Message: fmt.Sprintf("The Spot Fleet request ID '%s' is malformed.", id), Status: 400}
	}
	f := s.fleets[id]
	if f == nil || !s.r.visible(f.visibleAt) {
		return nil, &APIError{Code: "InvalidSpotFleetRequestId.NotFound", Message: fmt.Sprintf("The Spot Fleet request ID '%s' does not exist.", id), Status: 400}
	}
	return f, nil
}

type describeSpotFleetRequestsResult struct {
	Configs   []spotFleetRequestXML `xml:"spotFleetRequestConfigSet>item"`
	NextToken string                `xml:"nextToken,omitempty"`
}

func (s *spotFleetService) describeSpotFleetRequests(c *call) (any, error) {
	ids := c.p.list("SpotFleetRequestId")
	token := c.p.str("NextToken")
	if err := c.err(); err != nil {
		return nil, err
	}
	// MaxResults: "Specify a value between 1 and 1000. The default value
	// is 1000" (API Reference, DescribeSpotFleetRequests).
	maxResults, err := maxResults(c.p, 1, 1000)
	if err != nil {
		return nil, err
	}
	if maxResults == 0 {
		maxResults = 1000
	}
	sel, err := selectIDs(ids, s.order, s.lookup)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		var vis []*spotFleet
		for _, f := range sel {
			if s.r.visible(f.visibleAt) {
				vis = append(vis, f)
			}
		}
		sel = vis
	}
	start, end, next, err := pageBounds(len(sel), maxResults, token)
	if err != nil {
		return nil, err
	}
	out := &describeSpotFleetRequestsResult{NextToken: next}
	for _, f := range sel[start:end] {
		out.Configs = append(out.Configs, s.requestXML(f))
	}
	return out, nil
}

func (s *spotFleetService) requestXML(f *spotFleet) spotFleetRequestXML {
	cfg := spotFleetConfigXML{
		AllocationStrategy:               f.allocRaw,
		ClientToken:                      f.clientToken,
		ExcessCapacityTerminationPolicy:  f.excessPolicy,
		FulfilledCapacity:                f.m.total(),
		IamFleetRole:                     f.iamFleetRole,
		InstancePoolsToUseCount:          f.poolsToUse,
		LaunchSpecifications:             f.specsXML,
		LaunchTemplateConfigs:            f.ltConfigs,
		OnDemandAllocationStrategy:       f.odAllocRw,
		OnDemandFulfilledCapacity:        f.m.liveUnits[0],
		OnDemandTargetCapacity:           f.odTarget,
		ReplaceUnhealthyInstances:        f.replaceUnhealthy,
		SpotPrice:                        f.spotPrice,
		TargetCapacity:                   f.target,
		TerminateInstancesWithExpiration: f.termWithExpiration,
		Type:                             f.typ,
		ValidFrom:                        ts(f.validFrom),
		ValidUntil:                       ts(f.validUntil),
	}
	if cfg.AllocationStrategy == "" {
		cfg.AllocationStrategy = "lowestPrice"
	}
	if cfg.OnDemandAllocationStrategy == "" {
		cfg.OnDemandAllocationStrategy = "lowestPrice"
	}
	if len(f.tags) > 0 {
		cfg.TagSpecifications = []tagSpecXML{{ResourceType: "spot-fleet-request", Tags: tagsXML(f.tags)}}
	}
	return spotFleetRequestXML{
		ActivityStatus: f.activity, CreateTime: ts(f.created), Config: cfg,
		ID: f.id, State: f.state, Tags: tagsXML(f.tags),
	}
}

type describeSpotFleetInstancesResult struct {
	Active             []activeInstanceXML `xml:"activeInstanceSet>item"`
	NextToken          string              `xml:"nextToken,omitempty"`
	SpotFleetRequestID string              `xml:"spotFleetRequestId"`
}

func (s *spotFleetService) describeSpotFleetInstances(c *call) (any, error) {
	id := c.p.reqStr("SpotFleetRequestId")
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
	return &describeSpotFleetInstancesResult{SpotFleetRequestID: f.id, Active: active, NextToken: next}, nil
}

func (s *spotFleetService) modifySpotFleetRequest(c *call) (any, error) {
	id := c.p.reqStr("SpotFleetRequestId")
	hasTarget, hasOD := c.p.has("TargetCapacity"), c.p.has("OnDemandTargetCapacity")
	target := c.p.intOr("TargetCapacity", 0)
	od := c.p.intOr("OnDemandTargetCapacity", 0)
	policy := c.p.str("ExcessCapacityTerminationPolicy")
	if err := c.err(); err != nil {
		return nil, err
	}
	f, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	if f.typ != "maintain" {
		return nil, &APIError{Code: "UnsupportedOperation", Message: fmt.Sprintf("Spot Fleet request %s is of type '%s'; you can only modify a Spot Fleet request of type 'maintain'.", f.id, f.typ), Status: 400}
	}
	if f.state != sfrActive && f.state != sfrModifying && f.state != sfrSubmitted {
		return nil, &APIError{Code: "IncorrectState", Message: fmt.Sprintf("The Spot Fleet request %s is in state %s and cannot be modified.", f.id, f.state), Status: 400}
	}
	switch policy {
	case "", "default", "noTermination":
	default:
		return nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for ExcessCapacityTerminationPolicy. Valid values: default, noTermination", policy))
	}
	if !hasTarget && !hasOD {
		return nil, errMissingParameter("TargetCapacity")
	}
	if target < 0 || od < 0 {
		return nil, errInvalidParameterValue("Target capacities must not be negative.")
	}
	if hasTarget {
		f.target = target
	}
	if hasOD {
		f.odTarget = od
	}
	if f.odTarget > f.target {
		f.odTarget = f.target
	}
	if policy == "" {
		policy = f.excessPolicy
	}
	odT, spT := f.targets()
	f.modified(s.r, c.now, odT, spT, policy != "noTermination")
	return &returnResult{Return: true}, nil
}

type cancelSFRSuccessXML struct {
	Current  string `xml:"currentSpotFleetRequestState"`
	Previous string `xml:"previousSpotFleetRequestState"`
	ID       string `xml:"spotFleetRequestId"`
}

type cancelSFRErrorXML struct {
	Error struct {
		Code    string `xml:"code"`
		Message string `xml:"message"`
	} `xml:"error"`
	ID string `xml:"spotFleetRequestId"`
}

type cancelSpotFleetRequestsResult struct {
	Successful   []cancelSFRSuccessXML `xml:"successfulFleetRequestSet>item"`
	Unsuccessful []cancelSFRErrorXML   `xml:"unsuccessfulFleetRequestSet>item"`
}

func (s *spotFleetService) cancelSpotFleetRequests(c *call) (any, error) {
	ids := c.p.list("SpotFleetRequestId")
	c.p.reqStr("TerminateInstances")
	terminate := c.p.boolOr("TerminateInstances", false)
	if err := c.err(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errMissingParameter("SpotFleetRequestId")
	}
	out := &cancelSpotFleetRequestsResult{}
	fail := func(id, code, msg string) {
		var e cancelSFRErrorXML
		e.ID, e.Error.Code, e.Error.Message = id, code, msg
		out.Unsuccessful = append(out.Unsuccessful, e)
	}
	for _, id := range ids {
		f, err := s.lookup(id)
		if err != nil {
			code := "fleetRequestIdDoesNotExist"
			if strings.HasSuffix(err.(*APIError).Code, "Malformed") {
				code = "fleetRequestIdMalformed"
			}
			fail(id, code, err.(*APIError).Message)
			continue
		}
		if f.ended() {
			fail(id, "fleetRequestNotInCancellableState", fmt.Sprintf("The Spot Fleet request %s is already in state %s.", id, f.state))
			continue
		}
		prev := f.state
		f.end(s.r, terminate)
		out.Successful = append(out.Successful, cancelSFRSuccessXML{Current: f.state, Previous: prev, ID: id})
	}
	return out, nil
}

// XML shapes of Spot Fleet answers.

type iamProfileSpecXML struct {
	Arn  string `xml:"arn,omitempty"`
	Name string `xml:"name,omitempty"`
}

type groupIdentXML struct {
	GroupID string `xml:"groupId"`
}

type spotPlacementXML struct {
	AvailabilityZone string `xml:"availabilityZone"`
}

type spotFleetTagSpecXML struct {
	ResourceType string   `xml:"resourceType"`
	Tags         []tagXML `xml:"tag>item"`
}

type tagSpecXML struct {
	ResourceType string   `xml:"resourceType"`
	Tags         []tagXML `xml:"Tag>item"`
}

type spotFleetLaunchSpecXML struct {
	Groups             []groupIdentXML       `xml:"groupSet>item"`
	IamInstanceProfile *iamProfileSpecXML    `xml:"iamInstanceProfile,omitempty"`
	ImageID            string                `xml:"imageId"`
	InstanceType       string                `xml:"instanceType"`
	KeyName            string                `xml:"keyName,omitempty"`
	Placement          *spotPlacementXML     `xml:"placement,omitempty"`
	SpotPrice          string                `xml:"spotPrice,omitempty"`
	SubnetID           string                `xml:"subnetId,omitempty"`
	TagSpecs           []spotFleetTagSpecXML `xml:"tagSpecificationSet>item"`
	UserData           string                `xml:"userData,omitempty"`
	WeightedCapacity   *float64              `xml:"weightedCapacity,omitempty"`
}

type spotFleetLTConfigXML struct {
	LaunchTemplateSpecification fleetLTSpecXML      `xml:"launchTemplateSpecification"`
	Overrides                   []fleetOverridesXML `xml:"overrides>item"`
}

type spotFleetConfigXML struct {
	AllocationStrategy               string                   `xml:"allocationStrategy,omitempty"`
	ClientToken                      string                   `xml:"clientToken,omitempty"`
	ExcessCapacityTerminationPolicy  string                   `xml:"excessCapacityTerminationPolicy,omitempty"`
	FulfilledCapacity                float64                  `xml:"fulfilledCapacity"`
	IamFleetRole                     string                   `xml:"iamFleetRole"`
	InstancePoolsToUseCount          int                      `xml:"instancePoolsToUseCount,omitempty"`
	LaunchSpecifications             []spotFleetLaunchSpecXML `xml:"launchSpecifications>item"`
	LaunchTemplateConfigs            []spotFleetLTConfigXML   `xml:"launchTemplateConfigs>item"`
	OnDemandAllocationStrategy       string                   `xml:"onDemandAllocationStrategy,omitempty"`
	OnDemandFulfilledCapacity        float64                  `xml:"onDemandFulfilledCapacity"`
	OnDemandTargetCapacity           int                      `xml:"onDemandTargetCapacity"`
	ReplaceUnhealthyInstances        bool                     `xml:"replaceUnhealthyInstances"`
	SpotPrice                        string                   `xml:"spotPrice,omitempty"`
	TagSpecifications                []tagSpecXML             `xml:"TagSpecification>item"`
	TargetCapacity                   int                      `xml:"targetCapacity"`
	TerminateInstancesWithExpiration bool                     `xml:"terminateInstancesWithExpiration"`
	Type                             string                   `xml:"type"`
	ValidFrom                        string                   `xml:"validFrom,omitempty"`
	ValidUntil                       string                   `xml:"validUntil,omitempty"`
}

type spotFleetRequestXML struct {
	ActivityStatus string             `xml:"activityStatus,omitempty"`
	CreateTime     string             `xml:"createTime"`
	Config         spotFleetConfigXML `xml:"spotFleetRequestConfig"`
	ID             string             `xml:"spotFleetRequestId"`
	State          string             `xml:"spotFleetRequestState"`
	Tags           []tagXML           `xml:"tagSet>item"`
}
