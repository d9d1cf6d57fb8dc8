package awssim

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	ast "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

func (e *fleetEnv) vpcZones() string {
	return e.sn[e.az[0]] + "," + e.sn[e.az[1]] + "," + e.sn[e.az[2]]
}

func (e *fleetEnv) describeASG(t *testing.T, name string) *ast.AutoScalingGroup {
	t.Helper()
	out, err := e.as.DescribeAutoScalingGroups(e.ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil {
		t.Fatalf("DescribeAutoScalingGroups: %v", err)
	}
	if len(out.AutoScalingGroups) == 0 {
		return nil
	}
	return &out.AutoScalingGroups[0]
}

func (e *fleetEnv) plainASG(t *testing.T, name, lt string, desired int32) {
	t.Helper()
	_, err := e.as.CreateAutoScalingGroup(e.ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(name), MinSize: aws.Int32(0), MaxSize: aws.Int32(10), DesiredCapacity: aws.Int32(desired),
		LaunchTemplate:    &ast.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt), Version: aws.String("$Latest")},
		VPCZoneIdentifier: aws.String(e.vpcZones()),
	})
	if err != nil {
		t.Fatalf("CreateAutoScalingGroup: %v", err)
	}
	// The group launches in a scaling activity after the call returns.
	e.advance(asgActivityDelay)
}

