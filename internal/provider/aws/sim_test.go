package awsprov

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/clock"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// Integration tests: the provider through the real SDK against the
// simulated region on loopback.

const al2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"

func newSim(t *testing.T, s Settings) (*Provider, *awssim.Region, *clock.Fake) {
	t.Helper()
	return newSimWith(t, s, awssim.Options{Consistency: awssim.Immediate})
}

// newSimWith is newSim with the region's options (Clock and the delays
// are set here): with Consistency 0 the region is eventually consistent,
// as AWS.
func newSimWith(t *testing.T, s Settings, o awssim.Options) (*Provider, *awssim.Region, *clock.Fake) {
	t.Helper()
	isolateAWSEnv(t)
	clk := clock.NewFake(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	o.Clock = clk
	if o.LaunchDelay == 0 {
		o.LaunchDelay = awssim.NoDelay
	}
	if o.TerminateDelay == 0 {
		o.TerminateDelay = awssim.NoDelay
	}
	r := awssim.New(o)
	endpoint, stop := r.Start()
	t.Cleanup(stop)
	s.Region, s.EndpointURL, s.Clock, s.backoff = "us-east-1", endpoint, clk, noBackoff{}
	s.Credentials = credentials.NewStaticCredentialsProvider("AKIASIMULATED000000", "simulated-secret-key", "")
	p, err := New(context.Background(), s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return p, r, clk
}

func simTags(owner, req string) map[string]string {
	return map[string]string{provider.TagManagedBy: owner, provider.TagRequestID: req, provider.TagTemplateID: "tpl", "team": "hpc"}
}

func ids(in []provider.Instance) []string {
	out := make([]string, len(in))
	for i, x := range in {
		out[i] = x.ID
	}
	sort.Strings(out)
	return out
}

func TestSimLaunchListTerminate(t *testing.T) {
	ctx := context.Background()
	p, r, clk := newSim(t, Settings{RetryAttempts: 2, RateLimit: true})
	var subnet string
	for _, s := range r.Subnets() {
		subnet = s
		break
	}
	tpl := template.Template{
		TemplateID: "tpl", ImageID: al2023, VMType: "c5.large", SubnetIDs: []string{subnet},
		RootVolumeSize: 30, VolumeType: "gp3", UserDataScript: "testdata/userdata/echo_hi.sh",
	}
	spec := provider.LaunchSpec{RequestID: "req-1", ClientToken: "req-1-t", Template: tpl, Units: 3, Tags: simTags("cluster-1", "req-1")}
	res, err := p.Launch(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Instances) != 3 || len(res.Errors) != 0 {
		t.Fatalf("launch = %+v", res)
	}
	for _, in := range res.Instances {
		info, ok := r.Instance(in.ID)
		if !ok || info.ImageID != r.ImageID(al2023) || info.SubnetID != subnet || info.Tags[provider.TagRequestID] != "req-1" || info.InstanceType != "c5.large" {
			t.Errorf("instance in the region: %+v", info)
		}
	}
	// The same ClientToken returns the same instances and launches nothing.
	again, err := p.Launch(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(again.Instances), ids(res.Instances)) || len(r.Instances()) != 3 {
		t.Errorf("relaunch with the same token gave %v (region has %d instances)", ids(again.Instances), len(r.Instances()))
	}
	// Someone else's instance is not listed.
	if _, err := p.Launch(ctx, provider.LaunchSpec{Template: tpl, Units: 1, Tags: simTags("other", "req-9")}); err != nil {
		t.Fatal(err)
	}

	clk.Advance(2 * time.Second)
	got, err := p.List(ctx, "cluster-1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), ids(res.Instances)) {
		t.Fatalf("List = %v, want %v", ids(got), ids(res.Instances))
	}
	for _, in := range got {
		if in.State != provider.StateRunning || in.PrivateIP == "" || in.LaunchTime.IsZero() || in.Tags["team"] != "hpc" {
			t.Errorf("listed %+v", in)
		}
	}

	// Terminating with an unknown id terminates the others, and says so.
	if err := p.Terminate(ctx, append(ids(res.Instances), "i-0123456789abcdef0")); provider.KindOf(err) != provider.NotFound {
		t.Fatalf("Terminate with an unknown id: %v, want NotFound", err)
	}
	clk.Advance(2 * time.Second)
	got, err = p.List(ctx, "cluster-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range got {
		if in.State != provider.StateTerminated {
			t.Errorf("%s is %s after Terminate", in.ID, in.State)
		}
	}
	if len(got) != 3 {
		t.Errorf("terminated instances must stay listed: got %d", len(got))
	}

	info, err := p.InstanceType(ctx, "c5.large")
	if err != nil || info != (provider.InstanceTypeInfo{Name: "c5.large", VCPUs: 2, Cores: 1, MemoryMiB: 4096, Arch: "x86_64"}) {
		t.Errorf("InstanceType = %+v, %v", info, err)
	}
	if h := p.Health(); h.Calls["RunInstances"] != 3 || h.Calls["GetParameter"] != 1 || h.Calls["DescribeImages"] != 1 {
		t.Errorf("calls = %v: want 3 RunInstances, the SSM parameter and the image described once", h.Calls)
	}
}

func TestSimUnknownAMIIsFatal(t *testing.T) {
	p, r, _ := newSim(t, Settings{RetryAttempts: 2})
	_, err := p.Launch(context.Background(), provider.LaunchSpec{
		Template: template.Template{TemplateID: "bad", ImageID: "ami-0000000000000dead", VMType: "c5.large"}, Units: 1,
	})
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Kind != provider.Fatal || pe.Code != "InvalidAMIID.NotFound" || pe.Message == "" {
		t.Fatalf("err = %v, want a Fatal InvalidAMIID.NotFound", err)
	}
	if n := r.Calls()["RunInstances"]; n != 1 {
		t.Errorf("RunInstances called %d times: a validation error must not be retried", n)
	}
}

func TestSimThrottlingIsClassified(t *testing.T) {
	p, r, _ := newSim(t, Settings{RetryAttempts: 2})
	r.SetFaults(awssim.Faults{ThrottleRate: 1})
	_, err := p.List(context.Background(), "cluster-1")
	if provider.KindOf(err) != provider.Throttled {
		t.Fatalf("err = %v, want Throttled", err)
	}
	if n := r.Calls()["DescribeInstances"]; n != 3 {
		t.Errorf("%d attempts, want 3 (RetryAttempts 2)", n)
	}
	if h := p.Health(); !h.Throttled || h.Throttles["DescribeInstances"] != 3 {
		t.Errorf("health = %+v", h)
	}
	r.SetFaults(awssim.Faults{})
	if _, err := p.List(context.Background(), "cluster-1"); err != nil {
		t.Fatal(err)
	}
	if h := p.Health(); h.Throttled {
		t.Error("still throttled after a success")
	}
}

func TestSimSpotAndPagination(t *testing.T) {
	ctx := context.Background()
	p, r, _ := newSim(t, Settings{})
	res, err := p.Launch(ctx, provider.LaunchSpec{
		Template: template.Template{TemplateID: "spot", ImageID: al2023, VMType: "m5.large", PriceType: template.PriceSpot,
			ProviderAPI: template.APIRunInstances, MaxSpotPrice: 1},
		Units: 2, Tags: simTags("cluster-1", "req-spot"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var sirs []string
	for _, in := range res.Instances {
		if !in.Spot || in.SpotRequestID == "" {
			t.Fatalf("spot launch gave %+v", in)
		}
		sirs = append(sirs, in.SpotRequestID)
	}
	srs, err := p.SpotRequests(ctx, append(sirs, "sir-00000000"))
	if err != nil {
		t.Fatal(err)
	}
	if len(srs) != 2 || srs[0].State != "active" || srs[0].InstanceID == "" {
		t.Errorf("SpotRequests = %+v", srs)
	}

	for range 2 {
		if _, err := p.Launch(ctx, provider.LaunchSpec{
			Template: template.Template{TemplateID: "many", ImageID: al2023, VMType: "c5.large"},
			Units:    600, Tags: simTags("cluster-1", "req-many"),
		}); err != nil {
			t.Fatal(err)
		}
	}
	r.ResetCounts()
	got, err := p.List(ctx, "cluster-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1202 {
		t.Errorf("List = %d instances, want 1202", len(got))
	}
	if n := r.Calls()["DescribeInstances"]; n != 2 {
		t.Errorf("%d DescribeInstances calls for 1202 instances, want 2", n)
	}
}

func TestSimCapacity(t *testing.T) {
	ctx := context.Background()
	p, r, _ := newSim(t, Settings{RetryAttempts: 2})
	var az, subnet string
	for a, s := range r.Subnets() {
		az, subnet = a, s
		break
	}
	tpl := template.Template{TemplateID: "ice", ImageID: al2023, VMType: "c5.large", SubnetIDs: []string{subnet}}
	r.SetCapacity("c5.large", az, 2)
	res, err := p.Launch(ctx, provider.LaunchSpec{Template: tpl, Units: 5, Tags: simTags("cluster-1", "req-ice")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Instances) != 2 || len(res.Errors) != 1 {
		t.Errorf("partial capacity: %+v, want 2 instances and one error", res)
	}
	r.ResetCounts()
	_, err = p.Launch(ctx, provider.LaunchSpec{Template: tpl, Units: 1, Tags: simTags("cluster-1", "req-ice2")})
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Kind != provider.Capacity || pe.Code != "InsufficientInstanceCapacity" {
		t.Fatalf("err = %v, want Capacity InsufficientInstanceCapacity", err)
	}
	if n := r.Calls()["RunInstances"]; n != 1 {
		t.Errorf("RunInstances called %d times: capacity errors are not retried by the SDK", n)
	}
}

func TestSimNetworkFaults(t *testing.T) {
	p, r, _ := newSim(t, Settings{RetryAttempts: 1})
	for _, f := range []awssim.Faults{{DropRate: 1}, {ErrorRate: 1}} {
		r.SetFaults(f)
		r.ResetCounts()
		_, err := p.List(context.Background(), "cluster-1")
		if provider.KindOf(err) != provider.Transient {
			t.Errorf("faults %+v: err = %v, want Transient", f, err)
		}
		if n := r.Calls()["DescribeInstances"]; n != 2 {
			t.Errorf("faults %+v: %d attempts, want 2", f, n)
		}
		// A dropped connection is AWS unreachable; a 5xx is AWS
		// answering, with a server error.
		if h := p.Health(); h.Unreachable != (f.DropRate > 0) || h.Failing != (f.ErrorRate > 0) {
			t.Errorf("faults %+v: health %+v", f, h)
		}
	}
}

func TestSimDescribeInFlight(t *testing.T) {
	ctx := context.Background()
	p, _, _ := newSim(t, Settings{})
	tpl := template.Template{TemplateID: "tpl", ImageID: al2023, VMType: "c5.large"}
	var ids []string
	for _, req := range []string{"req-a", "req-b"} {
		res, err := p.Launch(ctx, provider.LaunchSpec{RequestID: req, ClientToken: req, Template: tpl, Units: 3, Tags: simTags("cluster-1", req)})
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range res.Instances {
			ids = append(ids, in.ID)
		}
	}
	// Another cluster's instance is never described, even by id.
	other, err := p.Launch(ctx, provider.LaunchSpec{RequestID: "req-x", ClientToken: "req-x", Template: tpl, Units: 1, Tags: simTags("cluster-2", "req-x")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Describe(ctx, "cluster-1", []string{ids[0], "i-0000000000000dead", other.Instances[0].ID}, []string{"req-b"})
	if err != nil {
		t.Fatalf("an unknown id must not fail the call: %v", err)
	}
	want := map[string]bool{ids[0]: true, ids[3]: true, ids[4]: true, ids[5]: true}
	if len(got) != len(want) {
		t.Fatalf("described %d instances, want %d: %+v", len(got), len(want), got)
	}
	for _, in := range got {
		if !want[in.ID] {
			t.Fatalf("unexpected %s", in.ID)
		}
	}
	many := make([]string, 450) // three filter batches
	for i := range many {
		many[i] = fmt.Sprintf("i-%017x", i+1)
	}
	many[449] = ids[1]
	got, err = p.Describe(ctx, "cluster-1", many, nil)
	if err != nil || len(got) != 1 || got[0].ID != ids[1] {
		t.Fatalf("batched describe = %+v, %v", got, err)
	}
}

// RunInstances throttled every time while describes pass: the provider is
// still throttling (one action's success does not hide another's).
func TestSimThrottledActionStaysThrottled(t *testing.T) {
	p, r, _ := newSim(t, Settings{RetryAttempts: 1})
	r.SetFaults(awssim.Faults{ThrottleRate: 1, Actions: []string{"RunInstances"}})
	tpl := template.Template{TemplateID: "tpl", ImageID: al2023, VMType: "c5.large"}
	if _, err := p.Launch(context.Background(), provider.LaunchSpec{RequestID: "req-1", ClientToken: "req-1", Template: tpl, Units: 1, Tags: simTags("c", "req-1")}); provider.KindOf(err) != provider.Throttled {
		t.Fatalf("launch err = %v, want throttled", err)
	}
	if _, err := p.List(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	h := p.Health()
	if !h.Throttled || !slices.Equal(h.ThrottledActions, []string{"RunInstances"}) || !strings.HasPrefix(h.Summary(), "AWS throttling RunInstances") {
		t.Fatalf("after a throttled launch and a good listing: throttled %v %v, summary %q", h.Throttled, h.ThrottledActions, h.Summary())
	}
	r.SetFaults(awssim.Faults{})
	if _, err := p.Launch(context.Background(), provider.LaunchSpec{RequestID: "req-1", ClientToken: "req-1", Template: tpl, Units: 1, Tags: simTags("c", "req-1")}); err != nil {
		t.Fatal(err)
	}
	if h := p.Health(); h.Throttled || h.Summary() != "ok" {
		t.Fatalf("after a good launch: %+v", h)
	}
}

// No credentials at all: the SDK never sends the call, and the health
// says so instead of "ok, 0 calls, 0 errors".
func TestSimNoCredentialsIsUnhealthy(t *testing.T) {
	p, _, _ := newSim(t, Settings{})
	p2, err := New(context.Background(), Settings{Region: "us-east-1", EndpointURL: aws.ToString(p.cfg.BaseEndpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, errors.New("no EC2 IMDS role found")
		})}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p2.List(context.Background(), "c")
	if err == nil {
		t.Fatal("listing without credentials succeeded")
	}
	h := p2.Health()
	if !h.Credentials || h.Errors["DescribeInstances"] != 1 || !strings.HasPrefix(h.Summary(), "no valid AWS credentials") {
		t.Fatalf("health without credentials: %+v, summary %q (err %v)", h, h.Summary(), err)
	}
}

// ohfp check's rows: a good template has its AMI, subnets, group and
// types described ok, then a dry run answered DryRunOperation (ok) per
// type and subnet pair, and launches nothing; an unknown subnet gives its
// error; credentials without ec2:RunInstances give UnauthorizedOperation,
// whatever the parameters.
func TestSimCheckDryRun(t *testing.T) {
	p, r, _ := newSim(t, Settings{})
	var subnets []string
	for _, s := range r.Subnets() {
		subnets = append(subnets, s)
	}
	sort.Strings(subnets)
	good := template.Template{TemplateID: "good", ImageID: al2023, VMTypes: template.Weights{{Type: "c5.large", Weight: 1}, {Type: "m5.large", Weight: 1}},
		SubnetIDs: subnets[:2], SecurityGroupIDs: []string{r.DefaultSecurityGroup()}}
	res := p.Check(context.Background(), good)
	want := []string{"image " + al2023, "subnet " + subnets[0], "subnet " + subnets[1], "security group " + r.DefaultSecurityGroup(),
		"instance type c5.large", "instance type m5.large",
		"RunInstances dry run: c5.large in " + subnets[0], "RunInstances dry run: c5.large in " + subnets[1],
		"RunInstances dry run: m5.large in " + subnets[0], "RunInstances dry run: m5.large in " + subnets[1]}
	if len(res) != len(want) {
		t.Fatalf("check of 2 types x 2 subnets: %+v", res)
	}
	for i, c := range res {
		if !c.OK || c.What != want[i] {
			t.Errorf("good template, row %d: %+v, want %q ok", i, c, want[i])
		}
	}
	if !strings.HasPrefix(res[0].Result, "ok: ami-") || !strings.Contains(res[4].Result, "offered in us-east-1") {
		t.Errorf("good template: %+v", res)
	}
	if n := len(r.Instances()); n != 0 {
		t.Fatalf("a dry run launched %d instances", n)
	}
	bad := template.Template{TemplateID: "bad", ImageID: al2023, VMType: "c5.large", SubnetIDs: []string{"subnet-0000000000000dead"}}
	res = p.Check(context.Background(), bad)
	if len(res) != 4 || res[1].OK || !strings.Contains(res[1].Result, "InvalidSubnetID.NotFound") || !res[2].OK || !strings.Contains(res[2].Result, "offered in region us-east-1") ||
		res[3].OK || !strings.Contains(res[3].Result, "InvalidSubnetID.NotFound") {
		t.Fatalf("unknown subnet: %+v", res)
	}
	r.SetFaults(awssim.Faults{Denied: []string{"RunInstances"}})
	res = p.Check(context.Background(), good)
	if c := res[6]; c.OK || !strings.Contains(c.Result, "not permitted") || !strings.Contains(c.Result, "You are not authorized") {
		t.Fatalf("denied: %+v", res)
	}
}

// Every problem of a template shows in one run, each on its own row: an
// AMI that does not exist (never "ok"), an unknown subnet next to a good
// one, an unknown security group, an instance type the region does not
// offer next to a good one; the dry runs, which would each stop at the
// first of these, are tried once (the permissions) and the rest wait.
func TestSimCheckEveryProblem(t *testing.T) {
	p, r, _ := newSim(t, Settings{})
	var subnets []string
	for _, s := range r.Subnets() {
		subnets = append(subnets, s)
	}
	sort.Strings(subnets)
	tpl := template.Template{TemplateID: "bad", ImageID: "ami-0000000000000dead",
		VMTypes:   template.Weights{{Type: "c5.large", Weight: 1}, {Type: "c5.bogus", Weight: 1}},
		SubnetIDs: []string{subnets[0], "subnet-0000000000000dead"}, SecurityGroupIDs: []string{r.DefaultSecurityGroup(), "sg-0000000000000dead"}}
	res := p.Check(context.Background(), tpl)
	type want struct {
		what, result string
		ok           bool
	}
	for i, w := range []want{
		{"image ami-0000000000000dead", "InvalidAMIID.NotFound", false},
		{"subnet " + subnets[0], "ok: in us-east-1", true},
		{"subnet subnet-0000000000000dead", "InvalidSubnetID.NotFound", false},
		{"security group " + r.DefaultSecurityGroup(), "ok: default", true},
		{"security group sg-0000000000000dead", "InvalidGroup.NotFound", false},
		{"instance type c5.large", "ok: offered in us-east-1", true},
		{"instance type c5.bogus", "not offered in us-east-1", false},
		{"RunInstances dry run: c5.large in " + subnets[0], "InvalidAMIID", false},
		{"3 more instance type and subnet pairs", "not tried until the failures above are fixed", true},
	} {
		if i >= len(res) || res[i].What != w.what || res[i].OK != w.ok || !strings.Contains(res[i].Result, w.result) {
			t.Fatalf("row %d: want %+v; rows:\n%+v", i, w, res)
		}
	}
	if len(res) != 9 {
		t.Fatalf("%d rows: %+v", len(res), res)
	}
	if calls := r.Calls(); calls["RunInstances"] != 1 || calls["DescribeSubnets"] != 2 || calls["DescribeSecurityGroups"] != 2 || calls["DescribeInstanceTypeOfferings"] != 1 {
		t.Fatalf("calls: %v", calls)
	}
	// Without ec2:DescribeImages the AMI is not judged ok: the row says
	// it was not checked, and fails.
	r.SetFaults(awssim.Faults{Denied: []string{"DescribeImages"}})
	tpl.ImageID = "ami-0000000000000dead"
	if c := p.Check(context.Background(), tpl)[0]; c.OK || !strings.Contains(c.Result, "not permitted: the credentials lack ec2:DescribeImages") {
		t.Fatalf("image without ec2:DescribeImages: %+v", c)
	}
}

// The credentials row: none found is one clear row (the SDK sends
// nothing); credentials AWS takes are ok, with where they came from.
func TestSimCheckCredentials(t *testing.T) {
	p, _, _ := newSim(t, Settings{})
	if c := p.CheckCredentials(context.Background()); !c.OK || c.What != "credentials" || !strings.Contains(c.Result, "access key AKIASIMULATED000000") {
		t.Fatalf("good credentials: %+v", c)
	}
	p2, err := New(context.Background(), Settings{Region: "us-east-1", EndpointURL: aws.ToString(p.cfg.BaseEndpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, errors.New("no EC2 IMDS role found")
		})}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if c := p2.CheckCredentials(context.Background()); c.OK || !strings.HasPrefix(c.Result, "no AWS credentials found") || !strings.Contains(c.Result, "no EC2 IMDS role found") {
		t.Fatalf("no credentials: %+v", c)
	}
}
