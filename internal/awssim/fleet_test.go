package awssim

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func ltConfig(ltID string, ovs ...types.FleetLaunchTemplateOverridesRequest) []types.FleetLaunchTemplateConfigRequest {
	return []types.FleetLaunchTemplateConfigRequest{{
		LaunchTemplateSpecification: &types.FleetLaunchTemplateSpecificationRequest{LaunchTemplateId: aws.String(ltID), Version: aws.String("$Latest")},
		Overrides:                   ovs,
	}}
}

func ov(typ types.InstanceType, subnet string, weight float64) types.FleetLaunchTemplateOverridesRequest {
	return types.FleetLaunchTemplateOverridesRequest{InstanceType: typ, SubnetId: aws.String(subnet), WeightedCapacity: aws.Float64(weight)}
}

func (e *fleetEnv) describeFleet(t *testing.T, id string) types.FleetData {
	t.Helper()
	out, err := e.ec2.DescribeFleets(e.ctx, &ec2.DescribeFleetsInput{FleetIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeFleets: %v", err)
	}
	if len(out.Fleets) != 1 {
		t.Fatalf("DescribeFleets returned %d fleets", len(out.Fleets))
	}
	return out.Fleets[0]
}

func (e *fleetEnv) fleetInstances(t *testing.T, id string) []types.ActiveInstance {
	t.Helper()
	out, err := e.ec2.DescribeFleetInstances(e.ctx, &ec2.DescribeFleetInstancesInput{FleetId: aws.String(id)})
	if err != nil {
		t.Fatalf("DescribeFleetInstances: %v", err)
	}
	return out.ActiveInstances
}

func TestFleetInstantICEInErrors(t *testing.T) {
	e := newFleetEnv(t)
	lt := e.addLT(t, "hf", "m5.large", map[string]string{"from-lt": "yes"})
	a, b := e.sn[e.az[0]], e.sn[e.az[1]]
	e.r.SetCapacity("m5.large", e.az[0], 1)
	e.r.SetCapacity("c5.large", e.az[1], 0)

	out, err := e.ec2.CreateFleet(e.ctx, &ec2.CreateFleetInput{
		Type:                  types.FleetTypeInstant,
		LaunchTemplateConfigs: ltConfig(lt, ov("m5.large", a, 2), ov("c5.large", b, 1)),
		TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{
			TotalTargetCapacity: aws.Int32(5), DefaultTargetCapacityType: types.DefaultTargetCapacityTypeOnDemand},
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("ohfp:request"), Value: aws.String("req-1")}}},
			{ResourceType: types.ResourceTypeFleet, Tags: []types.Tag{{Key: aws.String("fleet-tag"), Value: aws.String("f")}}},
		},
	})
	if err != nil {
		t.Fatalf("CreateFleet: %v", err)
	}
	if len(out.Instances) != 1 || len(out.Instances[0].InstanceIds) != 1 {
		t.Fatalf("Instances = %+v, want one m5.large", out.Instances)
	}
	got := out.Instances[0]
	if got.InstanceType != "m5.large" || got.Lifecycle != types.InstanceLifecycleOnDemand ||
		aws.ToString(got.LaunchTemplateAndOverrides.Overrides.SubnetId) != a ||
		aws.ToFloat64(got.LaunchTemplateAndOverrides.Overrides.WeightedCapacity) != 2 ||
		aws.ToString(got.LaunchTemplateAndOverrides.LaunchTemplateSpecification.LaunchTemplateId) != lt {
		t.Errorf("instance group = %+v", got)
	}
	if len(out.Errors) != 2 {
		t.Fatalf("Errors = %+v, want ICE for both pools", out.Errors)
	}
	for _, fe := range out.Errors {
		if aws.ToString(fe.ErrorCode) != "InsufficientInstanceCapacity" || aws.ToString(fe.ErrorMessage) == "" || fe.Lifecycle != types.InstanceLifecycleOnDemand {
			t.Errorf("error = %+v", fe)
		}
	}
	if typ := out.Errors[1].LaunchTemplateAndOverrides.Overrides.InstanceType; typ != "c5.large" {
		t.Errorf("second error is for %s, want c5.large", typ)
	}
	in, ok := e.r.Instance(got.InstanceIds[0])
	if !ok {
		t.Fatal("instance not in region")
	}
	for k, v := range map[string]string{FleetIDTag: aws.ToString(out.FleetId), "ohfp:request": "req-1", "from-lt": "yes", "aws:ec2launchtemplate:id": lt} {
		if in.Tags[k] != v {
			t.Errorf("tag %s = %q, want %q (tags %v)", k, in.Tags[k], v, in.Tags)
		}
	}
	if in.Weight != 2 || in.Spot {
		t.Errorf("instance weight %v spot %v", in.Weight, in.Spot)
	}

	fd := e.describeFleet(t, aws.ToString(out.FleetId))
	if fd.Type != types.FleetTypeInstant || fd.FleetState != types.FleetStateCodeActive || aws.ToFloat64(fd.FulfilledCapacity) != 2 ||
		len(fd.Instances) != 1 || len(fd.Errors) != 2 || len(fd.Tags) != 1 || aws.ToInt32(fd.TargetCapacitySpecification.TotalTargetCapacity) != 5 {
		t.Errorf("DescribeFleets = %+v", fd)
	}

	// capacity comes back: an instant fleet does not top up
	e.r.SetCapacity("m5.large", e.az[0], -1)
	e.advance(5 * time.Second)
	if n := len(e.live(aws.ToString(out.FleetId))); n != 1 {
		t.Errorf("instant fleet has %d instances after capacity returned, want 1", n)
	}

	// instant fleets cannot be deleted without terminating their instances
	del, err := e.ec2.DeleteFleets(e.ctx, &ec2.DeleteFleetsInput{FleetIds: []string{aws.ToString(out.FleetId)}, TerminateInstances: aws.Bool(false)})
	if err != nil {
		t.Fatalf("DeleteFleets: %v", err)
	}
	if len(del.UnsuccessfulFleetDeletions) != 1 || del.UnsuccessfulFleetDeletions[0].Error.Code != types.DeleteFleetErrorCodeFleetNotInDeletableState {
		t.Errorf("DeleteFleets(no terminate) = %+v", del)
	}
	del, err = e.ec2.DeleteFleets(e.ctx, &ec2.DeleteFleetsInput{FleetIds: []string{aws.ToString(out.FleetId), "fleet-00000000-0000-0000-0000-000000000000"}, TerminateInstances: aws.Bool(true)})
	if err != nil {
		t.Fatalf("DeleteFleets: %v", err)
	}
	if len(del.SuccessfulFleetDeletions) != 1 || del.SuccessfulFleetDeletions[0].CurrentFleetState != types.FleetStateCodeDeletedTerminatingInstances ||
		len(del.UnsuccessfulFleetDeletions) != 1 || del.UnsuccessfulFleetDeletions[0].Error.Code != types.DeleteFleetErrorCodeFleetIdDoesNotExist {
		t.Errorf("DeleteFleets = %+v", del)
	}
	e.advance(2 * time.Second)
	if fd := e.describeFleet(t, aws.ToString(out.FleetId)); fd.FleetState != types.FleetStateCodeDeleted {
		t.Errorf("fleet state after delete = %s, want deleted", fd.FleetState)
	}
	if in, _ := e.r.Instance(got.InstanceIds[0]); in.State != stateTerminated {
		t.Errorf("instance state %s, want terminated", in.State)
	}
}

