// Package service is HF's five operations and the operator's reads, on
// typed inputs, answered from the state (package state): it knows no
// bytes (package api parses HF's documents), no RPC codes and no cloud.
package service

import (
	"context"
	"errors"
	"fmt"
	"github.com/ohfp/ohfp/internal/english"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/ibmstate"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/state"
	"github.com/ohfp/ohfp/internal/template"
)

// Service serves HF and the operator from st. It is safe for concurrent
// use.
type Service struct {
	st     *state.State
	lookup Lookup
}

// Lookup finds in the cloud what HF names and the state lacks (another
// daemon made it: a failover without a shared store) and folds it into
// the state; package reconcile implements it. Its calls are bounded in
// time.
type Lookup interface {
	// LookUpRequests adopts the instances carrying the request or return
	// ids, and records as told failed those none carries; an error leaves
	// them unsettled.
	LookUpRequests(ctx context.Context, ids []string) error
	// LookUpHosts adopts this cluster's instances among the instance ids
	// and host names.
	LookUpHosts(ctx context.Context, ids, names []string) error
}

// New returns the service of st; lookup (nil: none) is asked about the
// ids and hosts HF names that st does not hold.
func New(st *state.State, lookup Lookup) *Service { return &Service{st: st, lookup: lookup} }

// lookupRequests asks the lookup about the ids HF asks about that the
// state does not hold and that have the shape of ohfpd's ids. It returns
// those it could not settle, with why.
func (sv *Service) lookupRequests(ids []string) map[string]error {
	if sv.lookup == nil {
		return nil
	}
	var unknown []string
	sv.st.Mu.RLock()
	for _, id := range ids {
		// IBM's return ids too, once its plugin's hosts were taken over.
		if sv.st.Requests[id] == nil && (domain.IsRequestID(id) || len(sv.st.TakeOvers) > 0 && ibmstate.IsReturnID(id)) {
			unknown = append(unknown, id)
		}
	}
	sv.st.Mu.RUnlock()
	if len(unknown) == 0 {
		return nil
	}
	err := sv.lookup.LookUpRequests(context.Background(), unknown)
	if err == nil {
		return nil
	}
	out := map[string]error{}
	for _, id := range unknown {
		out[id] = err
	}
	return out
}

// StoreError is a durable write that failed; nothing was launched or
// changed.
type StoreError struct{ Err error }

func (e *StoreError) Error() string {
	if cause := e.Err.Error(); strings.Contains(cause, "state store unavailable") || strings.Contains(cause, "does not hold the lease") {
		// The shared store (ha:): the table or the lease, not a disk.
		return "state store unavailable: ohfpd could not record the request durably (" + strings.TrimPrefix(cause, "state store unavailable: ") + "); nothing was launched (should the table apply the write late, the request is never launched: it waits for HF's question, which cannot come): HF's next call retries; ohfp status and ohfpd --check-config say what the table answers"
	}
	return "ohfpd could not record the request durably (" + e.Err.Error() + "); nothing was launched or changed: check the state directory's disk space and permissions, then retry"
}

func (e *StoreError) Unwrap() error { return e.Err }

// providerFor picks the provider named name (HF_PROVIDER_NAME), else the
// first. Called with the state's Mu held.
func (sv *Service) providerFor(op string, name string) (*state.Provider, error) {
	if name == "" || len(sv.st.Order) == 1 && sv.st.Providers[name] == nil {
		// One provider serves every provider instance name; with several,
		// an unknown name is refused rather than sent to the wrong account.
		return sv.st.Providers[sv.st.Order[0]], nil
	}
	p := sv.st.Providers[name]
	if p == nil {
		return nil, &hf.InputError{Op: op, Problem: fmt.Sprintf("HF_PROVIDER_NAME %q is not a provider of this ohfpd (configured: %s); add it under providers: in the ohfpd config or fix hostProviders.json", name, strings.Join(sv.st.Order, ", "))}
	}
	return p, nil
}

// heldUnitsLocked returns, per template of provider p, the units that count
// against maxNumber: live machines not failed, plus what unfinished
// requests still wait for. Called with the state's Mu held.
func (sv *Service) heldUnitsLocked(p string) map[string]int {
	held := map[string]int{}
	for _, r := range sv.st.Requests {
		if r.Kind != domain.KindAcquire || r.Provider != p {
			continue
		}
		units := 0
		for _, id := range r.MachineIDs {
			if m := sv.st.Machines[id]; m != nil && m.Held() && m.ReturnID == "" {
				units += max(m.Weight, 1)
			}
		}
		if !r.Final() && r.Phase != domain.PhaseFailed && units < r.Units {
			units = r.Units
		}
		held[r.TemplateID] += units
	}
	return held
}

func available(t *template.Template, held int) int {
	if t.MaxNumber < 0 {
		return UnlimitedAvailable
	}
	return max(t.MaxNumber-held, 0)
}

// UnlimitedAvailable is what availableNumber says for a template whose
// maxNumber is -1 (unlimited): HF needs a number, and a count this large is
// never the limit.
const UnlimitedAvailable = 1_000_000

