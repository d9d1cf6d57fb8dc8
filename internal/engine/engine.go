// Package engine owns ohfpd's state: requests, machines and templates in
// memory, written through to the store. It answers HF's operations from
// memory, runs the provisioner (launches and terminations in the
// background) and the reconciler (one pass against the cloud at a time).
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ohfp/ohfp/internal/clock"
	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/quiet"
	"github.com/ohfp/ohfp/internal/store"
	"github.com/ohfp/ohfp/internal/template"
)

// KV is the part of the store the engine uses.
type KV interface {
	Write(ops ...store.Op) error
	Scan(prefix string, fn func(key string, value []byte) error) error
}

// ProviderConfig is one HF provider instance: its templates and its cloud.
type ProviderConfig struct {
	Name           string
	Templates      []template.Template
	Cloud          provider.Provider
	PendingTimeout time.Duration // default 180 s
}

// Options configure an Engine.
type Options struct {
	ClusterID      string // value of the ohfp:managed-by tag
	Providers      []ProviderConfig
	Store          KV
	Clock          clock.Clock
	Logger         *slog.Logger
	ActiveInterval time.Duration // reconcile delay while work is in flight (default 3 s)
	IdleInterval   time.Duration // reconcile delay when idle (default 30 s)
	Retention      time.Duration // how long final requests and ended machines are kept (default 7 days)
	LaunchDeadline time.Duration // how long transient launch errors are retried (default 10 min)
	// VisibilityGrace is how long a just-launched instance may be missing
	// from DescribeInstances (EC2 is eventually consistent) before it is
	// taken as gone (default 2 min).
	VisibilityGrace time.Duration
	// ClaimTimeout: an acquire request HF never showed it knows (no
	// getRequestStatus for it, none of its machines returned or listed in
	// getReturnRequests) is taken as lost with a crash before its answer,
	// and its machines are terminated, once HF's own getReturnRequests
	// calls, which list every host HF holds, have left its machines out
	// for this long (default 30 min) as seen by this process. Nothing a
	// restart erases counts: the claim is persisted, and the evidence
	// starts again at every start (see provenUnclaimedLocked).
	ClaimTimeout time.Duration
	// LaunchWorkers bounds concurrent cloud calls of the provisioner.
	LaunchWorkers int
	// Gate, when set, marks the calls being served. A due full reconcile
	// listing starts only at a pause in them (quiet.Gap), or once it has
	// been put off for two idle intervals; until then passes describe
	// what is in flight, every active interval. Started at a pause, it
	// waits for a pause (at most quiet.MaxWait each time, quiet.MaxTotal
	// in all) before each page and before its diff takes the engine's
	// lock; put off that long, it runs without waiting.
	Gate    *quiet.Gate
	Version string
}

// Store key prefixes.
const (
	keyRequest  = "r/"
	keyMachine  = "m/"
	keyTypeInfo = "t/"
)

// Engine is the daemon's state and behaviour. It is safe for concurrent use.
type Engine struct {
	opts  Options
	log   *slog.Logger
	clk   clock.Clock
	store KV

	admit sync.Mutex // serialises requestMachines and requestReturnMachines

	mu        sync.RWMutex
	providers map[string]*prov
	order     []string // provider names; the first is the default
	requests  map[string]*domain.Request
	machines  map[string]*domain.Machine
	byName    map[string]*domain.Machine
	typeInfo  map[string]provider.InstanceTypeInfo
	inflight  map[string]bool // request ids with a cloud call under way
	// termInflight: instance ids with a termination or release under way.
	termInflight map[string]bool
	seq          uint64 // machine creation counter (see domain.Machine.Seq)
	// holdings counts HF's getReturnRequests calls in this process: each
	// lists every host HF holds, so calls that leave a request's machines
	// out are the evidence that HF never learned of it.
	holdings struct {
		calls atomic.Int64
		last  atomic.Int64 // engine-clock UnixNano of the latest call
	}
	// claimWatch: for requests awaiting HF's claim, the getReturnRequests
	// call from which their absence counts (in memory: a restart starts
	// the evidence again).
	claimWatch map[string]claimMark
	// undelivered: requests recorded whose requestMachines answer is still
	// being written to the caller; nothing is launched for them until it
	// is delivered (see RequestMachinesHeld).
	undelivered map[string]bool
	// unsaved: keys of records whose write failed (see persist).
	unsavedMu sync.Mutex
	unsaved   map[string]bool
	started   time.Time
	health    Health

	wakeLaunch    chan struct{}
	wakeReconcile chan struct{}
	sem           chan struct{}
	wg            sync.WaitGroup
}

