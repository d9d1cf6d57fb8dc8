package awsprov

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

func eq(t *testing.T, name string, got, want any) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

// hetTemplate is a heterogeneous template with weights, on-demand types,
// priorities and two subnets.
func hetTemplate(api string) template.Template {
	return template.Template{
		TemplateID: "tpl-1", ImageID: "/aws/service/ami-al2023", SubnetIDs: []string{"subnet-a", "subnet-b"},
		VMTypes:         template.Weights{{Type: "c5.large", Weight: 1}, {Type: "c5.xlarge", Weight: 2}},
		VMTypesOnDemand: template.Weights{{Type: "m5.large", Weight: 1}},
		VMTypesPriority: template.Weights{{Type: "c5.xlarge", Weight: 1}, {Type: "c5.large", Weight: 2}},
		PriceType:       template.PriceHeterogeneous, PercentOnDemand: 25, MaxSpotPrice: 0.05,
		AllocationStrat: "capacityOptimized", SpotFleetExpiry: 45, FleetRole: "arn:aws:iam::1:role/fleet",
		KeyName: "key1", SecurityGroupIDs: []string{"sg-1"}, InstanceProfile: "hf-role", UserDataScript: "testdata/userdata/echo_hi.sh",
		RootVolumeSize: 40, ProviderAPI: api, FleetType: template.FleetRequest,
	}
}

func hetSpec(api string) provider.LaunchSpec {
	return provider.LaunchSpec{RequestID: "req-1", ClientToken: "req-1-tok", Template: hetTemplate(api), Units: 10, Tags: ohfpTags}
}

func TestEC2FleetInputAndLaunchTemplate(t *testing.T) {
	r := newFleetRig()
	r.s.params["/aws/service/ami-al2023"] = "ami-0123456789abcdef0"
	r.e.images["ami-0123456789abcdef0"] = "/dev/xvda"
	res, err := r.p.Launch(context.Background(), hetSpec(template.APIEC2Fleet))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Handle, "fleet-") || len(res.Instances) != 0 {
		t.Fatalf("request fleet launch = %+v, want a fleet handle and no instances", res)
	}
	eq(t, "calls", r.log.list(), []string{"CreateLaunchTemplate", "CreateFleet"})

	lt := r.f.createLT[0]
	eq(t, "LT name", aws.ToString(lt.LaunchTemplateName), "ohfp-req-1")
	eq(t, "LT client token", aws.ToString(lt.ClientToken), "lt-req-1-tok")
	d := lt.LaunchTemplateData
	eq(t, "LT image (from SSM)", aws.ToString(d.ImageId), "ami-0123456789abcdef0")
	eq(t, "LT type", d.InstanceType, "c5.large")
	eq(t, "LT key", aws.ToString(d.KeyName), "key1")
	eq(t, "LT groups", d.SecurityGroupIds, []string{"sg-1"})
	eq(t, "LT profile", aws.ToString(d.IamInstanceProfile.Name), "hf-role")
	eq(t, "LT user data", aws.ToString(d.UserData), "ZWNobyBoaQ==")
	eq(t, "LT root", aws.ToString(d.BlockDeviceMappings[0].DeviceName)+" "+sp(aws.ToInt32(d.BlockDeviceMappings[0].Ebs.VolumeSize)), "/dev/xvda 40")
	eq(t, "LT market options", d.InstanceMarketOptions == nil, true)
	if len(d.TagSpecifications) != 2 {
		t.Fatalf("LT tag specs = %+v", d.TagSpecifications)
	}
	for i, rt := range []types.ResourceType{types.ResourceTypeInstance, types.ResourceTypeVolume} {
		eq(t, "LT tag spec type", d.TagSpecifications[i].ResourceType, rt)
		v, _ := tagValueOf(d.TagSpecifications[i].Tags, provider.TagRequestID)
		eq(t, "LT ohfp:request-id", v, "req-1")
	}
	eq(t, "LT own tags", lt.TagSpecifications[0].ResourceType, types.ResourceTypeLaunchTemplate)

	in := r.f.createFleet[0]
	eq(t, "Type", in.Type, "request")
	eq(t, "ClientToken", aws.ToString(in.ClientToken), "req-1-tok")
	eq(t, "LT spec", aws.ToString(in.LaunchTemplateConfigs[0].LaunchTemplateSpecification.LaunchTemplateId)+"@"+
		aws.ToString(in.LaunchTemplateConfigs[0].LaunchTemplateSpecification.Version), aws.ToString(r.f.lts["ohfp-req-1"].LaunchTemplateId)+"@1")
	var cells []string
	for _, o := range in.LaunchTemplateConfigs[0].Overrides {
		pr := "-"
		if o.Priority != nil {
			pr = sp(*o.Priority)
		}
		cells = append(cells, fmt.Sprintf("%s/%s/w%v/p%s/%s", o.InstanceType, aws.ToString(o.SubnetId), aws.ToFloat64(o.WeightedCapacity), pr, aws.ToString(o.MaxPrice)))
	}
	eq(t, "overrides", cells, []string{
		"c5.large/subnet-a/w1/p3/0.05", "c5.large/subnet-b/w1/p3/0.05",
		"c5.xlarge/subnet-a/w2/p2/0.05", "c5.xlarge/subnet-b/w2/p2/0.05",
		"m5.large/subnet-a/w1/p0/0.05", "m5.large/subnet-b/w1/p0/0.05",
	})
	tcs := in.TargetCapacitySpecification
	eq(t, "targets total/od/spot/default", sp(aws.ToInt32(tcs.TotalTargetCapacity), aws.ToInt32(tcs.OnDemandTargetCapacity),
		aws.ToInt32(tcs.SpotTargetCapacity), tcs.DefaultTargetCapacityType), "10 3 7 spot")
	eq(t, "spot strategy", in.SpotOptions.AllocationStrategy, "capacity-optimized")
	eq(t, "pools only for lowest-price", in.SpotOptions.InstancePoolsToUseCount == nil, true)
	eq(t, "on-demand strategy", in.OnDemandOptions.AllocationStrategy, "prioritized")
	eq(t, "ValidUntil", aws.ToTime(in.ValidUntil), r.clk.Now().Add(45*time.Minute).UTC())
	eq(t, "TerminateInstancesWithExpiration", aws.ToBool(in.TerminateInstancesWithExpiration), false)
	eq(t, "fleet tags", in.TagSpecifications[0].ResourceType, types.ResourceTypeFleet)

	// A retry (same request) finds the launch template and sends the same token.
	if _, err := r.p.Launch(context.Background(), hetSpec(template.APIEC2Fleet)); err != nil {
		t.Fatal(err)
	}
	eq(t, "LTs", len(r.f.lts), 1)
	eq(t, "retry token", aws.ToString(r.f.createFleet[1].ClientToken), "req-1-tok")
	eq(t, "retry LT id", aws.ToString(r.f.createFleet[1].LaunchTemplateConfigs[0].LaunchTemplateSpecification.LaunchTemplateId),
		aws.ToString(r.f.lts["ohfp-req-1"].LaunchTemplateId))
}

