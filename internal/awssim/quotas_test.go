package awssim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
)

// GetServiceQuota through the SDK: an applied value (set through the HTTP
// lever) comes back with its name; a code never applied is
// NoSuchResourceException; a denied caller AccessDeniedException.
func TestGetServiceQuota(t *testing.T) {
	s := newSim(t, Options{})
	ctx := t.Context()
	sq := servicequotas.NewFromConfig(ClientConfig(s.endpoint, s.r.Name()), func(o *servicequotas.Options) { o.RetryMaxAttempts = 1 })
	in := &servicequotas.GetServiceQuotaInput{ServiceCode: aws.String("ec2"), QuotaCode: aws.String("L-1216C47A")}
	_, err := sq.GetServiceQuota(ctx, in)
	wantCode(t, err, "NoSuchResourceException")

	body, _ := json.Marshal(map[string]float64{"L-1216C47A": 64, "L-34B43A08": 32})
	resp, err := http.Post(s.endpoint+"/_sim/quotas", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("lever: %v %v", resp, err)
	}
	resp.Body.Close()
	out, err := sq.GetServiceQuota(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	q := out.Quota
	if aws.ToFloat64(q.Value) != 64 || aws.ToString(q.QuotaName) != "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances" || aws.ToString(q.QuotaCode) != "L-1216C47A" {
		t.Fatalf("quota: %+v", q)
	}
	_, err = sq.GetServiceQuota(ctx, &servicequotas.GetServiceQuotaInput{ServiceCode: aws.String("ec2"), QuotaCode: aws.String("L-3819A6DF")})
	wantCode(t, err, "NoSuchResourceException")
	if err := s.r.SetQuotas(map[string]float64{"bogus": 1}); err == nil {
		t.Fatal("a malformed quota code was accepted")
	}

	s.r.SetFaults(Faults{Denied: []string{"GetServiceQuota", "DescribeAutoScalingGroups"}})
	_, err = sq.GetServiceQuota(ctx, in)
	wantCode(t, err, "AccessDeniedException")
	as := autoscaling.NewFromConfig(ClientConfig(s.endpoint, s.r.Name()), func(o *autoscaling.Options) { o.RetryMaxAttempts = 1 })
	_, err = as.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{})
	wantCode(t, err, "AccessDeniedException")
}

// CreateFleet and RequestSpotFleet with DryRun: DryRunOperation and
// nothing created when allowed and the request holds; the request's own
// error (an unknown subnet, launch template) when not;
// UnauthorizedOperation when denied.
func TestFleetDryRuns(t *testing.T) {
	e := newFleetEnv(t)
	ltID := e.addLT(t, "lt-check", "c5.large", nil)
	cfg := func(subnet string) []types.FleetLaunchTemplateConfigRequest {
		return []types.FleetLaunchTemplateConfigRequest{{
			LaunchTemplateSpecification: &types.FleetLaunchTemplateSpecificationRequest{LaunchTemplateId: aws.String(ltID), Version: aws.String("1")},
			Overrides:                   []types.FleetLaunchTemplateOverridesRequest{{InstanceType: "c5.large", SubnetId: aws.String(subnet)}},
		}}
	}
	fleet := func(subnet string) *ec2.CreateFleetInput {
		return &ec2.CreateFleetInput{DryRun: aws.Bool(true), Type: types.FleetTypeInstant, LaunchTemplateConfigs: cfg(subnet),
			TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{TotalTargetCapacity: aws.Int32(2), DefaultTargetCapacityType: types.DefaultTargetCapacityTypeOnDemand}}
	}
	_, err := e.ec2.CreateFleet(e.ctx, fleet(e.sn[e.az[0]]))
	if apiCode(err) != "DryRunOperation" {
		t.Fatalf("fleet dry run: %v", err)
	}
	_, err = e.ec2.CreateFleet(e.ctx, fleet("subnet-0000000000000dead"))
	if apiCode(err) != "InvalidSubnetID.NotFound" {
		t.Fatalf("fleet dry run with an unknown subnet: %v", err)
	}
	noLT := fleet(e.sn[e.az[0]])
	noLT.LaunchTemplateConfigs[0].LaunchTemplateSpecification.LaunchTemplateId = aws.String("lt-0000000000000dead")
	if _, err = e.ec2.CreateFleet(e.ctx, noLT); apiCode(err) == "DryRunOperation" || err == nil {
		t.Fatalf("fleet dry run with an unknown launch template: %v", err)
	}
	sfr := func() *ec2.RequestSpotFleetInput {
		return &ec2.RequestSpotFleetInput{DryRun: aws.Bool(true), SpotFleetRequestConfig: &types.SpotFleetRequestConfigData{
			IamFleetRole: aws.String("arn:aws:iam::" + AccountID + ":role/aws-ec2-spot-fleet-tagging-role"), TargetCapacity: aws.Int32(2), Type: types.FleetTypeRequest,
			LaunchTemplateConfigs: []types.LaunchTemplateConfig{{
				LaunchTemplateSpecification: &types.FleetLaunchTemplateSpecification{LaunchTemplateId: aws.String(ltID), Version: aws.String("1")},
				Overrides:                   []types.LaunchTemplateOverrides{{InstanceType: "c5.large", SubnetId: aws.String(e.sn[e.az[1]])}},
			}}}}
	}
	_, err = e.ec2.RequestSpotFleet(e.ctx, sfr())
	if apiCode(err) != "DryRunOperation" {
		t.Fatalf("spot fleet dry run: %v", err)
	}
	fleets, err := e.ec2.DescribeFleets(e.ctx, &ec2.DescribeFleetsInput{})
	if err != nil || len(fleets.Fleets) != 0 {
		t.Fatalf("dry runs created fleets: %+v %v", fleets, err)
	}
	sfrs, err := e.ec2.DescribeSpotFleetRequests(e.ctx, &ec2.DescribeSpotFleetRequestsInput{})
	if err != nil || len(sfrs.SpotFleetRequestConfigs) != 0 {
		t.Fatalf("dry runs created Spot Fleet requests: %+v %v", sfrs, err)
	}
	if n := len(e.r.Instances()); n != 0 {
		t.Fatalf("dry runs launched %d instances", n)
	}
	e.r.SetFaults(Faults{Denied: []string{"CreateFleet", "RequestSpotFleet"}})
	_, err = e.ec2.CreateFleet(e.ctx, fleet(e.sn[e.az[0]]))
	if apiCode(err) != "UnauthorizedOperation" {
		t.Fatalf("denied fleet dry run: %v", err)
	}
	_, err = e.ec2.RequestSpotFleet(e.ctx, sfr())
	if apiCode(err) != "UnauthorizedOperation" {
		t.Fatalf("denied spot fleet dry run: %v", err)
	}
}