func TestASGMixedInstancesWeightsAndTags(t *testing.T) {
	e := newFleetEnv(t)
	lt := e.addLT(t, "asg-lt", "c5.large", map[string]string{"from-lt": "yes"})
	_, err := e.as.CreateAutoScalingGroup(e.ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("hf-req-1"), MinSize: aws.Int32(0), MaxSize: aws.Int32(10), DesiredCapacity: aws.Int32(6),
		DesiredCapacityType: aws.String("units"),
		MixedInstancesPolicy: &ast.MixedInstancesPolicy{
			LaunchTemplate: &ast.LaunchTemplate{
				LaunchTemplateSpecification: &ast.LaunchTemplateSpecification{LaunchTemplateName: aws.String("asg-lt"), Version: aws.String("$Latest")},
				Overrides: []ast.LaunchTemplateOverrides{
					{InstanceType: aws.String("m5.large"), WeightedCapacity: aws.String("2")},
					{InstanceType: aws.String("c5.large"), WeightedCapacity: aws.String("1")},
				},
			},
			InstancesDistribution: &ast.InstancesDistribution{OnDemandBaseCapacity: aws.Int32(0), OnDemandPercentageAboveBaseCapacity: aws.Int32(50),
				SpotAllocationStrategy: aws.String("price-capacity-optimized")},
		},
		VPCZoneIdentifier: aws.String(e.vpcZones()),
		Tags: []ast.Tag{
			{Key: aws.String("ohfp:request"), Value: aws.String("req-1"), PropagateAtLaunch: aws.Bool(true)},
			{Key: aws.String("group-only"), Value: aws.String("x"), PropagateAtLaunch: aws.Bool(false)},
		},
	})
	if err != nil {
		t.Fatalf("CreateAutoScalingGroup: %v", err)
	}
	if n := len(e.live("asg:hf-req-1")); n != 0 {
		t.Errorf("%d instances when CreateAutoScalingGroup returns: launches are scaling activities that come later", n)
	}
	e.advance(asgActivityDelay)
	live := e.live("asg:hf-req-1")
	var od, spot float64
	azs := map[string]bool{}
	for _, in := range live {
		if in.Spot {
			spot += in.Weight
		} else {
			od += in.Weight
		}
		azs[in.AZ] = true
		if in.Tags[ASGNameTag] != "hf-req-1" || in.Tags["ohfp:request"] != "req-1" || in.Tags["from-lt"] != "yes" {
			t.Errorf("%s tags %v", in.ID, in.Tags)
		}
		if _, ok := in.Tags["group-only"]; ok {
			t.Errorf("%s got a tag without PropagateAtLaunch", in.ID)
		}
		if in.InstanceType != "m5.large" || in.Weight != 2 {
			t.Errorf("%s is %s weight %v, want m5.large weight 2 (first override / cheapest per unit)", in.ID, in.InstanceType, in.Weight)
		}
	}
	// 6 units, 50% on-demand: 3 on-demand units and 3 Spot units, each filled by two weight-2 instances
	if len(live) != 4 || od != 4 || spot != 4 || len(azs) != 3 {
		t.Errorf("launched %d instances: on-demand %v spot %v units in %d AZs", len(live), od, spot, len(azs))
	}
	g := e.describeASG(t, "hf-req-1")
	if g == nil || aws.ToInt32(g.DesiredCapacity) != 6 || len(g.Instances) != 4 || len(g.Tags) != 2 || len(g.AvailabilityZones) != 3 ||
		g.MixedInstancesPolicy == nil || len(g.MixedInstancesPolicy.LaunchTemplate.Overrides) != 2 || aws.ToString(g.DesiredCapacityType) != "units" {
		t.Fatalf("DescribeAutoScalingGroups = %+v", g)
	}
	if i := g.Instances[0]; i.LifecycleState != ast.LifecycleStatePending || aws.ToString(i.WeightedCapacity) != "2" || aws.ToString(i.HealthStatus) != "Healthy" ||
		aws.ToString(i.LaunchTemplate.LaunchTemplateId) != lt {
		t.Errorf("instance = %+v", i)
	}
	e.advance(2 * time.Second)
	g = e.describeASG(t, "hf-req-1")
	for _, i := range g.Instances {
		if i.LifecycleState != ast.LifecycleStateInService {
			t.Errorf("%s is %s after launch delay", aws.ToString(i.InstanceId), i.LifecycleState)
		}
	}
	di, err := e.as.DescribeAutoScalingInstances(e.ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{live[0].ID, "i-0123456789abcdef0"}})
	if err != nil || len(di.AutoScalingInstances) != 1 || aws.ToString(di.AutoScalingInstances[0].AutoScalingGroupName) != "hf-req-1" ||
		aws.ToString(di.AutoScalingInstances[0].HealthStatus) != "HEALTHY" {
		t.Errorf("DescribeAutoScalingInstances = %+v, %v", di, err)
	}

	// filters and errors
	f, err := e.as.DescribeAutoScalingGroups(e.ctx, &autoscaling.DescribeAutoScalingGroupsInput{Filters: []ast.Filter{{Name: aws.String("tag:ohfp:request"), Values: []string{"req-1"}}}})
	if err != nil || len(f.AutoScalingGroups) != 1 {
		t.Errorf("tag filter: %+v %v", f, err)
	}
	f, err = e.as.DescribeAutoScalingGroups(e.ctx, &autoscaling.DescribeAutoScalingGroupsInput{Filters: []ast.Filter{{Name: aws.String("tag-key"), Values: []string{"absent"}}}})
	if err != nil || len(f.AutoScalingGroups) != 0 {
		t.Errorf("tag-key filter: %+v %v", f, err)
	}
	_, err = e.as.CreateAutoScalingGroup(e.ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String("hf-req-1"), MinSize: aws.Int32(0), MaxSize: aws.Int32(1),
		LaunchTemplate: &ast.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt)}, VPCZoneIdentifier: aws.String(e.vpcZones())})
	if apiCode(err) != "AlreadyExists" {
		t.Errorf("duplicate group: %v", err)
	}
	if _, err := e.as.SetDesiredCapacity(e.ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("hf-req-1"), DesiredCapacity: aws.Int32(11)}); apiCode(err) != "ValidationError" {
		t.Errorf("desired above max: %v", err)
	}
	_, err = e.as.CreateAutoScalingGroup(e.ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String("nolt"), MinSize: aws.Int32(0), MaxSize: aws.Int32(1), VPCZoneIdentifier: aws.String(e.vpcZones())})
	if apiCode(err) != "ValidationError" {
		t.Errorf("group without a launch template: %v", err)
	}

	// CreateOrUpdateTags applies to later launches
	if _, err := e.as.CreateOrUpdateTags(e.ctx, &autoscaling.CreateOrUpdateTagsInput{Tags: []ast.Tag{{Key: aws.String("ohfp:request"), Value: aws.String("req-2"),
		PropagateAtLaunch: aws.Bool(true), ResourceId: aws.String("hf-req-1"), ResourceType: aws.String("auto-scaling-group")}}}); err != nil {
		t.Fatalf("CreateOrUpdateTags: %v", err)
	}
	if _, err := e.as.SetDesiredCapacity(e.ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("hf-req-1"), DesiredCapacity: aws.Int32(10)}); err != nil {
		t.Fatal(err)
	}
	e.advance(asgActivityDelay)
	now := e.live("asg:hf-req-1")
	if units(now) < 10 || now[len(now)-1].Tags["ohfp:request"] != "req-2" {
		t.Errorf("after scale-out: %v units, newest tags %v", units(now), now[len(now)-1].Tags)
	}
}

