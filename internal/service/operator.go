package service

import (
	"fmt"
	"github.com/ohfp/ohfp/internal/english"
	"sort"
	"strings"
	"time"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/state"
)

// The operator's actions (ohfp cancel, return, drain, undrain). Package
// api lets only admins call them, and passes who called, which goes into
// the request's history and the log.

// RefusedError is an operator action that cannot be done as asked;
// nothing was changed.
type RefusedError struct{ Msg string }

func (e *RefusedError) Error() string { return e.Msg }

func refused(format string, args ...any) error {
	return &RefusedError{Msg: fmt.Sprintf(format, args...)}
}

// Cancel stops acquire request id from launching more: a launch not yet
// made (or waiting to be retried) is not made, a launch under way has
// what it brings terminated, a fleet or group is capped at what came as
// the cloud counts it when the next reconcile pass caps it (one that has
// already reached its target is left: its request completes, and its
// history says the cancel came too late). With alsoReturn the machines that came are
// returned too, as by Return.
func (sv *Service) Cancel(id string, alsoReturn bool, who string) (apitype.ActionAnswer, error) {
	sv.st.Admit.Lock()
	defer sv.st.Admit.Unlock()
	now := sv.st.Clock.Now()
	sv.st.Mu.Lock()
	r := sv.st.Requests[id]
	if r == nil {
		sv.st.Mu.Unlock()
		return apitype.ActionAnswer{}, &NotFoundError{What: "request", ID: id}
	}
	if r.Kind != domain.KindAcquire {
		sv.st.Mu.Unlock()
		return apitype.ActionAnswer{}, refused("%s is a return request: a return cannot be cancelled", id)
	}
	var what string
	addNote := true
	live := 0
	for _, m := range sv.st.MachinesOfLocked(r) {
		if m != nil && m.Live() && m.ReturnID == "" {
			live++
		}
	}
	cancelled := sv.st.HasNoteLocked(id, state.NoteCancel)
	switch {
	case (r.Final() || cancelled) && live == 0:
		// Nothing to stop and nothing to return: refused, whether or not
		// --return was asked, and not logged as a cancel.
		st := "already finished (" + string(r.Status) + ")"
		if !r.Final() {
			st = "already cancelled"
		}
		sv.st.Mu.Unlock()
		return apitype.ActionAnswer{}, refused("request %s %s and has no live machine: there is nothing to stop or return (ohfp show %s)", id, st, id)
	case r.Final() && !alsoReturn:
		st := r.Status
		sv.st.Mu.Unlock()
		return apitype.ActionAnswer{}, refused("request %s already finished (%s): there is nothing left to stop; ohfp cancel --return %s, or ohfp return --request %s, returns its %s", id, st, id, id, english.Plural(live, "live machine"))
	case r.Final():
		what, addNote = "it had already finished", false
	case cancelled:
		if !alsoReturn {
			sv.st.Mu.Unlock()
			return apitype.ActionAnswer{}, refused("request %s was already cancelled; it ends once its fleet is capped (ohfp show %s)", id, id)
		}
		what, addNote = "it was already cancelled", false
	case r.Phase == domain.PhaseQueued || r.Phase == "":
		units, _ := sv.st.UnitsLocked(r)
		// A call made whose answer did not come (or under way now) may
		// have launched: nothing is claimed that ohfp does not know.
		// Refused calls (throttling, no capacity) launched nothing.
		unsure := sv.st.Inflight[id] || r.Attempts > 0 && !strings.HasPrefix(r.RetryNote, "AWS throttling") && !strings.HasPrefix(r.RetryNote, "no capacity")
		if len(r.MachineIDs) == 0 && !unsure {
			r.Phase = domain.PhaseFailed
			r.LaunchError = "cancelled by the operator (" + who + "): nothing was launched"
			what = "its launch will not be made"
		} else if len(r.MachineIDs) == 0 {
			r.Phase = domain.PhaseFailed
			r.LaunchError = "cancelled by the operator (" + who + "): no launch is made after it; what a launch call already made (one under way, or one whose answer was lost) is terminated as EC2 shows it"
			what = "no launch is made after it; what a launch call already made (one under way, or one whose answer was lost) is terminated as EC2 shows it"
		} else {
			r.Phase = domain.PhaseLaunched
			r.Shortfall = "cancelled by the operator (" + who + ")"
			what = fmt.Sprintf("the rest of its launch will not be made; %s of %s came", english.Plural(units, "unit"), english.Plural(r.Units, "unit"))
		}
		if r.Attempts > 0 && r.RetryNote != "" {
			what += fmt.Sprintf(" (it was being retried after %s)", english.Plural(r.Attempts, "attempt"))
		}
		r.RetryNote, r.NextAttempt = "", time.Time{}
		if sv.st.Inflight[id] && len(r.MachineIDs) > 0 {
			what += "; a launch call under way: what it brings is terminated"
		}
		sv.st.FinishLocked(r)
	case r.Handle != "" && !r.HandleCapped:
		// What came is counted by the cloud when the cap is applied: EC2
		// shows a fleet's instances a while after it launched them, so
		// ohfp's count now may be short (issue 18, finding 1).
		units, _ := sv.st.UnitsLocked(r)
		what = fmt.Sprintf("%s launches no more: the next reconcile pass caps it at what has come as AWS counts it then (%d of %s shown by EC2 so far), or, if it has reached its target, leaves it (ohfp show %s tells which)",
			r.Handle, units, english.Plural(r.Units, "unit"), id)
	default:
		units, _ := sv.st.UnitsLocked(r)
		what = fmt.Sprintf("nothing left to launch: %s of %s came", english.Plural(units, "unit"), english.Plural(r.Units, "unit"))
	}
	if addNote {
		if err := sv.st.AddNoteLocked(id, state.Note{At: now, Who: who, Action: state.NoteCancel, Text: "cancelled: " + what}); err != nil {
			sv.st.Mu.Unlock()
			return apitype.ActionAnswer{}, &StoreError{Err: err}
		}
	}
	// Written outside the lock: HF is shown the request final only once
	// this write is done (GetRequestStatus); a launch under way, when it
	// returns, finds the phase changed and terminates what it brought.
	w := sv.st.Stage([]*domain.Request{r}, nil)
	fleetOpen := r.Handle != "" && !r.HandleCapped && !r.Final()
	var back []string
	if alsoReturn {
		for _, m := range sv.st.MachinesOfLocked(r) {
			if m != nil && m.Live() && m.ReturnID == "" {
				back = append(back, m.ID)
			}
		}
	}
	sv.st.Mu.Unlock()
	if err := w.Wait(); err != nil {
		// Memory holds the cancellation; reconcile passes write it again.
		sv.st.Log.Error("persist cancelled request; written again at the next pass", "request", id, "err", err)
	}
	sv.st.Log.Warn("request cancelled by the operator", "request", id, "by", who, "what", what)
	sv.st.KickLaunch()
	sv.st.KickReconcile()
	ans := apitype.ActionAnswer{Message: fmt.Sprintf("request %s cancelled: %s", id, what)}
	if !alsoReturn {
		return ans, nil
	}
	// --return returns what has shown; a fleet's instances EC2 shows
	// later are HF's until returned too.
	later := ""
	if fleetOpen {
		later = fmt.Sprintf("; machines its fleet launched that EC2 shows later are not returned by this: ohfp return --request %s once ohfp show %s says it ended", id, id)
	}
	if len(back) == 0 {
		ans.Message += "; no live machine to return yet" + later
		return ans, nil
	}
	ret, err := sv.returnAdmitted(back, who, "cancel --return "+id)
	if err != nil {
		return ans, err
	}
	ans.Message += "; " + ret.Message + later
	ans.ReturnIDs = ret.ReturnIDs
	return ans, nil
}

