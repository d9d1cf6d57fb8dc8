package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/lowprio"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/quiet"
	"github.com/ohfp/ohfp/internal/store"
	"github.com/ohfp/ohfp/internal/template"
)

// ReconcileOnce runs one reconcile pass: for each provider it lists what the
// cloud has for ohfp's tags (one filtered, paginated listing), folds it
// into memory, gives up on instances pending too long, notices instances
// ended outside HF and Spot interruption notices, finishes requests,
// persists what changed, and returns the delay until the next pass: short
// while anything is in flight, long when idle.
func (e *Engine) ReconcileOnce(ctx context.Context) time.Duration {
	start := e.clk.Now()
	e.mu.Lock()
	e.saveUnsaved() // what a full disk kept from being written
	e.mu.Unlock()
	provs := e.provsInOrder()

	// Before the listings: templates that leave ncpus or nram out are
	// complete as soon as possible.
	e.fillTypeInfo(ctx, provs)
	var firstErr error
	deferred := false
	for _, p := range provs {
		if err := e.reconcileProvider(ctx, p); err != nil && firstErr == nil {
			firstErr = err
		}
		deferred = deferred || !p.fullDeferred.IsZero()
	}
	next := e.finishAndPurge()
	if deferred {
		next = min(next, e.opts.ActiveInterval) // look for a pause again soon
	}

	e.mu.Lock()
	e.health.Reconciles++
	e.health.LastReconcile = start
	e.health.LastReconcileTook = e.clk.Now().Sub(start)
	e.health.LastReconcileError = ""
	if firstErr != nil {
		e.health.LastReconcileError = firstErr.Error()
		if provider.Retryable(firstErr) {
			next = min(next, e.opts.ActiveInterval*2)
		}
	}
	e.mu.Unlock()
	// Launches and terminations decided by the pass start now.
	e.kick(e.wakeLaunch)
	return next
}