// GetAvailableTemplates answers getAvailableTemplates from memory.
func (sv *Service) GetAvailableTemplates(provider string) (hf.TemplatesReply, error) {
	sv.st.Mu.RLock()
	defer sv.st.Mu.RUnlock()
	p, err := sv.providerFor(hf.OpGetAvailableTemplates, provider)
	if err != nil {
		return hf.TemplatesReply{}, err
	}
	held := sv.heldUnitsLocked(p.Cfg.Name)
	out := hf.TemplatesReply{Templates: make([]hf.TemplateOut, 0, len(p.Order))}
	var withheld, stopped []string
	now := sv.st.Clock.Now()
	for _, id := range p.Order {
		t := p.Templates[id]
		to := hf.TemplateOut{Template: *t, AvailableNumber: available(t, held[id])}
		if _, drained := sv.st.Drains[state.DrainKey(p.Cfg.Name, id)]; drained {
			to.AvailableNumber = 0 // ohfp drain: no units until undrained
		}
		if b, tripped := sv.st.TrippedLocked(p.Cfg.Name, id, now); tripped {
			to.AvailableNumber = 0 // the failure breaker: no units until re-armed
			stopped = append(stopped, b.Message())
		}
		var why string
		if to.Attributes, why = sv.attributesLocked(t); why != "" {
			withheld = append(withheld, why)
			continue
		}
		out.Templates = append(out.Templates, to)
	}
	out.Message = fmt.Sprintf("%s from provider %s", english.Plural(len(out.Templates), "template"), p.Cfg.Name)
	if len(withheld) > 0 {
		out.Message += "; withheld: " + strings.Join(withheld, "; ")
	}
	if len(stopped) > 0 {
		out.Message += "; " + strings.Join(stopped, "; ")
	}
	return out, nil
}

// RequestMachines validates the request, records it durably with the
// idempotency token of its cloud call, and answers at once; the launch
// happens in the background.
func (sv *Service) RequestMachines(provider string, in hf.RequestMachines) (hf.RequestReply, error) {
	rep, delivered, err := sv.RequestMachinesHeld(provider, in)
	if err == nil {
		delivered(true)
	}
	return rep, err
}

// RequestMachinesHeld is RequestMachines for a caller that delivers the
// answer itself: nothing is launched until it calls delivered(true) once
// the answer is written to HF. delivered(false), for an answer that could
// not be written (the caller went away: HF gave up on the call or was
// killed), ends the request with nothing launched, so HF is never billed
// for a request it does not know.
func (sv *Service) RequestMachinesHeld(provider string, in hf.RequestMachines) (hf.RequestReply, func(delivered bool), error) {
	rep, err := sv.requestMachines(provider, in)
	if err != nil {
		return rep, nil, err
	}
	id := rep.RequestID
	return rep, func(ok bool) { sv.delivered(id, ok) }, nil
}

// delivered releases or ends a request held by RequestMachinesHeld.
func (sv *Service) delivered(id string, ok bool) {
	sv.st.Mu.Lock()
	defer sv.st.Mu.Unlock()
	if !sv.st.Undelivered[id] {
		return
	}
	delete(sv.st.Undelivered, id)
	r := sv.st.Requests[id]
	if r != nil {
		r.AnswerPending = false
	}
	if ok || r == nil {
		if r != nil {
			// Outside the lock: HF's reads meanwhile see AnswerPending
			// cleared, which changes no answer (AwaitingClaim still
			// claims); the launch writes its attempt after this, in order.
			if err := sv.st.PersistReleasing([]*domain.Request{r}, nil); err != nil {
				// Launched all the same: HF has the id. A daemon loading the
				// older record waits for HF's question before launching.
				sv.st.Log.Warn("recording that the requestMachines answer was delivered", "request", id, "err", err)
			}
		}
		sv.st.KickLaunch()
		return
	}
	r.Phase = domain.PhaseFailed
	r.AwaitingClaim = false
	r.LaunchError = "the answer to requestMachines could not be delivered (the caller went away: HF gave up on the call or was stopped); nothing was launched"
	sv.st.FinishLocked(r)
	sv.st.Log.Warn("requestMachines answer not delivered; the request is cancelled and nothing was launched", "request", id)
	// Outside the lock: HF does not know the id; a getRequestStatus for
	// it waits for this write before showing it final.
	if err := sv.st.PersistReleasing([]*domain.Request{r}, nil); err != nil {
		// Memory holds the cancellation; were it lost with a restart, the
		// request would launch and HF's getReturnRequests calls would
		// prove it unclaimed (provenUnclaimedLocked).
		sv.st.Log.Error("persist cancelled request", "request", id, "err", err)
	}
}