func TestEC2FleetInstantAnswersInstancesAndErrors(t *testing.T) {
	r := newFleetRig()
	id := r.e.addFleetInstance("c5.large", ohfpTags)
	r.f.createFleetOut = &ec2.CreateFleetOutput{FleetId: aws.String("fleet-1"),
		Instances: []types.CreateFleetInstance{{InstanceIds: []string{id}, InstanceType: "c5.large", Lifecycle: types.InstanceLifecycleSpot}},
		Errors: []types.CreateFleetError{{ErrorCode: aws.String("InsufficientInstanceCapacity"), ErrorMessage: aws.String("no c5.xlarge")},
			{ErrorCode: aws.String("InsufficientInstanceCapacity"), ErrorMessage: aws.String("no c5.xlarge")}},
	}
	tpl := template.Template{TemplateID: "t", ImageID: "ami-1", VMType: "c5.large", PriceType: "spot", ProviderAPI: template.APIEC2Fleet,
		AllocationStrat: "lowestPrice", PoolsCount: 2}
	res, err := r.p.Launch(context.Background(), provider.LaunchSpec{RequestID: "req-2", Template: tpl, Units: 2, Tags: ohfpTags})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "handle", res.Handle, "fleet-1")
	eq(t, "errors (deduplicated)", res.Errors, []string{"InsufficientInstanceCapacity: no c5.xlarge"})
	if len(res.Instances) != 1 || res.Instances[0].ID != id || res.Instances[0].PrivateIP != "10.0.0.1" || res.Instances[0].State != "running" {
		t.Errorf("instances = %+v, want %s described in full", res.Instances, id)
	}
	in := r.f.createFleet[0]
	eq(t, "default type", in.Type, "instant")
	eq(t, "default capacity type", in.TargetCapacitySpecification.DefaultTargetCapacityType, "spot")
	eq(t, "lowest-price pools", aws.ToInt32(in.SpotOptions.InstancePoolsToUseCount), 2)
	eq(t, "no ValidUntil for instant", in.ValidUntil == nil, true)
	eq(t, "no on-demand options", in.OnDemandOptions == nil, true)
	eq(t, "no token given, none sent", in.ClientToken == nil, true)
}

