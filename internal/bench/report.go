package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Results is everything one run measured; -out writes it as JSON.
type Results struct {
	Machine     MachineInfo  `json:"machine"`
	Load        Load         `json:"load"`
	Latency     []LatencyRow `json:"latency"`
	AWSPerPass  AWSPerPass   `json:"awsPerPass"`
	AWSByStatus AWSByStatus  `json:"awsByStatus"`
	Throughput  Throughput   `json:"throughput"`
	Memory      Memory       `json:"memory"`
	Startup     Startup      `json:"startup"`
	ToCloud     ToCloud      `json:"requestToCloudCall"`
	Large       Large        `json:"largeRequest"`
	ClientInit  ClientInit   `json:"clientInit"`
	Targets     []Target     `json:"targets"`
	AllMet      bool         `json:"allMet"`
}

// MachineInfo names the machine a run was made on.
type MachineInfo struct {
	CPU          string `json:"cpu"`
	Cores        int    `json:"cores"`
	GoVersion    string `json:"go"`
	OS           string `json:"os"`
	Kernel       string `json:"kernel,omitempty"`
	ClientBytes  int64  `json:"clientBytes"`
	LoadAvgStart string `json:"loadAvgStart"`
	LoadAvgEnd   string `json:"loadAvgEnd"`
	ProbeBytes   int64  `json:"probeBytes"`
}

// Load is the load phase.
type Load struct {
	Requests           int     `json:"requests"`
	MachinesPerRequest int     `json:"machinesPerRequest"`
	RateLimitOff       bool    `json:"awsRateLimitOff"`
	Note               string  `json:"note,omitempty"`
	SubmitSeconds      float64 `json:"submitSeconds"`   // all requestMachines calls answered
	CompleteSeconds    float64 `json:"completeSeconds"` // every machine running, nothing in flight
}

// LatencyRow is one HF call's latency, spawned as HF spawns it.
type LatencyRow struct {
	Name       string  `json:"name"`
	Op         string  `json:"op"`
	Samples    int     `json:"samples"`
	P50Ms      float64 `json:"p50Ms"`
	P99Ms      float64 `json:"p99Ms"`
	MaxMs      float64 `json:"maxMs"`
	ProbeP50Ms float64 `json:"probeP50Ms"` // the floor: same op, same input, minimal client
	ProbeP99Ms float64 `json:"probeP99Ms"`
}

// AWSPerPass is the AWS calls of idle full reconcile passes (a listing of
// everything with ohfp's tag, and the busy passes until the next).
type AWSPerPass struct {
	Instances     int                `json:"instances"`
	Listings      int                `json:"listings"`
	Calls         map[string]int     `json:"calls"`
	PerPass       map[string]float64 `json:"perPass"`
	LastListingMs int64              `json:"lastListingMs"` // wall time, pauses for HF's calls included
	// CPU per full pass of ohfpd (the SDK's deserializer, the diff) and of
	// the simulated region (building the answers), from /proc/PID/stat.
	DaemonCPUms float64 `json:"daemonCpuMsPerPass"`
	SimCPUms    float64 `json:"simCpuMsPerPass"`
}

// AWSByStatus is the AWS calls made during 1,000 getRequestStatus calls.
type AWSByStatus struct {
	StatusCalls int            `json:"statusCalls"`
	Listings    int            `json:"listings"`
	Calls       map[string]int `json:"calls"`
	Caused      float64        `json:"caused"` // calls beyond listings x per-listing calls
}

// Throughput is concurrent spawned getRequestStatus calls.
type Throughput struct {
	Workers    int     `json:"workers"`
	Seconds    float64 `json:"seconds"`
	OK         int64   `json:"ok"`
	Failed     int64   `json:"failed"`
	PerSecond  float64 `json:"perSecond"`
	FirstError string  `json:"firstError,omitempty"`
	// The floor probe spawned the same way (half as long).
	ProbePerSecond float64 `json:"probePerSecond"`
	ProbeFailed    int64   `json:"probeFailed"`
}

// Memory is the daemon's resident memory with the load in memory.
type Memory struct {
	Machines     int   `json:"machines"`
	RSSBytes     int64 `json:"rssBytes"`
	PeakRSSBytes int64 `json:"peakRssBytes"`
}

