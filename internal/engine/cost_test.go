package engine

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/provider"
)

// pricedCloud is the fake cloud with prices: c5.large on-demand 0.085,
// m5.large Spot 0.03 in us-east-1a; anything else unknown.
type pricedCloud struct {
	*fakeCloud
	pmu   sync.Mutex
	calls int
	asked [][]provider.Offering
	block chan struct{} // when set, Prices waits for it (a price API that hangs)
}

func (p *pricedCloud) PricingOn() bool { return true }

func (p *pricedCloud) Prices(ctx context.Context, offers []provider.Offering) map[provider.Offering]provider.Price {
	p.pmu.Lock()
	p.calls++
	p.asked = append(p.asked, offers)
	block := p.block
	p.pmu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
		}
	}
	out := map[provider.Offering]provider.Price{}
	for _, o := range offers {
		switch {
		case o == provider.Offering{InstanceType: "c5.large", AZ: "us-east-1a"}:
			out[o] = provider.Price{Known: true, Dollars: 0.085, Source: provider.SourceTable}
		case o == provider.Offering{InstanceType: "m5.large", AZ: "us-east-1a", Spot: true}:
			out[o] = provider.Price{Known: true, Dollars: 0.03, Source: provider.SourceSpotHistory}
		default:
			out[o] = provider.Price{Reason: "no price for " + o.InstanceType}
		}
	}
	return out
}

func (p *pricedCloud) priceCalls() int {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	return p.calls
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestPriceEstimates(t *testing.T) {
	h := newHarness(t)
	pc := &pricedCloud{fakeCloud: h.cloud}
	h.restartWith(pc)
	ctx := context.Background()
	od := h.request("OnDemand-c5", 2)
	spot := h.request("Spot-m5", 1)
	h.provision()
	h.cloud.settle()
	h.reconcile()

	// Before the keeper's first round: unknown, not fetched yet; reading
	// status and show never asks for prices.
	st := h.e.StatusReport()
	if st.Cost == nil || st.Cost.Total.Unknown != 3 || st.Cost.Total.Reason != "not fetched yet" {
		t.Fatalf("cost before any fetch: %+v", st.Cost)
	}
	h.status(od)
	if n := pc.priceCalls(); n != 0 {
		t.Fatalf("status or HF's call asked for prices (%d calls)", n)
	}

	h.e.RefreshPrices(ctx)
	st = h.e.StatusReport()
	c := st.Cost
	if !near(c.Total.DollarsPerHour, 0.2) || c.Total.Machines != 3 || c.Total.Unknown != 0 {
		t.Fatalf("total: %+v", c.Total)
	}
	if len(c.Templates) != 2 || c.Templates[0].TemplateID != "OnDemand-c5" || !near(c.Templates[0].Sum.DollarsPerHour, 0.17) ||
		!near(c.Templates[1].Sum.DollarsPerHour, 0.03) {
		t.Fatalf("per template: %+v", c.Templates)
	}
	perReq := map[string]float64{}
	for _, r := range c.Requests {
		perReq[r.ID] = r.Sum.DollarsPerHour
	}
	if len(c.Requests) != 2 || !near(perReq[od], 0.17) || !near(perReq[spot], 0.03) {
		t.Fatalf("per request: %+v", c.Requests)
	}
	if len(c.Offerings) != 2 || c.Offerings[0].Machines != 2 || c.Offerings[1].PriceType != provider.PriceSpot {
		t.Fatalf("offerings: %+v", c.Offerings)
	}
	shown, err := h.e.Show(od)
	if err != nil {
		t.Fatal(err)
	}
	if rc := shown.Request.Cost; rc == nil || !near(rc.Sum.DollarsPerHour, 0.17) || len(rc.Machines) != 2 || !rc.Machines[0].Price.Known {
		t.Fatalf("show request: %+v", shown.Request.Cost)
	}
	shown, _ = h.e.Show(shown.Request.MachineIDs[0])
	if p := shown.Machine.Price; p == nil || !p.Known || p.DollarsPerHour != 0.085 || p.Type != provider.PriceOnDemand || p.Source != "table" {
		t.Fatalf("show machine: %+v", shown.Machine.Price)
	}
	if n := pc.priceCalls(); n != 1 {
		t.Fatalf("%d price rounds, want 1", n)
	}

	// Not persisted: after a restart, unknown until the next round, then
	// back (the zone comes back with the first listing).
	h.restartWith(pc)
	h.reconcile()
	if c := h.e.StatusReport().Cost; c.Total.Unknown != 3 {
		t.Fatalf("after a restart, before a round: %+v", c.Total)
	}
	h.e.RefreshPrices(ctx)
	if c := h.e.StatusReport().Cost; !near(c.Total.DollarsPerHour, 0.2) {
		t.Fatalf("after a restart: %+v", c.Total)
	}

	// A price API that hangs holds no launch: requests complete while a
	// round waits.
	pc.pmu.Lock()
	pc.block = make(chan struct{})
	pc.pmu.Unlock()
	done := make(chan struct{})
	go func() { defer close(done); h.e.RefreshPrices(ctx) }()
	for pc.priceCalls() < 3 {
		time.Sleep(time.Millisecond)
	}
	more := h.request("OnDemand-c5", 1)
	h.provision()
	h.cloud.settle()
	h.reconcile()
	if s := h.status(more); s.Status != "complete" {
		t.Fatalf("launch while a price fetch hangs: %+v", s)
	}
	close(pc.block)
	<-done
}
