package awssim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

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
