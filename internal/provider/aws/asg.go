package awsprov

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// Auto Scaling groups.
//
// One group per request, named LaunchTemplateName(request id) like its
// launch template, with MinSize 0, DesiredCapacity = MaxSize = units, the
// template's subnets, ohfp's tags propagated at launch, and new instances
// protected from scale-in: lowering the desired capacity (Cap) never
// terminates an instance; only TerminateInstanceInAutoScalingGroup
// (Release) and DeleteAutoScalingGroup (Delete) do. A single on-demand type
// of weight 1 uses the launch template alone; anything else a
// MixedInstancesPolicy with the types and weights as overrides
// (vmTypesOnDemand first, then vmTypesPriority order: the order is the
// priority), and the on-demand share as OnDemandPercentageAboveBaseCapacity
// (100 ondemand, 0 spot, percentOnDemand heterogeneous). Auto Scaling has no
// "diversified": it becomes lowest-price across as many pools as there are
// types.

// asgBatchSize is the most group names DescribeAutoScalingGroups takes.
const asgBatchSize = 50

// activityLookback bounds how far back failed scaling activities count.
const activityLookback = 48 * time.Hour

// launchASG creates the request's Auto Scaling group. A group of that name
// that already exists (a retry) is taken as the launch.
func (p *Provider) launchASG(ctx context.Context, spec provider.LaunchSpec) (provider.LaunchResult, error) {
	t := &spec.Template
	if spec.Units <= 0 {
		return provider.LaunchResult{}, fatal(t, "%d units asked: must be at least 1", spec.Units)
	}
	if len(t.SubnetIDs) == 0 {
		return provider.LaunchResult{}, fatal(t, "no subnetId: an Auto Scaling group needs the subnets to launch in")
	}
	lt, err := p.ensureLaunchTemplate(ctx, spec)
	if err != nil {
		return provider.LaunchResult{}, err
	}
	in, err := asgInput(spec, lt)
	if err != nil {
		return provider.LaunchResult{}, err
	}
	name := aws.ToString(in.AutoScalingGroupName)
	res := provider.LaunchResult{Handle: asgHandlePrefix + name}
	_, err = p.asg.CreateAutoScalingGroup(ctx, in)
	switch {
	case err == nil:
		p.log.Info("CreateAutoScalingGroup", "request_id", spec.RequestID, "template_id", t.TemplateID, "group", name, "units", spec.Units)
		return res, nil
	case apiCode(err) != "AlreadyExists":
		return provider.LaunchResult{}, classify("CreateAutoScalingGroup", err)
	}
	groups, err := p.describeGroups(ctx, []string{name})
	if err != nil {
		return provider.LaunchResult{}, err
	}
	if len(groups) == 0 {
		return provider.LaunchResult{}, &provider.Error{Op: "DescribeAutoScalingGroups", Kind: provider.Transient,
			Message: fmt.Sprintf("Auto Scaling group %s exists but is not described yet", name)}
	}
	p.log.Debug("Auto Scaling group already exists", "request_id", spec.RequestID, "group", name)
	return res, nil
}

