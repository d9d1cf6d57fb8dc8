package awsprov

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// Per-request launch templates.
//
// Every EC2 Fleet, Spot Fleet and Auto Scaling launch goes through a launch
// template that ohfp creates for the request, named LaunchTemplateName(request
// id). It holds the template's AMI, key, security groups, instance profile,
// user data and root volume, and TagSpecifications for instances and
// volumes with the request's tags: fleets of type request and maintain and
// Auto Scaling groups take instance tags only from the launch template, and
// the engine adopts instances by their ohfp:request-id tag.
//
// When the HF template names a user's launchTemplateId (and version), ohfp
// does not use it as is (that would lose the tags for request and maintain
// fleets): it reads that version (DescribeLaunchTemplateVersions) and creates
// its own launch template from a copy of the data, with the HF template's
// fields and ohfp's tags on top. The user's template is never modified. The
// copy goes through JSON between the SDK's response and request types, which
// share field names; the few nested fields whose shapes differ between the
// two are dropped. InstanceMarketOptions is always dropped: the fleet or
// group decides Spot or on-demand.

// ltPrefix starts the name of every launch template ohfp creates.
const ltPrefix = "ohfp-"

// LaunchTemplateName is the name of the launch template ohfp creates for a
// request (also the name of its Auto Scaling group).
func LaunchTemplateName(requestID string) string { return ltPrefix + requestID }

// ltRef names a launch template version.
type ltRef struct {
	ID, Name, Version string
}

// deriveToken derives a client token (at most 64 ASCII characters) for a
// secondary call from a request's ClientToken, so a retry finds the first
// call's result. "" stays "".
func deriveToken(prefix, token string) string {
	if token == "" {
		return ""
	}
	s := prefix + "-" + token
	if len(s) <= 64 {
		return s
	}
	sum := sha256.Sum256([]byte(token))
	return (prefix + "-" + hex.EncodeToString(sum[:]))[:64]
}

// ensureLaunchTemplate creates the request's launch template, or finds the
// one a previous attempt created (same client token, or same name).
func (p *Provider) ensureLaunchTemplate(ctx context.Context, spec provider.LaunchSpec) (ltRef, error) {
	t := &spec.Template
	if spec.RequestID == "" {
		return ltRef{}, &provider.Error{Op: "CreateLaunchTemplate", Kind: provider.Fatal,
			Message: fmt.Sprintf("template %s: a fleet launch needs a request id (it names the launch template)", t.TemplateID)}
	}
	data, err := p.launchTemplateData(ctx, spec)
	if err != nil {
		return ltRef{}, err
	}
	name := LaunchTemplateName(spec.RequestID)
	in := &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: data,
		VersionDescription: aws.String("ohfp " + spec.RequestID + " from template " + t.TemplateID),
	}
	if tok := deriveToken("lt", spec.ClientToken); tok != "" {
		in.ClientToken = aws.String(tok)
	}
	if tags := ec2Tags(spec.Tags); len(tags) > 0 {
		in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeLaunchTemplate, Tags: tags}}
	}
	out, err := p.fleet.CreateLaunchTemplate(ctx, in)
	switch {
	case err == nil && out.LaunchTemplate != nil:
		lt := out.LaunchTemplate
		p.log.Info("CreateLaunchTemplate", "request_id", spec.RequestID, "launch_template", aws.ToString(lt.LaunchTemplateId), "name", name)
		return ltRef{ID: aws.ToString(lt.LaunchTemplateId), Name: name, Version: versionOf(lt.LatestVersionNumber)}, nil
	case err == nil:
		return ltRef{}, &provider.Error{Op: "CreateLaunchTemplate", Kind: provider.Transient, Message: "EC2 answered without a launch template"}
	case apiCode(err) != "InvalidLaunchTemplateName.AlreadyExistsException":
		return ltRef{}, classify("CreateLaunchTemplate", err)
	}
	// A previous attempt for this request created it.
	d, err := p.fleet.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{name}})
	if err != nil {
		return ltRef{}, classify("DescribeLaunchTemplates", err)
	}
	for _, lt := range d.LaunchTemplates {
		if aws.ToString(lt.LaunchTemplateName) == name {
			p.log.Debug("launch template already exists", "request_id", spec.RequestID, "launch_template", aws.ToString(lt.LaunchTemplateId))
			return ltRef{ID: aws.ToString(lt.LaunchTemplateId), Name: name, Version: versionOf(lt.LatestVersionNumber)}, nil
		}
	}
	return ltRef{}, &provider.Error{Op: "DescribeLaunchTemplates", Kind: provider.Transient,
		Message: fmt.Sprintf("launch template %s exists but is not described yet", name)}
}

// versionOf spells a launch template version number, "$Latest" if unknown.
func versionOf(n *int64) string {
	if n == nil || *n < 1 {
		return "$Latest"
	}
	return strconv.FormatInt(*n, 10)
}

