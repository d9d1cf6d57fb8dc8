package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/state"
)

// The event queue: cloud events (AWS: EventBridge into SQS) read beside
// the passes. An event only brings forward what a pass would find later:
// an interruption notice (checkSpot), a machine ended outside HF (the
// listing), a scheduled event (checkHealth). With the queue lost or
// lagging, the passes find the same, later. Nothing here terminates a
// machine.

// QueueWait is the long poll of one receive: SQS's longest.
const QueueWait = 20 * time.Second

// RebalanceGrace is the grace HF is given for a rebalance recommendation:
// an interruption, should one follow, comes with at least a two-minute
// notice after it.
const RebalanceGrace = domain.GraceSeconds * time.Second

// RunEvents long-polls each provider's event queue until ctx ends, one
// poller per provider with EventQueue set; a reload that changes a
// provider's queue or cloud restarts its poller.
func (rc *Reconciler) RunEvents(ctx context.Context) {
	type poller struct {
		queue  string
		cloud  provider.Provider
		cancel context.CancelFunc
		done   chan struct{}
	}
	running := map[string]*poller{}
	defer func() {
		for _, p := range running {
			p.cancel()
			<-p.done
		}
	}()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		want := map[string]bool{}
		for _, p := range rc.st.ProvidersInOrder() {
			name, q, cloud := p.Cfg.Name, p.Cfg.EventQueue, p.Cfg.Cloud
			if _, ok := cloud.(provider.Events); !ok || q == "" {
				continue
			}
			want[name] = true
			if old := running[name]; old != nil {
				if old.queue == q && old.cloud == cloud {
					continue
				}
				old.cancel()
				<-old.done
			}
			pctx, cancel := context.WithCancel(ctx)
			pl := &poller{queue: q, cloud: cloud, cancel: cancel, done: make(chan struct{})}
			running[name] = pl
			go func() {
				defer close(pl.done)
				rc.pollQueue(pctx, name, q, cloud.(provider.Events))
			}()
		}
		for name, p := range running {
			if !want[name] {
				p.cancel()
				<-p.done
				delete(running, name)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pollQueue receives from one provider's queue until ctx ends, backing
// off (1 s doubling to a minute) while the queue fails.
func (rc *Reconciler) pollQueue(ctx context.Context, name, queue string, ev provider.Events) {
	rc.st.Log.Info("event queue: listening", "provider", name, "queue", queue)
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		msgs, err := ev.ReceiveEvents(ctx, queue, QueueWait)
		if err == nil && len(msgs) > 0 {
			var handles []string
			handles, err = rc.ApplyMessages(name, msgs)
			if err == nil && len(handles) > 0 {
				err = ev.AckEvents(ctx, queue, handles)
			}
		}
		if ctx.Err() != nil || err == provider.ErrReplaced {
			return // a reload replaced the provider: its successor polls
		}
		failed := rc.noteQueue(name, queue, err)
		if err == nil {
			if backoff > 0 {
				rc.st.Log.Info("event queue: reachable again", "provider", name, "queue", queue)
			}
			backoff = 0
			continue
		}
		if failed == 1 {
			rc.st.Log.Warn("event queue: failing; the reconcile passes still find every event, later (Spot notices every pass, the rest within the idle interval)",
				"provider", name, "queue", queue, "err", err)
		} else {
			rc.st.Log.Debug("event queue: still failing", "provider", name, "queue", queue, "err", err)
		}
		backoff = min(max(2*backoff, time.Second), time.Minute)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// noteQueue records the outcome of one round with the queue and returns
// how many rounds in a row have failed.
func (rc *Reconciler) noteQueue(name, queue string, err error) int {
	rc.st.Mu.Lock()
	defer rc.st.Mu.Unlock()
	es := rc.statsLocked(name, queue)
	if rc.failing == nil {
		rc.failing = map[string]int{}
	}
	if err == nil {
		es.LastError = ""
		rc.failing[name] = 0
		return 0
	}
	es.Errors++
	es.LastError = err.Error()
	rc.failing[name]++
	return rc.failing[name]
}

// statsLocked returns provider name's queue figures. Called with the
// state's Mu held.
func (rc *Reconciler) statsLocked(name, queue string) *state.EventStats {
	if rc.st.Health.Events == nil {
		rc.st.Health.Events = map[string]*state.EventStats{}
	}
	es := rc.st.Health.Events[name]
	if es == nil {
		es = &state.EventStats{}
		rc.st.Health.Events[name] = es
	}
	es.Queue = queue
	return es
}

// ApplyMessages folds the events of messages received from provider
// name's queue into memory, persists what changed, and returns the
// handles of the messages to delete: every one, malformed and foreign
// ones included (each logged and counted), once what they changed is on
// disk.
func (rc *Reconciler) ApplyMessages(name string, msgs []provider.Message) (handles []string, err error) {
	// A state change is only a hint: EC2 is asked (DescribeInstances by
	// id) before a machine is taken as stopped or gone, so that a stale,
	// duplicated or forged event never ends a host HF uses.
	confirmed := rc.confirmStates(name, msgs)
	now := rc.st.Clock.Now()
	rc.st.Mu.Lock()
	defer rc.st.Mu.Unlock()
	p := rc.st.Providers[name]
	if p == nil {
		return nil, fmt.Errorf("provider %s is gone", name)
	}
	es := rc.statsLocked(name, p.Cfg.EventQueue)
	var changed []*domain.Machine
	for _, msg := range msgs {
		es.Received++
		es.LastAt = now
		handles = append(handles, msg.Handle)
		switch msg.Problem {
		case "malformed":
			es.Malformed++
			rc.st.Log.Warn("event queue: malformed message deleted", "provider", name, "message", msg.ID, "why", msg.Detail)
			continue
		case "foreign":
			es.Foreign++
			rc.st.Log.Info("event queue: message ohfp does not act on deleted", "provider", name, "message", msg.ID, "why", msg.Detail)
			continue
		}
		for _, ev := range msg.Events {
			n := 0
			for _, id := range ev.InstanceIDs {
				m := rc.st.Machines[id]
				if m == nil || m.Provider != name {
					continue
				}
				n++
				if !ev.Time.IsZero() && !m.LaunchTime.IsZero() && ev.Time.Before(m.LaunchTime.Add(-time.Minute)) {
					rc.st.Log.Info("event queue: event older than the instance ignored", "instance", id, "event", ev.Kind, "event_time", ev.Time)
					continue
				}
				if ev.Kind == provider.EventStateChange {
					in, ok := confirmed[id]
					if !ok {
						continue // EC2 did not confirm it (yet): the passes will see
					}
					before := *m
					if m.Observe(state.Observation(in), now) {
						rc.logOutsideHF(&before, m)
						changed = append(changed, m)
						es.Applied++
					}
					continue
				}
				if rc.applyEventLocked(p, m, ev, now) {
					changed = append(changed, m)
					es.Applied++
				}
			}
			if n == 0 {
				es.Foreign++ // an instance of the account that is not ohfp's
			}
		}
	}
	if len(changed) > 0 {
		// Written outside the lock (the events are the cloud's facts); the
		// messages are deleted from the queue only once it is done.
		if err := rc.st.PersistReleasing(nil, changed); err != nil {
			return nil, err
		}
		rc.st.KickLaunch() // fleets and groups lower their capacity for hosts taken back
	}
	return handles, nil
}

// applyEventLocked applies one event to machine m and reports whether it
// changed. Called with the state's Mu held.
func (rc *Reconciler) applyEventLocked(p *state.Provider, m *domain.Machine, ev provider.Event, now time.Time) bool {
	at := ev.Time
	if at.IsZero() || at.After(now) {
		at = now
	}
	switch ev.Kind {
	case provider.EventInterruption:
		if !m.Live() || !m.InterruptAt.IsZero() || m.ReturnID != "" {
			return false
		}
		if !m.Spot {
			// EC2 interrupts Spot Instances only.
			rc.st.Log.Warn("event queue: Spot interruption warning for an on-demand machine ignored", "instance", m.ID)
			return false
		}
		if now.Sub(at) > staleInterruption {
			// A real notice acts within two minutes: the machine still
			// running this long after says the notice is stale (or not
			// EC2's); the passes see a real interruption.
			rc.st.Log.Warn("event queue: stale Spot interruption warning ignored", "instance", m.ID, "event_time", at)
			return false
		}
		m.InterruptAt = at
		left := domain.GraceSeconds - int(now.Sub(at)/time.Second)
		rc.st.Log.Warn("Spot interruption notice (event queue): the cloud takes the machine back",
			"instance", m.ID, "request", m.RequestID, "action", orText(ev.Action, "terminate"), "grace_seconds", max(left, 0))
		return true
	case provider.EventRebalance:
		if !p.Cfg.RebalanceAsReclaim {
			return false
		}
		if m.Drain(at, at.Add(RebalanceGrace), "EC2 rebalance recommendation: the Spot instance is at elevated risk of interruption") {
			rc.st.Log.Warn("rebalance recommendation (event queue): reported to HF as taken back", "instance", m.ID, "request", m.RequestID)
			return true
		}
		return false
	case provider.EventScheduled:
		if !p.Cfg.HealthChecks {
			return false
		}
		return rc.drainScheduledLocked(m, provider.ScheduledEvent{Code: ev.Code, NotBefore: ev.NotBefore, Description: ev.Description}, now, "event queue")
	}
	return false
}

// staleInterruption: a Spot interruption warning older than this, for a
// machine still running, is not acted on (EC2 acts two minutes after it).
const staleInterruption = 5 * time.Minute

// confirmStates asks EC2 (by instance id) about the machines that state
// change events of msgs name, and returns what it answers, by id. A
// failed call confirms nothing: the passes see what happened.
func (rc *Reconciler) confirmStates(name string, msgs []provider.Message) map[string]provider.Instance {
	rc.st.Mu.RLock()
	p := rc.st.Providers[name]
	var ids []string
	for _, msg := range msgs {
		for _, ev := range msg.Events {
			if ev.Kind != provider.EventStateChange {
				continue
			}
			for _, id := range ev.InstanceIDs {
				if m := rc.st.Machines[id]; m != nil && m.Provider == name && forward(m.State, ev.State) {
					ids = append(ids, id)
				}
			}
		}
	}
	rc.st.Mu.RUnlock()
	if p == nil || len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), LookupTimeout)
	defer cancel()
	insts, err := p.Cfg.Cloud.Describe(ctx, rc.st.Opts.ClusterID, ids, nil)
	if err != nil {
		rc.st.Log.Warn("event queue: confirming state changes with EC2 failed; the passes will see them", "instances", len(ids), "err", err)
		return nil
	}
	out := make(map[string]provider.Instance, len(insts))
	for _, in := range insts {
		out[in.ID] = in
	}
	return out
}

// forward reports whether an instance in state from can move to state to:
// state-change events may arrive late, twice or out of order, and only
// ever move a machine on towards its end.
func forward(from domain.State, to provider.State) bool {
	rank := map[domain.State]int{
		domain.StatePending: 0, domain.StateRunning: 1, domain.StateStopping: 2, domain.StateStopped: 3,
		domain.StateShuttingDown: 4, domain.StateTerminated: 5,
	}
	f, ok1 := rank[from]
	t, ok2 := rank[domain.State(to)]
	return ok1 && ok2 && t > f && t >= 2
}

// drainScheduledLocked drains m for a scheduled event; source says where
// it was seen. Called with the state's Mu held.
func (rc *Reconciler) drainScheduledLocked(m *domain.Machine, e provider.ScheduledEvent, now time.Time, source string) bool {
	by := e.NotBefore
	if by.IsZero() || by.Before(now) {
		by = now
	}
	reason := "EC2 scheduled " + orText(e.Code, "event")
	if !e.NotBefore.IsZero() {
		reason += " from " + e.NotBefore.UTC().Format(time.RFC3339)
	}
	if e.Description != "" {
		reason += ": " + e.Description
	}
	if !m.Drain(now, by, reason) {
		return false
	}
	rc.st.Log.Warn("scheduled event: HF is asked to drain the machine", "instance", m.ID, "request", m.RequestID, "seen", source, "event", e.Code, "notBefore", e.NotBefore)
	return true
}
