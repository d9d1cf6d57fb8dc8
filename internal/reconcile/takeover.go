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

// Taking over from IBM's plugin (ohfpd --take-over-ibm): the hosts and
// requests IBM's plugin's state file lists become ohfp's, with their ids,
// so that HF's getRequestStatus, getReturnRequests and
// requestReturnMachines about them go on as IBM's plugin would answer.
//
// Each instance the file names is described by id (whatever its tags);
// each live one is tagged as ohfp tags what it launches (TagManagedBy,
// TagProvider, TagRequestID with IBM's request id, TagTemplateID, and
// TagReturnID with IBM's return id when HF returned it), then folded in
// as a listing folds an instance it does not hold (adoptLocked): a
// pending one is followed until it runs, a returned one still running is
// terminated. The tags are written before anything is recorded, so the
// cloud alone rebuilds what a crash loses, and the same command run again
// finishes the work. Requests (and returns) none of whose instances the
// cloud still shows are recorded as finished. HF knew every request of
// the file (IBM's plugin answered them): they are recorded as claimed,
// and so are the hosts the file lists (TagTakenOver "ibm"). The
// instances of IBM's fleets the file does not list (TagTakenOver
// "ibm-unlisted") are hosts HF may or may not hold: each awaits HF's
// claim on its own (domain.Machine.Unlisted, provenUnheldLocked), after
// the takeover as after a rebuild from tags. A request or return id of
// the file that ohfpd knows as its own, or of the shape it hands out, is
// never taken over (ownID): its hosts are skipped.

// takenOverIBM is the value of provider.TagTakenOver on IBM's hosts:
// those IBM's file lists (HF learned of them through IBM's plugin: they
// are claimed), and those HF returned that ohfpd looked up.
const takenOverIBM = "ibm"

// takenOverIBMUnlisted is its value on the instances of IBM's fleets
// that IBM's file does not list (domain.Machine.Unlisted): HF may or may
// not hold them, and the claim rule applies to each.
const takenOverIBMUnlisted = "ibm-unlisted"

// takenOverValue is the provider.TagTakenOver value for an instance the
// file lists (listed) or not.
func takenOverValue(listed bool) string {
	if listed {
		return takenOverIBM
	}
	return takenOverIBMUnlisted
}

// TakeOverOptions bound the wait for instances EC2 does not show yet.
type TakeOverOptions struct {
	// Wait is how long instances named by the file and not (yet) shown by
	// EC2 are asked for again (eventual consistency; 0: 30 s).
	Wait time.Duration
	// Young: an instance the file says launched less than this ago and
	// that EC2 still does not show after Wait is not taken as gone: the
	// takeover fails, to be run again (0: 10 minutes).
	Young time.Duration
	// Poll is the pause between asks (0: 2 s).
	Poll time.Duration
}

// TakeOverReport says what a takeover did.
type TakeOverReport struct {
	Requests  int      // requests in the file
	Adopted   int      // instances recorded now (0 when run again)
	Tagged    int      // instances tagged now
	Live      int      // instances of the file the cloud shows alive
	Gone      []string // instances the cloud no longer shows, or terminated
	Finished  []string // request and return ids recorded as finished without instances
	Conflicts []string // instances tagged for another ohfp cluster or provider: left alone
	// Skipped: instances ohfpd already holds under another request, or
	// tagged for this cluster with another request id (the file is wrong
	// about them, or stale): left as they are, each with why.
	Skipped []string
	// FromFleets: instances of IBM's fleets (EC2 Fleet, Spot Fleet) the
	// file does not list, found by asking AWS for each fleet's instances,
	// and taken over with the rest of their fleet.
	FromFleets []string
	// FleetsUnlisted: fleets whose instances AWS did not list (each with
	// why): only what the file lists of them is taken over; the fleet is
	// still never ended by terminating its instances.
	FleetsUnlisted []string
	// UnknownTemplates: template ids of the file the provider does not
	// have (its hosts are taken over all the same, one unit each).
	UnknownTemplates []string
}

