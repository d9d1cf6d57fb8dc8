package awsprov

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// launchRunInstances launches through one RunInstances call.
//
// It asks for MinCount=1 and MaxCount=N (N instances make spec.Units units):
// EC2 then launches as many as it has capacity for, up to N, instead of
// failing the whole call when fewer than N are available. A short launch is
// reported in LaunchResult.Errors; the engine asks again for the rest. With
// the same ClientToken EC2 returns the first call's reservation.
func (p *Provider) launchRunInstances(ctx context.Context, spec provider.LaunchSpec) (provider.LaunchResult, error) {
	in, err := p.runInstancesInput(ctx, spec)
	if err != nil {
		return provider.LaunchResult{}, err
	}
	out, err := p.ec2.RunInstances(ctx, in)
	if err != nil {
		return provider.LaunchResult{}, classify("RunInstances", err)
	}
	res := provider.LaunchResult{Instances: make([]provider.Instance, 0, len(out.Instances))}
	for _, i := range out.Instances {
		res.Instances = append(res.Instances, toInstance(i))
	}
	if want := int(aws.ToInt32(in.MaxCount)); len(res.Instances) < want {
		res.Errors = append(res.Errors, fmt.Sprintf(
			"RunInstances launched %d of %d instances of %s: EC2 had no capacity for the rest",
			len(res.Instances), want, in.InstanceType))
	}
	p.log.Info("RunInstances", "request_id", spec.RequestID, "template_id", spec.Template.TemplateID,
		"asked", aws.ToInt32(in.MaxCount), "launched", len(res.Instances), "reservation", aws.ToString(out.ReservationId))
	return res, nil
}

// fatal makes a Fatal error for a template that cannot be launched as
// written.
func fatal(t *template.Template, format string, args ...any) error {
	return &provider.Error{Op: "RunInstances", Kind: provider.Fatal,
		Message: fmt.Sprintf("template %s: ", t.TemplateID) + fmt.Sprintf(format, args...)}
}

