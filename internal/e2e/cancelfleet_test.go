package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/apitype"
)

// Issue 18, finding 1, with the real binaries: ohfp cancel of a maintain
// EC2 Fleet request moments after requestMachines, while EC2 shows the
// fleet and its instances only after a delay (eventual consistency on).
// Whatever the race gives (capped short, or the fleet at its target
// before the cap), what the cancel, the request's message and its history
// say must match what runs in the region, and nothing the fleet launched
// is terminated, unless the cancel came while CreateFleet was under way
// and said that what it brings is terminated.
func TestCancelFleetUnderEventualConsistency(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("operator commands: needs root")
	}
	e := newFleetEnv(t)
	e.sim("consistency", map[string]any{"window": int64(3 * time.Second)})
	id := e.request("EC2Fleet-maintain-ondemand", 10)
	out, errOut, code := e.ohfp(0, "cancel", id)
	if code != 0 || strings.Contains(out, "at the 0 units") {
		t.Fatalf("cancel: exit %d %s%s", code, out, errOut)
	}
	st := e.waitFinal(id).Requests[0]
	if strings.Contains(out, "a launch call already made") {
		// The cancel came while CreateFleet was under way: as it said,
		// what that call brings is terminated, and HF is given nothing.
		if len(st.Machines) != 0 || st.Status != "complete_with_error" {
			t.Fatalf("cancelled during its launch call: HF must hold nothing: %+v", st)
		}
		deadline := time.Now().Add(30 * time.Second)
		for len(e.tagged(id, "pending", "running")) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("cancelled during its launch call, yet %d instances still run 30 s on", len(e.tagged(id, "pending", "running")))
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Logf("cancelled during CreateFleet: %q; every instance it brought terminated", st.Message)
		return
	}
	time.Sleep(3 * time.Second) // past the visibility window: all the fleet launched shows
	live := e.tagged(id, "pending", "running")
	var liveUnits int
	for _, in := range live {
		liveUnits += map[string]int{"m5.large": 1, "m5.xlarge": 2}[string(in.InstanceType)]
	}
	if len(e.tagged(id, "shutting-down", "terminated")) != 0 {
		t.Fatalf("a cancel without --return terminated instances the fleet launched")
	}
	if len(st.Machines) != len(live) {
		t.Fatalf("HF holds %d machines, the region runs %d for the request: %+v", len(st.Machines), len(live), st)
	}
	want := fmt.Sprintf("%d of 10 units running", liveUnits)
	if !strings.HasPrefix(st.Message, want) {
		t.Fatalf("request's message %q; the region runs %d units", st.Message, liveUnits)
	}
	out, errOut, code = e.ohfp(0, "show", id, "--json")
	if code != 0 {
		t.Fatalf("show: exit %d %s", code, errOut)
	}
	var shown apitype.Shown
	must(t, json.Unmarshal([]byte(out), &shown))
	var hist []string
	for _, n := range shown.Request.History {
		hist = append(hist, n.Action+": "+n.Text)
	}
	all := strings.Join(hist, "\n")
	switch {
	case st.Status == "complete":
		if liveUnits < 10 || !strings.Contains(all, "too late") {
			t.Fatalf("complete with %d units; history:\n%s", liveUnits, all)
		}
	case st.Status == "complete_with_error":
		if !strings.Contains(all, fmt.Sprintf("capped at %d unit", liveUnits)) || !strings.Contains(st.Message, "cancelled by the operator") {
			t.Fatalf("capped with %d units running: %+v; history:\n%s", liveUnits, st, all)
		}
	default:
		t.Fatalf("final status %+v", st)
	}
	t.Logf("status %s %q; history:\n%s", st.Status, st.Message, all)
}
