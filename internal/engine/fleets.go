package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// job is one cloud call the provisioner makes for machines: terminate them
// (plain instances), release them from their fleet or group (capacity
// first, then terminate), or only lower a fleet's capacity for machines the
// cloud took back.
type job struct {
	provider string
	handle   string   // "" for plain instances
	ids      []string // machines to terminate
	release  []string // machines whose capacity is released without terminating
	units    int      // capacity to lower (handles only)
}

// dueJobsLocked lists the cloud work machines need. Called with e.mu held.
func (e *Engine) dueJobsLocked() []job {
	jobs := map[string]*job{}
	add := func(m *domain.Machine) *job {
		handle := ""
		if m.Handle != "" {
			if _, ok := e.fleetsOf(m.Provider); ok {
				handle = m.Handle
			}
		}
		k := m.Provider + "/" + handle
		j := jobs[k]
		if j == nil {
			j = &job{provider: m.Provider, handle: handle}
			jobs[k] = j
		}
		e.termInflight[m.ID] = true
		return j
	}
	for _, m := range e.machines {
		if e.termInflight[m.ID] {
			continue
		}
		switch {
		case m.WantsTermination():
			j := add(m)
			j.ids = append(j.ids, m.ID)
			if !m.CapacityReleased {
				j.units += max(m.Weight, 1)
			}
		case m.WantsCapacityRelease():
			if _, ok := e.fleetsOf(m.Provider); !ok {
				continue
			}
			j := add(m)
			j.release = append(j.release, m.ID)
			j.units += max(m.Weight, 1)
		}
	}
	out := make([]job, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, *j)
	}
	return out
}

// fleetsOf returns the provider's Fleets side, if it has one. Called with
// e.mu held.
func (e *Engine) fleetsOf(name string) (provider.Fleets, bool) {
	p := e.providers[name]
	if p == nil {
		return nil, false
	}
	f, ok := p.cfg.Cloud.(provider.Fleets)
	return f, ok
}