func TestStrategySpellings(t *testing.T) {
	for _, c := range []struct{ in, fleet, sf, asg string }{
		{"capacityOptimized", "capacity-optimized", "capacityOptimized", "capacity-optimized"},
		{"capacityOptimizedPrioritized", "capacity-optimized-prioritized", "capacityOptimizedPrioritized", "capacity-optimized-prioritized"},
		{"diversified", "diversified", "diversified", "lowest-price"},
		{"lowestPrice", "lowest-price", "lowestPrice", "lowest-price"},
		{"priceCapacityOptimized", "price-capacity-optimized", "priceCapacityOptimized", "price-capacity-optimized"},
		{"price-capacity-optimized", "price-capacity-optimized", "priceCapacityOptimized", "price-capacity-optimized"},
	} {
		f, sf, a, err := spotStrategy(&template.Template{AllocationStrat: c.in})
		if err != nil || f != c.fleet || sf != c.sf || a != c.asg {
			t.Errorf("%s -> %s %s %s %v", c.in, f, sf, a, err)
		}
	}
	if _, _, _, err := spotStrategy(&template.Template{AllocationStrat: "cheapest"}); provider.KindOf(err) != provider.Fatal {
		t.Errorf("unknown strategy: err %v", err)
	}
	f, sf, _, _ := onDemandStrategy(&template.Template{AllocationOnDem: "lowestPrice"}, false)
	eq(t, "on-demand lowestPrice", f+" "+sf, "lowest-price lowestPrice")
}

