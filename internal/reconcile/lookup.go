package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/ibmstate"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/state"
)

// Lookups: what HF names and memory lacks is looked for in the cloud
// before HF is answered. Without a shared store, a failover brings HF's
// calls to a daemon whose store is empty or stale: the request, return
// and host ids HF holds were made by another daemon, and only the cloud's
// tags (ohfp:request-id, ohfp:return-id, ohfp:managed-by) say what became
// of them. These are the only cloud calls made while HF waits, one per
// call that names something unknown, bounded by LookupTimeout; an id once
// settled (adopted, or recorded as told failed) is answered from memory
// from then on.

// LookupTimeout bounds a lookup an HF call waits for (HF's own action
// timeout is minutes).
const LookupTimeout = 10 * time.Second

// LookUpRequests looks in the cloud for instances carrying the request or
// return ids memory does not hold (their tags), adopts them (the listing's
// own path: the acquire and return requests are rebuilt from the tags),
// and records durably, for each id no instance carries, that HF is told it
// failed: a final complete_with_error request, so that instances that
// show later (EC2's eventual consistency, or another daemon launching
// late) are never reported complete but terminated as arrivals for a
// finished request (adoptLocked). An error (the cloud did not answer, or
// the record could not be written) leaves the ids unsettled: HF is told to
// ask again.
func (rc *Reconciler) LookUpRequests(ctx context.Context, ids []string) error {
	rc.lookMu.Lock()
	defer rc.lookMu.Unlock()
	var q provider.Query
	rc.st.Mu.RLock()
	ibmRet := map[string]bool{} // IBM's return ids, after a takeover
	for _, id := range ids {
		if rc.st.Requests[id] == nil && len(rc.st.TakeOvers) > 0 && ibmstate.IsReturnID(id) {
			ibmRet[id] = true
		}
		if rc.st.Requests[id] != nil || !domain.IsRequestID(id) && !ibmRet[id] {
			continue // settled meanwhile, or not an id of ours
		}
		if strings.HasPrefix(id, "req-") {
			q.RequestIDs = append(q.RequestIDs, id)
		} else {
			q.ReturnIDs = append(q.ReturnIDs, id)
		}
	}
	rc.st.Mu.RUnlock()
	if q.Empty() {
		return nil
	}
	changedR := map[string]*domain.Request{}
	changedM, err := rc.lookUp(ctx, q, changedR)
	if err != nil {
		return err
	}
	// Not found by their tag: EC2's tag filters may lag a tag just
	// written (a return tagged by the other daemon moments ago) while the
	// instance's own tag set already shows it. The cluster's listing,
	// matched here, settles those before HF is told "not known".
	rest := map[string]bool{}
	rc.st.Mu.RLock()
	for _, id := range append(q.RequestIDs, q.ReturnIDs...) {
		if rc.st.Requests[id] == nil {
			rest[id] = true
		}
	}
	rc.st.Mu.RUnlock()
	if len(rest) > 0 {
		more, err := rc.lookUpListed(ctx, rest, changedR)
		if err != nil {
			return err
		}
		changedM = append(changedM, more...)
	}
	now := rc.st.Clock.Now()
	rc.st.AwaitWrites(rc.st.WriteMark()) // the write below is made under the lock: alone, as a rule
	rc.st.Mu.Lock()
	defer rc.st.Mu.Unlock()
	var failed, young []string
	for _, id := range append(q.RequestIDs, q.ReturnIDs...) {
		if rc.st.Requests[id] != nil {
			continue
		}
		if made, ok := domain.RequestIDTime(id); ok && now.Sub(made) < rc.st.Opts.VisibilityGrace && made.Sub(now) < rc.st.Opts.VisibilityGrace {
			// Made moments ago on another daemon: EC2 may not show its
			// instances yet (eventual consistency), or it has not
			// launched them yet. Not failed: HF asks again.
			young = append(young, id)
			continue
		}
		r := toldFailed(id, rc.st.Order[0], now, rc.st.Opts.Retention)
		if ibmRet[id] {
			// A return IBM's plugin made whose machines are all gone (its
			// file no longer lists them, no instance carries it): IBM's
			// plugin answers complete when no machine remains.
			r = &domain.Request{ID: id, Kind: domain.KindReturn, Provider: rc.takenOverProviderLocked(), CreatedAt: now, Rebuilt: true, TakenOver: true,
				Status: hf.StatusComplete, Message: "return request of IBM's plugin (taken over): none of its machines remains", FinishedAt: now}
		}
		rc.st.Requests[id] = r
		changedR[id] = r
		failed = append(failed, id)
	}
	// Written under the lock (HF's reads wait): the failed records are in
	// memory already and dropped again should the write fail, which no
	// reader may see in between.
	if err := rc.st.Persist(state.Values(changedR), changedM); err != nil {
		// HF must not be told "failed" unless it is remembered: the
		// records are dropped and HF asks again (what was adopted stays,
		// written by the next pass).
		for _, id := range failed {
			delete(rc.st.Requests, id)
		}
		return fmt.Errorf("recording the lookup: %w", err)
	}
	for _, id := range failed {
		if ibmRet[id] {
			rc.st.Log.Info("HF asked about a return of IBM's plugin whose machines are all gone: answered complete, as IBM's plugin would", "request", id)
			continue
		}
		rc.st.Log.Warn("HF asked about a request this ohfpd does not hold and no instance in the cloud carries: answered failed, and remembered; instances of it that show later are terminated", "request", id)
	}
	rc.st.KickLaunch()
	if len(young) > 0 {
		return fmt.Errorf("made less than %s ago, surely on another ohfpd, and the cloud shows no instance of it yet: it is answered once they show, or failed after that time", rc.st.Opts.VisibilityGrace)
	}
	return nil
}