func TestFleetRequestPartlyFulfilledThenToppedUp(t *testing.T) {
	e := newFleetEnv(t)
	lt := e.addLT(t, "req", "m5.large", nil)
	a := e.sn[e.az[0]]
	e.r.SetCapacity("m5.large", e.az[0], 2)
	out, err := e.ec2.CreateFleet(e.ctx, &ec2.CreateFleetInput{
		Type:                  types.FleetTypeRequest,
		LaunchTemplateConfigs: ltConfig(lt, ov("m5.large", a, 1)),
		TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{
			TotalTargetCapacity: aws.Int32(4), DefaultTargetCapacityType: types.DefaultTargetCapacityTypeSpot},
		SpotOptions: &types.SpotOptionsRequest{AllocationStrategy: types.SpotAllocationStrategyPriceCapacityOptimized},
	})
	if err != nil {
		t.Fatalf("CreateFleet: %v", err)
	}
	id := aws.ToString(out.FleetId)
	if len(out.Instances) != 0 || len(out.Errors) != 0 {
		t.Errorf("request fleet answered instances/errors: %+v %+v", out.Instances, out.Errors)
	}
	fd := e.describeFleet(t, id)
	if aws.ToFloat64(fd.FulfilledCapacity) != 2 || fd.ActivityStatus != types.FleetActivityStatusError || len(fd.Errors) != 0 {
		t.Errorf("partly fulfilled fleet = state %s activity %s fulfilled %v errors %+v (Errors: instant fleets only)", fd.FleetState, fd.ActivityStatus, aws.ToFloat64(fd.FulfilledCapacity), fd.Errors)
	}
	// The launch errors of a request fleet are in its history, describable
	// within HistoryDelay.
	e.advance(HistoryDelay)
	h, err := e.ec2.DescribeFleetHistory(e.ctx, &ec2.DescribeFleetHistoryInput{FleetId: aws.String(id), StartTime: aws.Time(t0), EventType: types.FleetEventTypeServiceError})
	if err != nil || len(h.HistoryRecords) == 0 || !strings.Contains(aws.ToString(h.HistoryRecords[0].EventInformation.EventDescription), "InsufficientInstanceCapacity") {
		t.Errorf("DescribeFleetHistory = %+v, %v", h, err)
	}
	if n := len(e.fleetInstances(t, id)); n != 2 {
		t.Errorf("DescribeFleetInstances: %d instances, want 2", n)
	}

	e.r.SetCapacity("m5.large", e.az[0], 10)
	e.advance(time.Second)
	fd = e.describeFleet(t, id)
	if aws.ToFloat64(fd.FulfilledCapacity) != 4 || fd.ActivityStatus != types.FleetActivityStatusFulfilled || len(fd.Errors) != 0 {
		t.Errorf("after capacity returned: activity %s fulfilled %v errors %+v", fd.ActivityStatus, aws.ToFloat64(fd.FulfilledCapacity), fd.Errors)
	}
	act := e.fleetInstances(t, id)
	if len(act) != 4 || aws.ToString(act[0].SpotInstanceRequestId) == "" {
		t.Fatalf("active instances = %+v", act)
	}

	// a request fleet does not replace an interrupted Spot instance
	victim := aws.ToString(act[0].InstanceId)
	if err := e.r.InterruptSpot(victim); err != nil {
		t.Fatal(err)
	}
	e.advance(SpotInterruptionNotice + 2*time.Second)
	if in, _ := e.r.Instance(victim); in.State != stateTerminated {
		t.Errorf("interrupted instance state %s", in.State)
	}
	e.advance(time.Second)
	if n := len(e.live(id)); n != 3 {
		t.Errorf("request fleet has %d live instances after an interruption, want 3 (no replacement)", n)
	}
	if _, err := e.ec2.ModifyFleet(e.ctx, &ec2.ModifyFleetInput{FleetId: aws.String(id), TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{TotalTargetCapacity: aws.Int32(1)}}); apiCode(err) != "UnsupportedOperation" {
		t.Errorf("ModifyFleet on a request fleet: %v, want UnsupportedOperation", err)
	}
}

