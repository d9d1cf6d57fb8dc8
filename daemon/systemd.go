package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	sddaemon "github.com/coreos/go-systemd/v22/daemon"
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

// watchdog pings systemd's watchdog (WatchdogSec) while the engine answers,
// and keeps STATUS= current for `systemctl status`.
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
		for {
			rep := d.eng.StatusReport() // takes the engine's lock: a wedged engine stops the pings
			line := fmt.Sprintf("STATUS=%d requests in flight, %d machines; last reconcile %s", rep.InFlight, sum(rep.Machines), ago(rep.LastReconcile))
			if rep.CloudNote != "" {
				line += "; " + rep.CloudNote
			}
			notify("WATCHDOG=1\n" + line)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return cancel
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