func (e *Engine) reconcileProvider(ctx context.Context, p *prov) error {
	name := p.cfg.Name
	start := e.clk.Now()
	// A full listing (everything with ohfp's tag) at least once per idle
	// interval: it adopts instances memory does not hold and notices
	// instances gone outside HF. Between, a busy pass describes only what
	// is in flight, which keeps a pass over 10,000 quiet machines cheap.
	full := p.lastFull.IsZero() || start.Sub(p.lastFull) >= e.opts.IdleInterval
	yield := func(context.Context) {}
	if full && e.opts.Gate != nil && !p.lastFull.IsZero() {
		// Let HF's calls go first (see Options.Gate). Wall time: the calls
		// are real whatever the engine's clock.
		now := time.Now()
		if p.fullDeferred.IsZero() {
			p.fullDeferred = now
		}
		switch {
		case e.opts.Gate.Quiet(quiet.Gap):
			// Started at a pause: it gives way to the next burst of calls
			// too, quiet.MaxWait at a time, quiet.MaxTotal in all.
			p.fullDeferred = time.Time{}
			end := now.Add(quiet.MaxTotal)
			yield = func(ctx context.Context) {
				until := time.Now().Add(quiet.MaxWait)
				if until.After(end) {
					until = end
				}
				e.opts.Gate.Wait(ctx, quiet.Gap, until)
			}
		case now.Sub(p.fullDeferred) < 2*e.opts.IdleInterval:
			full = false // a busy pass now; the listing at a pause
		default:
			// Put off long enough: it runs now, without waiting, so that
			// the pass (and what is in flight) is not held up further.
			p.fullDeferred = time.Time{}
		}
	}
	e.mu.RLock()
	seqAtList := e.seq
	var ids, reqs []string
	if !full {
		ids, reqs = e.inFlightLocked(name)
	}
	e.mu.RUnlock()
	var insts []provider.Instance
	var err error
	began := time.Now() // wall time, for the debug log's figures
	switch {
	case full && p.lastFull.IsZero():
		// The first listing after start-up rebuilds what memory lacks: at
		// once, at normal priority.
		insts, err = p.cfg.Cloud.List(ctx, e.opts.ClusterID)
	case full:
		// At a low CPU priority: decoding the whole listing is about a
		// second of CPU at 10,000 instances, which must not come out of
		// the HF calls being answered meanwhile.
		lowprio.Do(func() { insts, err = p.cfg.Cloud.List(provider.WithPageHook(ctx, yield), e.opts.ClusterID) })
	case len(ids) > 0 || len(reqs) > 0:
		insts, err = p.cfg.Cloud.Describe(ctx, e.opts.ClusterID, ids, reqs)
	}
	if err != nil {
		e.log.Warn("reconcile: describing instances failed", "provider", name, "full", full, "err", err)
		return err
	}
	if full {
		p.lastFull = start
	}
	now := e.clk.Now()
	seen := make(map[string]bool, len(insts))
	listed := time.Now()

	yield(ctx) // the diff below holds the lock for ~10 ms at 10,000 instances
	locked := time.Now()
	e.mu.Lock()
	if full {
		e.health.Listings++
		e.health.LastListing, e.health.LastListingTook = start, listed.Sub(began)
	}
	var changedM []*domain.Machine
	changedR := map[string]*domain.Request{}
	var spotIDs []string
	for i := range insts {
		in := &insts[i]
		if pn := in.Tags[provider.TagProvider]; pn != "" && pn != name {
			continue // another provider of this daemon owns it
		}
		seen[in.ID] = true
		m := e.machines[in.ID]
		if m == nil {
			m = e.adoptLocked(p, in, now, changedR)
			if m == nil {
				continue
			}
			changedM = append(changedM, m)
		} else {
			oldName := m.Name
			if m.Observe(observation(*in), now) {
				changedM = append(changedM, m)
			}
			if m.Name != oldName && m.Name != "" {
				e.byName[m.Name] = m
			}
		}
		if m.Result == domain.ResultFail && m.Live() && !m.Doomed && m.ReturnID == "" {
			// HF was told this machine failed and will never return it: it
			// must not live on (e.g. it reappeared after being taken as gone).
			m.Doomed = true
			e.log.Warn("failed machine still up; terminating", "instance", m.ID, "request", m.RequestID)
			changedM = append(changedM, m)
		}
		if m.PendingExpired(now, p.cfg.PendingTimeout) {
			m.GiveUp(p.cfg.PendingTimeout)
			e.log.Warn("instance pending too long; terminating", "instance", m.ID, "request", m.RequestID)
			changedM = append(changedM, m)
		}
	}
	// Spot interruption notices, every pass, for every live Spot machine
	// (not only those the pass described).
	for _, m := range e.machines {
		if m.Provider == name && m.Spot && m.SpotRequest != "" && m.Live() && m.InterruptAt.IsZero() && m.ReturnID == "" {
			spotIDs = append(spotIDs, m.SpotRequest)
		}
	}
	// Machines the listing by tag no longer shows (only a full listing can
	// say): confirmed below by id before they are taken as gone.
	var missing []string
	for _, m := range e.machines {
		if !full {
			break
		}
		if m.Provider != name || seen[m.ID] || !m.Live() || m.Seq > seqAtList {
			continue // recorded after the listing began: its absence means nothing
		}
		known := !m.LastSeen.IsZero() || (!m.LaunchTime.IsZero() && now.Sub(m.LaunchTime) > e.opts.VisibilityGrace)
		if !known {
			continue // just launched; EC2's listing may lag
		}
		missing = append(missing, m.ID)
	}
	e.mu.Unlock()

	if len(missing) > 0 {
		e.confirmMissing(ctx, p, missing, &changedM)
	}
	if len(spotIDs) > 0 {
		e.checkSpot(ctx, p, spotIDs, &changedM)
	}

	diffed := time.Now()
	e.mu.Lock()
	err = e.persist(values(changedR), changedM)
	e.mu.Unlock()
	if err != nil {
		e.log.Error("reconcile: persist", "err", err)
		return err
	}
	e.reconcileFleets(ctx, p)
	if e.log.Enabled(ctx, slog.LevelDebug) {
		e.log.Debug("reconcile pass", "provider", name, "full", full, "instances", len(insts), "changed", len(changedM),
			"describe", listed.Sub(began).Round(time.Microsecond), "diff", diffed.Sub(locked).Round(time.Microsecond),
			"persist", time.Since(diffed).Round(time.Microsecond))
	}
	return nil
}

// inFlightLocked lists what a busy pass must look at for provider name:
// machines starting, stopping or being terminated, and the request ids of
// fleets still filling or of launches whose answer a crash may have lost.
// Called with e.mu held (read).
func (e *Engine) inFlightLocked(name string) (ids, reqs []string) {
	for _, m := range e.machines {
		if m.Provider != name || !m.Live() {
			continue
		}
		switch {
		case m.State == domain.StatePending, m.State == domain.StateShuttingDown, m.State == domain.StateStopping,
			m.Result == domain.ResultExecuting, m.TerminateSent, m.Doomed, m.ReturnID != "":
			ids = append(ids, m.ID)
		}
	}
	for _, r := range e.requests {
		if r.Provider != name || r.Kind != domain.KindAcquire || r.Final() {
			continue
		}
		if r.Handle != "" && !r.HandleCapped || r.Phase == domain.PhaseQueued && r.Attempts > 0 {
			reqs = append(reqs, r.ID)
		}
	}
	return ids, reqs
}

