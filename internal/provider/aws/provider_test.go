package awsprov

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

func fullTemplate(t *testing.T) template.Template {
	script := filepath.Join(t.TempDir(), "user_data.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return template.Template{
		TemplateID:       "tpl-1",
		ImageID:          "ami-0123456789abcdef0",
		SubnetIDs:        []string{"subnet-a", "subnet-b"},
		VMType:           "c5.large",
		KeyName:          "key1",
		SecurityGroupIDs: []string{"sg-1", "sg-2"},
		InstanceProfile:  "hf-role",
		UserDataScript:   script,
		RootVolumeSize:   50,
		VolumeType:       "gp3",
		Iops:             4000,
		LaunchTemplateID: "lt-0abc",
	}
}

var ohfpTags = map[string]string{
	provider.TagManagedBy: "cluster-1", provider.TagRequestID: "req-1",
	provider.TagTemplateID: "tpl-1", "team": "hpc",
}

func TestLaunchRunInstancesInput(t *testing.T) {
	p, e, _, _ := newFakeProvider()
	e.images["ami-0123456789abcdef0"] = "/dev/xvda"
	tpl := fullTemplate(t)
	res, err := p.Launch(context.Background(), provider.LaunchSpec{
		RequestID: "req-1", ClientToken: "req-1-0", Template: tpl, Units: 3, Tags: ohfpTags,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Instances) != 3 || len(res.Errors) != 0 {
		t.Fatalf("launched %d instances, errors %v; want 3 and none", len(res.Instances), res.Errors)
	}
	if res.Instances[0].Tags[provider.TagRequestID] != "req-1" || res.Instances[0].State != provider.StatePending {
		t.Errorf("instance mapped wrong: %+v", res.Instances[0])
	}
	in := e.runs[0]
	check := func(name string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("MinCount", aws.ToInt32(in.MinCount), 1)
	check("MaxCount", aws.ToInt32(in.MaxCount), 3)
	check("InstanceType", in.InstanceType, "c5.large")
	check("ImageId", aws.ToString(in.ImageId), "ami-0123456789abcdef0")
	check("SubnetId", aws.ToString(in.SubnetId), "subnet-a")
	check("SecurityGroupIds", in.SecurityGroupIds, []string{"sg-1", "sg-2"})
	check("KeyName", aws.ToString(in.KeyName), "key1")
	check("IamInstanceProfile.Name", aws.ToString(in.IamInstanceProfile.Name), "hf-role")
	check("IamInstanceProfile.Arn", in.IamInstanceProfile.Arn == nil, true)
	check("ClientToken", aws.ToString(in.ClientToken), "req-1-0")
	check("LaunchTemplate", aws.ToString(in.LaunchTemplate.LaunchTemplateId)+"@"+aws.ToString(in.LaunchTemplate.Version), "lt-0abc@$Default")
	check("InstanceMarketOptions", in.InstanceMarketOptions == nil, true)
	ud, err := base64.StdEncoding.DecodeString(aws.ToString(in.UserData))
	check("UserData", string(ud), "#!/bin/sh\necho hello\n")
	check("UserData decode error", err, nil)
	if len(in.BlockDeviceMappings) != 1 {
		t.Fatalf("BlockDeviceMappings = %+v, want one", in.BlockDeviceMappings)
	}
	bdm := in.BlockDeviceMappings[0]
	check("DeviceName", aws.ToString(bdm.DeviceName), "/dev/xvda")
	check("VolumeSize", aws.ToInt32(bdm.Ebs.VolumeSize), 50)
	check("VolumeType", bdm.Ebs.VolumeType, "gp3")
	check("Iops", aws.ToInt32(bdm.Ebs.Iops), 4000)
	check("DeleteOnTermination", aws.ToBool(bdm.Ebs.DeleteOnTermination), true)
	if len(in.TagSpecifications) != 2 {
		t.Fatalf("TagSpecifications = %+v, want instance and volume", in.TagSpecifications)
	}
	for i, rt := range []types.ResourceType{types.ResourceTypeInstance, types.ResourceTypeVolume} {
		ts := in.TagSpecifications[i]
		check("ResourceType", ts.ResourceType, rt)
		var keys []string
		for _, tag := range ts.Tags {
			keys = append(keys, aws.ToString(tag.Key))
			check("tag "+aws.ToString(tag.Key), aws.ToString(tag.Value), ohfpTags[aws.ToString(tag.Key)])
		}
		check("tag keys", keys, []string{"ohfp:managed-by", "ohfp:request-id", "ohfp:template-id", "team"})
	}

	// A second launch from the same AMI does not describe the image again.
	if _, err := p.Launch(context.Background(), provider.LaunchSpec{Template: tpl, Units: 1, Tags: ohfpTags}); err != nil {
		t.Fatal(err)
	}
	check("DescribeImages calls", e.imageCalls, 1)
	check("no ClientToken when none given", e.runs[1].ClientToken == nil, true)
}

func TestLaunchVariants(t *testing.T) {
	p, e, _, _ := newFakeProvider()
	launch := func(tpl template.Template, units int) error {
		_, err := p.Launch(context.Background(), provider.LaunchSpec{Template: tpl, Units: units, Tags: ohfpTags})
		return err
	}
	last := func() int { return len(e.runs) - 1 }

	// Spot with a max price, an instance profile ARN, inline user data,
	// weighted vmTypes, no launch template, no block devices.
	tpl := template.Template{
		TemplateID: "spot", ImageID: "ami-1", PriceType: "spot", MaxSpotPrice: 0.125,
		ProviderAPI: template.APIRunInstances, InstanceProfile: "arn:aws:iam::123456789012:instance-profile/hf",
		UserData: "a=b;c=d", UserDataTemplate: "testdata/userdata/exports_only.sh", VMTypes: template.Weights{{Type: "m5.xlarge", Weight: 4}, {Type: "m5.large", Weight: 2}},
	}
	if err := launch(tpl, 10); err != nil {
		t.Fatal(err)
	}
	in := e.runs[last()]
	if in.InstanceMarketOptions == nil || in.InstanceMarketOptions.MarketType != types.MarketTypeSpot ||
		aws.ToString(in.InstanceMarketOptions.SpotOptions.MaxPrice) != "0.125" ||
		in.InstanceMarketOptions.SpotOptions.SpotInstanceType != types.SpotInstanceTypeOneTime {
		t.Errorf("InstanceMarketOptions = %+v", in.InstanceMarketOptions)
	}
	if in.InstanceType != "m5.xlarge" || aws.ToInt32(in.MaxCount) != 3 {
		t.Errorf("type %s count %d; want m5.xlarge x3 (10 units at weight 4)", in.InstanceType, aws.ToInt32(in.MaxCount))
	}
	if aws.ToString(in.IamInstanceProfile.Arn) != tpl.InstanceProfile || in.IamInstanceProfile.Name != nil {
		t.Errorf("IamInstanceProfile = %+v, want the ARN", in.IamInstanceProfile)
	}
	if got, _ := base64.StdEncoding.DecodeString(aws.ToString(in.UserData)); string(got) != "export a=b\nexport c=d\nexport template_id=spot" {
		t.Errorf("UserData decodes to %q", got)
	}
	if in.LaunchTemplate != nil || in.BlockDeviceMappings != nil || in.SubnetId != nil || in.KeyName != nil {
		t.Errorf("unset fields were sent: %+v", in)
	}

	// Spot without max price: no MaxPrice (the on-demand price caps it).
	tpl.MaxSpotPrice = 0
	if err := launch(tpl, 1); err != nil {
		t.Fatal(err)
	}
	if mp := e.runs[last()].InstanceMarketOptions.SpotOptions.MaxPrice; mp != nil {
		t.Errorf("MaxPrice = %q, want unset", *mp)
	}

	// A launch template alone, with an explicit version.
	if err := launch(template.Template{TemplateID: "lt", LaunchTemplateID: "lt-1", LaunchTemplateV: "7"}, 2); err != nil {
		t.Fatal(err)
	}
	in = e.runs[last()]
	if in.ImageId != nil || in.InstanceType != "" || aws.ToString(in.LaunchTemplate.Version) != "7" {
		t.Errorf("launch-template-only input = %+v", in)
	}

	// A short launch is reported, not failed.
	e.capacity = 2
	res, err := p.Launch(context.Background(), provider.LaunchSpec{Template: template.Template{TemplateID: "x", ImageID: "ami-1", VMType: "c5.large"}, Units: 5})
	if err != nil || len(res.Instances) != 2 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "2 of 5") {
		t.Errorf("short launch = %+v, %v; want 2 instances and a '2 of 5' error", res, err)
	}
}

func TestLaunchRefusals(t *testing.T) {
	cases := []struct {
		name string
		tpl  template.Template
		want string
	}{
		{"heterogeneous", template.Template{ImageID: "ami-1", VMType: "c5.large", PriceType: "heterogeneous", ProviderAPI: "RunInstances"}, "priceType heterogeneous"},
		{"no type", template.Template{ImageID: "ami-1"}, "no vmType"},
		{"no image", template.Template{VMType: "c5.large"}, "no imageId"},
		{"missing script", template.Template{ImageID: "ami-1", VMType: "c5.large", UserDataScript: "/nonexistent/ud.sh"}, "read userDataScript"},
		{"root volume without image", template.Template{LaunchTemplateID: "lt-1", RootVolumeSize: 20}, "need imageId"},
		{"unknown AMI for root volume", template.Template{ImageID: "ami-missing", VMType: "c5.large", RootVolumeSize: 20}, "InvalidAMIID.NotFound"},
		{"unknown SSM parameter", template.Template{ImageID: "/aws/service/nope", VMType: "c5.large"}, "ParameterNotFound"},
		{"fleet API", template.Template{ImageID: "ami-1", VMType: "c5.large", ProviderAPI: "Nope"}, "providerApi Nope is not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, e, _, _ := newFakeProvider()
			c.tpl.TemplateID = "tpl"
			_, err := p.Launch(context.Background(), provider.LaunchSpec{Template: c.tpl, Units: 1})
			if err == nil || !strings.Contains(err.Error(), c.want) || provider.KindOf(err) != provider.Fatal {
				t.Fatalf("err = %v (kind %v), want a Fatal error containing %q", err, provider.KindOf(err), c.want)
			}
			if len(e.runs) != 0 {
				t.Errorf("RunInstances was called %d times", len(e.runs))
			}
		})
	}
	p, _, _, _ := newFakeProvider()
	_, err := p.Launch(context.Background(), provider.LaunchSpec{Template: template.Template{ImageID: "ami-1", VMType: "c5.large"}, Units: 0})
	if err == nil || !strings.Contains(err.Error(), "0 units") {
		t.Errorf("zero units: err = %v", err)
	}
}