type prov struct {
	cfg       ProviderConfig
	templates map[string]*template.Template
	order     []string
	lastFull  time.Time // last full listing (reconcile goroutine only)
	// fullDeferred is when a due full listing was first put off for want of
	// a pause in HF's calls (wall time; zero when none is waiting).
	fullDeferred time.Time
}

// Health is what the engine knows of its own progress, for status and
// metrics.
type Health struct {
	LastReconcile      time.Time
	LastReconcileTook  time.Duration
	LastReconcileError string
	Reconciles         int
	Listings           int           // full listings done, over all providers
	LastListing        time.Time     // when the last one started
	LastListingTook    time.Duration // its listing, pauses for HF's calls included
	LaunchCalls        int
	TerminateCalls     int
	CloudNote          string // e.g. "AWS throttling, retrying in 8 s"
}

// New builds an engine and loads its state from the store.
func New(opts Options) (*Engine, error) {
	if opts.Store == nil {
		return nil, errors.New("engine: no store")
	}
	if len(opts.Providers) == 0 {
		return nil, errors.New("engine: no provider configured")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ClusterID == "" {
		opts.ClusterID = "ohfp"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.ActiveInterval, 3*time.Second)
	def(&opts.IdleInterval, 30*time.Second)
	def(&opts.Retention, 7*24*time.Hour)
	def(&opts.LaunchDeadline, 10*time.Minute)
	def(&opts.VisibilityGrace, 2*time.Minute)
	def(&opts.ClaimTimeout, 30*time.Minute)
	if opts.LaunchWorkers <= 0 {
		opts.LaunchWorkers = 8
	}
	e := &Engine{
		opts:          opts,
		log:           opts.Logger,
		clk:           opts.Clock,
		store:         opts.Store,
		requests:      map[string]*domain.Request{},
		machines:      map[string]*domain.Machine{},
		byName:        map[string]*domain.Machine{},
		typeInfo:      map[string]provider.InstanceTypeInfo{},
		inflight:      map[string]bool{},
		termInflight:  map[string]bool{},
		claimWatch:    map[string]claimMark{},
		undelivered:   map[string]bool{},
		unsaved:       map[string]bool{},
		wakeLaunch:    make(chan struct{}, 1),
		wakeReconcile: make(chan struct{}, 1),
		sem:           make(chan struct{}, opts.LaunchWorkers),
	}
	e.started = e.clk.Now()
	if err := e.setProviders(opts.Providers); err != nil {
		return nil, err
	}
	if err := e.load(); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Engine) setProviders(cfgs []ProviderConfig) error {
	ps := map[string]*prov{}
	var order []string
	for _, c := range cfgs {
		if c.Cloud == nil {
			return fmt.Errorf("engine: provider %q has no cloud", c.Name)
		}
		if _, dup := ps[c.Name]; dup {
			return fmt.Errorf("engine: provider %q configured twice", c.Name)
		}
		if c.PendingTimeout <= 0 {
			c.PendingTimeout = 180 * time.Second
		}
		p := &prov{cfg: c, templates: map[string]*template.Template{}}
		for i := range c.Templates {
			t := c.Templates[i]
			p.templates[t.TemplateID] = &t
			p.order = append(p.order, t.TemplateID)
		}
		ps[c.Name] = p
		order = append(order, c.Name)
	}
	e.providers = ps
	e.order = order
	return nil
}

// Reload swaps in new providers and templates. Requests and machines are
// kept; requests of templates that disappeared keep being served.
func (e *Engine) Reload(cfgs []ProviderConfig) error {
	e.admit.Lock()
	defer e.admit.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	old, oldOrder := e.providers, e.order
	if err := e.setProviders(cfgs); err != nil {
		e.providers, e.order = old, oldOrder
		return err
	}
	e.kick(e.wakeReconcile)
	return nil
}

// load rebuilds the aggregates from the store.
func (e *Engine) load() error {
	err := e.store.Scan(keyRequest, func(_ string, v []byte) error {
		var r domain.Request
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode request: %w", err)
		}
		e.requests[r.ID] = &r
		return nil
	})
	if err != nil {
		return fmt.Errorf("load requests: %w", err)
	}
	err = e.store.Scan(keyMachine, func(_ string, v []byte) error {
		var m domain.Machine
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("decode machine: %w", err)
		}
		e.machines[m.ID] = &m
		if m.Name != "" {
			e.byName[m.Name] = &m
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load machines: %w", err)
	}
	for _, r := range e.requests {
		if r.AwaitingClaim {
			for _, id := range r.MachineIDs {
				if m := e.machines[id]; m != nil {
					m.AwaitingClaim = true
				}
			}
		}
	}
	err = e.store.Scan(keyTypeInfo, func(_ string, v []byte) error {
		var ti provider.InstanceTypeInfo
		if err := json.Unmarshal(v, &ti); err != nil {
			return nil // a cache entry; refetched when needed
		}
		e.typeInfo[ti.Name] = ti
		return nil
	})
	if err != nil {
		return fmt.Errorf("load instance types: %w", err)
	}
	return nil
}

// persist writes requests and machines in one synchronous batch. When the
// write fails (a full or read-only disk), their keys are remembered and
// written again, as they then stand in memory, by every later reconcile
// pass until a write succeeds (saveUnsaved): memory never stays ahead of
// the disk for longer than the disk is unwritable.
func (e *Engine) persist(reqs []*domain.Request, ms []*domain.Machine, deletes ...string) error {
	if len(reqs) == 0 && len(ms) == 0 && len(deletes) == 0 {
		return nil
	}
	err := e.write(reqs, ms, deletes...)
	if err != nil {
		e.unsavedMu.Lock()
		for _, r := range reqs {
			e.unsaved[keyRequest+r.ID] = true
		}
		for _, m := range ms {
			e.unsaved[keyMachine+m.ID] = true
		}
		for _, k := range deletes {
			e.unsaved[k] = true
		}
		e.unsavedMu.Unlock()
	}
	return err
}

// saveUnsaved writes again what persist could not write, as it now stands
// in memory (a record gone from memory is deleted). Called with e.mu held.
func (e *Engine) saveUnsaved() {
	e.unsavedMu.Lock()
	defer e.unsavedMu.Unlock()
	if len(e.unsaved) == 0 {
		return
	}
	var reqs []*domain.Request
	var ms []*domain.Machine
	var deletes []string
	for k := range e.unsaved {
		switch {
		case strings.HasPrefix(k, keyRequest):
			if r := e.requests[k[len(keyRequest):]]; r != nil {
				reqs = append(reqs, r)
				continue
			}
		case strings.HasPrefix(k, keyMachine):
			if m := e.machines[k[len(keyMachine):]]; m != nil {
				ms = append(ms, m)
				continue
			}
		}
		deletes = append(deletes, k)
	}
	if err := e.write(reqs, ms, deletes...); err != nil {
		e.log.Warn("state still not written to disk; retrying at the next pass", "records", len(e.unsaved), "err", err)
		return
	}
	e.log.Info("state written to disk again after earlier failures", "records", len(e.unsaved))
	clear(e.unsaved)
}

// Unsaved is how many records memory holds that the disk does not yet.
func (e *Engine) Unsaved() int {
	e.unsavedMu.Lock()
	defer e.unsavedMu.Unlock()
	return len(e.unsaved)
}

// write encodes and writes records in one synchronous batch.
func (e *Engine) write(reqs []*domain.Request, ms []*domain.Machine, deletes ...string) error {
	ops := make([]store.Op, 0, len(reqs)+len(ms)+len(deletes))
	for _, r := range reqs {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		ops = append(ops, store.Op{Key: keyRequest + r.ID, Value: b})
	}
	for _, m := range ms {
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		ops = append(ops, store.Op{Key: keyMachine + m.ID, Value: b})
	}
	for _, k := range deletes {
		ops = append(ops, store.Op{Key: k, Delete: true})
	}
	return e.store.Write(ops...)
}

func (e *Engine) kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run runs the provisioner and the reconciler until ctx ends, then waits
// for cloud calls under way to finish.
func (e *Engine) Run(ctx context.Context) error {
	// One pass before launching anything: after a crash it adopts instances
	// already tagged with unfinished requests, so they are not launched
	// twice.
	next := e.ReconcileOnce(ctx)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.provisionLoop(ctx)
	}()
	due := time.Now().Add(next)
	t := time.NewTimer(next)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			e.wg.Wait()
			return nil
		case <-e.wakeReconcile:
			// Work arrived: bring the next pass forward, never push it back
			// (a stream of requests must not starve the reconciler).
			if time.Until(due) > e.opts.ActiveInterval {
				if !t.Stop() {
					select {
					case <-t.C:
					default:
					}
				}
				due = time.Now().Add(e.opts.ActiveInterval)
				t.Reset(e.opts.ActiveInterval)
			}
		case <-t.C:
			next = e.ReconcileOnce(ctx)
			due = time.Now().Add(next)
			t.Reset(next)
		}
	}
}

