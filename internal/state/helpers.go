package state

import (
	"fmt"
	"time"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/english"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// FinishLocked records a request's final status. Called with Mu held.
func (s *State) FinishLocked(r *domain.Request) {
	st, msg := s.StatusLocked(r)
	if st == hf.StatusRunning {
		return
	}
	r.Status, r.Message = st, msg
	r.FinishedAt = s.Clock.Now()
	s.noteLateCancelLocked(r)
}

// noteLateCancelLocked writes in r's history that a cancel came too late
// when r completed with every unit although the operator cancelled it: its
// fleet had launched them all before the cap (they are HF's; the operator
// returns them if unwanted). Called with Mu held.
func (s *State) noteLateCancelLocked(r *domain.Request) {
	if r.Kind != domain.KindAcquire || r.Status != hf.StatusComplete || !s.HasNoteLocked(r.ID, NoteCancel) || s.HasNoteLocked(r.ID, NoteCap) {
		return
	}
	units, _ := s.UnitsLocked(r)
	what := "its launch"
	if r.Handle != "" {
		what = r.Handle
	}
	text := fmt.Sprintf("the cancel came too late: %s had launched all %s before it could be capped; nothing was capped or terminated, the machines are HF's (ohfp return --request %s returns them)",
		what, english.Plural(units, "unit"), r.ID)
	if err := s.AddNoteLocked(r.ID, Note{At: s.Clock.Now(), Who: WhoOhfpd, Action: NoteCap, Text: text}); err != nil {
		s.Log.Error("record a late cancel in the request's history", "request", r.ID, "err", err)
	}
	s.Log.Warn("a cancel came too late: the request completed with every unit", "request", r.ID, "units", units)
}

// StatusLocked derives the HF status of r. Called with Mu held.
func (s *State) StatusLocked(r *domain.Request) (hf.Status, string) {
	if r.Final() {
		if r.Kind == domain.KindAcquire {
			return r.Status, r.Message + domain.Since(s.MachinesOfLocked(r))
		}
		return r.Status, r.Message
	}
	ms := s.MachinesOfLocked(r)
	if r.Kind == domain.KindReturn {
		return domain.ReturnStatus(r, ms)
	}
	return domain.AcquireStatus(r, ms)
}

// MachinesOfLocked returns r's machines in order; for a return request, a
// machine no longer held is nil. Called with Mu held.
func (s *State) MachinesOfLocked(r *domain.Request) []*domain.Machine {
	ms := make([]*domain.Machine, 0, len(r.MachineIDs))
	for _, id := range r.MachineIDs {
		if m := s.Machines[id]; m != nil {
			ms = append(ms, m)
		} else if r.Kind == domain.KindReturn {
			ms = append(ms, nil)
		}
	}
	return ms
}

// UnitsLocked counts r's units that arrived (live, not failed) and its
// machines still starting. Called with Mu held.
func (s *State) UnitsLocked(r *domain.Request) (units, executing int) {
	for _, id := range r.MachineIDs {
		m := s.Machines[id]
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

// NewMachineLocked records instance in as a machine of r, launched from
// tpl (nil when no longer configured) by handle ("": the instance's own).
// Called with Mu held.
func (s *State) NewMachineLocked(r *domain.Request, tpl *template.Template, in provider.Instance, handle string, now time.Time) *domain.Machine {
	if handle == "" {
		handle = in.Handle
	}
	s.Seq++
	m := &domain.Machine{
		ID:            in.ID,
		Seq:           s.Seq,
		Handle:        handle,
		RequestID:     r.ID,
		Provider:      r.Provider,
		TemplateID:    r.TemplateID,
		InstanceType:  in.InstanceType,
		Spot:          in.Spot,
		SpotRequest:   in.SpotRequestID,
		Weight:        1,
		Result:        hf.ResultExecuting,
		State:         domain.StatePending,
		AwaitingClaim: r.AwaitingClaim,
	}
	if tpl != nil {
		m.Weight = tpl.WeightOf(in.InstanceType)
		m.Tags = tpl.InstanceTags
	}
	m.Observe(Observation(in), now)
	s.Machines[m.ID] = m
	if m.Name != "" {
		s.ByName[m.Name] = m
	}
	r.MachineIDs = append(r.MachineIDs, m.ID)
	return m
}

// Observation is what the cloud says of an instance, for domain's rules.
func Observation(in provider.Instance) domain.Observation {
	return domain.Observation{
		State:         in.State,
		StateReason:   in.StateReason,
		PrivateIP:     in.PrivateIP,
		PublicIP:      in.PublicIP,
		PrivateDNS:    in.PrivateDNS,
		LaunchTime:    in.LaunchTime,
		AZ:            in.AZ,
		SpotRequestID: in.SpotRequestID,
	}
}

// LookupRawLocked finds a machine by instance id, falling back to host
// name, as they stand in an HF document (indexing a map with string(b)
// does not copy b). Called with Mu held.
func (s *State) LookupRawLocked(id, name []byte) *domain.Machine {
	if len(id) > 0 {
		if m := s.Machines[string(id)]; m != nil {
			return m
		}
	}
	if len(name) > 0 {
		return s.ByName[string(name)]
	}
	return nil
}

// LookupLocked finds a machine by instance id, falling back to host name.
// Called with Mu held.
func (s *State) LookupLocked(ref hf.MachineRef) *domain.Machine {
	if ref.MachineID != "" {
		if m := s.Machines[ref.MachineID]; m != nil {
			return m
		}
	}
	if ref.Name != "" {
		return s.ByName[ref.Name]
	}
	return nil
}

// Claim records that HF has shown it knows the requests ids (asked about
// them, returned or listed one of their machines): durably, so that no
// restart can turn them back into requests HF never learned of. It
// returns once the claim is written (or its write failed).
//
// The claim is written outside Mu. From the change in memory to the end
// of its write, the requests are in ClaimUnsaved with a ClaimWriting
// error: a concurrent reader does not show HF their machines (and claims
// them again itself, then waits for its own write), exactly as when the
// claim cannot be written.
func (s *State) Claim(ids []string) {
	s.Mu.Lock()
	var recs []*domain.Request
	mark := &ClaimWriting{}
	for _, id := range ids {
		r := s.Requests[id]
		if r == nil {
			continue
		}
		if _, retry := s.ClaimUnsaved[id]; !r.AwaitingClaim && !retry && !r.AnswerPending {
			continue
		}
		r.AwaitingClaim = false
		if r.AnswerPending {
			// HF asks about it: the answer reached HF. (A launch writes
			// its attempt after this write, in order: the claim is
			// durable before the cloud call.)
			r.AnswerPending = false
			delete(s.Undelivered, id)
			s.KickLaunch()
		}
		delete(s.ClaimWatch, id)
		for _, mid := range r.MachineIDs {
			if m := s.Machines[mid]; m != nil {
				m.AwaitingClaim = false
			}
		}
		s.ClaimUnsaved[id] = mark
		recs = append(recs, r)
	}
	w := s.Stage(recs, nil)
	s.Mu.Unlock()
	err := w.Wait()
	if len(recs) == 0 {
		return
	}
	s.Mu.Lock()
	defer s.Mu.Unlock()
	if err != nil {
		// Memory holds the claim (nothing in this process takes these
		// requests as unclaimed); until it is on disk, HF is not shown
		// their machines (see ClaimUnsaved).
		s.Log.Warn("recording HF's claim of requests; their machines are withheld from HF until it is written", "requests", len(recs), "err", err)
	}
	for _, r := range recs {
		// A later Claim of the same request replaced the mark: its write,
		// later in the write order, decides.
		if s.ClaimUnsaved[r.ID] != error(mark) {
			continue
		}
		if err != nil {
			s.ClaimUnsaved[r.ID] = err
		} else {
			delete(s.ClaimUnsaved, r.ID)
		}
	}
}

// ClaimWriting is ClaimUnsaved's entry for a claim whose write is under
// way.
type ClaimWriting struct{ _ [1]byte } // not zero-sized: each is its own mark

func (*ClaimWriting) Error() string { return "HF's claim of the request is being written" }

// ProvidersInOrder returns the providers in configuration order.
func (s *State) ProvidersInOrder() []*Provider {
	s.Mu.RLock()
	defer s.Mu.RUnlock()
	provs := make([]*Provider, 0, len(s.Order))
	for _, name := range s.Order {
		provs = append(provs, s.Providers[name])
	}
	return provs
}

// Values lists a map's requests.
func Values(m map[string]*domain.Request) []*domain.Request {
	out := make([]*domain.Request, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	return out
}

// ClaimHosts records that HF holds the machines ids (listed by its
// getReturnRequests): those awaiting HF's claim on their own
// (domain.Machine.Unlisted) no longer do. The write is not waited on
// beyond logging: should it be lost, the host awaits HF's claim again
// after a restart, and HF's next call claims it again.
func (s *State) ClaimHosts(ids []string) {
	s.Mu.Lock()
	var ms []*domain.Machine
	for _, id := range ids {
		m := s.Machines[id]
		if m == nil || !m.Unlisted {
			continue
		}
		m.Unlisted = false
		delete(s.ClaimWatch, "machine/"+id)
		ms = append(ms, m)
	}
	w := s.Stage(nil, ms)
	s.Mu.Unlock()
	if err := w.Wait(); err != nil {
		s.Log.Warn("recording that HF holds hosts of IBM's fleet (they await its claim again after a restart)", "err", err)
	}
}
