// Package provision makes the cloud calls the state asks for, in the
// background: launches of queued requests (the idempotency token and the
// attempt durable before each call), terminations of returned or doomed
// machines, and releases of fleet capacity for machines the cloud took
// back.
package provision

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/english"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/state"
	"github.com/ohfp/ohfp/internal/template"
)

// Provisioner runs the state's cloud calls. It is safe for concurrent use.
type Provisioner struct {
	st  *state.State
	sem chan struct{} // bounds concurrent launches (Options.LaunchWorkers)
	wg  sync.WaitGroup
}

// New returns the provisioner of st.
func New(st *state.State) *Provisioner {
	return &Provisioner{st: st, sem: make(chan struct{}, st.Opts.LaunchWorkers)}
}

// Run starts launches and terminations as they become due, until ctx
// ends; Wait then waits for the calls under way.
func (pv *Provisioner) Run(ctx context.Context) {
	pv.provisionLoop(ctx)
}

// Wait blocks until every cloud call the provisioner started has returned.
// Tests use it after ProvisionOnce.
func (pv *Provisioner) Wait() { pv.wg.Wait() }

func (pv *Provisioner) provisionLoop(ctx context.Context) {
	for {
		wait := pv.ProvisionOnce(ctx)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-pv.st.WakeLaunch:
			t.Stop()
		case <-t.C:
		}
	}
}

// ProvisionOnce starts the cloud calls that are due (launches of queued
// requests, terminations of returned or abandoned machines) and returns
// how long until the next one is due. The calls run in the background;
// Wait waits for them.
func (pv *Provisioner) ProvisionOnce(ctx context.Context) time.Duration {
	now := pv.st.Clock.Now()
	next := pv.st.Opts.IdleInterval
	var launches []*domain.Request
	pv.st.Mu.Lock()
	for _, r := range pv.st.Requests {
		if r.Kind != domain.KindAcquire || r.Phase != domain.PhaseQueued || pv.st.Inflight[r.ID] || pv.st.Undelivered[r.ID] {
			continue
		}
		if r.NextAttempt.After(now) {
			if d := r.NextAttempt.Sub(now); d < next {
				next = d
			}
			continue
		}
		pv.st.Inflight[r.ID] = true
		launches = append(launches, r)
	}
	jobs := pv.dueJobsLocked()
	// The decisions behind these jobs (a return, a doomed machine) may
	// still be being written: each job waits for them before its call.
	written := pv.st.WriteMark()
	tagJobs := pv.dueTagJobsLocked() // tagid.go
	if d, ok := pv.reclaimDueLocked(now); ok && d < next {
		next = max(d, 0)
	}
	pv.st.Mu.Unlock()

	sort.Slice(launches, func(i, j int) bool { return launches[i].CreatedAt.Before(launches[j].CreatedAt) })
	for _, r := range launches {
		pv.wg.Add(1)
		pv.sem <- struct{}{}
		go func(id string) {
			defer pv.wg.Done()
			defer func() { <-pv.sem }()
			pv.launch(ctx, id)
		}(r.ID)
	}
	for _, j := range jobs {
		pv.wg.Add(1)
		go func(j job) {
			defer pv.wg.Done()
			pv.st.AwaitWrites(written)
			pv.runJob(ctx, j)
		}(j)
	}
	for _, j := range tagJobs {
		pv.wg.Add(1)
		go func(j tagJob) {
			defer pv.wg.Done()
			pv.runTagJob(ctx, j)
		}(j)
	}
	return next
}

// launch makes one launch call for request id: it chooses what to ask
// (the template, its fallback or its next pool), records the attempt and
// its token durably, calls the provider, and folds the result into the
// request. Each step is a function below.
func (pv *Provisioner) launch(ctx context.Context, id string) {
	defer pv.launched(ctx, id)
	a := pv.recordAttempt(id)
	if a == nil {
		return
	}
	pv.st.Log.Info("launching", "request", id, "template", a.r.TemplateID, "units", a.r.Units, "api", a.tpl.API(), "attempt", a.attempts)
	res, lerr := a.cloud.Launch(ctx, a.spec)
	pv.fold(ctx, a, res, lerr)
}