// asgInput builds the CreateAutoScalingGroup call of spec.
func asgInput(spec provider.LaunchSpec, lt ltRef) (*autoscaling.CreateAutoScalingGroupInput, error) {
	t := &spec.Template
	its := fleetTypes(t, true)
	if len(its) == 0 {
		return nil, fatal(t, "no vmType or vmTypes: an Auto Scaling group needs instance types")
	}
	_, _, asgSpot, err := spotStrategy(t)
	if err != nil {
		return nil, err
	}
	prio, prioritized := priorities(t, true)
	_, _, asgOD, err := onDemandStrategy(t, prioritized || len(t.VMTypesPriority) > 0)
	if err != nil {
		return nil, err
	}
	name := LaunchTemplateName(spec.RequestID)
	weighted := false
	for _, it := range its {
		weighted = weighted || t.WeightOf(it) != 1
	}
	ltSpec := &astypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt.ID), Version: aws.String(lt.Version)}
	in := &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName:             aws.String(name),
		MinSize:                          aws.Int32(0),
		MaxSize:                          aws.Int32(int32(spec.Units)),
		DesiredCapacity:                  aws.Int32(int32(spec.Units)),
		VPCZoneIdentifier:                aws.String(strings.Join(t.SubnetIDs, ",")),
		NewInstancesProtectedFromScaleIn: aws.Bool(true),
	}
	if weighted {
		in.DesiredCapacityType = aws.String("units")
	}
	if len(its) == 1 && !weighted && t.Price() == template.PriceOnDemand {
		in.LaunchTemplate = ltSpec
	} else {
		// Order is priority for prioritized strategies: stable sort by the
		// computed priority, types without one last.
		ordered := slices.Clone(its)
		slices.SortStableFunc(ordered, func(a, b string) int {
			pa, oka := prio[a]
			pb, okb := prio[b]
			switch {
			case oka && okb:
				return int(pa - pb)
			case oka:
				return -1
			case okb:
				return 1
			}
			return 0
		})
		pol := &astypes.MixedInstancesPolicy{LaunchTemplate: &astypes.LaunchTemplate{LaunchTemplateSpecification: ltSpec}}
		for _, it := range ordered {
			pol.LaunchTemplate.Overrides = append(pol.LaunchTemplate.Overrides, astypes.LaunchTemplateOverrides{
				InstanceType: aws.String(it), WeightedCapacity: aws.String(strconv.Itoa(t.WeightOf(it)))})
		}
		pct := 100
		switch t.Price() {
		case template.PriceSpot:
			pct = 0
		case template.PriceHeterogeneous:
			pct = min(max(t.PercentOnDemand, 0), 100)
		}
		dist := &astypes.InstancesDistribution{OnDemandBaseCapacity: aws.Int32(0), OnDemandPercentageAboveBaseCapacity: aws.Int32(int32(pct))}
		if asgOD != "" {
			dist.OnDemandAllocationStrategy = aws.String(asgOD)
		}
		if pct < 100 {
			if asgSpot != "" {
				dist.SpotAllocationStrategy = aws.String(asgSpot)
			}
			switch {
			case foldStrategy(t.AllocationStrat) == "diversified":
				dist.SpotInstancePools = aws.Int32(int32(min(len(its), 20)))
			case asgSpot == "lowest-price" && t.PoolsCount > 0:
				dist.SpotInstancePools = aws.Int32(int32(min(t.PoolsCount, 20)))
			}
			if t.MaxSpotPrice > 0 {
				dist.SpotMaxPrice = aws.String(priceString(t.MaxSpotPrice))
			}
		}
		pol.InstancesDistribution = dist
		in.MixedInstancesPolicy = pol
	}
	for _, tag := range ec2Tags(spec.Tags) {
		in.Tags = append(in.Tags, astypes.Tag{Key: tag.Key, Value: tag.Value, PropagateAtLaunch: aws.Bool(true),
			ResourceId: aws.String(name), ResourceType: aws.String("auto-scaling-group")})
	}
	return in, nil
}

// describeGroups describes groups by name, asgBatchSize a call, paginated;
// names Auto Scaling does not know are left out.
func (p *Provider) describeGroups(ctx context.Context, names []string) ([]astypes.AutoScalingGroup, error) {
	var out []astypes.AutoScalingGroup
	for batch := range slices.Chunk(names, asgBatchSize) {
		in := &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: batch, MaxRecords: aws.Int32(100)}
		for {
			page, err := p.asg.DescribeAutoScalingGroups(ctx, in)
			if err != nil {
				return nil, classify("DescribeAutoScalingGroups", err)
			}
			out = append(out, page.AutoScalingGroups...)
			if aws.ToString(page.NextToken) == "" {
				break
			}
			in.NextToken = page.NextToken
		}
	}
	return out, nil
}

// groupUnits sums the weighted capacity of a group's instances that are
// launching or in service (not leaving).
func groupUnits(g astypes.AutoScalingGroup) int {
	n := 0
	for _, in := range g.Instances {
		s := string(in.LifecycleState)
		if strings.HasPrefix(s, "Terminat") || strings.HasPrefix(s, "Detach") || strings.HasPrefix(s, "Warmed") {
			continue
		}
		w, err := strconv.Atoi(aws.ToString(in.WeightedCapacity))
		if err != nil || w <= 0 {
			w = 1
		}
		n += w
	}
	return n
}