// adoptLocked takes in an instance the cloud shows with ohfp's tags but
// memory does not hold. Called with e.mu held.
func (e *Engine) adoptLocked(p *prov, in *provider.Instance, now time.Time, changedR map[string]*domain.Request) *domain.Machine {
	rid := in.Tags[provider.TagRequestID]
	r := e.requests[rid]
	if in.State == domain.StateTerminated && (r == nil || r.Final()) {
		return nil // nothing to adopt
	}
	tpl := p.templates[in.Tags[provider.TagTemplateID]]
	switch {
	case r == nil && rid != "":
		// The store lost it (deleted state directory): rebuild the request
		// from the tags so HF's request id keeps answering.
		r = &domain.Request{
			ID:         rid,
			Kind:       domain.KindAcquire,
			Provider:   p.cfg.Name,
			TemplateID: in.Tags[provider.TagTemplateID],
			CreatedAt:  in.LaunchTime,
			Phase:      domain.PhaseLaunched,
			Handle:     handleFromTags(in.Tags),
			Rebuilt:    true,
		}
		e.requests[rid] = r
		e.log.Warn("rebuilt a request from cloud tags", "request", rid, "instance", in.ID)
	case r == nil:
		e.log.Warn("instance tagged for this cluster without a request id; ignoring", "instance", in.ID)
		return nil
	case r.Final():
		// A late arrival for a finished request: HF will never hear of it,
		// so it must not live on unaccounted.
		m := e.newMachine(r, tpl, *in, "", now)
		m.Result = domain.ResultFail
		m.Doomed = true
		m.Message = "arrived after its request had finished; ohfp terminated it"
		changedR[r.ID] = r
		e.log.Warn("orphan instance of a finished request; terminating", "instance", in.ID, "request", rid)
		return m
	}
	m := e.newMachine(r, tpl, *in, "", now)
	if r.Rebuilt {
		r.Units += max(m.Weight, 1)
		if m.Result == domain.ResultExecuting && m.State == domain.StateRunning {
			m.Result = domain.ResultSucceed
		}
	}
	if r.Phase == domain.PhaseQueued && (r.FallbackUnits == 0 || m.Handle == "") {
		// Launched before a crash, answer never recorded: adopt instead of
		// launching again. (A late instance of a capped fleet does not stand
		// for the on-demand fallback still to be launched.)
		r.Phase = domain.PhaseLaunched
		r.RetryNote = ""
	}
	changedR[r.ID] = r
	return m
}

// confirmMissing looks up by id, whatever their tags, the machines a full
// listing by ohfp's tag did not show, and takes as gone only those the
// cloud does not know either. A machine whose tags no longer name this
// cluster (a changed cluster_id, a tag removed by hand) is still a machine
// HF may be using: it is observed as usual, and the log says what is
// wrong, instead of HF being told the cloud took it back.
func (e *Engine) confirmMissing(ctx context.Context, p *prov, ids []string, changed *[]*domain.Machine) {
	insts, err := p.cfg.Cloud.Describe(ctx, "", ids, nil)
	if err != nil {
		e.log.Warn("reconcile: confirming instances missing from the listing failed; they are not taken as gone this pass", "provider", p.cfg.Name, "instances", len(ids), "err", err)
		return
	}
	found := make(map[string]*provider.Instance, len(insts))
	for i := range insts {
		found[insts[i].ID] = &insts[i]
	}
	now := e.clk.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range ids {
		m := e.machines[id]
		if m == nil || !m.Live() {
			continue
		}
		in := found[id]
		if in == nil {
			if m.Vanish(now) {
				*changed = append(*changed, m)
			}
			continue
		}
		if owner := in.Tags[provider.TagManagedBy]; owner != e.opts.ClusterID {
			e.log.Error("instance no longer carries this cluster's tag; it is kept as HF's machine, not taken as gone: restore the tag, or check cluster_id",
				"instance", id, "request", m.RequestID, "tag", provider.TagManagedBy, "has", owner, "want", e.opts.ClusterID)
		}
		if m.Observe(observation(*in), now) {
			*changed = append(*changed, m)
		}
	}
}