func TestASGTerminateDetachWithAndWithoutDecrement(t *testing.T) {
	e := newFleetEnv(t)
	lt := e.addLT(t, "plain", "c5.large", nil)
	e.plainASG(t, "g1", lt, 4)
	e.advance(2 * time.Second)
	live := e.live("asg:g1")
	if len(live) != 4 {
		t.Fatalf("%d instances, want 4", len(live))
	}

	out, err := e.as.TerminateInstanceInAutoScalingGroup(e.ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{InstanceId: aws.String(live[0].ID), ShouldDecrementDesiredCapacity: aws.Bool(true)})
	if err != nil {
		t.Fatalf("TerminateInstanceInAutoScalingGroup: %v", err)
	}
	if out.Activity == nil || !strings.Contains(aws.ToString(out.Activity.Description), live[0].ID) || out.Activity.StatusCode != ast.ScalingActivityStatusCodeInProgress {
		t.Errorf("activity = %+v", out.Activity)
	}
	if g := e.describeASG(t, "g1"); aws.ToInt32(g.DesiredCapacity) != 3 {
		t.Errorf("desired %d after a decrementing termination, want 3", aws.ToInt32(g.DesiredCapacity))
	}
	e.advance(5 * time.Second)
	if n := len(e.live("asg:g1")); n != 3 {
		t.Errorf("%d live after terminate with decrement, want 3 (no replacement)", n)
	}

	if _, err := e.as.TerminateInstanceInAutoScalingGroup(e.ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{InstanceId: aws.String(live[1].ID), ShouldDecrementDesiredCapacity: aws.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	e.advance(time.Second)
	after := e.live("asg:g1")
	if len(after) != 3 {
		t.Errorf("%d live after terminate without decrement, want 3 (replaced)", len(after))
	}
	for _, in := range after {
		if in.ID == live[1].ID {
			t.Errorf("terminated instance still live")
		}
	}

	// a console termination is replaced too, the instance shows Unhealthy meanwhile
	if err := e.r.TerminateFromConsole(live[2].ID); err != nil {
		t.Fatal(err)
	}
	e.advance(time.Second)
	if n := len(e.live("asg:g1")); n != 3 {
		t.Errorf("%d live after a console termination, want 3", n)
	}

	// detach: the instance keeps running outside the group
	det, err := e.as.DetachInstances(e.ctx, &autoscaling.DetachInstancesInput{AutoScalingGroupName: aws.String("g1"), InstanceIds: []string{live[3].ID}, ShouldDecrementDesiredCapacity: aws.Bool(true)})
	if err != nil || len(det.Activities) != 1 {
		t.Fatalf("DetachInstances = %+v, %v", det, err)
	}
	e.advance(time.Second)
	if in, _ := e.r.Instance(live[3].ID); in.State != stateRunning || in.Owner != "" {
		t.Errorf("detached instance = %+v", in)
	}
	if g := e.describeASG(t, "g1"); aws.ToInt32(g.DesiredCapacity) != 2 || len(e.live("asg:g1")) != 2 {
		t.Errorf("after detach with decrement: desired %d live %d", aws.ToInt32(g.DesiredCapacity), len(e.live("asg:g1")))
	}
	if _, err := e.as.TerminateInstanceInAutoScalingGroup(e.ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{InstanceId: aws.String(live[3].ID), ShouldDecrementDesiredCapacity: aws.Bool(true)}); apiCode(err) != "ValidationError" {
		t.Errorf("terminating a detached instance through the group: %v", err)
	}
}

func TestASGDeleteWithAndWithoutForce(t *testing.T) {
	e := newFleetEnv(t)
	lt := e.addLT(t, "del", "c5.large", nil)
	e.plainASG(t, "g-soft", lt, 2)
	e.plainASG(t, "g-force", lt, 2)

	if _, err := e.as.DeleteAutoScalingGroup(e.ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("g-soft")}); apiCode(err) != "ResourceInUse" {
		t.Errorf("delete with instances: %v, want ResourceInUse", err)
	}
	if _, err := e.as.UpdateAutoScalingGroup(e.ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("g-soft"), MinSize: aws.Int32(0), MaxSize: aws.Int32(0)}); err != nil {
		t.Fatalf("UpdateAutoScalingGroup: %v", err)
	}
	e.advance(asgActivityDelay)
	if g := e.describeASG(t, "g-soft"); aws.ToInt32(g.DesiredCapacity) != 0 {
		t.Errorf("MaxSize 0 left desired %d", aws.ToInt32(g.DesiredCapacity))
	}
	if _, err := e.as.DeleteAutoScalingGroup(e.ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("g-soft")}); apiCode(err) != "ScalingActivityInProgress" {
		t.Errorf("delete while instances terminate: %v, want ScalingActivityInProgress", err)
	}
	for range 3 {
		e.advance(asgActivityDelay)
	}
	if _, err := e.as.DeleteAutoScalingGroup(e.ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("g-soft")}); err != nil {
		t.Errorf("delete of an empty group: %v", err)
	}
	if g := e.describeASG(t, "g-soft"); g != nil {
		t.Errorf("deleted group still described: %+v", g)
	}

	if _, err := e.as.DeleteAutoScalingGroup(e.ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("g-force"), ForceDelete: aws.Bool(true)}); err != nil {
		t.Fatalf("ForceDelete: %v", err)
	}
	if g := e.describeASG(t, "g-force"); g == nil || aws.ToString(g.Status) != "Delete in progress" {
		t.Errorf("group during ForceDelete = %+v", g)
	}
	for range 3 {
		e.advance(asgActivityDelay)
	}
	if n := len(e.live("asg:g-force")); n != 0 {
		t.Errorf("%d live instances after ForceDelete", n)
	}
	if g := e.describeASG(t, "g-force"); g != nil {
		t.Errorf("force-deleted group still described: %+v", g)
	}
	if _, err := e.as.SetDesiredCapacity(e.ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("g-force"), DesiredCapacity: aws.Int32(1)}); apiCode(err) != "ValidationError" {
		t.Errorf("SetDesiredCapacity on a deleted group: %v", err)
	}
}

