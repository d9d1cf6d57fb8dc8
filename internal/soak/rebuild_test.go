package soak

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/hfdriver"
)

// TestStateDirDeleted loses ohfpd's state directory twice: once restarting
// on an empty store (rebuilt by the first reconcile pass), once with
// --rebuild-from-cloud (rebuilt before serving). Each time every acquire
// request id with live machines keeps answering with exactly those
// machines, nothing is launched again, availability is unchanged, and the
// rebuilt machines can be returned.
func TestStateDirDeleted(t *testing.T) {
	t.Parallel() // its own region and daemon; mostly waiting
	c := startCloud(t, 200*time.Millisecond, 200*time.Millisecond)
	e := newEnv(t, c, daemonOpts{maxNumber: 20})
	e.start()

	a := e.request(tplOnDemand, 3)
	b := e.request(tplSpot, 2)
	partly := e.request(tplOnDemand, 2)
	fin := e.waitFinal([]string{a, b, partly}, 60*time.Second)
	for id, s := range fin {
		if s.Status != "complete" {
			t.Fatalf("request %s: %+v", id, s)
		}
	}
	// HF returns one machine of the third request: one live machine remains.
	ret := fin[partly].Machines[:1]
	var rep hfdriver.RequestReply
	e.call("requestReturnMachines", hfdriver.MachinesInput(ret), &rep)
	if s := e.waitFinal([]string{rep.RequestID}, 30*time.Second)[rep.RequestID]; s.Status != "complete" {
		t.Fatalf("return: %+v", s)
	}
	want := map[string][]string{
		a:      machineIDs(fin[a].Machines),
		b:      machineIDs(fin[b].Machines),
		partly: machineIDs(fin[partly].Machines[1:]),
	}
	ids := []string{a, b, partly}
	availBefore := e.available()
	launchedBefore := len(c.instances())

	check := func(round string, st map[string]statusEntry) {
		t.Helper()
		for _, id := range ids {
			s := st[id]
			got := machineIDs(liveMachines(s.Machines))
			if s.Status != "complete" || strings.Join(got, ",") != strings.Join(want[id], ",") {
				t.Errorf("%s: request %s answers %s %q with live machines %v, want complete with %v", round, id, s.Status, s.Message, got, want[id])
			}
			for _, m := range liveMachines(s.Machines) {
				if m.Result != "succeed" || m.PrivateIPAddress == nil || m.Name == "" {
					t.Errorf("%s: rebuilt machine %+v", round, m)
				}
			}
		}
		if got := e.available(); got != availBefore {
			t.Errorf("%s: availability %v after the rebuild, %v before", round, got, availBefore)
		}
		if n := len(c.instances()); n != launchedBefore {
			t.Errorf("%s: the cloud holds %d instances, %d before: ohfpd launched again", round, n, launchedBefore)
		}
	}

	// 1. Empty store at start: the first pass rebuilds from the tags.
	e.stop()
	must(t, os.RemoveAll(e.state))
	e.start()
	deadline := time.Now().Add(30 * time.Second)
	var st map[string]statusEntry
	for {
		st = e.statusMap(ids...)
		done := true
		for _, id := range ids {
			if len(liveMachines(st[id].Machines)) != len(want[id]) || st[id].Status == "running" {
				done = false
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	check("empty store", st)

	// 2. --rebuild-from-cloud: rebuilt before the socket serves, so the
	// very first call answers.
	e.stop()
	must(t, os.RemoveAll(e.state))
	e.start("--rebuild-from-cloud")
	check("--rebuild-from-cloud", e.statusMap(ids...))

	// The rebuilt machines are the daemon's to return.
	var back []hfdriver.Machine
	for _, id := range ids {
		back = append(back, liveMachines(st[id].Machines)...)
	}
	e.call("requestReturnMachines", hfdriver.MachinesInput(back), &rep)
	if s := e.waitFinal([]string{rep.RequestID}, 30*time.Second)[rep.RequestID]; s.Status != "complete" || len(s.Machines) != len(back) {
		t.Fatalf("returning the rebuilt machines: %+v", s)
	}
	c.waitAllTerminated(30*time.Second, 100*time.Millisecond, "returning every rebuilt machine")
	report(t, map[string]any{"stateDirDeletions": 2, "requestsRebuilt": len(ids), "machinesRebuilt": len(back), "relaunched": 0})
}

func machineIDs(ms []hfdriver.Machine) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.MachineID)
	}
	sort.Strings(out)
	return out
}

func liveMachines(ms []hfdriver.Machine) []hfdriver.Machine {
	var out []hfdriver.Machine
	for _, m := range ms {
		if m.Status == "running" || m.Status == "pending" {
			out = append(out, m)
		}
	}
	return out
}

func (e *env) statusMap(ids ...string) map[string]statusEntry {
	e.t.Helper()
	out := map[string]statusEntry{}
	for _, r := range e.status(ids...).Requests {
		out[r.RequestID] = statusEntry{Status: r.Status, Message: r.Message, Machines: r.Machines}
	}
	return out
}

// available returns getAvailableTemplates' availableNumber per template.
func (e *env) available() string {
	e.t.Helper()
	var tr struct {
		Templates []struct {
			TemplateID      string `json:"templateId"`
			AvailableNumber int    `json:"availableNumber"`
		} `json:"templates"`
	}
	e.call("getAvailableTemplates", map[string]any{}, &tr)
	var parts []string
	for _, x := range tr.Templates {
		parts = append(parts, fmt.Sprintf("%s=%d", x.TemplateID, x.AvailableNumber))
	}
	return strings.Join(parts, " ")
}
