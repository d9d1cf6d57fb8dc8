package awsprov

import (
	"bytes"
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

	"github.com/ohfp/ohfp/internal/english"
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
			"RunInstances launched %d of %s of %s: EC2 had no capacity for the rest",
			len(res.Instances), english.Plural(int(want), "instance"), in.InstanceType))
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
	if nics := instanceNICs(t, in.SubnetId); len(nics) > 0 {
		in.NetworkInterfaces = nics
		in.SubnetId, in.SecurityGroupIds = nil, nil
	}
	if t.PlacementGroupName != "" || t.Tenancy != "" {
		in.Placement = &types.Placement{}
		if t.PlacementGroupName != "" {
			in.Placement.GroupName = aws.String(t.PlacementGroupName)
		}
		if t.Tenancy != "" {
			in.Placement.Tenancy = types.Tenancy(t.Tenancy)
		}
	}
	if t.EbsOptimized {
		in.EbsOptimized = aws.Bool(true)
	}
	if t.KeyName != "" {
		in.KeyName = aws.String(t.KeyName)
	}
	if arn, name, ok := instanceProfile(t); ok {
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Arn: arn, Name: name}
	}
	ud, err := userData(&spec)
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

// instanceNICs is the template's network interfaces as RunInstances takes
// them, in subnet (nil: the default): EC2 takes the subnet and groups on
// the interfaces, not beside them. None without interfaceType.
func instanceNICs(t *template.Template, subnet *string) []types.InstanceNetworkInterfaceSpecification {
	var out []types.InstanceNetworkInterfaceSpecification
	for _, n := range networkInterfaces(t) {
		out = append(out, types.InstanceNetworkInterfaceSpecification{
			DeviceIndex: n.DeviceIndex, NetworkCardIndex: n.NetworkCardIndex, InterfaceType: n.InterfaceType,
			SubnetId: subnet, Groups: n.Groups, DeleteOnTermination: n.DeleteOnTermination,
		})
	}
	return out
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

// nic is one network interface of a template, in the fields RunInstances
// and launch templates share.
type nic struct {
	DeviceIndex, NetworkCardIndex *int32
	InterfaceType                 *string
	SubnetId                      *string
	Groups                        []string
	DeleteOnTermination           *bool
}

// networkInterfaces returns the interfaces interfaceType asks for: none
// without it; one of type interface; efaCount EFAs, one per network card,
// the first at device index 0 and the others at device index 1 (EC2 User
// Guide, "Elastic Fabric Adapter": on instances with several network
// cards, one EFA per card, the primary on card 0 at index 0). Each carries
// the template's security groups; the caller sets the subnet.
func networkInterfaces(t *template.Template) []nic {
	if t.InterfaceType == "" {
		return nil
	}
	n := 1
	if t.InterfaceType == "efa" && t.EfaCount > 1 {
		n = t.EfaCount
	}
	out := make([]nic, n)
	for i := range out {
		dev := int32(0)
		if i > 0 {
			dev = 1
		}
		out[i] = nic{DeviceIndex: aws.Int32(dev), NetworkCardIndex: aws.Int32(int32(i)), InterfaceType: aws.String(t.InterfaceType),
			Groups: append([]string(nil), t.SecurityGroupIDs...), DeleteOnTermination: aws.Bool(true)}
		if i == 0 && t.InterfaceType == "interface" {
			out[i].NetworkCardIndex = nil // the default interface, as without interfaceType
		}
	}
	return out
}

// userData returns the base64 user data of a template, as EC2 takes it:
//   - userDataScript: the script, with userData's variables at its
//     %EXPORT_USER_DATA% line if it has one;
//   - else the template's user data template (IBM's user_data.sh, from
//     the configuration), with the variables at its marker;
//   - else none.
//
// A template with userData but neither script cannot launch: its
// variables would be lost and the host would never join (the
// configuration refuses such a template; this guards the path).
func userData(spec *provider.LaunchSpec) (string, error) {
	t := &spec.Template
	var script, which string
	switch {
	case t.UserDataScript != "":
		script, which = t.UserDataScript, "userDataScript"
	case t.UserDataTemplate != "":
		script, which = t.UserDataTemplate, "the user data template"
	case t.UserData != "":
		return "", fatal(t, "userData %q is variables for a user-data script, and the template has none (user_data_template)", t.UserData)
	default:
		return "", nil
	}
	b, err := os.ReadFile(script)
	if err != nil {
		return "", fatal(t, "read %s: %v", which, err)
	}
	if t.UserData != "" && !bytes.Contains(b, []byte(template.ExportMarker)) {
		return "", fatal(t, "the user-data script %s has no %s line for userData's variables", script, template.ExportMarker)
	}
	raw, err := t.RenderUserDataFor(b, template.Call{RcAccount: spec.RcAccount, ClusterName: spec.ClusterName})
	if err != nil {
		return "", fatal(t, "userData: %v", err)
	}
	if len(raw) > template.MaxUserData {
		return "", fatal(t, "user data is %d bytes; EC2 accepts at most %d", len(raw), template.MaxUserData)
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
