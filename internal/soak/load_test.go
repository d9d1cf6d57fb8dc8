package soak

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/hfdriver"
)

// TestLoad runs 50 HF callers in parallel, each a loop of `<op>.sh -f FILE`
// processes (mostly getRequestStatus, getAvailableTemplates and
// getReturnRequests, some requestMachines and requestReturnMachines), for
// 60 s under OHFP_SOAK=1 (5 s otherwise) while reconcile passes run. No
// call may fail, and the -race daemon must report no race (checked in its
// log when the test ends).
func TestLoad(t *testing.T) {
	dur := 5 * time.Second
	if soakMode() {
		dur = 60 * time.Second
	}
	if v := os.Getenv("OHFP_SOAK_LOAD"); v != "" {
		d, err := time.ParseDuration(v)
		must(t, err)
		dur = d
	}
	const callers = 50
	c := startCloud(t, 200*time.Millisecond, 200*time.Millisecond)
	e := newEnv(t, c, daemonOpts{maxNumber: 100000})
	e.start()
	seedIDs := []string{e.request(tplOnDemand, 2), e.request(tplSpot, 2)}
	e.waitFinal(seedIDs, 60*time.Second)
	reconcilesBefore, _ := e.statusReport()["reconciles"].(float64)

	var mu sync.Mutex
	ids := append([]string(nil), seedIDs...)
	var held []hfdriver.Machine // machines to return, each once
	returned := map[string]bool{}
	calls := map[string]int{}
	var errs []string

	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	for w := 0; w < callers; w++ {
		p := e.newPlugin(fmt.Sprintf("hf-load-%02d", w))
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			for time.Now().Before(stop) {
				ctx, cancel := callCtx()
				var op string
				var err error
				mu.Lock()
				someIDs := append([]string(nil), ids[max(0, len(ids)-5):]...)
				var ret []hfdriver.Machine
				mu.Unlock()
				switch x := rng.IntN(100); {
				case x < 40:
					op = "getRequestStatus"
					var st hfdriver.Status
					err = p.Call(ctx, op, hfdriver.StatusInput(someIDs...), &st)
					if err == nil {
						mu.Lock()
						for _, r := range st.Requests {
							if r.Status == "complete" && rng.IntN(4) == 0 {
								for _, m := range r.Machines {
									if !returned[m.MachineID] && !contains(held, m) {
										held = append(held, m)
									}
								}
							}
						}
						mu.Unlock()
					}
				case x < 65:
					op = "getAvailableTemplates"
					err = p.Call(ctx, op, map[string]any{}, nil)
				case x < 88:
					op = "getReturnRequests"
					mu.Lock()
					ms := append([]hfdriver.Machine(nil), held...)
					mu.Unlock()
					err = p.Call(ctx, op, hfdriver.MachinesInput(ms), nil)
				case x < 96:
					op = "requestMachines"
					var rep hfdriver.RequestReply
					tpl := tplOnDemand
					if rng.IntN(2) == 0 {
						tpl = tplSpot
					}
					err = p.Call(ctx, op, requestInput(tpl, 1), &rep)
					if err == nil {
						mu.Lock()
						ids = append(ids, rep.RequestID)
						mu.Unlock()
					}
				default:
					op = "requestReturnMachines"
					mu.Lock()
					if len(held) > 0 {
						ret, held = held[:1], held[1:]
						returned[ret[0].MachineID] = true
					}
					mu.Unlock()
					if len(ret) == 0 {
						op = "getAvailableTemplates"
						err = p.Call(ctx, op, map[string]any{}, nil)
						break
					}
					var rep hfdriver.RequestReply
					err = p.Call(ctx, op, hfdriver.MachinesInput(ret), &rep)
					if err == nil {
						mu.Lock()
						ids = append(ids, rep.RequestID)
						mu.Unlock()
					}
				}
				cancel()
				mu.Lock()
				calls[op]++
				if err != nil {
					errs = append(errs, op+": "+err.Error())
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()

	total := 0
	for _, n := range calls {
		total += n
	}
	rep := e.statusReport()
	reconciles, _ := rep["reconciles"].(float64)
	if !e.alive() {
		t.Fatal("ohfpd died under load")
	}
	// Everything asked for during the load finishes.
	final := e.waitFinal(ids, 90*time.Second)
	statuses := map[string]int{}
	for _, s := range final {
		statuses[s.Status]++
	}
	var ops []string
	for op, n := range calls {
		ops = append(ops, fmt.Sprintf("%s=%d", op, n))
	}
	sort.Strings(ops)
	report(t, map[string]any{
		"callers": callers, "seconds": dur.Seconds(), "calls": total, "callsByOperation": calls,
		"errors": len(errs), "reconcilesDuringLoad": int(reconciles - reconcilesBefore), "requests": len(ids),
		"finalStatuses": statuses, "race": raceEnabled,
	})
	t.Logf("load: %d callers, %s, %d calls (%s), %d errors, %d reconcile passes", callers, dur, total, strings.Join(ops, " "), len(errs), int(reconciles-reconcilesBefore))
	if len(errs) > 0 {
		t.Errorf("%d of %d calls failed under load, e.g.:\n  %s", len(errs), total, strings.Join(errs[:min(10, len(errs))], "\n  "))
	}
	// active_interval is 200 ms: one pass per 8 s of load is a 40-fold
	// margin. Starved, the reconciler made one or two passes a minute; fed,
	// a pass under 50 callers and -race on 2 cores takes about 5 s (it
	// gives way to HF's calls, and each idle interval also asks
	// DescribeInstanceStatus for host health).
	if want := int(dur / (8 * time.Second)); int(reconciles-reconcilesBefore) < max(want, 1) {
		t.Errorf("BUG (see the soak report): only %d reconcile passes ran during %s of load (active_interval 200ms); want at least %d: every requestMachines and every finished launch re-arms the reconcile timer, so a steady stream of them starves the reconciler",
			int(reconciles-reconcilesBefore), dur, max(want, 1))
	}
	// A healthy cloud: every request completes with its machine.
	var failed []string
	for id, s := range final {
		if s.Status != "complete" {
			failed = append(failed, fmt.Sprintf("%s: %s %q", id, s.Status, s.Message))
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		t.Errorf("BUG (see the soak report): %d of %d requests did not complete in a healthy cloud, e.g.:\n  %s", len(failed), len(final), strings.Join(failed[:min(5, len(failed))], "\n  "))
	}
}

func contains(ms []hfdriver.Machine, m hfdriver.Machine) bool {
	for _, x := range ms {
		if x.MachineID == m.MachineID {
			return true
		}
	}
	return false
}
