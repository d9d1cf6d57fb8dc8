package awsprov

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

func TestPricesTableMode(t *testing.T) {
	p, r, _ := newSim(t, Settings{Prices: map[string]float64{"c5.large": 0.1}})
	od := provider.Offering{InstanceType: "c5.large"}
	other := provider.Offering{InstanceType: "m5.large"}
	spot := provider.Offering{InstanceType: "c5.large", AZ: "us-east-1a", Spot: true}
	got := p.Prices(context.Background(), []provider.Offering{od, other, spot})
	if g := got[od]; !g.Known || g.Dollars != 0.1 || g.Source != provider.SourceTable {
		t.Errorf("table price: %+v", g)
	}
	if g := got[other]; g.Known || !strings.Contains(g.Reason, "no prices: entry for m5.large") {
		t.Errorf("type missing from the table: %+v", g)
	}
	if g := got[spot]; g.Known || !strings.Contains(g.Reason, "pricing: api") {
		t.Errorf("Spot in table mode: %+v", g)
	}
	if n := r.Calls()["GetProducts"] + r.Calls()["DescribeSpotPriceHistory"]; n != 0 {
		t.Errorf("table mode asked AWS %d times", n)
	}
	if !p.PricingOn() {
		t.Error("table mode is pricing")
	}
	off, _, _ := newSim(t, Settings{Pricing: PricingOff})
	if off.PricingOn() {
		t.Error("pricing: off prices")
	}
}

