package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/config"
)

// notify sends a state line to systemd; silent when NOTIFY_SOCKET is unset.
func notify(state string) {
	_, _ = sddaemon.SdNotify(false, state)
}

// activationListener returns the socket systemd passed (LISTEN_FDS), or nil
// when ohfpd was not socket-activated.
func activationListener() (net.Listener, error) {
	lns, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	for _, ln := range lns {
		if ln != nil {
			return ln, nil
		}
	}
	return nil, nil
}

// watchdog pings systemd's watchdog (WatchdogSec) while the engine makes
// progress, and keeps STATUS= current for `systemctl status`. Progress is a
// reconcile pass finished (with or without error) within progressBound: a
// pass whose cloud calls all end at their deadlines finishes well within
// it, so a wedged engine (not only a dead goroutine) stops the pings, says
// why in STATUS= and the log, and systemd restarts ohfpd.
func (d *daemon) watchdog(ctx context.Context) (stop func()) {
	interval, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		interval = 20 * time.Second // STATUS= updates only
	} else {
		interval /= 2
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		stuck := false
		for {
			rep := d.eng.StatusReport() // takes the engine's lock: a wedged engine stops the pings
			d.mu.Lock()
			bound := progressBound(d.cfg)
			d.mu.Unlock()
			line := fmt.Sprintf("STATUS=%d requests in flight, %d machines; last reconcile %s", rep.InFlight, sum(rep.Machines), ago(rep.LastReconcile))
			if rep.CloudNote != "" {
				line += "; " + rep.CloudNote
			}
			for name, c := range d.cloudStatus() {
				if h := c.Health; h.NotAnswering || h.Throttled || h.Unreachable {
					line += "; " + name + ": " + c.Summary
				}
			}
			why := stalled(rep, time.Now(), bound)
			switch {
			case why == "":
				if stuck {
					d.log.Info("the engine makes progress again; watchdog fed")
				}
				stuck = false
				notify("WATCHDOG=1\n" + line)
			default:
				if !stuck {
					d.log.Error("the engine makes no progress; the systemd watchdog is no longer fed", "why", why)
				}
				stuck = true
				notify("STATUS=" + why + "; watchdog not fed; " + strings.TrimPrefix(line, "STATUS="))
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return cancel
}

// progressBound is how long the engine may go without finishing a
// reconcile pass: two idle intervals, plus four whole-call deadlines per
// provider (the calls of one pass that can each run to its deadline:
// instance types, the AMI, the listing, a retry), and never under two
// minutes.
func progressBound(cfg *config.Config) time.Duration {
	b := 2 * cfg.Reconcile.IdleInterval
	for _, p := range cfg.Providers {
		b += 4 * max(p.CallTimeout, p.ConnectionTimeout+p.ResponseTimeout)
	}
	return max(b, 2*time.Minute)
}

// stalled says why the engine is not making progress at now, or "": no
// reconcile pass finished within bound (counted from the engine's start
// before the first pass).
func stalled(rep apitype.Status, now time.Time, bound time.Duration) string {
	last := rep.Started
	if !rep.LastReconcile.IsZero() {
		last = rep.LastReconcile.Add(time.Duration(rep.LastReconcileMs) * time.Millisecond)
	}
	if since := now.Sub(last); since > bound {
		what := "the last one finished " + since.Round(time.Second).String() + " ago"
		if rep.LastReconcile.IsZero() {
			what = "none since the start " + since.Round(time.Second).String() + " ago"
		}
		return fmt.Sprintf("no reconcile pass finished within %s (%s)", bound, what)
	}
	return ""
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}