func (e *Engine) provisionLoop(ctx context.Context) {
	for {
		wait := e.ProvisionOnce(ctx)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-e.wakeLaunch:
			t.Stop()
		case <-t.C:
		}
	}
}

// Wait blocks until every cloud call the provisioner started has returned.
// Tests use it after ProvisionOnce.
func (e *Engine) Wait() { e.wg.Wait() }

// ProvisionOnce starts the cloud calls that are due (launches of queued
// requests, terminations of returned or abandoned machines) and returns
// how long until the next one is due. The calls run in the background;
// Wait waits for them.
func (e *Engine) ProvisionOnce(ctx context.Context) time.Duration {
	now := e.clk.Now()
	next := e.opts.IdleInterval
	var launches []*domain.Request
	e.mu.Lock()
	for _, r := range e.requests {
		if r.Kind != domain.KindAcquire || r.Phase != domain.PhaseQueued || e.inflight[r.ID] || e.undelivered[r.ID] {
			continue
		}
		if r.NextAttempt.After(now) {
			if d := r.NextAttempt.Sub(now); d < next {
				next = d
			}
			continue
		}
		e.inflight[r.ID] = true
		launches = append(launches, r)
	}
	jobs := e.dueJobsLocked()
	e.mu.Unlock()

	sort.Slice(launches, func(i, j int) bool { return launches[i].CreatedAt.Before(launches[j].CreatedAt) })
	for _, r := range launches {
		e.wg.Add(1)
		e.sem <- struct{}{}
		go func(id string) {
			defer e.wg.Done()
			defer func() { <-e.sem }()
			e.launch(ctx, id)
		}(r.ID)
	}
	for _, j := range jobs {
		e.wg.Add(1)
		go func(j job) {
			defer e.wg.Done()
			e.runJob(ctx, j)
		}(j)
	}
	return next
}

