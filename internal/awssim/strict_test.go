package awssim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

func fakeIDs(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%017x", prefix, i+1)
	}
	return out
}

// TestFilterLimit: more than 200 filter values over all the filters of one
// call is FilterLimitExceeded (HTTP 400, EC2's message) on every EC2
// describe; 200 are fine; instance ids given as InstanceId.N are not filter
// values.
func TestFilterLimit(t *testing.T) {
	s := newSim(t, Options{})
	ctx := context.Background()
	states := []string{"pending", "running"}
	over := []types.Filter{
		{Name: aws.String("instance-id"), Values: fakeIDs("i-", 199)},
		{Name: aws.String("instance-state-name"), Values: states},
	}
	_, err := s.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: over})
	wantCode(t, err, "FilterLimitExceeded")
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusBadRequest {
		t.Fatalf("want HTTP 400, got %v", err)
	}
	var ae smithy.APIError
	if errors.As(err, &ae); ae.ErrorMessage() != "The maximum number of filter values specified on a single call is 200" {
		t.Fatalf("message %q", ae.ErrorMessage())
	}
	_, err = s.ec2.DescribeSpotInstanceRequests(ctx, &ec2.DescribeSpotInstanceRequestsInput{Filters: []types.Filter{
		{Name: aws.String("instance-id"), Values: fakeIDs("i-", 201)}}})
	wantCode(t, err, "FilterLimitExceeded")
	_, err = s.ec2.DescribeFleets(ctx, &ec2.DescribeFleetsInput{Filters: []types.Filter{
		{Name: aws.String("fleet-state"), Values: fakeIDs("x", 150)},
		{Name: aws.String("type"), Values: fakeIDs("y", 51)}}})
	wantCode(t, err, "FilterLimitExceeded")
	_, err = s.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{Filters: []types.Filter{
		{Name: aws.String("tag:a"), Values: fakeIDs("v", 201)}}})
	wantCode(t, err, "FilterLimitExceeded")

	// exactly 200: answered
	over[0].Values = over[0].Values[:198]
	if _, err := s.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: over}); err != nil {
		t.Fatalf("200 values: %v", err)
	}
	// 250 instance ids by parameter: not filter values
	var launched []string
	for range 3 {
		launched = append(launched, ids(s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(100), MaxCount: aws.Int32(100)}))...)
	}
	out, err := s.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: launched[:250],
		Filters: []types.Filter{{Name: aws.String("instance-state-name"), Values: states}}})
	if err != nil {
		t.Fatalf("250 InstanceIds: %v", err)
	}
	n := 0
	for _, r := range out.Reservations {
		n += len(r.Instances)
	}
	if n != 250 {
		t.Fatalf("described %d of 250", n)
	}
	if got := s.r.Errors()["DescribeInstances"]; got != 1 {
		t.Fatalf("DescribeInstances errors %d, want the one rejected call", got)
	}
}