func (sv *Service) requestMachines(provider string, in hf.RequestMachines) (hf.RequestReply, error) {
	const op = hf.OpRequestMachines
	sv.st.Admit.Lock()
	defer sv.st.Admit.Unlock()

	sv.st.Mu.RLock()
	p, err := sv.providerFor(op, provider)
	if err != nil {
		sv.st.Mu.RUnlock()
		return hf.RequestReply{}, err
	}
	t := p.Templates[in.TemplateID]
	if t == nil {
		known := append([]string(nil), p.Order...)
		sv.st.Mu.RUnlock()
		return hf.RequestReply{}, &hf.InputError{Op: op, Field: "template.templateId", Problem: fmt.Sprintf("%q is not a template of provider %s (known: %s); run getAvailableTemplates", in.TemplateID, p.Cfg.Name, strings.Join(known, ", "))}
	}
	avail := available(t, sv.heldUnitsLocked(p.Cfg.Name)[t.TemplateID])
	d, drained := sv.st.Drains[state.DrainKey(p.Cfg.Name, t.TemplateID)]
	b, tripped := sv.st.TrippedLocked(p.Cfg.Name, t.TemplateID, sv.st.Clock.Now())
	sv.st.Mu.RUnlock()
	if tripped {
		// Refused, not accepted and failed: HF sees the reason at once
		// (exit 1, logged), and nothing is recorded or launched.
		return hf.RequestReply{}, &hf.InputError{Op: op, Field: "template.templateId", Problem: b.Message()}
	}
	if drained {
		return hf.RequestReply{}, &hf.InputError{Op: op, Field: "template.templateId", Problem: fmt.Sprintf("template %s is drained by the operator (%s, since %s): it offers no units until ohfp undrain %s", t.TemplateID, d.Who, d.At.UTC().Format(time.RFC3339), t.TemplateID)}
	}
	if in.MachineCount > avail {
		return hf.RequestReply{}, &hf.InputError{Op: op, Field: "template.machineCount", Problem: fmt.Sprintf("%d is more than template %s allows now: %s available (maxNumber %d); ask for at most %d", in.MachineCount, t.TemplateID, english.Plural(avail, "unit"), t.MaxNumber, avail)}
	}

	now := sv.st.Clock.Now()
	// Version 7: the id carries its creation time, which tells another
	// daemon after a failover how young a request it does not hold is.
	id := "req-" + uuid.Must(uuid.NewV7()).String()
	r := &domain.Request{
		ID:          id,
		Kind:        domain.KindAcquire,
		Provider:    p.Cfg.Name,
		TemplateID:  t.TemplateID,
		Units:       in.MachineCount,
		CreatedAt:   now,
		RcAccount:   in.RcAccount,
		ClusterName: in.ClusterName,
		ClientToken: id, // 40 ASCII characters: within EC2's 64
		Phase:       domain.PhaseQueued,
		// Until HF shows it knows the id; see provenUnclaimedLocked.
		AwaitingClaim: true,
		// Until the answer is out (delivered), or HF asks about it.
		AnswerPending: true,
	}
	// Write ahead: durable before the answer and before the cloud call.
	if err := sv.st.Persist([]*domain.Request{r}, nil); err != nil {
		return hf.RequestReply{}, &StoreError{Err: err}
	}
	sv.st.Mu.Lock()
	sv.st.Requests[id] = r
	sv.st.Undelivered[id] = true
	sv.st.Mu.Unlock()
	sv.st.KickReconcile()
	sv.st.Log.Info("request accepted", "request", id, "template", t.TemplateID, "units", in.MachineCount, "provider", p.Cfg.Name)
	return hf.RequestReply{RequestID: id, Message: fmt.Sprintf("Request to provision %s of template %s accepted.", english.Plural(in.MachineCount, "unit"), t.TemplateID)}, nil
}

// GetRequestStatus answers getRequestStatus from memory, one entry per
// asked id in the asked order.
func (sv *Service) GetRequestStatus(ids []string) hf.StatusReply {
	// An id this daemon does not hold may be another daemon's (HF moved
	// here): the cloud is asked before HF is told it is not known.
	unsettled := sv.lookupRequests(ids)
	// HF's first question about a request claims it, durably, before HF
	// is shown its machines (once per request; again while the disk
	// refuses the claim).
	var claims []string
	sv.st.Mu.RLock()
	for _, id := range ids {
		if r := sv.st.Requests[id]; r != nil {
			if _, retry := sv.st.ClaimUnsaved[id]; r.AwaitingClaim || r.AnswerPending || retry {
				claims = append(claims, id)
			}
		}
	}
	sv.st.Mu.RUnlock()
	if len(claims) > 0 {
		sv.st.Claim(claims)
	}
	// Writes are made outside the lock (state.Persist): a request whose
	// record is being written is not shown in a final status until the
	// write is done, since a crash before it could undo what HF was told
	// (a request told failed would launch after the restart). Anything
	// else is answered at once; each round waits for a write under way,
	// and a request becomes final once, so the loop ends.
	for round := 0; ; round++ {
		sv.st.Mu.RLock()
		out, mark := sv.requestStatusesLocked(ids, unsettled, round == maxStatusRounds)
		sv.st.Mu.RUnlock()
		if mark == 0 || round == maxStatusRounds {
			return out
		}
		sv.st.AwaitWrites(mark)
	}
}

// maxStatusRounds bounds GetRequestStatus's waits for final statuses
// being written (one round each); in the last, a request whose final
// status is still being written is answered running ("ask again"), never
// final: HF is told nothing a crash could undo.
var maxStatusRounds = 8 // a var for a test

// requestStatusesLocked answers getRequestStatus for ids from memory,
// and returns the mark to wait for (state.AwaitWrites) when a request
// answered with a final status has a write of its record under way (0:
// none). Called with Mu held.
func (sv *Service) requestStatusesLocked(ids []string, unsettled map[string]error, last bool) (hf.StatusReply, uint64) {
	var mark uint64
	out := hf.StatusReply{Requests: make([]hf.RequestStatus, 0, len(ids))}
	for _, id := range ids {
		if err := unsettled[id]; err != nil && sv.st.Requests[id] == nil {
			out.Requests = append(out.Requests, hf.RequestStatus{RequestID: id, Status: hf.StatusRunning, Machines: []hf.Machine{},
				Message: fmt.Sprintf("request %s is not held by this ohfpd, and looking for its instances in the cloud failed (%v); ask again", id, err)})
			continue
		}
		rs := sv.requestStatusLocked(id)
		if err, unsaved := sv.st.ClaimUnsaved[id]; unsaved && len(rs.Machines) > 0 {
			msg := "ohfpd cannot yet record that HF has seen this request (" + err.Error() + "); its machines are shown once it can: free space in ohfpd's state directory"
			var writing *state.ClaimWriting
			if errors.As(err, &writing) {
				msg = "ohfpd is recording that HF has seen this request; its machines are shown once that is written: ask again"
			}
			rs = hf.RequestStatus{RequestID: id, Status: hf.StatusRunning, Machines: []hf.Machine{}, Message: msg}
		}
		if rs.Status != hf.StatusRunning && sv.st.Requests[id] != nil {
			if m := sv.st.UnwrittenMark(state.KeyRequest + id); m > 0 && last {
				rs = hf.RequestStatus{RequestID: id, Status: hf.StatusRunning, Machines: []hf.Machine{},
					Message: "ohfpd is still writing this request's outcome to its state store; ask again"}
			} else if m > mark {
				mark = m
			}
		}
		out.Requests = append(out.Requests, rs)
	}
	return out, mark
}