func TestFleetMaintainReplacesUnlessCapacityLoweredFirst(t *testing.T) {
	e := newFleetEnv(t)
	lt := e.addLT(t, "maint", "m5.large", nil)
	out, err := e.ec2.CreateFleet(e.ctx, &ec2.CreateFleetInput{
		Type: types.FleetTypeMaintain,
		LaunchTemplateConfigs: ltConfig(lt,
			ov("m5.large", e.sn[e.az[0]], 2),
			ov("c5.large", e.sn[e.az[1]], 1)),
		TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{
			TotalTargetCapacity: aws.Int32(4), DefaultTargetCapacityType: types.DefaultTargetCapacityTypeSpot},
		ExcessCapacityTerminationPolicy: types.FleetExcessCapacityTerminationPolicyNoTermination,
	})
	if err != nil {
		t.Fatalf("CreateFleet: %v", err)
	}
	id := aws.ToString(out.FleetId)
	live := e.live(id)
	// lowest price per unit: m5.large at weight 2 beats c5.large at 1
	if len(live) != 2 || live[0].InstanceType != "m5.large" || units(live) != 4 || !live[0].Spot {
		t.Fatalf("maintain fleet launched %+v", live)
	}
	e.advance(2 * time.Second)

	// terminated without lowering capacity: replaced
	if err := e.r.TerminateFromConsole(live[0].ID); err != nil {
		t.Fatal(err)
	}
	e.advance(time.Second)
	now := e.live(id)
	if len(now) != 2 || now[0].ID == live[0].ID && now[1].ID == live[0].ID || units(now) != 4 {
		t.Fatalf("after a termination the fleet holds %+v, want a replacement", now)
	}
	act := e.fleetInstances(t, id)
	if len(act) != 2 || act[0].InstanceHealth != "healthy" {
		t.Errorf("DescribeFleetInstances = %+v", act)
	}

	// lower first (no-termination), then terminate: no replacement
	if _, err := e.ec2.ModifyFleet(e.ctx, &ec2.ModifyFleetInput{FleetId: aws.String(id),
		TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{TotalTargetCapacity: aws.Int32(2)}}); err != nil {
		t.Fatalf("ModifyFleet: %v", err)
	}
	if n := len(e.live(id)); n != 2 {
		t.Fatalf("no-termination ModifyFleet left %d instances, want 2", n)
	}
	if err := e.r.TerminateFromConsole(now[1].ID); err != nil {
		t.Fatal(err)
	}
	e.advance(5 * time.Second)
	if left := e.live(id); len(left) != 1 || left[0].ID != now[0].ID {
		t.Errorf("after lowering then terminating: %+v, want only %s", left, now[0].ID)
	}
	fd := e.describeFleet(t, id)
	if aws.ToInt32(fd.TargetCapacitySpecification.TotalTargetCapacity) != 2 || aws.ToFloat64(fd.FulfilledCapacity) != 2 || fd.FleetState != types.FleetStateCodeActive {
		t.Errorf("fleet = state %s target %d fulfilled %v", fd.FleetState, aws.ToInt32(fd.TargetCapacitySpecification.TotalTargetCapacity), aws.ToFloat64(fd.FulfilledCapacity))
	}

	// a Spot interruption is replaced too
	if err := e.r.InterruptSpot(now[0].ID); err != nil {
		t.Fatal(err)
	}
	e.advance(SpotInterruptionNotice + time.Second)
	if left := e.live(id); len(left) != 1 || left[0].ID == now[0].ID {
		t.Errorf("after an interruption: %+v, want one replacement", left)
	}

	// lowering with termination terminates the excess itself
	if _, err := e.ec2.ModifyFleet(e.ctx, &ec2.ModifyFleetInput{FleetId: aws.String(id),
		ExcessCapacityTerminationPolicy: types.FleetExcessCapacityTerminationPolicyTermination,
		TargetCapacitySpecification:     &types.TargetCapacitySpecificationRequest{TotalTargetCapacity: aws.Int32(0)}}); err != nil {
		t.Fatalf("ModifyFleet: %v", err)
	}
	e.advance(5 * time.Second)
	if left := e.live(id); len(left) != 0 {
		t.Errorf("after ModifyFleet to 0 with termination: %+v", left)
	}
	del, err := e.ec2.DeleteFleets(e.ctx, &ec2.DeleteFleetsInput{FleetIds: []string{id}, TerminateInstances: aws.Bool(false)})
	if err != nil || len(del.SuccessfulFleetDeletions) != 1 {
		t.Fatalf("DeleteFleets = %+v, %v", del, err)
	}
	e.advance(time.Second)
	if fd := e.describeFleet(t, id); fd.FleetState != types.FleetStateCodeDeleted {
		t.Errorf("state %s, want deleted", fd.FleetState)
	}
	if _, err := e.ec2.ModifyFleet(e.ctx, &ec2.ModifyFleetInput{FleetId: aws.String(id),
		TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{TotalTargetCapacity: aws.Int32(1)}}); apiCode(err) != "IncorrectState" {
		t.Errorf("ModifyFleet on a deleted fleet: %v", err)
	}
}

