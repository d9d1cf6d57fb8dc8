package awssim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/ohfp/ohfp/internal/clock"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

type sim struct {
	r        *Region
	clk      *clock.Fake
	endpoint string
	ec2      *ec2.Client
	ssm      *ssm.Client
	ami      string
	amiArm   string
}

func newSim(t testing.TB, opts Options) *sim {
	t.Helper()
	clk := clock.NewFake(t0)
	opts.Clock = clk
	if opts.Consistency == 0 {
		// Tests of other behaviours see every resource at once; the
		// consistency tests ask for a window.
		opts.Consistency = Immediate
	}
	r := New(opts)
	endpoint, stop := r.Start()
	t.Cleanup(stop)
	cfg := ClientConfig(endpoint, r.Name())
	return &sim{
		r: r, clk: clk, endpoint: endpoint,
		ec2:    ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.RetryMaxAttempts = 1 }),
		ssm:    ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.RetryMaxAttempts = 1 }),
		ami:    r.ImageID("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"),
		amiArm: r.ImageID("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64"),
	}
}

func (s *sim) run(t *testing.T, in *ec2.RunInstancesInput) *ec2.RunInstancesOutput {
	t.Helper()
	if in.ImageId == nil {
		in.ImageId = aws.String(s.ami)
	}
	if in.InstanceType == "" {
		in.InstanceType = types.InstanceTypeT3Micro
	}
	out, err := s.ec2.RunInstances(context.Background(), in)
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	return out
}

func (s *sim) describe(t *testing.T, ids ...string) map[string]types.Instance {
	t.Helper()
	out, err := s.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: ids})
	if err != nil {
		t.Fatalf("DescribeInstances: %v", err)
	}
	m := map[string]types.Instance{}
	for _, res := range out.Reservations {
		for _, in := range res.Instances {
			m[*in.InstanceId] = in
		}
	}
	return m
}

func codeOf(t *testing.T, err error) string {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an API error, got %v", err)
	}
	return ae.ErrorCode()
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s, got success", code)
	}
	if got := codeOf(t, err); got != code {
		t.Fatalf("want %s, got %s (%v)", code, got, err)
	}
}

func ids(out *ec2.RunInstancesOutput) []string {
	var s []string
	for _, in := range out.Instances {
		s = append(s, *in.InstanceId)
	}
	return s
}

func TestLifecycle(t *testing.T) {
	s := newSim(t, Options{})
	out := s.run(t, &ec2.RunInstancesInput{
		MinCount: aws.Int32(2), MaxCount: aws.Int32(2),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("web")}}}},
	})
	if len(out.Instances) != 2 || !strings.HasPrefix(*out.ReservationId, "r-") {
		t.Fatalf("got %d instances, reservation %v", len(out.Instances), out.ReservationId)
	}
	first := out.Instances[0]
	if first.State.Name != types.InstanceStateNamePending || *first.State.Code != 0 {
		t.Fatalf("new instance state %v", first.State.Name)
	}
	ip := *first.PrivateIpAddress
	if !strings.HasPrefix(ip, "10.0.") {
		t.Fatalf("private IP %s not in the VPC", ip)
	}
	if want := "ip-" + strings.ReplaceAll(ip, ".", "-") + ".ec2.internal"; *first.PrivateDnsName != want {
		t.Fatalf("private DNS %s, want %s", *first.PrivateDnsName, want)
	}
	if !first.LaunchTime.Equal(t0) {
		t.Fatalf("launch time %v", first.LaunchTime)
	}
	if len(first.Tags) != 1 || *first.Tags[0].Value != "web" {
		t.Fatalf("tags %v", first.Tags)
	}

	s.clk.Advance(999 * time.Millisecond)
	if got := s.describe(t, ids(out)...)[*first.InstanceId].State.Name; got != types.InstanceStateNamePending {
		t.Fatalf("before LaunchDelay: %s", got)
	}
	s.clk.Advance(time.Millisecond)
	m := s.describe(t, ids(out)...)
	for id, in := range m {
		if in.State.Name != types.InstanceStateNameRunning || *in.State.Code != 16 {
			t.Fatalf("%s after LaunchDelay: %s", id, in.State.Name)
		}
	}

	term, err := s.ec2.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{*first.InstanceId}})
	if err != nil {
		t.Fatal(err)
	}
	sc := term.TerminatingInstances[0]
	if sc.PreviousState.Name != types.InstanceStateNameRunning || sc.CurrentState.Name != types.InstanceStateNameShuttingDown {
		t.Fatalf("terminate: %s -> %s", sc.PreviousState.Name, sc.CurrentState.Name)
	}
	s.clk.Advance(time.Second)
	in := s.describe(t, *first.InstanceId)[*first.InstanceId]
	if in.State.Name != types.InstanceStateNameTerminated || *in.StateReason.Code != "Client.UserInitiatedShutdown" {
		t.Fatalf("after TerminateDelay: %s %v", in.State.Name, in.StateReason)
	}
	s.clk.Advance(time.Hour)
	_, err = s.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{*first.InstanceId}})
	wantCode(t, err, "InvalidInstanceID.NotFound")
	if _, ok := s.r.Instance(*out.Instances[1].InstanceId); !ok {
		t.Fatal("the other instance disappeared")
	}
}

