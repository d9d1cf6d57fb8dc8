package soak

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/dynalite"
	"github.com/ohfp/ohfp/internal/hfdriver"
)

// The failover soak (issue 14): two ohfpd on two "master candidates"
// (two sockets, two state directories, two AWS access keys) share one
// simulated region and, with ha:, one DynamoDB (dynalite). HF's calls
// switch between them at random moments: an acquire in flight, a return
// in flight, a reconcile pass; the host HF leaves is left running (hot
// standby), SIGKILLed and restarted, or SIGSTOPped past its lease (a
// partition: it wakes and must not act); HF also fails back to a host
// whose local view is old.

const failoverLease = 3 * time.Second

// Ways HF leaves a host.
const (
	leaveAlive  = "host left running (hot standby)"
	leaveKilled = "host SIGKILLed, restarted later"
	leaveFrozen = "host SIGSTOPped past its lease, then woken"
)

var leaveWays = []string{leaveAlive, leaveKilled, leaveFrozen}

// Moments at which HF moves.
const (
	atAcquire   = "just after requestMachines answered (launch in flight)"
	atReturn    = "just after requestReturnMachines answered (terminate in flight)"
	atReconcile = "between calls (during a reconcile pass)"
)

var moveMoments = []string{atAcquire, atReturn, atReconcile}

type candidate struct {
	name string
	key  string
	e    *env
}

type failoverRun struct {
	t      *testing.T
	rng    *rand.Rand
	hosts  [2]*candidate
	cur    int // the host HF calls
	shared bool

	acquires map[string]int      // request id -> units
	failed   map[string]string   // request id -> message, for those HF was told failed (HF asks no more)
	machines map[string][]string // request id -> machine ids (complete)
	held     map[string]hfdriver.Machine
	returns  map[string][]string // return id -> machine ids
	moves    map[string]int
	lost     int
	// failedOver: requests that ended failed because HF moved before the
	// other host could know them (no shared store): HF was told, and their
	// instances must end terminated.
	failedOver int
	// heldTerminated: machines HF held (never returned) that the cloud no
	// longer ran when HF settled.
	heldTerminated int
	takings        int
}

func haYAML(endpoint, host string) string {
	return fmt.Sprintf(`ha:
  table: ohfp-soak
  region: us-east-1
  endpoint_url: %s
  lease_duration: %s
  create_table: true
  host: %s
`, endpoint, failoverLease, host)
}

// The failover tests mostly wait on leases and timers: they run in
// parallel with each other (go test runs at most GOMAXPROCS at once).
func TestFailoverShared(t *testing.T) { t.Parallel(); failoverSoak(t, true) }

// Without ha: each candidate has its own Badger store; the cloud's tags
// carry what the other host needs (issue 14, item 3).
func TestFailoverLocal(t *testing.T) { t.Parallel(); failoverSoak(t, false) }

func failoverSoak(t *testing.T, shared bool) {
	cycles, seed := cyclesAndSeed(t, 4, 40)
	t.Logf("failover soak (shared store %t): %d cycles, seed %d (OHFP_SOAK_SEED to replay)", shared, cycles, seed)
	c := startCloud(t, 300*time.Millisecond, 300*time.Millisecond)
	endpoint := ""
	if shared {
		endpoint = dynalite.StartT(t)
	}
	r := &failoverRun{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x51ed)), shared: shared,
		acquires: map[string]int{}, failed: map[string]string{}, machines: map[string][]string{}, held: map[string]hfdriver.Machine{},
		returns: map[string][]string{}, moves: map[string]int{}}
	for i, name := range []string{"cand-a", "cand-b"} {
		o := daemonOpts{accessKey: fmt.Sprintf("AKIAHOST%c", 'A'+i)}
		if shared {
			o.extra = haYAML(endpoint, name)
		}
		r.hosts[i] = &candidate{name: name, key: o.accessKey, e: newEnv(t, c, o)}
		r.hosts[i].e.retryUnavailable = true
		r.hosts[i].e.start()
	}
	for i := 0; i < cycles; i++ {
		r.cycle(i)
	}
	r.settle()
	r.verify(c, seed, cycles)
}

func (r *failoverRun) host() *candidate { return r.hosts[r.cur] }

