package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/hf"
	"golang.org/x/sys/unix"
)

// cmdWatch is `ohfp requests watch ID [--interval D]`: it polls the request
// until it is final, redrawing one progress line on a terminal and printing
// a line per change otherwise. Exit 0 when complete, 1 when
// complete_with_error.
func cmdWatch(ctx context.Context, inv *invocation, out *output) error {
	if len(inv.args) != 2 {
		return usageErr("usage: ohfp requests watch ID [--interval DURATION]")
	}
	id := inv.args[1]
	interval := time.Second
	if v := inv.flags[optInterval]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("--interval %q is not a duration such as 1s or 500ms", v)
		}
		interval = d
	}
	if !inv.waitSet {
		// A watch outlives daemon restarts: wait for the socket as HF does.
		inv.wait = defaultWatchWait
	}
	width := 0
	if out.tty {
		width = termWidth(out.w)
	}
	last := ""
	drawn := false
	start := time.Now()
	for {
		raw, err := callDaemon(ctx, inv, apitype.MethodShow, apitype.ShowArgs{ID: id}, nil, nil)
		if err != nil {
			if drawn {
				fmt.Fprintln(out.w)
			}
			return err
		}
		var s apitype.Shown
		if err := decode("show", raw, &s); err != nil {
			return err
		}
		if s.Request == nil || s.Status == nil {
			return fmt.Errorf("%s is not a request (ohfp show %s)", id, id)
		}
		var rows []apitype.MachineRow
		if s.Request.Kind != "return" {
			// Weights, so progress counts units as HF asked for them.
			if raw, err := callDaemon(ctx, inv, "machines", map[string]string{"request": id}, nil, nil); err == nil {
				_ = decode("machines", raw, &rows)
			}
		}
		line := progress(id, s, rows)
		final := s.Status.Status == hf.StatusComplete || s.Status.Status == hf.StatusCompleteWithError
		switch {
		case out.tty:
			elapsed := "  " + human(time.Since(start))
			fmt.Fprint(out.w, "\r"+fit(line+elapsed, width)+"\x1b[K")
			drawn = true
		case line != last && !out.json:
			fmt.Fprintln(out.w, line)
		}
		last = line
		if final {
			if drawn {
				fmt.Fprintln(out.w)
			}
			if out.json {
				if err := out.printJSON(raw); err != nil {
					return err
				}
			} else if s.Status.Message != "" {
				fmt.Fprintln(out.w, s.Status.Message)
			}
			if s.Status.Status == hf.StatusCompleteWithError {
				return &exitError{code: 1}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			if drawn {
				fmt.Fprintln(out.w)
			}
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// defaultWatchWait is how long each poll of a watch waits for a
// restarting daemon.
const defaultWatchWait = 30 * time.Second

// progress is the one-line state of a request, e.g.
// "req-1 running  3/5 units  ██████░░░░  2 starting".
func progress(id string, s apitype.Shown, rows []apitype.MachineRow) string {
	weight := map[string]int{}
	for _, r := range rows {
		weight[r.MachineID] = max(r.Weight, 1)
	}
	done, starting, failed, total := 0, 0, 0, 0
	for _, m := range s.Status.Machines {
		w := 1
		if s.Request.Kind != "return" {
			w = max(weight[m.MachineID], 1)
		}
		switch m.Result {
		case hf.ResultSucceed:
			done += w
		case hf.ResultFail:
			failed++
		default:
			starting++
		}
	}
	unit := "units"
	switch {
	case s.Request.Kind == "return":
		unit, total = "machines", len(s.Status.Machines)
	case s.Request.Units > 0:
		total = s.Request.Units
	default:
		total = done
	}
	var b strings.Builder
	b.WriteString(id + " " + string(s.Status.Status) + "  " + strconv.Itoa(done) + "/" + strconv.Itoa(total) + " " + unit + "  " + bar(done, total, 10))
	if starting > 0 {
		verb := "starting"
		if s.Request.Kind == "return" {
			verb = "terminating"
		}
		b.WriteString("  " + strconv.Itoa(starting) + " " + verb)
	}
	if failed > 0 {
		b.WriteString("  " + strconv.Itoa(failed) + " failed")
	}
	if note := s.Request.RetryNote; note != "" && s.Status.Status == hf.StatusRunning {
		b.WriteString("  (" + note + ")")
	}
	return b.String()
}

// bar draws done/total in width cells.
func bar(done, total, width int) string {
	n := 0
	if total > 0 {
		n = min(done*width/total, width)
	}
	return strings.Repeat("█", n) + strings.Repeat("░", width-n)
}

// fit cuts a line to the terminal's width so \r redraws it in place.
func fit(line string, width int) string {
	if width <= 1 {
		return line
	}
	r := []rune(line)
	if len(r) < width {
		return line
	}
	return string(r[:width-2]) + "…"
}

// termWidth returns the width of the terminal w is, or 0.
func termWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}