// checkSpot asks the cloud about the Spot requests of live Spot machines
// and records interruption notices.
func (e *Engine) checkSpot(ctx context.Context, p *prov, ids []string, changed *[]*domain.Machine) {
	srs, err := p.cfg.Cloud.SpotRequests(ctx, ids)
	if err != nil {
		e.log.Warn("reconcile: describing Spot requests failed", "provider", p.cfg.Name, "err", err)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, sr := range srs {
		if !sr.Interrupted {
			continue
		}
		m := e.machines[sr.InstanceID]
		if m == nil || !m.InterruptAt.IsZero() {
			continue
		}
		at := sr.StatusUpdate
		if at.IsZero() {
			at = e.clk.Now()
		}
		m.InterruptAt = at
		*changed = append(*changed, m)
		e.log.Warn("Spot interruption notice", "instance", m.ID, "request", m.RequestID)
	}
}

// finishAndPurge records final statuses, drops what is past retention, and
// says when the next pass is due.
func (e *Engine) finishAndPurge() time.Duration {
	now := e.clk.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	busy := false
	var changed []*domain.Request
	var deletes []string
	var doomed []*domain.Machine
	for _, r := range e.requests {
		if r.Kind == domain.KindAcquire && r.AwaitingClaim && !r.Unclaimed && e.provenUnclaimedLocked(r, now) {
			r.Unclaimed = true
			delete(e.claimWatch, r.ID)
			for _, id := range r.MachineIDs {
				if m := e.machines[id]; m != nil && m.Live() && m.ReturnID == "" && !m.Doomed {
					m.Doomed = true
					doomed = append(doomed, m)
				}
			}
			if !r.Final() {
				r.Phase, r.LaunchError = domain.PhaseFailed, "HF never learned of this request (its answer was lost); its machines were terminated"
				if r.Handle != "" {
					r.HandleCapped = true
				}
			} else {
				r.Message += "; HF never learned of this request (its answer was lost), so its machines were terminated"
			}
			changed = append(changed, r)
			e.log.Warn("HF never learned of this request: its getReturnRequests calls left its machines out and it never asked about it; terminating its machines",
				"request", r.ID, "machines", len(doomed), "evidence", e.opts.ClaimTimeout)
		}
		if !r.Final() {
			e.finishLocked(r)
			if r.Final() {
				changed = append(changed, r)
				e.log.Info("request finished", "request", r.ID, "status", r.Status, "message", r.Message)
			} else {
				busy = true
			}
			continue
		}
		if now.Sub(r.FinishedAt) < e.opts.Retention {
			continue
		}
		// Purge only when none of its machines is still live.
		live := false
		for _, id := range r.MachineIDs {
			if m := e.machines[id]; m != nil && (m.Live() || m.ReturnID != "" && e.requests[m.ReturnID] != nil && !e.requests[m.ReturnID].Final()) {
				live = true
				break
			}
		}
		if live {
			continue
		}
		deletes = append(deletes, keyRequest+r.ID)
		if r.Kind == domain.KindAcquire {
			for _, id := range r.MachineIDs {
				if m := e.machines[id]; m != nil {
					delete(e.machines, id)
					if e.byName[m.Name] == m {
						delete(e.byName, m.Name)
					}
					deletes = append(deletes, keyMachine+id)
				}
			}
		}
		delete(e.requests, r.ID)
	}
	for _, m := range e.machines {
		if m.State == domain.StatePending || m.State == domain.StateShuttingDown || m.State == domain.StateStopping || m.WantsTermination() {
			busy = true
			break
		}
	}
	if err := e.persist(changed, doomed, deletes...); err != nil {
		e.log.Error("persist finished requests", "err", err)
	}
	if busy {
		return e.opts.ActiveInterval
	}
	return e.opts.IdleInterval
}

// claimMark is where the evidence against a request awaiting HF's claim
// starts: the getReturnRequests call count and time.
type claimMark struct {
	calls int64
	at    time.Time
}

// provenUnclaimedLocked reports whether HF has shown, by its own calls in
// this process, that it never learned of acquire request r (awaiting its
// claim): getReturnRequests lists every host HF holds, and the calls made
// over ClaimTimeout since r existed (at least three) all left r's machines
// out, while HF never asked about r nor returned any of them (any of
// which claims r). Nothing here survives a restart, so a restart only
// delays the proof; and a cluster whose HF never calls getReturnRequests
// never proves it: its machines are kept (a leak is cheaper than
// terminating a host HF uses). Called with e.mu held.
func (e *Engine) provenUnclaimedLocked(r *domain.Request, now time.Time) bool {
	if r.Rebuilt {
		return false
	}
	calls := e.holdings.calls.Load()
	if calls == 0 {
		return false
	}
	last := time.Unix(0, e.holdings.last.Load())
	w, ok := e.claimWatch[r.ID]
	if !ok {
		if last.Before(r.CreatedAt) {
			return false
		}
		e.claimWatch[r.ID] = claimMark{calls: calls, at: last}
		return false
	}
	return calls-w.calls >= 2 && last.Sub(w.at) >= e.opts.ClaimTimeout
}

// claim records that HF has shown it knows the requests ids (asked about
// them, returned or listed one of their machines): durably, so that no
// restart can turn them back into requests HF never learned of.
func (e *Engine) claim(ids []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var recs []*domain.Request
	for _, id := range ids {
		r := e.requests[id]
		if r == nil || !r.AwaitingClaim {
			continue
		}
		r.AwaitingClaim = false
		delete(e.claimWatch, id)
		for _, mid := range r.MachineIDs {
			if m := e.machines[mid]; m != nil {
				m.AwaitingClaim = false
			}
		}
		recs = append(recs, r)
	}
	if err := e.persist(recs, nil); err != nil {
		// Memory holds the claim; were it lost with a restart, HF's
		// getReturnRequests calls, which list its hosts, claim it again.
		e.log.Warn("recording HF's claim of requests", "requests", len(recs), "err", err)
	}
}

// FillTypeInfo fetches what fillTypeInfo does for every provider. ohfpd
// calls it once before serving, so that the first getAvailableTemplates
// already has ncpus and nram; passes do it again for what is missing.
func (e *Engine) FillTypeInfo(ctx context.Context) {
	e.fillTypeInfo(ctx, e.provsInOrder())
}

// provsInOrder returns the providers in configuration order.
func (e *Engine) provsInOrder() []*prov {
	e.mu.RLock()
	defer e.mu.RUnlock()
	provs := make([]*prov, 0, len(e.order))
	for _, name := range e.order {
		provs = append(provs, e.providers[name])
	}
	return provs
}

// fillTypeInfo fetches (once, then from the store) the vCPUs and memory of
// instance types whose templates leave ncpus or nram out.
func (e *Engine) fillTypeInfo(ctx context.Context, provs []*prov) {
	for _, p := range provs {
		for _, id := range p.order {
			t := p.templates[id]
			_, hasCPU := t.Attributes.Get("ncpus")
			_, hasRAM := t.Attributes.Get("nram")
			_, hasType := t.Attributes.Get("type")
			if hasCPU && hasRAM && hasType {
				continue
			}
			types := t.InstanceTypes()
			if len(types) == 0 {
				continue
			}
			e.mu.RLock()
			_, ok := e.typeInfo[types[0]]
			e.mu.RUnlock()
			if ok {
				continue
			}
			ti, err := p.cfg.Cloud.InstanceType(ctx, types[0])
			if err != nil {
				e.log.Warn("describing instance type failed", "type", types[0], "err", err)
				continue
			}
			b, _ := json.Marshal(ti)
			if err := e.store.Write(store.Op{Key: keyTypeInfo + ti.Name, Value: b}); err != nil {
				e.log.Warn("caching instance type", "err", err)
			}
			e.mu.Lock()
			e.typeInfo[ti.Name] = ti
			e.mu.Unlock()
		}
	}
}

// attributesLocked returns the template's HF attributes, with type, ncpus
// and nram filled from the instance type when the template leaves them
// out. Called with e.mu held (read).
func (e *Engine) attributesLocked(t *template.Template) template.Attributes {
	attrs := append(template.Attributes(nil), t.Attributes...)
	types := t.InstanceTypes()
	if len(types) == 0 {
		return attrs
	}
	ti, ok := e.typeInfo[types[0]]
	if !ok {
		return attrs
	}
	if _, has := attrs.Get("type"); !has {
		typ := "X86_64"
		if ti.Arch == "arm64" {
			typ = "ARM64"
		}
		attrs.Set(template.Attribute{Name: "type", Type: "String", Value: typ})
	}
	if _, has := attrs.Get("ncpus"); !has {
		attrs.Set(template.Attribute{Name: "ncpus", Type: "Numeric", Value: fmt.Sprint(ti.VCPUs)})
	}
	if _, has := attrs.Get("nram"); !has {
		attrs.Set(template.Attribute{Name: "nram", Type: "Numeric", Value: fmt.Sprint(ti.MemoryMiB)})
	}
	return attrs
}
