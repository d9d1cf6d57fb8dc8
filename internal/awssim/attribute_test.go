package awssim

import (
	"encoding/base64"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	ast "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// userDataOf asks DescribeInstanceAttribute for the instance's user data,
// decoded ("" with none).
func (e *fleetEnv) userDataOf(t *testing.T, id string) string {
	t.Helper()
	out, err := e.ec2.DescribeInstanceAttribute(e.ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id), Attribute: types.InstanceAttributeNameUserData})
	if err != nil {
		t.Fatalf("DescribeInstanceAttribute: %v", err)
	}
	if aws.ToString(out.InstanceId) != id || out.UserData == nil {
		t.Fatalf("DescribeInstanceAttribute answered %+v", out)
	}
	if out.UserData.Value == nil {
		return ""
	}
	b, err := base64.StdEncoding.DecodeString(aws.ToString(out.UserData.Value))
	if err != nil {
		t.Fatalf("user data not base64: %v", err)
	}
	return string(b)
}

func b64(s string) *string { return aws.String(base64.StdEncoding.EncodeToString([]byte(s))) }

// Every launch path keeps the user data it was given, and
// DescribeInstanceAttribute answers it, base64 as EC2 does.
func TestUserDataOfEveryLaunchPath(t *testing.T) {
	e := newFleetEnv(t)
	a := e.sn[e.az[0]]

	run, err := e.ec2.RunInstances(e.ctx, &ec2.RunInstancesInput{ImageId: aws.String(e.ami), InstanceType: "m5.large",
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), UserData: b64("#!/bin/sh\necho run\n")})
	if err != nil {
		t.Fatal(err)
	}
	bare, err := e.ec2.RunInstances(e.ctx, &ec2.RunInstancesInput{ImageId: aws.String(e.ami), InstanceType: "m5.large",
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}

	lt, err := e.ec2.CreateLaunchTemplate(e.ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("user-data"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(e.ami), InstanceType: "m5.large", UserData: b64("#!/bin/sh\necho lt\n")}})
	if err != nil {
		t.Fatal(err)
	}
	ltID := aws.ToString(lt.LaunchTemplate.LaunchTemplateId)
	fl, err := e.ec2.CreateFleet(e.ctx, &ec2.CreateFleetInput{Type: types.FleetTypeInstant,
		LaunchTemplateConfigs: ltConfig(ltID, ov("m5.large", a, 1)),
		TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{
			TotalTargetCapacity: aws.Int32(1), DefaultTargetCapacityType: types.DefaultTargetCapacityTypeOnDemand}})
	if err != nil || len(fl.Instances) != 1 {
		t.Fatalf("CreateFleet: %+v %v", fl, err)
	}

	sfr, err := e.ec2.RequestSpotFleet(e.ctx, &ec2.RequestSpotFleetInput{SpotFleetRequestConfig: &types.SpotFleetRequestConfigData{
		IamFleetRole: aws.String(fleetRole), TargetCapacity: aws.Int32(1), Type: types.FleetTypeRequest,
		LaunchSpecifications: []types.SpotFleetLaunchSpecification{{ImageId: aws.String(e.ami), InstanceType: "m5.large", SubnetId: aws.String(a),
			UserData: b64("#!/bin/sh\necho spot fleet\n")}}}})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := e.as.CreateAutoScalingGroup(e.ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("ud-group"), MinSize: aws.Int32(0), MaxSize: aws.Int32(1), DesiredCapacity: aws.Int32(1),
		LaunchTemplate:    &ast.LaunchTemplateSpecification{LaunchTemplateId: aws.String(ltID), Version: aws.String("$Latest")},
		VPCZoneIdentifier: aws.String(a)}); err != nil {
		t.Fatal(err)
	}
	e.advance(asgActivityDelay)

	want := map[string]string{
		aws.ToString(run.Instances[0].InstanceId):  "#!/bin/sh\necho run\n",
		aws.ToString(bare.Instances[0].InstanceId): "",
		fl.Instances[0].InstanceIds[0]:             "#!/bin/sh\necho lt\n",
	}
	for _, owner := range []string{aws.ToString(sfr.SpotFleetRequestId), "asg:ud-group"} {
		live := e.live(owner)
		if len(live) != 1 {
			t.Fatalf("%s launched %d instances", owner, len(live))
		}
		want[live[0].ID] = map[bool]string{true: "#!/bin/sh\necho spot fleet\n", false: "#!/bin/sh\necho lt\n"}[owner != "asg:ud-group"]
	}
	for id, w := range want {
		if got := e.userDataOf(t, id); got != w {
			t.Errorf("%s: user data %q, want %q", id, got, w)
		}
	}

	// One attribute at a time, of a known instance, by its documented name.
	id := aws.ToString(run.Instances[0].InstanceId)
	it, err := e.ec2.DescribeInstanceAttribute(e.ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id), Attribute: types.InstanceAttributeNameInstanceType})
	if err != nil || aws.ToString(it.InstanceType.Value) != "m5.large" || it.UserData != nil {
		t.Errorf("instanceType: %+v %v", it, err)
	}
	_, err = e.ec2.DescribeInstanceAttribute(e.ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id), Attribute: "userdata"})
	if apiCode(err) != "InvalidParameterValue" {
		t.Errorf("an attribute AWS does not know: %v", err)
	}
	_, err = e.ec2.DescribeInstanceAttribute(e.ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String("i-0123456789abcdef0"), Attribute: types.InstanceAttributeNameUserData})
	if apiCode(err) != "InvalidInstanceID.NotFound" {
		t.Errorf("an unknown instance: %v", err)
	}
}
