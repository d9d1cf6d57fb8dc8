package awsprov

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// TestSimSpotInterruptionNotice: EC2 interrupting a Spot instance set to
// terminate (as ohfp launches them) shows instance-terminated-no-capacity
// at once, never marked-for-termination, while the instance runs out its
// two-minute notice; SpotRequests reports it Interrupted, noticed at the
// status update time, for as long as the engine may ask. The untouched
// instance is not Interrupted.
func TestSimSpotInterruptionNotice(t *testing.T) {
	ctx := context.Background()
	p, r, clk := newSim(t, Settings{RetryAttempts: 0})
	var subnet string
	for _, s := range r.Subnets() {
		subnet = s
		break
	}
	tpl := template.Template{TemplateID: "spot", ImageID: al2023, VMType: "m5.large", PriceType: template.PriceSpot,
		ProviderAPI: template.APIRunInstances, SubnetIDs: []string{subnet}}
	res, err := p.Launch(ctx, provider.LaunchSpec{RequestID: "req-s", ClientToken: "req-s-t", Template: tpl, Units: 2, Tags: simTags("cluster-1", "req-s")})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	victim, other := res.Instances[0], res.Instances[1]
	sirs := []string{victim.SpotRequestID, other.SpotRequestID}
	if victim.SpotRequestID == "" || other.SpotRequestID == "" {
		t.Fatalf("no Spot request ids: %+v", res.Instances)
	}
	notice := clk.Now()
	if err := r.InterruptSpot(victim.ID); err != nil {
		t.Fatal(err)
	}
	check := func(when string, wantState provider.State) {
		t.Helper()
		srs, err := p.SpotRequests(ctx, sirs)
		if err != nil {
			t.Fatal(err)
		}
		if len(srs) != 2 {
			t.Fatalf("%s: %d requests", when, len(srs))
		}
		for _, sr := range srs {
			switch sr.InstanceID {
			case victim.ID:
				if !sr.Interrupted || sr.StatusCode != "instance-terminated-no-capacity" || !sr.StatusUpdate.Equal(notice) {
					t.Fatalf("%s: interrupted request %+v, want Interrupted, instance-terminated-no-capacity at %v", when, sr, notice)
				}
			case other.ID:
				if sr.Interrupted || sr.StatusCode != "fulfilled" {
					t.Fatalf("%s: untouched request %+v", when, sr)
				}
			}
		}
		got, err := p.Describe(ctx, "cluster-1", []string{victim.ID}, nil)
		if err != nil || len(got) != 1 || got[0].State != wantState {
			t.Fatalf("%s: victim %+v, %v; want %s", when, got, err, wantState)
		}
	}
	check("at the notice", provider.StateRunning)
	clk.Advance(awssim.SpotInterruptionNotice - time.Second)
	check("just before the two minutes", provider.StateRunning)
	clk.Advance(2 * time.Second)
	check("after the two minutes", provider.StateTerminated)
}

// TestSimSpotStopNotice: a Spot instance that stops on interruption (a
// persistent request, launched here through the SDK: ohfp launches only
// terminate-on-interruption instances) shows marked-for-stop, then
// instance-stopped-no-capacity; SpotRequests reports both Interrupted, the
// first at the notice.
func TestSimSpotStopNotice(t *testing.T) {
	ctx := context.Background()
	p, r, clk := newSim(t, Settings{RetryAttempts: 0})
	out, err := p.ec2.RunInstances(ctx, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		ImageId: aws.String(r.ImageID(al2023)), InstanceType: types.InstanceTypeM5Large,
		InstanceMarketOptions: &types.InstanceMarketOptionsRequest{MarketType: types.MarketTypeSpot, SpotOptions: &types.SpotMarketOptions{
			SpotInstanceType: types.SpotInstanceTypePersistent, InstanceInterruptionBehavior: types.InstanceInterruptionBehaviorStop}}})
	if err != nil {
		t.Fatal(err)
	}
	in := out.Instances[0]
	clk.Advance(2 * time.Second)
	notice := clk.Now()
	if err := r.InterruptSpot(*in.InstanceId); err != nil {
		t.Fatal(err)
	}
	one := func() provider.SpotRequest {
		t.Helper()
		srs, err := p.SpotRequests(ctx, []string{*in.SpotInstanceRequestId})
		if err != nil || len(srs) != 1 {
			t.Fatalf("SpotRequests: %+v, %v", srs, err)
		}
		return srs[0]
	}
	if sr := one(); !sr.Interrupted || sr.StatusCode != "marked-for-stop" || !sr.StatusUpdate.Equal(notice) {
		t.Fatalf("at the notice: %+v", sr)
	}
	clk.Advance(awssim.SpotInterruptionNotice + 2*time.Second)
	r.Tick()
	if sr := one(); !sr.Interrupted || sr.StatusCode != "instance-stopped-no-capacity" || sr.State != "disabled" {
		t.Fatalf("stopped: %+v", sr)
	}
}