// Return returns machines for the operator, with the same safety as HF's
// requestReturnMachines: a return request (ret-) recorded durably before
// anything is terminated, fleet and group capacity lowered first so
// nothing replaces them. HF is told by getReturnRequests that the cloud
// takes these hosts back. machines are instance ids or host names; with
// requestID, every live machine of that acquire request not yet returned.
func (sv *Service) Return(machines []string, requestID, who string) (apitype.ActionAnswer, error) {
	sv.st.Admit.Lock()
	defer sv.st.Admit.Unlock()
	if requestID != "" {
		if len(machines) > 0 {
			return apitype.ActionAnswer{}, refused("name machines or --request, not both")
		}
		sv.st.Mu.RLock()
		r := sv.st.Requests[requestID]
		if r == nil {
			sv.st.Mu.RUnlock()
			return apitype.ActionAnswer{}, &NotFoundError{What: "request", ID: requestID}
		}
		if r.Kind != domain.KindAcquire {
			sv.st.Mu.RUnlock()
			return apitype.ActionAnswer{}, refused("%s is a return request; name an acquire request (req-)", requestID)
		}
		for _, m := range sv.st.MachinesOfLocked(r) {
			if m != nil && m.Live() && m.ReturnID == "" {
				machines = append(machines, m.ID)
			}
		}
		sv.st.Mu.RUnlock()
		if len(machines) == 0 {
			return apitype.ActionAnswer{}, refused("request %s has no live machine that is not already being returned", requestID)
		}
	}
	if len(machines) == 0 {
		return apitype.ActionAnswer{}, refused("name the machines to return (instance ids or host names), or --request REQ")
	}
	return sv.returnAdmitted(machines, who, "")
}

