package awsprov

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// The action gate is asked before every attempt of a call that changes the
// cloud, including the SDK's retries of a throttled one; reads pass.
func TestActionGate(t *testing.T) {
	ctx := context.Background()
	p, r, _ := newSim(t, Settings{RetryAttempts: 3})
	var subnet string
	for _, s := range r.Subnets() {
		subnet = s
		break
	}
	tpl := template.Template{TemplateID: "tpl", ImageID: al2023, VMType: "c5.large", SubnetIDs: []string{subnet}}
	spec := provider.LaunchSpec{RequestID: "req-1", ClientToken: "t1", Template: tpl, Units: 1, Tags: simTags("blue", "req-1")}

	// Allowed for the first attempt only (asked in the middleware and at
	// the send): the SDK's retry of the throttled RunInstances must ask
	// again, and is refused.
	var asked atomic.Int32
	p.SetActionGate(func() error {
		if asked.Add(1) > 2 {
			return errors.New("this host does not hold the lease")
		}
		return nil
	})
	r.SetFaults(awssim.Faults{ThrottleRate: 1, Actions: []string{"RunInstances"}})
	_, err := p.Launch(ctx, spec)
	if err == nil || provider.KindOf(err) != provider.Transient || !strings.Contains(err.Error(), "does not hold the lease") {
		t.Fatalf("Launch = %v (kind %v), want a Transient refusal naming the lease", err, provider.KindOf(err))
	}
	if got := r.Calls()["RunInstances"]; got != 1 {
		t.Fatalf("RunInstances reached the region %d times, want 1 (the retry must not be sent)", got)
	}
	// Reads pass the refusing gate.
	if _, err := p.List(ctx, "blue"); err != nil {
		t.Fatalf("List with the gate refusing: %v", err)
	}
	r.SetFaults(awssim.Faults{})
	p.SetActionGate(nil)
	if _, err := p.Launch(ctx, spec); err != nil {
		t.Fatalf("Launch without a gate: %v", err)
	}
}

// Frozen between the middleware's check and the send: the gate is asked
// again as the body is read, and the request does not leave.
func TestActionGateAtSend(t *testing.T) {
	ctx := context.Background()
	p, r, _ := newSim(t, Settings{RetryAttempts: 1})
	var subnet string
	for _, s := range r.Subnets() {
		subnet = s
		break
	}
	tpl := template.Template{TemplateID: "tpl", ImageID: al2023, VMType: "c5.large", SubnetIDs: []string{subnet}}
	spec := provider.LaunchSpec{RequestID: "req-1", ClientToken: "t1", Template: tpl, Units: 1, Tags: simTags("blue", "req-1")}
	// Resolve the AMI first (its reads pass the gate anyway).
	p.SetActionGate(func() error { return nil })
	if _, err := p.List(ctx, "blue"); err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	p.SetActionGate(func() error {
		if asked.Add(1)%2 == 0 { // the second question of each attempt: at the send
			return errors.New("this host does not hold the lease")
		}
		return nil
	})
	_, err := p.Launch(ctx, spec)
	if err == nil || provider.KindOf(err) != provider.Transient {
		t.Fatalf("Launch refused at the send = %v (kind %v), want Transient", err, provider.KindOf(err))
	}
	if got := r.Calls()["RunInstances"]; got != 0 {
		t.Fatalf("RunInstances reached the region %d times, want 0", got)
	}
	if asked.Load() < 2 {
		t.Fatalf("gate asked %d times, want the middleware and the send", asked.Load())
	}
}
