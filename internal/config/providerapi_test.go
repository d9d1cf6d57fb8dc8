package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/ohfp/ohfp/internal/template"
)

// Adding a provider API to the template model (template.APIs) is all
// validation needs: a hypothetical fifth API is accepted as providerApi,
// its own rules (subnets, fleet role, fleet types and their default, the
// expiry and its default) apply to it, and the messages that list APIs
// name it. No config code names an API.
func TestAFifthProviderAPI(t *testing.T) {
	saved := template.APIs
	template.APIs = append(slices.Clip(saved), template.APISpec{
		Name: "Batch", Noun: "Batch compute environment", Article: "a", Heterogeneous: true,
		FleetTypes: []string{template.FleetMaintain}, DefaultFleetType: template.FleetMaintain,
		Target: true, ExpiryRequired: true, NeedsSubnets: true, NeedsFleetRole: true,
	})
	t.Cleanup(func() { template.APIs = saved })

	const head = "providers:\n- name: aws\n  templates:\n"
	const base = "    maxNumber: 2\n    imageId: ami-0123456789abcdef0\n    vmType: c5.large\n"
	good := head + "  - templateId: b\n" + base + "    providerApi: Batch\n    subnetId: subnet-1\n    fleetRole: r\n    priceType: heterogeneous\n"
	c, err := Parse([]byte(good), "/etc/ohfp/config.yaml")
	if err != nil {
		t.Fatalf("a template of the new API refused: %v", err)
	}
	tp := c.Providers[0].Templates[0]
	if tp.ProviderAPI != "Batch" || tp.FleetType != template.FleetMaintain || tp.SpotFleetExpiry != DefaultSpotFleetExpiry {
		t.Errorf("template %+v: want providerApi Batch, its default fleetType maintain and the default expiry", tp)
	}

	bad := head +
		"  - templateId: b\n" + base + "    providerApi: Batch\n    fleetType: instant\n"
	_, err = Parse([]byte(bad), "/etc/ohfp/config.yaml")
	if err == nil {
		t.Fatal("a Batch template without subnets nor fleet role accepted")
	}
	for _, want := range []string{
		"templates[b].fleetType: a Batch compute environment is maintain; instant is for EC2Fleet",
		"templates[b].subnetId: a Batch compute environment launches into subnets: give subnetId",
		"templates[b].fleetRole: Batch needs fleetRole (the IAM role ARN or name the Batch compute environment uses)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
	// fleetType on RunInstances: IBM's Java plugin reads it into every
	// template; accepted with a warning naming the APIs it applies to.
	onRun := head + "  - templateId: r\n" + base + "    fleetType: maintain\n"
	c, err = Parse([]byte(onRun), "/etc/ohfp/config.yaml")
	if err != nil {
		t.Fatalf("fleetType on RunInstances refused: %v", err)
	}
	if w := strings.Join(c.Warnings, "\n"); !strings.Contains(w, "templates[r].fleetType: ignored: it only applies to providerApi EC2Fleet, SpotFleet or Batch (this template uses RunInstances)") || c.Providers[0].Templates[0].FleetType != "" {
		t.Errorf("warnings %q, fleetType %q: want it ignored with a warning", w, c.Providers[0].Templates[0].FleetType)
	}

	het := head + "  - templateId: h\n" + base + "    providerApi: RunInstances\n    priceType: heterogeneous\n"
	if _, err = Parse([]byte(het), "/etc/ohfp/config.yaml"); err == nil || !strings.Contains(err.Error(), "heterogeneous needs providerApi EC2Fleet, SpotFleet, ASG or Batch") {
		t.Errorf("heterogeneous on RunInstances: %v; want the APIs that take it, Batch among them", err)
	}
	unknown := head + "  - templateId: u\n" + base + "    providerApi: Lambda\n"
	if _, err = Parse([]byte(unknown), "/etc/ohfp/config.yaml"); err == nil || !strings.Contains(err.Error(), `"Lambda" is not one of RunInstances, EC2Fleet, SpotFleet, ASG, Batch`) {
		t.Errorf("unknown providerApi: %v", err)
	}
}
