package awsprov

import (
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/clock"
)

// An action throttled once and not called again stops counting as
// throttled after ThrottleMemory; one still being throttled, or called
// since, does as before.
func TestThrottleMemory(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	m := NewMeter(clk)
	throttle := apiErr(503, "RequestLimitExceeded", "Request limit exceeded.")
	throttled := func() []string { return m.snapshot().ThrottledActions }

	m.operation("CreateFleet", throttle)
	m.operation("DescribeInstances", nil)
	if got := throttled(); len(got) != 1 || got[0] != "CreateFleet" {
		t.Fatalf("just throttled: %v, want [CreateFleet]", got)
	}
	clk.Advance(ThrottleMemory - time.Second)
	if !m.snapshot().Throttled {
		t.Fatalf("throttled %s ago must still count", ThrottleMemory-time.Second)
	}
	clk.Advance(2 * time.Second)
	if h := m.snapshot(); h.Throttled || len(h.ThrottledActions) != 0 {
		t.Fatalf("throttled once %s ago, not called since: %v, want none", ThrottleMemory+time.Second, h.ThrottledActions)
	}

	// Throttled again: counts again from then, until answered.
	m.operation("CreateFleet", throttle)
	clk.Advance(time.Minute)
	m.operation("RunInstances", throttle)
	clk.Advance(ThrottleMemory - 30*time.Second)
	if got := throttled(); len(got) != 1 || got[0] != "RunInstances" {
		t.Fatalf("CreateFleet throttled %s ago, RunInstances %s ago: %v, want [RunInstances]", ThrottleMemory+30*time.Second, ThrottleMemory-30*time.Second, got)
	}
	m.operation("RunInstances", nil)
	if m.snapshot().Throttled {
		t.Fatal("an answered RunInstances must clear its throttle")
	}
}