func TestLaunchAWSErrorIsClassified(t *testing.T) {
	p, e, _, _ := newFakeProvider()
	e.runErr = &smithy.GenericAPIError{Code: "InsufficientInstanceCapacity", Message: "We currently do not have sufficient c5.large capacity in the Availability Zone you requested (us-east-1a)."}
	_, err := p.Launch(context.Background(), provider.LaunchSpec{Template: template.Template{ImageID: "ami-1", VMType: "c5.large"}, Units: 1})
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Kind != provider.Capacity || pe.Op != "RunInstances" || pe.Code != "InsufficientInstanceCapacity" ||
		pe.Message != "We currently do not have sufficient c5.large capacity in the Availability Zone you requested (us-east-1a)." {
		t.Fatalf("err = %#v", err)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Error("the AWS error is no longer reachable through errors.As")
	}
}

func TestSSMImageCacheTTL(t *testing.T) {
	p, e, s, clk := newFakeProvider()
	s.params["/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"] = "ami-00000000000000001"
	tpl := template.Template{TemplateID: "ssm", ImageID: "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64", VMType: "c5.large"}
	launch := func() string {
		t.Helper()
		if _, err := p.Launch(context.Background(), provider.LaunchSpec{Template: tpl, Units: 1}); err != nil {
			t.Fatal(err)
		}
		return aws.ToString(e.runs[len(e.runs)-1].ImageId)
	}
	if got := launch(); got != "ami-00000000000000001" || s.calls != 1 {
		t.Fatalf("first launch: image %s after %d SSM calls", got, s.calls)
	}
	s.params["/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"] = "ami-00000000000000002"
	clk.Advance(DefaultSSMCacheTTL - time.Second)
	if got := launch(); got != "ami-00000000000000001" || s.calls != 1 {
		t.Fatalf("within TTL: image %s after %d SSM calls, want the cached value and no call", got, s.calls)
	}
	clk.Advance(2 * time.Second)
	if got := launch(); got != "ami-00000000000000002" || s.calls != 2 {
		t.Fatalf("after TTL: image %s after %d SSM calls, want the new value", got, s.calls)
	}
	// A plain path (without resolve:ssm:) is the same parameter: cached.
	tpl.ImageID = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
	if got := launch(); got != "ami-00000000000000002" || s.calls != 2 {
		t.Fatalf("plain path: image %s after %d SSM calls", got, s.calls)
	}
}