// cycle does some of HF's work on the current host, then moves HF to the
// other one at a moment and in a way picked at random.
func (r *failoverRun) cycle(i int) {
	h := r.host()
	r.refresh()
	// Background work in most cycles, as HF has: more requests, returns.
	if r.rng.IntN(2) == 0 {
		n := 1 + r.rng.IntN(3)
		r.acquires[h.e.request(tplOnDemand, n)] = n
	}
	if r.rng.IntN(3) == 0 {
		r.returnSome()
	}
	moment := moveMoments[r.rng.IntN(len(moveMoments))]
	way := leaveWays[i%len(leaveWays)]
	if soakMode() {
		way = leaveWays[r.rng.IntN(len(leaveWays))]
	}
	switch moment {
	case atAcquire:
		n := 1 + r.rng.IntN(3)
		id := h.e.request(tplOnDemand, n)
		r.acquires[id] = n
	case atReturn:
		if !r.returnSome() {
			id := h.e.request(tplOnDemand, 1)
			r.acquires[id] = 1
			moment = atAcquire
		}
	case atReconcile:
		time.Sleep(time.Duration(200+r.rng.IntN(800)) * time.Millisecond)
	}
	r.moves[moment+"; "+way]++
	old := h
	r.cur = 1 - r.cur
	switch way {
	case leaveKilled:
		old.e.kill("failover: " + moment)
		r.refresh() // HF's next calls arrive at the other host
		old.e.start()
	case leaveFrozen:
		must(r.t, old.e.daemon.Cmd.Process.Signal(syscall.SIGSTOP))
		fmt.Fprintf(old.e.logf, "==== soak: SIGSTOP at %s\n", time.Now().Format(time.StampMicro))
		r.refresh()
		time.Sleep(failoverLease + time.Second)
		must(r.t, old.e.daemon.Cmd.Process.Signal(syscall.SIGCONT))
		fmt.Fprintf(old.e.logf, "==== soak: SIGCONT at %s\n", time.Now().Format(time.StampMicro))
	default:
		r.refresh()
	}
}

// refresh asks the current host about every request HF has not seen end,
// and tells it which hosts HF holds (getReturnRequests).
func (r *failoverRun) refresh() {
	e := r.host().e
	var ids []string
	for id := range r.acquires {
		if r.machines[id] == nil && r.failed[id] == "" {
			ids = append(ids, id)
		}
	}
	for id := range r.returns {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) > 0 {
		for _, q := range e.status(ids...).Requests {
			if _, ok := r.acquires[q.RequestID]; !ok {
				continue
			}
			if q.Status == "complete_with_error" {
				// Final: HF takes what it lists and asks no more.
				r.failed[q.RequestID] = q.Message
			}
			if q.Status != "complete" && q.Status != "complete_with_error" {
				continue
			}
			var ms []string
			for _, m := range q.Machines {
				ms = append(ms, m.MachineID)
				r.held[m.MachineID] = m
			}
			r.machines[q.RequestID] = ms
		}
	}
	held := make([]hfdriver.Machine, 0, len(r.held))
	for _, m := range r.held {
		held = append(held, m)
	}
	var out map[string]any
	e.call("getReturnRequests", hfdriver.MachinesInput(held), &out)
}

