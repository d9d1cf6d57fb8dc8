// Package reconcile folds what the cloud says into the state: one pass
// lists (or, while busy, describes) what carries ohfp's tags, adopts what
// memory lacks, gives up on instances pending too long, notices instances
// gone outside HF and Spot interruption notices, judges fleets, finishes
// and purges requests, and returns when the next pass is due.
package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/english"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/lowprio"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/quiet"
	"github.com/ohfp/ohfp/internal/state"
	"github.com/ohfp/ohfp/internal/template"
)

// Reconciler runs reconcile passes over a state. One pass at a time.
type Reconciler struct {
	st     *state.State
	lookMu sync.Mutex // one cloud lookup at a time (lookup.go)
	// failing counts each provider's event queue failures in a row
	// (events.go; under the state's Mu).
	failing map[string]int
	// impaired is when each instance was first seen failing a status
	// check (health.go; reconcile goroutine only).
	impaired map[string]time.Time
	// takingOver: a takeover from IBM's plugin is folding its hosts in
	// (takeover.go; under the state's Mu): the requests it records are
	// not rebuilt from tags, and are not logged as such.
	takingOver bool
}

// New returns the reconciler of st.
func New(st *state.State) *Reconciler { return &Reconciler{st: st} }

// ReconcileOnce runs one reconcile pass: for each provider it lists what the
// cloud has for ohfp's tags (one filtered, paginated listing), folds it
// into memory, gives up on instances pending too long, notices instances
// ended outside HF and Spot interruption notices, finishes requests,
// persists what changed, and returns the delay until the next pass: short
// while anything is in flight, long when idle.
func (rc *Reconciler) ReconcileOnce(ctx context.Context) time.Duration {
	start := rc.st.Clock.Now()
	rc.st.SaveUnsaved() // what a full disk kept from being written
	provs := rc.st.ProvidersInOrder()

	// Before the listings: templates that leave ncpus or nram out are
	// complete as soon as possible.
	rc.fillTypeInfo(ctx, provs)
	var firstErr error
	deferred := false
	for _, p := range provs {
		if err := rc.reconcileProvider(ctx, p); err != nil && firstErr == nil {
			firstErr = err
		}
		deferred = deferred || !p.FullDeferred.IsZero()
	}
	next := rc.finishAndPurge()
	if deferred {
		next = min(next, rc.st.Opts.ActiveInterval) // look for a pause again soon
	}

	rc.st.Mu.Lock()
	rc.st.Health.Reconciles++
	rc.st.Health.LastReconcile = start
	rc.st.Health.LastReconcileTook = rc.st.Clock.Now().Sub(start)
	rc.st.Health.LastReconcileError = ""
	if firstErr != nil {
		rc.st.Health.LastReconcileError = firstErr.Error()
		if provider.Retryable(firstErr) {
			next = min(next, rc.st.Opts.ActiveInterval*2)
		}
	}
	rc.st.Mu.Unlock()
	// Launches and terminations decided by the pass start now.
	rc.st.KickLaunch()
	return next
}

func (rc *Reconciler) reconcileProvider(ctx context.Context, p *state.Provider) error {
	name := p.Cfg.Name
	start := rc.st.Clock.Now()
	// A full listing (everything with ohfp's tag) at least once per idle
	// interval: it adopts instances memory does not hold and notices
	// instances gone outside HF. Between, a busy pass describes only what
	// is in flight, which keeps a pass over 10,000 quiet machines cheap.
	full, yield := rc.listingPlan(p, start)
	rc.st.Mu.RLock()
	seqAtList := rc.st.Seq
	var ids, reqs []string
	if !full {
		ids, reqs = rc.inFlightLocked(name)
	}
	rc.st.Mu.RUnlock()
	var insts []provider.Instance
	var err error
	began := time.Now() // wall time, for the debug log's figures
	switch {
	case full && p.LastFull.IsZero():
		// The first listing after start-up rebuilds what memory lacks: at
		// once, at normal priority.
		insts, err = p.Cfg.Cloud.List(ctx, rc.st.Opts.ClusterID)
	case full:
		// At a low CPU priority: decoding the whole listing is about a
		// second of CPU at 10,000 instances, which must not come out of
		// the HF calls being answered meanwhile.
		lowprio.Do(func() { insts, err = p.Cfg.Cloud.List(provider.WithPageHook(ctx, yield), rc.st.Opts.ClusterID) })
	case len(ids) > 0 || len(reqs) > 0:
		insts, err = p.Cfg.Cloud.Describe(ctx, rc.st.Opts.ClusterID, ids, reqs)
	}
	if err != nil {
		rc.st.Log.Warn("reconcile: describing instances failed", "provider", name, "full", full, "err", err)
		return err
	}
	if full {
		p.LastFull = start
	}
	now := rc.st.Clock.Now()
	seen := make(map[string]bool, len(insts))
	listed := time.Now()

	yield(ctx) // the diff below holds the lock for ~10 ms at 10,000 instances
	locked := time.Now()
	rc.st.Mu.Lock()
	if full {
		rc.st.Health.Listings++
		rc.st.Health.LastListing, rc.st.Health.LastListingTook = start, listed.Sub(began)
	}
	changedR := map[string]*domain.Request{}
	changedM := rc.foldLocked(p, insts, now, seen, changedR, false)
	spotIDs := rc.spotToCheckLocked(name)
	var missing []string
	if full {
		missing = rc.missingLocked(name, seen, seqAtList, now)
	}
	rc.st.Mu.Unlock()

	if len(missing) > 0 {
		rc.confirmMissing(ctx, p, missing, &changedM)
	}
	if len(spotIDs) > 0 {
		rc.checkSpot(ctx, p, spotIDs, &changedM)
	}

	diffed := time.Now()
	// Encoded under the lock, written outside it (state.Persist says
	// what HF's reads may see meanwhile: observations of the cloud).
	rc.st.Mu.Lock()
	w := rc.st.Stage(state.Values(changedR), changedM)
	rc.st.Mu.Unlock()
	if err = w.Wait(); err != nil {
		rc.st.Log.Error("reconcile: persist", "err", err)
		return err
	}
	rc.reconcileFleets(ctx, p)
	rc.checkHealth(ctx, p, start)
	if rc.st.Log.Enabled(ctx, slog.LevelDebug) {
		rc.st.Log.Debug("reconcile pass", "provider", name, "full", full, "instances", len(insts), "changed", len(changedM),
			"describe", listed.Sub(began).Round(time.Microsecond), "diff", diffed.Sub(locked).Round(time.Microsecond),
			"persist", time.Since(diffed).Round(time.Microsecond))
	}
	return nil
}

