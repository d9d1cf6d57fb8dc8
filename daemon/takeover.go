package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ohfp/ohfp/internal/config"
	"github.com/ohfp/ohfp/internal/engine"
	"github.com/ohfp/ohfp/internal/ibmstate"
	"github.com/ohfp/ohfp/internal/reconcile"
)

// takeoverTimeout bounds --take-over-ibm (describes, tags, and the wait
// for instances EC2 does not show yet).
const takeoverTimeout = 5 * time.Minute

// takeover is what --take-over-ibm names: a provider and IBM's plugin's
// state file, read and checked before anything else is touched.
type takeover struct {
	provider string
	path     string
	file     ibmstate.File
}

// parseTakeover reads --take-over-ibm [PROVIDER=]FILE: the provider
// defaults to the first configured.
//
// A start flag, not a configuration key: the takeover is a one-time
// step of the switch-over, run when HF has been pointed at ohfp and IBM's
// plugin no longer writes its file; a key would run it again at every
// start against a file that only grows stale, and leave a migration in
// the permanent configuration. Running it again changes nothing.
func parseTakeover(arg string, cfg *config.Config) (*takeover, error) {
	t := &takeover{provider: cfg.Providers[0].Name, path: arg}
	if name, path, ok := strings.Cut(arg, "="); ok {
		t.provider, t.path = name, path
		found := false
		for _, p := range cfg.Providers {
			found = found || p.Name == name
		}
		if !found {
			return nil, fmt.Errorf("--take-over-ibm %s: no provider %q in the configuration", arg, name)
		}
	}
	data, err := os.ReadFile(t.path)
	if err != nil {
		return nil, fmt.Errorf("--take-over-ibm: %v (IBM's plugin keeps it in the provider's work folder, $HF_PROVIDER_WORKDIR: aws-db.json, or <provider>-db.json for the Java plugin)", err)
	}
	t.file, err = ibmstate.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("--take-over-ibm %s: %v", t.path, err)
	}
	return t, nil
}

// runTakeover takes over what d.takeover names, before serving.
func (d *daemon) runTakeover(ctx context.Context, eng *engine.Engine) error {
	t := d.takeover
	tctx, cancel := context.WithTimeout(ctx, takeoverTimeout)
	defer cancel()
	d.log.Info("taking over IBM's plugin's hosts and requests", "file", t.path, "provider", t.provider, "requests", len(t.file.Requests), "instances", len(t.file.InstanceIDs()))
	rep, err := eng.TakeOver(tctx, t.provider, t.file, reconcile.TakeOverOptions{})
	if err != nil {
		return fmt.Errorf("taking over %s failed, nothing is served: %w", t.path, err)
	}
	if len(rep.UnknownTemplates) > 0 {
		d.log.Warn("templates of IBM's file this provider does not have: their hosts are taken over (one unit each) but HF cannot ask for more of them; keep IBM's templateIds in the templates", "templates", strings.Join(rep.UnknownTemplates, ","))
	}
	if len(rep.FromFleets) > 0 {
		d.log.Info("IBM's fleets are taken over whole: their instances the file does not list were taken over too (AWS lists them)", "instances", strings.Join(rep.FromFleets, ","))
	}
	for _, why := range rep.FleetsUnlisted {
		d.log.Warn("AWS did not list an IBM fleet's instances: only those the file lists are taken over; the fleet is never ended by terminating its instances", "fleet", why)
	}
	for _, r := range t.file.Requests {
		if len(r.Machines) > 0 || !slices.Contains(rep.Finished, r.ID) {
			continue
		}
		switch {
		case strings.HasPrefix(r.ID, "sfr-"):
			d.log.Warn("IBM's plugin's Spot Fleet request has no instance in its file: ohfp does not follow it, and HF is told it ended; instances it still launches are no one's: cancel it",
				"request", r.ID, "command", "aws ec2 cancel-spot-fleet-requests --terminate-instances --spot-fleet-request-ids "+r.ID)
		case strings.HasPrefix(r.ID, "fleet-"):
			d.log.Warn("IBM's plugin's EC2 Fleet has no instance in its file: ohfp does not follow it, and HF is told it ended; instances it still launches are no one's: delete it",
				"request", r.ID, "command", "aws ec2 delete-fleets --terminate-instances --fleet-ids "+r.ID)
		}
	}
	for _, why := range rep.Skipped {
		d.log.Warn("an instance of IBM's file is not taken over: it is already this cluster's under another request, or the file names it under a request or return id that is ohfpd's own (known to it, or of the shape it hands out); left as it is, never retagged (IBM's file is wrong or stale about it)", "instance", why)
	}
	if len(rep.Conflicts) > 0 {
		d.log.Warn("instances of IBM's file carry another ohfp cluster's or provider's tags: left alone, not taken over", "instances", strings.Join(rep.Conflicts, ","))
	}
	d.log.Info("took over IBM's plugin's hosts and requests; start without --take-over-ibm from now on (running it again changes nothing)",
		"provider", t.provider, "requests", rep.Requests, "live_instances", rep.Live, "adopted_now", rep.Adopted, "tagged_now", rep.Tagged,
		"gone", len(rep.Gone), "finished_without_instances", len(rep.Finished), "skipped", len(rep.Skipped))
	return nil
}

// takeOverOnce runs --take-over-ibm on a holder of the shared table's
// lease, before it acts: the first time this process takes the lease, and
// again at each later taking until it succeeded once (it is idempotent).
func (d *daemon) takeOverOnce(ctx context.Context, eng *engine.Engine) error {
	d.mu.Lock()
	pending := d.takeover != nil && !d.takenOver
	d.mu.Unlock()
	if !pending {
		return nil
	}
	if err := d.runTakeover(ctx, eng); err != nil {
		return err
	}
	d.mu.Lock()
	d.takenOver = true
	d.mu.Unlock()
	return nil
}