func TestListPaginatesByOwner(t *testing.T) {
	p, e, _, _ := newFakeProvider()
	var mine []string
	for i := range 2500 {
		mine = append(mine, e.addInstance("cluster-1"))
		if i%10 == 0 {
			e.addInstance("someone-else")
		}
	}
	e.instances[0].State.Name = types.InstanceStateNameTerminated
	e.instances[0].StateReason = &types.StateReason{Code: aws.String("Client.UserInitiatedShutdown")}
	// e.instances[1] is someone else's; [2] is the owner's second.
	e.instances[2].InstanceLifecycle = types.InstanceLifecycleTypeSpot
	e.instances[2].SpotInstanceRequestId = aws.String("sir-1")
	e.instances[2].PrivateIpAddress = aws.String("10.0.0.5")
	e.instances[2].PublicIpAddress = aws.String("3.3.3.3")
	e.instances[2].PrivateDnsName = aws.String("ip-10-0-0-5.ec2.internal")
	lt := time.Date(2025, 3, 1, 11, 0, 0, 0, time.UTC)
	e.instances[2].LaunchTime = &lt

	// The page hook runs before each page is fetched.
	var hooked []int
	ctx := provider.WithPageHook(context.Background(), func(context.Context) { hooked = append(hooked, len(e.describes)) })
	got, err := p.List(ctx, "cluster-1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hooked, []int{0, 1, 2}) {
		t.Errorf("page hook ran with %v describes done, want before each of the 3 pages", hooked)
	}
	var ids []string
	for _, i := range got {
		ids = append(ids, i.ID)
	}
	if !slices.Equal(ids, mine) {
		t.Fatalf("List returned %d instances, want the owner's %d", len(ids), len(mine))
	}
	if len(e.describes) != 3 {
		t.Errorf("%d DescribeInstances calls for 2500 instances, want 3", len(e.describes))
	}
	for _, d := range e.describes {
		if aws.ToInt32(d.MaxResults) != 1000 || len(d.InstanceIds) != 0 {
			t.Errorf("describe call %+v: want MaxResults 1000 and no ids", d)
		}
	}
	if got[0].State != "terminated" || got[0].StateReason != "Client.UserInitiatedShutdown" {
		t.Errorf("terminated instance mapped as %+v", got[0])
	}
	want := "spot=true sir=sir-1 ip=10.0.0.5 pub=3.3.3.3 dns=ip-10-0-0-5.ec2.internal launched=" + lt.String() + " owner=cluster-1"
	i := got[1]
	if s := fmt.Sprintf("spot=%v sir=%s ip=%s pub=%s dns=%s launched=%s owner=%s", i.Spot, i.SpotRequestID, i.PrivateIP, i.PublicIP, i.PrivateDNS, i.LaunchTime, i.Tags[provider.TagManagedBy]); s != want {
		t.Errorf("instance mapped as\n%s\nwant\n%s", s, want)
	}
}