// listingPlan decides whether provider p's pass at start is a full
// listing, and how it gives way to HF's calls (yield, called before each
// page and before the diff takes the lock).
func (rc *Reconciler) listingPlan(p *state.Provider, start time.Time) (full bool, yield func(context.Context)) {
	full = p.LastFull.IsZero() || start.Sub(p.LastFull) >= rc.st.Opts.IdleInterval
	yield = func(context.Context) {}
	if full && rc.st.Opts.Gate != nil && !p.LastFull.IsZero() {
		// Let HF's calls go first (see Options.Gate). Wall time: the calls
		// are real whatever the state's clock.
		now := time.Now()
		if p.FullDeferred.IsZero() {
			p.FullDeferred = now
		}
		switch {
		case rc.st.Opts.Gate.Quiet(quiet.Gap):
			// Started at a pause: it gives way to the next burst of calls
			// too, quiet.MaxWait at a time, quiet.MaxTotal in all.
			p.FullDeferred = time.Time{}
			end := now.Add(quiet.MaxTotal)
			yield = func(ctx context.Context) {
				until := time.Now().Add(quiet.MaxWait)
				if until.After(end) {
					until = end
				}
				rc.st.Opts.Gate.Wait(ctx, quiet.Gap, until)
			}
		case now.Sub(p.FullDeferred) < 2*rc.st.Opts.IdleInterval:
			full = false // a busy pass now; the listing at a pause
		default:
			// Put off long enough: it runs now, without waiting, so that
			// the pass (and what is in flight) is not held up further.
			p.FullDeferred = time.Time{}
		}
	}
	return full, yield
}

// foldLocked folds a listing (or description) into memory: it adopts what
// memory lacks, observes the rest, and dooms machines HF was told failed
// that are still up and machines pending past the timeout. It marks what
// it saw in seen and returns the machines it changed (and the requests,
// in changedR). asked: insts are what HF just named (a lookup, see
// lookup.go), adopted even when already terminated, so that HF's ids
// answer. Called with the state's Mu held.
func (rc *Reconciler) foldLocked(p *state.Provider, insts []provider.Instance, now time.Time, seen map[string]bool, changedR map[string]*domain.Request, asked bool) []*domain.Machine {
	name := p.Cfg.Name
	var changedM []*domain.Machine
	// Units each request has in this listing, in any state (a returned
	// one terminated since counts): a request rebuilt after a failover
	// stops waiting for its units once they all show.
	shown := map[string]int{}
	for i := range insts {
		w := 1
		if tpl := p.Templates[insts[i].Tags[provider.TagTemplateID]]; tpl != nil {
			w = max(tpl.WeightOf(insts[i].InstanceType), 1)
		}
		shown[insts[i].Tags[provider.TagRequestID]] += w
	}
	defer func() {
		for rid, n := range shown {
			if r := rc.st.Requests[rid]; r != nil && r.UnitsFromTag && !r.Final() && n >= r.Units {
				// All shown: what is live is the request, as for an older
				// rebuilt one.
				r.UnitsFromTag = false
				units := 0
				for _, id := range r.MachineIDs {
					if m := rc.st.Machines[id]; m != nil {
						units += max(m.Weight, 1)
					}
				}
				r.Units = max(units, 1)
				changedR[rid] = r
			}
		}
	}()
	for i := range insts {
		in := &insts[i]
		if pn := in.Tags[provider.TagProvider]; pn != "" && pn != name {
			continue // another provider of this daemon owns it
		}
		seen[in.ID] = true
		m := rc.st.Machines[in.ID]
		if m == nil {
			m = rc.adoptLocked(p, in, now, changedR, asked)
			if m == nil {
				continue
			}
			changedM = append(changedM, m)
		} else {
			oldName := m.Name
			before := *m
			// Before the observation: a machine another daemon terminated
			// for HF's return was returned, not taken back by the cloud.
			returned := rc.returnedLocked(p, m, in, now, changedR)
			if m.Observe(state.Observation(*in), now) || returned {
				changedM = append(changedM, m)
				rc.logOutsideHF(&before, m)
				rc.breakerLocked(&before, m)
			}
			if m.Name != oldName && m.Name != "" {
				rc.st.ByName[m.Name] = m
			}
		}
		if m.Result == hf.ResultFail && m.Live() && !m.Doomed && m.ReturnID == "" {
			// HF was told this machine failed and will never return it: it
			// must not live on (e.g. it reappeared after being taken as gone).
			m.Doomed = true
			rc.st.Log.Warn("failed machine still up; terminating", "instance", m.ID, "request", m.RequestID)
			changedM = append(changedM, m)
		}
		if m.PendingExpired(now, p.Cfg.PendingTimeout) {
			m.GiveUp(p.Cfg.PendingTimeout)
			rc.st.Log.Warn("instance pending too long; terminating", "instance", m.ID, "request", m.RequestID)
			changedM = append(changedM, m)
		}
	}
	return changedM
}

// spotToCheckLocked lists the Spot requests of provider name's live Spot
// machines without an interruption notice yet: asked every pass (not
// only for what the pass described). Called with the state's Mu held.
func (rc *Reconciler) spotToCheckLocked(name string) []string {
	var spotIDs []string
	for _, m := range rc.st.Machines {
		if m.Provider == name && m.Spot && m.SpotRequest != "" && m.Live() && m.InterruptAt.IsZero() && m.ReturnID == "" {
			spotIDs = append(spotIDs, m.SpotRequest)
		}
	}
	return spotIDs
}

// missingLocked lists provider name's machines a full listing by tag no
// longer shows, to be confirmed by id before they are taken as gone:
// neither those recorded after the listing began (seq) nor those just
// launched, which EC2's listing may lag. Called with the state's Mu held.
func (rc *Reconciler) missingLocked(name string, seen map[string]bool, seqAtList uint64, now time.Time) []string {
	var missing []string
	for _, m := range rc.st.Machines {
		if m.Provider != name || seen[m.ID] || !m.Live() || m.Seq > seqAtList {
			continue // recorded after the listing began: its absence means nothing
		}
		// Seen by a listing before, or older than EC2's eventual
		// consistency allows for: a launch's own answer is not a sighting
		// (provision leaves LastSeen unset), and an instance that answer
		// named may be missing from describes for a while.
		born := m.LaunchTime
		if r := rc.st.Requests[m.RequestID]; born.IsZero() && r != nil {
			born = r.CreatedAt
		}
		known := !m.LastSeen.IsZero() || (!born.IsZero() && now.Sub(born) > rc.st.Opts.VisibilityGrace)
		if !known {
			continue // just launched; EC2's listing may lag
		}
		missing = append(missing, m.ID)
	}
	return missing
}

