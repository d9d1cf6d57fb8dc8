package engine

import (
	"context"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/quiet"
)

// gatedCloud records when the full listing ran and calls the page hook
// before it, as the AWS provider does before each page.
type gatedCloud struct {
	*fakeCloud
	listedAt chan time.Time
}

func (g gatedCloud) List(ctx context.Context, owner string) ([]provider.Instance, error) {
	provider.BeforePage(ctx)
	g.listedAt <- time.Now()
	return g.fakeCloud.List(ctx, owner)
}

func gatedEngine(t *testing.T, idle time.Duration) (*Engine, *quiet.Gate, chan time.Time) {
	t.Helper()
	h := newHarness(t)
	gate := new(quiet.Gate)
	listed := make(chan time.Time, 10)
	e, err := New(Options{
		ClusterID:    "test",
		Providers:    []ProviderConfig{{Name: "aws", Templates: h.tpls, Cloud: gatedCloud{h.cloud, listed}}},
		Store:        h.st,
		Clock:        h.clk,
		IdleInterval: idle,
		Gate:         gate,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e, gate, listed
}

func TestFullListingWaitsForAPauseInCalls(t *testing.T) {
	e, gate, listed := gatedEngine(t, time.Minute)
	gate.Begin() // HF's call in flight
	done := make(chan struct{})
	go func() {
		e.ReconcileOnce(context.Background()) // the first pass lists everything
		close(done)
	}()
	select {
	case <-listed:
		t.Fatal("the full listing ran during a call")
	case <-time.After(200 * time.Millisecond):
	}
	gate.End()
	ended := time.Now()
	select {
	case at := <-listed:
		if at.Sub(ended) < quiet.Gap {
			t.Fatalf("the listing began %v after the call ended, before a %v pause", at.Sub(ended), quiet.Gap)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the listing did not run after the calls stopped")
	}
	<-done
}

func TestFullListingRunsAnywayAfterItsBudget(t *testing.T) {
	// Calls that never pause: the listing waits two idle intervals, then
	// runs regardless.
	const idle = 100 * time.Millisecond
	e, gate, listed := gatedEngine(t, idle)
	gate.Begin()
	defer gate.End()
	start := time.Now()
	e.ReconcileOnce(context.Background())
	select {
	case at := <-listed:
		if waited := at.Sub(start); waited < 2*idle || waited > 10*time.Second {
			t.Fatalf("the listing waited %v, want about %v", waited, 2*idle)
		}
	default:
		t.Fatal("the pass ended without its full listing")
	}
}
