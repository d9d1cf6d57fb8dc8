package provision

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/provider"
)

// tagIDBatch bounds how many instances one id-tagging job names.
const tagIDBatch = 100

// tagJob is one provider's instances to tag with their own ids.
type tagJob struct {
	provider string
	ids      []string
}

// dueTagJobsLocked lists the running machines of providers with
// TagInstanceID that do not yet carry their id tag (IBM's plugin tags a
// host once it runs: its volumes are attached by then), and marks them in
// flight. Called with the state's Mu held.
func (pv *Provisioner) dueTagJobsLocked() []tagJob {
	for id := range pv.st.TagRetry {
		if m := pv.st.Machines[id]; m == nil || m.State != domain.StateRunning {
			delete(pv.st.TagRetry, id) // ended before EC2 showed it: nothing to tag
		}
	}
	tagging := map[string]bool{}
	for name, p := range pv.st.Providers {
		if _, ok := p.Cfg.Cloud.(provider.IDTagger); ok && p.Cfg.TagInstanceID {
			tagging[name] = true
		}
	}
	if len(tagging) == 0 {
		return nil
	}
	now := pv.st.Clock.Now()
	by := map[string][]string{}
	for _, m := range pv.st.Machines {
		if m.IDTagged || m.State != domain.StateRunning || m.ReturnID != "" || m.Doomed || !tagging[m.Provider] ||
			pv.st.TagInflight[m.ID] || pv.st.TagRetry[m.ID].At.After(now) {
			continue
		}
		by[m.Provider] = append(by[m.Provider], m.ID)
	}
	var jobs []tagJob
	for _, name := range slices.Sorted(maps.Keys(by)) {
		ids := by[name]
		slices.Sort(ids)
		for batch := range slices.Chunk(ids, tagIDBatch) {
			for _, id := range batch {
				pv.st.TagInflight[id] = true
			}
			jobs = append(jobs, tagJob{provider: name, ids: batch})
		}
	}
	return jobs
}

// runTagJob tags a job's instances and records which are done. Instances
// the cloud does not show yet (eventual consistency) back off and are
// asked again; so does the whole job after another error.
func (pv *Provisioner) runTagJob(ctx context.Context, j tagJob) {
	defer func() {
		pv.st.Mu.Lock()
		for _, id := range j.ids {
			delete(pv.st.TagInflight, id)
		}
		pv.st.Mu.Unlock()
	}()
	pv.st.Mu.RLock()
	p := pv.st.Providers[j.provider]
	pv.st.Mu.RUnlock()
	if p == nil {
		return
	}
	tagger, ok := p.Cfg.Cloud.(provider.IDTagger)
	if !ok {
		return
	}
	err := tagger.TagOwnID(ctx, j.ids)
	later := map[string]bool{}
	var pe *provider.Error
	switch {
	case err == nil:
	case errors.As(err, &pe) && pe.Kind == provider.NotFound && len(pe.IDs) > 0:
		for _, id := range pe.IDs {
			later[id] = true
		}
		pv.st.Log.Info("EC2 does not show some instances yet; their InstanceID tag is written later", "instances", pe.IDs)
	default:
		for _, id := range j.ids {
			later[id] = true
		}
		pv.st.Log.Warn("tagging instances with their id failed; will retry", "provider", j.provider, "instances", len(j.ids), "err", err)
	}
	pv.st.Mu.Lock()
	defer pv.st.Mu.Unlock()
	var done []*domain.Machine
	for _, id := range j.ids {
		if later[id] {
			tr := pv.st.TagRetry[id]
			tr.Failures++
			tr.At = pv.st.Clock.Now().Add(backoff(tr.Failures))
			pv.st.TagRetry[id] = tr
			continue
		}
		delete(pv.st.TagRetry, id)
		if m := pv.st.Machines[id]; m != nil && !m.IDTagged {
			m.IDTagged = true
			done = append(done, m)
		}
	}
	if len(done) == 0 {
		return
	}
	if err := pv.st.Persist(nil, done); err != nil {
		pv.st.Log.Error("persist id tags", "err", err)
	}
	pv.st.Log.Info("instances tagged with their id", "provider", j.provider, "instances", len(done))
}