// inFlightLocked lists what a busy pass must look at for provider name:
// machines starting, stopping or being terminated, and the request ids of
// fleets still filling or of launches whose answer a crash may have lost.
// Called with the state's Mu held (read).
func (rc *Reconciler) inFlightLocked(name string) (ids, reqs []string) {
	for _, m := range rc.st.Machines {
		if m.Provider != name || !m.Live() {
			continue
		}
		switch {
		case m.State == domain.StatePending, m.State == domain.StateShuttingDown, m.State == domain.StateStopping,
			m.Result == hf.ResultExecuting, m.TerminateSent, m.Doomed, m.ReturnID != "":
			ids = append(ids, m.ID)
		}
	}
	for _, r := range rc.st.Requests {
		if r.Provider != name || r.Kind != domain.KindAcquire || r.Final() {
			continue
		}
		if r.Handle != "" && (!r.HandleCapped || rc.capAwaitedLocked(r)) || r.Phase == domain.PhaseQueued && r.Attempts > 0 {
			reqs = append(reqs, r.ID)
		}
	}
	return ids, reqs
}

// AnswerWait is how long a request recorded with its answer pending
// (domain.Request.AnswerPending) waits for HF's question before it is ended
// unlaunched. HF polls a request it got within seconds.
const AnswerWait = 10 * time.Minute

// adoptLocked takes in an instance the cloud shows with ohfp's tags but
// memory does not hold. Called with the state's Mu held.
func (rc *Reconciler) adoptLocked(p *state.Provider, in *provider.Instance, now time.Time, changedR map[string]*domain.Request, asked bool) *domain.Machine {
	rid := in.Tags[provider.TagRequestID]
	r := rc.st.Requests[rid]
	if in.State == provider.StateTerminated && (r == nil || r.Final()) && !asked {
		return nil // nothing to adopt
	}
	tpl := p.Templates[in.Tags[provider.TagTemplateID]]
	switch {
	case r != nil && r.Kind != domain.KindAcquire, r == nil && strings.HasPrefix(rid, "ret-") && domain.IsRequestID(rid):
		// A return's id as a request id (a takeover by an older ohfpd
		// merged IBM's host into HF's return): never an acquire request,
		// nor a host of a return; left alone.
		rc.st.Log.Warn("instance tagged for this cluster with a return id as its request id; ignoring (not a host of any acquire request)", "instance", in.ID, "request", rid)
		return nil
	case r == nil && rid != "":
		// The store lost it (deleted state directory): rebuild the request
		// from the tags so HF's request id keeps answering.
		r = &domain.Request{
			ID:         rid,
			Kind:       domain.KindAcquire,
			Provider:   p.Cfg.Name,
			TemplateID: in.Tags[provider.TagTemplateID],
			CreatedAt:  in.LaunchTime,
			Phase:      domain.PhaseLaunched,
			Handle:     in.Handle,
			Rebuilt:    true,
			TakenOver:  in.Tags[provider.TagTakenOver] != "",
			// HF may hold it (a failover: another daemon made it), or
			// never have learned of it: the claim rule decides, on HF's
			// own evidence (see provenUnclaimedLocked). Not a request
			// taken over from IBM's plugin: HF learned of it through
			// IBM's plugin (its hosts the file did not list await HF's
			// claim each, domain.Machine.Unlisted).
			AwaitingClaim: in.Tags[provider.TagTakenOver] == "",
		}
		if n, err := strconv.Atoi(in.Tags[provider.TagRequestUnits]); err == nil && n > 0 && now.Sub(in.LaunchTime) < rc.st.Opts.VisibilityGrace {
			// Launched moments ago (a failover): the request waits for the
			// units HF asked for that EC2 has not shown yet (eventual
			// consistency) before it is complete, rather than answer HF
			// with what showed first. An older one is what the cloud
			// shows (some may have been returned and be gone).
			r.Units, r.UnitsFromTag = n, true
		}
		rc.st.Requests[rid] = r
		if !rc.takingOver {
			rc.st.Log.Warn("rebuilt a request from cloud tags", "request", rid, "instance", in.ID)
		}
	case r == nil:
		rc.st.Log.Warn("instance tagged for this cluster without a request id; ignoring", "instance", in.ID)
		return nil
	case r.Final():
		// A late arrival for a finished request: HF will never hear of it,
		// so it must not live on unaccounted.
		// (HF was told a request it asked about here failed, or was
		// never made here; see LookUpRequests.)
		m := rc.st.NewMachineLocked(r, tpl, *in, "", now)
		m.Result = hf.ResultFail
		m.Doomed = m.Live()
		m.Message = domain.MsgArrivedAfter
		rc.returnedLocked(p, m, in, now, changedR)
		changedR[r.ID] = r
		if m.Live() {
			rc.st.Log.Warn("orphan instance of a finished request; terminating", "instance", in.ID, "request", rid, "status", r.Status)
		}
		return m
	}
	m := rc.st.NewMachineLocked(r, tpl, *in, "", now)
	if in.Tags[provider.TagTakenOver] != "" {
		r.TakenOver = true
		if r.AwaitingClaim && !r.AnswerPending {
			// Taken over from IBM's plugin: HF learned of it there.
			r.AwaitingClaim = false
			delete(rc.st.ClaimWatch, r.ID)
			for _, id := range r.MachineIDs {
				if hm := rc.st.Machines[id]; hm != nil {
					hm.AwaitingClaim = false
				}
			}
		}
		m.Unlisted = in.Tags[provider.TagTakenOver] == takenOverIBMUnlisted && in.Tags[provider.TagReturnID] == ""
	}
	if r.Rebuilt {
		if !r.UnitsFromTag {
			r.Units += max(m.Weight, 1)
		}
		if m.Result == hf.ResultExecuting && m.State == domain.StateRunning {
			m.Result = hf.ResultSucceed
		}
	}
	if rc.returnedLocked(p, m, in, now, changedR) {
		// HF held it (it returned it): it was usable, whatever its state
		// now.
		m.ReclaimedAt = time.Time{}
		if m.Result == hf.ResultFail && r.Rebuilt {
			m.Result, m.Message = hf.ResultSucceed, ""
		}
	}
	if r.Phase == domain.PhaseQueued && (r.FallbackUnits == 0 || m.Handle == "") && r.NextAttempt.After(now) {
		// Launched, but the answer never reached ohfp (a crash, a
		// connection cut after the call ran). What a listing shows may be
		// part of it only: EC2 shows each new instance after its own delay
		// (eventual consistency), and a fleet's handle not at all. The
		// request stays queued and the launch is asked again now, with
		// the same client token: EC2 answers the first call's instances,
		// or fleet, in full, and nothing is launched twice. (A late
		// instance of a capped fleet does not stand for the on-demand
		// fallback still to be launched.)
		r.NextAttempt = now
		rc.st.KickLaunch()
	}
	changedR[r.ID] = r
	return m
}

