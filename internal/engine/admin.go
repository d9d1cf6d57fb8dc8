package engine

import (
	"fmt"
	"sort"
	"time"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/hf"
)

// NotFoundError is an id the daemon does not hold.
type NotFoundError struct{ What, ID string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s %s is not known to ohfpd", e.What, e.ID)
}

// MachineCount returns the number of machines held (in any state).
func (e *Engine) MachineCount() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.machines)
}

// StatusReport summarises the engine's state.
func (e *Engine) StatusReport() apitype.Status {
	now := e.clk.Now()
	e.mu.RLock()
	defer e.mu.RUnlock()
	rep := apitype.Status{
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

// ListRequests lists requests in creation order: unfinished ones, or all.
func (e *Engine) ListRequests(all bool) []apitype.RequestRow {
	e.mu.RLock()
	defer e.mu.RUnlock()
	rs := e.sortedRequests(all)
	out := make([]apitype.RequestRow, 0, len(rs))
	for _, r := range rs {
		st, msg := e.statusLocked(r)
		out = append(out, apitype.RequestRow{ID: r.ID, Kind: r.Kind, Provider: r.Provider, TemplateID: r.TemplateID,
			Units: r.Units, Machines: len(r.MachineIDs), Status: st, Message: msg, Created: r.CreatedAt})
	}
	return out
}

// ListMachines lists the machines of one request, or every live machine
// (all: ended ones too).
func (e *Engine) ListMachines(requestID string, all bool) ([]apitype.MachineRow, error) {
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
func (e *Engine) Show(id string) (apitype.Shown, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if r := e.requests[id]; r != nil {
		st := e.requestStatusLocked(id)
		return apitype.Shown{Request: shownRequest(r), Status: &st}, nil
	}
	if m := e.lookupLocked(hf.MachineRef{MachineID: id, Name: id}); m != nil {
		return apitype.Shown{Machine: shownMachine(m)}, nil
	}
	return apitype.Shown{}, &NotFoundError{What: "request or machine", ID: id}
}

func shownRequest(r *domain.Request) *apitype.Request {
	return &apitype.Request{
		ID: r.ID, Kind: r.Kind, Provider: r.Provider, TemplateID: r.TemplateID, Units: r.Units, CreatedAt: r.CreatedAt,
		ClientToken: r.ClientToken, Phase: r.Phase, Attempts: r.Attempts, NextAttempt: r.NextAttempt,
		Handle: r.Handle, HandleCapped: r.HandleCapped, HandleDeleted: r.HandleDeleted, FallbackUnits: r.FallbackUnits,
		Pool: r.Pool, LaunchError: r.LaunchError, Shortfall: r.Shortfall, RetryNote: r.RetryNote, Rebuilt: r.Rebuilt,
		MachineIDs: append([]string(nil), r.MachineIDs...), Unknown: append([]string(nil), r.Unknown...),
		TerminateSent: r.TerminateSent, AwaitingClaim: r.AwaitingClaim, Unclaimed: r.Unclaimed,
		Status: r.Status, Message: r.Message, FinishedAt: r.FinishedAt,
	}
}

func shownMachine(m *domain.Machine) *apitype.Machine {
	return &apitype.Machine{
		ID: m.ID, RequestID: m.RequestID, ReturnID: m.ReturnID, Provider: m.Provider, TemplateID: m.TemplateID,
		Name: m.Name, PrivateIP: m.PrivateIP, PublicIP: m.PublicIP, State: m.State, StateReason: m.StateReason,
		InstanceType: m.InstanceType, Spot: m.Spot, SpotRequest: m.SpotRequest, Weight: m.Weight, LaunchTime: m.LaunchTime,
		Tags: m.Tags, Result: m.Result, Message: m.Message, Doomed: m.Doomed, TerminateSent: m.TerminateSent,
		Handle: m.Handle, CapacityReleased: m.CapacityReleased, ReclaimedAt: m.ReclaimedAt, InterruptAt: m.InterruptAt,
		LastSeen: m.LastSeen, EndedAt: m.EndedAt,
	}
}
