package awsprov

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/template"
)

// ohfp check of a template's resources, each by EC2's own describe call
// and each on its own row, before the dry runs: a dry run stops at the
// first thing wrong (EC2 answers one error), so a bad instance type would
// hide a bad subnet until the next run. Here every problem of a template
// shows in one run:
//   - the AMI: DescribeImages by id (an SSM parameter resolved first); an
//     AMI that does not exist is InvalidAMIID.NotFound, never ok;
//   - each subnet: DescribeSubnets by id (its zone and VPC);
//   - each security group: DescribeSecurityGroups by id, and its VPC
//     against the subnets' (EC2 launches an instance only with groups of
//     its subnet's VPC);
//   - the instance types: DescribeInstanceTypeOfferings in the zones of
//     the subnets found (the region without subnets): a type not offered
//     where the template launches, or not at all.
//
// The credentials are checked once per provider (CheckCredentials), before
// any template: with none, or none AWS takes, every call fails the same
// way, and one row says so.

// checkAPI lists the EC2 describe calls only ohfp check makes. The EC2
// client has them; a test fake without them gets rows saying they were
// not made.
type checkAPI interface {
	DescribeSubnets(ctx context.Context, in *ec2.DescribeSubnetsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
	DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	DescribeInstanceTypeOfferings(ctx context.Context, in *ec2.DescribeInstanceTypeOfferingsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceTypeOfferingsOutput, error)
}

var _ checkAPI = (*ec2.Client)(nil)

// CheckCredentials is ohfp check's first row for the provider: the SDK
// finds credentials (its chain: environment, shared files, the instance
// profile...), and AWS takes them (a DescribeInstanceTypes, which ohfpd
// makes anyway). A refused permission proves the credentials valid: it
// is the template rows' business.
func (p *Provider) CheckCredentials(ctx context.Context) CheckResult {
	r := CheckResult{What: "credentials"}
	var src string
	if p.cfg.Credentials != nil {
		c, err := p.cfg.Credentials.Retrieve(ctx)
		if err != nil {
			r.Result = "no AWS credentials found (environment, shared credentials file, or the instance profile): " + credentialsMessage(err)
			return r
		}
		src = "access key " + c.AccessKeyID
		if c.Source != "" {
			src += " from " + c.Source
		}
	}
	_, err := p.ec2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(5)})
	switch code := apiCode(err); {
	case err == nil, code == "UnauthorizedOperation":
		r.OK, r.Result = true, "ok: AWS took them"
		if src != "" {
			r.Result += " (" + src + ")"
		}
	case credentialsError(err):
		r.Result = "not valid: " + credentialsMessage(err)
		if src != "" {
			r.Result += " (" + src + ")"
		}
	default:
		r.Result = "AWS did not answer: " + checkError(err)
	}
	return r
}

// checkResources checks t's AMI (ami: resolved), subnets, security
// groups and instance types, one row each (see above). It reports
// whether every row passed.
func (p *Provider) checkResources(ctx context.Context, t template.Template, ami string) ([]CheckResult, bool) {
	var out []CheckResult
	if ami != "" {
		out = append(out, p.checkImage(ctx, t.ImageID, ami))
	}
	ca, ok := p.ec2.(checkAPI)
	if !ok {
		return out, allOK(out)
	}
	zones := map[string]string{} // subnet -> zone, of the subnets found
	vpcs := map[string]bool{}
	for _, s := range t.SubnetIDs {
		r := CheckResult{What: "subnet " + s}
		o, err := ca.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{s}})
		switch {
		case err != nil:
			r.Result = describeError(err, "ec2:DescribeSubnets")
		case len(o.Subnets) == 0:
			r.Result = "InvalidSubnetID.NotFound: AWS described no subnet " + s
		default:
			sn := o.Subnets[0]
			zones[s] = aws.ToString(sn.AvailabilityZone)
			vpcs[aws.ToString(sn.VpcId)] = true
			r.OK, r.Result = true, fmt.Sprintf("ok: in %s, %s", zones[s], aws.ToString(sn.VpcId))
			if sn.State != "" && sn.State != types.SubnetStateAvailable {
				r.OK, r.Result = false, fmt.Sprintf("state %s (in %s, %s): EC2 launches only in an available subnet", sn.State, zones[s], aws.ToString(sn.VpcId))
			}
		}
		out = append(out, r)
	}
	for _, g := range t.SecurityGroupIDs {
		r := CheckResult{What: "security group " + g}
		o, err := ca.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{g}})
		switch {
		case err != nil:
			r.Result = describeError(err, "ec2:DescribeSecurityGroups")
		case len(o.SecurityGroups) == 0:
			r.Result = "InvalidGroup.NotFound: AWS described no security group " + g
		default:
			sg := o.SecurityGroups[0]
			vpc := aws.ToString(sg.VpcId)
			r.OK, r.Result = true, fmt.Sprintf("ok: %s, %s", aws.ToString(sg.GroupName), vpc)
			if len(vpcs) > 0 && !vpcs[vpc] {
				r.OK, r.Result = false, fmt.Sprintf("in %s, the subnets in %s: EC2 launches an instance only with security groups of its subnet's VPC",
					vpc, strings.Join(slices.Sorted(maps.Keys(vpcs)), ", "))
			}
		}
		out = append(out, r)
	}
	out = append(out, p.checkOfferings(ctx, ca, t, zones)...)
	return out, allOK(out)
}

