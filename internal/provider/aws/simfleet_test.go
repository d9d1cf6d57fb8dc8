package awsprov

import (
	"context"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/clock"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// Fleet providers through the real SDK against the simulated region:
// launch, instances tagged, Poll fulfilled, Release without replacement,
// Delete leaving nothing behind.

// settle advances the clock and ticks the region a few times.
func settle(r *awssim.Region, clk *clock.Fake, steps int) {
	for range steps {
		clk.Advance(5 * time.Second)
		r.Tick()
	}
}

// live returns the request's instances that are not leaving, by tag.
func live(t *testing.T, p *Provider, owner, req string) []provider.Instance {
	t.Helper()
	all, err := p.List(context.Background(), owner)
	if err != nil {
		t.Fatal(err)
	}
	var out []provider.Instance
	for _, in := range all {
		if in.Tags[provider.TagRequestID] == req && (in.State == provider.StatePending || in.State == provider.StateRunning) {
			out = append(out, in)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func TestSimFleets(t *testing.T) {
	cases := []struct {
		name, api, fleetType, price string
		percentOD                   int
		weighted                    bool // only c5.xlarge, weight 2
	}{
		{"EC2Fleet instant spot", template.APIEC2Fleet, template.FleetInstant, template.PriceSpot, 0, false},
		{"EC2Fleet request ondemand", template.APIEC2Fleet, template.FleetRequest, template.PriceOnDemand, 0, false},
		{"EC2Fleet maintain heterogeneous", template.APIEC2Fleet, template.FleetMaintain, template.PriceHeterogeneous, 50, false},
		{"SpotFleet request spot", template.APISpotFleet, "", template.PriceSpot, 0, false},
		{"SpotFleet maintain heterogeneous", template.APISpotFleet, template.FleetMaintain, template.PriceHeterogeneous, 50, false},
		{"ASG heterogeneous", template.APIASG, "", template.PriceHeterogeneous, 50, false},
		{"ASG ondemand single type", template.APIASG, "", template.PriceOnDemand, 0, false},
		{"EC2Fleet maintain weighted spot", template.APIEC2Fleet, template.FleetMaintain, template.PriceSpot, 0, true},
		{"SpotFleet maintain weighted", template.APISpotFleet, template.FleetMaintain, template.PriceSpot, 0, true},
		{"ASG weighted", template.APIASG, "", template.PriceSpot, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			p, r, clk := newSim(t, Settings{RetryAttempts: 0})
			var subnets []string
			for _, s := range r.Subnets() {
				subnets = append(subnets, s)
			}
			sort.Strings(subnets)
			tpl := template.Template{
				TemplateID: "tpl", ImageID: al2023, SubnetIDs: subnets[:2], ProviderAPI: c.api, FleetType: c.fleetType,
				PriceType: c.price, PercentOnDemand: c.percentOD, FleetRole: "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role",
				VMTypes:         template.Weights{{Type: "c5.large", Weight: 1}, {Type: "c5.xlarge", Weight: 2}},
				AllocationStrat: "capacityOptimized", RootVolumeSize: 20,
			}
			if c.weighted {
				tpl.VMTypes = template.Weights{{Type: "c5.xlarge", Weight: 2}}
			}
			if c.name == "ASG ondemand single type" {
				tpl.VMTypes, tpl.VMType, tpl.AllocationStrat = nil, "c5.large", ""
			}
			const units = 4
			req := "req-" + c.api + "-1"
			spec := provider.LaunchSpec{RequestID: req, ClientToken: req + "-t", Template: tpl, Units: units, Tags: simTags("cluster-1", req)}
			res, err := p.Launch(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			if res.Handle == "" || len(res.Errors) != 0 {
				t.Fatalf("launch = %+v", res)
			}
			if c.fleetType == template.FleetInstant && len(res.Instances) == 0 {
				t.Fatalf("instant fleet answered no instance: %+v", res)
			}
			// The same token (a retry) launches nothing more.
			again, err := p.Launch(ctx, spec)
			if err != nil || again.Handle != res.Handle {
				t.Fatalf("relaunch = %+v, %v; want handle %s", again, err, res.Handle)
			}
			settle(r, clk, 3)

			got := live(t, p, "cluster-1", req)
			have := 0
			for _, in := range got {
				info, _ := r.Instance(in.ID)
				if info.ImageID != r.ImageID(al2023) || !slices.Contains(subnets[:2], info.SubnetID) {
					t.Errorf("instance %s: %+v", in.ID, info)
				}
				have += tpl.WeightOf(in.InstanceType)
			}
			if have < units || have > units+1 {
				t.Fatalf("%d units of instances tagged %s (%d instances), want %d", have, req, len(got), units)
			}
			spot := 0
			for _, in := range got {
				if in.Spot {
					spot += tpl.WeightOf(in.InstanceType)
				}
			}
			switch wantSpot := units - onDemandUnits(&tpl, units); {
			case c.api == template.APIASG && c.price == template.PriceHeterogeneous:
				// Auto Scaling splits instances, not units: about half.
				if spot == 0 || spot == have {
					t.Errorf("%d of %d units are Spot, want a mix", spot, have)
				}
			case spot != wantSpot:
				t.Errorf("%d of %d units are Spot, want %d", spot, have, wantSpot)
			}
			st, err := p.Poll(ctx, []string{res.Handle})
			if err != nil {
				t.Fatal(err)
			}
			if s := st[res.Handle]; s.Target != units || s.Fulfilled < units || s.Gone || len(s.Errors) != 0 {
				t.Fatalf("Poll = %+v", s)
			}

			// Release one instance: it goes, nothing replaces it.
			victim := got[0]
			if c.api == template.APIASG && c.price == template.PriceHeterogeneous {
				// A mixed group keeps its on-demand share of the desired
				// capacity: releasing an on-demand instance makes it launch
				// another on-demand one (and scale in a Spot one, which
				// protection forbids). See the report on issue 13.
				for _, in := range got {
					if in.Spot {
						victim = in
						break
					}
				}
			}
			w := tpl.WeightOf(victim.InstanceType)
			if err := p.Release(ctx, res.Handle, []string{victim.ID}, w); err != nil {
				t.Fatal(err)
			}
			if err := p.Release(ctx, res.Handle, []string{victim.ID}, w); err != nil {
				t.Fatalf("second Release: %v", err)
			}
			settle(r, clk, 12)
			after := live(t, p, "cluster-1", req)
			if len(after) != len(got)-1 || slices.ContainsFunc(after, func(in provider.Instance) bool { return in.ID == victim.ID }) {
				t.Fatalf("after Release of %s: %v, before %v", victim.ID, idsOf(after), idsOf(got))
			}
			st, err = p.Poll(ctx, []string{res.Handle})
			if err != nil {
				t.Fatal(err)
			}
			if s := st[res.Handle]; c.fleetType == template.FleetMaintain || c.api == template.APIASG {
				if s.Target != units-w {
					t.Errorf("target after Release = %d, want %d", s.Target, units-w)
				}
			}

			// Delete: nothing left.
			if err := p.Delete(ctx, res.Handle); err != nil {
				t.Fatal(err)
			}
			settle(r, clk, 12)
			if left := live(t, p, "cluster-1", req); len(left) != 0 {
				t.Errorf("instances left after Delete: %v", idsOf(left))
			}
			lts, err := p.fleet.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{})
			if err != nil {
				t.Fatal(err)
			}
			for _, lt := range lts.LaunchTemplates {
				t.Errorf("launch template left: %s", aws.ToString(lt.LaunchTemplateName))
			}
			st, err = p.Poll(ctx, []string{res.Handle})
			if err != nil {
				t.Fatal(err)
			}
			if s := st[res.Handle]; !s.Closed && !(c.api == template.APIASG && s.NotFound) {
				t.Errorf("Poll after Delete = %+v, want closed (or, for a group, which Auto Scaling forgets, not found)", s)
			}
			if c.api == template.APIASG {
				g, err := p.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{})
				if err != nil {
					t.Fatal(err)
				}
				if len(g.AutoScalingGroups) != 0 || !st[res.Handle].NotFound {
					t.Errorf("groups left: %d (poll %+v)", len(g.AutoScalingGroups), st[res.Handle])
				}
			}
			if err := p.Delete(ctx, res.Handle); err != nil {
				t.Errorf("second Delete: %v", err)
			}
		})
	}
}

// TestSimHeterogeneousFallback: a Spot Fleet that cannot fill before its
// expiry closes with what came; the engine caps it and launches the
// shortfall on-demand with OnDemandSpec.
func TestSimHeterogeneousFallback(t *testing.T) {
	ctx := context.Background()
	p, r, clk := newSim(t, Settings{RetryAttempts: 0})
	azs := r.Subnets()
	var subnets []string
	for az, s := range azs {
		subnets = append(subnets, s)
		r.SetCapacity("c5.large", az, 0)
	}
	sort.Strings(subnets)
	// Room for exactly 2 Spot c5.large in one zone.
	for az, s := range azs {
		if s == subnets[0] {
			r.SetCapacity("c5.large", az, 2)
		}
	}
	tpl := template.Template{TemplateID: "het", ImageID: al2023, SubnetIDs: subnets, VMType: "c5.large",
		VMTypesOnDemand: template.Weights{{Type: "m5.large", Weight: 1}}, PriceType: template.PriceHeterogeneous,
		FleetRole: "arn:aws:iam::123456789012:role/fleet", SpotFleetExpiry: 10}
	spec := provider.LaunchSpec{RequestID: "req-h", ClientToken: "req-h-t", Template: tpl, Units: 5, Tags: simTags("cluster-1", "req-h")}
	res, err := p.Launch(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	settle(r, clk, 3)
	st, err := p.Poll(ctx, []string{res.Handle})
	if err != nil {
		t.Fatal(err)
	}
	if s := st[res.Handle]; s.Closed || s.Fulfilled != 2 || s.Target != 5 {
		t.Fatalf("before expiry: %+v", s)
	}
	clk.Advance(11 * time.Minute)
	r.Tick()
	st, err = p.Poll(ctx, []string{res.Handle})
	if err != nil {
		t.Fatal(err)
	}
	s := st[res.Handle]
	if !s.Closed || s.Fulfilled != 2 {
		t.Fatalf("after expiry: %+v", s)
	}
	if err := p.Cap(ctx, res.Handle, s.Fulfilled); err != nil {
		t.Fatal(err)
	}
	od := OnDemandSpec(spec, s.Target-s.Fulfilled, "1")
	odRes, err := p.Launch(ctx, od)
	if err != nil {
		t.Fatal(err)
	}
	if len(odRes.Instances) != 3 {
		t.Fatalf("on-demand fallback launched %+v", odRes)
	}
	for _, in := range odRes.Instances {
		if in.Spot || in.InstanceType != "m5.large" || in.Tags[provider.TagRequestID] != "req-h" {
			t.Errorf("fallback instance %+v", in)
		}
	}
	settle(r, clk, 3)
	if got := live(t, p, "cluster-1", "req-h"); len(got) != 5 {
		t.Errorf("%d instances for req-h, want 5", len(got))
	}
	if err := p.Delete(ctx, res.Handle); err != nil {
		t.Fatal(err)
	}
	if err := p.Terminate(ctx, idsOf(odRes.Instances)); err != nil {
		t.Fatal(err)
	}
	settle(r, clk, 3)
	if got := live(t, p, "cluster-1", "req-h"); len(got) != 0 {
		t.Errorf("left: %v", idsOf(got))
	}
}

// TestSimCapacityErrorsAndCap: an instant fleet reports EC2's capacity
// errors; a request fleet and a group stop launching when capped and keep
// what they have.
func TestSimCapacityErrorsAndCap(t *testing.T) {
	ctx := context.Background()
	p, r, clk := newSim(t, Settings{RetryAttempts: 0})
	var subnet string
	for az, s := range r.Subnets() {
		r.SetCapacity("c5.large", az, 0)
		if subnet == "" || s < subnet {
			subnet = s
		}
	}
	tpl := template.Template{TemplateID: "ice", ImageID: al2023, SubnetIDs: []string{subnet}, VMType: "c5.large",
		ProviderAPI: template.APIEC2Fleet, FleetType: template.FleetInstant}
	res, err := p.Launch(ctx, provider.LaunchSpec{RequestID: "req-i", Template: tpl, Units: 2, Tags: simTags("cluster-1", "req-i")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Instances) != 0 || len(res.Errors) == 0 || !slices.ContainsFunc(res.Errors, func(e string) bool {
		return len(e) > len("InsufficientInstanceCapacity") && e[:len("InsufficientInstanceCapacity")] == "InsufficientInstanceCapacity"
	}) {
		t.Errorf("instant fleet without capacity: %+v", res)
	}
	if err := p.Delete(ctx, res.Handle); err != nil {
		t.Fatal(err)
	}

	// A request fleet and a group that can only get 1 of 3: capped at 1.
	for az := range r.Subnets() {
		r.SetCapacity("c5.large", az, -1)
	}
	for _, api := range []string{template.APIEC2Fleet, template.APIASG} {
		for az := range r.Subnets() {
			r.SetCapacity("m5.large", az, 1)
		}
		req := "req-cap-" + api
		tpl := template.Template{TemplateID: "cap", ImageID: al2023, SubnetIDs: []string{subnet}, VMType: "m5.large",
			ProviderAPI: api, FleetType: template.FleetRequest}
		res, err := p.Launch(ctx, provider.LaunchSpec{RequestID: req, Template: tpl, Units: 3, Tags: simTags("cluster-1", req)})
		if err != nil {
			t.Fatal(err)
		}
		settle(r, clk, 3)
		st, err := p.Poll(ctx, []string{res.Handle})
		if err != nil {
			t.Fatal(err)
		}
		if s := st[res.Handle]; s.Fulfilled != 1 || s.Target != 3 {
			t.Fatalf("%s short of capacity: %+v", api, s)
		}
		if err := p.Cap(ctx, res.Handle, 1); err != nil {
			t.Fatal(err)
		}
		for az := range r.Subnets() {
			r.SetCapacity("m5.large", az, -1)
		}
		settle(r, clk, 6)
		st, err = p.Poll(ctx, []string{res.Handle})
		if err != nil {
			t.Fatal(err)
		}
		if s := st[res.Handle]; !s.Closed || s.Gone {
			t.Errorf("%s after Cap: %+v", api, s)
		}
		if got := live(t, p, "cluster-1", req); len(got) != 1 {
			t.Errorf("%s after Cap and capacity back: %d instances, want the 1 kept", api, len(got))
		}
		if err := p.Delete(ctx, res.Handle); err != nil {
			t.Fatal(err)
		}
		settle(r, clk, 6)
		if got := live(t, p, "cluster-1", req); len(got) != 0 {
			t.Errorf("%s after Delete: %v", api, idsOf(got))
		}
	}
}

// TestSimReclaimReleasesCapacityOnly: when the cloud takes an instance of a
// maintain fleet or group back, Release with no ids lowers the target by
// its units. (A replacement the cloud launched before that is adopted and
// terminated by the engine, which lowers the target again.)
func TestSimReclaimReleasesCapacityOnly(t *testing.T) {
	for _, api := range []string{template.APIEC2Fleet, template.APISpotFleet, template.APIASG} {
		t.Run(api, func(t *testing.T) {
			ctx := context.Background()
			p, r, clk := newSim(t, Settings{RetryAttempts: 0})
			tpl := template.Template{TemplateID: "tpl", ImageID: al2023, ProviderAPI: api, FleetType: template.FleetMaintain,
				PriceType: template.PriceSpot, FleetRole: "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role",
				VMTypes: template.Weights{{Type: "c5.large", Weight: 1}}}
			if api == template.APIASG {
				tpl.FleetType = ""
				for _, sn := range r.Subnets() {
					tpl.SubnetIDs = append(tpl.SubnetIDs, sn)
				}
			}
			req := "req-reclaim-" + api
			res, err := p.Launch(ctx, provider.LaunchSpec{RequestID: req, ClientToken: req, Template: tpl, Units: 3, Tags: simTags("cluster-1", req)})
			if err != nil {
				t.Fatal(err)
			}
			settle(r, clk, 3)
			got := live(t, p, "cluster-1", req)
			if len(got) != 3 {
				t.Fatalf("%d live instances, want 3", len(got))
			}
			if err := r.TerminateFromConsole(got[0].ID); err != nil {
				t.Fatal(err)
			}
			if api == template.APIASG {
				// The group replaces it at once; lowering the desired
				// capacity while the replacement is Pending (not yet
				// protected from scale-in) could scale in an instance HF
				// waits for: Release waits until it is InService.
				if err := p.Release(ctx, res.Handle, nil, 1); provider.KindOf(err) != provider.Transient {
					t.Fatalf("Release with a replacement Pending: %v, want Transient", err)
				}
				settle(r, clk, 2)
			}
			if err := p.Release(ctx, res.Handle, nil, 1); err != nil {
				t.Fatal(err)
			}
			settle(r, clk, 2)
			sts, err := p.Poll(ctx, []string{res.Handle})
			if err != nil {
				t.Fatal(err)
			}
			if st := sts[res.Handle]; st.Target != 2 {
				t.Fatalf("target %d after the cloud took one of 3 and ohfp released its capacity, want 2: %+v", st.Target, st)
			}
			if err := p.Delete(ctx, res.Handle); err != nil {
				t.Fatal(err)
			}
		})
	}
}