func (e *Engine) launch(ctx context.Context, id string) {
	defer func() {
		e.mu.Lock()
		delete(e.inflight, id)
		r := e.requests[id]
		again := r != nil && r.Phase == domain.PhaseQueued && !r.NextAttempt.After(e.clk.Now()) && ctx.Err() == nil
		e.mu.Unlock()
		if again { // due at once (the next capacity pool): not at the next wake-up
			e.kick(e.wakeLaunch)
		}
	}()
	e.mu.Lock()
	r := e.requests[id]
	if r == nil || r.Phase != domain.PhaseQueued {
		e.mu.Unlock()
		return
	}
	p := e.providers[r.Provider]
	var tpl *template.Template
	if p != nil {
		tpl = p.templates[r.TemplateID]
	}
	if p == nil || tpl == nil {
		r.Phase = domain.PhaseFailed
		r.LaunchError = fmt.Sprintf("template %q of provider %q is no longer configured; nothing was launched", r.TemplateID, r.Provider)
		e.finishLocked(r)
		err := e.persist([]*domain.Request{r}, nil)
		e.mu.Unlock()
		if err != nil {
			e.log.Error("persist request", "request", id, "err", err)
		}
		return
	}
	// Write ahead: the attempt (and its token) is durable before the call.
	r.Attempts++
	spec := provider.LaunchSpec{
		RequestID:   r.ID,
		ClientToken: r.ClientToken,
		Template:    *tpl,
		Units:       r.Units,
		Tags:        e.tagsFor(r, tpl),
	}
	if r.FallbackUnits > 0 {
		// Ask on-demand only what Spot has still not filled.
		have, _ := e.unitsLocked(r)
		if r.Units-have <= 0 {
			r.Phase = domain.PhaseLaunched
			err := e.persist([]*domain.Request{r}, nil)
			e.mu.Unlock()
			if err != nil {
				e.log.Error("persist request", "request", id, "err", err)
			}
			return
		}
		r.FallbackUnits = r.Units - have
		spec.Template, spec.ClientToken = fallbackSpec(r, *tpl)
		spec.Units = r.FallbackUnits
		tpl = &spec.Template
	}
	whole := tpl // the template before a pool narrows it
	if r.FallbackUnits == 0 && pools(whole) > 1 {
		spec.Template, spec.ClientToken = poolSpec(r, *whole)
		tpl = &spec.Template
	}
	err := e.persist([]*domain.Request{r}, nil)
	e.mu.Unlock()
	if err != nil {
		e.log.Error("persist launch attempt; will retry", "request", id, "err", err)
		e.mu.Lock()
		r.Attempts--
		r.NextAttempt = e.clk.Now().Add(5 * time.Second)
		e.mu.Unlock()
		return
	}

	e.log.Info("launching", "request", id, "template", r.TemplateID, "units", r.Units, "api", tpl.API(), "attempt", r.Attempts)
	res, lerr := p.cfg.Cloud.Launch(ctx, spec)
	now := e.clk.Now()

	e.mu.Lock()
	defer e.mu.Unlock()
	e.health.LaunchCalls++
	if r.Phase != domain.PhaseQueued { // adopted by a reconcile pass meanwhile
		if lerr == nil {
			e.adoptLaunched(r, tpl, res, now)
		}
		return
	}
	if lerr != nil {
		if ctx.Err() != nil {
			return // shutting down: resumed at next start with the same token
		}
		kind := provider.KindOf(lerr)
		if kind == provider.Capacity && r.FallbackUnits == 0 && r.Pool+1 < pools(whole) {
			// Nothing was launched (RunInstances asks MinCount 1): the
			// next pool, now, with its own token, moved on durably first.
			r.Pool++
			next, _ := poolSpec(r, *whole)
			r.RetryNote = fmt.Sprintf("no capacity for %s (%s); trying %s", poolName(tpl), shorten(lerr.Error(), 160), poolName(&next))
			r.NextAttempt = now
			e.log.Warn("launch found no capacity; trying the template's next instance type or subnet", "request", id, "err", lerr, "pool", r.Pool)
			if err := e.persist([]*domain.Request{r}, nil); err != nil {
				e.log.Error("persist request", "request", id, "err", err)
			}
			return
		}
		if (kind == provider.Throttled || kind == provider.Transient) && now.Sub(r.CreatedAt) < e.opts.LaunchDeadline {
			delay := backoff(r.Attempts)
			what := "AWS throttling"
			if kind == provider.Transient {
				what = "AWS unreachable or failing (" + shorten(lerr.Error(), 120) + ")"
			}
			r.RetryNote = fmt.Sprintf("%s, retrying in %d s", what, int(delay.Round(time.Second)/time.Second))
			r.NextAttempt = now.Add(delay)
			e.health.CloudNote = r.RetryNote
			e.log.Warn("launch failed; will retry", "request", id, "err", lerr, "retry_in", delay)
			if err := e.persist([]*domain.Request{r}, nil); err != nil {
				e.log.Error("persist request", "request", id, "err", err)
			}
			return
		}
		r.Phase = domain.PhaseFailed
		r.LaunchError = "AWS refused the launch: " + lerr.Error()
		if r.Pool > 0 {
			r.LaunchError = fmt.Sprintf("AWS had no capacity in any of the template's %d instance type and subnet pairs; the last said: %s", r.Pool+1, lerr)
		}
		if kind == provider.Throttled || kind == provider.Transient {
			r.LaunchError = fmt.Sprintf("gave up after %d attempts over %s: %s", r.Attempts, e.opts.LaunchDeadline, lerr)
		}
		e.log.Warn("launch failed", "request", id, "err", lerr)
		e.finishLocked(r)
		if err := e.persist([]*domain.Request{r}, nil); err != nil {
			e.log.Error("persist request", "request", id, "err", err)
		}
		return
	}
	e.health.CloudNote = ""
	e.adoptLaunched(r, tpl, res, now)
}