func TestASGInsufficientCapacityRetries(t *testing.T) {
	e := newFleetEnv(t)
	lt := e.addLT(t, "ice", "c5.large", nil)
	for _, az := range e.az {
		e.r.SetCapacity("c5.large", az, 0)
	}
	e.r.SetCapacity("c5.large", e.az[2], 1)
	e.plainASG(t, "g-ice", lt, 3)
	if n := len(e.live("asg:g-ice")); n != 1 {
		t.Fatalf("%d instances under ICE, want 1", n)
	}
	acts, err := e.as.DescribeScalingActivities(e.ctx, &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String("g-ice")})
	if err != nil || len(acts.Activities) == 0 {
		t.Fatalf("DescribeScalingActivities = %+v, %v", acts, err)
	}
	if a := acts.Activities[0]; a.StatusCode != ast.ScalingActivityStatusCodeFailed || !strings.Contains(aws.ToString(a.StatusMessage), "sufficient c5.large capacity") {
		t.Errorf("newest activity = %+v", a)
	}
	for _, az := range e.az {
		e.r.SetCapacity("c5.large", az, -1)
	}
	e.advance(time.Second)
	if n := len(e.live("asg:g-ice")); n != 3 {
		t.Errorf("%d instances after capacity returned, want 3", n)
	}
}
