package awsprov

import (
	"context"
	"slices"
	"sort"
	"testing"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// A fleet taken over from IBM's plugin, against the simulated region:
// FleetInstances lists every instance the fleet counts (not only what a
// file recorded), Abandon ends the fleet and terminates none of them; an
// unknown fleet lists nothing.
func TestSimForeignFleetInstancesAndAbandon(t *testing.T) {
	for _, api := range []string{template.APISpotFleet, template.APIEC2Fleet} {
		t.Run(api, func(t *testing.T) {
			ctx := context.Background()
			p, r, clk := newSim(t, Settings{RetryAttempts: 0})
			var subnets []string
			for _, s := range r.Subnets() {
				subnets = append(subnets, s)
			}
			sort.Strings(subnets)
			tpl := template.Template{TemplateID: "tpl", ImageID: al2023, SubnetIDs: subnets[:1], ProviderAPI: api, FleetType: template.FleetMaintain,
				PriceType: template.PriceOnDemand, FleetRole: "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role",
				VMTypes: template.Weights{{Type: "c5.large", Weight: 1}}}
			req := "req-ibm-1"
			res, err := p.Launch(ctx, provider.LaunchSpec{RequestID: req, ClientToken: req + "-t", Template: tpl, Units: 3, Tags: simTags("cluster-1", req)})
			if err != nil {
				t.Fatal(err)
			}
			settle(r, clk, 3)
			var want []string
			for _, in := range live(t, p, "cluster-1", req) {
				want = append(want, in.ID)
			}
			got, err := p.FleetInstances(ctx, res.Handle)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if len(want) != 3 || !slices.Equal(got, want) {
				t.Fatalf("FleetInstances = %v, want %v", got, want)
			}
			if err := p.Abandon(ctx, res.Handle); err != nil {
				t.Fatal(err)
			}
			settle(r, clk, 3)
			if n := len(live(t, p, "cluster-1", req)); n != 3 {
				t.Errorf("%d instances live after Abandon, want 3 (none terminated)", n)
			}
			st, err := p.Poll(ctx, []string{res.Handle})
			if err != nil || !(st[res.Handle].Gone || st[res.Handle].Closed) {
				t.Errorf("fleet after Abandon: %+v %v", st, err)
			}
			if err := p.Abandon(ctx, res.Handle); err != nil {
				t.Errorf("Abandon again: %v", err)
			}
			unknown := "sfr-00000000-0000-4000-8000-000000000000"
			if api == template.APIEC2Fleet {
				unknown = "fleet-00000000-0000-4000-8000-000000000000"
			}
			if ids, err := p.FleetInstances(ctx, unknown); err != nil || len(ids) != 0 {
				t.Errorf("unknown fleet: %v %v", ids, err)
			}
		})
	}
}
