package awssim

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

func TestLaunchTemplates(t *testing.T) {
	s := newSim(t, Options{})
	ctx := context.Background()
	create := &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("hf-workers"),
		ClientToken:        aws.String("lt-token-1"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{
			ImageId:      aws.String(s.ami),
			InstanceType: types.InstanceTypeT3Small,
			KeyName:      aws.String("ops"),
			TagSpecifications: []types.LaunchTemplateTagSpecificationRequest{{ResourceType: types.ResourceTypeInstance,
				Tags: []types.Tag{{Key: aws.String("from"), Value: aws.String("lt")}}}},
		},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeLaunchTemplate, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("hpc")}}}},
	}
	lt, err := s.ec2.CreateLaunchTemplate(ctx, create)
	if err != nil {
		t.Fatal(err)
	}
	id := *lt.LaunchTemplate.LaunchTemplateId
	if *lt.LaunchTemplate.LatestVersionNumber != 1 || *lt.LaunchTemplate.DefaultVersionNumber != 1 || len(lt.LaunchTemplate.Tags) != 1 {
		t.Fatalf("created %+v", lt.LaunchTemplate)
	}
	again, err := s.ec2.CreateLaunchTemplate(ctx, create)
	if err != nil || *again.LaunchTemplate.LaunchTemplateId != id {
		t.Fatalf("idempotent create: %v %v", err, again)
	}
	create.ClientToken = aws.String("lt-token-2")
	_, err = s.ec2.CreateLaunchTemplate(ctx, create)
	wantCode(t, err, "InvalidLaunchTemplateName.AlreadyExistsException")

	// launch from it, overriding the type
	out := s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), InstanceType: types.InstanceTypeM5Large, ImageId: nil,
		LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateName: aws.String("hf-workers"), Version: aws.String("$Latest")}})
	_ = out
	// s.run filled ImageId from the default AMI; launch once more with only the template
	only, err := s.ec2.RunInstances(ctx, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(id)}})
	if err != nil {
		t.Fatal(err)
	}
	in := only.Instances[0]
	if in.InstanceType != types.InstanceTypeT3Small || *in.ImageId != s.ami || *in.KeyName != "ops" || len(in.Tags) != 1 || *in.Tags[0].Key != "from" {
		t.Fatalf("instance from template: type %s image %s key %v tags %v", in.InstanceType, *in.ImageId, in.KeyName, in.Tags)
	}
	if out.Instances[0].InstanceType != types.InstanceTypeM5Large {
		t.Fatalf("override ignored: %s", out.Instances[0].InstanceType)
	}

	v2, err := s.ec2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(id), SourceVersion: aws.String("1"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{InstanceType: types.InstanceTypeC5Large}, VersionDescription: aws.String("bigger")})
	if err != nil {
		t.Fatal(err)
	}
	d := v2.LaunchTemplateVersion.LaunchTemplateData
	if *v2.LaunchTemplateVersion.VersionNumber != 2 || d.InstanceType != types.InstanceTypeC5Large || *d.ImageId != s.ami || *d.KeyName != "ops" {
		t.Fatalf("version 2: %+v", v2.LaunchTemplateVersion)
	}
	vers, err := s.ec2.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateName: aws.String("hf-workers")})
	if err != nil || len(vers.LaunchTemplateVersions) != 2 || !*vers.LaunchTemplateVersions[0].DefaultVersion {
		t.Fatalf("versions: %v %+v", err, vers)
	}
	latest, err := s.ec2.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(id), Versions: []string{"$Latest"}})
	if err != nil || len(latest.LaunchTemplateVersions) != 1 || *latest.LaunchTemplateVersions[0].VersionNumber != 2 {
		t.Fatalf("$Latest: %v %+v", err, latest)
	}
	_, err = s.ec2.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(id), Versions: []string{"7"}})
	wantCode(t, err, "InvalidLaunchTemplateId.VersionNotFound")
	v2run, err := s.ec2.RunInstances(ctx, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(id), Version: aws.String("2")}})
	if err != nil || v2run.Instances[0].InstanceType != types.InstanceTypeC5Large {
		t.Fatalf("run version 2: %v", err)
	}

	lts, err := s.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{"hf-workers"}})
	if err != nil || len(lts.LaunchTemplates) != 1 || *lts.LaunchTemplates[0].LatestVersionNumber != 2 || *lts.LaunchTemplates[0].DefaultVersionNumber != 1 {
		t.Fatalf("describe: %v %+v", err, lts)
	}
	_, err = s.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{"nope"}})
	wantCode(t, err, "InvalidLaunchTemplateName.NotFoundException")
	if _, err := s.ec2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	_, err = s.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateIds: []string{id}})
	wantCode(t, err, "InvalidLaunchTemplateId.NotFound")
	_, err = s.ec2.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateName: aws.String("hf-workers")})
	wantCode(t, err, "InvalidLaunchTemplateName.NotFoundException")
}