// returnedLocked folds in the return an instance's tags record
// (provider.TagReturnID, written before ohfp terminates a machine HF
// returned): m is marked returned by it, and its return request, when
// memory lacks it (another daemon, or a lost store, took the return), is
// rebuilt from the tag so that HF's ret- id answers here too: running
// while the instance ends, complete once it has. It reports whether m
// changed. Called with the state's Mu held.
func (rc *Reconciler) returnedLocked(p *state.Provider, m *domain.Machine, in *provider.Instance, now time.Time, changedR map[string]*domain.Request) bool {
	ret := in.Tags[provider.TagReturnID]
	if ret == "" || m.ReturnID == ret {
		return false // the common case, every pass: this daemon's own return
	}
	rr := rc.st.Requests[ret]
	if rr == nil {
		rr = &domain.Request{ID: ret, Kind: domain.KindReturn, Provider: p.Cfg.Name, CreatedAt: now, Rebuilt: true}
		rc.st.Requests[ret] = rr
		rc.st.Log.Warn("rebuilt a return request from cloud tags", "request", ret, "instance", in.ID)
	}
	if rr.Kind == domain.KindReturn && !slices.Contains(rr.MachineIDs, m.ID) {
		rr.MachineIDs = append(rr.MachineIDs, m.ID)
		if rr.Final() && m.Live() {
			// Told finished (e.g. not known, before this instance showed):
			// the machine is still terminated, as HF asked.
			m.Doomed = true
		}
		changedR[ret] = rr
	}
	if m.ReturnID != "" {
		return false
	}
	m.ReturnID = ret
	if m.Live() {
		rc.st.Log.Warn("machine returned through another daemon (its return tag says so); terminating it", "instance", m.ID, "request", m.RequestID, "return", ret)
	}
	return true
}

// confirmMissing looks up by id, whatever their tags, the machines a full
// listing by ohfp's tag did not show, and takes as gone only those the
// cloud does not know either. A machine whose tags no longer name this
// cluster (a changed cluster_id, a tag removed by hand) is still a machine
// HF may be using: it is observed as usual, and the log says what is
// wrong, instead of HF being told the cloud took it back.
func (rc *Reconciler) confirmMissing(ctx context.Context, p *state.Provider, ids []string, changed *[]*domain.Machine) {
	insts, err := p.Cfg.Cloud.Describe(ctx, "", ids, nil)
	if err != nil {
		rc.st.Log.Warn("reconcile: confirming instances missing from the listing failed; they are not taken as gone this pass", "provider", p.Cfg.Name, "instances", len(ids), "err", err)
		return
	}
	found := make(map[string]*provider.Instance, len(insts))
	for i := range insts {
		found[insts[i].ID] = &insts[i]
	}
	now := rc.st.Clock.Now()
	rc.st.Mu.Lock()
	defer rc.st.Mu.Unlock()
	for _, id := range ids {
		m := rc.st.Machines[id]
		if m == nil || !m.Live() {
			continue
		}
		in := found[id]
		before := *m
		if in == nil {
			if m.Vanish(now) {
				*changed = append(*changed, m)
				rc.logOutsideHF(&before, m)
			}
			continue
		}
		if owner := in.Tags[provider.TagManagedBy]; owner != rc.st.Opts.ClusterID {
			rc.st.Log.Error("instance no longer carries this cluster's tag; it is kept as HF's machine, not taken as gone: restore the tag, or check cluster_id",
				"instance", id, "request", m.RequestID, "tag", provider.TagManagedBy, "has", owner, "want", rc.st.Opts.ClusterID)
		}
		if m.Observe(state.Observation(*in), now) {
			*changed = append(*changed, m)
			rc.logOutsideHF(&before, m)
			rc.breakerLocked(&before, m)
		}
	}
}

// logOutsideHF writes one log line when an observation changed a machine
// in a way HF did not cause: the cloud (or someone at the console) ended
// or stopped it, or it failed to start. before is the machine as it was.
func (rc *Reconciler) logOutsideHF(before, m *domain.Machine) {
	reason := m.StateReason
	if reason == "" {
		reason = "none given"
	}
	switch {
	case before.ReclaimedAt.IsZero() && !m.ReclaimedAt.IsZero():
		what := "the cloud took a machine back outside HF"
		if before.Result == hf.ResultExecuting && m.Result == hf.ResultFail {
			what = "a machine failed to start"
		}
		rc.st.Log.Warn(what, "instance", m.ID, "request", m.RequestID, "state", m.State, "reason", reason, "template", m.TemplateID)
	case before.Result == hf.ResultExecuting && m.Result == hf.ResultFail:
		rc.st.Log.Warn("a machine failed to start", "instance", m.ID, "request", m.RequestID, "state", m.State, "reason", reason, "template", m.TemplateID)
	}
}

// breakerLocked tells the template's failure breaker what an observation
// says of a launch: a machine that reached running resets its count; one
// that ended before it ran, for a reason of its own (EC2's state reason:
// Server.InternalError, Client.VolumeLimitExceeded, Client.InternalError,
// Client.InvalidSnapshot.NotFound, ...: EC2 API Reference, StateReason),
// counts, once per request. No
// capacity (Server.InsufficientInstanceCapacity), a Spot interruption, a
// person or the OS ending it, or ohfp giving up on it do not. before is
// the machine as it was. Called with the state's Mu held.
func (rc *Reconciler) breakerLocked(before, m *domain.Machine) {
	if m.TemplateID == "" || before.Result != hf.ResultExecuting {
		return
	}
	switch {
	case m.Result == hf.ResultSucceed:
		rc.st.BreakerSuccessLocked(m.Provider, m.TemplateID)
	case m.Result == hf.ResultFail && !m.Doomed && m.ReturnID == "" && diedOnItsOwn(m.StateReason):
		rc.st.BreakerFailureLocked(m.Provider, m.TemplateID, m.RequestID, fmt.Sprintf("instance %s %s before it ran (%s)", m.ID, m.State, m.StateReason))
	}
}