func TestTerminateBatchesAndSkipsUnknown(t *testing.T) {
	for _, named := range []bool{true, false} {
		t.Run(fmt.Sprintf("message names ids=%v", named), func(t *testing.T) {
			p, e, _, _ := newFakeProvider()
			e.notFoundWithoutIDs = !named
			var ids []string
			for range 2100 {
				ids = append(ids, e.addInstance("c"))
			}
			unknown := []string{"i-0fffffffffffffff1", "i-0fffffffffffffff2"}
			// Both unknown ids land in the last batch once sorted.
			ids = append(ids, unknown...)
			err := p.Terminate(context.Background(), append(ids, ids[0]))
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Kind != provider.NotFound || !slices.Equal(pe.IDs, unknown) {
				t.Fatalf("Terminate with unknown ids = %v, want a NotFound error naming %v", err, unknown)
			}
			for _, id := range ids[:2100] {
				if !e.terminatedSet[id] {
					t.Fatalf("%s was not terminated", id)
				}
			}
			for _, call := range e.terminates {
				if len(call) > 1000 {
					t.Fatalf("a TerminateInstances call had %d ids", len(call))
				}
			}
			// 3 batches (1000, 1000, 102); the last fails once.
			if named && len(e.terminates) != 4 {
				t.Errorf("%d TerminateInstances calls, want 4 (3 batches, 1 retry)", len(e.terminates))
			}
			if !named && len(e.terminates) != 2+1+102 {
				t.Errorf("%d TerminateInstances calls, want 105 (2 batches, 1 failed, 102 singles)", len(e.terminates))
			}
		})
	}
}

