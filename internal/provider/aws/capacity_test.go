package awsprov

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/clock"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

func TestCapacityMemoryRanksRememberedPoolsLast(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	cm := NewCapacityMemory(3*time.Minute, clk)
	p := &Provider{capmem: cm, log: slog.New(slog.DiscardHandler)}
	tpl := template.Template{TemplateID: "t", VMTypes: template.Weights{{Type: "c5.large", Weight: 1}, {Type: "m5.large", Weight: 1}},
		SubnetIDs: []string{"subnet-a", "subnet-b"}}
	spec := provider.LaunchSpec{ClientToken: "req-1", Template: tpl}
	all := []int{0, 1, 2, 3} // c5/a, c5/b, m5/a, m5/b

	if got := p.Rank(spec, slices.Clone(all)); !slices.Equal(got, all) {
		t.Fatalf("nothing remembered: %v", got)
	}
	// RunInstances in c5.large/subnet-a says no capacity: remembered.
	one, _ := p.Alternative(spec, 0)
	p.rememberLaunch(one, "InsufficientInstanceCapacity", "We currently do not have sufficient c5.large capacity")
	if got := p.Rank(spec, slices.Clone(all)); !slices.Equal(got, []int{1, 2, 3, 0}) {
		t.Fatalf("c5.large in subnet-a remembered: %v, want it last", got)
	}
	// Across templates: another template with the same pair skips it too,
	// but not the same pair at the other price type.
	spot := tpl
	spot.PriceType = template.PriceSpot
	if got := p.Rank(provider.LaunchSpec{Template: spot}, slices.Clone(all)); !slices.Equal(got, all) {
		t.Fatalf("spot is another pool: %v", got)
	}
	clk.Advance(time.Minute)
	two, _ := p.Alternative(spec, 3)
	p.rememberLaunch(two, "InsufficientInstanceCapacity", "no")
	// Account limits are no pool's.
	three, _ := p.Alternative(spec, 1)
	p.rememberLaunch(three, "VcpuLimitExceeded", "no")
	if got := p.Rank(spec, []int{1, 2, 3, 0}); !slices.Equal(got, []int{1, 2, 0, 3}) {
		t.Fatalf("two remembered: %v, want the soonest forgotten (0) before 3", got)
	}
	// Every pool remembered: all still tried (AWS is asked), none dropped.
	for _, i := range []int{1, 2} {
		s, _ := p.Alternative(spec, i)
		p.rememberLaunch(s, "InsufficientInstanceCapacity", "no")
	}
	if got := p.Rank(spec, slices.Clone(all)); len(got) != 4 || got[0] != 0 {
		t.Fatalf("all remembered: %v, want all four, the soonest forgotten first", got)
	}
	us := p.Unavailable()
	if len(us) != 4 || us[0].InstanceType != "c5.large" || us[0].Where != "subnet-a" || us[0].PriceType != "ondemand" ||
		!us[0].Until.Equal(clk.Now().Add(2*time.Minute)) {
		t.Fatalf("unavailable %+v", us)
	}
	// Forgotten after the memory's time.
	clk.Advance(2 * time.Minute)
	if us := p.Unavailable(); len(us) != 3 {
		t.Fatalf("after 3 minutes the first is forgotten: %+v", us)
	}
	clk.Advance(2 * time.Minute)
	if got := p.Rank(spec, slices.Clone(all)); !slices.Equal(got, all) || len(p.Unavailable()) != 0 {
		t.Fatalf("all forgotten: %v %+v", got, p.Unavailable())
	}
	// Off: nothing remembered.
	cm.SetTTL(0)
	p.rememberLaunch(one, "InsufficientInstanceCapacity", "no")
	if len(p.Unavailable()) != 0 {
		t.Fatal("capacity_memory 0 remembers nothing")
	}
}

func TestCapacityMemoryBoundedAndConcurrent(t *testing.T) {
	cm := NewCapacityMemory(time.Hour, clock.NewFake(time.Now()))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range maxRemembered {
				cm.Remember(fmt.Sprintf("t%d.large", i), fmt.Sprintf("subnet-%d", g), "ondemand", "x")
				cm.until("t1.large", "subnet-0", "ondemand")
				if i%100 == 0 {
					cm.List()
				}
			}
		}()
	}
	wg.Wait()
	if n := len(cm.List()); n != maxRemembered {
		t.Fatalf("%d pools remembered, want the bound %d", n, maxRemembered)
	}
}

// A pool EC2 launches in again is forgotten at once: status stops naming
// it, and the next launch does not try it last.
func TestCapacityMemoryForgetsAPoolThatLaunches(t *testing.T) {
	ctx := context.Background()
	p, r, _ := newSim(t, Settings{RetryAttempts: 1})
	p.capmem = NewCapacityMemory(3*time.Minute, clock.Real{})
	var subnet string
	for _, s := range r.Subnets() {
		subnet = s
		break
	}
	tpl := template.Template{TemplateID: "tpl", ImageID: al2023, VMType: "c5.large", SubnetIDs: []string{subnet}}
	p.capmem.Remember("c5.large", subnet, "ondemand", "InsufficientInstanceCapacity: test")
	if n := len(p.Unavailable()); n != 1 {
		t.Fatalf("%d pools remembered, want 1", n)
	}
	if _, err := p.Launch(ctx, provider.LaunchSpec{RequestID: "req-1", ClientToken: "t1", Template: tpl, Units: 1, Tags: simTags("blue", "req-1")}); err != nil {
		t.Fatal(err)
	}
	if u := p.Unavailable(); len(u) != 0 {
		t.Fatalf("still remembered after a launch there: %+v", u)
	}
}