func TestSpotFleetConfig(t *testing.T) {
	r := newFleetRig()
	r.s.params["/aws/service/ami-al2023"] = "ami-1"
	r.e.images["ami-1"] = "/dev/xvda"
	spec := hetSpec(template.APISpotFleet)
	spec.Template.SpotFleetExpiry, spec.Template.FleetType = 0, ""
	res, err := r.p.Launch(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Handle, "sfr-") {
		t.Fatalf("handle %q", res.Handle)
	}
	c := r.f.requestSpot[0].SpotFleetRequestConfig
	eq(t, "role", aws.ToString(c.IamFleetRole), "arn:aws:iam::1:role/fleet")
	eq(t, "target/od", sp(aws.ToInt32(c.TargetCapacity), aws.ToInt32(c.OnDemandTargetCapacity)), "10 3")
	eq(t, "strategy", c.AllocationStrategy, "capacityOptimized")
	eq(t, "od strategy: API default (vmTypesOnDemand are for the fallback)", c.OnDemandAllocationStrategy, "")
	eq(t, "type", c.Type, "request")
	eq(t, "ValidUntil default 30 min", aws.ToTime(c.ValidUntil), r.clk.Now().Add(30*time.Minute).UTC())
	eq(t, "TerminateInstancesWithExpiration", aws.ToBool(c.TerminateInstancesWithExpiration), false)
	eq(t, "token", aws.ToString(c.ClientToken), "req-1-tok")
	eq(t, "tags", c.TagSpecifications[0].ResourceType, types.ResourceTypeSpotFleetRequest)
	ov := c.LaunchTemplateConfigs[0].Overrides
	eq(t, "overrides: vmTypes × subnets, no vmTypesOnDemand", len(ov), 4)
	eq(t, "override[2]", sp(ov[2].InstanceType, aws.ToString(ov[2].SubnetId), aws.ToFloat64(ov[2].WeightedCapacity),
		aws.ToFloat64(ov[2].Priority), aws.ToString(ov[2].SpotPrice)), "c5.xlarge subnet-a 2 1 0.05")

	spec.Template.FleetType, spec.Template.AllocationStrat, spec.Template.PoolsCount = "maintain", "lowestPrice", 3
	spec.RequestID = "req-2"
	if _, err := r.p.Launch(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	c = r.f.requestSpot[1].SpotFleetRequestConfig
	eq(t, "maintain", c.Type, "maintain")
	eq(t, "pools", aws.ToInt32(c.InstancePoolsToUseCount), 3)
	eq(t, "excess policy", c.ExcessCapacityTerminationPolicy, "noTermination")

	spec.Template.FleetRole = ""
	if _, err := r.p.Launch(context.Background(), spec); provider.KindOf(err) != provider.Fatal || !strings.Contains(err.Error(), "fleetRole") {
		t.Errorf("no fleetRole: %v", err)
	}
}

func TestOnDemandSpec(t *testing.T) {
	spec := hetSpec(template.APISpotFleet)
	od := OnDemandSpec(spec, 4, "1")
	eq(t, "units", od.Units, 4)
	eq(t, "price", od.Template.Price(), "ondemand")
	eq(t, "api", od.Template.API(), template.APIRunInstances)
	eq(t, "types", od.Template.InstanceTypes(), []string{"m5.large"})
	eq(t, "request id", od.RequestID, "req-1-od1")
	if od.ClientToken == spec.ClientToken || od.ClientToken == "" || len(od.ClientToken) > 64 {
		t.Errorf("client token %q", od.ClientToken)
	}
	spec.Template.VMTypesOnDemand = nil
	od = OnDemandSpec(spec, 4, "1")
	eq(t, "several types: instant fleet", od.Template.API()+"/"+od.Template.FleetType, "EC2Fleet/instant")
	eq(t, "spec untouched", spec.Template.Price(), "heterogeneous")
}

func TestASGInput(t *testing.T) {
	r := newFleetRig()
	r.s.params["/aws/service/ami-al2023"] = "ami-1"
	r.e.images["ami-1"] = "/dev/xvda"
	res, err := r.p.Launch(context.Background(), hetSpec(template.APIASG))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "handle", res.Handle, "asg:ohfp-req-1")
	in := r.a.creates[0]
	eq(t, "name", aws.ToString(in.AutoScalingGroupName), "ohfp-req-1")
	eq(t, "min/max/desired", sp(aws.ToInt32(in.MinSize), aws.ToInt32(in.MaxSize), aws.ToInt32(in.DesiredCapacity)), "0 10 10")
	eq(t, "desired type", aws.ToString(in.DesiredCapacityType), "units")
	eq(t, "subnets", aws.ToString(in.VPCZoneIdentifier), "subnet-a,subnet-b")
	eq(t, "protected", aws.ToBool(in.NewInstancesProtectedFromScaleIn), true)
	eq(t, "no plain LT", in.LaunchTemplate == nil, true)
	var ovs []string
	for _, o := range in.MixedInstancesPolicy.LaunchTemplate.Overrides {
		ovs = append(ovs, aws.ToString(o.InstanceType)+"="+aws.ToString(o.WeightedCapacity))
	}
	eq(t, "overrides in priority order", ovs, []string{"m5.large=1", "c5.xlarge=2", "c5.large=1"})
	d := in.MixedInstancesPolicy.InstancesDistribution
	eq(t, "distribution", sp(aws.ToInt32(d.OnDemandBaseCapacity), aws.ToInt32(d.OnDemandPercentageAboveBaseCapacity),
		aws.ToString(d.SpotAllocationStrategy), aws.ToString(d.OnDemandAllocationStrategy), aws.ToString(d.SpotMaxPrice)),
		"0 25 capacity-optimized prioritized 0.05")
	for _, tg := range in.Tags {
		if !aws.ToBool(tg.PropagateAtLaunch) {
			t.Errorf("tag %s not propagated", aws.ToString(tg.Key))
		}
	}
	eq(t, "tags", len(in.Tags), len(ohfpTags))

	// Again (a retry): AlreadyExists is the same launch.
	res2, err := r.p.Launch(context.Background(), hetSpec(template.APIASG))
	if err != nil || res2.Handle != res.Handle {
		t.Errorf("retry = %+v, %v", res2, err)
	}

	// One on-demand type of weight 1: the launch template alone.
	spec := provider.LaunchSpec{RequestID: "req-3", Template: template.Template{TemplateID: "t", ImageID: "ami-1", VMType: "c5.large",
		SubnetIDs: []string{"subnet-a"}, ProviderAPI: template.APIASG}, Units: 2, Tags: ohfpTags}
	if _, err := r.p.Launch(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	in = r.a.creates[2]
	eq(t, "plain LT", in.LaunchTemplate != nil && in.MixedInstancesPolicy == nil && in.DesiredCapacityType == nil, true)
}

func TestPollBatchesPerAPI(t *testing.T) {
	r := newFleetRig()
	ctx := context.Background()
	now := r.clk.Now()
	var handles []string
	for i, st := range []struct {
		typ      types.FleetType
		state    types.FleetStateCode
		activity types.FleetActivityStatus
	}{
		{types.FleetTypeMaintain, types.FleetStateCodeActive, types.FleetActivityStatusPendingFulfillment},
		{types.FleetTypeRequest, types.FleetStateCodeActive, types.FleetActivityStatusFulfilled},
		{types.FleetTypeMaintain, types.FleetStateCodeActive, types.FleetActivityStatusError},
		{types.FleetTypeMaintain, types.FleetStateCodeDeleted, ""},
	} {
		id := fmt.Sprintf("fleet-%d", i)
		r.f.fleets[id] = types.FleetData{FleetId: aws.String(id), Type: st.typ, FleetState: st.state, ActivityStatus: st.activity,
			FulfilledCapacity: aws.Float64(3), TargetCapacitySpecification: &types.TargetCapacitySpecification{TotalTargetCapacity: aws.Int32(4)}}
		handles = append(handles, id)
	}
	r.f.sfrs["sfr-1"] = types.SpotFleetRequestConfig{SpotFleetRequestId: aws.String("sfr-1"), SpotFleetRequestState: types.BatchStateActive,
		ActivityStatus: types.ActivityStatusError, SpotFleetRequestConfig: &types.SpotFleetRequestConfigData{
			TargetCapacity: aws.Int32(5), FulfilledCapacity: aws.Float64(2), ValidUntil: aws.Time(now.Add(time.Minute))}}
	r.f.sfrs["sfr-2"] = types.SpotFleetRequestConfig{SpotFleetRequestId: aws.String("sfr-2"), SpotFleetRequestState: types.BatchStateActive,
		SpotFleetRequestConfig: &types.SpotFleetRequestConfigData{TargetCapacity: aws.Int32(5), FulfilledCapacity: aws.Float64(2),
			ValidUntil: aws.Time(now.Add(-time.Second))}}
	handles = append(handles, "sfr-1", "sfr-2", "sfr-gone", "fleet-gone", "bogus")
	for i := range 60 {
		n := fmt.Sprintf("ohfp-req-%02d", i)
		g := astypes.AutoScalingGroup{AutoScalingGroupName: aws.String(n), DesiredCapacity: aws.Int32(3),
			Instances: []astypes.Instance{{InstanceId: aws.String("i-1"), LifecycleState: astypes.LifecycleStateInService, WeightedCapacity: aws.String("2")},
				{InstanceId: aws.String("i-2"), LifecycleState: astypes.LifecycleStateTerminating, WeightedCapacity: aws.String("2")}}}
		if i == 0 {
			g.Tags = []astypes.TagDescription{{Key: aws.String(TagCapped), Value: aws.String("true")}}
		}
		r.a.groups[n] = g
		handles = append(handles, "asg:"+n)
	}
	r.a.activities = []astypes.Activity{{StatusCode: astypes.ScalingActivityStatusCodeFailed, StartTime: aws.Time(now),
		StatusMessage: aws.String("InsufficientInstanceCapacity - no c5.large")}}

	got, err := r.p.Poll(ctx, handles)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "statuses", len(got), len(handles))
	eq(t, "DescribeFleets calls", len(r.f.describeFleets), 2) // all ids, then again without the unknown one
	eq(t, "DescribeFleets first call", len(r.f.describeFleets[0]), 5)
	eq(t, "DescribeSpotFleetRequests calls", len(r.f.describeSFRs), 2)
	eq(t, "DescribeAutoScalingGroups calls", len(r.a.describes), 2)
	eq(t, "spot history calls (only the one in error)", r.f.sfrHistoryCalls, 1)
	// Request and maintain fleets report errors only in their history: read
	// for the one in error and the maintain one still short.
	eq(t, "fleet history calls (in error, or short)", r.log.count("DescribeFleetHistory"), 2)

	show := func(h string) string {
		s := got[h]
		return fmt.Sprintf("%d/%d closed=%v gone=%v errors=%v", s.Fulfilled, s.Target, s.Closed, s.Gone, s.Errors)
	}
	eq(t, "maintain pending", show("fleet-0"), "3/4 closed=false gone=false errors=[InsufficientInstanceCapacity: no c5.large]")
	eq(t, "request fulfilled", show("fleet-1"), "3/4 closed=true gone=false errors=[]")
	eq(t, "maintain in error", show("fleet-2"), "3/4 closed=false gone=false errors=[InsufficientInstanceCapacity: no c5.large]")
	eq(t, "deleted", show("fleet-3"), "3/4 closed=true gone=true errors=[]")
	// Unknown: not visible yet, or deleted long ago: NotFound, not Gone.
	eq(t, "unknown fleet", show("fleet-gone"), "0/0 closed=false gone=false errors=[]")
	eq(t, "unknown fleet not found", got["fleet-gone"].NotFound, true)
	eq(t, "sfr in error", show("sfr-1"), "2/5 closed=false gone=false errors=[launchSpecUnusable: price too low]")
	eq(t, "sfr expired", show("sfr-2"), "2/5 closed=true gone=false errors=[]")
	eq(t, "sfr unknown", got["sfr-gone"].NotFound && !got["sfr-gone"].Gone, true)
	eq(t, "bogus", got["bogus"].Gone && len(got["bogus"].Errors) == 1, true)
	eq(t, "capped group", show("asg:ohfp-req-00"), "2/3 closed=true gone=false errors=[]")
	eq(t, "group short", show("asg:ohfp-req-01"), "2/3 closed=false gone=false errors=[ScalingActivityFailed: InsufficientInstanceCapacity - no c5.large]")
}

