package health

import (
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/apitype"
)

func TestAssess(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	bound := 4 * time.Minute
	fresh := func() apitype.Status {
		return apitype.Status{Started: t0, LastReconcile: t0.Add(time.Minute), LastReconcileMs: 100, Providers: []string{"a", "b"},
			AWS: map[string]apitype.CloudStatus{"a": {}, "b": {}}}
	}
	now := t0.Add(90 * time.Second)
	cases := []struct {
		name   string
		change func(*apitype.Status)
		now    time.Time
		level  string
		reason string
	}{
		{"all fine", func(*apitype.Status) {}, now, apitype.Healthy, ""},
		{"one provider throttled", func(s *apitype.Status) {
			s.AWS["a"] = apitype.CloudStatus{Health: apitype.CloudHealth{Throttled: true, ThrottledActions: []string{"RunInstances"}}}
		}, now, apitype.Degraded, "provider a: AWS throttling RunInstances"},
		{"5xx is failing, not unreachable", func(s *apitype.Status) {
			s.AWS["b"] = apitype.CloudStatus{Health: apitype.CloudHealth{Failing: true, LastError: "InternalError"}}
		}, now, apitype.Degraded, "AWS failing (server errors): InternalError"},
		{"one provider without credentials", func(s *apitype.Status) {
			s.AWS["a"] = apitype.CloudStatus{Health: apitype.CloudHealth{Credentials: true, LastError: "no EC2 IMDS role found"}}
		}, now, apitype.Degraded, "no valid AWS credentials"},
		{"credential script failing, last good credentials in use", func(s *apitype.Status) {
			s.AWS["a"] = apitype.CloudStatus{Health: apitype.CloudHealth{CredentialScript: "credential script /opt/fed.sh failed (exit status 1): no SSO session"}}
			s.AWS["b"] = apitype.CloudStatus{Health: apitype.CloudHealth{CredentialScript: "credential script /opt/fed.sh did not finish within 30s"}}
		}, now, apitype.Degraded, "provider a: credential script failing (the last good credentials are used until they expire): credential script /opt/fed.sh failed (exit status 1): no SSO session"},
		{"no provider can work", func(s *apitype.Status) {
			s.AWS["a"] = apitype.CloudStatus{Health: apitype.CloudHealth{Credentials: true}}
			s.AWS["b"] = apitype.CloudStatus{Health: apitype.CloudHealth{NotAnswering: true, NotAnsweringSeconds: 120}}
		}, now, apitype.Down, "AWS not answering for 2m0s"},
		{"reconcile lagging", func(*apitype.Status) {}, t0.Add(4 * time.Minute), apitype.Degraded, "reconcile lagging"},
		{"engine stalled", func(*apitype.Status) {}, t0.Add(6 * time.Minute), apitype.Down, "no reconcile pass finished within 4m0s"},
		{"last pass failed", func(s *apitype.Status) { s.LastReconcileError = "DescribeInstances: boom" }, now, apitype.Degraded, "the last reconcile pass failed"},
		{"disk refuses", func(s *apitype.Status) { s.Unsaved = 1 }, now, apitype.Degraded, "1 record not yet written"},
		{"a template's breaker counting, not tripped", func(s *apitype.Status) {
			s.Breakers = []apitype.Breaker{{Provider: "a", TemplateID: "t1", Failures: 2, Reason: "InsufficientInstanceCapacity"}}
		}, now, apitype.Healthy, ""},
		{"a template stopped by its breaker", func(s *apitype.Status) {
			s.Breakers = []apitype.Breaker{{Provider: "b", TemplateID: "t1", Failures: 5, Reason: "InvalidAMIID.NotFound", Tripped: true}}
		}, now, apitype.Degraded, "template t1 of provider b stopped by its failure breaker after 5 failures (last: InvalidAMIID.NotFound): HF gets no hosts from it until ohfp rearm t1 --provider b"},
		{"a breaker that re-arms itself", func(s *apitype.Status) {
			s.Breakers = []apitype.Breaker{{Provider: "a", TemplateID: "t2", Failures: 3, Tripped: true, Until: now.Add(5 * time.Minute)}}
		}, now, apitype.Degraded, "HF gets no hosts from it until it re-arms in 5m0s or ohfp rearm t2 --provider a"},
	}
	for _, c := range cases {
		st := fresh()
		c.change(&st)
		h := Assess(st, c.now, bound)
		if h.Level != c.level || h.Code != map[string]int{apitype.Healthy: 0, apitype.Degraded: 1, apitype.Down: 2}[c.level] ||
			!strings.Contains(strings.Join(h.Reasons, "\n"), c.reason) {
			t.Errorf("%s: %+v, want %s with %q", c.name, h, c.level, c.reason)
		}
		if h.Stalled != (c.name == "engine stalled") {
			t.Errorf("%s: stalled %v", c.name, h.Stalled)
		}
	}
}
