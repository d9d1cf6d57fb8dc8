package domain

import (
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/provider"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func TestObserveAdvancesResult(t *testing.T) {
	cases := []struct {
		name        string
		start       Machine
		obs         Observation
		wantResult  hf.Result
		wantReclaim bool
		wantChanged bool
		wantMsg     string
	}{
		{"pending stays executing", Machine{Result: hf.ResultExecuting, State: StatePending},
			Observation{State: provider.StatePending}, hf.ResultExecuting, false, false, ""},
		{"running without ip stays executing", Machine{Result: hf.ResultExecuting, State: StatePending},
			Observation{State: provider.StateRunning}, hf.ResultExecuting, false, true, ""},
		{"running with ip succeeds", Machine{Result: hf.ResultExecuting, State: StatePending},
			Observation{State: provider.StateRunning, PrivateIP: "10.0.1.5", PrivateDNS: "ip-10-0-1-5.ec2.internal"}, hf.ResultSucceed, false, true, ""},
		{"terminated while pending fails and is reclaimed", Machine{Result: hf.ResultExecuting, State: StatePending},
			Observation{State: provider.StateTerminated, StateReason: "Server.InternalError"}, hf.ResultFail, true, true, "terminated before it was usable (Server.InternalError)"},
		{"stopped outside HF after success is reclaimed", Machine{Result: hf.ResultSucceed, State: StateRunning, PrivateIP: "10.0.0.1"},
			Observation{State: provider.StateStopped}, hf.ResultSucceed, true, true, ""},
		{"terminated by ohfp is not reclaimed", Machine{Result: hf.ResultSucceed, State: StateRunning, TerminateSent: true},
			Observation{State: provider.StateTerminated}, hf.ResultSucceed, false, true, ""},
		{"returned by HF is not reclaimed", Machine{Result: hf.ResultSucceed, State: StateRunning, ReturnID: "ret-1"},
			Observation{State: provider.StateShuttingDown}, hf.ResultSucceed, false, true, ""},
		{"succeed never goes back", Machine{Result: hf.ResultSucceed, State: StateRunning, PrivateIP: "10.0.0.1"},
			Observation{State: provider.StatePending}, hf.ResultSucceed, false, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.start
			changed := m.Observe(c.obs, t0)
			if m.Result != c.wantResult {
				t.Errorf("result = %q, want %q", m.Result, c.wantResult)
			}
			_, reclaimed := m.Reclaim(t0)
			if reclaimed != c.wantReclaim {
				t.Errorf("reclaimed = %v, want %v", reclaimed, c.wantReclaim)
			}
			if changed != c.wantChanged {
				t.Errorf("changed = %v, want %v", changed, c.wantChanged)
			}
			if c.wantMsg != "" && !strings.Contains(m.Message, c.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", m.Message, c.wantMsg)
			}
		})
	}
}

func TestCapacityRelease(t *testing.T) {
	m := Machine{Result: hf.ResultSucceed, State: StateRunning, Handle: "sfr-1", PrivateIP: "10.0.0.1"}
	if m.WantsCapacityRelease() {
		t.Fatal("a running machine needs no release")
	}
	m.Observe(Observation{State: provider.StateTerminated, StateReason: "Server.SpotInstanceTermination"}, t0)
	if !m.WantsCapacityRelease() {
		t.Fatal("a fleet machine the cloud took back must lower the fleet's capacity")
	}
	m.CapacityReleased = true
	if m.WantsCapacityRelease() {
		t.Fatal("released once")
	}
	r := Machine{Result: hf.ResultSucceed, State: StateRunning, Handle: "sfr-1", ReturnID: "ret-1"}
	r.Observe(Observation{State: provider.StateTerminated}, t0)
	if r.WantsCapacityRelease() {
		t.Fatal("a returned machine's capacity is released with its return")
	}
	// Returned after an interruption notice and left to the cloud, which
	// took it: no Release ran, so the fleet's capacity still counts it.
	left := Machine{Result: hf.ResultSucceed, State: StateRunning, Handle: "sfr-1", ReturnID: "ret-1", InterruptAt: t0}
	if left.WantsCapacityRelease() {
		t.Fatal("still running: nothing to release yet")
	}
	left.Observe(Observation{State: provider.StateTerminated, StateReason: "Server.SpotInstanceTermination"}, t0.Add(2*time.Minute))
	if !left.WantsCapacityRelease() {
		t.Fatal("a returned machine the cloud reclaimed before ohfp's termination call must lower the fleet's capacity")
	}
	left.TerminateSent, left.CapacityReleased = true, false
	if left.WantsCapacityRelease() {
		t.Fatal("ohfp's own Release lowered it already")
	}
}

