package awssim

import (
	"container/heap"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ohfp/ohfp/internal/clock"
)

// NoDelay, given as Options.LaunchDelay or Options.TerminateDelay, makes the
// transition happen at the next tick (the next request or Tick call) instead
// of after the default delay.
const NoDelay time.Duration = -1

// Options configures a simulated region. The zero value is usable.
type Options struct {
	// Region is the AWS region name; default us-east-1.
	Region string
	// Clock drives every transition; default clock.Real{}.
	Clock clock.Clock
	// LaunchDelay is how long an instance stays pending before it runs;
	// default 1s; NoDelay: at the next tick.
	LaunchDelay time.Duration
	// TerminateDelay is how long an instance stays shutting-down (or
	// stopping) before it is terminated (or stopped); default 1s; NoDelay:
	// at the next tick.
	TerminateDelay time.Duration
	// TerminatedRetention is how long terminated instances stay visible to
	// DescribeInstances. 0 (the default): as AWS, "up to about an hour,
	// often less": each instance its own time, uniformly in [5m, 1h].
	TerminatedRetention time.Duration
	// Consistency bounds the eventual-consistency window (see
	// consistency.go): 0 means DefaultConsistencyWindow, Immediate (-1)
	// turns it off.
	Consistency time.Duration
	// Logger receives the region's logs; default: discard.
	Logger *slog.Logger
	// Seed makes generated ids deterministic; 0 picks a fixed default seed.
	Seed int64
}

// AccountID is the account every simulated resource belongs to.
const AccountID = "123456789012"

// handler serves one API action. It runs with the region's lock held and
// returns the response value to encode (XML structs for the query protocols,
// JSON-taggable values for SSM) or an error (an *APIError is sent as is,
// any other error becomes InternalError).
type handler func(*call) (any, error)

// Region is one simulated AWS region: EC2, Auto Scaling and SSM sharing one
// state under one mutex. Create it with New.
type Region struct {
	opts Options
	clk  clock.Clock
	log  *slog.Logger
	name string

	// handlers per service; filled in New, read-only afterwards.
	ec2         map[string]handler
	autoscaling map[string]handler
	ssm         map[string]handler
	pricing     map[string]handler
	// servicequotas serves Service Quotas (quotas.go).
	servicequotas map[string]handler
	// actionClass maps an EC2 action to its throttling bucket class; actions
	// not listed are classified by name (Describe*/Get* non-mutating).
	actionClass map[string]bucketClass

	mu  sync.Mutex
	rng *rand.Rand
	now time.Time // time of the last advance

	vpc      *vpc
	subnets  []*subnet
	subnetBy map[string]*subnet
	sgs      []*securityGroup
	types    map[string]*instanceType
	typeList []*instanceType // sorted by name
	images   map[string]*image
	imgList  []*image
	params   map[string]*ssmParam

	instances map[string]*instance
	order     []*instance // launch order; pagination walks it
	purged    int         // purged instances still in order
	seq       int64
	pools     map[poolKey]*pool

	spotReqs  map[string]*spotRequest
	spotOrder []*spotRequest
	// spotSet: Spot prices the /_sim/prices lever set, per type and AZ,
	// oldest first (pricing.go).
	spotSet map[spotKey][]pricePoint
	// quotas: the EC2 quota values the /_sim/quotas lever applied, by
	// quota code (quotas.go).
	quotas map[string]float64

	lts      map[string]*launchTemplate
	ltByName map[string]*launchTemplate
	ltOrder  []*launchTemplate

	tokens map[string]*idemEntry
	// tagLookups lets CreateTags reach resources of other files: id prefix
	// with its dash ("fleet-", "sfr-") -> the resource's tag map.
	tagLookups map[string]func(id string) (map[string]string, error)
	// volumes: instances' EBS volumes by id, and in creation order
	// (volumes.go).
	volumes  map[string]*volume
	volOrder []*volume

	events eventHeap
	// tickers run under the lock at the end of every advance, after the due
	// events, with the advance's time.
	tickers []func(now time.Time)
	// onInstanceGone run under the lock, once per instance, when it stops
	// being live: it enters shutting-down, stopping, or is terminated
	// without passing through shutting-down.
	onInstanceGone []func(inst *instance, now time.Time)

	levers      levers
	sqs         *sqsState                  // queues and EventBridge delivery (sqs.go)
	health      map[string]*instanceHealth // status checks and scheduled events (instancestatus.go)
	consistency time.Duration              // eventual-consistency window; 0: off
	buckets     map[bucketClass]*bucket
	calls       map[string]int
	actions     []Action // calls that changed the cloud (Actions)
	errs        map[string]int
	errCodes    map[string]int // "Action Code" -> requests answered so
}

