package engine

import (
	"context"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/quiet"
)

// gatedCloud counts full listings and calls the page hook before each, as
// the AWS provider does before each page.
type gatedCloud struct {
	*fakeCloud
	listed chan time.Time
}

func (g gatedCloud) List(ctx context.Context, owner string) ([]provider.Instance, error) {
	provider.BeforePage(ctx)
	g.listed <- time.Now()
	return g.fakeCloud.List(ctx, owner)
}

type gatedHarness struct {
	*harness
	gate   *quiet.Gate
	listed chan time.Time
}

func newGatedHarness(t *testing.T, active, idle time.Duration) *gatedHarness {
	t.Helper()
	h := newHarness(t)
	g := &gatedHarness{harness: h, gate: new(quiet.Gate), listed: make(chan time.Time, 10)}
	e, err := New(Options{
		ClusterID:      "test",
		Providers:      []ProviderConfig{{Name: "aws", Templates: h.tpls, Cloud: gatedCloud{h.cloud, g.listed}}},
		Store:          h.st,
		Clock:          h.clk,
		ActiveInterval: active,
		IdleInterval:   idle,
		Gate:           g.gate,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.e = e
	// The first pass lists everything at once, pause or not.
	g.gate.Begin()
	h.reconcile()
	g.gate.End()
	if len(g.listed) != 1 {
		t.Fatalf("the first pass made %d full listings, want 1", len(g.listed))
	}
	<-g.listed
	h.clk.Advance(idle) // the next full listing is due
	return g
}

func (g *gatedHarness) listings() int {
	n := 0
	for {
		select {
		case <-g.listed:
			n++
		default:
			return n
		}
	}
}

func TestFullListingWaitsForAPauseInCalls(t *testing.T) {
	g := newGatedHarness(t, time.Second, time.Minute)
	id := g.request("OnDemand-c5", 2)
	g.provision()

	g.gate.Begin() // HF's call in flight
	next := g.reconcile()
	if n := g.listings(); n != 0 {
		t.Fatalf("a full listing ran during a call")
	}
	if next > time.Second {
		t.Errorf("next pass in %v with a listing put off, want the active interval", next)
	}
	// The busy pass still did its work: the launched machines are seen.
	g.cloud.settle()
	g.reconcile()
	if st := g.status(id); st.Status != "complete" {
		t.Errorf("request %s while the listing waits, want complete", st.Status)
	}
	if n := g.listings(); n != 0 {
		t.Fatalf("a full listing ran during a call")
	}

	g.gate.End()
	time.Sleep(quiet.Gap + 10*time.Millisecond)
	g.reconcile()
	if n := g.listings(); n != 1 {
		t.Fatalf("%d full listings after the calls paused, want 1", n)
	}
}

func TestFullListingRunsAnywayAfterItsBudget(t *testing.T) {
	// Calls that never pause: the listing is put off for two idle
	// intervals (wall time), then runs regardless.
	const idle = 100 * time.Millisecond
	g := newGatedHarness(t, 50*time.Millisecond, idle)
	g.gate.Begin()
	defer g.gate.End()
	start := time.Now()
	g.reconcile()
	if n := g.listings(); n != 0 {
		t.Fatal("the listing did not wait")
	}
	for time.Since(start) < 2*idle+10*time.Millisecond {
		time.Sleep(10 * time.Millisecond)
	}
	g.reconcile()
	if n := g.listings(); n != 1 {
		t.Fatalf("%d full listings after the budget, want 1", n)
	}
}
