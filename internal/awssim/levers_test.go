package awssim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
)

func TestThrottlingBuckets(t *testing.T) {
	s := newSim(t, Options{})
	ctx := context.Background()
	one := func() error {
		_, err := s.ec2.RunInstances(ctx, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ImageId: aws.String(s.ami), InstanceType: types.InstanceTypeT3Micro})
		return err
	}
	// off by default
	for range 8 {
		if err := one(); err != nil {
			t.Fatal(err)
		}
	}
	s.r.SetThrottling(true)
	for i := range 5 {
		if err := one(); err != nil {
			t.Fatalf("call %d within the RunInstances burst: %v", i, err)
		}
	}
	wantCode(t, one(), "RequestLimitExceeded")
	s.clk.Advance(time.Second) // refills 2
	for range 2 {
		if err := one(); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, one(), "RequestLimitExceeded")

	// unfiltered, unpaginated DescribeInstances: 50 burst; filtered ones use
	// the non-mutating bucket (100).
	for i := range 50 {
		if _, err := s.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
			t.Fatalf("describe %d: %v", i, err)
		}
	}
	_, err := s.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	wantCode(t, err, "RequestLimitExceeded")
	if _, err := s.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(1000)}); err != nil {
		t.Fatalf("paginated describe throttled with the unfiltered ones: %v", err)
	}

	// mutating: 50 burst
	id := s.r.Instances()[0].ID
	for i := range 50 {
		if _, err := s.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); err != nil {
			t.Fatalf("CreateTags %d: %v", i, err)
		}
	}
	_, err = s.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	wantCode(t, err, "RequestLimitExceeded")

	// the instance bucket: 1000, refilling 2 per second
	s.clk.Advance(time.Hour)
	s.r.SetThrottling(false)
	s.r.SetThrottling(true)
	if _, err := s.ec2.RunInstances(ctx, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1000), ImageId: aws.String(s.ami), InstanceType: types.InstanceTypeT3Micro}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, one(), "RequestLimitExceeded")
	s.clk.Advance(time.Second)
	if err := one(); err != nil {
		t.Fatalf("instance bucket did not refill: %v", err)
	}
	if s.r.Errors()["RunInstances"] != 3 {
		t.Fatalf("errors %v", s.r.Errors())
	}

	// SSM answers ThrottlingException
	for range 40 {
		s.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64")})
	}
	_, err = s.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64")})
	wantCode(t, err, "ThrottlingException")
}

func TestRandomFaults(t *testing.T) {
	s := newSim(t, Options{})
	ctx := context.Background()
	s.r.SetFaults(Faults{ErrorRate: 1, Actions: []string{"DescribeInstances"}})
	codes := map[string]bool{}
	for range 20 {
		_, err := s.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
		var re interface{ HTTPStatusCode() int }
		if !errors.As(err, &re) || re.HTTPStatusCode() < 500 {
			t.Fatalf("want a 5xx, got %v", err)
		}
		codes[codeOf(t, err)] = true
	}
	if !codes["InternalError"] || !codes["ServiceUnavailable"] || len(codes) != 2 {
		t.Fatalf("5xx codes %v", codes)
	}
	// other actions untouched
	if _, err := s.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}); err != nil {
		t.Fatal(err)
	}
	s.r.SetFaults(Faults{ThrottleRate: 1})
	_, err := s.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	wantCode(t, err, "RequestLimitExceeded")

	s.r.SetFaults(Faults{DropRate: 1})
	_, err = s.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	var ae smithy.APIError
	if err == nil || errors.As(err, &ae) {
		t.Fatalf("dropped connection gave %v", err)
	}
	s.r.SetFaults(Faults{DropAnswerRate: 1})
	_, err = s.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	if err == nil || errors.As(err, &ae) {
		t.Fatalf("dropped answer gave %v", err)
	}
	s.r.SetFaults(Faults{})
	if _, err := s.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}); err != nil {
		t.Fatal(err)
	}
	calls, errs := s.r.Calls(), s.r.Errors()
	if calls["DescribeInstances"] != 20 || errs["DescribeInstances"] != 20 || calls["DescribeSubnets"] != 5 || errs["DescribeSubnets"] != 3 {
		t.Fatalf("calls %v errors %v", calls, errs)
	}
	byCode := s.r.ErrorCodes()
	if byCode["DescribeSubnets RequestLimitExceeded"] != 1 || byCode["DescribeSubnets "+CodeConnectionDropped] != 1 || byCode["DescribeSubnets "+CodeAnswerDropped] != 1 ||
		byCode["DescribeInstances InternalError"]+byCode["DescribeInstances ServiceUnavailable"] != 20 {
		t.Fatalf("error codes %v", byCode)
	}
	s.r.ResetCounts()
	if len(s.r.Calls()) != 0 || len(s.r.Errors()) != 0 || len(s.r.ErrorCodes()) != 0 {
		t.Fatal("ResetCounts kept counts")
	}
}

