package engine

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/template"
)

// StoreError is a durable write that failed; nothing was launched or
// changed.
type StoreError struct{ Err error }

func (e *StoreError) Error() string {
	return "ohfpd could not record the request durably (" + e.Err.Error() + "); nothing was launched or changed: check the state directory's disk space and permissions, then retry"
}

func (e *StoreError) Unwrap() error { return e.Err }

// providerFor picks the provider named name (HF_PROVIDER_NAME), else the
// first. Called with e.mu held.
func (e *Engine) providerFor(op string, name string) (*prov, error) {
	if name == "" || len(e.order) == 1 && e.providers[name] == nil {
		// One provider serves every provider instance name; with several,
		// an unknown name is refused rather than sent to the wrong account.
		return e.providers[e.order[0]], nil
	}
	p := e.providers[name]
	if p == nil {
		return nil, &hf.InputError{Op: op, Problem: fmt.Sprintf("HF_PROVIDER_NAME %q is not a provider of this ohfpd (configured: %s); add it under providers: in the ohfpd config or fix hostProviders.json", name, strings.Join(e.order, ", "))}
	}
	return p, nil
}

// heldUnitsLocked returns, per template of provider p, the units that count
// against maxNumber: live machines not failed, plus what unfinished
// requests still wait for. Called with e.mu held.
func (e *Engine) heldUnitsLocked(p string) map[string]int {
	held := map[string]int{}
	for _, r := range e.requests {
		if r.Kind != domain.KindAcquire || r.Provider != p {
			continue
		}
		units := 0
		for _, id := range r.MachineIDs {
			if m := e.machines[id]; m != nil && m.Held() && m.ReturnID == "" {
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
		return unlimitedAvailable
	}
	return max(t.MaxNumber-held, 0)
}

// unlimitedAvailable is what availableNumber says for a template whose
// maxNumber is -1 (unlimited): HF needs a number, and a count this large is
// never the limit.
const unlimitedAvailable = 1_000_000

// GetAvailableTemplates answers getAvailableTemplates from memory.
func (e *Engine) GetAvailableTemplates(provider string) (hf.TemplatesReply, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	p, err := e.providerFor(hf.OpGetAvailableTemplates, provider)
	if err != nil {
		return hf.TemplatesReply{}, err
	}
	held := e.heldUnitsLocked(p.cfg.Name)
	out := hf.TemplatesReply{Templates: make([]hf.TemplateOut, 0, len(p.order))}
	for _, id := range p.order {
		t := p.templates[id]
		to := hf.TemplateOut{Template: *t, AvailableNumber: available(t, held[id])}
		to.Attributes = e.attributesLocked(t)
		out.Templates = append(out.Templates, to)
	}
	out.Message = fmt.Sprintf("%d templates from provider %s", len(out.Templates), p.cfg.Name)
	return out, nil
}

// RequestMachines validates the request, records it durably with the
// idempotency token of its cloud call, and answers at once; the launch
// happens in the background.
func (e *Engine) RequestMachines(provider string, in hf.RequestMachines) (hf.RequestReply, error) {
	rep, delivered, err := e.RequestMachinesHeld(provider, in)
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
func (e *Engine) RequestMachinesHeld(provider string, in hf.RequestMachines) (hf.RequestReply, func(delivered bool), error) {
	rep, err := e.requestMachines(provider, in)
	if err != nil {
		return rep, nil, err
	}
	id := rep.RequestID
	return rep, func(ok bool) { e.delivered(id, ok) }, nil
}

// delivered releases or ends a request held by RequestMachinesHeld.
func (e *Engine) delivered(id string, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.undelivered[id] {
		return
	}
	delete(e.undelivered, id)
	r := e.requests[id]
	if ok || r == nil {
		e.kick(e.wakeLaunch)
		return
	}
	r.Phase = domain.PhaseFailed
	r.AwaitingClaim = false
	r.LaunchError = "the answer to requestMachines could not be delivered (the caller went away: HF gave up on the call or was stopped); nothing was launched"
	e.finishLocked(r)
	e.log.Warn("requestMachines answer not delivered; the request is cancelled and nothing was launched", "request", id)
	if err := e.persist([]*domain.Request{r}, nil); err != nil {
		// Memory holds the cancellation; were it lost with a restart, the
		// request would launch and HF's getReturnRequests calls would
		// prove it unclaimed (provenUnclaimedLocked).
		e.log.Error("persist cancelled request", "request", id, "err", err)
	}
}

func (e *Engine) requestMachines(provider string, in hf.RequestMachines) (hf.RequestReply, error) {
	const op = hf.OpRequestMachines
	e.admit.Lock()
	defer e.admit.Unlock()

	e.mu.RLock()
	p, err := e.providerFor(op, provider)
	if err != nil {
		e.mu.RUnlock()
		return hf.RequestReply{}, err
	}
	t := p.templates[in.TemplateID]
	if t == nil {
		known := append([]string(nil), p.order...)
		e.mu.RUnlock()
		return hf.RequestReply{}, &hf.InputError{Op: op, Field: "template.templateId", Problem: fmt.Sprintf("%q is not a template of provider %s (known: %s); run getAvailableTemplates", in.TemplateID, p.cfg.Name, strings.Join(known, ", "))}
	}
	avail := available(t, e.heldUnitsLocked(p.cfg.Name)[t.TemplateID])
	e.mu.RUnlock()
	if in.MachineCount > avail {
		return hf.RequestReply{}, &hf.InputError{Op: op, Field: "template.machineCount", Problem: fmt.Sprintf("%d is more than template %s allows now: %d units available (maxNumber %d); ask for at most %d", in.MachineCount, t.TemplateID, avail, t.MaxNumber, avail)}
	}

	now := e.clk.Now()
	id := "req-" + uuid.NewString()
	r := &domain.Request{
		ID:          id,
		Kind:        domain.KindAcquire,
		Provider:    p.cfg.Name,
		TemplateID:  t.TemplateID,
		Units:       in.MachineCount,
		CreatedAt:   now,
		ClientToken: id, // 40 ASCII characters: within EC2's 64
		Phase:       domain.PhaseQueued,
		// Until HF shows it knows the id; see provenUnclaimedLocked.
		AwaitingClaim: true,
	}
	// Write ahead: durable before the answer and before the cloud call.
	if err := e.persist([]*domain.Request{r}, nil); err != nil {
		return hf.RequestReply{}, &StoreError{Err: err}
	}
	e.mu.Lock()
	e.requests[id] = r
	e.undelivered[id] = true
	e.mu.Unlock()
	e.kick(e.wakeReconcile)
	e.log.Info("request accepted", "request", id, "template", t.TemplateID, "units", in.MachineCount, "provider", p.cfg.Name)
	return hf.RequestReply{RequestID: id, Message: fmt.Sprintf("Request to provision %d units of template %s accepted.", in.MachineCount, t.TemplateID)}, nil
}

// GetRequestStatus answers getRequestStatus from memory, one entry per
// asked id in the asked order.
func (e *Engine) GetRequestStatus(ids []string) hf.StatusReply {
	var claims []string
	e.mu.RLock()
	out := hf.StatusReply{Requests: make([]hf.RequestStatus, 0, len(ids))}
	for _, id := range ids {
		out.Requests = append(out.Requests, e.requestStatusLocked(id))
		if r := e.requests[id]; r != nil && r.AwaitingClaim {
			claims = append(claims, id)
		}
	}
	e.mu.RUnlock()
	if len(claims) > 0 {
		e.claim(claims) // once per request: HF's first question about it
	}
	return out
}

func (e *Engine) requestStatusLocked(id string) hf.RequestStatus {
	r := e.requests[id]
	if r == nil {
		return hf.RequestStatus{RequestID: id, Status: hf.StatusCompleteWithError, Machines: []hf.Machine{},
			Message: fmt.Sprintf("request %s is not known to ohfpd: it was never made here, or it finished more than %s ago and was purged", id, e.opts.Retention)}
	}
	st, msg := e.statusLocked(r)
	rs := hf.RequestStatus{RequestID: id, Status: st, Message: msg, Machines: make([]hf.Machine, 0, len(r.MachineIDs))}
	for _, mid := range r.MachineIDs {
		m := e.machines[mid]
		if m == nil {
			continue
		}
		hm := hfMachine(m)
		if r.Kind == domain.KindReturn {
			hm.Result = domain.ReturnResult(m)
			hm.Message = ""
		}
		rs.Machines = append(rs.Machines, hm)
	}
	return rs
}

func hfMachine(m *domain.Machine) hf.Machine {
	price := "ondemand"
	if m.Spot {
		price = "spot"
	}
	status := m.State
	if status == domain.StateGone {
		status = domain.StateTerminated
	}
	hm := hf.Machine{
		MachineID:    m.ID,
		Name:         m.Name,
		Result:       m.Result,
		Status:       status,
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

// lookupLocked finds a machine by instance id, falling back to host name.
// lookupRawLocked is lookupLocked for an id and a name as they stand in an
// HF document (indexing a map with string(b) does not copy b).
func (e *Engine) lookupRawLocked(id, name []byte) *domain.Machine {
	if len(id) > 0 {
		if m := e.machines[string(id)]; m != nil {
			return m
		}
	}
	if len(name) > 0 {
		return e.byName[string(name)]
	}
	return nil
}

func (e *Engine) lookupLocked(ref hf.MachineRef) *domain.Machine {
	if ref.MachineID != "" {
		if m := e.machines[ref.MachineID]; m != nil {
			return m
		}
	}
	if ref.Name != "" {
		return e.byName[ref.Name]
	}
	return nil
}

// RequestReturnMachines records a return request durably and terminates its
// machines in the background.
func (e *Engine) RequestReturnMachines(provider string, refs []hf.MachineRef) (hf.RequestReply, error) {
	e.admit.Lock()
	defer e.admit.Unlock()

	now := e.clk.Now()
	id := "ret-" + uuid.NewString()
	r := &domain.Request{ID: id, Kind: domain.KindReturn, CreatedAt: now}
	e.mu.RLock()
	p, err := e.providerFor(hf.OpRequestReturnMachines, provider)
	if err != nil {
		e.mu.RUnlock()
		return hf.RequestReply{}, err
	}
	r.Provider = p.cfg.Name
	var ms []*domain.Machine
	var claims []string
	seen := map[string]bool{}
	already := 0
	for _, ref := range refs {
		m := e.lookupLocked(ref)
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
		ms = append(ms, &cp)
	}
	e.mu.RUnlock()

	if len(r.MachineIDs) == 0 {
		r.Status = domain.StatusComplete
		r.FinishedAt = now
		_, r.Message = domain.ReturnStatus(r, nil)
	}
	if err := e.persist([]*domain.Request{r}, ms); err != nil {
		return hf.RequestReply{}, &StoreError{Err: err}
	}
	e.mu.Lock()
	e.requests[id] = r
	for _, cp := range ms {
		if m := e.machines[cp.ID]; m != nil && m.ReturnID == "" {
			m.ReturnID = id
		}
	}
	e.mu.Unlock()
	if len(claims) > 0 {
		e.claim(claims)
	}
	e.kick(e.wakeLaunch)
	e.kick(e.wakeReconcile)

	msg := fmt.Sprintf("Returning %d machines.", len(ms))
	if already > 0 {
		msg += fmt.Sprintf(" %d were already being returned.", already)
	}
	if len(r.Unknown) > 0 {
		msg += fmt.Sprintf(" %d were not provisioned by ohfpd and are ignored: %s.", len(r.Unknown), strings.Join(r.Unknown, ", "))
	}
	e.log.Info("return accepted", "request", id, "machines", len(ms), "unknown", len(r.Unknown))
	return hf.RequestReply{RequestID: id, Message: msg}, nil
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
func (e *Engine) GetReturnRequests(hosts Hosts) (reply hf.ReturnRequestsReply, ok bool) {
	now := e.clk.Now()
	var t returnTally
	e.mu.RLock()
	ok = hosts(func(id, name []byte) {
		t.add(e.lookupRawLocked(id, name), name, now)
	})
	e.mu.RUnlock()
	if !ok {
		return hf.ReturnRequestsReply{}, false
	}
	// HF lists every host it holds: the evidence provenUnclaimedLocked
	// counts, and, for a host of a request awaiting its claim, the claim.
	e.holdings.last.Store(now.UnixNano())
	e.holdings.calls.Add(1)
	if len(t.claims) > 0 {
		e.claim(t.claims)
	}
	return t.reply(), true
}

// returnTally builds getReturnRequests' answer one host at a time.
type returnTally struct {
	hosts, unknown int
	out            []hf.ReturnRequest
	claims         []string // requests of hosts awaiting HF's claim
}

// add counts one host HF holds: m is ohfpd's machine for it (nil when
// unknown), name the name HF gave (may be empty).
func (t *returnTally) add(m *domain.Machine, name []byte, now time.Time) {
	t.hosts++
	if m == nil {
		t.unknown++
		return
	}
	if m.AwaitingClaim {
		t.claims = append(t.claims, m.RequestID)
	}
	grace, ok := m.Reclaim(now)
	if !ok {
		return
	}
	n := string(name)
	if n == "" {
		n = m.Name
	}
	t.out = append(t.out, hf.ReturnRequest{Machine: n, GracePeriod: grace})
}

func (t *returnTally) reply() hf.ReturnRequestsReply {
	out := hf.ReturnRequestsReply{Requests: t.out}
	if out.Requests == nil {
		out.Requests = []hf.ReturnRequest{}
	}
	out.Message = fmt.Sprintf("%d of %d hosts are being taken back by the cloud", len(out.Requests), t.hosts)
	if t.unknown > 0 {
		out.Message += fmt.Sprintf("; %d hosts are not known to ohfpd", t.unknown)
	}
	return out
}

// sortedRequests returns requests in creation order. Called with e.mu held.
func (e *Engine) sortedRequests(all bool) []*domain.Request {
	out := make([]*domain.Request, 0, len(e.requests))
	for _, r := range e.requests {
		if all || !r.Final() {
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