// LookUpHosts looks in the cloud for hosts HF returns that memory does not
// hold, by instance id and host name (private DNS name), among the
// instances tagged for this cluster, and adopts those it finds: they are
// then returned and terminated as usual. Hosts without this cluster's tag
// are not found, and stay ignored.
func (rc *Reconciler) LookUpHosts(ctx context.Context, ids, names []string) error {
	rc.lookMu.Lock()
	defer rc.lookMu.Unlock()
	q := provider.Query{IDs: ids, Names: names}
	if q.Empty() {
		return nil
	}
	changedR := map[string]*domain.Request{}
	changedM, err := rc.lookUp(ctx, q, changedR)
	if err != nil {
		return err
	}
	ibm, err := rc.lookUpIBM(ctx, ids, changedR)
	changedM = append(changedM, ibm...)
	if err != nil {
		rc.st.Mu.Lock()
		w := rc.st.Stage(state.Values(changedR), changedM)
		rc.st.Mu.Unlock()
		_ = w.Wait()
		return err
	}
	// What was found, as the cloud shows it: written outside the lock.
	rc.st.Mu.Lock()
	w := rc.st.Stage(state.Values(changedR), changedM)
	rc.st.Mu.Unlock()
	if err := w.Wait(); err != nil {
		return fmt.Errorf("recording the lookup: %w", err)
	}
	return nil
}