// TakeOver takes over, for provider prov, what f lists. It is idempotent.
func (rc *Reconciler) TakeOver(ctx context.Context, prov string, f ibmstate.File, o TakeOverOptions) (TakeOverReport, error) {
	rc.lookMu.Lock()
	defer rc.lookMu.Unlock()
	if o.Wait <= 0 {
		o.Wait = 30 * time.Second
	}
	if o.Young <= 0 {
		o.Young = 10 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	rep := TakeOverReport{Requests: len(f.Requests)}
	p := rc.st.Providers[prov]
	if p == nil {
		return rep, fmt.Errorf("no provider %s in this ohfpd's configuration", prov)
	}
	owner := rc.st.Opts.ClusterID
	for _, r := range f.Requests {
		if r.TemplateID != "" && p.Templates[r.TemplateID] == nil && !slices.Contains(rep.UnknownTemplates, r.TemplateID) {
			rep.UnknownTemplates = append(rep.UnknownTemplates, r.TemplateID)
		}
	}

	type wanted struct {
		req ibmstate.Request
		m   ibmstate.Machine
	}
	want := map[string]wanted{}
	fromFleet := map[string]bool{}
	var skipped []string // instance ids of rep.Skipped
	clashing := map[string]bool{}
	for _, r := range f.Requests {
		why := rc.ownID(r.ID)
		if why != "" {
			clashing[r.ID] = true
		}
		for _, m := range r.Machines {
			switch {
			case why != "":
				rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: IBM's file names it under request %s, %s: not taken over", m.ID, r.ID, why))
				if m.ReturnID != "" {
					clashing[m.ReturnID] = true
				}
			case rc.ownID(m.ReturnID) != "":
				rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: IBM's file names it returned by %s, %s: not taken over", m.ID, m.ReturnID, rc.ownID(m.ReturnID)))
				clashing[m.ReturnID] = true
			default:
				want[m.ID] = wanted{r, m}
				continue
			}
			skipped = append(skipped, m.ID)
		}
	}
	// A fleet is taken over whole: IBM's file may list only some of its
	// instances (it records what it saw), and the rest are hosts HF may
	// hold too. IBM's plugins name a fleet request by the fleet's id; an
	// instance of the file may also name its fleet (its aws:ec2 tags).
	found := map[string]provider.Instance{}
	if ff, ok := p.Cfg.Cloud.(provider.ForeignFleets); ok {
		fleets := map[string]ibmstate.Request{}
		for _, r := range f.Requests {
			if isFleetID(r.ID) {
				fleets[r.ID] = r
			}
		}
		if fileIDs := slices.Sorted(maps.Keys(want)); len(fileIDs) > 0 {
			insts, err := p.Cfg.Cloud.Describe(ctx, "", fileIDs, nil)
			if err != nil {
				return rep, fmt.Errorf("describing IBM's instances: %w", err)
			}
			for _, in := range insts {
				found[in.ID] = in
				if w, ok := want[in.ID]; ok && isFleetID(in.Handle) {
					if _, known := fleets[in.Handle]; !known {
						fleets[in.Handle] = w.req
					}
				}
			}
		}
		for _, h := range slices.Sorted(maps.Keys(fleets)) {
			fids, err := ff.FleetInstances(ctx, h)
			if err != nil {
				if ctx.Err() != nil {
					return rep, ctx.Err()
				}
				rep.FleetsUnlisted = append(rep.FleetsUnlisted, fmt.Sprintf("%s: %v", h, err))
				continue
			}
			for _, id := range fids {
				if _, ok := want[id]; ok {
					continue
				}
				want[id] = wanted{fleets[h], ibmstate.Machine{ID: id}}
				fromFleet[id] = true
				rep.FromFleets = append(rep.FromFleets, id)
			}
		}
	}
	ids := slices.Sorted(maps.Keys(want))

	// Describe by id, whatever the tags; ask again for what EC2 does not
	// show yet, and for tags it refuses (NotFound: not visible yet).
	tagged := map[string]bool{}
	deadline := time.Now().Add(o.Wait)
	for {
		var missing []string
		for _, id := range ids {
			if _, ok := found[id]; !ok {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			insts, err := p.Cfg.Cloud.Describe(ctx, "", missing, nil)
			if err != nil {
				return rep, fmt.Errorf("describing IBM's instances: %w", err)
			}
			for _, in := range insts {
				found[in.ID] = in
			}
		}
		// Tag what is live and not ours yet, grouped by identical tags.
		groups := map[string][]string{}
		tagsOf := map[string]map[string]string{}
		for _, id := range ids {
			in, ok := found[id]
			if !ok || tagged[id] || in.State == provider.StateTerminated {
				continue
			}
			if why := rc.heldElsewhere(id, in, owner, want[id].req.ID); why != "" {
				if !slices.Contains(skipped, id) {
					skipped = append(skipped, id)
					rep.Skipped = append(rep.Skipped, why)
				}
				continue
			}
			if mb := in.Tags[provider.TagManagedBy]; mb != "" && mb != owner || in.Tags[provider.TagProvider] != "" && in.Tags[provider.TagProvider] != prov {
				if !slices.Contains(rep.Conflicts, id) {
					rep.Conflicts = append(rep.Conflicts, id)
				}
				continue
			}
			w := want[id]
			tags := map[string]string{provider.TagManagedBy: owner, provider.TagProvider: prov, provider.TagRequestID: w.req.ID, provider.TagTakenOver: takenOverValue(!fromFleet[id])}
			if w.req.TemplateID != "" {
				tags[provider.TagTemplateID] = w.req.TemplateID
			}
			if w.m.ReturnID != "" {
				tags[provider.TagReturnID] = w.m.ReturnID
			}
			if hasTags(in.Tags, tags) {
				tagged[id] = true
				continue
			}
			key := fmt.Sprint(tags)
			groups[key] = append(groups[key], id)
			tagsOf[key] = tags
		}
		var notVisible []string
		for _, key := range slices.Sorted(maps.Keys(groups)) {
			err := p.Cfg.Cloud.Tag(ctx, groups[key], tagsOf[key])
			var pe *provider.Error
			if err != nil && !(errors.As(err, &pe) && pe.Kind == provider.NotFound) {
				return rep, fmt.Errorf("tagging IBM's instances for ohfp (%d tagged so far; run the same command again): %w", rep.Tagged, err)
			}
			for _, id := range groups[key] {
				if pe != nil && slices.Contains(pe.IDs, id) {
					notVisible = append(notVisible, id)
					continue
				}
				tagged[id] = true
				rep.Tagged++
				in := found[id]
				in.Tags = maps.Clone(in.Tags)
				if in.Tags == nil {
					in.Tags = map[string]string{}
				}
				maps.Copy(in.Tags, tagsOf[key])
				found[id] = in
			}
		}
		// Ask again only for what may be late: refused tags, and
		// instances launched recently that EC2 does not show yet (an
		// older one it does not show is gone).
		pendingAsk := len(notVisible) > 0
		now := rc.st.Clock.Now()
		for _, id := range ids {
			if _, ok := found[id]; !ok && youngIn(want[id].req, want[id].m, now, o.Young) {
				pendingAsk = true
			}
		}
		if !pendingAsk || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(o.Poll):
		}
	}

	// What EC2 still does not show: young ones may only be late.
	now := rc.st.Clock.Now()
	var young []string
	for _, id := range ids {
		if _, ok := found[id]; ok {
			continue
		}
		if w := want[id]; youngIn(w.req, w.m, now, o.Young) {
			young = append(young, id)
		}
	}
	if len(young) > 0 {
		return rep, fmt.Errorf("EC2 does not show %s yet, launched less than %s ago (eventual consistency): run the same command again in a minute", strings.Join(young, ", "), o.Young)
	}
	var notTagged []string
	for _, id := range ids {
		if in, ok := found[id]; ok && in.State != provider.StateTerminated && !tagged[id] && !slices.Contains(rep.Conflicts, id) && !slices.Contains(skipped, id) {
			notTagged = append(notTagged, id)
		}
	}
	if len(notTagged) > 0 {
		return rep, fmt.Errorf("EC2 refused to tag %s (not visible yet): run the same command again in a minute", strings.Join(notTagged, ", "))
	}

	// Fold: what the cloud shows (tags as written), as a listing would.
	var insts []provider.Instance
	for _, id := range ids {
		in, ok := found[id]
		if !ok || slices.Contains(rep.Conflicts, id) || slices.Contains(skipped, id) {
			continue
		}
		if in.State == provider.StateTerminated {
			if why := rc.heldElsewhere(id, in, owner, want[id].req.ID); why != "" {
				if !slices.Contains(skipped, id) {
					skipped = append(skipped, id)
					rep.Skipped = append(rep.Skipped, why)
				}
				continue
			}
		}
		if in.State == provider.StateTerminated {
			// Not taggable: folded with the tags it would carry, so the
			// request and return answer HF (the record is all there is).
			w := want[id]
			in.Tags = map[string]string{provider.TagManagedBy: owner, provider.TagProvider: prov, provider.TagRequestID: w.req.ID, provider.TagTemplateID: w.req.TemplateID,
				provider.TagTakenOver: takenOverValue(!fromFleet[id])}
			if w.m.ReturnID != "" {
				in.Tags[provider.TagReturnID] = w.m.ReturnID
			}
		}
		insts = append(insts, in)
	}
	rc.st.Mu.Lock()
	defer rc.st.Mu.Unlock()
	changedR := map[string]*domain.Request{}
	before := len(rc.st.Machines)
	rc.takingOver = true
	changedM := rc.foldLocked(p, insts, now, map[string]bool{}, changedR, true)
	rc.takingOver = false
	rep.Adopted = len(rc.st.Machines) - before
	// A host IBM's plugin told HF was usable stays usable for HF even if
	// it is stopped now (adoption takes a machine stopped before it ran
	// as failed, and a failed machine still up as one to terminate): HF
	// holds it, and hears through getReturnRequests that the cloud took
	// it back (ReclaimedAt), as from IBM's plugin.
	for _, m := range changedM {
		w, ok := want[m.ID]
		if !ok || w.m.Result != string(hf.ResultSucceed) || m.Result != hf.ResultFail || m.ReturnID != "" || m.TerminateSent {
			continue
		}
		m.Result, m.Message, m.Doomed = hf.ResultSucceed, "", false
		rc.st.Log.Info("IBM's plugin's host is not running; HF keeps it until it returns it (getReturnRequests reports it)", "instance", m.ID, "state", m.State)
	}
	// HF knows IBM's hosts by the names IBM's plugin gave it: a host the
	// cloud shows without a name (ended, or never given one) keeps the
	// file's.
	for _, in := range insts {
		m := rc.st.Machines[in.ID]
		name := want[in.ID].m.Name
		if m == nil || m.Name != "" || name == "" {
			continue
		}
		m.Name = name
		if rc.st.ByName[name] == nil {
			rc.st.ByName[name] = m
		}
		if !slices.Contains(changedM, m) {
			changedM = append(changedM, m)
		}
	}
	for _, in := range insts {
		if in.State == provider.StateTerminated {
			rep.Gone = append(rep.Gone, in.ID)
		} else {
			rep.Live++
		}
	}

	// Requests and returns the cloud shows nothing of: finished.
	for _, id := range ids {
		if _, ok := found[id]; !ok {
			rep.Gone = append(rep.Gone, id)
		}
	}
	for _, r := range f.Requests {
		if rc.st.Requests[r.ID] != nil || clashing[r.ID] {
			continue
		}
		created := r.Created
		if created.IsZero() {
			created = now
		}
		msg := fmt.Sprintf("taken over from IBM's plugin; none of its %d instance(s) exists any more", len(r.Machines))
		if n := countIn(r.Machines, rep.Conflicts); n > 0 {
			msg = fmt.Sprintf("taken over from IBM's plugin; of its %d instance(s), %d carry another ohfp cluster's tags and were left to it, the others exist no more", len(r.Machines), n)
		}
		if n := countIn(r.Machines, skipped); n > 0 {
			msg = fmt.Sprintf("taken over from IBM's plugin; of its %d instance(s), %d belong to another request of this ohfp cluster and were left to it, the others exist no more", len(r.Machines), n)
		}
		if len(r.Machines) == 0 {
			msg = "taken over from IBM's plugin, which recorded no instance for it (a fleet of IBM's plugin is not followed by ohfp)"
		}
		rr := &domain.Request{ID: r.ID, Kind: domain.KindAcquire, Provider: prov, TemplateID: r.TemplateID, CreatedAt: created,
			Phase: domain.PhaseLaunched, Rebuilt: true, TakenOver: true, Status: hf.StatusCompleteWithError, Message: msg, FinishedAt: now}
		rc.st.Requests[r.ID] = rr
		changedR[r.ID] = rr
		rep.Finished = append(rep.Finished, r.ID)
	}
	for _, ret := range f.Returns() {
		if rc.st.Requests[ret] != nil || clashing[ret] {
			continue
		}
		rr := &domain.Request{ID: ret, Kind: domain.KindReturn, Provider: prov, CreatedAt: now, Rebuilt: true, TakenOver: true,
			Status: hf.StatusComplete, Message: "taken over from IBM's plugin; its instances no longer exist", FinishedAt: now}
		rc.st.Requests[ret] = rr
		changedR[ret] = rr
		rep.Finished = append(rep.Finished, ret)
	}
	// HF knew every request of the file: none is awaiting its claim.
	for _, r := range f.Requests {
		rq := rc.st.Requests[r.ID]
		if rq == nil || clashing[r.ID] || rq.Kind != domain.KindAcquire || !rq.AwaitingClaim {
			continue
		}
		rq.AwaitingClaim = false
		delete(rc.st.ClaimWatch, r.ID)
		for _, mid := range rq.MachineIDs {
			if m := rc.st.Machines[mid]; m != nil {
				m.AwaitingClaim = false
			}
		}
		changedR[r.ID] = rq
	}
	if err := rc.st.Persist(state.Values(changedR), changedM); err != nil {
		return rep, fmt.Errorf("recording the takeover (the instances are tagged; run the same command again): %w", err)
	}
	// From now on, a host HF returns that ohfpd does not hold is looked
	// up in AWS as possibly IBM's (lookUpIBM).
	if err := rc.st.RecordTakeOverLocked(prov, takenOverIBM, now); err != nil {
		return rep, fmt.Errorf("recording the takeover (its hosts are recorded; run the same command again): %w", err)
	}
	rc.st.KickLaunch()
	return rep, nil
}

// heldElsewhere says why instance id (as the cloud shows it) must not be
// taken over for IBM's request reqID: ohfpd holds it under another
// request, or it carries this cluster's tags with another request id. ""
// when it may be taken over (not held, or held for reqID already: a run
// again). Takes the state's Mu for reading.
func (rc *Reconciler) heldElsewhere(id string, in provider.Instance, owner, reqID string) string {
	rc.st.Mu.RLock()
	m := rc.st.Machines[id]
	rc.st.Mu.RUnlock()
	if m != nil && m.RequestID != reqID {
		return fmt.Sprintf("%s: held by ohfpd for request %s, not IBM's %s", id, m.RequestID, reqID)
	}
	if in.Tags[provider.TagManagedBy] == owner {
		if rid := in.Tags[provider.TagRequestID]; rid != "" && rid != reqID {
			return fmt.Sprintf("%s: tagged for this cluster's request %s, not IBM's %s", id, rid, reqID)
		}
	}
	return ""
}

// ownID says why id, a request or return id of IBM's file, is not IBM's
// to take over: ohfpd knows it as one of its own requests or returns, or
// it has the shape of the ids ohfpd hands out (req- or ret- with a UUID
// version 7; IBM's Java plugin's ret- ids are version 4). "" when it may
// be IBM's. Takes the state's Mu for reading.
func (rc *Reconciler) ownID(id string) string {
	if id == "" {
		return ""
	}
	rc.st.Mu.RLock()
	r := rc.st.Requests[id]
	rc.st.Mu.RUnlock()
	if r != nil && !r.TakenOver {
		return fmt.Sprintf("an id of ohfpd's own %s request", r.Kind)
	}
	if _, ok := domain.RequestIDTime(id); ok {
		return "an id of the shape ohfpd hands out (req-/ret- with a UUIDv7)"
	}
	return ""
}

// isFleetID reports whether id is an EC2 Fleet or Spot Fleet request id.
func isFleetID(id string) bool {
	return strings.HasPrefix(id, "sfr-") || strings.HasPrefix(id, "fleet-")
}

// youngIn reports whether the file says m launched less than young ago
// (EC2 may not show it yet); without a time, it is not.
func youngIn(r ibmstate.Request, m ibmstate.Machine, now time.Time, young time.Duration) bool {
	born := m.LaunchTime
	if born.IsZero() {
		born = r.Created
	}
	return !born.IsZero() && now.Sub(born) < young
}

// countIn counts the machines whose id is in ids.
func countIn(ms []ibmstate.Machine, ids []string) int {
	n := 0
	for _, m := range ms {
		if slices.Contains(ids, m.ID) {
			n++
		}
	}
	return n
}

// hasTags reports whether have holds every tag of want.
func hasTags(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