func TestPrivateDNSOutsideUSEast1(t *testing.T) {
	s := newSim(t, Options{Region: "eu-west-1"})
	out := s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	dns := *out.Instances[0].PrivateDnsName
	if !strings.HasSuffix(dns, ".eu-west-1.compute.internal") || !strings.HasPrefix(dns, "ip-10-0-") {
		t.Fatalf("private DNS %s", dns)
	}
	if az := *out.Instances[0].Placement.AvailabilityZone; !strings.HasPrefix(az, "eu-west-1") {
		t.Fatalf("AZ %s", az)
	}
}

func TestPagination(t *testing.T) {
	s := newSim(t, Options{})
	for range 3 {
		s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1000)})
	}
	s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}) // 3001
	seen := map[string]bool{}
	pages := 0
	p := ec2.NewDescribeInstancesPaginator(s.ec2, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(1000)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, res := range page.Reservations {
			for _, in := range res.Instances {
				if seen[*in.InstanceId] {
					t.Fatalf("%s on two pages", *in.InstanceId)
				}
				seen[*in.InstanceId] = true
				n++
			}
		}
		if n > 1000 {
			t.Fatalf("page of %d instances", n)
		}
		pages++
	}
	if len(seen) != 3001 || pages != 4 {
		t.Fatalf("%d instances on %d pages", len(seen), pages)
	}

	// filtered pagination counts matching instances only
	pages = 0
	n := 0
	p = ec2.NewDescribeInstancesPaginator(s.ec2, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5),
		Filters: []types.Filter{{Name: aws.String("reservation-id"), Values: []string{s.r.Instances()[3000].ReservationID}}}})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, res := range page.Reservations {
			n += len(res.Instances)
		}
		pages++
	}
	if n != 1 {
		t.Fatalf("filtered pagination found %d", n)
	}

	_, err := s.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{MaxResults: aws.Int32(4)})
	wantCode(t, err, "InvalidParameterValue")
	_, err = s.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{MaxResults: aws.Int32(1001)})
	wantCode(t, err, "InvalidParameterValue")
	_, err = s.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{MaxResults: aws.Int32(10), InstanceIds: []string{s.r.Instances()[0].ID}})
	wantCode(t, err, "InvalidParameterCombination")
	_, err = s.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{MaxResults: aws.Int32(10), NextToken: aws.String("garbage!")})
	wantCode(t, err, "InvalidPaginationToken")
}

func TestDescribeInstancesIDs(t *testing.T) {
	s := newSim(t, Options{})
	out := s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	_, err := s.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0", *out.Instances[0].InstanceId}})
	wantCode(t, err, "InvalidInstanceID.NotFound")
	if !strings.Contains(err.Error(), "i-0123456789abcdef0") {
		t.Fatalf("error does not name the id: %v", err)
	}
	_, err = s.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{"i-nothex"}})
	wantCode(t, err, "InvalidInstanceID.Malformed")
	_, err = s.ec2.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
	wantCode(t, err, "InvalidInstanceID.NotFound")
}