func (sv *Service) requestStatusLocked(id string) hf.RequestStatus {
	r := sv.st.Requests[id]
	if r == nil {
		return hf.RequestStatus{RequestID: id, Status: hf.StatusCompleteWithError, Machines: []hf.Machine{},
			Message: fmt.Sprintf("request %s is not known to ohfpd: it was never made here, or it finished more than %s ago and was purged", id, sv.st.Opts.Retention)}
	}
	st, msg := sv.st.StatusLocked(r)
	rs := hf.RequestStatus{RequestID: id, Status: st, Message: msg, Machines: make([]hf.Machine, 0, len(r.MachineIDs))}
	for _, mid := range r.MachineIDs {
		m := sv.st.Machines[mid]
		if m == nil {
			continue
		}
		hm := hfMachine(m)
		if r.Kind == domain.KindReturn {
			hm.Result = domain.ReturnResult(m)
			hm.Message = sv.leftToCloudNoteLocked(m)
		}
		rs.Machines = append(rs.Machines, hm)
	}
	return rs
}

// leftToCloudNoteLocked says, for a returned machine left for the cloud
// to reclaim (spot_terminate_on_reclaim false), why it still runs and until
// when; "" otherwise.
func (sv *Service) leftToCloudNoteLocked(m *domain.Machine) string {
	p := sv.st.Providers[m.Provider]
	if p == nil || p.Cfg.SpotTerminateOnReclaim || !m.LeftToCloud(sv.st.Clock.Now()) {
		return ""
	}
	return fmt.Sprintf("AWS is reclaiming this Spot instance (interruption notice at %s): left to AWS; ohfpd terminates it at %s if AWS has not",
		m.InterruptAt.UTC().Format(time.RFC3339), m.InterruptAt.Add(domain.ReclaimLeeway).UTC().Format(time.RFC3339))
}

func hfMachine(m *domain.Machine) hf.Machine {
	price := "ondemand"
	if m.Spot {
		price = "spot"
	}
	// HF is told the cloud's word: a machine the cloud no longer shows
	// (gone, ohfp's own state) is terminated.
	status := m.State
	if status == domain.StateGone {
		status = domain.StateTerminated
	}
	hm := hf.Machine{
		MachineID:    m.ID,
		Name:         m.Name,
		Result:       m.Result,
		Status:       string(status),
		Message:      m.Message,
		InstanceType: m.InstanceType,
		PriceType:    price,
		InstanceTags: m.Tags,
	}
	if m.PrivateIP != "" {
		hm.PrivateIPAddress = hf.StringPtr(m.PrivateIP)
	}
	if m.PublicIP != "" {
		hm.PublicIPAddress = hf.StringPtr(m.PublicIP)
	}
	if !m.LaunchTime.IsZero() {
		hm.LaunchTime = m.LaunchTime.Unix()
	}
	return hm
}

// RequestReturnMachines records a return request durably and terminates its
// machines in the background.
func (sv *Service) RequestReturnMachines(provider string, refs []hf.MachineRef) (hf.RequestReply, error) {
	lookErr := sv.lookupHosts(refs)
	sv.st.Admit.Lock()
	defer sv.st.Admit.Unlock()
	sv.st.Mu.RLock()
	p, err := sv.providerFor(hf.OpRequestReturnMachines, provider)
	sv.st.Mu.RUnlock()
	if err != nil {
		return hf.RequestReply{}, err
	}
	rep, err := sv.returnMachines(p.Cfg.Name, refs, nil)
	if err == nil && lookErr != nil && strings.Contains(rep.Message, "not provisioned by ohfpd") {
		rep.Message += fmt.Sprintf(" (Looking for them in the cloud failed: %v; return them again to retry.)", lookErr)
	}
	return rep, err
}

// lookupHosts asks the lookup about the hosts HF returns that the state
// does not hold: another daemon may have launched them.
func (sv *Service) lookupHosts(refs []hf.MachineRef) error {
	if sv.lookup == nil {
		return nil
	}
	var ids, names []string
	sv.st.Mu.RLock()
	for _, ref := range refs {
		if sv.st.LookupLocked(ref) != nil {
			continue
		}
		if ref.MachineID != "" {
			ids = append(ids, ref.MachineID)
		}
		if ref.Name != "" {
			names = append(names, ref.Name)
		}
	}
	sv.st.Mu.RUnlock()
	if len(ids) == 0 && len(names) == 0 {
		return nil
	}
	return sv.lookup.LookUpHosts(context.Background(), ids, names)
}

