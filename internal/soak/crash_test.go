package soak

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/hfdriver"
)

// crashDropAnswerRate is the share of calls whose answer the region drops
// after running them, throughout the crash soak.
const crashDropAnswerRate = 0.05

// Moments at which the crash soak kills ohfpd.
const (
	killAfterAnswer   = "0-5ms after requestMachines answered (between the durable write and the cloud call)"
	killDuringLaunch  = "5-80ms after requestMachines answered (during the cloud call)"
	killDuringRequest = "while requestMachines is being answered"
	killDuringReturn  = "0-20ms after requestReturnMachines answered (during the terminate)"
	killDuringPass    = "150-700ms into the cycle (during a reconcile pass)"
)

var killMoments = []string{killAfterAnswer, killDuringLaunch, killDuringRequest, killDuringReturn, killDuringPass}

// acquire is an answered requestMachines.
type acquire struct {
	tpl      string
	units    int
	status   string
	message  string
	machines []hfdriver.Machine
	returned map[string]bool // machine ids HF returned
}

// crashRun is the workload and bookkeeping of one crash soak.
type crashRun struct {
	t   *testing.T
	e   *env
	rng *rand.Rand

	acquires  map[string]*acquire
	order     []string            // acquire ids in answer order
	returns   map[string][]string // answered return id -> machine ids
	returned  map[string]bool     // machine ids in answered returns
	reclaimed map[string]string   // machine id -> "terminated" or "spot-interrupted"
	kills     map[string]int
	bgResults chan bgResult // a requestMachines started before a kill
	bgPlugin  *hfdriver.Plugin
	lastBG    bgCall

	unanswered      int // requestMachines calls the kill cut off (no id reached HF)
	answeredLate    int // calls started before a kill and answered by the next daemon
	plainReturns    int
	returnsRejected int
}

type bgResult struct {
	id  string
	err error
}