func TestReleaseLowersBeforeTerminating(t *testing.T) {
	r := newFleetRig()
	ctx := context.Background()
	a := r.e.addFleetInstance("c5.xlarge", ohfpTags)
	b := r.e.addFleetInstance("c5.large", ohfpTags)
	weights := []types.FleetLaunchTemplateConfig{{Overrides: []types.FleetLaunchTemplateOverrides{
		{InstanceType: "c5.large", WeightedCapacity: aws.Float64(1)}, {InstanceType: "c5.xlarge", WeightedCapacity: aws.Float64(2)}}}}
	r.f.fleets["fleet-m"] = types.FleetData{FleetId: aws.String("fleet-m"), Type: types.FleetTypeMaintain, FleetState: types.FleetStateCodeActive,
		LaunchTemplateConfigs: weights, TargetCapacitySpecification: &types.TargetCapacitySpecification{TotalTargetCapacity: aws.Int32(5)}}

	if err := r.p.Release(ctx, "fleet-m", []string{a}, 2); err != nil {
		t.Fatal(err)
	}
	eq(t, "order", r.log.list(), []string{"DescribeFleets", "DescribeInstances", "ModifyFleet", "TerminateInstances"})
	m := r.f.modifyFleet[0]
	eq(t, "new target", aws.ToInt32(m.TargetCapacitySpecification.TotalTargetCapacity), 3)
	eq(t, "no-termination", m.ExcessCapacityTerminationPolicy, "no-termination")

	// Twice: the instance is already shutting down, nothing is lowered again.
	r.log.reset()
	if err := r.p.Release(ctx, "fleet-m", []string{a}, 2); err != nil {
		t.Fatal(err)
	}
	eq(t, "second call", r.log.list(), []string{"DescribeFleets", "DescribeInstances", "TerminateInstances"})

	// One of two still alive: only its weight; never below 0.
	r.log.reset()
	// (An id EC2 does not know comes back NotFound, the others released.)
	if err := r.p.Release(ctx, "fleet-m", []string{a, b, "i-0ffffffffffffffff"}, 5); provider.KindOf(err) != provider.NotFound {
		t.Fatalf("Release with an unknown id: %v, want NotFound", err)
	}
	eq(t, "partial lower", aws.ToInt32(r.f.modifyFleet[1].TargetCapacitySpecification.TotalTargetCapacity), 2)
	r.f.fleets["fleet-m"].TargetCapacitySpecification.TotalTargetCapacity = aws.Int32(1)
	c := r.e.addFleetInstance("c5.xlarge", ohfpTags)
	if err := r.p.Release(ctx, "fleet-m", []string{c}, 2); err != nil {
		t.Fatal(err)
	}
	eq(t, "floor at 0", aws.ToInt32(r.f.modifyFleet[2].TargetCapacitySpecification.TotalTargetCapacity), 0)

	// A request fleet cannot be modified and replaces nothing: terminate only.
	r.f.fleets["fleet-r"] = types.FleetData{FleetId: aws.String("fleet-r"), Type: types.FleetTypeRequest, FleetState: types.FleetStateCodeActive,
		TargetCapacitySpecification: &types.TargetCapacitySpecification{TotalTargetCapacity: aws.Int32(5)}}
	d := r.e.addFleetInstance("c5.large", ohfpTags)
	r.log.reset()
	if err := r.p.Release(ctx, "fleet-r", []string{d}, 1); err != nil {
		t.Fatal(err)
	}
	eq(t, "request fleet", r.log.list(), []string{"DescribeFleets", "TerminateInstances"})

	// Spot Fleet maintain likewise.
	r.f.sfrs["sfr-m"] = types.SpotFleetRequestConfig{SpotFleetRequestId: aws.String("sfr-m"), SpotFleetRequestState: types.BatchStateActive,
		SpotFleetRequestConfig: &types.SpotFleetRequestConfigData{Type: types.FleetTypeMaintain, TargetCapacity: aws.Int32(4), OnDemandTargetCapacity: aws.Int32(4)}}
	e := r.e.addFleetInstance("c5.large", ohfpTags)
	r.log.reset()
	if err := r.p.Release(ctx, "sfr-m", []string{e}, 1); err != nil {
		t.Fatal(err)
	}
	eq(t, "spot order", r.log.list(), []string{"DescribeSpotFleetRequests", "DescribeInstances", "ModifySpotFleetRequest", "TerminateInstances"})
	ms := r.f.modifySFR[0]
	eq(t, "spot target/od/policy", sp(aws.ToInt32(ms.TargetCapacity), aws.ToInt32(ms.OnDemandTargetCapacity), ms.ExcessCapacityTerminationPolicy), "3 3 noTermination")
}