// returnMachines records a return request of provider for refs durably
// (with the operator's note, when an operator returns them: written
// first, so that HF is told of the return by getReturnRequests) and
// terminates its machines in the background. Called with Admit held.
func (sv *Service) returnMachines(provider string, refs []hf.MachineRef, note *state.Note) (hf.RequestReply, error) {
	now := sv.st.Clock.Now()
	id := "ret-" + uuid.Must(uuid.NewV7()).String()
	r := &domain.Request{ID: id, Kind: domain.KindReturn, CreatedAt: now, Provider: provider}
	// The whole return under the lock, its write included (HF's reads
	// wait for it): the machines' ReturnID is encoded as they stand and
	// put in memory only once written; a reconcile pass writing one of
	// them between would write it without its ReturnID, after this
	// write, and a restart would never terminate it. The writes under
	// way are waited for first, so that the lock is held, as a rule, for
	// this write alone.
	sv.st.AwaitWrites(sv.st.WriteMark())
	sv.st.Mu.Lock()
	var ms []*domain.Machine
	var claims []string
	seen := map[string]bool{}
	already := 0
	for _, ref := range refs {
		m := sv.st.LookupLocked(ref)
		if m == nil {
			r.Unknown = append(r.Unknown, refName(ref))
			continue
		}
		if seen[m.ID] {
			continue
		}
		seen[m.ID] = true
		if m.AwaitingClaim {
			claims = append(claims, m.RequestID)
		}
		r.MachineIDs = append(r.MachineIDs, m.ID)
		if m.ReturnID != "" {
			already++
			continue // returned before: this request reports on it, the first one terminates it
		}
		cp := *m
		cp.ReturnID = id
		cp.Unlisted = false // HF held it
		ms = append(ms, &cp)
	}

	if len(r.MachineIDs) == 0 {
		r.Status = hf.StatusComplete
		r.FinishedAt = now
		_, r.Message = domain.ReturnStatus(r, nil)
	}
	if note != nil {
		if err := sv.st.AddNoteLocked(id, *note); err != nil {
			sv.st.Mu.Unlock()
			return hf.RequestReply{}, &StoreError{Err: err}
		}
	}
	if err := sv.st.Persist([]*domain.Request{r}, ms); err != nil {
		sv.st.Mu.Unlock()
		return hf.RequestReply{}, &StoreError{Err: err}
	}
	sv.st.Requests[id] = r
	for _, cp := range ms {
		if m := sv.st.Machines[cp.ID]; m != nil && m.ReturnID == "" {
			m.ReturnID, m.Unlisted = id, false
		}
	}
	if note != nil {
		sv.noteOnAcquiresLocked(id, ms, *note)
	}
	sv.st.Mu.Unlock()
	if len(claims) > 0 {
		sv.st.Claim(claims)
	}
	sv.st.KickLaunch()
	sv.st.KickReconcile()

	msg := fmt.Sprintf("Returning %s.", english.Plural(len(ms), "machine"))
	if already > 0 {
		msg += fmt.Sprintf(" %d %s already being returned.", already, wereWas(already))
	}
	if len(r.Unknown) > 0 {
		msg += fmt.Sprintf(" %d %s not provisioned by ohfpd and %s ignored: %s.", len(r.Unknown), wereWas(len(r.Unknown)), isAre(len(r.Unknown)), strings.Join(r.Unknown, ", "))
	}
	sv.st.Log.Info("return accepted", "request", id, "machines", len(ms), "unknown", len(r.Unknown))
	return hf.RequestReply{RequestID: id, Message: msg}, nil
}