// diedOnItsOwn reports whether an EC2 state reason code says the
// instance ended for a reason of its own launch (EC2 User Guide,
// "Troubleshoot instance launch issues": "instance terminates
// immediately"), which launching again the same way repeats.
func diedOnItsOwn(reason string) bool {
	if !strings.HasPrefix(reason, "Server.") && !strings.HasPrefix(reason, "Client.") {
		return false
	}
	switch reason {
	case "Server.InsufficientInstanceCapacity", "Server.SpotInstanceTermination", "Server.SpotInstanceShutdown",
		"Server.ScheduledStop", "Client.UserInitiatedShutdown", "Client.UserInitiatedHibernate", "Client.InstanceInitiatedShutdown",
		"Client.InstanceTerminated":
		return false
	}
	return true
}

// checkSpot asks the cloud about the Spot requests of live Spot machines
// and records interruption notices.
func (rc *Reconciler) checkSpot(ctx context.Context, p *state.Provider, ids []string, changed *[]*domain.Machine) {
	srs, err := p.Cfg.Cloud.SpotRequests(ctx, ids)
	if err != nil {
		rc.st.Log.Warn("reconcile: describing Spot requests failed", "provider", p.Cfg.Name, "err", err)
		return
	}
	rc.st.Mu.Lock()
	defer rc.st.Mu.Unlock()
	for _, sr := range srs {
		if !sr.Interrupted {
			continue
		}
		m := rc.st.Machines[sr.InstanceID]
		if m == nil || !m.InterruptAt.IsZero() {
			continue
		}
		at := sr.StatusUpdate
		if at.IsZero() {
			at = rc.st.Clock.Now()
		}
		m.InterruptAt = at
		*changed = append(*changed, m)
		rc.st.Log.Warn("Spot interruption notice: the cloud takes the machine back in two minutes", "instance", m.ID, "request", m.RequestID, "reason", orText(sr.StatusCode, "none given"))
	}
}

// finishAndPurge records final statuses, drops what is past retention, and
// says when the next pass is due.
func (rc *Reconciler) finishAndPurge() time.Duration {
	now := rc.st.Clock.Now()
	rc.st.Mu.Lock()
	rc.st.RearmExpiredLocked(now)
	busy := false
	var changed []*domain.Request
	var deletes []string
	var doomed []*domain.Machine
	for _, r := range rc.st.Requests {
		if r.Kind == domain.KindAcquire && r.AwaitingClaim && !r.Unclaimed && rc.provenUnclaimedLocked(r, now) {
			r.Unclaimed = true
			delete(rc.st.ClaimWatch, r.ID)
			n := 0
			for _, id := range r.MachineIDs {
				if m := rc.st.Machines[id]; m != nil && m.Live() && m.ReturnID == "" && !m.Doomed {
					m.Doomed = true
					// Should HF ask after all, it must not take the host
					// for a usable one.
					m.Result, m.Message = hf.ResultFail, "terminated by ohfp: HF never asked about its request"
					doomed = append(doomed, m)
					n++
				}
			}
			switch {
			case !r.Final():
				r.Phase, r.LaunchError = domain.PhaseFailed, unclaimedWhy
				if r.Handle != "" {
					r.HandleCapped = true
				}
			case n > 0:
				r.Status, r.Message = hf.StatusCompleteWithError, unclaimedWhy
			}
			changed = append(changed, r)
			if n > 0 || !r.Final() {
				rc.st.Log.Warn("HF showed no sign of knowing this request (never asked about it; its getReturnRequests calls left its machines out): taken as never learned of, e.g. its answer lost; terminating its machines",
					"request", r.ID, "machines", n, "evidence", rc.st.Opts.ClaimTimeout)
			}
		}
		if !r.Final() && r.AnswerPending && r.Phase == domain.PhaseQueued && len(r.MachineIDs) == 0 && now.Sub(r.CreatedAt) > AnswerWait {
			// Recorded, its answer never known to have reached HF, and HF
			// never asked about it: e.g. a shared table applied a write
			// whose answer timed out while HF was told nothing was
			// recorded. Ended with nothing launched.
			delete(rc.st.Undelivered, r.ID)
			r.AnswerPending, r.AwaitingClaim = false, false
			r.Phase = domain.PhaseFailed
			r.LaunchError = fmt.Sprintf("its requestMachines answer is not known to have reached HF, and HF never asked about it within %s; nothing was launched", AnswerWait)
			changed = append(changed, r)
			rc.st.Log.Warn("a request whose answer never reached HF ended unlaunched", "request", r.ID)
		}
		if !r.Final() && r.Rebuilt && r.UnitsFromTag && r.Kind == domain.KindAcquire && r.Shortfall == "" && now.Sub(r.CreatedAt) > rc.st.Opts.VisibilityGrace {
			if units, executing := rc.st.UnitsLocked(r); executing == 0 && units < r.Units {
				r.Shortfall = fmt.Sprintf("only %d of %s found in the cloud after a failover", units, english.Plural(r.Units, "unit"))
				changed = append(changed, r)
			}
		}
		if !r.Final() {
			rc.st.FinishLocked(r)
			if r.Final() {
				changed = append(changed, r)
				rc.st.Log.Info("request finished", "request", r.ID, "status", r.Status, "message", r.Message)
			} else {
				busy = true
			}
			continue
		}
		if now.Sub(r.FinishedAt) < rc.st.Opts.Retention {
			continue
		}
		// Purge only when none of its machines is still live.
		live := false
		for _, id := range r.MachineIDs {
			if m := rc.st.Machines[id]; m != nil && (m.Live() || m.ReturnID != "" && rc.st.Requests[m.ReturnID] != nil && !rc.st.Requests[m.ReturnID].Final()) {
				live = true
				break
			}
		}
		if live {
			continue
		}
		deletes = append(deletes, state.KeyRequest+r.ID)
		deletes = append(deletes, rc.st.NoteKeysLocked(r.ID)...)
		if r.Kind == domain.KindAcquire {
			for _, id := range r.MachineIDs {
				if m := rc.st.Machines[id]; m != nil {
					delete(rc.st.Machines, id)
					if rc.st.ByName[m.Name] == m {
						delete(rc.st.ByName, m.Name)
					}
					deletes = append(deletes, state.KeyMachine+id)
				}
			}
		}
		delete(rc.st.Requests, r.ID)
	}
	for _, m := range rc.st.Machines {
		if m.Unlisted && m.Live() && m.ReturnID == "" && !m.Doomed && rc.provenUnheldLocked(m) {
			// An instance of IBM's fleet IBM's file did not list, which
			// HF's calls prove it does not hold: no one's, billed.
			delete(rc.st.ClaimWatch, unheldKey(m.ID))
			m.Unlisted, m.Doomed = false, true
			m.Result, m.Message = hf.ResultFail, unheldWhy
			doomed = append(doomed, m)
			rc.st.Log.Warn("HF showed no sign of holding this instance of IBM's fleet that IBM's file did not list (its getReturnRequests calls left it out): terminating it",
				"instance", m.ID, "request", m.RequestID, "evidence", rc.st.Opts.ClaimTimeout)
		}
	}
	for _, m := range rc.st.Machines {
		if m.State == domain.StatePending || m.State == domain.StateShuttingDown || m.State == domain.StateStopping || m.WantsTermination() {
			busy = true
			break
		}
	}
	// Written outside the lock: HF is shown a request final only once
	// its write is done (service.GetRequestStatus), and the doomed
	// machines are terminated only after it (provision waits for it).
	w := rc.st.Stage(changed, doomed, deletes...)
	rc.st.Mu.Unlock()
	if err := w.Wait(); err != nil {
		rc.st.Log.Error("persist finished requests", "err", err)
	}
	if busy {
		return rc.st.Opts.ActiveInterval
	}
	return rc.st.Opts.IdleInterval
}