// checkImage describes the AMI ami (what the template's imageId names).
func (p *Provider) checkImage(ctx context.Context, imageID, ami string) CheckResult {
	r := CheckResult{What: "image " + imageID}
	o, err := p.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	switch {
	case err != nil:
		r.Result = describeError(err, "ec2:DescribeImages")
		return r
	case len(o.Images) == 0:
		// EC2 answers an id it does not know InvalidAMIID.NotFound; an
		// empty answer is an AMI the caller may not see.
		r.Result = "InvalidAMIID.NotFound: AWS described no image " + ami + " (deregistered, in another region, or not shared with this account)"
		return r
	}
	img := o.Images[0]
	var parts []string
	if ami != imageID {
		parts = append(parts, ami)
	}
	if n := aws.ToString(img.Name); n != "" {
		parts = append(parts, n)
	}
	if img.Architecture != "" {
		parts = append(parts, string(img.Architecture))
	}
	r.OK, r.Result = true, "ok"
	if len(parts) > 0 {
		r.Result += ": " + strings.Join(parts, ", ")
	}
	if img.State != "" && img.State != types.ImageStateAvailable {
		r.OK, r.Result = false, fmt.Sprintf("state %s: EC2 launches only an available AMI", img.State)
	}
	return r
}

// checkOfferings asks DescribeInstanceTypeOfferings where t's instance
// types are offered: in the zones of its subnets found (zones), or in the
// region when it names no subnet (or none was found). One row per type.
func (p *Provider) checkOfferings(ctx context.Context, ca checkAPI, t template.Template, zones map[string]string) []CheckResult {
	its := t.InstanceTypes()
	if len(its) == 0 {
		return nil
	}
	in := &ec2.DescribeInstanceTypeOfferingsInput{LocationType: types.LocationTypeRegion,
		Filters: []types.Filter{{Name: aws.String("instance-type"), Values: its}}}
	var want []string // the zones asked about
	for _, z := range zones {
		if !slices.Contains(want, z) {
			want = append(want, z)
		}
	}
	slices.Sort(want)
	if len(want) > 0 {
		in.LocationType = types.LocationTypeAvailabilityZone
		in.Filters = append(in.Filters, types.Filter{Name: aws.String("location"), Values: want})
	}
	offered := map[string]map[string]bool{} // type -> locations
	var err error
	for {
		var o *ec2.DescribeInstanceTypeOfferingsOutput
		if o, err = ca.DescribeInstanceTypeOfferings(ctx, in); err != nil {
			break
		}
		for _, of := range o.InstanceTypeOfferings {
			it := string(of.InstanceType)
			if offered[it] == nil {
				offered[it] = map[string]bool{}
			}
			offered[it][aws.ToString(of.Location)] = true
		}
		if aws.ToString(o.NextToken) == "" {
			break
		}
		in.NextToken = o.NextToken
	}
	var out []CheckResult
	for _, it := range its {
		r := CheckResult{What: "instance type " + it}
		switch {
		case err != nil:
			r.Result = describeError(err, "ec2:DescribeInstanceTypeOfferings")
		case len(want) == 0 && len(offered[it]) == 0:
			r.Result = "not offered in region " + p.cfg.Region + " (is the name right?)"
		case len(want) == 0:
			r.OK, r.Result = true, "ok: offered in region "+p.cfg.Region
		default:
			var missing []string
			for _, s := range t.SubnetIDs {
				if z, ok := zones[s]; ok && !offered[it][z] {
					missing = append(missing, z+" ("+s+")")
				}
			}
			switch {
			case len(offered[it]) == 0:
				r.Result = "not offered in " + strings.Join(want, ", ") + ", the zones of the subnets (is the name right?)"
			case len(missing) > 0:
				r.Result = "not offered in " + strings.Join(missing, ", ") + ": a launch there fails Unsupported; offered in " + strings.Join(slices.Sorted(maps.Keys(offered[it])), ", ")
			default:
				r.OK, r.Result = true, "ok: offered in "+strings.Join(want, ", ")
			}
		}
		out = append(out, r)
	}
	return out
}

// describeError is a describe call's failure for a row: perm when the
// credentials lack it, else AWS's code and message.
func describeError(err error, perm string) string {
	if apiCode(err) == "UnauthorizedOperation" {
		return "not permitted: the credentials lack " + perm + ", so this is not checked here (the dry runs below still try it): " + apiMessage(err)
	}
	return checkError(err)
}

func allOK(rs []CheckResult) bool {
	for _, r := range rs {
		if !r.OK {
			return false
		}
	}
	return true
}
