// Command bench is `make bench`: it runs the real ohfpd on a simulated AWS
// region (a separate `ohfpd simulate` process), loads it with HF requests
// through the real ohfp client spawned once per call (as HF does), and
// prints the figures of issue 6 beside their targets; -out writes the same
// as JSON.
//
//	go run ./internal/bench -bin bin -out bench-results.json
//
// Method, per figure (see also README "Performance"):
//
//   - Latency: wall time of one `<op>.sh -f FILE` process, from exec to
//     exit, for the real client and for the floor probe (internal/bench/
//     probe: a static binary, a minimal net/http client that sends the
//     same JSON-RPC POST on the socket and prints the answer, nothing
//     else). Calls alternate client/probe so both see
//     the same daemon and machine state. A row meets its target when its
//     p50 is within 1.5x of the probe's p50 for the same operation and
//     input, and its p99 is at most 12 ms.
//   - AWS calls per full reconcile pass: at the end of a full listing (the
//     "listings" counter of the status method just grew) reset the
//     region's counts, wait for N more listings, read the counts, divide
//     by N. The busy passes between listings are counted with them (they
//     cost nothing when nothing is in flight).
//   - AWS calls caused by getRequestStatus: the same window around 1,000
//     spawned calls, closed at the end of the next listing; what the window
//     counts beyond listings x calls-per-listing is caused by the calls.
//   - Throughput: W workers spawning ohfp getRequestStatus for D; answered
//     calls per second, and the failures.
//   - Memory: VmRSS of ohfpd once the load is complete (and after the
//     restart). Start-up: SIGTERM, start again, time until an in-process
//     getRequestStatus over the socket is answered (polled every 2 ms).
//   - requestMachines to the cloud call: the simulated region's launch time
//     of the request's instances (its wall clock at RunInstances) minus the
//     time the benchmark spawned requestMachines.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ohfp/ohfp/internal/hfdriver"
)

type options struct {
	bin         string
	out         string
	requests    int
	per         int
	samples     int
	workers     int
	throughput  time.Duration
	interval    time.Duration
	idle        time.Duration
	simNice     int
	launchDelay time.Duration
	listings    int
	bigRequest  int
	keep        bool
	only        string
	trace       string
}

// stepGroup names the -only group of each step; the load always runs.
var stepGroup = map[string]string{
	"memory": "memory", "AWS calls per pass": "aws", "AWS calls of getRequestStatus": "aws",
	"read latency": "latency", "write latency": "latency", "throughput": "throughput",
	"large request": "large", "client init": "init", "restart": "restart",
}

// runs reports whether -only lets step run.
func (o options) runs(step string) bool {
	g, ok := stepGroup[step]
	if o.only == "" || !ok {
		return true
	}
	return slices.Contains(strings.Split(o.only, ","), g)
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "folder holding the ohfpd and ohfp binaries (make build)")
	flag.StringVar(&o.out, "out", "", "write the results as JSON to this `file`")
	flag.IntVar(&o.requests, "requests", 1000, "requests in the load phase")
	flag.IntVar(&o.per, "machines", 10, "machines per load request")
	flag.IntVar(&o.samples, "samples", 300, "samples per latency row (each client)")
	flag.IntVar(&o.workers, "workers", 16, "concurrent callers in the throughput run")
	flag.DurationVar(&o.throughput, "throughput-time", 10*time.Second, "length of the throughput run")
	flag.DurationVar(&o.interval, "reconcile", time.Second, "ohfpd's reconcile active_interval")
	flag.DurationVar(&o.idle, "idle", 10*time.Second, "ohfpd's reconcile idle_interval (the default is 30s)")
	flag.IntVar(&o.simNice, "sim-nice", 19, "nice value of the simulated region, which stands in for remote AWS and should not take the CPU of what is measured")
	flag.DurationVar(&o.launchDelay, "launch-delay", -1, "how long simulated instances stay pending; -1ns: no delay (the next tick of the region, 100 ms)")
	flag.IntVar(&o.listings, "listings", 1, "full reconcile listings in the AWS-calls-per-pass window (one per -idle)")
	flag.IntVar(&o.bigRequest, "big", 1000, "machines in the single large request timed to completion")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch folder (logs, state) for inspection")
	flag.StringVar(&o.trace, "trace", "", "write every timed call to this CSV `file` (row, client, start in Unix µs, ms), to line up slow calls with the daemon's log")
	flag.StringVar(&o.only, "only", "", "run only these `steps` after the load (comma-separated: memory, aws, latency, throughput, large, init, restart); for iterating on one figure; what was not measured reads as not met")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

