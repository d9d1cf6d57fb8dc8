package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/rpc"
)

// Handler serves the engine over rpc: the five HF operations and the
// sysadmin's read methods.
type Handler struct {
	E *Engine
	// Reload, when set, re-reads the configuration (ohfp config reload).
	Reload func(ctx context.Context) error
	// Status, when set, adds daemon-level facts (version, AWS health) to the
	// status answer.
	Status func(*StatusReport)
}

// Call implements rpcserver.Handler.
func (h *Handler) Call(ctx context.Context, method string, p rpc.Params) (any, error) {
	env := Env(p.Env)
	var (
		out any
		err error
	)
	switch method {
	case hf.OpGetAvailableTemplates:
		out, err = h.E.GetAvailableTemplates(env, inputOr(p.Input))
	case hf.OpRequestMachines:
		// Nothing launches until the answer is out to HF: a request whose
		// answer could not be delivered is cancelled (see RequestMachinesHeld).
		var delivered func(bool)
		out, delivered, err = h.E.RequestMachinesHeld(env, p.Input)
		if err == nil {
			rpc.AfterAnswer(ctx, delivered)
		}
	case hf.OpGetRequestStatus:
		out, err = h.E.GetRequestStatus(env, p.Input)
	case hf.OpRequestReturnMachines:
		out, err = h.E.RequestReturnMachines(env, p.Input)
	case hf.OpGetReturnRequests:
		out, err = h.E.GetReturnRequests(env, p.Input)
	case "status":
		rep := h.E.StatusReport()
		if h.Status != nil {
			h.Status(&rep)
		}
		out = rep
	case "requests":
		var a struct {
			All bool `json:"all"`
		}
		if err := decodeArgs(p.Args, &a); err != nil {
			return nil, err
		}
		out = h.E.ListRequests(a.All)
	case "machines":
		var a struct {
			Request string `json:"request"`
			All     bool   `json:"all"`
		}
		if err := decodeArgs(p.Args, &a); err != nil {
			return nil, err
		}
		out, err = h.E.ListMachines(a.Request, a.All)
	case "show":
		var a struct {
			ID string `json:"id"`
		}
		if err := decodeArgs(p.Args, &a); err != nil {
			return nil, err
		}
		out, err = h.E.Show(a.ID)
	case "reload":
		if h.Reload == nil {
			return nil, rpc.Errorf(rpc.Unavailable, "reload is not available in this mode")
		}
		if err := h.Reload(ctx); err != nil {
			return nil, rpc.Errorf(rpc.InvalidInput, "the new configuration was refused and the old one stays in force: %v", err)
		}
		out = map[string]string{"message": "configuration reloaded"}
	default:
		return nil, rpc.Errorf(rpc.MethodNotFound, "unknown operation %q: HF operations are %v", method, hf.Operations)
	}
	if err != nil {
		return nil, toRPC(err)
	}
	return out, nil
}

func inputOr(b json.RawMessage) []byte {
	if len(b) == 0 {
		return []byte(`{}`)
	}
	return b
}

func decodeArgs(b json.RawMessage, v any) error {
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return rpc.Errorf(rpc.InvalidInput, "bad arguments: %v", err)
	}
	return nil
}

func toRPC(err error) error {
	var ie *hf.InputError
	var se *StoreError
	var nf *NotFoundError
	switch {
	case errors.As(err, &ie):
		return rpc.Errorf(rpc.InvalidInput, "%s", ie.Error())
	case errors.As(err, &se):
		return rpc.Errorf(rpc.Unavailable, "%s", se.Error())
	case errors.As(err, &nf):
		return rpc.Errorf(rpc.NotFound, "%s", nf.Error())
	}
	var re *rpc.Error
	if errors.As(err, &re) {
		return re
	}
	return rpc.Errorf(rpc.Internal, "internal error: %v", err)
}

// NotFoundError is an id the daemon does not hold.
type NotFoundError struct{ What, ID string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s %s is not known to ohfpd", e.What, e.ID)
}

// StatusReport is what `ohfp status` shows.
type StatusReport struct {
	Version            string         `json:"version"`
	Started            time.Time      `json:"started"`
	UptimeSeconds      int64          `json:"uptimeSeconds"`
	ClusterID          string         `json:"clusterId"`
	Providers          []string       `json:"providers"`
	Requests           map[string]int `json:"requests"` // by status
	Machines           map[string]int `json:"machines"` // by cloud state
	InFlight           int            `json:"inFlight"` // requests not final
	LastReconcile      time.Time      `json:"lastReconcile,omitzero"`
	LastReconcileMs    int64          `json:"lastReconcileMs"`
	LastReconcileError string         `json:"lastReconcileError,omitempty"`
	Reconciles         int            `json:"reconciles"`
	Listings           int            `json:"listings"` // full listings (everything with ohfp's tag)
	LastListing        time.Time      `json:"lastListing,omitzero"`
	LastListingMs      int64          `json:"lastListingMs"`
	ActiveIntervalMs   int64          `json:"activeIntervalMs"` // reconcile delay while busy
	IdleIntervalMs     int64          `json:"idleIntervalMs"`   // reconcile delay when idle
	CloudNote          string         `json:"cloudNote,omitempty"`
	AWS                map[string]any `json:"aws,omitempty"` // per provider, filled by the daemon
}