func wereWas(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

func refName(ref hf.MachineRef) string {
	if ref.Name != "" && ref.MachineID != "" {
		return ref.Name + " (" + ref.MachineID + ")"
	}
	if ref.Name != "" {
		return ref.Name
	}
	return ref.MachineID
}

// Hosts is the list of hosts HF holds, as getReturnRequests sends it:
// calling it visits each host's machine id and name (either may be
// empty; neither may be kept past the visit) and reports whether the
// whole list was read. The API adapter scans HF's document in place.
type Hosts func(visit func(machineID, name []byte)) (ok bool)

// HostRefs is Hosts over parsed references.
func HostRefs(refs []hf.MachineRef) Hosts {
	return func(visit func(machineID, name []byte)) bool {
		for _, r := range refs {
			visit([]byte(r.MachineID), []byte(r.Name))
		}
		return true
	}
}

// GetReturnRequests answers which of the hosts HF holds the cloud is taking
// back, from memory. The hosts are looked up as they are visited, under
// the read lock. ok false: hosts could not read the whole list, and nothing
// was counted (the caller parses the list and calls again, or refuses it).
func (sv *Service) GetReturnRequests(hosts Hosts) (reply hf.ReturnRequestsReply, ok bool) {
	now := sv.st.Clock.Now()
	var t returnTally
	sv.st.Mu.RLock()
	ok = hosts(func(id, name []byte) {
		t.add(sv.st.LookupRawLocked(id, name), name, now, sv.st.HasNoteLocked)
	})
	sv.st.Mu.RUnlock()
	if !ok {
		return hf.ReturnRequestsReply{}, false
	}
	// Before the call counts as evidence: the hosts it lists are HF's.
	if len(t.held) > 0 {
		sv.st.ClaimHosts(t.held)
	}
	// HF lists every host it holds: the evidence provenUnclaimedLocked
	// counts, and, for a host of a request awaiting its claim, the claim.
	sv.st.Holdings.Last.Store(now.UnixNano())
	sv.st.Holdings.Calls.Add(1)
	if len(t.claims) > 0 {
		sv.st.Claim(t.claims)
	}
	return t.reply(), true
}

// noteOnAcquiresLocked writes an operator's return (ret- request id, of
// machines ms) in the history of each acquire request those machines came
// from too, where ohfp show of that request finds it. The return is done
// and durable already: a failed write is logged. Called with Mu held.
func (sv *Service) noteOnAcquiresLocked(id string, ms []*domain.Machine, note state.Note) {
	byReq := map[string][]string{}
	var order []string
	for _, m := range ms {
		if sv.st.Requests[m.RequestID] == nil {
			continue
		}
		if byReq[m.RequestID] == nil {
			order = append(order, m.RequestID)
		}
		byReq[m.RequestID] = append(byReq[m.RequestID], m.ID)
	}
	for _, rid := range order {
		n := note
		ids := byReq[rid]
		list := strings.Join(ids[:min(len(ids), 10)], ", ")
		if len(ids) > 10 {
			list += fmt.Sprintf(" and %d more", len(ids)-10)
		}
		n.Text = fmt.Sprintf("%s %s in %s: %s", english.Plural(len(ids), "machine"), note.Text, id, list)
		if err := sv.st.AddNoteLocked(rid, n); err != nil {
			sv.st.Log.Error("record an operator's return in its acquire request's history", "request", rid, "return", id, "err", err)
		}
	}
}

// returnTally builds getReturnRequests' answer one host at a time.
type returnTally struct {
	hosts, unknown int
	operator       int // of out, hosts an operator returned (ohfp return)
	out            []hf.ReturnRequest
	claims         []string // requests of hosts awaiting HF's claim
	held           []string // hosts awaiting HF's claim on their own (domain.Machine.Unlisted)
	drains         []string // "host: why" of hosts to drain before they fail (the first few)
	drainCount     int
}

// maxDrainReasons is how many drain reasons getReturnRequests' message
// spells out.
const maxDrainReasons = 5

// add counts one host HF holds: m is ohfpd's machine for it (nil when
// unknown), name the name HF gave (may be empty).
// An operator's return (ohfp return) is reported as the cloud taking the
// host back, with no grace: HF did not ask for it, and must release it.
func (t *returnTally) add(m *domain.Machine, name []byte, now time.Time, noted func(reqID, action string) bool) {
	t.hosts++
	if m == nil {
		t.unknown++
		return
	}
	if m.AwaitingClaim {
		t.claims = append(t.claims, m.RequestID)
	}
	if m.Unlisted {
		t.held = append(t.held, m.ID)
	}
	grace, ok := m.Reclaim(now)
	if !ok && m.ReturnID != "" && noted(m.ReturnID, state.NoteReturn) {
		grace, ok = 0, true
		t.operator++
	}
	if !ok {
		return
	}
	n := string(name)
	if n == "" {
		n = m.Name
	}
	t.out = append(t.out, hf.ReturnRequest{Machine: n, GracePeriod: grace})
	if m.DrainReason != "" && m.InterruptAt.IsZero() && m.ReclaimedAt.IsZero() {
		t.drainCount++
		if len(t.drains) < maxDrainReasons {
			t.drains = append(t.drains, n+": "+m.DrainReason)
		}
	}
}

func itThem(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

func (t *returnTally) reply() hf.ReturnRequestsReply {
	out := hf.ReturnRequestsReply{Requests: t.out}
	if out.Requests == nil {
		out.Requests = []hf.ReturnRequest{}
	}
	out.Message = fmt.Sprintf("%d of %s %s being taken back by the cloud", len(out.Requests), english.Plural(t.hosts, "host"), isAre(len(out.Requests)))
	if t.operator > 0 {
		// HF did not ask for these either, but the cloud did not take
		// them: say who did.
		out.Message = fmt.Sprintf("%d of %s %s being taken back", len(out.Requests), english.Plural(t.hosts, "host"), isAre(len(out.Requests)))
		if cloud := len(out.Requests) - t.operator; cloud > 0 {
			out.Message += fmt.Sprintf(": %d by the cloud, %d returned by the operator (ohfp return)", cloud, t.operator)
		} else {
			out.Message += ": returned by the operator (ohfp return)"
		}
	}
	if t.drainCount > 0 {
		out.Message += fmt.Sprintf("; %s to drain before the cloud fails %s: %s", english.Plural(t.drainCount, "host"), itThem(t.drainCount), strings.Join(t.drains, "; "))
		if t.drainCount > len(t.drains) {
			out.Message += fmt.Sprintf("; and %d more (ohfp machines)", t.drainCount-len(t.drains))
		}
	}
	if t.unknown > 0 {
		out.Message += fmt.Sprintf("; %s %s not known to ohfpd", english.Plural(t.unknown, "host"), isAre(t.unknown))
	}
	return out
}

// sortedRequests returns requests in creation order: all of them, or
// those in flight and those finished within apitype.RecentFinished.
// Called with the state's Mu held.
func (sv *Service) sortedRequests(all bool) []*domain.Request {
	out := make([]*domain.Request, 0, len(sv.st.Requests))
	recent := sv.st.Clock.Now().Add(-apitype.RecentFinished)
	for _, r := range sv.st.Requests {
		if all || !r.Final() || r.FinishedAt.After(recent) {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].ID < out[j].ID
		}
		return out[i].CreatedAt.Before(out[j].CreatedAt)
	})
	return out
}

// NotFoundError is an id the daemon does not hold.
type NotFoundError struct{ What, ID string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s %s is not known to ohfpd", e.What, e.ID)
}

// MachineCount returns the number of machines held (in any state).
func (sv *Service) MachineCount() int {
	sv.st.Mu.RLock()
	defer sv.st.Mu.RUnlock()
	return len(sv.st.Machines)
}