// bench holds one run.
type bench struct {
	o     options
	e     *env
	res   Results
	ids   []string            // the load's request ids
	refs  []map[string]string // the load's machines as HF names them
	trace io.Writer           // -trace: every timed call, as CSV
}

func run(o options) error {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	for _, b := range []string{"ohfpd", "ohfp"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return fmt.Errorf("%v: run make build first", err)
		}
	}
	dir, err := os.MkdirTemp("", "ohfp-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("scratch folder %s kept", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	b := &bench{o: o, e: &env{bin: bin, dir: dir}}
	if o.trace != "" {
		f, err := os.Create(o.trace)
		if err != nil {
			return err
		}
		defer f.Close()
		b.trace = f
	}
	defer b.e.close()
	b.res.Machine = machineInfo()
	b.res.Machine.LoadAvgStart = loadAvg()
	b.res.Machine.ClientBytes = fileSize(filepath.Join(bin, "ohfp"))

	probe, err := buildProbe(dir)
	if err != nil {
		return err
	}
	b.res.Machine.ProbeBytes = fileSize(probe)
	if err := b.setup(probe); err != nil {
		return err
	}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"load", b.load},
		{"memory", b.memory},
		{"AWS calls per pass", b.awsPerPass},
		{"AWS calls of getRequestStatus", b.awsByStatus},
		{"read latency", b.readLatency},
		{"write latency", b.writeLatency},
		{"throughput", b.throughputRun},
		{"large request", b.largeRequest},
		{"client init", b.clientInit},
		{"restart", b.restart},
	}
	for _, s := range steps {
		if !o.runs(s.name) {
			continue
		}
		logf("%s", s.name)
		if err := s.fn(); err != nil {
			return fmt.Errorf("%s: %w (logs in %s; -keep keeps them)", s.name, err, dir)
		}
	}
	b.res.Machine.LoadAvgEnd = loadAvg()
	b.res.judge()
	b.res.print(os.Stdout)
	if o.out != "" {
		data, err := json.MarshalIndent(b.res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.out, append(data, '\n'), 0o644); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	return nil
}

// loadAvg is the machine's 1-minute load average: other work on the
// machine shows in the tails.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// cpuTime is the user+system CPU time of pid so far.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var ut, st int64
	if len(f) > 12 {
		fmt.Sscan(f[11], &ut)
		fmt.Sscan(f[12], &st)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// buildProbe builds the floor probe, a minimal net/http client, as the
// client is built: static, no cgo, stripped.
func buildProbe(dir string) (string, error) {
	out := filepath.Join(dir, "probe")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "github.com/ohfp/ohfp/internal/bench/probe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the probe: %v\n%s", err, b)
	}
	return out, nil
}