// launched ends a launch: the request is no longer in flight, and its next
// attempt is asked for at once when it is already due (the next capacity
// pool), not at the next wake-up.
func (pv *Provisioner) launched(ctx context.Context, id string) {
	pv.st.Mu.Lock()
	delete(pv.st.Inflight, id)
	r := pv.st.Requests[id]
	again := r != nil && r.Phase == domain.PhaseQueued && !r.NextAttempt.After(pv.st.Clock.Now()) && ctx.Err() == nil
	pv.st.Mu.Unlock()
	if again {
		pv.st.KickLaunch()
	}
}

// attempt is one launch call about to be made for a request.
type attempt struct {
	r            *domain.Request
	cloud        provider.Provider
	plan         provider.Planner
	spec         provider.LaunchSpec // what the call asks
	whole        provider.LaunchSpec // the launch before an alternative narrowed it
	tpl          *template.Template  // the template the call launches (spec's)
	alternatives int                 // the template's pools (plan.Alternatives)
	where        string              // the pool asked, for messages ("": the whole template)
	attempts     int                 // r.Attempts for this call
}

// recordAttempt chooses the request's next launch call and writes the
// attempt (and its token) before returning it: write ahead, so that a
// restart resumes it with the same token and never launches twice. It
// returns nil when no call is to be made: the request is not queued, or
// it ended here without one (written too), or the write failed (retried
// in 5 s). The write is made outside the state's lock.
func (pv *Provisioner) recordAttempt(id string) *attempt {
	pv.st.Mu.Lock()
	a, ended := pv.chooseLocked(id)
	switch {
	case ended != nil:
		w := pv.st.Stage([]*domain.Request{ended}, nil)
		pv.st.Mu.Unlock()
		if err := w.Wait(); err != nil {
			pv.st.Log.Error("persist request", "request", id, "err", err)
		}
		return nil
	case a == nil:
		pv.st.Mu.Unlock()
		return nil
	}
	w := pv.st.Stage([]*domain.Request{a.r}, nil)
	pv.st.Mu.Unlock()
	if err := w.Wait(); err != nil {
		pv.st.Log.Error("persist launch attempt; will retry", "request", id, "err", err)
		pv.st.Mu.Lock()
		a.r.Attempts--
		a.r.NextAttempt = pv.st.Clock.Now().Add(5 * time.Second)
		pv.st.Mu.Unlock()
		return nil
	}
	return a
}

// chooseLocked decides request id's next launch call and counts the
// attempt. It returns the request in ended instead when it ends without
// a call (its template gone, its breaker tripped, its fallback already
// filled), and neither when it is not queued. Called with the state's Mu
// held.
func (pv *Provisioner) chooseLocked(id string) (a *attempt, ended *domain.Request) {
	r := pv.st.Requests[id]
	if r == nil || r.Phase != domain.PhaseQueued {
		return nil, nil
	}
	p := pv.st.Providers[r.Provider]
	var tpl *template.Template
	if p != nil {
		tpl = p.Templates[r.TemplateID]
	}
	if p == nil || tpl == nil {
		r.Phase = domain.PhaseFailed
		r.LaunchError = fmt.Sprintf("template %q of provider %q is no longer configured; nothing was launched", r.TemplateID, r.Provider)
		pv.st.FinishLocked(r)
		return nil, r
	}
	if b, tripped := pv.st.TrippedLocked(r.Provider, r.TemplateID, pv.st.Clock.Now()); tripped {
		// Queued before the breaker tripped: failed without a cloud call.
		r.Phase = domain.PhaseFailed
		r.LaunchError = "nothing was launched: " + b.Message()
		pv.st.FinishLocked(r)
		return nil, r
	}
	r.Attempts++
	a = &attempt{r: r, cloud: p.Cfg.Cloud, plan: provider.PlannerOf(p.Cfg.Cloud), tpl: tpl, attempts: r.Attempts}
	a.spec = provider.LaunchSpec{
		RequestID:   r.ID,
		ClientToken: r.ClientToken,
		RequestedAt: r.CreatedAt,
		Template:    *tpl,
		Units:       r.Units,
		Tags:        pv.tagsFor(r, tpl),
		RcAccount:   r.RcAccount,
		ClusterName: r.ClusterName,
	}
	if r.FallbackUnits > 0 {
		// Ask the rest, the provider's other way, only what the fleet has
		// still not filled.
		have, _ := pv.st.UnitsLocked(r)
		if r.Units-have <= 0 {
			r.Phase = domain.PhaseLaunched
			return nil, r
		}
		r.FallbackUnits = r.Units - have
		a.spec, _ = a.plan.Fallback(a.spec)
		a.spec.Units = r.FallbackUnits
		a.tpl = &a.spec.Template
	}
	a.whole = a.spec
	a.alternatives = a.plan.Alternatives(&a.whole.Template)
	if r.FallbackUnits == 0 && a.alternatives > 1 {
		if len(r.PoolOrder) != a.alternatives {
			// The first attempt (or a record from before PoolOrder, or a
			// template reloaded with other pools): ranked from the pool
			// not yet asked on.
			from := r.Pool + 1
			if r.Attempts == 1 && r.Pool == 0 {
				from = 0
			}
			r.PoolOrder = identity(a.alternatives)
			pv.rankLocked(r, a.cloud, a.whole, from)
		}
		a.spec, a.where = a.plan.Alternative(a.whole, poolAt(r, r.Pool))
		a.tpl = &a.spec.Template
	}
	return a, nil
}

