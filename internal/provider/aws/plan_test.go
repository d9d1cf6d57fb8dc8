package awsprov

import (
	"testing"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

func TestPlannerPools(t *testing.T) {
	tpl := template.Template{TemplateID: "t", VMTypes: template.Weights{{Type: "c5.large", Weight: 1}, {Type: "m5.large", Weight: 2}},
		SubnetIDs: []string{"subnet-a", "subnet-b"}}
	var p Planner
	if n := p.Alternatives(&tpl); n != 4 {
		t.Fatalf("alternatives %d, want 4", n)
	}
	spec := provider.LaunchSpec{ClientToken: "req-1", Template: tpl}
	for i, want := range []struct{ name, token string }{
		{"c5.large in subnet-a", "req-1"}, {"c5.large in subnet-b", "req-1-p1"}, {"m5.large in subnet-a", "req-1-p2"}, {"m5.large in subnet-b", "req-1-p3"},
	} {
		s, name := p.Alternative(spec, i)
		if name != want.name || s.ClientToken != want.token || len(s.Template.VMTypes) != 1 {
			t.Errorf("pool %d: %q %q %+v, want %q %q", i, name, s.ClientToken, s.Template.VMTypes, want.name, want.token)
		}
	}
	fleet := template.Template{TemplateID: "f", VMType: "c5.large", PriceType: template.PriceHeterogeneous, ProviderAPI: template.APISpotFleet}
	if n := p.Alternatives(&fleet); n != 0 {
		t.Fatalf("a fleet spreads over its pools itself: %d alternatives", n)
	}
	fb, ok := p.Fallback(provider.LaunchSpec{ClientToken: "req-2", Template: fleet})
	if !ok || fb.ClientToken != "req-2-od" || fb.Template.API() != template.APIRunInstances || fb.Template.Price() != template.PriceOnDemand {
		t.Fatalf("fallback %v %+v", ok, fb)
	}
	if _, ok := p.Fallback(provider.LaunchSpec{Template: tpl}); ok {
		t.Fatal("an on-demand template has no fallback")
	}
}

func TestHandleFromTags(t *testing.T) {
	for tags, want := range map[[2]string]string{
		{awsFleetTag, "fleet-1"}: "fleet-1", {awsSpotFleetTag, "sfr-1"}: "sfr-1", {awsGroupTag, "g"}: "asg:g", {"team", "x"}: "",
	} {
		if got := handleFromTags(map[string]string{tags[0]: tags[1]}); got != want {
			t.Errorf("%v: %q, want %q", tags, got, want)
		}
	}
}
