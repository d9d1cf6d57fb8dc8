package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/config"
)

// The watchdog is fed only while reconcile passes finish (issue 12, case 2:
// a stalled AWS call kept the engine from any pass while the watchdog was
// still fed).
func TestWatchdogFollowsReconcilePasses(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	bound := 5 * time.Minute
	cases := []struct {
		name  string
		rep   apitype.Status
		now   time.Time
		stuck string // "" or a word the reason must hold
	}{
		{"fresh start, no pass yet", apitype.Status{Started: t0}, t0.Add(time.Minute), ""},
		{"no pass since the start", apitype.Status{Started: t0}, t0.Add(6 * time.Minute), "none since the start"},
		{"recent pass", apitype.Status{Started: t0, LastReconcile: t0.Add(10 * time.Minute), LastReconcileMs: 500}, t0.Add(14 * time.Minute), ""},
		{"recent pass that failed is progress too", apitype.Status{Started: t0, LastReconcile: t0.Add(10 * time.Minute),
			LastReconcileMs: 60000, LastReconcileError: "DescribeInstances: AWS not answering"}, t0.Add(15 * time.Minute), ""},
		{"no pass for too long", apitype.Status{Started: t0, LastReconcile: t0.Add(10 * time.Minute), LastReconcileMs: 500}, t0.Add(16 * time.Minute), "finished 6m0s ago"},
	}
	for _, c := range cases {
		got := stalled(c.rep, c.now, bound)
		if (got == "") != (c.stuck == "") || !strings.Contains(got, c.stuck) {
			t.Errorf("%s: stalled = %q, want %q", c.name, got, c.stuck)
		}
	}
}

func TestProgressBoundCoversTheCallDeadlines(t *testing.T) {
	cfg := &config.Config{Reconcile: config.Reconcile{IdleInterval: 30 * time.Second},
		Providers: []config.Provider{{ConnectionTimeout: 10 * time.Second, ResponseTimeout: 30 * time.Second, CallTimeout: 60 * time.Second}}}
	if got, want := progressBound(cfg), 60*time.Second+4*time.Minute; got != want {
		t.Errorf("bound %s with the default deadlines, want %s", got, want)
	}
	cfg.Providers[0].CallTimeout = time.Second
	cfg.Providers[0].ConnectionTimeout, cfg.Providers[0].ResponseTimeout = time.Second, time.Second
	if got := progressBound(cfg); got != 2*time.Minute {
		t.Errorf("bound %s with tiny deadlines, want the 2m floor", got)
	}
}
