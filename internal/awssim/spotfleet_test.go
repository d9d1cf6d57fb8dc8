package awssim

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

const fleetRole = "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role"

func (e *fleetEnv) describeSFR(t *testing.T, id string) types.SpotFleetRequestConfig {
	t.Helper()
	out, err := e.ec2.DescribeSpotFleetRequests(e.ctx, &ec2.DescribeSpotFleetRequestsInput{SpotFleetRequestIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeSpotFleetRequests: %v", err)
	}
	if len(out.SpotFleetRequestConfigs) != 1 {
		t.Fatalf("%d configs", len(out.SpotFleetRequestConfigs))
	}
	return out.SpotFleetRequestConfigs[0]
}

func (e *fleetEnv) ltSFR(ltID string, target int32, until time.Time, terminate bool) *ec2.RequestSpotFleetInput {
	in := &ec2.RequestSpotFleetInput{SpotFleetRequestConfig: &types.SpotFleetRequestConfigData{
		IamFleetRole:   aws.String(fleetRole),
		TargetCapacity: aws.Int32(target),
		LaunchTemplateConfigs: []types.LaunchTemplateConfig{{
			LaunchTemplateSpecification: &types.FleetLaunchTemplateSpecification{LaunchTemplateId: aws.String(ltID), Version: aws.String("1")},
			Overrides: []types.LaunchTemplateOverrides{
				{InstanceType: "c5.large", SubnetId: aws.String(e.sn[e.az[0]]), WeightedCapacity: aws.Float64(1)},
				{InstanceType: "c5.xlarge", SubnetId: aws.String(e.sn[e.az[1]]), WeightedCapacity: aws.Float64(2)},
			},
		}},
		TerminateInstancesWithExpiration: aws.Bool(terminate),
	}}
	if !until.IsZero() {
		in.SpotFleetRequestConfig.ValidUntil = aws.Time(until)
	}
	return in
}

func TestSpotFleetWeightedCapacityWithOnDemandPart(t *testing.T) {
	e := newFleetEnv(t)
	a, b := e.sn[e.az[0]], e.sn[e.az[1]]
	out, err := e.ec2.RequestSpotFleet(e.ctx, &ec2.RequestSpotFleetInput{SpotFleetRequestConfig: &types.SpotFleetRequestConfigData{
		IamFleetRole:           aws.String(fleetRole),
		TargetCapacity:         aws.Int32(10),
		OnDemandTargetCapacity: aws.Int32(2),
		Type:                   types.FleetTypeRequest,
		LaunchSpecifications: []types.SpotFleetLaunchSpecification{
			{ImageId: aws.String(e.ami), InstanceType: "m5.large", SubnetId: aws.String(a), WeightedCapacity: aws.Float64(4),
				TagSpecifications: []types.SpotFleetTagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("ohfp:request"), Value: aws.String("r-9")}}}}},
			{ImageId: aws.String(e.ami), InstanceType: "c5.large", SubnetId: aws.String(a + "," + b), WeightedCapacity: aws.Float64(2)},
		},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSpotFleetRequest, Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String("ohfp")}}}},
	}})
	if err != nil {
		t.Fatalf("RequestSpotFleet: %v", err)
	}
	id := aws.ToString(out.SpotFleetRequestId)
	live := e.live(id)
	var spotUnits, odUnits float64
	for _, in := range live {
		if in.Spot {
			spotUnits += in.Weight
		} else {
			odUnits += in.Weight
		}
		if in.Tags[SpotFleetIDTag] != id {
			t.Errorf("%s lacks the fleet tag: %v", in.ID, in.Tags)
		}
		if in.InstanceType == "m5.large" && in.Tags["ohfp:request"] != "r-9" {
			t.Errorf("%s lacks its launch specification tags: %v", in.ID, in.Tags)
		}
	}
	// cheapest per unit is m5.large at weight 4: two Spot (8 units), one on-demand (4 units)
	if len(live) != 3 || spotUnits != 8 || odUnits != 4 {
		t.Errorf("launched %+v: spot units %v on-demand units %v", live, spotUnits, odUnits)
	}
	sfr := e.describeSFR(t, id)
	cfg := sfr.SpotFleetRequestConfig
	if sfr.SpotFleetRequestState != types.BatchStateActive || sfr.ActivityStatus != types.ActivityStatusFulfilled ||
		aws.ToFloat64(cfg.FulfilledCapacity) != 12 || aws.ToFloat64(cfg.OnDemandFulfilledCapacity) != 4 ||
		aws.ToString(cfg.IamFleetRole) != fleetRole || len(cfg.LaunchSpecifications) != 2 || aws.ToFloat64(cfg.LaunchSpecifications[0].WeightedCapacity) != 4 ||
		aws.ToInt32(cfg.TargetCapacity) != 10 || cfg.Type != types.FleetTypeRequest || len(sfr.Tags) != 1 || len(cfg.TagSpecifications) != 1 {
		t.Errorf("DescribeSpotFleetRequests = %+v / %+v", sfr, cfg)
	}
	inst, err := e.ec2.DescribeSpotFleetInstances(e.ctx, &ec2.DescribeSpotFleetInstancesInput{SpotFleetRequestId: aws.String(id)})
	if err != nil || len(inst.ActiveInstances) != 3 || aws.ToString(inst.SpotFleetRequestId) != id {
		t.Errorf("DescribeSpotFleetInstances = %+v, %v", inst, err)
	}
	if _, err := e.ec2.ModifySpotFleetRequest(e.ctx, &ec2.ModifySpotFleetRequestInput{SpotFleetRequestId: aws.String(id), TargetCapacity: aws.Int32(1)}); apiCode(err) != "UnsupportedOperation" {
		t.Errorf("ModifySpotFleetRequest on a request-type fleet: %v", err)
	}
}