// fold records a launch call's result in its request: the instances it
// brought, or what its error means (the next pool, a retry later, or the
// end of the request). What changed is written outside the state's lock.
func (pv *Provisioner) fold(ctx context.Context, a *attempt, res provider.LaunchResult, lerr error) {
	now := pv.st.Clock.Now()
	pv.st.Mu.Lock()
	pv.st.Health.LaunchCalls++
	var w *state.Write
	switch {
	case a.r.Phase != domain.PhaseQueued: // adopted by a reconcile pass, or cancelled, meanwhile
		if lerr == nil {
			w = pv.adoptLaunchedLocked(a.r, a.tpl, res, now)
		}
	case lerr != nil:
		w = pv.foldErrorLocked(ctx, a, lerr, now)
	default:
		pv.st.Health.CloudNote = ""
		w = pv.adoptLaunchedLocked(a.r, a.tpl, res, now)
	}
	pv.st.Mu.Unlock()
	if err := w.Wait(); err != nil {
		pv.st.Log.Error("persist the launch's outcome", "request", a.r.ID, "err", err)
	}
	if lerr == nil {
		pv.st.KickReconcile()
	}
}

// foldErrorLocked records a failed launch call in its request, and
// returns the request's write (nil: shutting down, nothing changed).
// Called with the state's Mu held.
func (pv *Provisioner) foldErrorLocked(ctx context.Context, a *attempt, lerr error, now time.Time) *state.Write {
	r, id := a.r, a.r.ID
	if ctx.Err() != nil {
		return nil // shutting down: resumed at next start with the same token
	}
	kind := provider.KindOf(lerr)
	switch {
	case (kind == provider.Capacity || kind == provider.Quota) && r.FallbackUnits == 0 && r.Pool+1 < a.alternatives:
		// Nothing was launched: the provider's next alternative, now,
		// with its own token, moved on durably first; the pools not
		// yet asked ranked again (what the capacity memory learnt
		// meanwhile, from this launch or others).
		r.Pool++
		pv.rankLocked(r, a.cloud, a.whole, r.Pool)
		_, next := a.plan.Alternative(a.whole, poolAt(r, r.Pool))
		r.RetryNote = fmt.Sprintf("no capacity for %s (%s); trying %s", a.where, shorten(lerr.Error(), 160), next)
		r.NextAttempt = now
		pv.st.Log.Warn("launch found no capacity; trying the template's next instance type or subnet", "request", id, "err", lerr, "pool", r.Pool)
	case (kind == provider.Throttled || kind == provider.Transient) && now.Sub(r.CreatedAt) < pv.st.Opts.LaunchDeadline:
		delay := backoff(r.Attempts)
		what := "AWS throttling"
		if kind == provider.Transient {
			what = "AWS unreachable or failing (" + shorten(lerr.Error(), 120) + ")"
		}
		r.NextAttempt = now.Add(delay)
		// The instant, not the delay: a delay read later is stale, and
		// ohfp status names the same instant (issue 18, finding 6).
		r.RetryNote = fmt.Sprintf("%s; next attempt at %s", what, r.NextAttempt.UTC().Format("15:04:05Z"))
		pv.st.Health.CloudNote = what // when the retry is due: the request's NextAttempt
		pv.st.Log.Warn("launch failed; will retry", "request", id, "err", lerr, "retry_in", delay)
	case len(r.MachineIDs) > 0:
		// An earlier attempt launched (a reconcile pass found its
		// instances; its answer was lost) and asking again with its
		// token failed: the request ends with what was found.
		r.Phase = domain.PhaseLaunched
		r.RetryNote = ""
		r.Shortfall = fmt.Sprintf("the launch's answer was lost and asking again failed: %s", shorten(lerr.Error(), 200))
		pv.st.Log.Warn("launch retry failed; the request keeps the instances found", "request", id, "err", lerr, "machines", len(r.MachineIDs))
	default:
		r.Phase = domain.PhaseFailed
		r.LaunchError = "AWS refused the launch: " + lerr.Error()
		if r.Pool > 0 {
			r.LaunchError = fmt.Sprintf("AWS had no capacity in any of the template's %d instance type and subnet pairs; the last said: %s", r.Pool+1, lerr)
		}
		if kind == provider.Throttled || kind == provider.Transient {
			r.LaunchError = fmt.Sprintf("gave up after %s over %s: %s", english.Plural(r.Attempts, "attempt"), pv.st.Opts.LaunchDeadline, lerr)
		}
		if kind == provider.Fatal || kind == provider.Quota {
			// Retrying cannot fix it: counted toward the template's breaker.
			if b := pv.st.BreakerFailureLocked(r.Provider, r.TemplateID, r.ID, shorten(lerr.Error(), 200)); b != nil {
				r.LaunchError += "; " + b.Message()
			}
		}
		pv.st.Log.Warn("launch failed", "request", id, "err", lerr)
		pv.st.FinishLocked(r)
	}
	return pv.st.Stage([]*domain.Request{r}, nil)
}