// unclaimedWhy is the message of a request whose machines were terminated
// because HF never learned of it (provenUnclaimedLocked).
const unclaimedWhy = "HF never learned of this request: it did not ask about it, nor return or list any of its machines, for the claim timeout (its answer was probably lost); ohfp terminated its machines"

// provenUnclaimedLocked reports whether HF has shown, by its own calls in
// this process, that it never learned of acquire request r (awaiting its
// claim): getReturnRequests lists every host HF holds, and the calls made
// over ClaimTimeout since r existed (at least three) all left r's machines
// out, while HF never asked about r nor returned any of them (any of
// which claims r). Nothing here survives a restart, so a restart only
// delays the proof; and a cluster whose HF never calls getReturnRequests
// never proves it: its machines are kept (a leak is cheaper than
// terminating a host HF uses). Called with the state's Mu held.
//
// A request rebuilt from cloud tags (adoptLocked: a failover to this
// daemon, or a lost store) awaits its claim like one made here: HF may
// well hold it (it was made through the other daemon), so no timer alone
// ends it; but HF's getReturnRequests lists every host HF holds, and
// calls that keep leaving all its machines out, while HF never asks about
// it nor returns one, prove HF does not hold it (its answer was lost, or
// HF was told it failed). Exempting rebuilt requests would keep such
// machines running and billed for ever.
func (rc *Reconciler) provenUnclaimedLocked(r *domain.Request, now time.Time) bool {
	calls := rc.st.Holdings.Calls.Load()
	if calls == 0 {
		return false
	}
	last := time.Unix(0, rc.st.Holdings.Last.Load())
	w, ok := rc.st.ClaimWatch[r.ID]
	if !ok {
		if last.Before(r.CreatedAt) {
			return false
		}
		rc.st.ClaimWatch[r.ID] = state.ClaimMark{Calls: calls, At: last}
		return false
	}
	return calls-w.Calls >= 2 && last.Sub(w.At) >= rc.st.Opts.ClaimTimeout
}

// unheldWhy is the message of an instance of IBM's fleet, not listed by
// IBM's file, terminated because HF showed it does not hold it.
const unheldWhy = "an instance of IBM's plugin's fleet that IBM's state file did not list, which HF's getReturnRequests calls left out for the claim timeout (HF does not hold it): terminated by ohfp"

// unheldKey is the key of instance id's mark in ClaimWatch (apart from
// request ids).
func unheldKey(id string) string { return "machine/" + id }

// provenUnheldLocked reports whether HF has shown, by its own calls in
// this process, that it does not hold m, an instance of one of IBM's
// fleets that IBM's file did not list (domain.Machine.Unlisted): at least
// three getReturnRequests calls, over ClaimTimeout, since this process
// first looked at m, all left it out (a call listing it, or a return of
// it, clears m.Unlisted: service.Service, state.ClaimHosts). Nothing here
// survives a restart: a restart starts the evidence over. Called with
// the state's Mu held.
func (rc *Reconciler) provenUnheldLocked(m *domain.Machine) bool {
	calls := rc.st.Holdings.Calls.Load()
	w, ok := rc.st.ClaimWatch[unheldKey(m.ID)]
	if !ok {
		// From the next call on: the calls so far may predate m.
		rc.st.ClaimWatch[unheldKey(m.ID)] = state.ClaimMark{Calls: calls, At: rc.st.Clock.Now()}
		return false
	}
	last := time.Unix(0, rc.st.Holdings.Last.Load())
	return calls-w.Calls >= 3 && last.Sub(w.At) >= rc.st.Opts.ClaimTimeout
}

// FillTypeInfo fetches what fillTypeInfo does for every provider. ohfpd
// calls it once before serving, so that the first getAvailableTemplates
// already has ncpus and nram; passes do it again for what is missing.
func (rc *Reconciler) FillTypeInfo(ctx context.Context) {
	rc.fillTypeInfo(ctx, rc.st.ProvidersInOrder())
}

// fillTypeInfo fetches (once, then from the store) the vCPUs and memory of
// instance types whose templates leave ncpus or nram out.
func (rc *Reconciler) fillTypeInfo(ctx context.Context, provs []*state.Provider) {
	for _, p := range provs {
		for _, id := range p.Order {
			t := p.Templates[id]
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
			rc.st.Mu.RLock()
			_, ok := rc.st.TypeInfo[types[0]]
			rc.st.Mu.RUnlock()
			if ok {
				continue
			}
			ti, err := p.Cfg.Cloud.InstanceType(ctx, types[0])
			if err != nil {
				rc.st.Log.Warn("describing instance type failed", "type", types[0], "err", err)
				rc.st.Mu.Lock()
				rc.st.TypeErr[types[0]] = err // the template's message says it
				rc.st.Mu.Unlock()
				continue
			}
			if err := rc.st.CacheTypeInfo(ti); err != nil {
				rc.st.Log.Warn("caching instance type", "err", err)
			}
			rc.st.Mu.Lock()
			rc.st.TypeInfo[ti.Name] = ti
			delete(rc.st.TypeErr, types[0])
			rc.st.Mu.Unlock()
		}
	}
}