func TestSpotFleetValidUntilExpiry(t *testing.T) {
	e := newFleetEnv(t)
	lt := e.addLT(t, "sfr", "c5.large", nil)
	until := e.clk.Now().Add(30 * time.Minute)
	term, err := e.ec2.RequestSpotFleet(e.ctx, e.ltSFR(lt, 3, until, true))
	if err != nil {
		t.Fatalf("RequestSpotFleet: %v", err)
	}
	keep, err := e.ec2.RequestSpotFleet(e.ctx, e.ltSFR(lt, 2, until, false))
	if err != nil {
		t.Fatalf("RequestSpotFleet: %v", err)
	}
	tid, kid := aws.ToString(term.SpotFleetRequestId), aws.ToString(keep.SpotFleetRequestId)
	if units(e.live(tid)) != 3 || units(e.live(kid)) != 2 {
		t.Fatalf("launched %v and %v units", units(e.live(tid)), units(e.live(kid)))
	}
	e.advance(29 * time.Minute)
	if got := e.describeSFR(t, tid).SpotFleetRequestState; got != types.BatchStateActive {
		t.Errorf("before ValidUntil: %s", got)
	}
	e.advance(time.Minute)
	if got := e.describeSFR(t, tid).SpotFleetRequestState; got != types.BatchStateCancelledTerminatingInstances {
		t.Errorf("at ValidUntil with termination: %s", got)
	}
	if n := len(e.live(tid)); n != 0 {
		t.Errorf("%d live instances after expiry with TerminateInstancesWithExpiration", n)
	}
	e.advance(2 * time.Second)
	if got := e.describeSFR(t, tid).SpotFleetRequestState; got != types.BatchStateCancelled {
		t.Errorf("after the instances terminated: %s", got)
	}
	if got := e.describeSFR(t, kid).SpotFleetRequestState; got != types.BatchStateCancelledRunning {
		t.Errorf("expired without termination: %s", got)
	}
	kept := e.live(kid)
	if units(kept) != 2 {
		t.Errorf("instances of the expired fleet without termination: %+v", kept)
	}
	// an expired fleet no longer replaces
	if err := e.r.TerminateFromConsole(kept[0].ID); err != nil {
		t.Fatal(err)
	}
	e.advance(5 * time.Second)
	if units(e.live(kid)) != units(kept)-kept[0].Weight {
		t.Errorf("expired fleet replaced an instance: %+v", e.live(kid))
	}
}