// adoptLaunchedLocked records a launch's instances under r and returns
// their write. The operator cancelled the request while its launch was
// under way (ohfp cancel): what the launch brought is terminated, as the
// cancellation said. Called with the state's Mu held.
func (pv *Provisioner) adoptLaunchedLocked(r *domain.Request, tpl *template.Template, res provider.LaunchResult, now time.Time) *state.Write {
	cancelled := pv.st.HasNoteLocked(r.ID, state.NoteCancel)
	if res.Handle != "" {
		r.Handle = res.Handle
	}
	var changed []*domain.Machine
	for _, in := range res.Instances {
		if m := pv.st.Machines[in.ID]; m != nil {
			continue
		}
		m := pv.st.NewMachineLocked(r, tpl, in, res.Handle, now)
		// The launch's answer is not a sighting: until a describe shows
		// it, or EC2's consistency window has passed, its absence from a
		// listing means nothing (see reconcile's missingLocked).
		m.LastSeen = time.Time{}
		if cancelled {
			m.Result, m.Doomed = hf.ResultFail, true
			m.Message = domain.MsgAfterCancel
			pv.st.Log.Warn("instance launched after its request was cancelled; terminating", "instance", m.ID, "request", r.ID)
		}
		changed = append(changed, m)
	}
	if r.Phase == domain.PhaseQueued {
		r.Phase = domain.PhaseLaunched
		r.RetryNote = ""
		units := 0
		for _, id := range r.MachineIDs {
			if m := pv.st.Machines[id]; m != nil {
				units += max(m.Weight, 1)
			}
		}
		if units < r.Units && (r.Handle == "" || r.FallbackUnits > 0) {
			r.Shortfall = fmt.Sprintf("AWS launched %d of %s", units, english.Plural(r.Units, "unit"))
			if len(res.Errors) > 0 {
				r.Shortfall += ": " + strings.Join(res.Errors, "; ")
			}
		}
	}
	pv.st.Log.Info("launched", "request", r.ID, "instances", len(res.Instances))
	return pv.st.Stage([]*domain.Request{r}, changed)
}