func TestSSMParameters(t *testing.T) {
	s := newSim(t, Options{})
	ctx := context.Background()
	name := "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64"
	p, err := s.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if *p.Parameter.Name != name || p.Parameter.Version != 1 || p.Parameter.LastModifiedDate == nil {
		t.Fatalf("parameter %+v", p.Parameter)
	}
	imgs, err := s.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{*p.Parameter.Value}})
	if err != nil || len(imgs.Images) != 1 || imgs.Images[0].Architecture != types.ArchitectureValuesArm64 {
		t.Fatalf("the parameter's AMI: %v %+v", err, imgs)
	}
	_, err = s.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/aws/service/nope")})
	wantCode(t, err, "ParameterNotFound")
	ps, err := s.ssm.GetParameters(ctx, &ssm.GetParametersInput{Names: []string{name, "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2", "/nope"}})
	if err != nil || len(ps.Parameters) != 2 || len(ps.InvalidParameters) != 1 || ps.InvalidParameters[0] != "/nope" {
		t.Fatalf("GetParameters: %v %+v", err, ps)
	}
	if _, err := s.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name + ":1")}); err != nil {
		t.Fatalf("version selector: %v", err)
	}
}

func TestDescribeCatalogue(t *testing.T) {
	s := newSim(t, Options{})
	ctx := context.Background()
	it, err := s.ec2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{types.InstanceTypeM5Xlarge, types.InstanceTypeC6gLarge}})
	if err != nil || len(it.InstanceTypes) != 2 {
		t.Fatalf("%v %+v", err, it)
	}
	m5 := it.InstanceTypes[0]
	if m5.InstanceType != types.InstanceTypeM5Xlarge || *m5.VCpuInfo.DefaultVCpus != 4 || *m5.VCpuInfo.DefaultCores != 2 || *m5.MemoryInfo.SizeInMiB != 16384 || m5.ProcessorInfo.SupportedArchitectures[0] != types.ArchitectureTypeX8664 {
		t.Fatalf("m5.xlarge: %+v", m5)
	}
	if it.InstanceTypes[1].ProcessorInfo.SupportedArchitectures[0] != types.ArchitectureTypeArm64 {
		t.Fatalf("c6g.large arch %v", it.InstanceTypes[1].ProcessorInfo.SupportedArchitectures)
	}
	_, err = s.ec2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"x9.huge"}})
	wantCode(t, err, "InvalidInstanceType")
	n := 0
	pg := ec2.NewDescribeInstanceTypesPaginator(s.ec2, &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(5)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.InstanceTypes)
	}
	if n < 12 {
		t.Fatalf("catalogue has %d types", n)
	}

	sn, err := s.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	if err != nil || len(sn.Subnets) != 3 {
		t.Fatalf("%v %+v", err, sn)
	}
	azs := map[string]bool{}
	for _, x := range sn.Subnets {
		azs[*x.AvailabilityZone] = true
		if *x.VpcId != *sn.Subnets[0].VpcId || *x.AvailableIpAddressCount < 8000 {
			t.Fatalf("subnet %+v", x)
		}
	}
	if len(azs) != 3 {
		t.Fatalf("AZs %v", azs)
	}
	_, err = s.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-0123456789abcdef0"}})
	wantCode(t, err, "InvalidSubnetID.NotFound")
	one, err := s.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("availability-zone"), Values: []string{"us-east-1b"}}}})
	if err != nil || len(one.Subnets) != 1 {
		t.Fatalf("by AZ: %v %+v", err, one)
	}

	sg, err := s.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupNames: []string{"default"}})
	if err != nil || len(sg.SecurityGroups) != 1 || *sg.SecurityGroups[0].GroupName != "default" {
		t.Fatalf("%v %+v", err, sg)
	}
	_, err = s.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-0123456789abcdef0"}})
	wantCode(t, err, "InvalidGroup.NotFound")

	imgs, err := s.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}, Filters: []types.Filter{{Name: aws.String("architecture"), Values: []string{"arm64"}}}})
	if err != nil || len(imgs.Images) != 2 {
		t.Fatalf("arm64 images: %v %d", err, len(imgs.Images))
	}
	_, err = s.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{"ami-0123456789abcdef0"}})
	wantCode(t, err, "InvalidAMIID.NotFound")
}