// New builds a region seeded with a VPC, three subnets in three AZs, a
// default security group, an instance type catalogue, AMIs and the SSM
// public AMI parameters.
func New(opts Options) *Region {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.LaunchDelay == 0 {
		opts.LaunchDelay = time.Second
	}
	if opts.TerminateDelay == 0 {
		opts.TerminateDelay = time.Second
	}
	if opts.LaunchDelay < 0 {
		opts.LaunchDelay = 0
	}
	if opts.TerminateDelay < 0 {
		opts.TerminateDelay = 0
	}
	if opts.Consistency == 0 {
		opts.Consistency = DefaultConsistencyWindow
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	seed := uint64(opts.Seed)
	if seed == 0 {
		seed = 0x0f1f9
	}
	r := &Region{
		opts:        opts,
		clk:         opts.Clock,
		log:         opts.Logger.With("component", "awssim", "region", opts.Region),
		name:        opts.Region,
		ec2:         map[string]handler{},
		autoscaling: map[string]handler{},
		ssm:         map[string]handler{},
		actionClass: map[string]bucketClass{},
		rng:         rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		subnetBy:    map[string]*subnet{},
		types:       map[string]*instanceType{},
		images:      map[string]*image{},
		params:      map[string]*ssmParam{},
		instances:   map[string]*instance{},
		pools:       map[poolKey]*pool{},
		spotReqs:    map[string]*spotRequest{},
		spotSet:     map[spotKey][]pricePoint{},
		lts:         map[string]*launchTemplate{},
		ltByName:    map[string]*launchTemplate{},
		tokens:      map[string]*idemEntry{},
		tagLookups:  map[string]func(string) (map[string]string, error){},
		volumes:     map[string]*volume{},
		calls:       map[string]int{},
		errs:        map[string]int{},
		errCodes:    map[string]int{},
	}
	r.now = r.clk.Now()
	r.consistency = max(opts.Consistency, 0)
	r.seed()
	r.initLevers()
	r.sqsInit()
	r.health = map[string]*instanceHealth{}
	r.ec2["DescribeInstanceStatus"] = r.describeInstanceStatus // instancestatus.go
	r.registerEC2()
	r.registerSSM()
	r.registerPricing()
	r.registerQuotas()
	r.registerExtensions()
	return r
}

// Name returns the region name, e.g. us-east-1.
func (r *Region) Name() string { return r.name }

// ---------------------------------------------------------------------------
// seeded resources

type vpc struct {
	id   string
	cidr string
}

type subnet struct {
	id      string
	az      string
	azID    string
	cidr    netip.Prefix
	base    uint32 // first address as integer
	size    uint32 // number of addresses
	next    uint32 // next never-used host offset
	free    []uint32
	inUse   int
	tags    map[string]string
	dflt    bool
	tagKeys []string
}

type securityGroup struct {
	id, name, description string
}

type instanceType struct {
	name         string
	vcpus, cores int
	threads      int
	memoryMiB    int
	arch         string // x86_64 or arm64
	price        float64
	clockGHz     float64
}

type image struct {
	id, name, description, arch string
	created                     time.Time
	owner                       string
	rootDevice                  string
}

type ssmParam struct {
	name, value, typ string
	version          int64
	modified         time.Time
}

type poolKey struct{ typ, az string }

type pool struct {
	limit int // -1: unlimited
	used  int // live (pending, running, stopping, shutting-down) instances
}

func (r *Region) seed() {
	r.vpc = &vpc{id: r.newID("vpc-"), cidr: "10.0.0.0/16"}
	azs := []string{"a", "b", "c"}
	for i, suffix := range azs {
		p := netip.MustParsePrefix(fmt.Sprintf("10.0.%d.0/19", i*32))
		a := p.Addr().As4()
		s := &subnet{
			id:   r.newID("subnet-"),
			az:   r.name + suffix,
			azID: fmt.Sprintf("use1-az%d", i+1),
			cidr: p,
			base: uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]),
			size: 1 << (32 - p.Bits()),
			next: 4, // AWS reserves the first four addresses
			dflt: true,
			tags: map[string]string{"Name": fmt.Sprintf("sim-%s%s", r.name, suffix)},
		}
		r.subnets = append(r.subnets, s)
		r.subnetBy[s.id] = s
	}
	r.sgs = append(r.sgs, &securityGroup{id: r.newID("sg-"), name: "default", description: "default VPC security group"})

	for _, t := range []instanceType{
		{name: "t3.micro", vcpus: 2, cores: 1, threads: 2, memoryMiB: 1024, arch: "x86_64", price: 0.0104, clockGHz: 2.5},
		{name: "t3.small", vcpus: 2, cores: 1, threads: 2, memoryMiB: 2048, arch: "x86_64", price: 0.0208, clockGHz: 2.5},
		{name: "t3.medium", vcpus: 2, cores: 1, threads: 2, memoryMiB: 4096, arch: "x86_64", price: 0.0416, clockGHz: 2.5},
		{name: "t3.large", vcpus: 2, cores: 1, threads: 2, memoryMiB: 8192, arch: "x86_64", price: 0.0832, clockGHz: 2.5},
		{name: "m5.large", vcpus: 2, cores: 1, threads: 2, memoryMiB: 8192, arch: "x86_64", price: 0.096, clockGHz: 3.1},
		{name: "m5.xlarge", vcpus: 4, cores: 2, threads: 2, memoryMiB: 16384, arch: "x86_64", price: 0.192, clockGHz: 3.1},
		{name: "m5.2xlarge", vcpus: 8, cores: 4, threads: 2, memoryMiB: 32768, arch: "x86_64", price: 0.384, clockGHz: 3.1},
		{name: "c5.large", vcpus: 2, cores: 1, threads: 2, memoryMiB: 4096, arch: "x86_64", price: 0.085, clockGHz: 3.4},
		{name: "c5.xlarge", vcpus: 4, cores: 2, threads: 2, memoryMiB: 8192, arch: "x86_64", price: 0.17, clockGHz: 3.4},
		{name: "c5.2xlarge", vcpus: 8, cores: 4, threads: 2, memoryMiB: 16384, arch: "x86_64", price: 0.34, clockGHz: 3.4},
		{name: "r5.large", vcpus: 2, cores: 1, threads: 2, memoryMiB: 16384, arch: "x86_64", price: 0.126, clockGHz: 3.1},
		{name: "c6g.large", vcpus: 2, cores: 2, threads: 1, memoryMiB: 4096, arch: "arm64", price: 0.068, clockGHz: 2.5},
		{name: "m6g.large", vcpus: 2, cores: 2, threads: 1, memoryMiB: 8192, arch: "arm64", price: 0.077, clockGHz: 2.5},
	} {
		t := t
		r.types[t.name] = &t
		r.typeList = append(r.typeList, &t)
	}
	sort.Slice(r.typeList, func(i, j int) bool { return r.typeList[i].name < r.typeList[j].name })

	created := time.Date(2025, 1, 15, 0, 0, 0, 0, time.UTC)
	add := func(name, desc, arch string) *image {
		im := &image{id: r.newID("ami-"), name: name, description: desc, arch: arch, created: created, owner: "137112412989", rootDevice: "/dev/xvda"}
		r.images[im.id] = im
		r.imgList = append(r.imgList, im)
		return im
	}
	al2023x := add("al2023-ami-2023.6.20250115.0-kernel-6.1-x86_64", "Amazon Linux 2023 AMI 2023.6.20250115.0 x86_64 HVM kernel-6.1", "x86_64")
	al2023a := add("al2023-ami-2023.6.20250115.0-kernel-6.1-arm64", "Amazon Linux 2023 AMI 2023.6.20250115.0 arm64 HVM kernel-6.1", "arm64")
	al2x := add("amzn2-ami-hvm-2.0.20250115.0-x86_64-gp2", "Amazon Linux 2 AMI 2.0.20250115.0 x86_64 HVM gp2", "x86_64")
	add("amzn2-ami-hvm-2.0.20250115.0-arm64-gp2", "Amazon Linux 2 AMI 2.0.20250115.0 arm64 HVM gp2", "arm64")
	const pfx = "/aws/service/ami-amazon-linux-latest/"
	for name, im := range map[string]*image{
		pfx + "al2023-ami-kernel-6.1-x86_64":     al2023x,
		pfx + "al2023-ami-kernel-default-x86_64": al2023x,
		pfx + "al2023-ami-kernel-6.1-arm64":      al2023a,
		pfx + "al2023-ami-kernel-default-arm64":  al2023a,
		pfx + "amzn2-ami-hvm-x86_64-gp2":         al2x,
	} {
		r.params[name] = &ssmParam{name: name, value: im.id, typ: "String", version: 1, modified: created}
	}
}