func (pv *Provisioner) tagsFor(r *domain.Request, tpl *template.Template) map[string]string {
	tags := template.ParseTags(tpl.InstanceTags)
	tags[provider.TagManagedBy] = pv.st.Opts.ClusterID
	tags[provider.TagProvider] = r.Provider
	tags[provider.TagRequestID] = r.ID
	tags[provider.TagTemplateID] = r.TemplateID
	tags[provider.TagRequestUnits] = strconv.Itoa(r.Units)
	if r.RcAccount != "" {
		// IBM's plugins tag LSF's account so (AwsUtil, AWSClient).
		tags[provider.TagRcAccount] = r.RcAccount
	}
	return tags
}

// identity is 0..n-1: the alternatives in the template's order.
func identity(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// poolAt is the alternative at position i of r's order.
func poolAt(r *domain.Request, i int) int {
	if i < len(r.PoolOrder) {
		return r.PoolOrder[i]
	}
	return i
}

// rankLocked orders r's alternatives from position from on by the
// provider's capacity memory (those remembered without capacity last).
// Positions before from were asked already: a retry there must ask the
// same pool with the same token. Called with the state's Mu held.
func (pv *Provisioner) rankLocked(r *domain.Request, cloud provider.Provider, whole provider.LaunchSpec, from int) {
	cm, ok := cloud.(provider.CapacityMemory)
	if !ok || from >= len(r.PoolOrder)-1 {
		return
	}
	rest := r.PoolOrder[from:]
	ranked := cm.Rank(whole, slices.Clone(rest))
	if len(ranked) != len(rest) || slices.Equal(ranked, rest) {
		return
	}
	copy(rest, ranked)
	pv.st.Log.Info("launch skips pools remembered without capacity first", "request", r.ID, "template", r.TemplateID, "order", r.PoolOrder[from:])
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

// job is one cloud call the provisioner makes for machines: terminate them
// (plain instances), release them from their fleet or group (capacity
// first, then terminate), or only lower a fleet's capacity for machines the
// cloud took back.
type job struct {
	provider string
	handle   string   // "" for plain instances
	ids      []string // machines to terminate
	release  []string // machines whose capacity is released without terminating
	units    int      // capacity to lower (handles only)
}

// dueJobsLocked lists the cloud work machines need. Called with the state's Mu held.
func (pv *Provisioner) dueJobsLocked() []job {
	jobs := map[string]*job{}
	add := func(m *domain.Machine) *job {
		handle := ""
		if m.Handle != "" {
			if _, ok := pv.fleetsOf(m.Provider); ok {
				handle = m.Handle
			}
		}
		k := m.Provider + "/" + handle
		j := jobs[k]
		if j == nil {
			j = &job{provider: m.Provider, handle: handle}
			jobs[k] = j
		}
		pv.st.TermInflight[m.ID] = true
		return j
	}
	now := pv.st.Clock.Now()
	for _, m := range pv.st.Machines {
		if pv.st.TermInflight[m.ID] || pv.st.TermRetry[m.ID].At.After(now) {
			continue
		}
		switch {
		case m.WantsTermination() && pv.leftToCloudLocked(m, now):
			// HF returned it while the cloud reclaims it: the cloud
			// terminates it (ProvisionOnce wakes at the leeway's end).
		case m.WantsTermination():
			j := add(m)
			j.ids = append(j.ids, m.ID)
			if !m.CapacityReleased {
				j.units += max(m.Weight, 1)
			}
		case m.WantsCapacityRelease():
			if _, ok := pv.fleetsOf(m.Provider); !ok {
				continue
			}
			j := add(m)
			j.release = append(j.release, m.ID)
			j.units += max(m.Weight, 1)
		}
	}
	out := make([]job, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, *j)
	}
	return out
}

// leftToCloudLocked reports whether machine m, returned by HF, is for now
// left for the cloud to reclaim (domain.Machine.LeftToCloud) under its
// provider's spot_terminate_on_reclaim. Called with the state's Mu held.
func (pv *Provisioner) leftToCloudLocked(m *domain.Machine, now time.Time) bool {
	p := pv.st.Providers[m.Provider]
	return p != nil && !p.Cfg.SpotTerminateOnReclaim && m.LeftToCloud(now)
}

// reclaimDueLocked is how long until the first machine left to the cloud
// is due for ohfp's own termination (ok false: none waits). Called with
// the state's Mu held.
func (pv *Provisioner) reclaimDueLocked(now time.Time) (d time.Duration, ok bool) {
	for _, m := range pv.st.Machines {
		if m.WantsTermination() && pv.leftToCloudLocked(m, now) {
			if left := m.InterruptAt.Add(domain.ReclaimLeeway).Sub(now); !ok || left < d {
				d, ok = left, true
			}
		}
	}
	return d, ok
}

// fleetsOf returns the provider's Fleets side, if it has one. Called with
// e.mu held.
func (pv *Provisioner) fleetsOf(name string) (provider.Fleets, bool) {
	p := pv.st.Providers[name]
	if p == nil {
		return nil, false
	}
	f, ok := p.Cfg.Cloud.(provider.Fleets)
	return f, ok
}

// runJob makes a job's cloud call and records its outcome.
func (pv *Provisioner) runJob(ctx context.Context, j job) {
	all := append(append([]string(nil), j.ids...), j.release...)
	started := slices.Clone(all)
	defer func() {
		pv.st.Mu.Lock()
		for _, id := range started {
			delete(pv.st.TermInflight, id)
		}
		pv.st.Mu.Unlock()
	}()
	pv.st.Mu.RLock()
	p := pv.st.Providers[j.provider]
	fl, hasFleets := pv.fleetsOf(j.provider)
	returns := map[string][]string{} // return id -> its machines in j.ids
	weight := map[string]int{}
	for _, id := range j.ids {
		if m := pv.st.Machines[id]; m != nil {
			weight[id] = max(m.Weight, 1)
			if m.ReturnID != "" {
				returns[m.ReturnID] = append(returns[m.ReturnID], id)
			}
		}
	}
	pv.st.Mu.RUnlock()
	if p == nil {
		pv.st.Log.Error("cannot terminate: provider no longer configured", "provider", j.provider, "instances", len(all))
		return
	}
	if len(returns) > 0 {
		// The return is written on the instances before they are
		// terminated: a daemon without this one's store (a failover, a
		// lost state directory) then still knows they were returned, and
		// by which request (see reconcile's returnedLocked).
		untagged, terr := pv.tagReturns(ctx, p.Cfg.Cloud, returns)
		if terr != nil {
			pv.retryLater(all, j, terr, "tagging returned instances failed; their termination waits for it")
			return
		}
		if len(untagged) > 0 {
			// Not visible yet, or gone: asked again later, until a tag
			// write goes through or a describe shows them ended.
			pv.st.Log.Info("EC2 does not know some returned instances yet; their return tag and termination are asked again later", "instances", untagged)
			skip := map[string]bool{}
			for _, id := range untagged {
				skip[id] = true
			}
			var ids []string
			for _, id := range j.ids {
				if !skip[id] {
					ids = append(ids, id)
				} else if j.handle != "" {
					j.units -= weight[id]
				}
			}
			j.ids = ids
			pv.st.Mu.Lock()
			for _, id := range untagged {
				tr := pv.st.TermRetry[id]
				tr.Failures++
				tr.At = pv.st.Clock.Now().Add(backoff(tr.Failures))
				pv.st.TermRetry[id] = tr
			}
			pv.st.Mu.Unlock()
			all = slices.DeleteFunc(all, func(id string) bool { return skip[id] })
			if len(all) == 0 {
				return
			}
		}
	}
	var err error
	switch {
	case j.handle != "" && hasFleets:
		err = fl.Release(ctx, j.handle, j.ids, j.units)
	case len(j.ids) > 0:
		err = p.Cfg.Cloud.Terminate(ctx, j.ids)
	}
	pv.st.Mu.Lock()
	pv.st.Health.TerminateCalls++
	// Ids EC2 did not know (a NotFound naming them, the rest terminated):
	// not visible yet, or long gone. They are not taken as terminated: the
	// next round asks again, until a describe shows them terminated or
	// confirms them gone (reconcile takes them out of the live machines).
	var unknown map[string]bool
	var pe *provider.Error
	if err != nil && j.handle == "" && errors.As(err, &pe) && pe.Kind == provider.NotFound && len(pe.IDs) > 0 {
		unknown = map[string]bool{}
		for _, id := range pe.IDs {
			unknown[id] = true
		}
		pv.st.Log.Info("EC2 does not know some instances yet; their termination is asked again later", "instances", pe.IDs)
		err = nil
	}
	if err != nil {
		pv.retryLaterLocked(all, j, err, "terminate failed; will retry")
		pv.st.Mu.Unlock()
		return
	}
	var changed []*domain.Machine
	reqs := map[string]*domain.Request{}
	for _, id := range all {
		delete(pv.st.TermRetry, id)
		m := pv.st.Machines[id]
		if m == nil {
			continue
		}
		if j.handle != "" {
			m.CapacityReleased = true
		}
		changed = append(changed, m)
	}
	for _, id := range j.ids {
		m := pv.st.Machines[id]
		if m == nil || unknown[id] {
			continue
		}
		m.TerminateSent = true
		if m.State == domain.StateRunning || m.State == domain.StatePending || m.State == domain.StateStopped || m.State == domain.StateStopping {
			m.State = domain.StateShuttingDown
		}
		if r := pv.st.Requests[m.ReturnID]; r != nil && !r.TerminateSent {
			r.TerminateSent = true
			reqs[r.ID] = r
		}
	}
	// Written outside the lock: HF's reads meanwhile see the machines
	// shutting down, which is the cloud's fact (a restart finds them so,
	// and terminating again is harmless).
	w := pv.st.Stage(state.Values(reqs), changed)
	pv.st.Mu.Unlock()
	if err := w.Wait(); err != nil {
		pv.st.Log.Error("persist terminations", "err", err)
	}
	pv.st.Log.Info("terminated", "provider", j.provider, "handle", j.handle, "instances", len(j.ids), "capacity_released", j.units)
	pv.st.KickReconcile()
}

// tagReturns writes each return's id on its instances (provider.TagReturnID)
// and returns the instances the cloud did not know.
func (pv *Provisioner) tagReturns(ctx context.Context, cloud provider.Provider, returns map[string][]string) (unknown []string, _ error) {
	for _, ret := range slices.Sorted(maps.Keys(returns)) {
		ids := slices.Sorted(slices.Values(returns[ret]))
		err := cloud.Tag(ctx, ids, map[string]string{provider.TagReturnID: ret})
		var pe *provider.Error
		if err != nil && errors.As(err, &pe) && pe.Kind == provider.NotFound && len(pe.IDs) > 0 {
			unknown = append(unknown, pe.IDs...)
			continue
		}
		if err != nil {
			return nil, err
		}
	}
	return unknown, nil
}

// retryLater backs off the termination of ids after err.
func (pv *Provisioner) retryLater(ids []string, j job, err error, what string) {
	pv.st.Mu.Lock()
	defer pv.st.Mu.Unlock()
	pv.retryLaterLocked(ids, j, err, what)
}

// retryLaterLocked is retryLater with the state's Mu held.
func (pv *Provisioner) retryLaterLocked(ids []string, j job, err error, what string) {
	var delay time.Duration
	for _, id := range ids {
		tr := pv.st.TermRetry[id]
		tr.Failures++
		delay = backoff(tr.Failures)
		tr.At = pv.st.Clock.Now().Add(delay)
		pv.st.TermRetry[id] = tr
	}
	pv.st.Log.Warn(what, "provider", j.provider, "handle", j.handle, "instances", len(ids), "retry_in", delay.Round(time.Second), "err", err)
	if provider.Retryable(err) {
		pv.st.Health.CloudNote = "AWS failing or asking to wait on termination (" + shorten(err.Error(), 120) + "); retrying"
	}
}
