package awsprov

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// The provider against the simulated region with AWS's behaviours of
// issue 13 on (eventual consistency is the region's default).

const window = 10 * time.Second // the consistency window these tests set

func strictSim(t *testing.T, o awssim.Options) (*Provider, *awssim.Region, func(time.Duration)) {
	t.Helper()
	p, r, clk := newSimWith(t, Settings{RetryAttempts: 0}, o)
	r.SetConsistency(awssim.Consistency{Window: window})
	return p, r, func(d time.Duration) { clk.Advance(d); r.Tick() }
}

func sortedSubnets(r *awssim.Region) []string {
	var out []string
	for _, s := range r.Subnets() {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// A TerminateInstances that answers InvalidInstanceID.NotFound for an
// instance just launched is a NotFound error naming it, never "already
// gone": the instance is running, and terminating it once it is visible
// works.
func TestStrictTerminateJustLaunched(t *testing.T) {
	ctx := context.Background()
	p, r, advance := strictSim(t, awssim.Options{})
	tpl := template.Template{TemplateID: "tpl", ImageID: al2023, VMType: "c5.large"}
	res, err := p.Launch(ctx, provider.LaunchSpec{RequestID: "req-1", ClientToken: "req-1", Template: tpl, Units: 2, Tags: simTags("c1", "req-1")})
	if err != nil || len(res.Instances) != 2 {
		t.Fatalf("launch = %+v, %v", res, err)
	}
	launched := ids(res.Instances)
	if got, err := p.Describe(ctx, "c1", launched, nil); err != nil || len(got) != 0 {
		t.Fatalf("Describe right after the launch = %v, %v: want nothing (not visible yet)", ids(got), err)
	}
	err = p.Terminate(ctx, launched)
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Kind != provider.NotFound || !slices.Equal(pe.IDs, launched) || provider.Retryable(err) {
		t.Fatalf("Terminate right after the launch = %v, want a NotFound error naming %v", err, launched)
	}
	advance(time.Second)
	for _, id := range launched {
		if in, _ := r.Instance(id); in.State != "running" {
			t.Fatalf("%s is %s after a NotFound terminate: it must still run (the engine confirms later)", id, in.State)
		}
	}
	advance(window)
	if err := p.Terminate(ctx, launched); err != nil {
		t.Fatalf("Terminate once visible: %v", err)
	}
	advance(time.Second)
	got, err := p.Describe(ctx, "c1", launched, nil)
	if err != nil || len(got) != 2 || got[0].State != provider.StateTerminated || got[1].State != provider.StateTerminated {
		t.Fatalf("after terminating the visible instances: %+v, %v", got, err)
	}
}

// A fleet, Spot Fleet request or group the cloud does not show yet is
// NotFound in Poll (not Gone, not Closed: the engine must not cap it), and
// Release of it releases nothing (a maintain fleet's target could not be
// lowered first).
func TestStrictYoungHandleNotGone(t *testing.T) {
	for _, api := range []string{template.APIEC2Fleet, template.APISpotFleet, template.APIASG} {
		t.Run(api, func(t *testing.T) {
			ctx := context.Background()
			p, r, advance := strictSim(t, awssim.Options{})
			tpl := template.Template{TemplateID: "tpl", ImageID: al2023, ProviderAPI: api, FleetType: template.FleetMaintain,
				PriceType: template.PriceSpot, FleetRole: "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role",
				VMTypes: template.Weights{{Type: "c5.large", Weight: 1}}, SubnetIDs: sortedSubnets(r)}
			if api == template.APIASG {
				tpl.FleetType = ""
			}
			req := "req-young-" + api
			res, err := p.Launch(ctx, provider.LaunchSpec{RequestID: req, ClientToken: req, Template: tpl, Units: 2, Tags: simTags("c1", req)})
			if err != nil {
				t.Fatal(err)
			}
			sts, err := p.Poll(ctx, []string{res.Handle})
			if st := sts[res.Handle]; err != nil || !st.NotFound || st.Gone || st.Closed {
				t.Fatalf("Poll right after the launch = %+v, %v: want NotFound, neither Gone nor Closed", st, err)
			}
			if api != template.APIASG {
				if err := p.Release(ctx, res.Handle, nil, 1); provider.KindOf(err) != provider.NotFound {
					t.Fatalf("Release of a fleet not visible yet = %v, want NotFound", err)
				}
			}
			for range 4 {
				advance(window / 2)
			}
			sts, err = p.Poll(ctx, []string{res.Handle})
			if st := sts[res.Handle]; err != nil || st.NotFound || st.Gone || st.Target != 2 || st.Fulfilled != 2 {
				t.Fatalf("Poll once visible = %+v, %v", st, err)
			}
		})
	}
}

// Poll does not describe a fleet, Spot Fleet request or group this
// provider created less than handleSettle ago: EC2 would only answer
// NotFound (eventual consistency). It answers NotFound itself, with no
// call and so no refused call; once handleSettle has passed it asks.
func TestStrictYoungHandleNotAsked(t *testing.T) {
	for _, api := range []string{template.APIEC2Fleet, template.APISpotFleet, template.APIASG} {
		t.Run(api, func(t *testing.T) {
			ctx := context.Background()
			p, r, advance := strictSim(t, awssim.Options{})
			r.SetConsistency(awssim.Consistency{Window: time.Second})
			tpl := template.Template{TemplateID: "tpl", ImageID: al2023, ProviderAPI: api, FleetType: template.FleetMaintain,
				PriceType: template.PriceSpot, FleetRole: "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role",
				VMTypes: template.Weights{{Type: "c5.large", Weight: 1}}, SubnetIDs: sortedSubnets(r)}
			if api == template.APIASG {
				tpl.FleetType = ""
			}
			req := "req-settle-" + api
			// RequestedAt: the request's time, the same on every attempt
			// (a Spot Fleet's ValidUntil derives from it).
			spec := provider.LaunchSpec{RequestID: req, ClientToken: req, Template: tpl, Units: 2, Tags: simTags("c1", req),
				RequestedAt: p.clock.Now()}
			res, err := p.Launch(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			advance(handleSettle / 2)
			// A retry with the token, later (its first answer lost): the same
			// handle, and it does not make the handle younger.
			if again, err := p.Launch(ctx, spec); err != nil || again.Handle != res.Handle {
				t.Fatalf("retry %s later = %q, %v; want %q", handleSettle/2, again.Handle, err, res.Handle)
			}
			r.ResetCounts()
			sts, err := p.Poll(ctx, []string{res.Handle})
			if st := sts[res.Handle]; err != nil || !st.NotFound || st.Gone || st.Closed {
				t.Fatalf("Poll of a young handle = %+v, %v: want NotFound", st, err)
			}
			for _, a := range []string{"DescribeFleets", "DescribeSpotFleetRequests", "DescribeAutoScalingGroups"} {
				if n := r.Calls()[a]; n != 0 {
					t.Fatalf("Poll of a handle created %s ago made %d %s calls, want none", handleSettle/2, n, a)
				}
			}
			advance(handleSettle / 2)
			sts, err = p.Poll(ctx, []string{res.Handle})
			if st := sts[res.Handle]; err != nil || st.NotFound || st.Target != 2 {
				t.Fatalf("Poll %s after the launch = %+v, %v: want it described", handleSettle, st, err)
			}
			if errs := r.Errors(); len(errs) != 0 {
				t.Fatalf("the region refused calls: %v", errs)
			}
		})
	}
}

// Request and maintain fleets leave FleetData.Errors empty: the provider
// reads their launch errors from the fleet's history, which shows them up
// to 30 s late; then the engine's early "out of capacity" rule has them.
func TestStrictFleetErrorsFromHistory(t *testing.T) {
	for _, api := range []string{template.APIEC2Fleet, template.APISpotFleet} {
		t.Run(api, func(t *testing.T) {
			ctx := context.Background()
			p, r, advance := strictSim(t, awssim.Options{})
			r.SetConsistency(awssim.Consistency{})
			subnets := sortedSubnets(r)
			for az := range r.Subnets() {
				r.SetCapacity("c5.large", az, 0)
			}
			tpl := template.Template{TemplateID: "tpl", ImageID: al2023, ProviderAPI: api, FleetType: template.FleetRequest,
				PriceType: template.PriceSpot, FleetRole: "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role",
				VMTypes: template.Weights{{Type: "c5.large", Weight: 1}}, SubnetIDs: subnets[:1]}
			res, err := p.Launch(ctx, provider.LaunchSpec{RequestID: "req-ice", ClientToken: "req-ice", Template: tpl, Units: 2, Tags: simTags("c1", "req-ice")})
			if err != nil {
				t.Fatal(err)
			}
			if api == template.APIEC2Fleet {
				fd, err := p.fleet.DescribeFleets(ctx, &ec2.DescribeFleetsInput{FleetIds: []string{res.Handle}})
				if err != nil || len(fd.Fleets) != 1 || len(fd.Fleets[0].Errors) != 0 {
					t.Fatalf("DescribeFleets of a request fleet short of capacity = %+v, %v: want no Errors (instant fleets only)", fd, err)
				}
			}
			advance(awssim.HistoryDelay + time.Second)
			sts, err := p.Poll(ctx, []string{res.Handle})
			if err != nil {
				t.Fatal(err)
			}
			st := sts[res.Handle]
			if st.Fulfilled != 0 || !strings.Contains(strings.Join(st.Errors, "; "), "InsufficientInstanceCapacity") {
				t.Fatalf("Poll of a fleet out of capacity = %+v: want the history's InsufficientInstanceCapacity", st)
			}
		})
	}
}

// A user's launch template naming its AMI by resolve:ssm: works for every
// API: the provider resolves it before the fleet sees it (EC2 Fleet
// request/maintain and Spot Fleet refuse aliases, as the region does).
func TestStrictAMIAliasResolved(t *testing.T) {
	ctx := context.Background()
	p, r, advance := strictSim(t, awssim.Options{Consistency: awssim.Immediate})
	r.SetConsistency(awssim.Consistency{})
	out, err := p.fleet.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("users-lt"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String("resolve:ssm:" + al2023), InstanceType: types.InstanceTypeC5Large}})
	if err != nil {
		t.Fatal(err)
	}
	userLT := aws.ToString(out.LaunchTemplate.LaunchTemplateId)
	// The region refuses the alias in a request fleet, as EC2 does.
	_, err = p.fleet.CreateFleet(ctx, &ec2.CreateFleetInput{Type: types.FleetTypeRequest,
		LaunchTemplateConfigs: []types.FleetLaunchTemplateConfigRequest{{LaunchTemplateSpecification: &types.FleetLaunchTemplateSpecificationRequest{
			LaunchTemplateId: aws.String(userLT), Version: aws.String("$Latest")}}},
		TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{TotalTargetCapacity: aws.Int32(1), DefaultTargetCapacityType: types.DefaultTargetCapacityTypeOnDemand}})
	if apiCode(err) != "InvalidParameterValue" {
		t.Fatalf("a request fleet with an aliased AMI: %v, want InvalidParameterValue", err)
	}
	for _, c := range []struct{ api, typ string }{
		{template.APIEC2Fleet, template.FleetRequest}, {template.APIEC2Fleet, template.FleetMaintain},
		{template.APISpotFleet, template.FleetRequest}, {template.APIASG, ""}, {template.APIRunInstances, ""},
	} {
		req := "req-alias-" + c.api + c.typ
		tpl := template.Template{TemplateID: "tpl", LaunchTemplateID: userLT, ProviderAPI: c.api, FleetType: c.typ,
			PriceType: template.PriceOnDemand, FleetRole: "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role",
			VMTypes: template.Weights{{Type: "c5.large", Weight: 1}}, SubnetIDs: sortedSubnets(r)}
		if c.api == template.APIRunInstances {
			tpl.VMTypes, tpl.VMType = nil, "c5.large"
		}
		if _, err := p.Launch(ctx, provider.LaunchSpec{RequestID: req, ClientToken: req, Template: tpl, Units: 1, Tags: simTags("c1", req)}); err != nil {
			t.Errorf("%s %s from a launch template with an aliased AMI: %v", c.api, c.typ, err)
			continue
		}
		for range 3 {
			advance(5 * time.Second)
		}
		got := live(t, p, "c1", req)
		if len(got) != 1 {
			t.Errorf("%s %s: %d instances, want 1", c.api, c.typ, len(got))
			continue
		}
		if in, _ := r.Instance(got[0].ID); in.ImageID != r.ImageID(al2023) {
			t.Errorf("%s %s launched AMI %s, want %s", c.api, c.typ, in.ImageID, r.ImageID(al2023))
		}
	}
}

// Auto Scaling: launches come in scaling activities after the call, and
// scale-in protection only holds from InService. Cap never lowers the
// desired capacity under what the group has (a Pending instance would be
// scaled in), and a capacity-only Release waits while an instance is
// Pending.
func TestStrictASGProtection(t *testing.T) {
	ctx := context.Background()
	p, r, advance := strictSim(t, awssim.Options{LaunchDelay: time.Minute})
	r.SetConsistency(awssim.Consistency{})
	tpl := template.Template{TemplateID: "tpl", ImageID: al2023, ProviderAPI: template.APIASG, PriceType: template.PriceOnDemand,
		VMTypes: template.Weights{{Type: "c5.large", Weight: 1}}, SubnetIDs: sortedSubnets(r)}
	res, err := p.Launch(ctx, provider.LaunchSpec{RequestID: "req-asg", ClientToken: "req-asg", Template: tpl, Units: 3, Tags: simTags("c1", "req-asg")})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(live(t, p, "c1", "req-asg")); n != 0 {
		t.Fatalf("%d instances when CreateAutoScalingGroup returned: the group launches later", n)
	}
	advance(6 * time.Second)
	got := live(t, p, "c1", "req-asg")
	if len(got) != 3 || got[0].State != provider.StatePending {
		t.Fatalf("after the scaling activity: %+v", got)
	}
	// The engine counted one machine (an old count) and caps: the two
	// Pending instances it has not counted yet must not be scaled in.
	if err := p.Cap(ctx, res.Handle, 1); err != nil {
		t.Fatal(err)
	}
	if err := p.Release(ctx, res.Handle, nil, 1); provider.KindOf(err) != provider.Transient {
		t.Fatalf("capacity-only Release with Pending instances = %v, want Transient (wait until they are protected)", err)
	}
	for range 4 {
		advance(30 * time.Second)
	}
	if n := len(live(t, p, "c1", "req-asg")); n != 3 {
		t.Fatalf("%d instances after Cap, want the 3 launched (none scaled in)", n)
	}
	sts, err := p.Poll(ctx, []string{res.Handle})
	if st := sts[res.Handle]; err != nil || st.Target != 3 || !st.Closed {
		t.Fatalf("Poll after Cap = %+v, %v: want target 3, closed", st, err)
	}
	// All InService and protected: lowering the desired capacity now
	// terminates nothing.
	if err := p.Release(ctx, res.Handle, nil, 1); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		advance(5 * time.Second)
	}
	if n := len(live(t, p, "c1", "req-asg")); n != 3 {
		t.Fatalf("%d instances after a capacity-only Release of protected instances, want 3", n)
	}
}