func groupCapped(g astypes.AutoScalingGroup) bool {
	for _, t := range g.Tags {
		if aws.ToString(t.Key) == TagCapped {
			return true
		}
	}
	return false
}

func (p *Provider) pollASGs(ctx context.Context, names []string) (map[string]provider.FleetStatus, error) {
	groups, err := p.describeGroups(ctx, names)
	if err != nil {
		return nil, err
	}
	out := map[string]provider.FleetStatus{}
	for _, n := range names {
		// Not described: not visible yet (eventual consistency right after
		// CreateAutoScalingGroup), or deleted: NotFound, the caller judges
		// by the group's age.
		h := asgHandlePrefix + n
		out[h] = provider.FleetStatus{Handle: h, NotFound: true}
	}
	for _, g := range groups {
		h := asgHandlePrefix + aws.ToString(g.AutoScalingGroupName)
		if _, asked := out[h]; !asked {
			continue
		}
		st := provider.FleetStatus{Handle: h, Target: int(aws.ToInt32(g.DesiredCapacity)), Fulfilled: groupUnits(g)}
		st.Closed = groupCapped(g) || g.Status != nil // Status is set only while the group is being deleted
		if st.Fulfilled < st.Target && !st.Closed {
			st.Errors = p.groupErrors(ctx, aws.ToString(g.AutoScalingGroupName))
		}
		out[h] = st
	}
	return out, nil
}

// groupErrors returns the failed scaling activities of a group short of
// its desired capacity (one DescribeScalingActivities call), newest last.
func (p *Provider) groupErrors(ctx context.Context, name string) []string {
	out, err := p.asg.DescribeScalingActivities(ctx, &autoscaling.DescribeScalingActivitiesInput{
		AutoScalingGroupName: aws.String(name), MaxRecords: aws.Int32(20)})
	if err != nil {
		p.log.Debug("DescribeScalingActivities failed", "group", name, "err", classify("DescribeScalingActivities", err))
		return nil
	}
	since := p.clock.Now().Add(-activityLookback)
	var errs []string
	for _, a := range slices.Backward(out.Activities) { // newest first from AWS
		if a.StatusCode != astypes.ScalingActivityStatusCodeFailed || aws.ToTime(a.StartTime).Before(since) {
			continue
		}
		s := "ScalingActivityFailed: " + aws.ToString(a.StatusMessage)
		if !slices.Contains(errs, s) {
			errs = append(errs, s)
		}
	}
	return errs
}

func (p *Provider) releaseASG(ctx context.Context, name string, instanceIDs []string, units int) error {
	if len(instanceIDs) == 0 && units > 0 {
		// Capacity only: the cloud took instances back; lower the desired
		// capacity so the group does not replace them. Lowering it makes
		// the group scale in, and scale-in protection only holds for
		// InService instances ("Instance scale-in protection starts when
		// the instance state is InService"): with an instance still
		// Pending (a replacement, or one HF is waiting for) the scale-in
		// could take it. Wait until none is.
		out, err := p.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
		if err != nil {
			return classify("DescribeAutoScalingGroups", err)
		}
		if len(out.AutoScalingGroups) == 0 {
			return errHandleNotFound("ReleaseAutoScalingGroup", asgHandlePrefix+name)
		}
		if n := unprotected(out.AutoScalingGroups[0]); n > 0 {
			return &provider.Error{Op: "UpdateAutoScalingGroup", Kind: provider.Transient,
				Message: fmt.Sprintf("Auto Scaling group %s has %d instance(s) not yet protected from scale-in (Pending); its desired capacity is lowered once they are InService", name, n)}
		}
		desired := max(int(aws.ToInt32(out.AutoScalingGroups[0].DesiredCapacity))-units, 0)
		if _, err := p.asg.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String(name),
			DesiredCapacity: aws.Int32(int32(desired))}); err != nil {
			return classify("UpdateAutoScalingGroup", err)
		}
		return nil
	}
	for _, id := range slices.Compact(slices.Sorted(slices.Values(instanceIDs))) {
		_, err := p.asg.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
			InstanceId: aws.String(id), ShouldDecrementDesiredCapacity: aws.Bool(true)})
		switch {
		case err == nil:
			p.log.Info("TerminateInstanceInAutoScalingGroup", "group", name, "instance", id)
		case alreadyTerminating(err):
			// A previous Release asked already; the termination is under way.
			p.log.Debug("instance already terminating in its Auto Scaling group", "group", name, "instance", id)
		case notInGroup(err):
			// Already left the group (terminated, a previous Release): the
			// desired capacity is not lowered twice.
			p.log.Debug("instance not in its Auto Scaling group", "group", name, "instance", id, "err", err)
			if err := p.Terminate(ctx, []string{id}); err != nil {
				return err
			}
		default:
			return classify("TerminateInstanceInAutoScalingGroup", err)
		}
	}
	return nil
}