// StatusReport summarises the state.
func (sv *Service) StatusReport() apitype.Status {
	now := sv.st.Clock.Now()
	sv.st.Mu.RLock()
	defer sv.st.Mu.RUnlock()
	rep := apitype.Status{
		Version:            sv.st.Opts.Version,
		Started:            sv.st.Started,
		UptimeSeconds:      int64(now.Sub(sv.st.Started) / time.Second),
		ClusterID:          sv.st.Opts.ClusterID,
		Providers:          append([]string(nil), sv.st.Order...),
		Requests:           map[string]int{},
		Machines:           map[string]int{},
		LastReconcile:      sv.st.Health.LastReconcile,
		LastReconcileMs:    sv.st.Health.LastReconcileTook.Milliseconds(),
		LastReconcileError: sv.st.Health.LastReconcileError,
		Reconciles:         sv.st.Health.Reconciles,
		Listings:           sv.st.Health.Listings,
		LastListing:        sv.st.Health.LastListing,
		LastListingMs:      sv.st.Health.LastListingTook.Milliseconds(),
		ActiveIntervalMs:   sv.st.Opts.ActiveInterval.Milliseconds(),
		IdleIntervalMs:     sv.st.Opts.IdleInterval.Milliseconds(),
		CloudNote:          sv.st.Health.CloudNote,
	}
	for _, r := range sv.st.Requests {
		st, _ := sv.st.StatusLocked(r)
		rep.Requests[string(r.Kind)+" "+string(st)]++
		if !r.Final() {
			rep.InFlight++
		}
	}
	for _, m := range sv.st.Machines {
		rep.Machines[string(m.State)]++
		if m.Live() {
			rep.LiveMachines++
		}
	}
	for _, r := range sv.st.Requests {
		// The one retry time status shows: when the next launch retried
		// after a cloud error is due.
		if r.Kind == domain.KindAcquire && !r.Final() && r.Phase == domain.PhaseQueued && r.RetryNote != "" && !r.NextAttempt.IsZero() &&
			(rep.NextRetry.IsZero() || r.NextAttempt.Before(rep.NextRetry)) {
			rep.NextRetry = r.NextAttempt
		}
	}
	for _, d := range sv.st.DrainsLocked() {
		rep.Drained = append(rep.Drained, apitype.Drained{Provider: d.Provider, TemplateID: d.TemplateID, Since: d.At, By: d.Who})
	}
	for _, b := range sv.st.BreakersLocked() {
		_, tripped := sv.st.TrippedLocked(b.Provider, b.TemplateID, now)
		row := apitype.Breaker{Provider: b.Provider, TemplateID: b.TemplateID, Failures: b.Failures, Reason: b.Reason, Tripped: tripped}
		if tripped {
			row.Since, row.Until, row.Message = b.TrippedAt, b.Until, b.Message()
		}
		rep.Breakers = append(rep.Breakers, row)
	}
	for _, name := range sv.st.Order {
		cm, ok := sv.st.Providers[name].Cfg.Cloud.(provider.CapacityMemory)
		if !ok {
			continue
		}
		for _, u := range cm.Unavailable() {
			rep.Unavailable = append(rep.Unavailable, apitype.Unavailable{Provider: name, InstanceType: u.InstanceType, Where: u.Where,
				PriceType: u.PriceType, Reason: u.Reason, Since: u.Since, Until: u.Until})
		}
	}
	for name, es := range sv.st.Health.Events {
		if rep.Events == nil {
			rep.Events = map[string]apitype.EventQueue{}
		}
		rep.Events[name] = apitype.EventQueue{Queue: es.Queue, Received: es.Received, Applied: es.Applied, Malformed: es.Malformed,
			Foreign: es.Foreign, Errors: es.Errors, LastError: es.LastError, LastAt: es.LastAt}
	}
	rep.Unsaved = sv.st.Unsaved()
	rep.Cost = sv.costLocked()
	return rep
}

// ListRequests lists requests in creation order: unfinished ones, or all.
func (sv *Service) ListRequests(all bool) []apitype.RequestRow {
	sv.st.Mu.RLock()
	defer sv.st.Mu.RUnlock()
	rs := sv.sortedRequests(all)
	out := make([]apitype.RequestRow, 0, len(rs))
	for _, r := range rs {
		st, msg := sv.st.StatusLocked(r)
		out = append(out, apitype.RequestRow{ID: r.ID, Kind: string(r.Kind), Provider: r.Provider, TemplateID: r.TemplateID,
			Units: r.Units, Machines: len(r.MachineIDs), Status: string(st), Message: msg, Created: r.CreatedAt, Finished: r.FinishedAt})
	}
	return out
}

// ListMachines lists the machines of one request, or every live machine
// (all: ended ones too).
func (sv *Service) ListMachines(requestID string, all bool) ([]apitype.MachineRow, error) {
	sv.st.Mu.RLock()
	defer sv.st.Mu.RUnlock()
	var ms []*domain.Machine
	if requestID != "" {
		r := sv.st.Requests[requestID]
		if r == nil {
			return nil, &NotFoundError{What: "request", ID: requestID}
		}
		ms = sv.st.MachinesOfLocked(r)
	} else {
		for _, m := range sv.st.Machines {
			if all || m.Live() {
				ms = append(ms, m)
			}
		}
		sort.Slice(ms, func(i, j int) bool {
			if !ms[i].LaunchTime.Equal(ms[j].LaunchTime) {
				return ms[i].LaunchTime.Before(ms[j].LaunchTime)
			}
			return ms[i].ID < ms[j].ID
		})
	}
	out := make([]apitype.MachineRow, 0, len(ms))
	for _, m := range ms {
		if m == nil {
			continue
		}
		out = append(out, apitype.MachineRow{Machine: hfMachine(m), RequestID: m.RequestID, ReturnID: m.ReturnID, TemplateID: m.TemplateID, Weight: max(m.Weight, 1)})
	}
	return out, nil
}

// Show returns everything ohfpd holds about a request or machine id (or a
// host name).
func (sv *Service) Show(id string) (apitype.Shown, error) {
	sv.st.Mu.RLock()
	defer sv.st.Mu.RUnlock()
	if r := sv.st.Requests[id]; r != nil {
		st := sv.requestStatusLocked(id)
		shown := shownRequest(r)
		for _, n := range sv.st.Notes[id] {
			shown.History = append(shown.History, apitype.Note{At: n.At, Who: n.Who, Action: n.Action, Text: n.Text})
		}
		if r.Kind == domain.KindAcquire {
			shown.Cost = sv.requestCostLocked(r)
		}
		return apitype.Shown{Request: shown, Status: &st}, nil
	}
	if m := sv.st.LookupLocked(hf.MachineRef{MachineID: id, Name: id}); m != nil {
		shown := shownMachine(m)
		shown.Price = sv.priceLocked(m)
		return apitype.Shown{Machine: shown}, nil
	}
	return apitype.Shown{}, &NotFoundError{What: "request or machine", ID: id}
}