// MachineCount returns the number of machines held (in any state).
func (e *Engine) MachineCount() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.machines)
}

// StatusReport summarises the engine's state.
func (e *Engine) StatusReport() StatusReport {
	now := e.clk.Now()
	e.mu.RLock()
	defer e.mu.RUnlock()
	rep := StatusReport{
		Version:            e.opts.Version,
		Started:            e.started,
		UptimeSeconds:      int64(now.Sub(e.started) / time.Second),
		ClusterID:          e.opts.ClusterID,
		Providers:          append([]string(nil), e.order...),
		Requests:           map[string]int{},
		Machines:           map[string]int{},
		LastReconcile:      e.health.LastReconcile,
		LastReconcileMs:    e.health.LastReconcileTook.Milliseconds(),
		LastReconcileError: e.health.LastReconcileError,
		Reconciles:         e.health.Reconciles,
		Listings:           e.health.Listings,
		LastListing:        e.health.LastListing,
		LastListingMs:      e.health.LastListingTook.Milliseconds(),
		ActiveIntervalMs:   e.opts.ActiveInterval.Milliseconds(),
		IdleIntervalMs:     e.opts.IdleInterval.Milliseconds(),
		CloudNote:          e.health.CloudNote,
	}
	for _, r := range e.requests {
		st, _ := e.statusLocked(r)
		rep.Requests[r.Kind+" "+st]++
		if !r.Final() {
			rep.InFlight++
		}
	}
	for _, m := range e.machines {
		rep.Machines[m.State]++
	}
	return rep
}

// RequestRow is one line of `ohfp requests`.
type RequestRow struct {
	ID         string    `json:"requestId"`
	Kind       string    `json:"kind"`
	Provider   string    `json:"provider"`
	TemplateID string    `json:"templateId,omitempty"`
	Units      int       `json:"units,omitempty"`
	Machines   int       `json:"machines"`
	Status     string    `json:"status"`
	Message    string    `json:"message"`
	Created    time.Time `json:"created"`
}

// ListRequests lists requests in creation order: unfinished ones, or all.
func (e *Engine) ListRequests(all bool) []RequestRow {
	e.mu.RLock()
	defer e.mu.RUnlock()
	rs := e.sortedRequests(all)
	out := make([]RequestRow, 0, len(rs))
	for _, r := range rs {
		st, msg := e.statusLocked(r)
		out = append(out, RequestRow{ID: r.ID, Kind: r.Kind, Provider: r.Provider, TemplateID: r.TemplateID,
			Units: r.Units, Machines: len(r.MachineIDs), Status: st, Message: msg, Created: r.CreatedAt})
	}
	return out
}

// MachineRow is one line of `ohfp machines`.
type MachineRow struct {
	hf.Machine
	RequestID  string `json:"requestId"`
	ReturnID   string `json:"returnId,omitempty"`
	TemplateID string `json:"templateId"`
	Weight     int    `json:"weight"`
}

// ListMachines lists the machines of one request, or every live machine
// (all: ended ones too).
func (e *Engine) ListMachines(requestID string, all bool) ([]MachineRow, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	var ms []*domain.Machine
	if requestID != "" {
		r := e.requests[requestID]
		if r == nil {
			return nil, &NotFoundError{What: "request", ID: requestID}
		}
		ms = e.machinesOf(r)
	} else {
		for _, m := range e.machines {
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
	out := make([]MachineRow, 0, len(ms))
	for _, m := range ms {
		if m == nil {
			continue
		}
		out = append(out, MachineRow{Machine: hfMachine(m), RequestID: m.RequestID, ReturnID: m.ReturnID, TemplateID: m.TemplateID, Weight: max(m.Weight, 1)})
	}
	return out, nil
}

// Shown is `ohfp show ID`: a request with its machines, or one machine.
type Shown struct {
	Request *domain.Request   `json:"request,omitempty"`
	Status  *hf.RequestStatus `json:"status,omitempty"`
	Machine *domain.Machine   `json:"machine,omitempty"`
}

// Show returns everything ohfpd holds about a request or machine id (or a
// host name).
func (e *Engine) Show(id string) (Shown, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if r := e.requests[id]; r != nil {
		cp := *r
		st := e.requestStatusLocked(id)
		return Shown{Request: &cp, Status: &st}, nil
	}
	if m := e.lookupLocked(hf.MachineRef{MachineID: id, Name: id}); m != nil {
		cp := *m
		return Shown{Machine: &cp}, nil
	}
	return Shown{}, &NotFoundError{What: "request or machine", ID: id}
}