func TestTagFilters(t *testing.T) {
	s := newSim(t, Options{})
	tag := func(k, v string) []types.TagSpecification {
		return []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String(k), Value: aws.String(v)}}}}
	}
	prod := s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(3), MaxCount: aws.Int32(3), TagSpecifications: tag("env", "prod")})
	s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(2), MaxCount: aws.Int32(2), TagSpecifications: tag("env", "dev")})
	s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), TagSpecifications: tag("team", "x")})

	count := func(fs ...types.Filter) int {
		out, err := s.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: fs})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range out.Reservations {
			n += len(r.Instances)
		}
		return n
	}
	f := func(name string, values ...string) types.Filter {
		return types.Filter{Name: aws.String(name), Values: values}
	}
	cases := []struct {
		name string
		fs   []types.Filter
		want int
	}{
		{"tag exact", []types.Filter{f("tag:env", "prod")}, 3},
		{"tag values or", []types.Filter{f("tag:env", "prod", "dev")}, 5},
		{"tag wildcard", []types.Filter{f("tag:env", "p*")}, 3},
		{"tag-key", []types.Filter{f("tag-key", "env")}, 5},
		{"filters and", []types.Filter{f("tag:env", "prod"), f("instance-id", *prod.Instances[0].InstanceId)}, 1},
		{"state", []types.Filter{f("instance-state-name", "pending")}, 6},
		{"state none", []types.Filter{f("instance-state-name", "running")}, 0},
		{"reservation", []types.Filter{f("reservation-id", *prod.ReservationId)}, 3},
		{"subnet", []types.Filter{f("subnet-id", *prod.Instances[0].SubnetId), f("tag:env", "prod")}, 3},
		{"missing key", []types.Filter{f("tag:nope", "x")}, 0},
	}
	for _, c := range cases {
		if got := count(c.fs...); got != c.want {
			t.Errorf("%s: %d instances, want %d", c.name, got, c.want)
		}
	}
	_, err := s.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: []types.Filter{f("bogus", "x")}})
	wantCode(t, err, "InvalidParameterValue")

	// CreateTags then filter on the new tag
	if _, err := s.ec2.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: ids(prod)[:2], Tags: []types.Tag{{Key: aws.String("batch"), Value: aws.String("1")}}}); err != nil {
		t.Fatal(err)
	}
	if got := count(f("tag:batch", "1")); got != 2 {
		t.Fatalf("after CreateTags: %d", got)
	}
	_, err = s.ec2.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{"i-0123456789abcdef0"}, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}})
	wantCode(t, err, "InvalidInstanceID.NotFound")
}

func TestIdempotency(t *testing.T) {
	s := newSim(t, Options{})
	in := func(n int32) *ec2.RunInstancesInput {
		return &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(n), ClientToken: aws.String("req-1"), ImageId: aws.String(s.ami), InstanceType: types.InstanceTypeT3Small}
	}
	a := s.run(t, in(2))
	b := s.run(t, in(2))
	if *a.ReservationId != *b.ReservationId || len(b.Instances) != 2 || *a.Instances[0].InstanceId != *b.Instances[0].InstanceId {
		t.Fatalf("same token launched again: %s vs %s", *a.ReservationId, *b.ReservationId)
	}
	if n := len(s.r.Instances()); n != 2 {
		t.Fatalf("%d instances exist", n)
	}
	if *a.Instances[0].ClientToken != "req-1" {
		t.Fatalf("client token %v", a.Instances[0].ClientToken)
	}
	_, err := s.ec2.RunInstances(context.Background(), in(3))
	wantCode(t, err, "IdempotentParameterMismatch")
}

func TestInsufficientCapacity(t *testing.T) {
	s := newSim(t, Options{})
	subnet := s.r.Subnets()["us-east-1a"]
	s.r.SetCapacity("c5.large", "us-east-1a", 3)
	out := s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(5), InstanceType: types.InstanceTypeC5Large, SubnetId: aws.String(subnet)})
	if len(out.Instances) != 3 {
		t.Fatalf("launched %d, want 3", len(out.Instances))
	}
	_, err := s.ec2.RunInstances(context.Background(), &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ImageId: aws.String(s.ami), InstanceType: types.InstanceTypeC5Large, SubnetId: aws.String(subnet)})
	wantCode(t, err, "InsufficientInstanceCapacity")
	if !strings.Contains(err.Error(), "us-east-1b") {
		t.Fatalf("ICE does not suggest other AZs: %v", err)
	}
	// other pools are unaffected
	s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), InstanceType: types.InstanceTypeC5Large, SubnetId: aws.String(s.r.Subnets()["us-east-1b"])})
	// terminated instances give capacity back
	if _, err := s.ec2.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: ids(out)[:1]}); err != nil {
		t.Fatal(err)
	}
	s.clk.Advance(time.Second)
	s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), InstanceType: types.InstanceTypeC5Large, SubnetId: aws.String(subnet)})
}

