package reconcile

import (
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/provider"
)

// TestForward: state-change events, late, repeated or out of order, only
// move a machine on towards its end, and never report a start.
func TestForward(t *testing.T) {
	for _, c := range []struct {
		from domain.State
		to   provider.State
		want bool
	}{
		{"running", "stopping", true}, {"running", "terminated", true}, {"pending", "shutting-down", true},
		{"stopping", "stopped", true}, {"stopped", "terminated", true}, {"shutting-down", "terminated", true},
		{"running", "running", false}, {"pending", "running", false}, {"terminated", "shutting-down", false},
		{"stopped", "stopping", false}, {"shutting-down", "stopped", false}, {"gone", "terminated", false},
	} {
		if got := forward(c.from, c.to); got != c.want {
			t.Errorf("forward(%s, %s) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}

// TestDrainReclaim: a drained machine is reported with the grace left
// until the cloud acts, never negative; an interruption or a return says
// more and wins; the first reason stays.
func TestDrainReclaim(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	m := &domain.Machine{ID: "i-1", State: domain.StateRunning}
	if !m.Drain(now, now.Add(time.Hour), "retirement") || m.Drain(now, now, "status check") || m.DrainReason != "retirement" {
		t.Fatalf("drain: %+v", m)
	}
	if g, ok := m.Reclaim(now.Add(10 * time.Minute)); !ok || g != 3000 {
		t.Fatalf("grace %d %v, want 3000", g, ok)
	}
	if g, ok := m.Reclaim(now.Add(2 * time.Hour)); !ok || g != 0 {
		t.Fatalf("grace past the event %d %v", g, ok)
	}
	m.InterruptAt = now
	if g, _ := m.Reclaim(now.Add(20 * time.Second)); g != 100 {
		t.Fatalf("interruption grace %d, want 100", g)
	}
	m.ReturnID = "ret-1"
	if _, ok := m.Reclaim(now); ok {
		t.Fatal("a returned machine reported")
	}
	r := &domain.Machine{ID: "i-2", State: domain.StateRunning, ReturnID: "ret-2"}
	if r.Drain(now, now, "x") {
		t.Fatal("a returned machine drained")
	}
}