// pools is how many instance type and subnet pairs a RunInstances template
// offers: on InsufficientInstanceCapacity (and kin) in one, the launch tries
// the next, subnets first (a subnet is a zone: capacity is per type and
// zone), then types, in the template's order. 0 or 1 for every other API,
// whose fleets and groups spread over the pairs themselves.
func pools(t *template.Template) int {
	if t.API() != template.APIRunInstances {
		return 0
	}
	return max(len(t.InstanceTypes()), 1) * max(len(t.SubnetIDs), 1)
}

// poolSpec narrows tpl to r.Pool's instance type and subnet, with its own
// client token: a pair EC2 refused launched nothing, and the next pair's
// call has other parameters, which the first pair's token would refuse.
func poolSpec(r *domain.Request, tpl template.Template) (template.Template, string) {
	t := tpl
	i := r.Pool
	if n := len(tpl.SubnetIDs); n > 0 {
		t.SubnetIDs = []string{tpl.SubnetIDs[i%n]}
		i /= n
	}
	if types := tpl.InstanceTypes(); len(types) > 0 {
		it := types[i%len(types)]
		t.VMType = it
		if w, ok := tpl.VMTypes.Get(it); ok {
			t.VMTypes = template.Weights{{Type: it, Weight: w}}
		}
	}
	if r.Pool == 0 {
		return t, r.ClientToken
	}
	return t, r.ClientToken + "-p" + strconv.Itoa(r.Pool)
}