func TestSpotInterruption(t *testing.T) {
	s := newSim(t, Options{})
	ctx := context.Background()
	out := s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(2), MaxCount: aws.Int32(2),
		InstanceMarketOptions: &types.InstanceMarketOptionsRequest{MarketType: types.MarketTypeSpot}})
	in := out.Instances[0]
	if in.InstanceLifecycle != types.InstanceLifecycleTypeSpot || !strings.HasPrefix(aws.ToString(in.SpotInstanceRequestId), "sir-") {
		t.Fatalf("spot instance: lifecycle %q request %v", in.InstanceLifecycle, in.SpotInstanceRequestId)
	}
	sirOf := func(id string) types.SpotInstanceRequest {
		t.Helper()
		o, err := s.ec2.DescribeSpotInstanceRequests(ctx, &ec2.DescribeSpotInstanceRequestsInput{Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(o.SpotInstanceRequests) != 1 {
			t.Fatalf("%d requests for %s", len(o.SpotInstanceRequests), id)
		}
		return o.SpotInstanceRequests[0]
	}
	sr := sirOf(*in.InstanceId)
	if sr.State != types.SpotInstanceStateActive || *sr.Status.Code != "fulfilled" || *sr.SpotInstanceRequestId != *in.SpotInstanceRequestId {
		t.Fatalf("new request: %s %s", sr.State, *sr.Status.Code)
	}
	s.clk.Advance(time.Second)
	if err := s.r.InterruptSpot(*in.InstanceId); err != nil {
		t.Fatal(err)
	}
	noticeAt := s.clk.Now()
	// EC2 User Guide, "Spot request status": instance-terminated-no-capacity
	// at once (not marked-for-termination), the instance running.
	if sr := sirOf(*in.InstanceId); *sr.Status.Code != "instance-terminated-no-capacity" || !sr.Status.UpdateTime.Equal(noticeAt) ||
		sr.State != types.SpotInstanceStateClosed || sr.InstanceInterruptionBehavior != types.InstanceInterruptionBehaviorTerminate {
		t.Fatalf("after interruption notice: %s %s at %v", sr.State, *sr.Status.Code, sr.Status.UpdateTime)
	}
	s.clk.Advance(SpotInterruptionNotice - time.Second)
	if st := s.describe(t, *in.InstanceId)[*in.InstanceId].State.Name; st != types.InstanceStateNameRunning {
		t.Fatalf("before the two minutes: %s", st)
	}
	s.clk.Advance(time.Second)
	got := s.describe(t, *in.InstanceId)[*in.InstanceId]
	if got.State.Name != types.InstanceStateNameShuttingDown || *got.StateReason.Code != "Server.SpotInstanceTermination" {
		t.Fatalf("after the notice: %s %v", got.State.Name, got.StateReason)
	}
	sr = sirOf(*in.InstanceId)
	if sr.State != types.SpotInstanceStateClosed || *sr.Status.Code != "instance-terminated-no-capacity" || !sr.Status.UpdateTime.Equal(noticeAt) {
		t.Fatalf("request after interruption: %s %s at %v", sr.State, *sr.Status.Code, sr.Status.UpdateTime)
	}
	s.clk.Advance(time.Second)
	if st := s.describe(t, *in.InstanceId)[*in.InstanceId].State.Name; st != types.InstanceStateNameTerminated {
		t.Fatalf("finally: %s", st)
	}
	// the other one is untouched; user termination closes its request
	other := *out.Instances[1].InstanceId
	if _, err := s.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{other}}); err != nil {
		t.Fatal(err)
	}
	if c := *sirOf(other).Status.Code; c != "instance-terminated-by-user" {
		t.Fatalf("user-terminated spot request: %s", c)
	}
	if err := s.r.InterruptSpot(other); err == nil {
		t.Fatal("interrupting a terminated instance succeeded")
	}

	// a one-time Spot instance cannot be stopped
	sp := s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		InstanceMarketOptions: &types.InstanceMarketOptionsRequest{MarketType: types.MarketTypeSpot}})
	_, err := s.ec2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: ids(sp)})
	wantCode(t, err, "UnsupportedOperation")
	// a max price below the Spot price
	_, err = s.ec2.RunInstances(ctx, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ImageId: aws.String(s.ami), InstanceType: types.InstanceTypeM5Large,
		InstanceMarketOptions: &types.InstanceMarketOptionsRequest{MarketType: types.MarketTypeSpot, SpotOptions: &types.SpotMarketOptions{MaxPrice: aws.String("0.001")}}})
	wantCode(t, err, "SpotMaxPriceTooLow")
}