// expiryOf is how long a fleet may take to reach its target: the
// template's spotFleetRequestExpiry (minutes), default 30 minutes.
func expiryOf(t *template.Template) time.Duration {
	if t != nil && t.SpotFleetExpiry > 0 {
		return time.Duration(t.SpotFleetExpiry) * time.Minute
	}
	return 30 * time.Minute
}

// reconcileFleets polls the open fleets and groups of a provider in one
// batch, ends requests whose fleet cannot fill (expired, closed, or out of
// capacity) after capping it, starts the on-demand fallback of
// heterogeneous Spot Fleets, and deletes fleets and groups whose machines
// are all gone.
func (rc *Reconciler) reconcileFleets(ctx context.Context, p *state.Provider) {
	fl, ok := p.Cfg.Cloud.(provider.Fleets)
	if !ok {
		return
	}
	now := rc.st.Clock.Now()
	var poll []string
	var del []string
	foreign := map[string]bool{} // handles of taken-over requests: IBM's fleets
	rc.st.Mu.RLock()
	for _, r := range rc.st.Requests {
		if r.Kind != domain.KindAcquire || r.Provider != p.Cfg.Name || r.Handle == "" || r.HandleDeleted {
			continue
		}
		if !r.Final() && (!r.HandleCapped || rc.capAwaitedLocked(r)) {
			poll = append(poll, r.Handle)
			continue
		}
		if r.Final() && rc.allEndedLocked(r) {
			del = append(del, r.Handle)
			foreign[r.Handle] = foreign[r.Handle] || r.TakenOver
		}
	}
	rc.st.Mu.RUnlock()

	if len(poll) > 0 {
		sts, err := fl.Poll(ctx, poll)
		if err != nil {
			rc.st.Log.Warn("reconcile: polling fleets failed", "provider", p.Cfg.Name, "fleets", len(poll), "err", err)
		} else {
			rc.judgeFleets(ctx, p, fl, sts, now)
		}
	}
	for _, h := range del {
		if foreign[h] {
			// IBM's fleet: what ohfp holds of it is gone, but the fleet
			// may have instances ohfp never held (HF may hold them):
			// ended without terminating anything, or left alone.
			ff, ok := fl.(provider.ForeignFleets)
			if !ok {
				rc.st.Log.Warn("IBM's fleet is left as it is: this provider cannot end a fleet without terminating its instances", "handle", h)
			} else if err := ff.Abandon(ctx, h); err != nil {
				rc.st.Log.Warn("ending IBM's fleet (without terminating its instances) failed; will retry", "handle", h, "err", err)
				continue
			}
		} else if err := fl.Delete(ctx, h); err != nil {
			rc.st.Log.Warn("deleting fleet failed; will retry", "handle", h, "err", err)
			continue
		}
		rc.st.Mu.Lock()
		var changed []*domain.Request
		for _, r := range rc.st.Requests {
			if r.Handle == h && !r.HandleDeleted {
				r.HandleDeleted = true
				changed = append(changed, r)
			}
		}
		w := rc.st.Stage(changed, nil)
		rc.st.Mu.Unlock()
		if err := w.Wait(); err != nil {
			rc.st.Log.Error("persist fleet deletion", "err", err)
		}
		rc.st.Log.Info("fleet deleted: all its machines are gone", "handle", h, "taken_over", foreign[h])
	}
}

// allEndedLocked reports whether none of r's machines is still live.
func (rc *Reconciler) allEndedLocked(r *domain.Request) bool {
	for _, id := range r.MachineIDs {
		if m := rc.st.Machines[id]; m != nil && m.Live() {
			return false
		}
	}
	return true
}