func TestLeftToCloud(t *testing.T) {
	base := Machine{Result: hf.ResultSucceed, State: StateRunning, Spot: true, ReturnID: "ret-1", InterruptAt: t0}
	cases := []struct {
		name string
		edit func(m *Machine)
		at   time.Duration // after the notice
		want bool
	}{
		{"returned during the notice", func(*Machine) {}, 30 * time.Second, true},
		{"shutting down by the cloud", func(m *Machine) { m.State = StateShuttingDown }, 150 * time.Second, true},
		{"just before the leeway ends", func(*Machine) {}, ReclaimLeeway - time.Second, true},
		{"the leeway is over", func(*Machine) {}, ReclaimLeeway, false},
		{"no notice", func(m *Machine) { m.InterruptAt = time.Time{} }, 30 * time.Second, false},
		{"not returned", func(m *Machine) { m.ReturnID = "" }, 30 * time.Second, false},
		{"stopped instead", func(m *Machine) { m.State = StateStopped }, 30 * time.Second, false},
		{"gone", func(m *Machine) { m.State = StateTerminated }, 30 * time.Second, false},
		{"ohfp already terminating", func(m *Machine) { m.TerminateSent = true }, 30 * time.Second, false},
	}
	for _, c := range cases {
		m := base
		c.edit(&m)
		if got := m.LeftToCloud(t0.Add(c.at)); got != c.want {
			t.Errorf("%s: LeftToCloud = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestVanish(t *testing.T) {
	m := Machine{Result: hf.ResultSucceed, State: StateRunning}
	if !m.Vanish(t0) {
		t.Fatal("first vanish should report a change")
	}
	if m.Vanish(t0) {
		t.Fatal("second vanish should not")
	}
	if g, ok := m.Reclaim(t0.Add(time.Hour)); !ok || g != 0 {
		t.Fatalf("reclaim = %d,%v; want 0,true", g, ok)
	}
	if m.Live() || m.EndedAt.IsZero() {
		t.Fatalf("vanished machine must be ended: %+v", m)
	}
}

func TestPendingTimeout(t *testing.T) {
	m := Machine{Result: hf.ResultExecuting, State: StatePending, LaunchTime: t0}
	if m.PendingExpired(t0.Add(179*time.Second), 180*time.Second) {
		t.Fatal("not yet expired at 179 s")
	}
	if !m.PendingExpired(t0.Add(181*time.Second), 180*time.Second) {
		t.Fatal("expired at 181 s")
	}
	m.GiveUp(180 * time.Second)
	if m.Result != hf.ResultFail || !m.Doomed || !m.WantsTermination() || !strings.Contains(m.Message, "180 s") {
		t.Fatalf("give up: %+v", m)
	}
	m.Observe(Observation{State: provider.StateTerminated}, t0.Add(200*time.Second))
	if _, ok := m.Reclaim(t0); ok {
		t.Fatal("a machine ohfp gave up on is not a reclaim")
	}
}

func TestSpotGraceShrinks(t *testing.T) {
	m := Machine{Result: hf.ResultSucceed, State: StateRunning, InterruptAt: t0}
	for _, c := range []struct {
		after time.Duration
		want  int
	}{{0, 120}, {25 * time.Second, 95}, {119 * time.Second, 1}, {5 * time.Minute, 0}} {
		g, ok := m.Reclaim(t0.Add(c.after))
		if !ok || g != c.want {
			t.Errorf("after %v: grace %d,%v want %d", c.after, g, ok, c.want)
		}
	}
}

func mach(result hf.Result, weight int) *Machine {
	return &Machine{Result: result, Weight: weight, State: StateRunning}
}

func TestAcquireStatus(t *testing.T) {
	cases := []struct {
		name   string
		req    Request
		ms     []*Machine
		status hf.Status
		msg    string
	}{
		{"queued", Request{Phase: PhaseQueued, Units: 2}, nil, hf.StatusRunning, "launching"},
		{"queued with retry note", Request{Phase: PhaseQueued, RetryNote: "AWS throttling, retrying in 8 s"}, nil, hf.StatusRunning, "retrying in 8 s"},
		{"failed launch", Request{Phase: PhaseFailed, LaunchError: "RunInstances: InvalidAMIID.NotFound"}, nil, hf.StatusCompleteWithError, "InvalidAMIID"},
		{"starting", Request{Phase: PhaseLaunched, Units: 2}, []*Machine{mach(hf.ResultSucceed, 1), mach(hf.ResultExecuting, 1)}, hf.StatusRunning, "1 of 2 units"},
		{"complete", Request{Phase: PhaseLaunched, Units: 2}, []*Machine{mach(hf.ResultSucceed, 1), mach(hf.ResultSucceed, 1)}, hf.StatusComplete, "2 of 2"},
		{"weighted complete", Request{Phase: PhaseLaunched, Units: 4}, []*Machine{mach(hf.ResultSucceed, 2), mach(hf.ResultSucceed, 2)}, hf.StatusComplete, "4 of 4"},
		{"one failed", Request{Phase: PhaseLaunched, Units: 2}, []*Machine{mach(hf.ResultSucceed, 1), mach(hf.ResultFail, 1)}, hf.StatusCompleteWithError, "1 machine failed"},
		{"shortfall", Request{Phase: PhaseLaunched, Units: 3, Shortfall: "InsufficientInstanceCapacity"}, []*Machine{mach(hf.ResultSucceed, 1)}, hf.StatusCompleteWithError, "InsufficientInstanceCapacity"},
		{"launched nothing yet", Request{Phase: PhaseLaunched, Units: 1}, nil, hf.StatusCompleteWithError, "0 of 1"},
		{"fleet filling", Request{Phase: PhaseLaunched, Units: 4, Handle: "fleet-1"}, []*Machine{mach(hf.ResultSucceed, 2)}, hf.StatusRunning, "waiting for fleet-1"},
		{"fleet capped short", Request{Phase: PhaseLaunched, Units: 4, Handle: "fleet-1", Shortfall: "InsufficientInstanceCapacity: no c5.large"}, []*Machine{mach(hf.ResultSucceed, 2)}, hf.StatusCompleteWithError, "2 of 4 units running; InsufficientInstanceCapacity"},
		{"fleet weighted complete", Request{Phase: PhaseLaunched, Units: 4, Handle: "fleet-1"}, []*Machine{mach(hf.ResultSucceed, 2), mach(hf.ResultSucceed, 2)}, hf.StatusComplete, "4 of 4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, msg := AcquireStatus(&c.req, c.ms)
			if st != c.status || !strings.Contains(msg, c.msg) {
				t.Fatalf("got %q %q; want %q containing %q", st, msg, c.status, c.msg)
			}
		})
	}
}

func TestReturnStatus(t *testing.T) {
	r := &Request{Kind: KindReturn, Unknown: []string{"host-x"}}
	a := &Machine{State: StateShuttingDown}
	b := &Machine{State: StateTerminated}
	st, msg := ReturnStatus(r, []*Machine{a, b})
	if st != hf.StatusRunning || !strings.Contains(msg, "1 of 2") || !strings.Contains(msg, "host-x") {
		t.Fatalf("got %q %q", st, msg)
	}
	a.State = StateGone
	if st, _ := ReturnStatus(r, []*Machine{a, b}); st != hf.StatusComplete {
		t.Fatalf("all gone: %q", st)
	}
	if ReturnResult(nil) != hf.ResultSucceed {
		t.Fatal("a machine unknown to the store counts as gone")
	}
}