func TestTerminateOtherErrorsReported(t *testing.T) {
	p, e, _, _ := newFakeProvider()
	id := e.addInstance("c")
	e.instances = nil // now unknown: NotFound, reported as such (not "already gone")
	if err := p.Terminate(context.Background(), []string{id}); provider.KindOf(err) != provider.NotFound || provider.Retryable(err) {
		t.Fatalf("terminating an unknown id: %v, want a NotFound error", err)
	}
	if err := p.Terminate(context.Background(), nil); err != nil || len(e.terminates) != 1 {
		t.Fatalf("empty terminate: %v, %d calls", err, len(e.terminates))
	}
}

func TestInstanceTypeCached(t *testing.T) {
	p, e, _, _ := newFakeProvider()
	e.itypes["m7g.large"] = types.InstanceTypeInfo{
		InstanceType:  "m7g.large",
		VCpuInfo:      &types.VCpuInfo{DefaultVCpus: aws.Int32(2), DefaultCores: aws.Int32(2)},
		MemoryInfo:    &types.MemoryInfo{SizeInMiB: aws.Int64(8192)},
		ProcessorInfo: &types.ProcessorInfo{SupportedArchitectures: []types.ArchitectureType{types.ArchitectureTypeArm64}},
	}
	for range 3 {
		info, err := p.InstanceType(context.Background(), "m7g.large")
		if err != nil {
			t.Fatal(err)
		}
		if info != (provider.InstanceTypeInfo{Name: "m7g.large", VCPUs: 2, Cores: 2, MemoryMiB: 8192, Arch: "arm64"}) {
			t.Fatalf("info = %+v", info)
		}
	}
	if e.typeCalls != 1 {
		t.Errorf("%d DescribeInstanceTypes calls, want 1", e.typeCalls)
	}
	_, err := p.InstanceType(context.Background(), "zz9.huge")
	if provider.KindOf(err) != provider.Fatal || !strings.Contains(err.Error(), "InvalidInstanceType") {
		t.Errorf("unknown type: %v", err)
	}
}

func TestSpotRequests(t *testing.T) {
	p, e, _, _ := newFakeProvider()
	upd := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 450 {
		id := fmt.Sprintf("sir-%08d", i)
		ids = append(ids, id)
		e.spot[id] = types.SpotInstanceRequest{
			SpotInstanceRequestId: aws.String(id), InstanceId: aws.String(fmt.Sprintf("i-%d", i)),
			State:  types.SpotInstanceStateActive,
			Status: &types.SpotInstanceStatus{Code: aws.String("fulfilled"), UpdateTime: &upd},
		}
	}
	got, err := p.SpotRequests(context.Background(), append(ids, "sir-gone0001"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 450 {
		t.Fatalf("%d spot requests, want 450 (the unknown one left out)", len(got))
	}
	if got[7] != (provider.SpotRequest{ID: "sir-00000007", InstanceID: "i-7", State: "active", StatusCode: "fulfilled", StatusUpdate: upd}) {
		t.Errorf("mapped as %+v", got[7])
	}
	for _, c := range e.spotCalls {
		if len(c) > spotBatchSize {
			t.Errorf("a call had %d ids", len(c))
		}
	}
}