// returnAdmitted is Return with the Admit lock held: one return request
// per provider of the machines. Every name must be a machine ohfpd holds.
func (sv *Service) returnAdmitted(names []string, who, why string) (apitype.ActionAnswer, error) {
	now := sv.st.Clock.Now()
	byProvider := map[string][]hf.MachineRef{}
	var unknown, ended []string
	sv.st.Mu.RLock()
	for _, n := range names {
		m := sv.st.LookupLocked(hf.MachineRef{MachineID: n, Name: n})
		switch {
		case m == nil:
			unknown = append(unknown, n)
		case !m.Live():
			ended = append(ended, n)
		default:
			byProvider[m.Provider] = append(byProvider[m.Provider], hf.MachineRef{MachineID: m.ID, Name: m.Name})
		}
	}
	sv.st.Mu.RUnlock()
	if len(unknown) > 0 {
		return apitype.ActionAnswer{}, refused("not machines of ohfpd: %s; nothing was returned (ohfp machines lists them)", strings.Join(unknown, ", "))
	}
	if len(byProvider) == 0 {
		return apitype.ActionAnswer{}, refused("%s already ended; nothing to return", strings.Join(ended, ", "))
	}
	provs := make([]string, 0, len(byProvider))
	for p := range byProvider {
		provs = append(provs, p)
	}
	sort.Strings(provs)
	var ans apitype.ActionAnswer
	var msgs []string
	for _, p := range provs {
		text := "returned by the operator"
		if why != "" {
			text += " (" + why + ")"
		}
		rep, err := sv.returnMachines(p, byProvider[p], &state.Note{At: now, Who: who, Action: state.NoteReturn, Text: text})
		if err != nil {
			return ans, err
		}
		ans.ReturnIDs = append(ans.ReturnIDs, rep.RequestID)
		msgs = append(msgs, rep.RequestID+": "+rep.Message)
		sv.st.Log.Warn("machines returned by the operator", "request", rep.RequestID, "provider", p, "machines", len(byProvider[p]), "by", who)
	}
	if len(ended) > 0 {
		msgs = append(msgs, "already ended: "+strings.Join(ended, ", "))
	}
	ans.Message = strings.Join(msgs, "; ")
	return ans, nil
}

// Drain makes template templateID offer no units (availableNumber 0,
// requestMachines refused) until Undrain; durable across restarts.
// provider may be empty when one provider has the template.
func (sv *Service) Drain(provider, templateID, who string) (apitype.ActionAnswer, error) {
	return sv.setDrain(provider, templateID, who, true)
}

// Undrain ends Drain.
func (sv *Service) Undrain(provider, templateID, who string) (apitype.ActionAnswer, error) {
	return sv.setDrain(provider, templateID, who, false)
}