// cyclesAndSeed are a randomised soak's cycles (small in make test, large
// with OHFP_SOAK=1, or OHFP_SOAK_CYCLES) and its seed (OHFP_SOAK_SEED to
// replay a run).
func cyclesAndSeed(t *testing.T, small, large int) (int, uint64) {
	t.Helper()
	cycles := small
	if soakMode() {
		cycles = large
	}
	if v := os.Getenv("OHFP_SOAK_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		must(t, err)
		cycles = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("OHFP_SOAK_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		must(t, err)
		seed = n
	}
	return cycles, seed
}

func TestCrashSoak(t *testing.T) {
	cycles, seed := cyclesAndSeed(t, 5, 100)
	t.Logf("crash soak: %d cycles, seed %d (OHFP_SOAK_SEED to replay)", cycles, seed)

	c := startCloud(t, 200*time.Millisecond, 200*time.Millisecond)
	// AWS as it is: eventual consistency (the simulator's default, 2 s)
	// and answers lost after the call ran, on every action.
	if w := c.consistencyWindow(); w <= 0 {
		t.Fatalf("the simulated region runs without eventual consistency")
	}
	c.setFaults(awssim.Faults{DropAnswerRate: crashDropAnswerRate})
	e := newEnv(t, c, daemonOpts{})
	r := &crashRun{
		t: t, e: e, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		acquires: map[string]*acquire{}, returns: map[string][]string{}, returned: map[string]bool{},
		reclaimed: map[string]string{}, kills: map[string]int{}, bgPlugin: e.newPlugin("hf-bg"),
	}

	for i := 0; i < cycles; i++ {
		e.start()
		r.collectBackground()
		r.refresh()
		// Some background work in every cycle: returns and reclaims.
		if r.rng.IntN(3) == 0 {
			r.returnSome(false)
		}
		if r.rng.IntN(3) == 0 {
			r.reclaimOne()
		}
		if r.rng.IntN(2) == 0 {
			tpl, n := r.pickTemplate()
			r.record(e.request(tpl, n), tpl, n)
		}
		moment := killMoments[i%len(killMoments)]
		if soakMode() {
			moment = killMoments[r.rng.IntN(len(killMoments))]
		}
		moment = r.act(moment)
		r.kills[moment]++
		e.kill(moment)
	}

	// Settle: one more start, then wait for every answered request.
	e.start()
	r.collectBackground()
	r.verify(cycles, seed)
}

// collectBackground waits for a requestMachines started before the last
// kill; it is answered (by the dying daemon or, after retrying the dial,
// by the new one) or fails with the connection cut.
func (r *crashRun) collectBackground() {
	if r.bgResults == nil {
		return
	}
	res := <-r.bgResults
	r.bgResults = nil
	if res.err != nil {
		r.unanswered++
		r.t.Logf("requestMachines cut off by the kill: %v", res.err)
		return
	}
	r.answeredLate++
	r.record(res.id, r.lastBG.tpl, r.lastBG.units)
}

func (r *crashRun) record(id, tpl string, units int) {
	if _, dup := r.acquires[id]; dup {
		r.t.Errorf("requestMachines answered the same id twice: %s", id)
	}
	r.acquires[id] = &acquire{tpl: tpl, units: units, status: "running", returned: map[string]bool{}}
	r.order = append(r.order, id)
}

func (r *crashRun) pickTemplate() (string, int) {
	tpl := tplOnDemand
	if r.rng.IntN(2) == 0 {
		tpl = tplSpot
	}
	return tpl, 1 + r.rng.IntN(3)
}

// act does the cycle's main action and returns the moment the kill hits.
func (r *crashRun) act(moment string) string {
	e := r.e
	switch moment {
	case killDuringReturn:
		if r.returnSome(true) {
			time.Sleep(time.Duration(r.rng.IntN(20_000)) * time.Microsecond)
			return moment
		}
		moment = killAfterAnswer // nothing to return yet
	case killDuringPass:
		r.reclaimOne()
		time.Sleep(150*time.Millisecond + time.Duration(r.rng.IntN(550))*time.Millisecond)
		return moment
	case killDuringRequest:
		tpl, n := r.pickTemplate()
		r.lastBG = bgCall{tpl: tpl, units: n}
		ch := make(chan bgResult, 1)
		r.bgResults = ch
		p := r.bgPlugin
		go func() {
			ctx, cancel := callCtx()
			defer cancel()
			var rep hfdriver.RequestReply
			err := p.Call(ctx, "requestMachines", requestInput(tpl, n), &rep)
			ch <- bgResult{id: rep.RequestID, err: err}
		}()
		// The client takes a few ms to start and connect: aim at the call.
		time.Sleep(time.Duration(2000+r.rng.IntN(15_000)) * time.Microsecond)
		return moment
	}
	tpl, n := r.pickTemplate()
	id := e.request(tpl, n)
	r.record(id, tpl, n)
	switch moment {
	case killAfterAnswer:
		time.Sleep(time.Duration(r.rng.IntN(5000)) * time.Microsecond)
	case killDuringLaunch:
		time.Sleep(5*time.Millisecond + time.Duration(r.rng.IntN(75_000))*time.Microsecond)
	}
	return moment
}

type bgCall struct {
	tpl   string
	units int
}

// refresh asks getRequestStatus about every answered acquire not final yet.
func (r *crashRun) refresh() {
	var ids []string
	for _, id := range r.order {
		if r.acquires[id].status == "running" {
			ids = append(ids, id)
		}
	}
	for i := 0; i < len(ids); i += 50 {
		st := r.e.status(ids[i:min(i+50, len(ids))]...)
		for _, s := range st.Requests {
			a := r.acquires[s.RequestID]
			a.status, a.message, a.machines = s.Status, s.Message, s.Machines
		}
	}
}

// holdable returns machines of finished acquires that HF holds (succeeded,
// not returned).
func (r *crashRun) holdable() []hfdriver.Machine {
	var out []hfdriver.Machine
	for _, id := range r.order {
		a := r.acquires[id]
		if a.status == "running" {
			continue
		}
		for _, m := range a.machines {
			if m.Result == "succeed" && !r.returned[m.MachineID] {
				out = append(out, m)
			}
		}
	}
	return out
}

// returnSome returns 1-3 machines HF holds; false if it holds none.
func (r *crashRun) returnSome(killAfter bool) bool {
	ms := r.holdable()
	if len(ms) == 0 {
		return false
	}
	r.rng.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
	ms = ms[:min(len(ms), 1+r.rng.IntN(3))]
	var rep hfdriver.RequestReply
	r.e.call("requestReturnMachines", hfdriver.MachinesInput(ms), &rep)
	if !strings.HasPrefix(rep.RequestID, "ret-") {
		r.t.Fatalf("requestReturnMachines answered %+v", rep)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.MachineID)
		r.returned[m.MachineID] = true
	}
	r.returns[rep.RequestID] = ids
	if !killAfter {
		r.plainReturns++
	}
	return true
}