// lookUpIBM: after a takeover from IBM's plugin (state.TakeOvers), a
// host HF names by instance id that ohfpd does not hold may be one of
// IBM's that its state file did not list. Each provider taken over is
// asked for the ids by id, whatever their tags; an instance that exists,
// is not terminated, carries no ohfp cluster's tag (never another
// cluster's) and was launched before that provider's takeover is IBM's:
// it is tagged as the takeover tags (ohfp:taken-over=ibm; its request id
// its fleet's id, or ibm-<instance id>) and folded in as HF's, claimed,
// so that HF's return terminates it as IBM's plugin would. Anything else
// is left alone. Called with lookMu held, without the state's Mu.
func (rc *Reconciler) lookUpIBM(ctx context.Context, ids []string, changedR map[string]*domain.Request) ([]*domain.Machine, error) {
	rc.st.Mu.RLock()
	var left []string
	for _, id := range ids {
		if rc.st.Machines[id] == nil && !slices.Contains(left, id) {
			left = append(left, id)
		}
	}
	var provs []*state.Provider
	var at []time.Time
	for _, p := range rc.st.ProvidersInOrder() {
		if t, ok := rc.st.TakeOvers[p.Cfg.Name]; ok {
			provs = append(provs, p)
			at = append(at, t.At)
		}
	}
	rc.st.Mu.RUnlock()
	if len(left) == 0 || len(provs) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, LookupTimeout)
	defer cancel()
	owner := rc.st.Opts.ClusterID
	var changedM []*domain.Machine
	for i, p := range provs {
		if len(left) == 0 {
			break
		}
		insts, err := p.Cfg.Cloud.Describe(ctx, "", left, nil)
		if err != nil {
			return changedM, fmt.Errorf("looking in the cloud of provider %s for IBM's hosts: %w", p.Cfg.Name, err)
		}
		var take []provider.Instance
		for _, in := range insts {
			if !slices.Contains(left, in.ID) || in.State == provider.StateTerminated || in.State == provider.StateShuttingDown ||
				in.Tags[provider.TagManagedBy] != "" || in.LaunchTime.IsZero() || !in.LaunchTime.Before(at[i]) {
				if slices.Contains(left, in.ID) {
					rc.st.Log.Info("a host HF returns is not ohfpd's nor, by its tags or launch time, IBM's plugin's: ignored", "provider", p.Cfg.Name, "instance", in.ID,
						"state", in.State, "managed_by", in.Tags[provider.TagManagedBy], "launched", in.LaunchTime, "taken_over_at", at[i])
				}
				continue
			}
			rid := "ibm-" + in.ID
			if strings.HasPrefix(in.Handle, "sfr-") || strings.HasPrefix(in.Handle, "fleet-") {
				rid = in.Handle
			}
			tags := map[string]string{provider.TagManagedBy: owner, provider.TagProvider: p.Cfg.Name, provider.TagRequestID: rid, provider.TagTakenOver: takenOverIBM}
			err := p.Cfg.Cloud.Tag(ctx, []string{in.ID}, tags)
			var pe *provider.Error
			if errors.As(err, &pe) && pe.Kind == provider.NotFound {
				continue
			}
			if err != nil {
				return changedM, fmt.Errorf("tagging IBM's host %s for ohfp: %w", in.ID, err)
			}
			in.Tags = maps.Clone(in.Tags)
			if in.Tags == nil {
				in.Tags = map[string]string{}
			}
			maps.Copy(in.Tags, tags)
			take = append(take, in)
			left = slices.DeleteFunc(left, func(s string) bool { return s == in.ID })
		}
		if len(take) == 0 {
			continue
		}
		rc.st.Log.Warn("HF returns hosts IBM's plugin launched that its state file did not list: taken over, to be terminated as IBM's plugin would", "provider", p.Cfg.Name, "instances", len(take))
		now := rc.st.Clock.Now()
		rc.st.Mu.Lock()
		ms := rc.foldLocked(p, take, now, map[string]bool{}, changedR, true)
		for _, m := range ms {
			// HF holds it (it returns it): claimed, and usable.
			m.AwaitingClaim = false
			if r := rc.st.Requests[m.RequestID]; r != nil && r.AwaitingClaim {
				r.AwaitingClaim = false
				delete(rc.st.ClaimWatch, r.ID)
				changedR[r.ID] = r
			}
		}
		rc.st.Mu.Unlock()
		changedM = append(changedM, ms...)
	}
	return changedM, nil
}