func (rc *Reconciler) judgeFleets(ctx context.Context, p *state.Provider, fl provider.Fleets, sts map[string]provider.FleetStatus, now time.Time) {
	type capJob struct {
		r    *domain.Request
		keep int
		why  string
	}
	var caps []capJob
	var changed []*domain.Request
	rc.st.Mu.Lock()
	for _, r := range rc.st.Requests {
		st, ok := sts[r.Handle]
		if !ok || r.Final() || r.Provider != p.Cfg.Name {
			continue
		}
		units, executing := rc.st.UnitsLocked(r)
		if units >= r.Units {
			continue
		}
		if r.HandleCapped {
			if rc.capAwaitedLocked(r) && rc.capSettledLocked(r, st, units, executing, now) {
				changed = append(changed, r)
			}
			continue
		}
		cancelled := rc.st.HasNoteLocked(r.ID, state.NoteCancel)
		tpl := p.Templates[r.TemplateID]
		errs := strings.Join(st.Errors, "; ")
		var why string
		switch {
		case cancelled && (st.NotFound || st.Fulfilled >= r.Units) && !st.Gone:
			// Not visible yet: its count is not known, so nothing is
			// capped at a guess. Reached its target (as the cloud counts,
			// before EC2 shows it all): nothing to cap; the request
			// completes as the units show, and its history says the
			// cancel came too late (state.FinishLocked).
			continue
		case cancelled && st.Gone:
			// Deleted in the cloud: nothing left to cap.
			r.HandleCapped = true
			r.Shortfall = fmt.Sprintf("cancelled by the operator; %s no longer exists in the cloud", r.Handle)
			changed = append(changed, r)
			continue
		case cancelled:
			// Capped at what came as the cloud counts it, which may be
			// more than ohfp sees yet; the request then waits for them
			// (capSettledLocked).
			caps = append(caps, capJob{r: r, keep: max(units, st.Fulfilled), why: "cancelled by the operator"})
			continue
		case st.Gone:
			why = fmt.Sprintf("%s no longer exists in the cloud", r.Handle)
		case st.NotFound && now.Sub(r.CreatedAt) > rc.st.Opts.VisibilityGrace:
			// Right after the launch, a handle the cloud does not show is
			// eventual consistency; this long after, it is gone.
			why = fmt.Sprintf("%s is not known to the cloud", r.Handle)
		case st.NotFound:
			continue
		case now.Sub(r.CreatedAt) > expiryOf(tpl):
			why = fmt.Sprintf("%s did not reach its target within %s", r.Handle, expiryOf(tpl))
		case st.Closed && executing == 0 && (st.Fulfilled <= units || now.Sub(r.CreatedAt) > rc.st.Opts.VisibilityGrace):
			// (The cloud counting more than ohfp sees: its instances are
			// not visible yet, for a while.)
			why = fmt.Sprintf("%s closed before reaching its target", r.Handle)
		case st.OutOfCapacity && executing == 0 && st.Fulfilled >= units:
			why = fmt.Sprintf("%s is out of capacity", r.Handle)
		default:
			continue
		}
		if errs != "" {
			why += ": " + errs
		}
		caps = append(caps, capJob{r: r, keep: units, why: why})
	}
	settled := rc.st.Stage(changed, nil)
	rc.st.Mu.Unlock()
	if err := settled.Wait(); err != nil {
		rc.st.Log.Error("persist capped fleets' requests", "err", err)
	}

	for _, c := range caps {
		cancelled := c.why == "cancelled by the operator"
		capErr := fl.Cap(ctx, c.r.Handle, c.keep)
		if err := capErr; err != nil && (provider.Retryable(err) || cancelled && !gone(err, c.r, now, rc.st.Opts.VisibilityGrace)) {
			// A cancel's cap is retried whatever the error (but the
			// fleet being gone): marking the fleet capped when it was
			// not would let it launch on, and its history would say
			// "capped".
			rc.st.Log.Warn("capping fleet failed; will retry", "handle", c.r.Handle, "err", err)
			continue
		}
		if cancelled {
			rc.cancelCapped(c.r, c.keep, capErr)
			continue
		}
		rc.st.Mu.Lock()
		r := c.r
		r.HandleCapped = true
		tpl := p.Templates[r.TemplateID]
		fallback := false
		if tpl != nil {
			_, fallback = provider.PlannerOf(p.Cfg.Cloud).Fallback(provider.LaunchSpec{Template: *tpl})
		}
		if fallback && r.FallbackUnits == 0 && !rc.st.HasNoteLocked(r.ID, state.NoteCancel) {
			// The provider asks the rest another way (AWS: IBM's
			// heterogeneous, what Spot did not fill on-demand).
			r.FallbackUnits = r.Units - c.keep
			r.Phase = domain.PhaseQueued
			r.NextAttempt = time.Time{}
			rc.st.Log.Info("Spot fell short; asking the rest on-demand", "request", r.ID, "units", r.FallbackUnits, "why", c.why)
		} else {
			r.Shortfall = c.why
			rc.st.Log.Warn("fleet fell short; request ends with what arrived", "request", r.ID, "units", c.keep, "asked", r.Units, "why", c.why)
		}
		// Written outside the lock: a fallback's launch writes its attempt
		// after this, in order; a shortfall is shown HF as final only once
		// written.
		w := rc.st.Stage([]*domain.Request{r}, nil)
		rc.st.Mu.Unlock()
		if err := w.Wait(); err != nil {
			rc.st.Log.Error("persist fleet cap", "err", err)
		}
		rc.st.KickLaunch()
	}
}

// cancelCapped records the cap of a cancelled request's fleet at keep
// units (capErr: the cloud no longer knows the fleet): the request waits
// for what the cloud counted to show (capSettledLocked), and its history
// says at how much it was capped now.
func (rc *Reconciler) cancelCapped(r *domain.Request, keep int, capErr error) {
	rc.st.Mu.Lock()
	r.HandleCapped = true
	if capErr != nil {
		r.Shortfall = fmt.Sprintf("cancelled by the operator; %s no longer exists in the cloud", r.Handle)
		rc.st.Log.Warn("a cancelled request's fleet no longer exists", "request", r.ID, "handle", r.Handle, "err", capErr)
	} else {
		units, _ := rc.st.UnitsLocked(r)
		text := fmt.Sprintf("%s capped at %s, what AWS counted as launched when the cap was applied", r.Handle, english.Plural(keep, "unit"))
		if keep > units {
			text += fmt.Sprintf(" (%s shown by EC2 so far; the request waits for the rest to show)", english.Plural(units, "unit"))
		}
		if err := rc.st.AddNoteLocked(r.ID, state.Note{At: rc.st.Clock.Now(), Who: state.WhoOhfpd, Action: state.NoteCap, Text: text}); err != nil {
			rc.st.Log.Error("record the fleet cap in the request's history", "request", r.ID, "err", err)
		}
		rc.st.Log.Warn("fleet capped: the operator cancelled its request", "request", r.ID, "handle", r.Handle, "units", keep, "asked", r.Units)
	}
	w := rc.st.Stage([]*domain.Request{r}, nil)
	rc.st.Mu.Unlock()
	if err := w.Wait(); err != nil {
		rc.st.Log.Error("persist fleet cap", "err", err)
	}
}

// gone reports whether err says r's handle is not known to the cloud this
// long after r was made (before, eventual consistency).
func gone(err error, r *domain.Request, now time.Time, grace time.Duration) bool {
	return provider.KindOf(err) == provider.NotFound && now.Sub(r.CreatedAt) > grace
}

// capAwaitedLocked reports whether r's fleet was capped by a cancel and
// the request still waits for what the cloud counted to show. Called with
// Mu held.
func (rc *Reconciler) capAwaitedLocked(r *domain.Request) bool {
	return r.HandleCapped && r.Shortfall == "" && r.FallbackUnits == 0 && rc.st.HasNoteLocked(r.ID, state.NoteCancel)
}

// capSettledLocked ends the wait of a request whose fleet a cancel capped
// once EC2 shows every unit the cloud counts (st, polled after the cap)
// or after the visibility grace; it reports whether r changed. Called
// with Mu held.
func (rc *Reconciler) capSettledLocked(r *domain.Request, st provider.FleetStatus, units, executing int, now time.Time) bool {
	if executing > 0 || st.NotFound || units < st.Fulfilled && now.Sub(r.CreatedAt) <= rc.st.Opts.VisibilityGrace {
		return false
	}
	r.Shortfall = "cancelled by the operator"
	return true
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// unitsLocked counts r's units that arrived (live, not failed) and its
// machines still starting.
func (rc *Reconciler) unitsLocked(r *domain.Request) (units, executing int) {
	for _, id := range r.MachineIDs {
		m := rc.st.Machines[id]
		if m == nil {
			continue
		}
		if m.Result == hf.ResultExecuting {
			executing++
		}
		if m.Held() {
			units += max(m.Weight, 1)
		}
	}
	return units, executing
}