// poolName names a narrowed template's pair for messages.
func poolName(t *template.Template) string {
	s := t.VMType
	if s == "" {
		s = "the launch template's type"
	}
	if len(t.SubnetIDs) > 0 {
		s += " in " + t.SubnetIDs[0]
	}
	return s
}

// adoptLaunched records a launch's instances under r. Called with e.mu held.
func (e *Engine) adoptLaunched(r *domain.Request, tpl *template.Template, res provider.LaunchResult, now time.Time) {
	if res.Handle != "" {
		r.Handle = res.Handle
	}
	var changed []*domain.Machine
	for _, in := range res.Instances {
		if m := e.machines[in.ID]; m != nil {
			continue
		}
		changed = append(changed, e.newMachine(r, tpl, in, res.Handle, now))
	}
	if r.Phase == domain.PhaseQueued {
		r.Phase = domain.PhaseLaunched
		r.RetryNote = ""
		units := 0
		for _, id := range r.MachineIDs {
			if m := e.machines[id]; m != nil {
				units += max(m.Weight, 1)
			}
		}
		if units < r.Units && (r.Handle == "" || r.FallbackUnits > 0) {
			r.Shortfall = fmt.Sprintf("AWS launched %d of %d units", units, r.Units)
			if len(res.Errors) > 0 {
				r.Shortfall += ": " + strings.Join(res.Errors, "; ")
			}
		}
	}
	if err := e.persist([]*domain.Request{r}, changed); err != nil {
		e.log.Error("persist launched machines", "request", r.ID, "err", err)
	}
	e.log.Info("launched", "request", r.ID, "instances", len(res.Instances))
	e.kick(e.wakeReconcile)
}