// newID returns prefix followed by 17 random lowercase hex digits, the form
// of modern EC2 ids (i-, r-, ami-, subnet-, sg-, vpc-, lt-, fleet- uses a
// UUID: see newUUIDID).
func (r *Region) newID(prefix string) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(prefix) + 17)
	b.WriteString(prefix)
	for range 17 {
		b.WriteByte(hex[r.rng.IntN(16)])
	}
	return b.String()
}

// newShortID returns prefix followed by n random lowercase alphanumerics,
// e.g. sir-8charsxx.
func (r *Region) newShortID(prefix string, n int) string {
	const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b strings.Builder
	b.WriteString(prefix)
	for range n {
		b.WriteByte(alnum[r.rng.IntN(len(alnum))])
	}
	return b.String()
}

// newUUIDID returns prefix followed by a random UUID, the form of EC2 Fleet
// ids (fleet-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) and Spot Fleet request ids
// (sfr-...).
func (r *Region) newUUIDID(prefix string) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.WriteString(prefix)
	for i := range 32 {
		if i == 8 || i == 12 || i == 16 || i == 20 {
			b.WriteByte('-')
		}
		b.WriteByte(hex[r.rng.IntN(16)])
	}
	return b.String()
}

// requestID returns a request id in AWS's UUID form.
func (r *Region) requestID() string {
	return r.newUUIDID("")
}