func TestConsoleActionsAndGoneHook(t *testing.T) {
	s := newSim(t, Options{})
	var gone []string
	s.r.mu.Lock()
	s.r.onInstanceGone = append(s.r.onInstanceGone, func(in *instance, _ time.Time) { gone = append(gone, in.id+":"+in.state) })
	s.r.mu.Unlock()
	out := s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(3), MaxCount: aws.Int32(3)})
	s.clk.Advance(time.Second)
	a, b, c := *out.Instances[0].InstanceId, *out.Instances[1].InstanceId, *out.Instances[2].InstanceId
	if err := s.r.TerminateFromConsole(a); err != nil {
		t.Fatal(err)
	}
	if err := s.r.StopFromConsole(b); err != nil {
		t.Fatal(err)
	}
	if err := s.r.TerminateFromConsole("i-0123456789abcdef0"); err == nil {
		t.Fatal("unknown id accepted")
	}
	m := s.describe(t, a, b, c)
	if m[a].State.Name != types.InstanceStateNameShuttingDown || m[b].State.Name != types.InstanceStateNameStopping || m[c].State.Name != types.InstanceStateNameRunning {
		t.Fatalf("states %s %s %s", m[a].State.Name, m[b].State.Name, m[c].State.Name)
	}
	s.clk.Advance(time.Second)
	m = s.describe(t, a, b)
	if m[a].State.Name != types.InstanceStateNameTerminated || m[b].State.Name != types.InstanceStateNameStopped {
		t.Fatalf("states %s %s", m[a].State.Name, m[b].State.Name)
	}
	want := []string{a + ":shutting-down", b + ":stopping"}
	if strings.Join(gone, ",") != strings.Join(want, ",") {
		t.Fatalf("onInstanceGone saw %v, want %v", gone, want)
	}
	// terminating a stopped instance goes straight to terminated
	term, err := s.ec2.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{b}})
	if err != nil {
		t.Fatal(err)
	}
	if term.TerminatingInstances[0].PreviousState.Name != types.InstanceStateNameStopped || term.TerminatingInstances[0].CurrentState.Name != types.InstanceStateNameTerminated {
		t.Fatalf("terminate stopped: %+v", term.TerminatingInstances[0])
	}
}

func TestTickersRunOnAdvance(t *testing.T) {
	s := newSim(t, Options{LaunchDelay: NoDelay})
	var ticks []time.Time
	s.r.mu.Lock()
	s.r.tickers = append(s.r.tickers, func(now time.Time) { ticks = append(ticks, now) })
	s.r.mu.Unlock()
	out := s.run(t, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if out.Instances[0].State.Name != types.InstanceStateNamePending {
		t.Fatalf("NoDelay launch answered %s", out.Instances[0].State.Name)
	}
	s.r.Tick()
	if st, _ := s.r.Instance(*out.Instances[0].InstanceId); st.State != "running" {
		t.Fatalf("after one tick: %s", st.State)
	}
	if len(ticks) < 2 {
		t.Fatalf("tickers ran %d times", len(ticks))
	}
}

func TestControlEndpoint(t *testing.T) {
	s := newSim(t, Options{})
	do := func(method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, s.endpoint+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if st, _ := do("POST", "/_sim/capacity", `{"instanceType":"t3.micro","availabilityZone":"us-east-1a","count":0}`); st != 200 {
		t.Fatalf("capacity: %d", st)
	}
	_, err := s.ec2.RunInstances(context.Background(), &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ImageId: aws.String(s.ami),
		InstanceType: types.InstanceTypeT3Micro, SubnetId: aws.String(s.r.Subnets()["us-east-1a"])})
	wantCode(t, err, "InsufficientInstanceCapacity")
	if st, m := do("GET", "/_sim/counts", ""); st != 200 || m["errors"].(map[string]any)["RunInstances"] != 1.0 ||
		m["errorCodes"].(map[string]any)["RunInstances InsufficientInstanceCapacity"] != 1.0 {
		t.Fatalf("counts: %d %v", st, m)
	}
	if st, _ := do("POST", "/_sim/faults", `{"throttling":true,"bogus":1}`); st != 400 {
		t.Fatalf("unknown field accepted: %d", st)
	}
	if st, _ := do("POST", "/_sim/faults", `{"errorRate":1}`); st != 200 || s.r.Faults().ErrorRate != 1 {
		t.Fatalf("faults: %d %+v", st, s.r.Faults())
	}
	if st, m := do("POST", "/_sim/terminate", `{"instanceIds":["i-0123456789abcdef0"]}`); st != 400 || !strings.Contains(m["error"].(map[string]any)["message"].(string), "i-0123456789abcdef0") {
		t.Fatalf("terminate unknown: %d %v", st, m)
	}
}
