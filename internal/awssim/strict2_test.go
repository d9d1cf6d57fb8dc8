package awssim

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Eventual consistency: a new instance is unknown to other calls, and a
// tag added later does not match filters, until its visibility time.
func TestEventualConsistency(t *testing.T) {
	ctx := context.Background()
	s := newSim(t, Options{Consistency: 10 * time.Second})
	out := s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	id := aws.ToString(out.Instances[0].InstanceId)
	if _, err := s.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}); apiCode(err) != "InvalidInstanceID.NotFound" {
		t.Fatalf("describe right after the launch: %v, want InvalidInstanceID.NotFound", err)
	}
	if _, err := s.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); apiCode(err) != "InvalidInstanceID.NotFound" {
		t.Fatalf("terminate right after the launch: %v, want InvalidInstanceID.NotFound", err)
	}
	s.clk.Advance(10 * time.Second)
	if _, err := s.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []types.Tag{{Key: aws.String("late"), Value: aws.String("yes")}}}); err != nil {
		t.Fatal(err)
	}
	byTag := func() int {
		d, err := s.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("tag:late"), Values: []string{"yes"}}}})
		if err != nil {
			t.Fatal(err)
		}
		return len(d.Reservations)
	}
	if n := byTag(); n != 0 {
		t.Errorf("a tag just added matched a filter at once (%d)", n)
	}
	s.clk.Advance(10 * time.Second)
	if n := byTag(); n != 1 {
		t.Errorf("the tag did not match once visible (%d)", n)
	}
	if in, _ := s.r.Instance(id); in.State != stateRunning {
		t.Errorf("instance %s after a NotFound terminate, want running", in.State)
	}
}

// Terminated instances stay visible at most an hour; instant fleets are
// fulfilled; DescribeFleets and DescribeSpotFleetRequests bound
// MaxResults.
func TestRetentionAndBounds(t *testing.T) {
	ctx := context.Background()
	s := newSim(t, Options{})
	out := s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	id := aws.ToString(out.Instances[0].InstanceId)
	if _, err := s.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	s.clk.Advance(time.Hour + 2*time.Second)
	s.r.Tick()
	if _, ok := s.r.Instance(id); ok {
		t.Errorf("terminated instance still visible after an hour")
	}
	if _, err := s.ec2.DescribeFleets(ctx, &ec2.DescribeFleetsInput{MaxResults: aws.Int32(1001)}); apiCode(err) != "InvalidParameterValue" {
		t.Errorf("DescribeFleets MaxResults 1001: %v", err)
	}
	if _, err := s.ec2.DescribeSpotFleetRequests(ctx, &ec2.DescribeSpotFleetRequestsInput{MaxResults: aws.Int32(0)}); apiCode(err) != "InvalidParameterValue" {
		t.Errorf("DescribeSpotFleetRequests MaxResults 0: %v", err)
	}
}