// defaultSubnet returns the subnet used when a call names none: the one
// with the most free addresses, as AWS picks a default subnet per AZ.
func (r *Region) defaultSubnet() *subnet {
	best := r.subnets[0]
	for _, s := range r.subnets[1:] {
		if s.inUse < best.inUse {
			best = s
		}
	}
	return best
}

func (s *subnet) availableIPs() int {
	return int(s.size) - 5 - s.inUse
}

func (s *subnet) allocIP() (netip.Addr, bool) {
	var off uint32
	switch {
	case len(s.free) > 0:
		off = s.free[0]
		s.free = s.free[1:]
	case s.next < s.size-1: // the last address is reserved (broadcast)
		off = s.next
		s.next++
	default:
		return netip.Addr{}, false
	}
	s.inUse++
	v := s.base + off
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

func (s *subnet) releaseIP(a netip.Addr) {
	if !a.IsValid() || !s.cidr.Contains(a) {
		return
	}
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	s.free = append(s.free, v-s.base)
	s.inUse--
}

// privateDNS returns the private DNS name AWS gives an address.
func (r *Region) privateDNS(a netip.Addr) string {
	h := "ip-" + strings.ReplaceAll(a.String(), ".", "-")
	if r.name == "us-east-1" {
		return h + ".ec2.internal"
	}
	return h + "." + r.name + ".compute.internal"
}

func (r *Region) pool(typ, az string) *pool {
	k := poolKey{typ, az}
	p := r.pools[k]
	if p == nil {
		p = &pool{limit: -1}
		r.pools[k] = p
	}
	return p
}

func (p *pool) available() int {
	if p.limit < 0 {
		return 1 << 30
	}
	return max(0, p.limit-p.used)
}

// ---------------------------------------------------------------------------
// time: events and advance

type event struct {
	at  time.Time
	seq int64
	fn  func(at time.Time)
}

type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// schedule runs fn under the lock at the first advance whose time is at or
// after at; fn receives at (not the advance's time), so state changes carry
// the time they were due. Call with the lock held. fn must check that the
// change it makes still applies (the object may have moved on).
func (r *Region) schedule(at time.Time, fn func(at time.Time)) {
	r.seq++
	heap.Push(&r.events, &event{at: at, seq: r.seq, fn: fn})
}

// advance brings the state up to now: due events in time order, then the
// tickers, then purges. Call with the lock held; every request does so
// first.
func (r *Region) advance(now time.Time) {
	if now.Before(r.now) {
		now = r.now // the clock never goes back for the region
	}
	r.now = now
	for len(r.events) > 0 && !r.events[0].at.After(now) {
		e := heap.Pop(&r.events).(*event)
		e.fn(e.at)
	}
	for _, t := range r.tickers {
		t(now)
	}
	// tickers may have scheduled immediate events (e.g. NoDelay launches
	// stay pending until the next tick, as documented).
	r.compact()
}

// Tick advances the region's state to the clock's current time. Tests call
// it after advancing a fake clock; requests do it implicitly.
func (r *Region) Tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.advance(r.clk.Now())
}