// runInstancesInput builds the RunInstances call of spec. The template's
// fields apply on top of its launch template, if any.
func (p *Provider) runInstancesInput(ctx context.Context, spec provider.LaunchSpec) (*ec2.RunInstancesInput, error) {
	t := &spec.Template
	in := &ec2.RunInstancesInput{}

	var itype string
	if its := t.InstanceTypes(); len(its) > 0 {
		itype = its[0]
		in.InstanceType = types.InstanceType(itype)
	} else if t.LaunchTemplateID == "" {
		return nil, fatal(t, "no vmType and no launchTemplateId: nothing says which instance type to launch")
	}
	if spec.Units <= 0 {
		return nil, fatal(t, "%d units asked: must be at least 1", spec.Units)
	}
	w := t.WeightOf(itype)
	count := (spec.Units + w - 1) / w
	in.MinCount, in.MaxCount = aws.Int32(1), aws.Int32(int32(min(count, 1<<20)))

	if t.ImageID != "" {
		ami, err := p.resolveImage(ctx, t.ImageID)
		if err != nil {
			return nil, err
		}
		in.ImageId = aws.String(ami)
	} else if t.LaunchTemplateID == "" {
		return nil, fatal(t, "no imageId and no launchTemplateId: nothing says which AMI to launch")
	}
	if t.LaunchTemplateID != "" {
		v := t.LaunchTemplateV
		if v == "" {
			v = "$Default"
		}
		in.LaunchTemplate = &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(t.LaunchTemplateID), Version: aws.String(v)}
	}
	if len(t.SubnetIDs) > 0 {
		in.SubnetId = aws.String(t.SubnetIDs[0])
	}
	if len(t.SecurityGroupIDs) > 0 {
		in.SecurityGroupIds = append([]string(nil), t.SecurityGroupIDs...)
	}
	if t.KeyName != "" {
		in.KeyName = aws.String(t.KeyName)
	}
	if arn, name, ok := instanceProfile(t); ok {
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Arn: arn, Name: name}
	}
	ud, err := userData(t)
	if err != nil {
		return nil, err
	}
	if ud != "" {
		in.UserData = aws.String(ud)
	}
	if t.RootVolumeSize > 0 || t.VolumeType != "" || t.Iops > 0 {
		if in.ImageId == nil {
			return nil, fatal(t, "rootDeviceVolumeSize, volumeType and iops need imageId (to find the AMI's root device)")
		}
		dev, err := p.rootDeviceName(ctx, *in.ImageId)
		if err != nil {
			return nil, err
		}
		in.BlockDeviceMappings = []types.BlockDeviceMapping{{DeviceName: aws.String(dev), Ebs: rootVolume(t)}}
	}
	switch t.Price() {
	case template.PriceOnDemand:
	case template.PriceSpot:
		opts := &types.SpotMarketOptions{
			SpotInstanceType:             types.SpotInstanceTypeOneTime,
			InstanceInterruptionBehavior: types.InstanceInterruptionBehaviorTerminate,
		}
		if t.MaxSpotPrice > 0 {
			opts.MaxPrice = aws.String(strconv.FormatFloat(t.MaxSpotPrice, 'f', -1, 64))
		}
		in.InstanceMarketOptions = &types.InstanceMarketOptionsRequest{MarketType: types.MarketTypeSpot, SpotOptions: opts}
	default:
		return nil, fatal(t, "priceType %s cannot be launched with RunInstances: use providerApi EC2Fleet or SpotFleet", t.PriceType)
	}
	if tags := ec2Tags(spec.Tags); len(tags) > 0 {
		in.TagSpecifications = []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: tags},
			{ResourceType: types.ResourceTypeVolume, Tags: tags},
		}
	}
	if spec.ClientToken != "" {
		in.ClientToken = aws.String(spec.ClientToken)
	}
	return in, nil
}

// instanceProfile is the template's instanceProfile as EC2 takes it: an
// ARN (arn:...) or else a name; ok is false when the template has none.
func instanceProfile(t *template.Template) (arn, name *string, ok bool) {
	switch {
	case t.InstanceProfile == "":
		return nil, nil, false
	case strings.HasPrefix(t.InstanceProfile, "arn:"):
		return aws.String(t.InstanceProfile), nil, true
	}
	return nil, aws.String(t.InstanceProfile), true
}

// userData returns the base64 user data of a template: the content of the
// userDataScript file, else the userData text; "" if neither.
func userData(t *template.Template) (string, error) {
	var raw []byte
	switch {
	case t.UserDataScript != "":
		b, err := os.ReadFile(t.UserDataScript)
		if err != nil {
			return "", fatal(t, "read userDataScript: %v", err)
		}
		raw = b
	case t.UserData != "":
		raw = []byte(t.UserData)
	default:
		return "", nil
	}
	const maxUserData = 16 << 10 // EC2's limit, before base64
	if len(raw) > maxUserData {
		return "", fatal(t, "user data is %d bytes; EC2 accepts at most %d", len(raw), maxUserData)
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// rootVolume is the EBS settings of the root volume from the template.
func rootVolume(t *template.Template) *types.EbsBlockDevice {
	ebs := &types.EbsBlockDevice{DeleteOnTermination: aws.Bool(true)}
	if t.RootVolumeSize > 0 {
		ebs.VolumeSize = aws.Int32(int32(t.RootVolumeSize))
	}
	if t.VolumeType != "" {
		ebs.VolumeType = types.VolumeType(t.VolumeType)
	}
	if t.Iops > 0 {
		ebs.Iops = aws.Int32(int32(t.Iops))
	}
	return ebs
}

// ec2Tags turns a tag map into EC2 tags, sorted by key.
func ec2Tags(m map[string]string) []types.Tag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]types.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}
