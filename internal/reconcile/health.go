package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/state"
)

// checkHealth asks the cloud, once per idle interval, which running
// instances have a scheduled event (retirement, reboot, maintenance,
// stop) and, with StatusCheckGrace set, which fail a status check, and
// asks HF to drain those of provider p (getReturnRequests, with the
// reason in its message): HF moves their work before the cloud or the
// broken host fails it. A machine once reported stays reported.
func (rc *Reconciler) checkHealth(ctx context.Context, p *state.Provider, now time.Time) {
	hc, ok := p.Cfg.Cloud.(provider.HealthChecker)
	if !ok || !p.Cfg.HealthChecks {
		return
	}
	if !p.LastHealth.IsZero() && now.Sub(p.LastHealth) < rc.st.Opts.IdleInterval {
		return
	}
	statusChecks := p.Cfg.StatusCheckGrace > 0
	hs, err := hc.InstanceHealth(ctx, statusChecks)
	if err != nil {
		rc.st.Log.Warn("reconcile: describing instance status failed; trying again next pass", "provider", p.Cfg.Name, "err", err)
		return
	}
	p.LastHealth = now
	if rc.impaired == nil {
		rc.impaired = map[string]time.Time{}
	}
	impairedNow := map[string]bool{}
	rc.st.Mu.Lock()
	defer rc.st.Mu.Unlock()
	var changed []*domain.Machine
	for _, h := range hs {
		m := rc.st.Machines[h.ID]
		if m == nil || m.Provider != p.Cfg.Name || !m.Live() {
			continue
		}
		drained := false
		for _, e := range h.Scheduled {
			if rc.drainScheduledLocked(m, e, now, "DescribeInstanceStatus") {
				drained = true
				break
			}
		}
		if !drained && statusChecks && (h.InstanceImpaired || h.SystemImpaired) {
			impairedNow[h.ID] = true
			since := h.ImpairedSince
			if first, ok := rc.impaired[h.ID]; since.IsZero() || ok && first.Before(since) {
				if !ok {
					first = now
				}
				since = first
			}
			rc.impaired[h.ID] = since
			if now.Sub(since) >= p.Cfg.StatusCheckGrace {
				which := "instance"
				if h.SystemImpaired {
					which = "system"
					if h.InstanceImpaired {
						which = "instance and system"
					}
				}
				reason := fmt.Sprintf("EC2 %s status check failing since %s (over health_check_grace %s)", which, since.UTC().Format(time.RFC3339), p.Cfg.StatusCheckGrace)
				if m.Drain(now, now, reason) {
					drained = true
					rc.st.Log.Warn("status check failing: HF is asked to drain the machine", "instance", m.ID, "request", m.RequestID, "check", which, "since", since)
				}
			}
		}
		if drained {
			changed = append(changed, m)
		}
	}
	for id := range rc.impaired {
		if !impairedNow[id] {
			delete(rc.impaired, id) // passed again, or gone
		}
	}
	if len(changed) > 0 {
		if err := rc.st.PersistReleasing(nil, changed); err != nil {
			rc.st.Log.Error("reconcile: persist drains", "err", err)
		}
	}
}