// DescribeInstanceTypeOfferings as the API Reference documents it: by
// region (the default) or zone, filtered by instance-type and location,
// paged (MaxResults 5-1000); a type the region lacks matches nothing; an
// unknown filter or location type is refused.
func TestDescribeInstanceTypeOfferings(t *testing.T) {
	s := newSim(t, Options{})
	ctx := context.Background()
	f := func(name string, v ...string) types.Filter { return types.Filter{Name: aws.String(name), Values: v} }
	o, err := s.ec2.DescribeInstanceTypeOfferings(ctx, &ec2.DescribeInstanceTypeOfferingsInput{Filters: []types.Filter{f("instance-type", "c5.large", "x9.huge")}})
	if err != nil || len(o.InstanceTypeOfferings) != 1 || o.InstanceTypeOfferings[0].LocationType != types.LocationTypeRegion ||
		aws.ToString(o.InstanceTypeOfferings[0].Location) != "us-east-1" || o.InstanceTypeOfferings[0].InstanceType != "c5.large" {
		t.Fatalf("by region: %v %+v", err, o)
	}
	o, err = s.ec2.DescribeInstanceTypeOfferings(ctx, &ec2.DescribeInstanceTypeOfferingsInput{LocationType: types.LocationTypeAvailabilityZone,
		Filters: []types.Filter{f("instance-type", "c5.large"), f("location", "us-east-1a", "us-east-1c")}})
	if err != nil || len(o.InstanceTypeOfferings) != 2 || aws.ToString(o.InstanceTypeOfferings[1].Location) != "us-east-1c" {
		t.Fatalf("by zone: %v %+v", err, o)
	}
	n := 0
	pg := ec2.NewDescribeInstanceTypeOfferingsPaginator(s.ec2, &ec2.DescribeInstanceTypeOfferingsInput{LocationType: types.LocationTypeAvailabilityZoneId, MaxResults: aws.Int32(5)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.InstanceTypeOfferings)
	}
	if n < 3*12 {
		t.Fatalf("%d offerings in 3 zones", n)
	}
	_, err = s.ec2.DescribeInstanceTypeOfferings(ctx, &ec2.DescribeInstanceTypeOfferingsInput{MaxResults: aws.Int32(4)})
	wantCode(t, err, "InvalidParameterValue")
	_, err = s.ec2.DescribeInstanceTypeOfferings(ctx, &ec2.DescribeInstanceTypeOfferingsInput{Filters: []types.Filter{f("vcpus", "2")}})
	wantCode(t, err, "InvalidParameterValue")
	_, err = s.ec2.DescribeInstanceTypeOfferings(ctx, &ec2.DescribeInstanceTypeOfferingsInput{LocationType: "galaxy"})
	wantCode(t, err, "InvalidParameterValue")
}