// reclaimOne takes one machine HF holds back from the cloud side: a
// console termination, or a Spot interruption notice.
func (r *crashRun) reclaimOne() {
	var cands []hfdriver.Machine
	for _, m := range r.holdable() {
		if _, done := r.reclaimed[m.MachineID]; !done && m.Status == "running" {
			cands = append(cands, m)
		}
	}
	if len(cands) == 0 {
		return
	}
	m := cands[r.rng.IntN(len(cands))]
	if m.PriceType == "spot" && r.rng.IntN(2) == 0 {
		r.e.cloud.interruptSpot(m.MachineID)
		r.reclaimed[m.MachineID] = "spot-interrupted"
		return
	}
	r.e.cloud.terminate(m.MachineID)
	r.reclaimed[m.MachineID] = "terminated"
}

// verify lets the daemon settle and checks the invariants.
func (r *crashRun) verify(cycles int, seed uint64) {
	t, e := r.t, r.e
	var all []string
	all = append(all, r.order...)
	for id := range r.returns {
		all = append(all, id)
	}
	sort.Strings(all)
	final := e.waitFinal(all, 120*time.Second)

	// Let terminations and launches in the cloud settle.
	deadline := time.Now().Add(60 * time.Second)
	var insts []instanceRow
	for {
		insts = r.managed()
		busy := 0
		for _, in := range insts {
			if in.State == "pending" || in.State == "shutting-down" {
				busy++
			}
		}
		if busy == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%d instances still pending or shutting down after 60 s", busy)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	var lost, stuck, badFinal []string
	statuses := map[string]int{}
	for _, id := range all {
		s := final[id]
		statuses[s.Status]++
		switch {
		case strings.Contains(s.Message, "not known"):
			lost = append(lost, id)
		case s.Status == "running":
			stuck = append(stuck, id)
		case s.Status == "complete_with_error" && s.Message == "":
			badFinal = append(badFinal, id)
		case s.Status != "complete" && s.Status != "complete_with_error":
			badFinal = append(badFinal, id+" ("+s.Status+")")
		}
	}

	// Group the cloud's instances by the request that launched them.
	byReq := map[string][]instanceRow{}
	for _, in := range insts {
		byReq[in.RequestID] = append(byReq[in.RequestID], in)
	}
	var reqIDs []string
	for id := range byReq {
		reqIDs = append(reqIDs, id)
	}
	sort.Strings(reqIDs)
	owned := map[string]statusEntry{}
	for i := 0; i < len(reqIDs); i += 50 {
		st := e.status(reqIDs[i:min(i+50, len(reqIDs))]...)
		for _, s := range st.Requests {
			owned[s.RequestID] = statusEntry{Status: s.Status, Message: s.Message, Machines: s.Machines}
		}
	}
	rows := e.allRequests()

	var orphans, duplicates, unknownReqs []string
	machines, unheard := 0, 0
	for _, rid := range reqIDs {
		group := byReq[rid]
		machines += len(group)
		want := -1
		if a := r.acquires[rid]; a != nil {
			want = a.units
		} else if row, ok := rows[rid]; ok {
			want = row.Units // a request the kill kept from HF: the daemon knows its size
			for _, in := range group {
				if liveState(in.State) {
					unheard++
				}
			}
		}
		if rid == "" || want < 0 {
			unknownReqs = append(unknownReqs, fmt.Sprintf("%q (%d instances)", rid, len(group)))
		} else if len(group) > want {
			var ids []string
			for _, in := range group {
				ids = append(ids, in.ID+"/"+in.State)
			}
			duplicates = append(duplicates, fmt.Sprintf("%s asked %d, the cloud holds %d: %v", rid, want, len(group), ids))
		}
		reported := map[string]bool{}
		for _, m := range owned[rid].Machines {
			reported[m.MachineID] = true
		}
		for _, in := range group {
			if liveState(in.State) && !reported[in.ID] {
				orphans = append(orphans, fmt.Sprintf("%s (%s, request %s: %s %q)", in.ID, in.State, rid, owned[rid].Status, owned[rid].Message))
			}
		}
	}

	// Every machine HF returned is terminated.
	state := map[string]string{}
	for _, in := range insts {
		state[in.ID] = in.State
	}
	var notTerminated []string
	returnedMachines := 0
	for rid, ids := range r.returns {
		for _, id := range ids {
			returnedMachines++
			if state[id] != "terminated" {
				notTerminated = append(notTerminated, fmt.Sprintf("%s (%s, return %s)", id, state[id], rid))
			}
		}
	}

	// Every machine the cloud took back is reported by getReturnRequests.
	var held []hfdriver.Machine
	for _, id := range r.order {
		for _, m := range final[id].Machines {
			if m.Result == "succeed" && !r.returned[m.MachineID] {
				held = append(held, m)
			}
		}
	}
	unreported := r.unreportedReclaims(held)
	calls, _ := e.cloud.counts()
	codes := e.cloud.errorCodes()

	fig := map[string]any{
		"seed": seed, "cycles": cycles, "kills": cycles, "killsByMoment": r.kills,
		"requests": len(r.order), "returns": len(r.returns), "returnedMachines": returnedMachines,
		"reclaims": len(r.reclaimed), "machines": machines, "finalStatuses": statuses,
		"requestCallsCutOffByKill": r.unanswered, "requestCallsAnsweredAcrossKill": r.answeredLate,
		"orphans": len(orphans), "duplicates": len(duplicates), "lost": len(lost), "stuck": len(stuck),
		"returnedNotTerminated": len(notTerminated), "reclaimsNotReported": len(unreported),
		"instancesOfUnknownRequests":            len(unknownReqs),
		"liveInstancesOfRequestsHFNeverHeardOf": unheard,
		"consistencyWindowMs":                   e.cloud.consistencyWindow().Milliseconds(),
		"dropAnswerRate":                        crashDropAnswerRate, "awsCalls": sum(calls),
		"answersDropped":             droppedAnswers(codes),
		"runInstancesAnswersDropped": codes["RunInstances "+awssim.CodeAnswerDropped],
		"awsErrorsByCode":            codes,
	}
	report(t, fig)
	t.Logf("crash soak: %d cycles survived, %d kills, %d requests, %d machines, %d returns (%d machines), %d reclaims, %d of %d AWS answers dropped (%d RunInstances); orphans=%d duplicates=%d lost=%d",
		cycles, cycles, len(r.order), machines, len(r.returns), returnedMachines, len(r.reclaimed), droppedAnswers(codes), sum(calls),
		codes["RunInstances "+awssim.CodeAnswerDropped], len(orphans), len(duplicates), len(lost))

	check := func(what string, list []string) {
		if len(list) > 0 {
			t.Errorf("%s: %d\n  %s", what, len(list), strings.Join(list, "\n  "))
		}
	}
	check("lost requests (answered ids ohfpd no longer knows)", lost)
	check("requests still running after settling", stuck)
	check("requests with a bad final status", badFinal)
	check("orphan instances (live, tagged for the cluster, owned by no request ohfpd reports)", orphans)
	check("duplicate launches (more instances than units asked)", duplicates)
	check("returned machines not terminated", notTerminated)
	check("reclaimed machines getReturnRequests does not report", unreported)
	check("instances tagged with a request ohfpd does not know", unknownReqs)
}

// unreportedReclaims polls getReturnRequests with every machine HF holds
// until each reclaimed one is reported (or 30 s pass), and returns the ones
// never reported.
func (r *crashRun) unreportedReclaims(held []hfdriver.Machine) []string {
	want := map[string]string{} // name -> machine id
	for _, m := range held {
		if _, ok := r.reclaimed[m.MachineID]; ok {
			want[m.Name] = m.MachineID
		}
	}
	if len(want) == 0 {
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var rr struct {
			Requests []struct {
				Machine     string `json:"machine"`
				GracePeriod int    `json:"gracePeriod"`
			} `json:"requests"`
		}
		r.e.call("getReturnRequests", hfdriver.MachinesInput(held), &rr)
		got := map[string]bool{}
		for _, q := range rr.Requests {
			got[q.Machine] = true
		}
		var missing []string
		for name, id := range want {
			if !got[name] {
				missing = append(missing, fmt.Sprintf("%s (%s, %s)", id, name, r.reclaimed[id]))
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			sort.Strings(missing)
			return missing
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// instanceRow is one simulated instance tagged for the cluster.
type instanceRow struct {
	ID, State, RequestID string
}

func (r *crashRun) managed() []instanceRow {
	var out []instanceRow
	for _, in := range r.e.cloud.instances() {
		if in.Tags["ohfp:managed-by"] != r.e.cluster {
			continue
		}
		out = append(out, instanceRow{ID: in.ID, State: in.State, RequestID: in.Tags["ohfp:request-id"]})
	}
	return out
}
