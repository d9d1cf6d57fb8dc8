package awsprov

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/aws/smithy-go"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/template"
)

// checkTemplate is a template of api over two subnets and two types.
func checkTemplate(r *awssim.Region, api string) template.Template {
	var subnets []string
	for _, s := range r.Subnets() {
		subnets = append(subnets, s)
	}
	sort.Strings(subnets)
	t := template.Template{TemplateID: "tpl-" + api, ImageID: al2023, SubnetIDs: subnets[:2], ProviderAPI: api, MaxNumber: 10,
		PriceType: template.PriceHeterogeneous, PercentOnDemand: 50, FleetRole: "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role",
		VMTypes: template.Weights{{Type: "c5.large", Weight: 1}, {Type: "c5.xlarge", Weight: 2}}, RootVolumeSize: 20}
	if api == template.APIEC2Fleet {
		t.FleetType = template.FleetRequest
	}
	return t
}

// row finds the check's row whose What starts with prefix.
func row(t *testing.T, res []CheckResult, prefix string) CheckResult {
	t.Helper()
	for _, r := range res {
		if strings.HasPrefix(r.What, prefix) {
			return r
		}
	}
	t.Fatalf("no row %q in %+v", prefix, res)
	return CheckResult{}
}

// leftovers lists the launch templates, fleets, Spot Fleet requests,
// groups and instances the region holds.
func leftovers(t *testing.T, p *Provider, r *awssim.Region) string {
	t.Helper()
	ctx := context.Background()
	var out []string
	lts, err := p.fleet.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, lt := range lts.LaunchTemplates {
		out = append(out, "launch template "+aws.ToString(lt.LaunchTemplateName))
	}
	fl, err := p.fleet.DescribeFleets(ctx, &ec2.DescribeFleetsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fl.Fleets {
		out = append(out, "fleet "+aws.ToString(f.FleetId))
	}
	sf, err := p.fleet.DescribeSpotFleetRequests(ctx, &ec2.DescribeSpotFleetRequestsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range sf.SpotFleetRequestConfigs {
		out = append(out, "spot fleet "+aws.ToString(f.SpotFleetRequestId))
	}
	gs, err := p.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gs.AutoScalingGroups {
		out = append(out, "group "+aws.ToString(g.AutoScalingGroupName))
	}
	for _, in := range r.Instances() {
		out = append(out, "instance "+in.ID)
	}
	return strings.Join(out, ", ")
}

// ohfp check of EC2 Fleet, Spot Fleet and Auto Scaling templates: the
// very call ohfp makes is dry-run (CreateFleet, RequestSpotFleet), or for
// Auto Scaling what can be without changing anything, through a launch
// template of the check's own; every row is ok for a good template, and
// afterwards the region holds nothing: no launch template, fleet, group
// or instance.
func TestSimCheckFleetAPIs(t *testing.T) {
	for _, api := range []string{template.APIEC2Fleet, template.APISpotFleet, template.APIASG} {
		t.Run(api, func(t *testing.T) {
			p, r, _ := newSim(t, Settings{})
			tpl := checkTemplate(r, api)
			res := p.Check(context.Background(), tpl)
			for _, c := range res {
				if !c.OK {
					t.Errorf("good %s template: %+v", api, c)
				}
			}
			row(t, res, "CreateLaunchTemplate ohfp-check-tpl-"+api)
			switch api {
			case template.APIEC2Fleet:
				if c := row(t, res, "CreateFleet dry run (10 units)"); c.Result != "ok" {
					t.Fatalf("fleet dry run: %+v", c)
				}
			case template.APISpotFleet:
				row(t, res, "Spot Fleet role arn:aws:iam::")
				if c := row(t, res, "RequestSpotFleet dry run (10 units)"); c.Result != "ok" {
					t.Fatalf("spot fleet dry run: %+v", c)
				}
			case template.APIASG:
				row(t, res, "DescribeAutoScalingGroups")
				if c := row(t, res, "CreateAutoScalingGroup"); !strings.HasPrefix(c.Result, "not checkable: Auto Scaling has no dry run") {
					t.Fatalf("group row: %+v", c)
				}
			}
			pairs := 0
			for _, c := range res {
				if strings.HasPrefix(c.What, "RunInstances dry run of the launch template: c5.") {
					pairs++
				}
			}
			if pairs != 4 {
				t.Fatalf("%d launch template dry runs, want 2 types x 2 subnets: %+v", pairs, res)
			}
			if calls := r.Calls(); calls["CreateFleet"]+calls["RequestSpotFleet"]+calls["CreateAutoScalingGroup"] != map[bool]int{true: 1}[api != template.APIASG] {
				t.Fatalf("calls: %v", calls)
			}
			if l := leftovers(t, p, r); l != "" {
				t.Fatalf("the check left %s", l)
			}
		})
	}
}

// What each API's check says when the template or the credentials are
// wrong: an unknown subnet and AMI, a denied action, a malformed fleet
// role; and a Spot Fleet's RunInstances denied is no failure (its fleet
// role launches).
func TestSimCheckFleetFailures(t *testing.T) {
	ctx := context.Background()
	p, r, _ := newSim(t, Settings{})

	fleet := checkTemplate(r, template.APIEC2Fleet)
	fleet.SubnetIDs = []string{"subnet-0000000000000dead"}
	res := p.Check(ctx, fleet)
	if c := row(t, res, "CreateFleet dry run"); c.OK || !strings.Contains(c.Result, "InvalidSubnetID.NotFound") {
		t.Fatalf("unknown subnet: %+v", c)
	}
	badAMI := checkTemplate(r, template.APISpotFleet)
	badAMI.ImageID, badAMI.RootVolumeSize = "ami-0000000000000dead", 0
	res = p.Check(ctx, badAMI)
	failed := false
	for _, c := range res {
		failed = failed || !c.OK && strings.Contains(c.Result, "InvalidAMIID")
	}
	if !failed {
		t.Fatalf("unknown AMI: no row says so: %+v", res)
	}
	badRole := checkTemplate(r, template.APISpotFleet)
	badRole.FleetRole = "aws-ec2-spot-fleet-tagging-role"
	res = p.Check(ctx, badRole)
	if c := row(t, res, "Spot Fleet role"); c.OK || !strings.Contains(c.Result, "not an IAM role ARN") {
		t.Fatalf("malformed role: %+v", c)
	}

	r.SetFaults(awssim.Faults{Denied: []string{"CreateFleet", "RequestSpotFleet", "DescribeAutoScalingGroups", "RunInstances"}})
	res = p.Check(ctx, checkTemplate(r, template.APIEC2Fleet))
	if c := row(t, res, "CreateFleet dry run"); c.OK || !strings.Contains(c.Result, "not permitted: the credentials lack ec2:CreateFleet") {
		t.Fatalf("denied CreateFleet: %+v", c)
	}
	if c := row(t, res, "RunInstances dry run of the launch template"); c.OK || !strings.Contains(c.Result, "lack ec2:RunInstances") {
		t.Fatalf("denied RunInstances for a fleet: %+v", c)
	}
	res = p.Check(ctx, checkTemplate(r, template.APISpotFleet))
	if c := row(t, res, "RequestSpotFleet dry run"); c.OK || !strings.Contains(c.Result, "ec2:RequestSpotFleet") {
		t.Fatalf("denied RequestSpotFleet: %+v", c)
	}
	if c := row(t, res, "RunInstances dry run of the launch template"); !c.OK || !strings.HasPrefix(c.Result, "not checked") {
		t.Fatalf("denied RunInstances for a Spot Fleet: %+v", c)
	}
	res = p.Check(ctx, checkTemplate(r, template.APIASG))
	if c := row(t, res, "DescribeAutoScalingGroups"); c.OK || !strings.Contains(c.Result, "autoscaling:DescribeAutoScalingGroups") {
		t.Fatalf("denied DescribeAutoScalingGroups: %+v", c)
	}
	r.SetFaults(awssim.Faults{Denied: []string{"CreateLaunchTemplate"}})
	res = p.Check(ctx, checkTemplate(r, template.APIASG))
	if c := row(t, res, "CreateLaunchTemplate"); c.OK || !strings.Contains(c.Result, "ec2:CreateLaunchTemplate") {
		t.Fatalf("denied CreateLaunchTemplate: %+v", c)
	}
	r.SetFaults(awssim.Faults{})
	if l := leftovers(t, p, r); l != "" {
		t.Fatalf("the checks left %s", l)
	}
}

// deletesFail is the provider's EC2 client with every DeleteLaunchTemplate
// after the first failing.
type deletesFail struct {
	fleetAPI
	calls int
}

func (d *deletesFail) DeleteLaunchTemplate(ctx context.Context, in *ec2.DeleteLaunchTemplateInput, optFns ...func(*ec2.Options)) (*ec2.DeleteLaunchTemplateOutput, error) {
	if d.calls++; d.calls > 1 {
		return nil, &smithy.GenericAPIError{Code: "InternalError", Message: "An internal error has occurred."}
	}
	return d.fleetAPI.DeleteLaunchTemplate(ctx, in, optFns...)
}

// A launch template the check could not delete is reported, and the next
// check deletes it and makes its own from the template as it is then (not
// the stale one).
func TestSimCheckLeftoverLaunchTemplate(t *testing.T) {
	ctx := context.Background()
	p, r, _ := newSim(t, Settings{})
	tpl := checkTemplate(r, template.APIEC2Fleet)
	real := p.fleet
	p.fleet = &deletesFail{fleetAPI: real}
	res := p.Check(ctx, tpl)
	if c := row(t, res, "DeleteLaunchTemplate ohfp-check-"); c.OK || !strings.Contains(c.Result, "left behind") {
		t.Fatalf("undeletable launch template: %+v", c)
	}
	p.fleet = real
	if l := leftovers(t, p, r); l != "launch template ohfp-check-tpl-EC2Fleet" {
		t.Fatalf("left: %q", l)
	}
	// The stale one holds c5.large; the template now asks m5.large only:
	// a check that reused the stale one would dry-run m5.large against it
	// fine too, so also look at the launch template the check makes.
	tpl.VMTypes = template.Weights{{Type: "m5.large", Weight: 1}}
	var made []string
	p.fleet = &recordLT{fleetAPI: real, made: &made}
	res = p.Check(ctx, tpl)
	for _, c := range res {
		if !c.OK {
			t.Errorf("second check: %+v", c)
		}
	}
	row(t, res, "RunInstances dry run of the launch template: m5.large")
	if len(made) != 1 || made[0] != "m5.large" {
		t.Fatalf("the second check made launch templates of %v, want one of m5.large", made)
	}
	p.fleet = real
	if l := leftovers(t, p, r); l != "" {
		t.Fatalf("the second check left %s", l)
	}
}

// recordLT records the instance type of each launch template made.
type recordLT struct {
	fleetAPI
	made *[]string
}

func (d *recordLT) CreateLaunchTemplate(ctx context.Context, in *ec2.CreateLaunchTemplateInput, optFns ...func(*ec2.Options)) (*ec2.CreateLaunchTemplateOutput, error) {
	out, err := d.fleetAPI.CreateLaunchTemplate(ctx, in, optFns...)
	if err == nil {
		*d.made = append(*d.made, string(in.LaunchTemplateData.InstanceType))
	}
	return out, err
}

// The check's launch template name is a valid one whatever the template
// id, and never that of a request's (req-..., ret-...).
func TestCheckRequestID(t *testing.T) {
	for id, want := range map[string]string{
		"OnDemand-c5": "ohfp-check-OnDemand-c5",
		"a b/ü":       "ohfp-check-" + checkRequestID(&template.Template{TemplateID: "a b/ü"})[len("check-"):],
	} {
		got := LaunchTemplateName(checkRequestID(&template.Template{TemplateID: id}))
		if got != want || !ltNameChars.MatchString(got) || len(got) > 128 || strings.HasPrefix(got, "ohfp-req-") {
			t.Errorf("template %q: launch template %q", id, got)
		}
	}
	if a, b := checkRequestID(&template.Template{TemplateID: "a b"}), checkRequestID(&template.Template{TemplateID: "a c"}); a == b || len(a) != len("check-")+16 {
		t.Errorf("hashed names %q %q", a, b)
	}
}