func (e *Engine) newMachine(r *domain.Request, tpl *template.Template, in provider.Instance, handle string, now time.Time) *domain.Machine {
	if handle == "" {
		handle = handleFromTags(in.Tags)
	}
	e.seq++
	m := &domain.Machine{
		ID:            in.ID,
		Seq:           e.seq,
		Handle:        handle,
		RequestID:     r.ID,
		Provider:      r.Provider,
		TemplateID:    r.TemplateID,
		InstanceType:  in.InstanceType,
		Spot:          in.Spot,
		SpotRequest:   in.SpotRequestID,
		Weight:        1,
		Result:        domain.ResultExecuting,
		State:         domain.StatePending,
		AwaitingClaim: r.AwaitingClaim,
	}
	if tpl != nil {
		m.Weight = tpl.WeightOf(in.InstanceType)
		m.Tags = tpl.InstanceTags
	}
	m.Observe(observation(in), now)
	e.machines[m.ID] = m
	if m.Name != "" {
		e.byName[m.Name] = m
	}
	r.MachineIDs = append(r.MachineIDs, m.ID)
	return m
}

// handleFromTags names the fleet or group that launched an instance, from
// the tags AWS puts on it.
func handleFromTags(tags map[string]string) string {
	if v := tags["aws:ec2:fleet-id"]; v != "" {
		return v
	}
	if v := tags["aws:ec2spot:fleet-request-id"]; v != "" {
		return v
	}
	if v := tags["aws:autoscaling:groupName"]; v != "" {
		return "asg:" + v
	}
	return ""
}

func observation(in provider.Instance) domain.Observation {
	return domain.Observation{
		State:       in.State,
		StateReason: in.StateReason,
		PrivateIP:   in.PrivateIP,
		PublicIP:    in.PublicIP,
		PrivateDNS:  in.PrivateDNS,
		LaunchTime:  in.LaunchTime,
	}
}

func (e *Engine) tagsFor(r *domain.Request, tpl *template.Template) map[string]string {
	tags := template.ParseTags(tpl.InstanceTags)
	tags[provider.TagManagedBy] = e.opts.ClusterID
	tags[provider.TagProvider] = r.Provider
	tags[provider.TagRequestID] = r.ID
	tags[provider.TagTemplateID] = r.TemplateID
	return tags
}

func values(m map[string]*domain.Request) []*domain.Request {
	out := make([]*domain.Request, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	return out
}

// finishLocked records a request's final status. Called with e.mu held.
func (e *Engine) finishLocked(r *domain.Request) {
	st, msg := e.statusLocked(r)
	if st == domain.StatusRunning {
		return
	}
	r.Status, r.Message = st, msg
	r.FinishedAt = e.clk.Now()
}

// statusLocked derives the HF status of r. Called with e.mu held.
func (e *Engine) statusLocked(r *domain.Request) (string, string) {
	if r.Final() {
		return r.Status, r.Message
	}
	ms := e.machinesOf(r)
	if r.Kind == domain.KindReturn {
		return domain.ReturnStatus(r, ms)
	}
	return domain.AcquireStatus(r, ms)
}

func (e *Engine) machinesOf(r *domain.Request) []*domain.Machine {
	ms := make([]*domain.Machine, 0, len(r.MachineIDs))
	for _, id := range r.MachineIDs {
		if m := e.machines[id]; m != nil {
			ms = append(ms, m)
		} else if r.Kind == domain.KindReturn {
			ms = append(ms, nil)
		}
	}
	return ms
}

func backoff(attempt int) time.Duration {
	d := time.Second << min(attempt, 6) // 2 s .. 64 s
	d = min(d, 60*time.Second)
	jitter := time.Duration(rand.Int64N(int64(d / 4)))
	return d - d/8 + jitter
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
