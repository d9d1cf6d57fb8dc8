package main

import (
	"testing"
	"time"
)

// Status names the instant a retried launch is due, as the request's
// message does, and never says it is in the past (issue 18, finding 6).
func TestNextAttemptNeverPast(t *testing.T) {
	now := time.Date(2026, 11, 30, 18, 5, 0, 0, time.UTC)
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{now.Add(8 * time.Second), "at 18:05:08Z (in 8s)"},
		{now.Add(-2 * time.Second), "at 18:04:58Z (due now)"},
		{now.Add(300 * time.Millisecond), "at 18:05:00Z (due now)"},
	} {
		if got := nextAttempt(now, c.at); got != c.want {
			t.Errorf("nextAttempt(%v) = %q, want %q", c.at.Sub(now), got, c.want)
		}
	}
}