func TestFleetValidUntilAndDeleteRunning(t *testing.T) {
	e := newFleetEnv(t)
	lt := e.addLT(t, "exp", "c5.large", nil)
	until := e.clk.Now().Add(10 * time.Minute)
	out, err := e.ec2.CreateFleet(e.ctx, &ec2.CreateFleetInput{
		Type:                             types.FleetTypeMaintain,
		LaunchTemplateConfigs:            ltConfig(lt),
		TargetCapacitySpecification:      &types.TargetCapacitySpecificationRequest{TotalTargetCapacity: aws.Int32(2), DefaultTargetCapacityType: types.DefaultTargetCapacityTypeOnDemand},
		ValidUntil:                       aws.Time(until),
		TerminateInstancesWithExpiration: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.FleetId)
	if n := len(e.live(id)); n != 2 {
		t.Fatalf("%d instances, want 2", n)
	}
	e.advance(11 * time.Minute)
	e.advance(2 * time.Second)
	if n := len(e.live(id)); n != 0 {
		t.Errorf("%d live instances after ValidUntil with TerminateInstancesWithExpiration", n)
	}
	if fd := e.describeFleet(t, id); fd.FleetState != types.FleetStateCodeDeleted {
		t.Errorf("expired fleet state %s", fd.FleetState)
	}
}

func TestCreateFleetIdempotencyAndErrors(t *testing.T) {
	e := newFleetEnv(t)
	lt := e.addLT(t, "idem", "m5.large", nil)
	in := func(total int32) *ec2.CreateFleetInput {
		return &ec2.CreateFleetInput{
			ClientToken:                 aws.String("tok-1"),
			Type:                        types.FleetTypeInstant,
			LaunchTemplateConfigs:       ltConfig(lt),
			TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{TotalTargetCapacity: aws.Int32(total), DefaultTargetCapacityType: types.DefaultTargetCapacityTypeOnDemand},
		}
	}
	first, err := e.ec2.CreateFleet(e.ctx, in(2))
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.ec2.CreateFleet(e.ctx, in(2))
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(first.FleetId) != aws.ToString(again.FleetId) || len(again.Instances) != 1 ||
		again.Instances[0].InstanceIds[0] != first.Instances[0].InstanceIds[0] {
		t.Errorf("same token returned %+v, first %+v", again, first)
	}
	if n := len(e.live(aws.ToString(first.FleetId))); n != 2 {
		t.Errorf("%d instances after a repeated call, want 2", n)
	}
	if _, err := e.ec2.CreateFleet(e.ctx, in(3)); apiCode(err) != "IdempotentParameterMismatch" {
		t.Errorf("other parameters, same token: %v", err)
	}

	bad := in(1)
	bad.ClientToken = nil
	bad.TargetCapacitySpecification.DefaultTargetCapacityType = ""
	if _, err := e.ec2.CreateFleet(e.ctx, bad); apiCode(err) != "MissingParameter" {
		t.Errorf("without DefaultTargetCapacityType: %v", err)
	}
	bad = in(1)
	bad.ClientToken = nil
	bad.Type = types.FleetTypeMaintain
	bad.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}}
	if _, err := e.ec2.CreateFleet(e.ctx, bad); apiCode(err) != "InvalidParameterValue" {
		t.Errorf("instance tags on a maintain fleet: %v", err)
	}
	bad = in(1)
	bad.ClientToken = nil
	bad.LaunchTemplateConfigs[0].LaunchTemplateSpecification.LaunchTemplateId = aws.String("lt-0123456789abcdef0")
	if _, err := e.ec2.CreateFleet(e.ctx, bad); apiCode(err) != "InvalidLaunchTemplateId.NotFound" {
		t.Errorf("unknown launch template: %v", err)
	}
	if _, err := e.ec2.DescribeFleets(e.ctx, &ec2.DescribeFleetsInput{FleetIds: []string{"fleet-00000000-0000-0000-0000-000000000000"}}); apiCode(err) != "InvalidFleetId.NotFound" {
		t.Errorf("unknown fleet: %v", err)
	}
	if _, err := e.ec2.DescribeFleetInstances(e.ctx, &ec2.DescribeFleetInstancesInput{FleetId: aws.String("nope")}); apiCode(err) != "InvalidFleetId.Malformed" {
		t.Errorf("malformed fleet id: %v", err)
	}
	all, err := e.ec2.DescribeFleets(e.ctx, &ec2.DescribeFleetsInput{Filters: []types.Filter{{Name: aws.String("type"), Values: []string{"maintain"}}}})
	if err != nil || len(all.Fleets) != 0 {
		t.Errorf("filter type=maintain: %+v %v", all, err)
	}
}

// An override carrying only fields the region does not model (a placement
// group) is accepted, as AWS accepts it, instead of crashing the call.
func TestCreateFleetOverrideWithUnmodelledFields(t *testing.T) {
	e := newFleetEnv(t)
	lt := e.addLT(t, "pg", "m5.large", nil)
	out, err := e.ec2.CreateFleet(e.ctx, &ec2.CreateFleetInput{
		Type: types.FleetTypeInstant,
		LaunchTemplateConfigs: ltConfig(lt, types.FleetLaunchTemplateOverridesRequest{
			Placement: &types.Placement{GroupName: aws.String("hpc-group")}}),
		TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{TotalTargetCapacity: aws.Int32(1), DefaultTargetCapacityType: types.DefaultTargetCapacityTypeOnDemand},
	})
	if err != nil {
		t.Fatalf("CreateFleet: %v", err)
	}
	if len(out.Instances) != 1 {
		t.Fatalf("instances %+v errors %+v", out.Instances, out.Errors)
	}
}
