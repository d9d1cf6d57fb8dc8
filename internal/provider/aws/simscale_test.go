package awsprov

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// noRejectedDescribes fails the test if the region refused any describe
// (awssim refuses more than 200 filter values a call, as EC2 does).
func noRejectedDescribes(t *testing.T, r *awssim.Region) {
	t.Helper()
	for action, n := range r.Errors() {
		if n > 0 && (action == "DescribeInstances" || action == "DescribeSpotInstanceRequests") {
			t.Errorf("%d %s calls refused", n, action)
		}
	}
}

// TestSimDescribeAtScale: 1,050 RunInstances instances in flight are
// described (by id and by request) and terminated without one refused
// call; before, Describe sent 200 ids plus the owner value (201).
func TestSimDescribeAtScale(t *testing.T) {
	ctx := context.Background()
	p, r, clk := newSim(t, Settings{RetryAttempts: 0})
	var subnets []string
	for _, s := range r.Subnets() {
		subnets = append(subnets, s)
	}
	sort.Strings(subnets)
	tpl := template.Template{TemplateID: "tpl", ImageID: al2023, VMType: "c5.large", SubnetIDs: subnets}
	var all []string
	var reqs []string
	for i, units := range []int{600, 450} {
		req := fmt.Sprintf("req-scale-%d", i)
		res, err := p.Launch(ctx, provider.LaunchSpec{RequestID: req, ClientToken: req + "-t", Template: tpl, Units: units, Tags: simTags("cluster-1", req)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Instances) != units {
			t.Fatalf("%s: launched %d of %d", req, len(res.Instances), units)
		}
		all = append(all, ids(res.Instances)...)
		reqs = append(reqs, req)
	}
	settle(r, clk, 1)
	got, err := p.Describe(ctx, "cluster-1", all, nil)
	if err != nil {
		t.Fatalf("Describe by 1,050 ids: %v", err)
	}
	if len(got) != len(all) {
		t.Fatalf("Describe by id found %d of %d", len(got), len(all))
	}
	got, err = p.Describe(ctx, "cluster-1", append(all[:300:300], "i-0123456789abcdef0"), reqs)
	if err != nil {
		t.Fatalf("Describe by ids and requests: %v", err)
	}
	if len(got) != len(all) {
		t.Fatalf("Describe by ids and requests found %d of %d", len(got), len(all))
	}
	if err := p.Terminate(ctx, all); err != nil {
		t.Fatalf("Terminate 1,050: %v", err)
	}
	settle(r, clk, 2)
	got, err = p.Describe(ctx, "cluster-1", all, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range got {
		if in.State != provider.StateTerminated {
			t.Fatalf("%s is %s after Terminate", in.ID, in.State)
		}
	}
	noRejectedDescribes(t, r)
}

// TestSimReleaseAtScale: releasing 1,100 instances of a maintain EC2 Fleet
// and of a maintain Spot Fleet in one call lowers the target and
// terminates them, nothing replaced, no call refused; before, the
// provider's live-units describe sent 200 ids plus 4 states (204).
func TestSimReleaseAtScale(t *testing.T) {
	for _, api := range []string{template.APIEC2Fleet, template.APISpotFleet} {
		t.Run(api, func(t *testing.T) {
			ctx := context.Background()
			p, r, clk := newSim(t, Settings{RetryAttempts: 0})
			var subnets []string
			for _, s := range r.Subnets() {
				subnets = append(subnets, s)
			}
			sort.Strings(subnets)
			tpl := template.Template{
				TemplateID: "tpl", ImageID: al2023, SubnetIDs: subnets, ProviderAPI: api, FleetType: template.FleetMaintain,
				PriceType: template.PriceSpot, FleetRole: "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role",
				VMTypes: template.Weights{{Type: "c5.large", Weight: 1}}, AllocationStrat: "capacityOptimized",
			}
			const units = 1100
			req := "req-big"
			res, err := p.Launch(ctx, provider.LaunchSpec{RequestID: req, ClientToken: req + "-t", Template: tpl, Units: units, Tags: simTags("cluster-1", req)})
			if err != nil {
				t.Fatal(err)
			}
			settle(r, clk, 4)
			got := live(t, p, "cluster-1", req)
			if len(got) != units {
				t.Fatalf("%d instances live, want %d", len(got), units)
			}
			if d, err := p.Describe(ctx, "cluster-1", ids(got), []string{req}); err != nil || len(d) != units {
				t.Fatalf("Describe: %d, %v", len(d), err)
			}
			if err := p.Release(ctx, res.Handle, ids(got), units); err != nil {
				t.Fatalf("Release of %d: %v", units, err)
			}
			settle(r, clk, 12)
			if left := live(t, p, "cluster-1", req); len(left) != 0 {
				t.Fatalf("%d instances live after Release (replaced?)", len(left))
			}
			st, err := p.Poll(ctx, []string{res.Handle})
			if err != nil {
				t.Fatal(err)
			}
			if s := st[res.Handle]; s.Target != 0 {
				t.Errorf("target after Release = %d, want 0", s.Target)
			}
			noRejectedDescribes(t, r)
		})
	}
}
