package soak

import (
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/rpc"
)

// silentEndpoint accepts TCP connections, reads what comes and never
// answers: an AWS endpoint that hangs (issue 12, case 2).
func silentEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				buf := make([]byte, 1<<16)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// pointAt rewrites the env's configuration to use endpoint, with small
// AWS deadlines.
func (e *env) pointAt(endpoint string) {
	e.t.Helper()
	b, err := os.ReadFile(e.cfg)
	must(e.t, err)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "    endpoint_url: "):
			l = "    endpoint_url: " + endpoint
		case strings.HasPrefix(l, "    connection_timeout: "), strings.HasPrefix(l, "    aws_response_timeout: "),
			strings.HasPrefix(l, "    aws_call_timeout: "):
			continue
		case strings.HasPrefix(l, "    aws_rate_limit: "):
			l += "\n    connection_timeout: 500ms\n    aws_response_timeout: 500ms\n    aws_call_timeout: 1s"
		}
		out = append(out, l)
	}
	must(e.t, os.WriteFile(e.cfg, []byte(strings.Join(out, "\n")), 0o600))
}

func (e *env) reload() {
	e.t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	var out map[string]any
	must(e.t, e.rpc.Call(ctx, "reload", rpc.Params{}, &out))
}

// awsFigures returns the aws provider's summary and its counts of calls,
// errors and timeouts from `ohfp status --json`.
func (e *env) awsFigures() (summary string, calls, errs, timeouts int) {
	e.t.Helper()
	rep := e.statusReport()
	aws, _ := rep["aws"].(map[string]any)
	p, _ := aws["aws"].(map[string]any)
	summary, _ = p["summary"].(string)
	h, _ := p["health"].(map[string]any)
	total := func(k string) int {
		m, _ := h[k].(map[string]any)
		n := 0
		for _, v := range m {
			f, _ := v.(float64)
			n += int(f)
		}
		return n
	}
	return summary, total("calls"), total("errors"), total("timeouts")
}

// TestStalledAWSThenReload points ohfpd at an endpoint that accepts
// connections and never answers: requestMachines still answers, the
// request's message, `ohfp status` and the log say AWS is not answering; a
// reload keeps the AWS figures; a reload to the working region lets the
// request complete.
func TestStalledAWSThenReload(t *testing.T) {
	t.Parallel() // its own region and daemon
	start := time.Now()
	c := startCloud(t, 100*time.Millisecond, 100*time.Millisecond)
	e := newEnv(t, c, daemonOpts{})
	e.pointAt(silentEndpoint(t))
	e.start()

	id := e.request(tplOnDemand, 1)
	var msg, summary string
	deadline := time.Now().Add(15 * time.Second)
	for {
		msg = e.status(id).Requests[0].Message
		summary, _, _, _ = e.awsFigures()
		if strings.Contains(msg, "not answering") && strings.HasPrefix(summary, "AWS not answering for ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with AWS not answering: request message %q, aws summary %q; want both to say so", msg, summary)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("while AWS does not answer: request message %q; aws summary %q", msg, summary)
	if b, _ := os.ReadFile(e.logPath); !strings.Contains(string(b), "AWS not answering") {
		t.Errorf("the log does not say AWS is not answering")
	}
	if rep := e.statusReport(); rep["lastReconcile"] == nil {
		t.Errorf("no reconcile pass finished while AWS does not answer: %v", rep)
	}

	// Case 8: a reload while AWS still fails keeps the figures.
	_, calls, errs, timeouts := e.awsFigures()
	if calls == 0 || errs == 0 || timeouts == 0 {
		t.Fatalf("before the reload: %d calls, %d errors, %d timeouts", calls, errs, timeouts)
	}
	e.reload()
	s2, calls2, errs2, timeouts2 := e.awsFigures()
	if calls2 < calls || errs2 < errs || timeouts2 < timeouts || !strings.HasPrefix(s2, "AWS not answering") {
		t.Errorf("after a reload: %q, %d calls, %d errors, %d timeouts; before: %d, %d, %d", s2, calls2, errs2, timeouts2, calls, errs, timeouts)
	}

	// The working region: the same request completes.
	e.pointAt(c.endpoint)
	e.reload()
	final := e.waitFinal([]string{id}, 20*time.Second)[id]
	if final.Status != "complete" || len(final.Machines) != 1 {
		t.Fatalf("after a reload to a working region: %+v", final)
	}
	s3, calls3, _, _ := e.awsFigures()
	if s3 != "ok" || calls3 <= calls2 {
		t.Errorf("once AWS answers: summary %q, %d calls (were %d)", s3, calls3, calls2)
	}
	report(t, map[string]any{"seconds": time.Since(start).Seconds(), "timeouts": timeouts2})
}