func shownRequest(r *domain.Request) *apitype.Request {
	return &apitype.Request{
		ID: r.ID, Kind: string(r.Kind), Provider: r.Provider, TemplateID: r.TemplateID, RcAccount: r.RcAccount, ClusterName: r.ClusterName, Units: r.Units, CreatedAt: r.CreatedAt,
		ClientToken: r.ClientToken, Phase: string(r.Phase), Attempts: r.Attempts, NextAttempt: r.NextAttempt,
		Handle: r.Handle, HandleCapped: r.HandleCapped, HandleDeleted: r.HandleDeleted, TakenOver: r.TakenOver, FallbackUnits: r.FallbackUnits,
		Pool: r.Pool, PoolOrder: append([]int(nil), r.PoolOrder...), LaunchError: r.LaunchError, Shortfall: r.Shortfall, RetryNote: r.RetryNote, Rebuilt: r.Rebuilt, UnitsFromTag: r.UnitsFromTag,
		MachineIDs: append([]string(nil), r.MachineIDs...), Unknown: append([]string(nil), r.Unknown...),
		TerminateSent: r.TerminateSent, AwaitingClaim: r.AwaitingClaim, AnswerPending: r.AnswerPending, Unclaimed: r.Unclaimed,
		Status: string(r.Status), Message: r.Message, FinishedAt: r.FinishedAt,
	}
}

func shownMachine(m *domain.Machine) *apitype.Machine {
	return &apitype.Machine{
		ID: m.ID, RequestID: m.RequestID, ReturnID: m.ReturnID, Provider: m.Provider, TemplateID: m.TemplateID,
		Name: m.Name, PrivateIP: m.PrivateIP, PublicIP: m.PublicIP, State: string(m.State), StateReason: m.StateReason,
		InstanceType: m.InstanceType, Spot: m.Spot, SpotRequest: m.SpotRequest, Weight: m.Weight, LaunchTime: m.LaunchTime,
		Tags: m.Tags, Unlisted: m.Unlisted, Result: string(m.Result), Message: m.Message, Doomed: m.Doomed, TerminateSent: m.TerminateSent,
		Handle: m.Handle, CapacityReleased: m.CapacityReleased, IDTagged: m.IDTagged, ReclaimedAt: m.ReclaimedAt, InterruptAt: m.InterruptAt,
		DrainAt: m.DrainAt, DrainBy: m.DrainBy, DrainReason: m.DrainReason,
		LastSeen: m.LastSeen, EndedAt: m.EndedAt, AZ: m.AZ,
	}
}

// attributesLocked returns the template's HF attributes, with type, ncpus
// and nram filled from the instance type when the template leaves them
// out. ncpus follows IBM's definition, half the vCPUs on types with two
// threads per core: the type's physical cores (DescribeInstanceTypes'
// DefaultCores), its vCPUs when it gives no core count. HF requires type,
// ncpus and nram: when one is missing and the type is not known (yet: the
// reconcile pass retries DescribeInstanceTypes), why says so and the template is
// withheld from HF rather than shown without them. Called with the
// state's Mu held (read).
func (sv *Service) attributesLocked(t *template.Template) (attrs template.Attributes, why string) {
	attrs = append(template.Attributes(nil), t.Attributes...)
	missing := func() string {
		var m []string
		for _, n := range []string{"type", "ncpus", "nram"} {
			if _, ok := attrs.Get(n); !ok {
				m = append(m, n)
			}
		}
		return strings.Join(m, ", ")
	}
	types := t.InstanceTypes()
	if len(types) == 0 {
		if m := missing(); m != "" {
			return attrs, fmt.Sprintf("template %s lacks %s and names no instance type to take them from", t.TemplateID, m)
		}
		return attrs, ""
	}
	ti, ok := sv.st.TypeInfo[types[0]]
	if !ok {
		m := missing()
		var pe *provider.Error
		err := sv.st.TypeErr[types[0]]
		switch {
		case m == "":
			return attrs, ""
		case errors.As(err, &pe) && pe.Kind == provider.Fatal:
			// AWS said no (InvalidInstanceType): asking again will not help.
			return attrs, fmt.Sprintf("template %s: AWS refused instance type %s (%v): fix vmType, or give %s in the template's attributes", t.TemplateID, types[0], err, m)
		case err != nil:
			return attrs, fmt.Sprintf("template %s: %s of %s not known yet (DescribeInstanceTypes failed: %v; retried each pass)", t.TemplateID, m, types[0], err)
		}
		return attrs, fmt.Sprintf("template %s: %s of %s not known yet (DescribeInstanceTypes not answered yet; retried)", t.TemplateID, m, types[0])
	}
	if _, has := attrs.Get("type"); !has {
		typ := "X86_64"
		if ti.Arch == "arm64" {
			typ = "ARM64"
		}
		attrs.Set(template.Attribute{Name: "type", Type: "String", Value: typ})
	}
	if _, has := attrs.Get("ncpus"); !has {
		n := ti.VCPUs
		if ti.Cores > 0 && ti.Cores < ti.VCPUs {
			n = ti.Cores
		}
		attrs.Set(template.Attribute{Name: "ncpus", Type: "Numeric", Value: fmt.Sprint(n)})
	}
	if _, has := attrs.Get("nram"); !has {
		attrs.Set(template.Attribute{Name: "nram", Type: "Numeric", Value: fmt.Sprint(ti.MemoryMiB)})
	}
	return attrs, ""
}