func TestReleaseAndCapASG(t *testing.T) {
	r := newFleetRig()
	ctx := context.Background()
	r.a.groups["ohfp-req-1"] = astypes.AutoScalingGroup{AutoScalingGroupName: aws.String("ohfp-req-1"), DesiredCapacity: aws.Int32(2),
		Instances: []astypes.Instance{{InstanceId: aws.String("i-1")}, {InstanceId: aws.String("i-2")}}}
	if err := r.p.Release(ctx, "asg:ohfp-req-1", []string{"i-1"}, 1); err != nil {
		t.Fatal(err)
	}
	eq(t, "decrement", aws.ToBool(r.a.terminates[0].ShouldDecrementDesiredCapacity), true)
	eq(t, "desired", aws.ToInt32(r.a.groups["ohfp-req-1"].DesiredCapacity), 1)
	// Twice: not in the group any more; nothing lowered; EC2 does not know
	// it either here: NotFound (a later describe tells).
	if err := r.p.Release(ctx, "asg:ohfp-req-1", []string{"i-1"}, 1); err != nil && provider.KindOf(err) != provider.NotFound {
		t.Fatal(err)
	}
	eq(t, "desired after second call", aws.ToInt32(r.a.groups["ohfp-req-1"].DesiredCapacity), 1)

	if err := r.p.Cap(ctx, "asg:ohfp-req-1", 1); err != nil {
		t.Fatal(err)
	}
	u := r.a.updates[0]
	eq(t, "cap", sp(aws.ToInt32(u.MinSize), aws.ToInt32(u.MaxSize), aws.ToInt32(u.DesiredCapacity)), "0 1 1")
	st, _ := r.p.Poll(ctx, []string{"asg:ohfp-req-1"})
	eq(t, "closed after cap", st["asg:ohfp-req-1"].Closed, true)
}