func TestSpotFleetMaintainReplaceModifyCancel(t *testing.T) {
	e := newFleetEnv(t)
	lt := e.addLT(t, "sfr", "c5.large", nil)
	in := e.ltSFR(lt, 4, time.Time{}, false)
	in.SpotFleetRequestConfig.ClientToken = aws.String("sfr-token")
	out, err := e.ec2.RequestSpotFleet(e.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.SpotFleetRequestId)
	again, err := e.ec2.RequestSpotFleet(e.ctx, in)
	if err != nil || aws.ToString(again.SpotFleetRequestId) != id {
		t.Errorf("same ClientToken: %v %v, want %s", again, err, id)
	}
	in.SpotFleetRequestConfig.TargetCapacity = aws.Int32(5)
	if _, err := e.ec2.RequestSpotFleet(e.ctx, in); apiCode(err) != "IdempotentParameterMismatch" {
		t.Errorf("same ClientToken, other target: %v", err)
	}
	live := e.live(id)
	if units(live) != 4 || !live[0].Spot {
		t.Fatalf("maintain Spot Fleet launched %+v", live)
	}
	e.advance(2 * time.Second)

	// a Spot interruption is replaced once the instance is gone
	if err := e.r.InterruptSpot(live[0].ID); err != nil {
		t.Fatal(err)
	}
	e.advance(time.Minute)
	if units(e.live(id)) != 4 {
		t.Errorf("marked instance stopped counting before its termination")
	}
	e.advance(time.Minute + time.Second)
	now := e.live(id)
	if units(now) != 4 {
		t.Fatalf("after an interruption: %+v", now)
	}
	for _, in := range now {
		if in.ID == live[0].ID {
			t.Errorf("interrupted instance still live")
		}
	}

	// lower first, then terminate: not replaced
	victim := now[len(now)-1]
	if _, err := e.ec2.ModifySpotFleetRequest(e.ctx, &ec2.ModifySpotFleetRequestInput{SpotFleetRequestId: aws.String(id),
		TargetCapacity: aws.Int32(int32(4 - victim.Weight)), ExcessCapacityTerminationPolicy: types.ExcessCapacityTerminationPolicyNoTermination}); err != nil {
		t.Fatalf("ModifySpotFleetRequest: %v", err)
	}
	if units(e.live(id)) != 4 {
		t.Errorf("noTermination still terminated")
	}
	if err := e.r.TerminateFromConsole(victim.ID); err != nil {
		t.Fatal(err)
	}
	e.advance(5 * time.Second)
	if got := units(e.live(id)); got != 4-victim.Weight {
		t.Errorf("after lowering then terminating: %v units, want %v", got, 4-victim.Weight)
	}
	// terminate without lowering: replaced
	other := e.live(id)[0]
	if err := e.r.TerminateFromConsole(other.ID); err != nil {
		t.Fatal(err)
	}
	e.advance(time.Second)
	if got := units(e.live(id)); got != 4-victim.Weight {
		t.Errorf("after a termination without lowering: %v units, want %v (replaced)", got, 4-victim.Weight)
	}

	c, err := e.ec2.CancelSpotFleetRequests(e.ctx, &ec2.CancelSpotFleetRequestsInput{SpotFleetRequestIds: []string{id, "sfr-00000000-0000-0000-0000-000000000000"}, TerminateInstances: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SuccessfulFleetRequests) != 1 || c.SuccessfulFleetRequests[0].CurrentSpotFleetRequestState != types.BatchStateCancelledTerminatingInstances ||
		len(c.UnsuccessfulFleetRequests) != 1 || c.UnsuccessfulFleetRequests[0].Error.Code != types.CancelBatchErrorCodeFleetRequestIdDoesNotExist {
		t.Errorf("CancelSpotFleetRequests = %+v", c)
	}
	e.advance(2 * time.Second)
	if n := len(e.live(id)); n != 0 {
		t.Errorf("%d live instances after cancel with termination", n)
	}
	if got := e.describeSFR(t, id).SpotFleetRequestState; got != types.BatchStateCancelled {
		t.Errorf("state %s, want cancelled", got)
	}
	c, err = e.ec2.CancelSpotFleetRequests(e.ctx, &ec2.CancelSpotFleetRequestsInput{SpotFleetRequestIds: []string{id}, TerminateInstances: aws.Bool(true)})
	if err != nil || len(c.UnsuccessfulFleetRequests) != 1 || c.UnsuccessfulFleetRequests[0].Error.Code != types.CancelBatchErrorCodeFleetRequestNotInCancellableState {
		t.Errorf("second cancel = %+v, %v", c, err)
	}
	if _, err := e.ec2.DescribeSpotFleetRequests(e.ctx, &ec2.DescribeSpotFleetRequestsInput{SpotFleetRequestIds: []string{"sfr-00000000-0000-0000-0000-000000000000"}}); apiCode(err) != "InvalidSpotFleetRequestId.NotFound" {
		t.Errorf("unknown request: %v", err)
	}
}

func TestSpotFleetICEPartlyFulfilled(t *testing.T) {
	e := newFleetEnv(t)
	lt := e.addLT(t, "sfr", "c5.large", nil)
	e.r.SetCapacity("c5.large", e.az[0], 1)
	e.r.SetCapacity("c5.xlarge", e.az[1], 0)
	out, err := e.ec2.RequestSpotFleet(e.ctx, e.ltSFR(lt, 5, time.Time{}, false))
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.SpotFleetRequestId)
	sfr := e.describeSFR(t, id)
	if aws.ToFloat64(sfr.SpotFleetRequestConfig.FulfilledCapacity) != 1 || sfr.ActivityStatus != types.ActivityStatusError {
		t.Errorf("under ICE: fulfilled %v activity %s", aws.ToFloat64(sfr.SpotFleetRequestConfig.FulfilledCapacity), sfr.ActivityStatus)
	}
	e.r.SetCapacity("c5.xlarge", e.az[1], -1)
	e.advance(time.Second)
	sfr = e.describeSFR(t, id)
	if f := aws.ToFloat64(sfr.SpotFleetRequestConfig.FulfilledCapacity); f != 5 || sfr.ActivityStatus != types.ActivityStatusFulfilled {
		t.Errorf("after capacity returned: fulfilled %v activity %s", f, sfr.ActivityStatus)
	}
}