// lookUp asks every provider's cloud for q and folds what it finds into
// memory (foldLocked, as asked: terminated instances too). It returns the
// machines changed, the requests in changedR, not yet persisted.
func (rc *Reconciler) lookUp(ctx context.Context, q provider.Query, changedR map[string]*domain.Request) ([]*domain.Machine, error) {
	ctx, cancel := context.WithTimeout(ctx, LookupTimeout)
	defer cancel()
	provs := rc.st.ProvidersInOrder()
	found := make([][]provider.Instance, len(provs))
	for i, p := range provs {
		insts, err := p.Cfg.Cloud.Find(ctx, rc.st.Opts.ClusterID, q)
		if err != nil {
			rc.st.Log.Warn("looking in the cloud for what HF names failed", "provider", p.Cfg.Name, "err", err)
			return nil, fmt.Errorf("looking in the cloud of provider %s: %w", p.Cfg.Name, err)
		}
		found[i] = insts
	}
	return rc.foldFound(provs, found, changedR), nil
}

// lookUpListed lists the cluster's instances (every provider) and folds
// in those whose request or return tag is one of ids, as lookUp does.
func (rc *Reconciler) lookUpListed(ctx context.Context, ids map[string]bool, changedR map[string]*domain.Request) ([]*domain.Machine, error) {
	ctx, cancel := context.WithTimeout(ctx, LookupTimeout)
	defer cancel()
	provs := rc.st.ProvidersInOrder()
	found := make([][]provider.Instance, len(provs))
	for i, p := range provs {
		insts, err := p.Cfg.Cloud.List(ctx, rc.st.Opts.ClusterID)
		if err != nil {
			rc.st.Log.Warn("listing the cloud for what HF names failed", "provider", p.Cfg.Name, "err", err)
			return nil, fmt.Errorf("listing the cloud of provider %s: %w", p.Cfg.Name, err)
		}
		for _, in := range insts {
			if ids[in.Tags[provider.TagRequestID]] || ids[in.Tags[provider.TagReturnID]] {
				found[i] = append(found[i], in)
			}
		}
	}
	return rc.foldFound(provs, found, changedR), nil
}

// foldFound folds what lookups found into memory. Called without the
// state's Mu.
func (rc *Reconciler) foldFound(provs []*state.Provider, found [][]provider.Instance, changedR map[string]*domain.Request) []*domain.Machine {
	now := rc.st.Clock.Now()
	rc.st.Mu.Lock()
	defer rc.st.Mu.Unlock()
	var changedM []*domain.Machine
	for i, p := range provs {
		if len(found[i]) > 0 {
			rc.st.Log.Info("found in the cloud what HF names and this ohfpd did not hold; adopting it", "provider", p.Cfg.Name, "instances", len(found[i]))
		}
		changedM = append(changedM, rc.foldLocked(p, found[i], now, map[string]bool{}, changedR, true)...)
	}
	return changedM
}

// takenOverProviderLocked names the first provider taken over from
// IBM's plugin. Called with the state's Mu held.
func (rc *Reconciler) takenOverProviderLocked() string {
	for _, name := range rc.st.Order {
		if _, ok := rc.st.TakeOvers[name]; ok {
			return name
		}
	}
	return rc.st.Order[0]
}

// toldFailed is the record of an id HF asked about that neither memory
// nor the cloud knows: final, complete_with_error, with today's message.
func toldFailed(id, prov string, now time.Time, retention time.Duration) *domain.Request {
	msg := fmt.Sprintf("request %s is not known to ohfpd: it was never made here, or it finished more than %s ago and was purged", id, retention)
	r := &domain.Request{ID: id, Kind: domain.KindReturn, Provider: prov, CreatedAt: now,
		Status: hf.StatusCompleteWithError, Message: msg, FinishedAt: now}
	if strings.HasPrefix(id, "req-") {
		r.Kind, r.Phase, r.LaunchError = domain.KindAcquire, domain.PhaseFailed, msg
	}
	return r
}