// TestSpotInterruptionBehaviors: a persistent Spot request that stops or
// hibernates on interruption shows the codes of EC2 User Guide "Spot
// request status": stop gets marked-for-stop at once with the instance
// running for the two minutes of the notice, then stopping/stopped
// (Server.SpotInstanceShutdown) and the request disabled with
// instance-stopped-no-capacity; hibernate gets no two minutes.
func TestSpotInterruptionBehaviors(t *testing.T) {
	s := newSim(t, Options{})
	ctx := context.Background()
	launch := func(b types.InstanceInterruptionBehavior) string {
		t.Helper()
		out := s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			InstanceMarketOptions: &types.InstanceMarketOptionsRequest{MarketType: types.MarketTypeSpot, SpotOptions: &types.SpotMarketOptions{
				SpotInstanceType: types.SpotInstanceTypePersistent, InstanceInterruptionBehavior: b}}})
		return *out.Instances[0].InstanceId
	}
	request := func(id string) types.SpotInstanceRequest {
		t.Helper()
		o, err := s.ec2.DescribeSpotInstanceRequests(ctx, &ec2.DescribeSpotInstanceRequestsInput{Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}}})
		if err != nil || len(o.SpotInstanceRequests) != 1 {
			t.Fatalf("describe request of %s: %v", id, err)
		}
		return o.SpotInstanceRequests[0]
	}
	state := func(id string) types.InstanceStateName { return s.describe(t, id)[id].State.Name }
	stopper, hibernator := launch(types.InstanceInterruptionBehaviorStop), launch(types.InstanceInterruptionBehaviorHibernate)
	s.clk.Advance(time.Second)
	if sr := request(stopper); sr.Type != types.SpotInstanceTypePersistent || sr.InstanceInterruptionBehavior != types.InstanceInterruptionBehaviorStop {
		t.Fatalf("request %s %s", sr.Type, sr.InstanceInterruptionBehavior)
	}
	notice := s.clk.Now()
	if err := s.r.InterruptSpot(stopper, hibernator); err != nil {
		t.Fatal(err)
	}
	if sr := request(stopper); *sr.Status.Code != "marked-for-stop" || sr.State != types.SpotInstanceStateActive || !sr.Status.UpdateTime.Equal(notice) || state(stopper) != types.InstanceStateNameRunning {
		t.Fatalf("stop notice: %s %s at %v, instance %s", sr.State, *sr.Status.Code, sr.Status.UpdateTime, state(stopper))
	}
	if sr := request(hibernator); *sr.Status.Code != "marked-for-stop" || state(hibernator) != types.InstanceStateNameStopping {
		t.Fatalf("hibernation: %s, instance %s (no two-minute warning)", *sr.Status.Code, state(hibernator))
	}
	s.clk.Advance(SpotInterruptionNotice - time.Second)
	if st := state(stopper); st != types.InstanceStateNameRunning {
		t.Fatalf("stopper before the two minutes: %s", st)
	}
	if sr := request(hibernator); *sr.Status.Code != "instance-stopped-no-capacity" || sr.State != types.SpotInstanceStateDisabled || state(hibernator) != types.InstanceStateNameStopped {
		t.Fatalf("hibernated: %s %s, instance %s", sr.State, *sr.Status.Code, state(hibernator))
	}
	s.clk.Advance(time.Second)
	in := s.describe(t, stopper)[stopper]
	if in.State.Name != types.InstanceStateNameStopping || *in.StateReason.Code != "Server.SpotInstanceShutdown" {
		t.Fatalf("stopper after the notice: %s %v", in.State.Name, in.StateReason)
	}
	s.clk.Advance(time.Second)
	if sr := request(stopper); *sr.Status.Code != "instance-stopped-no-capacity" || sr.State != types.SpotInstanceStateDisabled || state(stopper) != types.InstanceStateNameStopped {
		t.Fatalf("stopped: %s %s, instance %s", sr.State, *sr.Status.Code, state(stopper))
	}

	// stop and hibernate need a persistent request; a persistent request
	// needs stop or hibernate; fleets must be maintain to stop
	spot := func(typ types.SpotInstanceType, b types.InstanceInterruptionBehavior) error {
		_, err := s.ec2.RunInstances(ctx, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ImageId: aws.String(s.ami), InstanceType: types.InstanceTypeT3Micro,
			InstanceMarketOptions: &types.InstanceMarketOptionsRequest{MarketType: types.MarketTypeSpot, SpotOptions: &types.SpotMarketOptions{SpotInstanceType: typ, InstanceInterruptionBehavior: b}}})
		return err
	}
	wantCode(t, spot(types.SpotInstanceTypeOneTime, types.InstanceInterruptionBehaviorStop), "InvalidParameterCombination")
	wantCode(t, spot("", types.InstanceInterruptionBehaviorHibernate), "InvalidParameterCombination")
	wantCode(t, spot(types.SpotInstanceTypePersistent, types.InstanceInterruptionBehaviorTerminate), "InvalidParameterCombination")
	_, err := s.ec2.RequestSpotFleet(ctx, &ec2.RequestSpotFleetInput{SpotFleetRequestConfig: &types.SpotFleetRequestConfigData{
		IamFleetRole: aws.String("arn:aws:iam::123456789012:role/fleet"), TargetCapacity: aws.Int32(1), Type: types.FleetTypeRequest,
		InstanceInterruptionBehavior: types.InstanceInterruptionBehaviorStop,
		LaunchSpecifications:         []types.SpotFleetLaunchSpecification{{ImageId: aws.String(s.ami), InstanceType: types.InstanceTypeT3Micro}}}})
	wantCode(t, err, "InvalidParameterCombination")

	// a persistent Spot instance can be stopped by its user: marked-for-stop
	// while stopping, then instance-stopped-by-user, request disabled
	mine := launch(types.InstanceInterruptionBehaviorStop)
	s.clk.Advance(time.Second)
	if _, err := s.ec2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{mine}}); err != nil {
		t.Fatal(err)
	}
	if c := *request(mine).Status.Code; c != "marked-for-stop" {
		t.Fatalf("user stop: %s", c)
	}
	s.clk.Advance(time.Second)
	if sr := request(mine); *sr.Status.Code != "instance-stopped-by-user" || sr.State != types.SpotInstanceStateDisabled {
		t.Fatalf("user stopped: %s %s", sr.State, *sr.Status.Code)
	}
}