// launchTemplateData builds the data of the request's launch template: the
// user's launch template version if the template names one, with the
// template's fields and spec.Tags on top.
func (p *Provider) launchTemplateData(ctx context.Context, spec provider.LaunchSpec) (*types.RequestLaunchTemplateData, error) {
	t := &spec.Template
	data := &types.RequestLaunchTemplateData{}
	if t.LaunchTemplateID != "" {
		base, err := p.userLaunchTemplate(ctx, t)
		if err != nil {
			return nil, err
		}
		data = base
	}
	data.InstanceMarketOptions = nil
	data.Operator = nil
	if t.ImageID != "" {
		ami, err := p.resolveImage(ctx, t.ImageID)
		if err != nil {
			return nil, err
		}
		data.ImageId = aws.String(ami)
	}
	if aws.ToString(data.ImageId) == "" {
		return nil, fatal(t, "no imageId, and no AMI in a launchTemplateId: nothing says which AMI to launch")
	}
	if id := aws.ToString(data.ImageId); strings.HasPrefix(id, "resolve:ssm:") {
		// The user's launch template names its AMI by a Systems Manager
		// parameter: EC2 Fleets of type request and maintain and Spot
		// Fleets refuse that ("For fleets of type maintain and request,
		// you must specify the AMI ID in the launch template"); resolve it
		// now, for every API alike.
		ami, err := p.resolveImage(ctx, id)
		if err != nil {
			return nil, err
		}
		data.ImageId = aws.String(ami)
	}
	if its := fleetTypes(t, t.API() != template.APISpotFleet); len(its) > 0 {
		// Overrides choose the type; this one makes the template usable alone.
		data.InstanceType = types.InstanceType(its[0])
	} else if data.InstanceType == "" {
		return nil, fatal(t, "no vmType or vmTypes, and no instance type in a launchTemplateId: nothing says which instance type to launch")
	}
	if t.KeyName != "" {
		data.KeyName = aws.String(t.KeyName)
	}
	if nics := networkInterfaces(t); len(nics) > 0 {
		// The template's interfaces replace the user's launch template's;
		// the fleet's overrides or the group's subnets place them.
		data.NetworkInterfaces = nil
		for _, n := range nics {
			data.NetworkInterfaces = append(data.NetworkInterfaces, types.LaunchTemplateInstanceNetworkInterfaceSpecificationRequest{
				DeviceIndex: n.DeviceIndex, NetworkCardIndex: n.NetworkCardIndex, InterfaceType: n.InterfaceType,
				Groups: n.Groups, DeleteOnTermination: n.DeleteOnTermination,
			})
		}
		data.SecurityGroupIds, data.SecurityGroups = nil, nil
	}
	if t.PlacementGroupName != "" || t.Tenancy != "" {
		if data.Placement == nil {
			data.Placement = &types.LaunchTemplatePlacementRequest{}
		}
		if t.PlacementGroupName != "" {
			data.Placement.GroupName, data.Placement.GroupId = aws.String(t.PlacementGroupName), nil
		}
		if t.Tenancy != "" {
			data.Placement.Tenancy = types.Tenancy(t.Tenancy)
		}
	}
	if t.EbsOptimized {
		data.EbsOptimized = aws.Bool(true)
	}
	if len(t.SecurityGroupIDs) > 0 && len(networkInterfaces(t)) == 0 {
		if len(data.NetworkInterfaces) > 0 {
			// EC2 refuses instance-level groups beside network interfaces.
			for i := range data.NetworkInterfaces {
				if aws.ToInt32(data.NetworkInterfaces[i].DeviceIndex) == 0 {
					data.NetworkInterfaces[i].Groups = append([]string(nil), t.SecurityGroupIDs...)
				}
			}
			data.SecurityGroups = nil
		} else {
			data.SecurityGroupIds, data.SecurityGroups = append([]string(nil), t.SecurityGroupIDs...), nil
		}
	}
	if len(t.SubnetIDs) > 0 {
		// The fleet's overrides or the group's subnets place the instances.
		for i := range data.NetworkInterfaces {
			data.NetworkInterfaces[i].SubnetId = nil
		}
	}
	if arn, name, ok := instanceProfile(t); ok {
		data.IamInstanceProfile = &types.LaunchTemplateIamInstanceProfileSpecificationRequest{Arn: arn, Name: name}
	}
	ud, err := userData(&spec)
	if err != nil {
		return nil, err
	}
	if ud != "" {
		data.UserData = aws.String(ud)
	}
	if t.RootVolumeSize > 0 || t.VolumeType != "" || t.Iops > 0 {
		dev, err := p.rootDeviceName(ctx, aws.ToString(data.ImageId))
		if err != nil {
			return nil, err
		}
		ebs := rootVolume(t)
		root := types.LaunchTemplateBlockDeviceMappingRequest{DeviceName: aws.String(dev), Ebs: &types.LaunchTemplateEbsBlockDeviceRequest{
			DeleteOnTermination: ebs.DeleteOnTermination, VolumeSize: ebs.VolumeSize, VolumeType: ebs.VolumeType, Iops: ebs.Iops,
		}}
		replaced := false
		for i, m := range data.BlockDeviceMappings {
			if aws.ToString(m.DeviceName) == dev {
				data.BlockDeviceMappings[i], replaced = root, true
			}
		}
		if !replaced {
			data.BlockDeviceMappings = append(data.BlockDeviceMappings, root)
		}
	}
	data.TagSpecifications = mergeTagSpecs(data.TagSpecifications, spec.Tags)
	return data, nil
}