func machineInfo() MachineInfo {
	m := MachineInfo{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// setup starts the region and ohfpd. The load needs ohfp's client-side EC2
// rate buckets off (aws_rate_limit: false): with them, 10,000 instances
// take over an hour (RunInstances' instance bucket refills 2 per second).
func (b *bench) setup(probe string) error {
	e := b.e
	if err := e.startSim(b.o.launchDelay, b.o.simNice); err != nil {
		return err
	}
	maxNumber := b.o.requests*b.o.per + 4*b.o.samples + b.o.bigRequest + 1000
	b.res.Load.RateLimitOff = true
	if err := e.writeConfig(maxNumber, b.o.interval, b.o.idle, true); err != nil {
		return err
	}
	if err := e.checkConfig(); err != nil {
		logf("ohfpd refuses aws_rate_limit: false (%v); running with the client-side limits", err)
		b.res.Load.RateLimitOff = false
		b.res.Load.Note = "ohfpd has no aws_rate_limit setting: its client-side EC2 buckets bound the load phase"
		if err := e.writeConfig(maxNumber, b.o.interval, b.o.idle, false); err != nil {
			return err
		}
		if err := e.checkConfig(); err != nil {
			return err
		}
	}
	if err := e.install(probe); err != nil {
		return err
	}
	return e.startDaemon()
}

type reqStatus struct {
	Requests []struct {
		RequestID string             `json:"requestId"`
		Status    string             `json:"status"`
		Message   string             `json:"message"`
		Machines  []hfdriver.Machine `json:"machines"`
	} `json:"requests"`
}

// load makes o.requests requests of o.per machines through spawned ohfp
// processes (4 at a time) and waits until every machine is running.
func (b *bench) load() error {
	e := b.e
	b.res.Load.Requests, b.res.Load.MachinesPerRequest = b.o.requests, b.o.per
	file, err := e.input("requestMachines", map[string]any{"template": map[string]any{"templateId": "Bench-c5", "machineCount": b.o.per}})
	if err != nil {
		return err
	}
	t0 := time.Now()
	ids := make([]string, b.o.requests)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ids) {
					return
				}
				out, _, err := e.spawn(e.ohfp, "requestMachines", file)
				var rep hfdriver.RequestReply
				if err == nil {
					err = result(out, &rep)
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				ids[i] = rep.RequestID
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	b.res.Load.SubmitSeconds = time.Since(t0).Seconds()
	logf("%d requests accepted in %.1f s; waiting for %d machines", len(ids), b.res.Load.SubmitSeconds, len(ids)*b.o.per)
	if err := b.waitIdle(len(ids)*b.o.per, 10*time.Minute); err != nil {
		return err
	}
	b.res.Load.CompleteSeconds = time.Since(t0).Seconds()
	// Every request must be complete with its machines.
	var refs []map[string]string
	for i := 0; i < len(ids); i += 100 {
		var st reqStatus
		if err := e.call("getRequestStatus", hfdriver.StatusInput(ids[i:min(i+100, len(ids))]...), &st); err != nil {
			return err
		}
		for _, r := range st.Requests {
			if r.Status != "complete" || len(r.Machines) != b.o.per {
				return fmt.Errorf("request %s: %s with %d machines: %s", r.RequestID, r.Status, len(r.Machines), r.Message)
			}
			for _, m := range r.Machines {
				refs = append(refs, map[string]string{"name": m.Name, "machineId": m.MachineID})
			}
		}
	}
	b.ids, b.refs = ids, refs
	logf("%d machines running after %.1f s", len(refs), b.res.Load.CompleteSeconds)
	return nil
}

// waitIdle waits until nothing is in flight and at least n machines run.
func (b *bench) waitIdle(n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	last := time.Now()
	for {
		st, err := b.e.status()
		if err != nil {
			return err
		}
		if st.InFlight == 0 && st.Machines["running"] >= n {
			return nil
		}
		if time.Since(last) > 10*time.Second {
			logf("in flight %d, machines %v", st.InFlight, st.Machines)
			last = time.Now()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still %d requests in flight and machines %v after %s", st.InFlight, st.Machines, limit)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (b *bench) memory() error {
	cur, peak, err := rss(b.e.daemon.Cmd.Process.Pid)
	if err != nil {
		return err
	}
	st, err := b.e.status()
	if err != nil {
		return err
	}
	b.res.Memory.Machines = st.Machines["running"]
	b.res.Memory.RSSBytes, b.res.Memory.PeakRSSBytes = cur, peak
	return nil
}

// listingWindow waits for the end of a full reconcile listing, resets the
// region's counts, runs fn, waits for the end of the next listing after it
// (or of minListings in all), and returns the counts and the listings the
// window held. Whole listing cycles, because the passes between listings
// (busy passes, describing only what is in flight) cost nothing when all
// is idle: a window of passes would count a listing or none by chance.
func (b *bench) listingWindow(minListings int, fn func() error) (map[string]int, int, error) {
	e := b.e
	st, err := e.status()
	if err != nil {
		return nil, 0, err
	}
	// A listing is due every idle interval, and put off for at most two
	// more while HF's calls leave no pause.
	limit := 3*b.o.idle + 30*time.Second
	start, err := e.waitListings(st.Listings, 1, limit)
	if err != nil {
		return nil, 0, err
	}
	if err := e.resetCounts(); err != nil {
		return nil, 0, err
	}
	if fn != nil {
		if err := fn(); err != nil {
			return nil, 0, err
		}
	}
	st, err = e.status()
	if err != nil {
		return nil, 0, err
	}
	n := max(minListings-(st.Listings-start), 1)
	end, err := e.waitListings(st.Listings, n, limit)
	if err != nil {
		return nil, 0, err
	}
	counts, err := e.simCounts()
	return counts, end - start, err
}

func (b *bench) awsPerPass() error {
	var d0, s0 time.Duration
	counts, listings, err := b.listingWindow(b.o.listings, func() error {
		d0, s0 = cpuTime(b.e.daemon.Cmd.Process.Pid), cpuTime(b.e.sim.Process.Pid)
		return nil
	})
	if err != nil {
		return err
	}
	d1, s1 := cpuTime(b.e.daemon.Cmd.Process.Pid), cpuTime(b.e.sim.Process.Pid)
	b.res.AWSPerPass.DaemonCPUms = ms((d1 - d0) / time.Duration(listings))
	b.res.AWSPerPass.SimCPUms = ms((s1 - s0) / time.Duration(listings))
	st, err := b.e.status()
	if err != nil {
		return err
	}
	a := &b.res.AWSPerPass
	a.Listings, a.Instances, a.LastListingMs = listings, st.Machines["running"], st.LastListingMs
	a.Calls = counts
	a.PerPass = map[string]float64{}
	for k, v := range counts {
		a.PerPass[k] = float64(v) / float64(listings)
	}
	return nil
}

func (b *bench) awsByStatus() error {
	const calls = 1000
	file, err := b.e.input("getRequestStatus", hfdriver.StatusInput(b.ids[0]))
	if err != nil {
		return err
	}
	var failed atomic.Int64
	counts, listings, err := b.listingWindow(1, func() error {
		b.concurrently(8, calls, 0, func() bool {
			_, _, err := b.e.spawn(b.e.ohfp, "getRequestStatus", file)
			if err != nil {
				failed.Add(1)
			}
			return err == nil
		})
		return nil
	})
	if err != nil {
		return err
	}
	if failed.Load() > 0 {
		return fmt.Errorf("%d of %d getRequestStatus calls failed", failed.Load(), calls)
	}
	a := &b.res.AWSByStatus
	a.StatusCalls, a.Listings, a.Calls = calls, listings, counts
	caused := 0.0
	for k, v := range counts {
		caused += float64(v) - float64(listings)*b.res.AWSPerPass.PerPass[k]
	}
	a.Caused = caused
	return nil
}

// concurrently runs fn from w workers until n calls were made (n > 0) or
// for d; it returns the calls that succeeded, the failures and the time.
func (b *bench) concurrently(w, n int, d time.Duration, fn func() bool) (ok, failed int64, took time.Duration) {
	var okc, failc, started atomic.Int64
	deadline := time.Now().Add(d)
	t0 := time.Now()
	var wg sync.WaitGroup
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if n > 0 && started.Add(1) > int64(n) || n == 0 && time.Now().After(deadline) {
					return
				}
				if fn() {
					okc.Add(1)
				} else {
					failc.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return okc.Load(), failc.Load(), time.Since(t0)
}

func (b *bench) throughputRun() error {
	file, err := b.e.input("getRequestStatus", hfdriver.StatusInput(b.ids[1]))
	if err != nil {
		return err
	}
	var firstErr atomic.Value
	ok, failed, took := b.concurrently(b.o.workers, 0, b.o.throughput, func() bool {
		_, _, err := b.e.spawn(b.e.ohfp, "getRequestStatus", file)
		if err != nil {
			firstErr.CompareAndSwap(nil, err.Error())
		}
		return err == nil
	})
	t := &b.res.Throughput
	t.Workers, t.Seconds, t.OK, t.Failed = b.o.workers, took.Seconds(), ok, failed
	t.PerSecond = float64(ok) / took.Seconds()
	if v := firstErr.Load(); v != nil {
		t.FirstError = v.(string)
	}
	// The same with the floor probe: what this machine allows at all.
	pok, pfailed, ptook := b.concurrently(b.o.workers, 0, b.o.throughput/2, func() bool {
		_, _, err := b.e.spawn(b.e.probe, "getRequestStatus", file)
		return err == nil
	})
	t.ProbePerSecond, t.ProbeFailed = float64(pok)/ptook.Seconds(), pfailed
	return nil
}

// restart stops ohfpd and times its start-up from the store to the first
// answered getRequestStatus.
func (b *bench) restart() error {
	e := b.e
	st, err := e.status()
	if err != nil {
		return err
	}
	stored := 0
	for _, n := range st.Machines {
		stored += n
	}
	if err := e.daemon.Stop(30 * time.Second); err != nil {
		return err
	}
	e.daemon = nil
	in := hfdriver.StatusInput(b.ids[2])
	t0 := time.Now()
	type started struct {
		err error
	}
	done := make(chan started, 1)
	go func() { done <- started{e.startDaemon()} }()
	var answered time.Duration
	for {
		var rs reqStatus
		if err := e.call("getRequestStatus", in, &rs); err == nil && len(rs.Requests) == 1 && rs.Requests[0].Status == "complete" {
			answered = time.Since(t0)
			break
		}
		if time.Since(t0) > 60*time.Second {
			return fmt.Errorf("ohfpd did not answer within 60 s of its start")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if s := <-done; s.err != nil {
		return s.err
	}
	r := &b.res.Startup
	r.StoredMachines, r.Seconds = stored, answered.Seconds()
	time.Sleep(2 * b.o.interval) // a pass or two, as in service
	cur, peak, err := rss(e.daemon.Cmd.Process.Pid)
	if err != nil {
		return err
	}
	r.RSSBytes, r.PeakRSSBytes = cur, peak
	return nil
}

// clientInit runs the client with GODEBUG=inittrace=1 and sums what its
// package initialisers cost (median of 21 runs per package).
func (b *bench) clientInit() error {
	e := b.e
	file, err := e.input("getAvailableTemplates", map[string]any{})
	if err != nil {
		return err
	}
	per := map[string][]float64{}
	var totals []float64
	for range 21 {
		cmd := exec.Command(filepath.Join(e.ohfp, "getAvailableTemplates.sh"), "-f", file)
		cmd.Env = append(append([]string(nil), e.callEnv...), "GODEBUG=inittrace=1")
		var errb strings.Builder
		cmd.Stdout, cmd.Stderr = io.Discard, &errb
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%v: %s", err, errb.String())
		}
		total := 0.0
		for _, line := range strings.Split(errb.String(), "\n") {
			var pkg string
			var at, ms float64
			var bytes, allocs int64
			if n, _ := fmt.Sscanf(line, "init %s @%f ms, %f ms clock, %d bytes, %d allocs", &pkg, &at, &ms, &bytes, &allocs); n == 5 {
				per[pkg] = append(per[pkg], ms)
				total += ms
			}
		}
		totals = append(totals, total)
	}
	c := &b.res.ClientInit
	c.TotalMs = median(totals)
	c.Packages = len(per)
	for pkg, v := range per {
		c.Top = append(c.Top, PkgInit{Package: pkg, Ms: median(v)})
	}
	sortInits(c.Top)
	if len(c.Top) > 8 {
		c.Top = c.Top[:8]
	}
	return nil
}
