package main

import (
	"context"
	"fmt"
	"github.com/ohfp/ohfp/internal/english"
	"net"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/config"
	"github.com/ohfp/ohfp/internal/health"
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
		level := ""
		for {
			// Takes the engine's lock: a wedged engine stops the pings.
			rep := d.fullStatus()
			line := statusLine(rep)
			h := rep.Health
			if h.Level != level {
				if level != "" || h.Level != "healthy" {
					d.log.Warn("health changed", "from", orText(level, "start"), "to", h.Level, "reasons", strings.Join(h.Reasons, "; "))
				}
				level = h.Level
			}
			switch {
			case !h.Stalled:
				if stuck {
					d.log.Info("the engine makes progress again; watchdog fed")
				}
				stuck = false
				notify("WATCHDOG=1\n" + line)
			default:
				if !stuck {
					d.log.Error("the engine makes no progress; the systemd watchdog is no longer fed", "why", h.Reasons[0])
				}
				stuck = true
				notify(line + "; watchdog not fed")
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
// before the first pass). The verdict is package health's.
func stalled(rep apitype.Status, now time.Time, bound time.Duration) string {
	if h := health.Assess(rep, now, bound); h.Stalled {
		return h.Reasons[0]
	}
	return ""
}

// statusLine is systemd's STATUS=: the health verdict and why, then the
// live machines (terminated ones are not machines any more), the requests
// in flight and the last pass. rep carries the verdict (fullStatus).
func statusLine(rep apitype.Status) string {
	h := rep.Health
	line := "STATUS=" + h.Level
	if len(h.Reasons) > 0 {
		line += " (" + strings.Join(h.Reasons, "; ") + ")"
	}
	line += fmt.Sprintf(": %s, %s in flight; last reconcile %s", english.Plural(rep.LiveMachines, "live machine"), english.Plural(rep.InFlight, "request"), ago(rep.LastReconcile))
	if len(rep.Drained) > 0 {
		line += fmt.Sprintf("; %s drained", english.Plural(len(rep.Drained), "template"))
	}
	if l := rep.HA; l != nil {
		line += "; " + leaseLine(l)
	}
	return line
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

// leaseLine says who acts for a shared-store cluster, for STATUS= and the
// log.
func leaseLine(l *apitype.HA) string {
	switch {
	case l.Role == "holder":
		return fmt.Sprintf("lease held by this host (%s) since %s", l.Host, l.Since)
	case l.Holder == "":
		return fmt.Sprintf("standby (%s): nobody holds the lease; HF's next call here takes it", l.Host)
	case l.Expired:
		return fmt.Sprintf("standby (%s): lease of %s (since %s) expired; HF's next call here takes it", l.Host, l.Holder, l.Since)
	}
	return fmt.Sprintf("%s (%s): lease held by %s since %s", l.Role, l.Host, l.Holder, l.Since)
}