// alreadyTerminating reports whether Auto Scaling says the instance is
// already being terminated (TerminateInstanceInAutoScalingGroup only
// requests the termination; a second request for it is refused).
func alreadyTerminating(err error) bool {
	return apiCode(err) == "ValidationError" && strings.Contains(strings.ToLower(apiMessage(err)), "already terminating")
}

// notInGroup reports whether Auto Scaling says the instance is not (or no
// longer) one of its managed instances.
func notInGroup(err error) bool {
	return apiCode(err) == "ValidationError" && strings.Contains(strings.ToLower(apiMessage(err)), "not found")
}

// unprotected counts a group's instances that a scale-in could take:
// launching or in service without scale-in protection in effect
// (protection holds from InService on).
func unprotected(g astypes.AutoScalingGroup) int {
	n := 0
	for _, in := range g.Instances {
		s := in.LifecycleState
		switch {
		case strings.HasPrefix(string(s), "Terminat"), strings.HasPrefix(string(s), "Detach"), strings.HasPrefix(string(s), "Warmed"):
		case s == astypes.LifecycleStateInService && aws.ToBool(in.ProtectedFromScaleIn):
		default:
			n++
		}
	}
	return n
}

// capASG sets the group's MaxSize and DesiredCapacity to keep, or to the
// units it already has if more (some launched since the caller counted):
// a desired capacity under them would scale in, and instances still
// Pending are not protected from that.
func (p *Provider) capASG(ctx context.Context, name string, keep int) error {
	groups, err := p.describeGroups(ctx, []string{name})
	if err != nil {
		return err
	}
	if len(groups) == 0 {
		return nil // the group is gone (or not visible yet: nothing to cap)
	}
	if have := groupUnits(groups[0]); have > keep {
		p.log.Info("capping an Auto Scaling group above the units asked: instances launched since", "group", name, "asked", keep, "has", have)
		keep = have
	}
	_, err = p.asg.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String(name),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(int32(keep)), DesiredCapacity: aws.Int32(int32(keep))})
	if notInGroup(err) {
		return nil // the group is gone
	}
	if err != nil {
		return classify("UpdateAutoScalingGroup", err)
	}
	_, err = p.asg.CreateOrUpdateTags(ctx, &autoscaling.CreateOrUpdateTagsInput{Tags: []astypes.Tag{{
		Key: aws.String(TagCapped), Value: aws.String("true"), PropagateAtLaunch: aws.Bool(false),
		ResourceId: aws.String(name), ResourceType: aws.String("auto-scaling-group")}}})
	if err != nil {
		return classify("CreateOrUpdateTags", err)
	}
	p.log.Info("UpdateAutoScalingGroup", "group", name, "max_desired", keep)
	return nil
}

func (p *Provider) deleteASG(ctx context.Context, name string) error {
	groups, err := p.describeGroups(ctx, []string{name})
	if err != nil {
		return err
	}
	if len(groups) == 0 {
		return nil
	}
	g := groups[0]
	_, err = p.asg.DeleteAutoScalingGroup(ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String(name), ForceDelete: aws.Bool(true)})
	if err != nil && !notInGroup(err) {
		return classify("DeleteAutoScalingGroup", err)
	}
	p.log.Info("DeleteAutoScalingGroup", "group", name)
	names := []string{name}
	if s := g.LaunchTemplate; s != nil {
		names = append(names, aws.ToString(s.LaunchTemplateName))
	}
	if m := g.MixedInstancesPolicy; m != nil && m.LaunchTemplate != nil && m.LaunchTemplate.LaunchTemplateSpecification != nil {
		names = append(names, aws.ToString(m.LaunchTemplate.LaunchTemplateSpecification.LaunchTemplateName))
	}
	return p.deleteLaunchTemplates(ctx, names)
}
