package awssim

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// An instance's volumes are those its block device mappings name; they
// keep the tags CreateTags gives them, DescribeVolumes lists them by id or
// by the instance, and they go with the instance when deleted on
// termination.
func TestVolumesKeepTags(t *testing.T) {
	s := newSim(t, Options{})
	ctx := context.Background()
	out := s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		BlockDeviceMappings: []types.BlockDeviceMapping{
			{DeviceName: aws.String("/dev/xvda"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(30), VolumeType: types.VolumeTypeGp3}},
			{DeviceName: aws.String("/dev/sdf"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(100), DeleteOnTermination: aws.Bool(false)}},
		}})
	id := ids(out)[0]
	s.clk.Advance(2 * time.Second)
	in := s.describe(t, id)[id]
	var vols []string
	for _, b := range in.BlockDeviceMappings {
		vols = append(vols, aws.ToString(b.Ebs.VolumeId))
	}
	if len(vols) != 2 {
		t.Fatalf("block device mappings %+v", in.BlockDeviceMappings)
	}
	if _, err := s.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: append([]string{id}, vols...),
		Tags: []types.Tag{{Key: aws.String("InstanceID"), Value: aws.String(id)}}}); err != nil {
		t.Fatal(err)
	}
	dv, err := s.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{id}}}})
	if err != nil || len(dv.Volumes) != 2 {
		t.Fatalf("DescribeVolumes by instance: %+v %v", dv, err)
	}
	for _, v := range dv.Volumes {
		if len(v.Tags) != 1 || aws.ToString(v.Tags[0].Value) != id || len(v.Attachments) != 1 || aws.ToString(v.Attachments[0].InstanceId) != id || v.State != types.VolumeStateInUse {
			t.Errorf("volume %+v", v)
		}
	}
	if aws.ToInt32(dv.Volumes[0].Size) != 30 || dv.Volumes[0].VolumeType != types.VolumeTypeGp3 || aws.ToInt32(dv.Volumes[1].Size) != 100 {
		t.Errorf("sizes and types %+v", dv.Volumes)
	}
	byTag, err := s.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("tag:InstanceID"), Values: []string{id}}}})
	if err != nil || len(byTag.Volumes) != 2 {
		t.Fatalf("DescribeVolumes by tag: %+v %v", byTag, err)
	}

	// Terminated: the root volume goes with it, the other stays, detached.
	if _, err := s.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	s.clk.Advance(5 * time.Second)
	s.r.Tick()
	_, err = s.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: vols[:1]})
	wantCode(t, err, "InvalidVolume.NotFound")
	if _, err := s.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: vols[:1], Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); codeOf(t, err) != "InvalidVolume.NotFound" {
		t.Errorf("tagging a deleted volume: %v", err)
	}
	left, err := s.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: vols[1:]})
	if err != nil || len(left.Volumes) != 1 || left.Volumes[0].State != types.VolumeStateAvailable || len(left.Volumes[0].Attachments) != 0 || len(left.Volumes[0].Tags) != 1 {
		t.Fatalf("the kept volume: %+v %v", left, err)
	}
	_, err = s.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{MaxResults: aws.Int32(501)})
	wantCode(t, err, "InvalidParameterValue")
}

// A just-launched instance's volumes are not visible before it is
// (eventual consistency): CreateTags on them answers NotFound.
func TestVolumesEventuallyConsistent(t *testing.T) {
	s := newSim(t, Options{Consistency: time.Hour})
	out := s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	id := ids(out)[0]
	vol := "vol-" + id[2:]
	_, err := s.ec2.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{vol}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	if c := codeOf(t, err); c != "InvalidVolume.NotFound" {
		t.Fatalf("tagging a volume before its instance is visible: %v", err)
	}
}
