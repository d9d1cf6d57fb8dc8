package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestHFLogLevelPerCall: HF's per-call log level, through the binaries.
// With accept_propagated_log_setting, a call made with HF_LOGLEVEL=LOG_DEBUG
// (HF's spelling) is logged at DEBUG by ohfpd, whose own level is INFO;
// the same call without it, or with LOG_INFO, logs no DEBUG line; and a
// provider without the setting ignores HF_LOGLEVEL.
func TestHFLogLevelPerCall(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, templatesJSON, "    accept_propagated_log_setting: true\n")
	e.start()
	debugLines := func() int {
		n := 0
		for _, l := range strings.Split(e.logText(), "\n") {
			if strings.Contains(l, "level=DEBUG") {
				n++
			}
		}
		return n
	}
	base := e.plugin.Env
	e.templateIDs()
	e.request("OnDemand-c5", 1)
	if n := debugLines(); n != 0 {
		t.Fatalf("%d DEBUG lines without HF_LOGLEVEL:\n%s", n, e.logText())
	}
	e.plugin.Env = append(append([]string(nil), base...), "HF_LOGLEVEL=LOG_INFO")
	e.templateIDs()
	if n := debugLines(); n != 0 {
		t.Fatalf("%d DEBUG lines with LOG_INFO", n)
	}
	e.plugin.Env = append(append([]string(nil), base...), "HF_LOGLEVEL=LOG_DEBUG")
	e.templateIDs()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.logText(), `level=DEBUG msg="HF call answered" component=rpc op=getAvailableTemplates`) {
		if time.Now().After(deadline) {
			t.Fatalf("no DEBUG line for the call with HF_LOGLEVEL=LOG_DEBUG:\n%s", e.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The next call without it: back to the daemon's INFO.
	n := debugLines()
	e.plugin.Env = base
	e.templateIDs()
	time.Sleep(200 * time.Millisecond)
	if m := debugLines(); m != n {
		t.Fatalf("a call without HF_LOGLEVEL after one with it logged %d DEBUG lines", m-n)
	}
}

// TestHFLogLevelNotAccepted: without accept_propagated_log_setting (IBM's
// default), HF_LOGLEVEL from the caller changes nothing.
func TestHFLogLevelNotAccepted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()
	e.plugin.Env = append(e.plugin.Env, "HF_LOGLEVEL=LOG_DEBUG")
	e.templateIDs()
	e.request("OnDemand-c5", 1)
	time.Sleep(200 * time.Millisecond)
	if strings.Contains(e.logText(), "level=DEBUG") {
		t.Fatalf("DEBUG lines though the provider does not accept HF's level:\n%s", e.logText())
	}
}