// returnSome returns one or two held machines; false when HF holds none.
func (r *failoverRun) returnSome() bool {
	if len(r.held) == 0 {
		return false
	}
	ids := make([]string, 0, len(r.held))
	for id := range r.held {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	r.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	ids = ids[:min(len(ids), 1+r.rng.IntN(2))]
	var ms []hfdriver.Machine
	for _, id := range ids {
		ms = append(ms, r.held[id])
		delete(r.held, id)
	}
	var rep hfdriver.RequestReply
	r.host().e.call("requestReturnMachines", hfdriver.MachinesInput(ms), &rep)
	if !strings.HasPrefix(rep.RequestID, "ret-") {
		r.t.Fatalf("requestReturnMachines answered %+v", rep)
	}
	r.returns[rep.RequestID] = ids
	return true
}

// settle waits on the current host for every acquire, returns everything
// HF holds, and waits for every return.
func (r *failoverRun) settle() {
	e := r.host().e
	var ids []string
	for id := range r.acquires {
		if r.failed[id] == "" && r.machines[id] == nil {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	final := e.waitFinal(ids, 3*time.Minute)
	for id, msg := range r.failed {
		final[id] = statusEntry{Status: "complete_with_error", Message: msg}
	}
	for id, ms := range r.machines {
		if r.failed[id] == "" {
			st := statusEntry{Status: "complete"}
			for _, m := range ms {
				st.Machines = append(st.Machines, hfdriver.Machine{MachineID: m})
			}
			final[id] = st
		}
	}
	running := map[string]bool{}
	for _, in := range e.cloud.instances() {
		if in.State == "running" {
			running[in.ID] = true
		}
	}
	for id, m := range r.held {
		if !running[id] {
			r.heldTerminated++
			r.t.Errorf("machine %s (%s) HF holds is not running", id, m.Name)
		}
	}
	for id := range r.acquires {
		st := final[id]
		if !r.shared && st.Status == "complete_with_error" {
			// Without a shared store a request HF asks the other host about
			// before its launch shows in the cloud is answered failed there;
			// HF asks again for machines. Safe as long as its instances end.
			r.failedOver++
			r.t.Logf("failed over: %s: %s", id, st.Message)
			continue
		}
		if st.Status != "complete" || len(st.Machines) != r.acquires[id] {
			r.lost++
			r.t.Errorf("lost: request %s of %d ended %s with %d machines: %s", id, r.acquires[id], st.Status, len(st.Machines), st.Message)
		}
		for _, m := range st.Machines {
			if _, returned := r.returnedIDs()[m.MachineID]; !returned && m.Name != "" {
				r.held[m.MachineID] = m
			}
		}
	}
	for len(r.held) > 0 {
		r.returnSome()
	}
	var rets []string
	for id := range r.returns {
		rets = append(rets, id)
	}
	sort.Strings(rets)
	for id, st := range e.waitFinal(rets, 3*time.Minute) {
		if st.Status != "complete" {
			r.t.Errorf("return %s of %v ended %s: %s", id, r.returns[id], st.Status, st.Message)
		}
	}
}

func (r *failoverRun) returnedIDs() map[string]bool {
	out := map[string]bool{}
	for _, ms := range r.returns {
		for _, m := range ms {
			out[m] = true
		}
	}
	return out
}

// leaseTaken is the line a daemon logs when it takes the lease.
var leaseTaken = regexp.MustCompile(`lease taken: this host acts for the cluster.* at_unix_nano=(\d+)`)

func (r *failoverRun) verify(c *cloud, seed uint64, cycles int) {
	t := r.t
	// Nothing left running: every instance of the cluster terminated once
	// HF returned everything (no orphans, nothing returned and running).
	c.waitAllTerminated(2*time.Minute, 500*time.Millisecond, "every machine HF returned")
	perRequest := map[string]int{}
	for _, in := range c.instances() {
		if in.Tags["ohfp:managed-by"] == "soak" {
			perRequest[in.Tags["ohfp:request-id"]]++
		}
	}
	dups := 0
	for id, n := range r.acquires {
		if perRequest[id] > n {
			dups += perRequest[id] - n
			t.Errorf("launched twice: request %s of %d units has %d instances", id, n, perRequest[id])
		}
	}
	orphans := 0
	for id, n := range perRequest {
		if _, ok := r.acquires[id]; !ok {
			orphans += n
			t.Errorf("orphans: %d instances of request %q HF never got an id for", n, id)
		}
	}

	// Every id HF was given answers the same on both hosts.
	var ids []string
	for id := range r.acquires {
		ids = append(ids, id)
	}
	for id := range r.returns {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	differ := 0
	if r.shared {
		answers := [2]map[string]statusEntry{}
		for i, h := range []*candidate{r.host(), r.hosts[1-r.cur]} {
			answers[i] = h.e.statusMap(ids...)
		}
		for _, id := range ids {
			a, b := answers[0][id], answers[1][id]
			if a.Status != b.Status || len(a.Machines) != len(b.Machines) {
				differ++
				t.Errorf("%s answers %s (%d machines) on one host and %s (%d) on the other", id, a.Status, len(a.Machines), b.Status, len(b.Machines))
			}
		}
	}

	unleased := 0
	if r.shared {
		unleased, r.takings = actionsWithoutLease(t, c, r.hosts[:])
		if r.takings < cycles/2 {
			t.Errorf("only %d lease takings over %d moves", r.takings, cycles)
		}
	}
	report(t, map[string]any{
		"seed": seed, "cycles": cycles, "shared": r.shared, "requests": len(r.acquires), "returns": len(r.returns),
		"moves": r.moves, "lost": r.lost, "failed_over": r.failedOver, "held_but_terminated": r.heldTerminated, "duplicates": dups, "orphans": orphans,
		"answers_differ": differ, "actions_without_lease": unleased, "lease_takings": r.takings,
		"calls_retried_unavailable": r.hosts[0].e.unavailable + r.hosts[1].e.unavailable,
	})
}

type actionRow struct {
	At        time.Time `json:"at"`
	Action    string    `json:"action"`
	AccessKey string    `json:"accessKey"`
}

// actionsWithoutLease checks that each call that changed the cloud was
// signed by the host that took the lease last before it arrived (the
// hosts' logs say when each took it; the region logs each call with the
// access key that signed it). It returns the calls that were not, and how
// many times the lease was taken.
func actionsWithoutLease(t *testing.T, c *cloud, hosts []*candidate) (unleased, takings int) {
	t.Helper()
	type taking struct {
		at  time.Time
		key string
	}
	var takes []taking
	for _, h := range hosts {
		f, err := os.Open(h.e.logPath)
		must(t, err)
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if m := leaseTaken.FindStringSubmatch(sc.Text()); m != nil {
				ns, _ := strconv.ParseInt(m[1], 10, 64)
				takes = append(takes, taking{time.Unix(0, ns), h.key})
			}
		}
		f.Close()
	}
	sort.Slice(takes, func(i, j int) bool { return takes[i].at.Before(takes[j].at) })
	var acts []actionRow
	c.do("GET", "/_sim/actions", nil, &acts)
	for _, a := range acts {
		holder := ""
		for _, tk := range takes {
			if tk.at.After(a.At) {
				break
			}
			holder = tk.key
		}
		if a.AccessKey != holder {
			unleased++
			t.Errorf("%s at %s by %s while %q held the lease", a.Action, a.At.Format(time.StampMicro), a.AccessKey, holder)
		}
	}
	return unleased, len(takes)
}

// A holder frozen (SIGSTOP: a partition, a VM pause) with a launch still
// to make, woken after another host took the lease, makes no call: the
// launch is made once, by the new holder, with the same client token.
func TestFailoverFrozenHolderDoesNotAct(t *testing.T) {
	t.Parallel()
	c := startCloud(t, 300*time.Millisecond, 300*time.Millisecond)
	endpoint := dynalite.StartT(t)
	var hosts []*candidate
	for i, name := range []string{"cand-a", "cand-b"} {
		o := daemonOpts{accessKey: fmt.Sprintf("AKIAHOST%c", 'A'+i), extra: haYAML(endpoint, name)}
		h := &candidate{name: name, key: o.accessKey, e: newEnv(t, c, o)}
		h.e.retryUnavailable = true
		h.e.start()
		hosts = append(hosts, h)
	}
	a, b := hosts[0], hosts[1]
	// Every RunInstances refused (throttled): a's launch stays to be made.
	c.setFaults(awssim.Faults{ThrottleRate: 1, Actions: []string{"RunInstances"}})
	id := a.e.request(tplOnDemand, 2)
	time.Sleep(500 * time.Millisecond)
	must(t, a.e.daemon.Cmd.Process.Signal(syscall.SIGSTOP))
	c.setFaults(awssim.Faults{})
	// HF moves to b, which takes the lease once a's has expired.
	final := b.e.waitFinal([]string{id}, 2*time.Minute)[id]
	if final.Status != "complete" || len(final.Machines) != 2 {
		t.Fatalf("on b: %+v", final)
	}
	must(t, a.e.daemon.Cmd.Process.Signal(syscall.SIGCONT))
	// a wakes with its launch due: give it time to (wrongly) make it.
	time.Sleep(3 * failoverLease)
	if !a.e.alive() {
		t.Fatal("a died on waking")
	}
	n := 0
	for _, in := range c.instances() {
		if in.Tags["ohfp:request-id"] == id {
			n++
		}
	}
	if n != 2 {
		t.Errorf("request of 2 has %d instances", n)
	}
	unleased, takes := actionsWithoutLease(t, c, hosts)
	if takes < 2 {
		t.Errorf("the lease was taken %d times, want a then b", takes)
	}
	st := a.e.statusReport()
	report(t, map[string]any{"instances": n, "actions_without_lease": unleased, "lease_takings": takes, "woken_host_lease": st["ha"]})
	if ha, _ := st["ha"].(map[string]any); ha == nil || ha["role"] != "standby" || ha["holder"] != "cand-b" {
		t.Errorf("the woken host's status says %v, want standby with cand-b holding", st["ha"])
	}
}

// cutProxy forwards TCP to a backend until cut: then it drops every
// connection (DynamoDB unreachable) until restored.
type cutProxy struct {
	addr string
	cut  atomic.Bool
	mu   sync.Mutex
	open map[net.Conn]bool
}

func startCutProxy(t *testing.T, backend string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	p := &cutProxy{addr: ln.Addr().String(), open: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.drop() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if p.cut.Load() {
				c.Close()
				continue
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.open[c], p.open[b] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(b, c); b.Close() }()
			go func() { _, _ = io.Copy(c, b); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.open {
		c.Close()
	}
	clear(p.open)
}

func (p *cutProxy) setCut(cut bool) {
	p.cut.Store(cut)
	if cut {
		p.drop()
	}
}

// With the shared table unreachable, HF's calls fail "state store
// unavailable", exit 1, and change nothing (nothing launched); the holder
// stops acting once its lease runs out; with the table back, the same
// host takes the lease again and HF's ids answer as before.
func TestSharedStoreUnavailable(t *testing.T) {
	t.Parallel()
	c := startCloud(t, 300*time.Millisecond, 300*time.Millisecond)
	endpoint := dynalite.StartT(t)
	px := startCutProxy(t, strings.TrimPrefix(endpoint, "http://"))
	e := newEnv(t, c, daemonOpts{extra: haYAML("http://"+px.addr, "cand-a")})
	e.start()
	id := e.request(tplOnDemand, 1)
	if st := e.waitFinal([]string{id}, time.Minute)[id]; st.Status != "complete" {
		t.Fatalf("before the cut: %+v", st)
	}
	before := len(c.instances())

	px.setCut(true)
	ctx, cancel := callCtx()
	defer cancel()
	var rep hfdriver.RequestReply
	err := e.plugin.Call(ctx, "requestMachines", requestInput(tplOnDemand, 2), &rep)
	if err == nil || !strings.Contains(err.Error(), "exited 1") || !strings.Contains(err.Error(), "state store unavailable") {
		t.Fatalf("requestMachines with the table cut: %v (answer %+v)", err, rep)
	}
	// Past the lease, the holder has stepped down: HF's reads fail the
	// same way, and status says why.
	time.Sleep(2 * failoverLease)
	err = e.plugin.Call(ctx, "getRequestStatus", hfdriver.StatusInput(id), &map[string]any{})
	if err == nil || !strings.Contains(err.Error(), "state store unavailable") {
		t.Fatalf("getRequestStatus with the table cut past the lease: %v", err)
	}
	st := e.statusReport()
	ha, _ := st["ha"].(map[string]any)
	health, _ := st["health"].(map[string]any)
	if ha == nil || ha["role"] != "standby" || ha["lastError"] == "" || health["level"] == "healthy" {
		t.Fatalf("status with the table cut: ha %v, health %v", st["ha"], st["health"])
	}
	if n := len(c.instances()); n != before {
		t.Fatalf("%d instances launched while the table was cut", n-before)
	}
	if !e.alive() {
		t.Fatal("ohfpd died with the table cut")
	}

	px.setCut(false)
	if st := e.waitFinal([]string{id}, time.Minute)[id]; st.Status != "complete" || len(st.Machines) != 1 {
		t.Fatalf("after the table came back: %+v", st)
	}
	id2 := e.request(tplOnDemand, 1)
	if st := e.waitFinal([]string{id2}, time.Minute)[id2]; st.Status != "complete" {
		t.Fatalf("a request after the table came back: %+v", st)
	}
	report(t, map[string]any{"refused_while_cut": 2, "instances_launched_while_cut": 0})
}