func (sv *Service) setDrain(provider, templateID, who string, on bool) (apitype.ActionAnswer, error) {
	sv.st.Admit.Lock()
	defer sv.st.Admit.Unlock()
	sv.st.Mu.Lock()
	defer sv.st.Mu.Unlock()
	var owners []string
	for _, name := range sv.st.Order {
		_, has := sv.st.Providers[name].Templates[templateID]
		_, drained := sv.st.Drains[state.DrainKey(name, templateID)]
		if (has || drained && !on) && (provider == "" || provider == name) {
			owners = append(owners, name)
		}
	}
	if len(owners) == 0 && !on && provider != "" {
		if _, drained := sv.st.Drains[state.DrainKey(provider, templateID)]; drained {
			owners = []string{provider} // a provider no longer configured
		}
	}
	p, err := oneOwner(owners, provider, templateID)
	if err != nil {
		return apitype.ActionAnswer{}, err
	}
	key := state.DrainKey(p, templateID)
	d, drained := sv.st.Drains[key]
	if on == drained {
		if on {
			return apitype.ActionAnswer{Message: fmt.Sprintf("template %s of provider %s was already drained (by %s, %s)", templateID, p, d.Who, d.At.UTC().Format("2006-01-02 15:04:05Z"))}, nil
		}
		return apitype.ActionAnswer{Message: fmt.Sprintf("template %s of provider %s was not drained", templateID, p)}, nil
	}
	if on {
		err = sv.st.SetDrainLocked(p, templateID, &state.Drain{Provider: p, TemplateID: templateID, At: sv.st.Clock.Now(), Who: who})
	} else {
		err = sv.st.SetDrainLocked(p, templateID, nil)
	}
	if err != nil {
		return apitype.ActionAnswer{}, &StoreError{Err: err}
	}
	if on {
		sv.st.Log.Warn("template drained by the operator: it offers no units until undrained", "template", templateID, "provider", p, "by", who)
		return apitype.ActionAnswer{Message: fmt.Sprintf("template %s of provider %s drained: availableNumber is 0 until ohfp undrain %s; requests under way go on", templateID, p, templateID)}, nil
	}
	sv.st.Log.Warn("template undrained by the operator", "template", templateID, "provider", p, "by", who)
	return apitype.ActionAnswer{Message: fmt.Sprintf("template %s of provider %s undrained", templateID, p)}, nil
}

// plural writes n and the noun, in the plural unless n is 1: "1 machine",
// "3 machines".

// Rearm re-arms a template's failure breaker: it launches again, and its
// count starts from 0. provider may be empty when one provider has the
// template.
func (sv *Service) Rearm(provider, templateID, who string) (apitype.ActionAnswer, error) {
	sv.st.Admit.Lock()
	defer sv.st.Admit.Unlock()
	sv.st.Mu.Lock()
	defer sv.st.Mu.Unlock()
	var owners []string
	for _, name := range sv.st.Order {
		_, has := sv.st.Providers[name].Templates[templateID]
		_, counted := sv.st.Breakers[state.DrainKey(name, templateID)]
		if (has || counted) && (provider == "" || provider == name) {
			owners = append(owners, name)
		}
	}
	p, err := oneOwner(owners, provider, templateID)
	if err != nil {
		return apitype.ActionAnswer{}, err
	}
	b, tripped := sv.st.TrippedLocked(p, templateID, sv.st.Clock.Now())
	was, err := sv.st.RearmLocked(p, templateID)
	if err != nil {
		return apitype.ActionAnswer{}, &StoreError{Err: err}
	}
	if !tripped && !was {
		return apitype.ActionAnswer{Message: fmt.Sprintf("template %s of provider %s was not stopped by its failure breaker; its count starts from 0", templateID, p)}, nil
	}
	sv.st.Log.Warn("template re-armed by the operator: it launches again", "template", templateID, "provider", p, "by", who, "failures", b.Failures, "reason", b.Reason)
	sv.st.KickLaunch()
	return apitype.ActionAnswer{Message: fmt.Sprintf("template %s of provider %s re-armed: it launches again (its breaker had stopped it after %s; last: %s)", templateID, p, english.Plural(b.Failures, "failure"), b.Reason)}, nil
}

// oneOwner is the provider an operator's command on templateID names:
// owners are the providers holding it (only provider, when one was named).
func oneOwner(owners []string, provider, templateID string) (string, error) {
	switch {
	case len(owners) == 0 && provider != "":
		return "", &NotFoundError{What: "template", ID: templateID + " of provider " + provider}
	case len(owners) == 0:
		return "", &NotFoundError{What: "template", ID: templateID}
	case len(owners) > 1:
		return "", refused("template %s belongs to providers %s: name one with --provider", templateID, strings.Join(owners, ", "))
	}
	return owners[0], nil
}
