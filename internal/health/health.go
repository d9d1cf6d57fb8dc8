// Package health is the one place that judges how ohfpd is doing, from
// what happened: each provider's calls to its cloud (credentials refused,
// throttling, server errors, unreachable or not answering) and the core's
// own progress (reconcile passes, their errors, records the disk refused).
// `ohfp status` (its exit code), the metrics, systemd's STATUS= and the
// watchdog all read its verdict; none judges on its own.
package health

import (
	"fmt"
	"github.com/ohfp/ohfp/internal/english"
	"slices"
	"time"

	"github.com/ohfp/ohfp/internal/apitype"
)

// Exit codes of `ohfp status`, one per level.
const (
	CodeHealthy  = 0
	CodeDegraded = 1
	CodeDown     = 2
)

// Assess judges st (the core's status with every provider's cloud health
// in st.AWS) at now. bound is how long the engine may go without
// finishing a reconcile pass before it counts as stalled (daemon:
// progressBound).
//
//   - down: the engine is stalled (no pass finished within bound), or no
//     provider can work (every one lacks valid credentials, cannot reach
//     AWS, or AWS does not answer it);
//   - degraded: some provider cannot work, or AWS throttles or fails (5xx)
//     a provider's calls, or its credential script fails, the last pass
//     failed, passes lag (none finished within half of bound), the disk
//     refused records, or a template's failure breaker stopped it (HF gets
//     no hosts from it until it is re-armed);
//   - healthy: none of these.
func Assess(st apitype.Status, now time.Time, bound time.Duration) apitype.Health {
	h := apitype.Health{Providers: map[string]string{}}
	level := CodeHealthy
	worse := func(l int, reason string) {
		level = max(level, l)
		h.Reasons = append(h.Reasons, reason)
	}

	// The engine's progress, counted from the start before the first pass.
	last := st.Started
	if !st.LastReconcile.IsZero() {
		last = st.LastReconcile.Add(time.Duration(st.LastReconcileMs) * time.Millisecond)
	}
	since := now.Sub(last)
	switch {
	case bound > 0 && since > bound:
		what := "the last one finished " + since.Round(time.Second).String() + " ago"
		if st.LastReconcile.IsZero() {
			what = "none since the start " + since.Round(time.Second).String() + " ago"
		}
		h.Stalled = true
		worse(CodeDown, fmt.Sprintf("no reconcile pass finished within %s (%s)", bound, what))
	case bound > 0 && since > bound/2 && !st.LastReconcile.IsZero():
		worse(CodeDegraded, fmt.Sprintf("reconcile lagging: the last pass finished %s ago", since.Round(time.Second)))
	}

	names := slices.Clone(st.Providers)
	for name := range st.AWS {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	down := 0
	for _, name := range names {
		c, ok := st.AWS[name]
		if !ok {
			h.Providers[name] = "ok"
			continue
		}
		l, why := provider(c.Health)
		if l == CodeHealthy {
			h.Providers[name] = "ok"
			continue
		}
		h.Providers[name] = why
		if l == CodeDown {
			down++
		}
		worse(CodeDegraded, "provider "+name+": "+why)
	}
	if len(names) > 0 && down == len(names) {
		level = CodeDown
	}
	if st.LastReconcileError != "" {
		worse(CodeDegraded, "the last reconcile pass failed: "+st.LastReconcileError)
	}
	if st.Unsaved > 0 {
		if st.HA != nil {
			worse(CodeDegraded, fmt.Sprintf("%s not yet written to the shared table", english.Plural(st.Unsaved, "record")))
		} else {
			worse(CodeDegraded, fmt.Sprintf("%s not yet written to disk (state directory full or read-only?)", english.Plural(st.Unsaved, "record")))
		}
	}
	for _, b := range st.Breakers {
		if !b.Tripped {
			continue
		}
		rearm := "ohfp rearm " + b.TemplateID
		if len(st.Providers) > 1 {
			rearm += " --provider " + b.Provider
		}
		until := "until " + rearm
		if !b.Until.IsZero() {
			until = "until it re-arms in " + b.Until.Sub(now).Round(time.Second).String() + " or " + rearm
		}
		last := ""
		if b.Reason != "" {
			last = " (last: " + b.Reason + ")"
		}
		worse(CodeDegraded, fmt.Sprintf("template %s of provider %s stopped by its failure breaker after %s%s: HF gets no hosts from it %s",
			b.TemplateID, b.Provider, english.Plural(b.Failures, "failure"), last, until))
	}
	if st.HA != nil && st.HA.LastError != "" {
		worse(CodeDegraded, "shared state table: "+st.HA.LastError)
	}
	h.Code = level
	h.Level = []string{apitype.Healthy, apitype.Degraded, apitype.Down}[level]
	return h
}

// provider judges one provider's calls to its cloud: down when it cannot
// work at all, degraded when AWS slows it down or fails some calls.
func provider(c apitype.CloudHealth) (level int, why string) {
	switch {
	case c.Credentials:
		return CodeDown, "no valid AWS credentials: " + c.LastError
	case c.NotAnswering:
		return CodeDown, fmt.Sprintf("AWS not answering for %s", (time.Duration(c.NotAnsweringSeconds) * time.Second).Round(time.Second))
	case c.Unreachable:
		return CodeDown, "AWS unreachable: " + c.LastError
	case c.Throttled:
		what := "AWS throttling"
		for i, a := range c.ThrottledActions {
			if i == 0 {
				what += " " + a
			} else {
				what += ", " + a
			}
		}
		return CodeDegraded, what
	case c.Failing:
		return CodeDegraded, "AWS failing (server errors): " + c.LastError
	case c.CredentialScript != "":
		return CodeDegraded, "credential script failing (the last good credentials are used until they expire): " + c.CredentialScript
	}
	return CodeHealthy, ""
}

// CloudOK reports whether a provider's cloud health is fine: the
// ohfp_aws_healthy metric.
func CloudOK(c apitype.CloudHealth) bool {
	l, _ := provider(c)
	return l == CodeHealthy
}