// runJob makes a job's cloud call and records its outcome.
func (e *Engine) runJob(ctx context.Context, j job) {
	all := append(append([]string(nil), j.ids...), j.release...)
	defer func() {
		e.mu.Lock()
		for _, id := range all {
			delete(e.termInflight, id)
		}
		e.mu.Unlock()
	}()
	e.mu.RLock()
	p := e.providers[j.provider]
	fl, hasFleets := e.fleetsOf(j.provider)
	e.mu.RUnlock()
	if p == nil {
		e.log.Error("cannot terminate: provider no longer configured", "provider", j.provider, "instances", len(all))
		return
	}
	var err error
	switch {
	case j.handle != "" && hasFleets:
		err = fl.Release(ctx, j.handle, j.ids, j.units)
	case len(j.ids) > 0:
		err = p.cfg.Cloud.Terminate(ctx, j.ids)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.health.TerminateCalls++
	if err != nil {
		e.log.Warn("terminate failed; will retry", "provider", j.provider, "handle", j.handle, "instances", len(all), "err", err)
		if provider.Retryable(err) {
			e.health.CloudNote = "AWS throttling or failing on termination; retrying"
		}
		return
	}
	var changed []*domain.Machine
	reqs := map[string]*domain.Request{}
	for _, id := range all {
		m := e.machines[id]
		if m == nil {
			continue
		}
		if j.handle != "" {
			m.CapacityReleased = true
		}
		changed = append(changed, m)
	}
	for _, id := range j.ids {
		m := e.machines[id]
		if m == nil {
			continue
		}
		m.TerminateSent = true
		if m.State == domain.StateRunning || m.State == domain.StatePending || m.State == domain.StateStopped || m.State == domain.StateStopping {
			m.State = domain.StateShuttingDown
		}
		if r := e.requests[m.ReturnID]; r != nil && !r.TerminateSent {
			r.TerminateSent = true
			reqs[r.ID] = r
		}
	}
	if err := e.persist(values(reqs), changed); err != nil {
		e.log.Error("persist terminations", "err", err)
	}
	e.log.Info("terminated", "provider", j.provider, "handle", j.handle, "instances", len(j.ids), "capacity_released", j.units)
	e.kick(e.wakeReconcile)
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
func (e *Engine) reconcileFleets(ctx context.Context, p *prov) {
	fl, ok := p.cfg.Cloud.(provider.Fleets)
	if !ok {
		return
	}
	now := e.clk.Now()
	var poll []string
	var del []string
	e.mu.RLock()
	for _, r := range e.requests {
		if r.Kind != domain.KindAcquire || r.Provider != p.cfg.Name || r.Handle == "" || r.HandleDeleted {
			continue
		}
		if !r.Final() && !r.HandleCapped {
			poll = append(poll, r.Handle)
			continue
		}
		if r.Final() && e.allEndedLocked(r) {
			del = append(del, r.Handle)
		}
	}
	e.mu.RUnlock()

	if len(poll) > 0 {
		sts, err := fl.Poll(ctx, poll)
		if err != nil {
			e.log.Warn("reconcile: polling fleets failed", "provider", p.cfg.Name, "fleets", len(poll), "err", err)
		} else {
			e.judgeFleets(ctx, p, fl, sts, now)
		}
	}
	for _, h := range del {
		if err := fl.Delete(ctx, h); err != nil {
			e.log.Warn("deleting fleet failed; will retry", "handle", h, "err", err)
			continue
		}
		e.mu.Lock()
		var changed []*domain.Request
		for _, r := range e.requests {
			if r.Handle == h && !r.HandleDeleted {
				r.HandleDeleted = true
				changed = append(changed, r)
			}
		}
		if err := e.persist(changed, nil); err != nil {
			e.log.Error("persist fleet deletion", "err", err)
		}
		e.mu.Unlock()
		e.log.Info("fleet deleted: all its machines are gone", "handle", h)
	}
}

// allEndedLocked reports whether none of r's machines is still live.
func (e *Engine) allEndedLocked(r *domain.Request) bool {
	for _, id := range r.MachineIDs {
		if m := e.machines[id]; m != nil && m.Live() {
			return false
		}
	}
	return true
}

func (e *Engine) judgeFleets(ctx context.Context, p *prov, fl provider.Fleets, sts map[string]provider.FleetStatus, now time.Time) {
	type capJob struct {
		r    *domain.Request
		keep int
		why  string
	}
	var caps []capJob
	e.mu.Lock()
	for _, r := range e.requests {
		st, ok := sts[r.Handle]
		if !ok || r.Final() || r.HandleCapped || r.Provider != p.cfg.Name {
			continue
		}
		units, executing := e.unitsLocked(r)
		if units >= r.Units {
			continue
		}
		tpl := p.templates[r.TemplateID]
		errs := strings.Join(st.Errors, "; ")
		var why string
		switch {
		case st.Gone:
			why = fmt.Sprintf("%s no longer exists in the cloud", r.Handle)
		case now.Sub(r.CreatedAt) > expiryOf(tpl):
			why = fmt.Sprintf("%s did not reach its target within %s", r.Handle, expiryOf(tpl))
		case st.Closed && executing == 0:
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
	e.mu.Unlock()

	for _, c := range caps {
		if err := fl.Cap(ctx, c.r.Handle, c.keep); err != nil && provider.Retryable(err) {
			e.log.Warn("capping fleet failed; will retry", "handle", c.r.Handle, "err", err)
			continue
		}
		e.mu.Lock()
		r := c.r
		r.HandleCapped = true
		tpl := p.templates[r.TemplateID]
		fallback := false
		if tpl != nil {
			_, fallback = provider.PlannerOf(p.cfg.Cloud).Fallback(provider.LaunchSpec{Template: *tpl})
		}
		if fallback && r.FallbackUnits == 0 {
			// The provider asks the rest another way (AWS: IBM's
			// heterogeneous, what Spot did not fill on-demand).
			r.FallbackUnits = r.Units - c.keep
			r.Phase = domain.PhaseQueued
			r.NextAttempt = time.Time{}
			e.log.Info("Spot fell short; asking the rest on-demand", "request", r.ID, "units", r.FallbackUnits, "why", c.why)
		} else {
			r.Shortfall = c.why
			e.log.Warn("fleet fell short; request ends with what arrived", "request", r.ID, "units", c.keep, "asked", r.Units, "why", c.why)
		}
		if err := e.persist([]*domain.Request{r}, nil); err != nil {
			e.log.Error("persist fleet cap", "err", err)
		}
		e.mu.Unlock()
		e.kick(e.wakeLaunch)
	}
}

// unitsLocked counts r's units that arrived (live, not failed) and its
// machines still starting.
func (e *Engine) unitsLocked(r *domain.Request) (units, executing int) {
	for _, id := range r.MachineIDs {
		m := e.machines[id]
		if m == nil {
			continue
		}
		if m.Result == domain.ResultExecuting {
			executing++
		}
		if m.Held() {
			units += max(m.Weight, 1)
		}
	}
	return units, executing
}