// mergeTagSpecs puts tags on the instance and volume tag specifications of
// a launch template, over the tags they already carry.
func mergeTagSpecs(specs []types.LaunchTemplateTagSpecificationRequest, tags map[string]string) []types.LaunchTemplateTagSpecificationRequest {
	if len(tags) == 0 {
		return specs
	}
	var out []types.LaunchTemplateTagSpecificationRequest
	have := map[types.ResourceType]map[string]string{}
	for _, s := range specs {
		switch s.ResourceType {
		case types.ResourceTypeInstance, types.ResourceTypeVolume:
			m := have[s.ResourceType]
			if m == nil {
				m = map[string]string{}
				have[s.ResourceType] = m
			}
			for _, tg := range s.Tags {
				m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
			}
		default:
			out = append(out, s)
		}
	}
	for _, rt := range []types.ResourceType{types.ResourceTypeInstance, types.ResourceTypeVolume} {
		m := have[rt]
		if m == nil {
			m = map[string]string{}
		}
		maps.Copy(m, tags)
		out = append(out, types.LaunchTemplateTagSpecificationRequest{ResourceType: rt, Tags: ec2Tags(m)})
	}
	return out
}

// userLaunchTemplate reads the user's launch template version named by the
// template and converts it to request data.
func (p *Provider) userLaunchTemplate(ctx context.Context, t *template.Template) (*types.RequestLaunchTemplateData, error) {
	v := t.LaunchTemplateV
	if v == "" {
		v = "$Default"
	}
	out, err := p.fleet.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateId: aws.String(t.LaunchTemplateID), Versions: []string{v},
	})
	if err != nil {
		return nil, classify("DescribeLaunchTemplateVersions", err)
	}
	if len(out.LaunchTemplateVersions) == 0 || out.LaunchTemplateVersions[0].LaunchTemplateData == nil {
		return nil, &provider.Error{Op: "DescribeLaunchTemplateVersions", Kind: provider.Fatal,
			Message: fmt.Sprintf("template %s: launch template %s has no version %s", t.TemplateID, t.LaunchTemplateID, v)}
	}
	return requestData(out.LaunchTemplateVersions[0].LaunchTemplateData)
}

// requestData converts launch template data as EC2 describes it into data
// to create a launch template with. The SDK's response and request types
// share field names; nested fields whose shapes differ are left out.
func requestData(r *types.ResponseLaunchTemplateData) (*types.RequestLaunchTemplateData, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("copy launch template data: %w", err)
	}
	out := &types.RequestLaunchTemplateData{}
	// Lenient on purpose: a field of a different shape must not fail the copy.
	_ = json.Unmarshal(b, out)
	return out, nil
}

// deleteLaunchTemplates deletes ohfp's launch templates by name; names that
// do not start with ltPrefix (a user's) are never touched, names EC2 does
// not know are already deleted.
func (p *Provider) deleteLaunchTemplates(ctx context.Context, names []string) error {
	seen := map[string]bool{}
	for _, n := range names {
		if !strings.HasPrefix(n, ltPrefix) || seen[n] {
			continue
		}
		seen[n] = true
		_, err := p.fleet.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateName: aws.String(n)})
		switch code := apiCode(err); {
		case err == nil:
			p.log.Info("DeleteLaunchTemplate", "name", n)
		case code == "InvalidLaunchTemplateName.NotFoundException", code == "InvalidLaunchTemplateId.NotFound":
		default:
			return classify("DeleteLaunchTemplate", err)
		}
	}
	return nil
}

// DeleteRequestLaunchTemplate deletes the launch template ohfp created for
// a request, if any. Delete does this for a handle it can still describe;
// the engine may call it for a request whose handle the cloud has
// forgotten.
func (p *Provider) DeleteRequestLaunchTemplate(ctx context.Context, requestID string) error {
	return p.deleteLaunchTemplates(ctx, []string{LaunchTemplateName(requestID)})
}