func TestValidationErrors(t *testing.T) {
	s := newSim(t, Options{})
	base := func() *ec2.RunInstancesInput {
		return &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ImageId: aws.String(s.ami), InstanceType: types.InstanceTypeT3Micro}
	}
	cases := []struct {
		name string
		mod  func(*ec2.RunInstancesInput)
		code string
	}{
		{"unknown AMI", func(in *ec2.RunInstancesInput) { in.ImageId = aws.String("ami-0123456789abcdef0") }, "InvalidAMIID.NotFound"},
		{"malformed AMI", func(in *ec2.RunInstancesInput) { in.ImageId = aws.String("ami-xyz") }, "InvalidAMIID.Malformed"},
		{"unknown subnet", func(in *ec2.RunInstancesInput) { in.SubnetId = aws.String("subnet-0123456789abcdef0") }, "InvalidSubnetID.NotFound"},
		{"unknown type", func(in *ec2.RunInstancesInput) { in.InstanceType = "x9.huge" }, "InvalidParameterValue"},
		{"unknown SG", func(in *ec2.RunInstancesInput) { in.SecurityGroupIds = []string{"sg-0123456789abcdef0"} }, "InvalidGroup.NotFound"},
		{"arch mismatch", func(in *ec2.RunInstancesInput) { in.InstanceType = types.InstanceTypeC6gLarge }, "InvalidParameterValue"},
		{"min > max", func(in *ec2.RunInstancesInput) { in.MinCount = aws.Int32(3) }, "InvalidParameterValue"},
		{"unknown LT", func(in *ec2.RunInstancesInput) {
			in.LaunchTemplate = &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String("lt-0123456789abcdef0")}
		}, "InvalidLaunchTemplateId.NotFound"},
		{"reserved tag", func(in *ec2.RunInstancesInput) {
			in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("y")}}}}
		}, "InvalidParameterValue"},
	}
	for _, c := range cases {
		in := base()
		c.mod(in)
		_, err := s.ec2.RunInstances(context.Background(), in)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if got := codeOf(t, err); got != c.code {
			t.Errorf("%s: %s, want %s (%v)", c.name, got, c.code, err)
		}
	}
	if n := len(s.r.Instances()); n != 0 {
		t.Fatalf("failed calls launched %d instances", n)
	}
	// arm64 AMI on an arm64 type works
	s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ImageId: aws.String(s.amiArm), InstanceType: types.InstanceTypeC6gLarge})
}

// post sends a raw form to the simulator, for what the SDK would refuse to
// send.
func post(t *testing.T, endpoint string, form url.Values, header http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRawProtocolErrors(t *testing.T) {
	s := newSim(t, Options{})
	status, body := post(t, s.endpoint, url.Values{"Action": {"FlyToTheMoon"}, "Version": {"2016-11-15"}}, nil)
	if status != 400 || !strings.Contains(body, "<Code>InvalidAction</Code>") || !strings.Contains(body, "The action FlyToTheMoon is not valid for this web service.") || !strings.Contains(body, "<RequestID>") {
		t.Fatalf("EC2 unknown action: %d %s", status, body)
	}
	status, body = post(t, s.endpoint, url.Values{"Action": {"FlyToTheMoon"}, "Version": {"2011-01-01"}}, nil)
	if status != 400 || !strings.Contains(body, "<ErrorResponse") || !strings.Contains(body, "<Type>Sender</Type><Code>InvalidAction</Code>") || !strings.Contains(body, "FlyToTheMoon") {
		t.Fatalf("Auto Scaling unknown action: %d %s", status, body)
	}
	req, _ := http.NewRequest("POST", s.endpoint, strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "AmazonSSM.FlyToTheMoon")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), `"__type":"UnknownOperationException"`) {
		t.Fatalf("SSM unknown action: %d %s", resp.StatusCode, b)
	}
	status, body = post(t, s.endpoint, url.Values{"Action": {"RunInstances"}, "Version": {"2016-11-15"}, "MaxCount": {"1"}, "ImageId": {s.ami}}, nil)
	if status != 400 || !strings.Contains(body, "<Code>MissingParameter</Code>") || !strings.Contains(body, "MinCount") {
		t.Fatalf("missing MinCount: %d %s", status, body)
	}
	status, body = post(t, s.endpoint, url.Values{"Action": {"RunInstances"}, "Version": {"2016-11-15"}, "MinCount": {"one"}, "MaxCount": {"1"}, "ImageId": {s.ami}}, nil)
	if status != 400 || !strings.Contains(body, "<Code>InvalidParameterValue</Code>") {
		t.Fatalf("bad MinCount: %d %s", status, body)
	}
	status, body = post(t, s.endpoint, url.Values{"Action": {"DescribeInstances"}, "Version": {"2099-01-01"}}, nil)
	if status != 400 || !strings.Contains(body, "NoSuchVersion") {
		t.Fatalf("bad version: %d %s", status, body)
	}
	if c := s.r.Calls(); c["FlyToTheMoon"] != 3 || s.r.Errors()["FlyToTheMoon"] != 3 {
		t.Fatalf("accounting: calls %v errors %v", c, s.r.Errors())
	}
}

func TestUnknownActionThroughSDK(t *testing.T) {
	// An EC2 call the SDK knows but the simulator does not serve.
	s := newSim(t, Options{})
	_, err := s.ec2.DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{})
	wantCode(t, err, "InvalidAction")
	if !strings.Contains(err.Error(), "DescribeVpcs") {
		t.Fatalf("error does not name the action: %v", err)
	}
}