// Every launch-failure state reason (pending, then terminated) reaches
// provider.Instance.StateReason, as does an OS-initiated shutdown.
func TestStrictLaunchFailureReasons(t *testing.T) {
	ctx := context.Background()
	p, r, advance := strictSim(t, awssim.Options{})
	r.SetConsistency(awssim.Consistency{})
	tpl := template.Template{TemplateID: "tpl", ImageID: al2023, VMType: "c5.large"}
	for i, reason := range []string{"Server.InternalError", "Client.VolumeLimitExceeded", "Client.InternalError",
		"Client.InvalidSnapshot.NotFound", "Server.InsufficientInstanceCapacity"} {
		if err := r.SetLaunchFailures(awssim.LaunchFailures{Rate: 1, Reasons: []string{reason}}); err != nil {
			t.Fatal(err)
		}
		req := "req-fail-" + string(rune('a'+i))
		res, err := p.Launch(ctx, provider.LaunchSpec{RequestID: req, ClientToken: req, Template: tpl, Units: 1, Tags: simTags("c1", req)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Instances[0].State != provider.StatePending {
			t.Errorf("%s: launched %+v, want pending", reason, res.Instances[0])
		}
		advance(time.Second)
		got, err := p.Describe(ctx, "c1", ids(res.Instances), nil)
		if err != nil || len(got) != 1 || got[0].State != provider.StateTerminated || got[0].StateReason != reason {
			t.Errorf("%s: described as %+v, %v", reason, got, err)
		}
	}
	if err := r.SetLaunchFailures(awssim.LaunchFailures{}); err != nil {
		t.Fatal(err)
	}
	res, err := p.Launch(ctx, provider.LaunchSpec{RequestID: "req-os", ClientToken: "req-os", Template: tpl, Units: 1, Tags: simTags("c1", "req-os")})
	if err != nil {
		t.Fatal(err)
	}
	advance(time.Second)
	if err := r.ShutdownFromOS(res.Instances[0].ID); err != nil {
		t.Fatal(err)
	}
	advance(time.Second)
	got, err := p.Describe(ctx, "c1", ids(res.Instances), nil)
	if err != nil || len(got) != 1 || got[0].State != provider.StateStopped || got[0].StateReason != "Client.InstanceInitiatedShutdown" {
		t.Errorf("after a shutdown from the OS: %+v, %v", got, err)
	}
}

// A launch whose answer is lost (the call ran) is retried with the same
// client token: the retry returns the instances of the first call and
// launches nothing more.
func TestStrictDroppedAnswerIdempotent(t *testing.T) {
	ctx := context.Background()
	p, r, advance := strictSim(t, awssim.Options{})
	tpl := template.Template{TemplateID: "tpl", ImageID: al2023, VMType: "c5.large"}
	spec := provider.LaunchSpec{RequestID: "req-drop", ClientToken: "req-drop-token", Template: tpl, Units: 2, Tags: simTags("c1", "req-drop")}
	r.SetFaults(awssim.Faults{DropAnswerRate: 1, Actions: []string{"RunInstances"}})
	if _, err := p.Launch(ctx, spec); !provider.Retryable(err) {
		t.Fatalf("launch whose answer was dropped = %v, want a retryable error", err)
	}
	if n := len(r.Instances()); n != 2 {
		t.Fatalf("the dropped call launched %d instances, want 2", n)
	}
	r.SetFaults(awssim.Faults{})
	res, err := p.Launch(ctx, spec)
	if err != nil || len(res.Instances) != 2 {
		t.Fatalf("retry = %+v, %v", res, err)
	}
	advance(window)
	if n := len(r.Instances()); n != 2 {
		t.Fatalf("%d instances after the retry, want the 2 of the first call", n)
	}
}

// The Spot requests of instances just launched are looked up through the
// spot-instance-request-id filter: EC2 leaves out the ones it does not
// show yet instead of refusing the call (InvalidSpotInstanceRequestID.NotFound).
func TestStrictYoungSpotRequestsNotRefused(t *testing.T) {
	ctx := context.Background()
	p, r, advance := strictSim(t, awssim.Options{})
	tpl := template.Template{TemplateID: "tpl", ImageID: al2023, VMType: "c5.large", PriceType: template.PriceSpot, ProviderAPI: template.APIRunInstances}
	res, err := p.Launch(ctx, provider.LaunchSpec{RequestID: "req-s", ClientToken: "req-s", Template: tpl, Units: 3, Tags: simTags("c1", "req-s")})
	if err != nil || len(res.Instances) != 3 {
		t.Fatalf("launch = %+v, %v", res, err)
	}
	var sirs []string
	for _, in := range res.Instances {
		sirs = append(sirs, in.SpotRequestID)
	}
	r.ResetCounts()
	if _, err := p.SpotRequests(ctx, sirs); err != nil {
		t.Fatalf("SpotRequests right after the launch: %v", err)
	}
	advance(window)
	got, err := p.SpotRequests(ctx, sirs)
	if err != nil || len(got) != 3 {
		t.Fatalf("SpotRequests once visible = %+v, %v", got, err)
	}
	if errs := r.Errors(); len(errs) != 0 {
		t.Fatalf("the region refused calls: %v", errs)
	}
}