// compact drops purged instances from the ordered slice once they are a
// good share of it, so pagination stays O(page) amortised.
func (r *Region) compact() {
	if r.purged == 0 || r.purged < len(r.order)/4 {
		return
	}
	out := r.order[:0]
	for _, in := range r.order {
		if !in.purged {
			out = append(out, in)
		}
	}
	clear(r.order[len(out):])
	r.order = out
	r.purged = 0
}

// ---------------------------------------------------------------------------
// idempotency

type idemEntry struct {
	fingerprint string
	result      any
	at          time.Time
}

// idempotent looks up a client token in a namespace (e.g. "RunInstances",
// "CreateFleet"). found reports a previous call with the same token; if its
// fingerprint differs, err is IdempotentParameterMismatch. Call remember
// after a successful call. Tokens are kept for 7 days, as AWS documents
// for RunInstances... and forever here, which is close enough for a
// simulation.
func (r *Region) idempotent(namespace, token, fingerprint string) (result any, found bool, err error) {
	if token == "" {
		return nil, false, nil
	}
	e := r.tokens[namespace+"\x00"+token]
	if e == nil {
		return nil, false, nil
	}
	if e.fingerprint != fingerprint {
		return nil, true, &APIError{Code: "IdempotentParameterMismatch", Message: "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).", Status: 400}
	}
	return e.result, true, nil
}

// remember records the result of a successful call under its client token.
func (r *Region) remember(namespace, token, fingerprint string, result any) {
	if token == "" {
		return
	}
	r.tokens[namespace+"\x00"+token] = &idemEntry{fingerprint: fingerprint, result: result, at: r.now}
}