// Startup is the restart from the store.
type Startup struct {
	StoredMachines int     `json:"storedMachines"`
	Seconds        float64 `json:"seconds"`
	RSSBytes       int64   `json:"rssBytes"`
	PeakRSSBytes   int64   `json:"peakRssBytes"`
}

// ToCloud is requestMachines' start to RunInstances at the region.
type ToCloud struct {
	Samples int     `json:"samples"`
	P50Ms   float64 `json:"p50Ms"`
	P99Ms   float64 `json:"p99Ms"`
	MaxMs   float64 `json:"maxMs"`
}

// Large is one large request timed to completion.
type Large struct {
	Machines                 int     `json:"machines"`
	ToCloudMs                float64 `json:"toCloudMs"`
	CompleteSeconds          float64 `json:"completeSeconds"`
	ReconcileIntervalSeconds float64 `json:"reconcileIntervalSeconds"`
}

// ClientInit is what the client's package initialisers cost.
type ClientInit struct {
	TotalMs  float64   `json:"totalMs"`
	Packages int       `json:"packages"`
	Top      []PkgInit `json:"top"`
}

// PkgInit is one package's initialiser cost (median of the runs).
type PkgInit struct {
	Package string  `json:"package"`
	Ms      float64 `json:"ms"`
}

// Target is one figure beside its target.
type Target struct {
	Figure string `json:"figure"`
	Value  string `json:"value"`
	Target string `json:"target"`
	Met    bool   `json:"met"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }

// pct is the nearest-rank percentile p of ds, in milliseconds.
func pct(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return ms(s[min(max(i, 0), len(s)-1)])
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return math.Round(s[len(s)/2]*1000) / 1000
}

func sortInits(p []PkgInit) {
	sort.Slice(p, func(i, j int) bool { return p[i].Ms > p[j].Ms })
}

func mb(b int64) float64 { return math.Round(float64(b)/(1<<20)*10) / 10 }

// judge sets the targets of issue 6 beside the figures.
func (r *Results) judge() {
	add := func(fig, val, tgt string, met bool) {
		r.Targets = append(r.Targets, Target{fig, val, tgt, met})
	}
	for _, l := range r.Latency {
		add(l.Name+" p50", fmt.Sprintf("%.2f ms (floor %.2f ms, %.2fx)", l.P50Ms, l.ProbeP50Ms, l.P50Ms/l.ProbeP50Ms),
			"<= 1.5x floor", l.P50Ms <= 1.5*l.ProbeP50Ms)
		add(l.Name+" p99", fmt.Sprintf("%.2f ms", l.P99Ms), "<= 12 ms", l.P99Ms <= 12)
	}
	a := r.AWSPerPass
	describes, health := 0.0, 0.0
	other := []string{}
	for k, v := range a.PerPass {
		switch k {
		case "DescribeInstances":
			describes = v
		case "DescribeInstanceStatus":
			health = v // host health checks (scheduled events, status checks), on by default
		default:
			other = append(other, fmt.Sprintf("%s %.1f", k, v))
		}
	}
	sort.Strings(other)
	val := fmt.Sprintf("DescribeInstances %.1f", describes)
	if health > 0 {
		val += fmt.Sprintf("; DescribeInstanceStatus %.1f", health)
	}
	if len(other) > 0 {
		val += "; " + strings.Join(other, ", ")
	}
	// With RunInstances only, no fleet or group describes are allowed.
	add(fmt.Sprintf("AWS calls per full reconcile pass (%d instances)", a.Instances), val, "<= 10 DescribeInstances, <= 10 DescribeInstanceStatus (health checks)",
		describes <= 10 && health <= 10 && len(other) == 0)
	add(fmt.Sprintf("AWS calls caused by %d getRequestStatus", r.AWSByStatus.StatusCalls),
		fmt.Sprintf("%.0f (window: %d full passes)", r.AWSByStatus.Caused, r.AWSByStatus.Listings), "0", math.Abs(r.AWSByStatus.Caused) < 0.5)
	t := r.Throughput
	add(fmt.Sprintf("Throughput, %d workers spawning ohfp", t.Workers), fmt.Sprintf("%.0f calls/s, %d failed (floor probe %.0f/s)", t.PerSecond, t.Failed, t.ProbePerSecond),
		">= 500/s, none failed", t.PerSecond >= 500 && t.Failed == 0)
	add(fmt.Sprintf("Daemon RSS, %d machines", r.Memory.Machines), fmt.Sprintf("%.1f MB (peak %.1f MB)", mb(r.Memory.RSSBytes), mb(r.Memory.PeakRSSBytes)),
		"<= 100 MB", r.Memory.RSSBytes <= 100<<20)
	add(fmt.Sprintf("Daemon RSS after restart, %d machines stored", r.Startup.StoredMachines), fmt.Sprintf("%.1f MB (peak %.1f MB)", mb(r.Startup.RSSBytes), mb(r.Startup.PeakRSSBytes)),
		"<= 100 MB", r.Startup.RSSBytes <= 100<<20)
	add(fmt.Sprintf("Start-up from a store of %d machines", r.Startup.StoredMachines), fmt.Sprintf("%.3f s", r.Startup.Seconds), "<= 1 s", r.Startup.Seconds <= 1)
	add("requestMachines to RunInstances at the region", fmt.Sprintf("p50 %.1f ms, p99 %.1f ms, max %.1f ms", r.ToCloud.P50Ms, r.ToCloud.P99Ms, r.ToCloud.MaxMs),
		"<= 50 ms", r.ToCloud.P99Ms <= 50)
	add(fmt.Sprintf("%d-machine request to complete", r.Large.Machines),
		fmt.Sprintf("%.2f s (cloud call after %.1f ms)", r.Large.CompleteSeconds, r.Large.ToCloudMs),
		fmt.Sprintf("bounded by the reconcile interval (%.0f s) + pass", r.Large.ReconcileIntervalSeconds),
		r.Large.CompleteSeconds <= 2*r.Large.ReconcileIntervalSeconds+1)
	r.AllMet = true
	for _, t := range r.Targets {
		r.AllMet = r.AllMet && t.Met
	}
}

func (r *Results) print(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "\nohfp benchmark: %s, %d cores, %s, %s (kernel %s); load average %s at start, %s at end\n",
		m.CPU, m.Cores, m.GoVersion, m.OS, m.Kernel, m.LoadAvgStart, m.LoadAvgEnd)
	fmt.Fprintf(w, "client %.1f MB, floor probe %.1f MB; load: %d requests x %d machines, all running after %.1f s (accepted in %.1f s)",
		mb(m.ClientBytes), mb(m.ProbeBytes), r.Load.Requests, r.Load.MachinesPerRequest, r.Load.CompleteSeconds, r.Load.SubmitSeconds)
	if r.Load.RateLimitOff {
		fmt.Fprint(w, ", aws_rate_limit: false\n")
	} else {
		fmt.Fprintf(w, "\nNOTE: %s\n", r.Load.Note)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HF call (spawned per call)\tsamples\tp50 ms\tp99 ms\tmax ms\tfloor p50\tfloor p99\tp50/floor\t")
	for _, l := range r.Latency {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2fx\t\n", l.Name, l.Samples, l.P50Ms, l.P99Ms, l.MaxMs, l.ProbeP50Ms, l.ProbeP99Ms, l.P50Ms/l.ProbeP50Ms)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\ttarget\tmet\t")
	for _, t := range r.Targets {
		met := "met"
		if !t.Met {
			met = "NOT MET"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", t.Figure, t.Value, t.Target, met)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nclient init (GODEBUG=inittrace=1, median of 21 runs): %.3f ms over %d packages; heaviest:", r.ClientInit.TotalMs, r.ClientInit.Packages)
	for _, p := range r.ClientInit.Top {
		fmt.Fprintf(w, " %s %.3f;", p.Package, p.Ms)
	}
	fmt.Fprintf(w, "\nfull reconcile pass with %d instances: listing %d ms wall (low priority, pausing for HF's calls), CPU per full pass %.0f ms in ohfpd, %.0f ms in the simulated region\n",
		r.AWSPerPass.Instances, r.AWSPerPass.LastListingMs, r.AWSPerPass.DaemonCPUms, r.AWSPerPass.SimCPUms)
	if r.AllMet {
		fmt.Fprintln(w, "all targets met")
	} else {
		fmt.Fprintln(w, "some targets NOT met")
	}
}