func TestCapFleets(t *testing.T) {
	r := newFleetRig()
	ctx := context.Background()
	r.f.fleets["fleet-m"] = types.FleetData{FleetId: aws.String("fleet-m"), Type: types.FleetTypeMaintain, FleetState: types.FleetStateCodeActive,
		TargetCapacitySpecification: &types.TargetCapacitySpecification{TotalTargetCapacity: aws.Int32(5)}}
	r.f.fleets["fleet-r"] = types.FleetData{FleetId: aws.String("fleet-r"), Type: types.FleetTypeRequest, FleetState: types.FleetStateCodeActive,
		TargetCapacitySpecification: &types.TargetCapacitySpecification{TotalTargetCapacity: aws.Int32(5)}}
	r.f.sfrs["sfr-r"] = types.SpotFleetRequestConfig{SpotFleetRequestId: aws.String("sfr-r"), SpotFleetRequestState: types.BatchStateActive,
		SpotFleetRequestConfig: &types.SpotFleetRequestConfigData{Type: types.FleetTypeRequest, TargetCapacity: aws.Int32(4)}}
	for _, h := range []string{"fleet-m", "fleet-r", "sfr-r"} {
		if err := r.p.Cap(ctx, h, 2); err != nil {
			t.Fatal(h, err)
		}
	}
	eq(t, "maintain: modify", aws.ToInt32(r.f.modifyFleet[0].TargetCapacitySpecification.TotalTargetCapacity), 2)
	eq(t, "maintain: no-termination", r.f.modifyFleet[0].ExcessCapacityTerminationPolicy, "no-termination")
	eq(t, "request: delete keeping instances", aws.ToBool(r.f.deleteFleets[0].TerminateInstances), false)
	eq(t, "spot request: cancel keeping instances", aws.ToBool(r.f.cancelSFRs[0].TerminateInstances), false)
	eq(t, "no termination", r.log.count("TerminateInstances"), 0)
	st, err := r.p.Poll(ctx, []string{"fleet-m", "fleet-r", "sfr-r"})
	if err != nil {
		t.Fatal(err)
	}
	for h, s := range st {
		if !s.Closed || s.Gone {
			t.Errorf("%s after Cap: %+v", h, s)
		}
	}
}