func TestPricesAPIMode(t *testing.T) {
	ctx := context.Background()
	p, r, clk := newSim(t, Settings{Pricing: PricingAPI, Prices: map[string]float64{"c5.large": 0.2}, SpotPriceTTL: time.Minute})
	od := provider.Offering{InstanceType: "m5.large"}
	table := provider.Offering{InstanceType: "c5.large"}
	spotA := provider.Offering{InstanceType: "c5.large", AZ: "us-east-1a", Spot: true}
	spotB := provider.Offering{InstanceType: "m5.large", AZ: "us-east-1b", Spot: true}
	noAZ := provider.Offering{InstanceType: "m5.large", Spot: true}
	all := []provider.Offering{od, table, spotA, spotB, noAZ}
	got := p.Prices(ctx, all)
	if g := got[od]; !g.Known || g.Dollars != 0.096 || g.Source != provider.SourcePriceList {
		t.Errorf("Price List price: %+v", g)
	}
	if g := got[table]; !g.Known || g.Dollars != 0.2 || g.Source != provider.SourceTable {
		t.Errorf("the table wins over the API: %+v", g)
	}
	if g := got[spotA]; !g.Known || g.Source != provider.SourceSpotHistory || g.Dollars < 0.0254 || g.Dollars > 0.0256 {
		t.Errorf("Spot price in us-east-1a: %+v", g)
	}
	if g := got[spotB]; !g.Known || g.Dollars < 0.0307 || g.Dollars > 0.0308 {
		t.Errorf("Spot price in us-east-1b: %+v", g)
	}
	if g := got[noAZ]; g.Known || !strings.Contains(g.Reason, "Availability Zone") {
		t.Errorf("Spot without a zone: %+v", g)
	}
	calls := r.Calls()
	if calls["GetProducts"] != 1 || calls["DescribeSpotPriceHistory"] != 1 {
		t.Fatalf("one GetProducts per type missing from the table, one DescribeSpotPriceHistory for all: %v", calls)
	}
	// Cached: no call. Past the Spot TTL, Spot is asked again, and sees
	// the lever's new price; on-demand stays cached.
	p.Prices(ctx, all)
	if n := r.Calls()["DescribeSpotPriceHistory"]; n != 1 {
		t.Fatalf("Spot price not cached: %d calls", n)
	}
	if err := r.SetPrices(awssim.PriceSetting{Spot: []awssim.SpotPriceSetting{{InstanceType: "c5.large", AvailabilityZone: "us-east-1a", Price: 0.04}}}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	got = p.Prices(ctx, all)
	if g := got[spotA]; g.Dollars != 0.04 {
		t.Errorf("Spot price after the TTL: %+v", g)
	}
	if r.Calls()["GetProducts"] != 1 || r.Calls()["DescribeSpotPriceHistory"] != 2 {
		t.Errorf("calls: %v", r.Calls())
	}
	// The meter counts them; a price failure leaves AWS's health alone.
	if h := p.Health(); h.Calls["GetProducts"] != 1 || h.Calls["DescribeSpotPriceHistory"] != 2 {
		t.Errorf("meter: %v", h.Calls)
	}
}

func TestPricesDeniedAndUnreachable(t *testing.T) {
	ctx := context.Background()
	p, r, clk := newSim(t, Settings{Pricing: PricingAPI})
	r.SetFaults(awssim.Faults{Denied: []string{"GetProducts", "DescribeSpotPriceHistory"}})
	od := provider.Offering{InstanceType: "m5.large"}
	spot := provider.Offering{InstanceType: "m5.large", AZ: "us-east-1a", Spot: true}
	got := p.Prices(ctx, []provider.Offering{od, spot})
	if g := got[od]; g.Known || !strings.Contains(g.Reason, "pricing:GetProducts") || !strings.Contains(g.Reason, "AccessDeniedException") {
		t.Errorf("denied GetProducts: %+v", g)
	}
	if g := got[spot]; g.Known || !strings.Contains(g.Reason, "ec2:DescribeSpotPriceHistory") {
		t.Errorf("denied DescribeSpotPriceHistory: %+v", g)
	}
	if h := p.Health(); h.Summary() != "ok" {
		t.Errorf("a refused price made AWS unhealthy: %s", h.Summary())
	}
	// Not asked again before priceRetry; asked again after.
	r.SetFaults(awssim.Faults{})
	p.Prices(ctx, []provider.Offering{od, spot})
	if r.Calls()["GetProducts"] != 1 {
		t.Errorf("retried before priceRetry: %v", r.Calls())
	}
	clk.Advance(priceRetry + time.Second)
	if g := p.Prices(ctx, []provider.Offering{od})[od]; !g.Known {
		t.Errorf("after priceRetry: %+v", g)
	}

	// A Price List endpoint nobody answers on: unknown, with why; the
	// provider stays healthy.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	q, _, _ := newSim(t, Settings{Pricing: PricingAPI, PricingEndpointURL: dead})
	if g := q.Prices(ctx, []provider.Offering{od})[od]; g.Known || !strings.Contains(g.Reason, "GetProducts") {
		t.Errorf("unreachable Price List: %+v", g)
	}
	if h := q.Health(); h.Summary() != "ok" || h.Errors["GetProducts"] == 0 {
		t.Errorf("unreachable Price List: health %q, errors %v", h.Summary(), h.Errors)
	}
}

func TestCheckPrices(t *testing.T) {
	ctx := context.Background()
	tpl := template.Template{TemplateID: "spot", VMType: "m5.large", PriceType: template.PriceSpot}
	// pricing: table: nothing to check.
	p, _, _ := newSim(t, Settings{})
	if got := p.checkPrices(ctx, tpl); len(got) != 0 {
		t.Fatalf("table mode checked prices: %+v", got)
	}
	p, r, _ := newSim(t, Settings{Pricing: PricingAPI})
	got := p.checkPrices(ctx, tpl)
	if len(got) != 2 || !got[0].OK || !strings.Contains(got[0].Result, "$0.0960/h") || !got[1].OK {
		t.Fatalf("allowed: %+v", got)
	}
	r.SetFaults(awssim.Faults{Denied: []string{"GetProducts", "DescribeSpotPriceHistory"}})
	got = p.checkPrices(ctx, tpl)
	if len(got) != 2 || got[0].OK || !strings.Contains(got[0].Result, "pricing:GetProducts") ||
		got[1].OK || !strings.Contains(got[1].Result, "ec2:DescribeSpotPriceHistory") {
		t.Fatalf("denied: %+v", got)
	}
}