func TestDeleteRemovesLaunchTemplate(t *testing.T) {
	r := newFleetRig()
	ctx := context.Background()
	r.s.params["/aws/service/ami-al2023"] = "ami-1"
	r.e.images["ami-1"] = "/dev/xvda"
	res, err := r.p.Launch(ctx, hetSpec(template.APIEC2Fleet))
	if err != nil {
		t.Fatal(err)
	}
	left := r.e.addFleetInstance("c5.large", map[string]string{awsFleetTag: res.Handle})
	if err := r.p.Delete(ctx, res.Handle); err != nil {
		t.Fatal(err)
	}
	eq(t, "DeleteFleets terminate", aws.ToBool(r.f.deleteFleets[0].TerminateInstances), true)
	eq(t, "deleted LTs", r.f.deletedLTs, []string{"ohfp-req-1"})
	eq(t, "left-over instance terminated", r.e.terminatedSet[left], true)
	if err := r.p.Delete(ctx, res.Handle); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if err := r.p.Delete(ctx, "fleet-unknown"); err != nil {
		t.Errorf("Delete of an unknown fleet: %v", err)
	}

	spec := hetSpec(template.APIASG)
	spec.RequestID = "req-9"
	res, err = r.p.Launch(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.p.Delete(ctx, res.Handle); err != nil {
		t.Fatal(err)
	}
	eq(t, "force delete", aws.ToBool(r.a.deletes[0].ForceDelete), true)
	eq(t, "group LT deleted", slices.Contains(r.f.deletedLTs, "ohfp-req-9"), true)
	if err := r.p.Delete(ctx, "nonsense"); provider.KindOf(err) != provider.Fatal {
		t.Errorf("bad handle: %v", err)
	}
}

func TestUserLaunchTemplateIsCopied(t *testing.T) {
	r := newFleetRig()
	r.f.userLT["lt-0user@7"] = types.ResponseLaunchTemplateData{
		ImageId: aws.String("ami-user"), InstanceType: "m5.large", KeyName: aws.String("user-key"),
		InstanceMarketOptions: &types.LaunchTemplateInstanceMarketOptions{MarketType: types.MarketTypeSpot},
		NetworkInterfaces: []types.LaunchTemplateInstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0),
			SubnetId: aws.String("subnet-user"), Groups: []string{"sg-user"}, AssociatePublicIpAddress: aws.Bool(true)}},
		TagSpecifications: []types.LaunchTemplateTagSpecification{{ResourceType: types.ResourceTypeInstance,
			Tags: []types.Tag{{Key: aws.String("cost-center"), Value: aws.String("42")}}}},
		MetadataOptions: &types.LaunchTemplateInstanceMetadataOptions{HttpTokens: types.LaunchTemplateHttpTokensStateRequired},
	}
	tpl := template.Template{TemplateID: "t", LaunchTemplateID: "lt-0user", LaunchTemplateV: "7", VMTypes: template.Weights{{Type: "c5.large", Weight: 1}},
		SubnetIDs: []string{"subnet-a"}, SecurityGroupIDs: []string{"sg-1"}, ProviderAPI: template.APIEC2Fleet, PriceType: "spot"}
	if _, err := r.p.Launch(context.Background(), provider.LaunchSpec{RequestID: "req-u", Template: tpl, Units: 1, Tags: ohfpTags}); err != nil {
		t.Fatal(err)
	}
	d := r.f.createLT[0].LaunchTemplateData
	eq(t, "image kept", aws.ToString(d.ImageId), "ami-user")
	eq(t, "key kept", aws.ToString(d.KeyName), "user-key")
	eq(t, "type from template", d.InstanceType, "c5.large")
	eq(t, "market options dropped", d.InstanceMarketOptions == nil, true)
	eq(t, "metadata copied", d.MetadataOptions != nil && d.MetadataOptions.HttpTokens == "required", true)
	ni := d.NetworkInterfaces[0]
	eq(t, "groups on the interface", ni.Groups, []string{"sg-1"})
	eq(t, "subnet left to overrides", ni.SubnetId == nil, true)
	eq(t, "public ip kept", aws.ToBool(ni.AssociatePublicIpAddress), true)
	eq(t, "no instance-level groups", d.SecurityGroupIds == nil, true)
	inst := d.TagSpecifications[0]
	eq(t, "instance tags", inst.ResourceType, types.ResourceTypeInstance)
	cc, _ := tagValueOf(inst.Tags, "cost-center")
	rq, _ := tagValueOf(inst.Tags, provider.TagRequestID)
	eq(t, "user tag + ohfp tag", cc+" "+rq, "42 req-1")
	eq(t, "user's template untouched", r.f.createLT[0].LaunchTemplateName != nil && *r.f.createLT[0].LaunchTemplateName == "ohfp-req-u", true)
}

// sp prints values separated by spaces.
func sp(a ...any) string { return strings.TrimSpace(fmt.Sprintln(a...)) }

// TestEC2FleetConfigPairsAsWritten: an ec2FleetConfig file that puts
// c5.large in subnet-a and c5.xlarge in subnet-b (template.FleetOverrides)
// gives CreateFleet those two overrides, as IBM's plugin sends the file,
// not every type in every subnet (adversarial report on issue 15, 6).
func TestEC2FleetConfigPairsAsWritten(t *testing.T) {
	r := newFleetRig()
	r.s.params["/aws/service/ami-al2023"] = "ami-0123456789abcdef0"
	r.e.images["ami-0123456789abcdef0"] = "/dev/xvda"
	spec := hetSpec(template.APIEC2Fleet)
	spec.Template.VMTypesOnDemand = nil
	spec.Template.FleetOverrides = []template.FleetOverride{{Type: "c5.large", Subnet: "subnet-a"}, {Type: "c5.xlarge", Subnet: "subnet-b"}}
	if _, err := r.p.Launch(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range r.f.createFleet[0].LaunchTemplateConfigs[0].Overrides {
		got = append(got, sp(o.InstanceType, aws.ToString(o.SubnetId), aws.ToFloat64(o.WeightedCapacity)))
	}
	eq(t, "overrides", got, []string{"c5.large subnet-a 1", "c5.xlarge subnet-b 2"})
}
