package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ohfp/ohfp/internal/rpc"
	"golang.org/x/sys/unix"
)

// Sysadmin options, as named on the command line (--json, --all, ...).
const (
	optJSON     = "json"
	optAll      = "all"
	optRequest  = "request"
	optProvider = "provider"
	optInterval = "interval"
	optOutput   = "o"
	optReturn   = "return"
	optName     = "name"
)

// adminWait is how long a one-shot sysadmin command retries a missing
// socket unless --wait or OHFP_WAIT says otherwise: a person at a terminal
// wants "ohfpd is not running" quickly.
const adminWait = 3 * time.Second

// adminOption maps an option name (without dashes) to a sysadmin option,
// and says whether it takes a value. "" means no such option.
func adminOption(name string) (opt string, takesValue bool) {
	switch name {
	case "json":
		return optJSON, false
	case "all", "a":
		return optAll, false
	case "request", "r":
		return optRequest, true
	case "provider", "p":
		return optProvider, true
	case "interval":
		return optInterval, true
	case "o", "output":
		return optOutput, true
	case "return":
		return optReturn, false
	case "name":
		return optName, true
	}
	return "", false
}

// output is where a sysadmin command writes.
type output struct {
	w    io.Writer
	err  io.Writer
	tty  bool // w is a terminal
	json bool // --json
	now  time.Time
}

// Exit codes of the sysadmin commands besides 0 and 1 (a failure), each
// distinct from ohfp status's 1 (degraded) and 2 (down) so that a monitor
// reading them cannot take a mistake of its own for ohfpd's health:
// sysexits.h's EX_USAGE for a command line ohfp refuses, EX_NOPERM for a
// caller not allowed on ohfpd's socket (ohfpd may be healthy).
const (
	exitUsage  = 64
	exitNoPerm = 77
)

// usageError is a command line a sysadmin command refuses: exit
// exitUsage, nothing sent to ohfpd.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErr(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// noPermission reports whether err is the caller's lacking access to
// ohfpd's socket: refused by the file's permissions, or by ohfpd (a uid
// not allowed).
func noPermission(err error) bool {
	return errors.Is(err, rpc.ErrPermission) || rpc.CodeOf(err) == rpc.PermissionDenied
}

// exitError ends a sysadmin command with a code, after printing msg (if
// any) on stderr.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// runAdmin runs a sysadmin command and returns the exit code.
func runAdmin(cmd command, inv *invocation, stdout, stderr io.Writer) int {
	out := &output{w: stdout, err: stderr, json: inv.flags[optJSON] != "", now: time.Now()}
	if f, ok := stdout.(*os.File); ok {
		if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			out.tty = true
		}
	}
	if !inv.waitSet {
		inv.wait = adminWait
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.admin(ctx, inv, out)
	if err == nil {
		return 0
	}
	var ee *exitError
	var ue *usageError
	if errors.As(err, &ue) {
		io.WriteString(stderr, "ohfp "+inv.op+": "+ue.msg+"\n")
		return exitUsage
	}
	if errors.As(err, &ee) {
		if ee.msg != "" {
			io.WriteString(stderr, ee.msg+"\n")
		}
		return ee.code
	}
	if ctx.Err() != nil {
		return 130
	}
	io.WriteString(stderr, "ohfp "+inv.op+": "+err.Error()+"\n")
	if noPermission(err) {
		return exitNoPerm
	}
	return 1
}

// callDaemon invokes a daemon method with args (nil for none) and returns the
// raw result. Each call is bounded by inv.callBound.
func callDaemon(ctx context.Context, inv *invocation, method string, args any, env map[string]string, input []byte) (json.RawMessage, error) {
	var p rpc.Params
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return nil, err
		}
		p.Args = b
	}
	p.Env, p.Input = env, input
	ctx, cancel := context.WithTimeout(ctx, inv.callBound())
	defer cancel()
	c := rpc.NewClient(inv.socket, rpc.ClientOptions{WaitTimeout: inv.wait})
	var raw json.RawMessage
	if err := c.Call(ctx, method, p, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// decode unmarshals a daemon answer into v, naming the method on failure.
func decode(method string, raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("cannot read ohfpd's answer to %s (is ohfpd a different version than ohfp %s?): %v", method, version, err)
	}
	return nil
}

// printJSON writes a raw answer indented, for --json.
func (o *output) printJSON(raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("ohfpd answered with a document that is not JSON: %v", err)
	}
	buf.WriteByte('\n')
	_, err := o.w.Write(buf.Bytes())
	return err
}

// table starts an aligned table with the given column headers.
func (o *output) table(headers ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(o.w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	return tw
}

// row writes one table row; empty cells print as "-".
func row(tw *tabwriter.Writer, cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		} else {
			// A tab or newline in a value would break the columns.
			cells[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(c)
		}
	}
	fmt.Fprintln(tw, strings.Join(cells, "\t"))
}

// kv writes "key: value" lines aligned on the values, skipping empty values.
type kv struct {
	tw *tabwriter.Writer
}

func (o *output) kv() *kv {
	return &kv{tw: tabwriter.NewWriter(o.w, 0, 8, 1, ' ', 0)}
}

func (k *kv) add(key, value string) {
	if value == "" {
		return
	}
	fmt.Fprintf(k.tw, "%s:\t%s\n", key, strings.ReplaceAll(value, "\t", " "))
}

func (k *kv) flush() error { return k.tw.Flush() }

// ago says how long before now t was, e.g. "3m ago"; "" for a zero time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + human(-d)
	}
	if d < time.Second {
		return "just now"
	}
	return human(d) + " ago"
}

// agoAbs is ago followed by the absolute local time.
func agoAbs(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return ago(now, t) + " (" + t.Local().Format("2006-01-02 15:04:05 MST") + ")"
}

// human writes a duration with its two largest units: 42s, 3m12s, 2h5m, 3d4h.
func human(d time.Duration) string {
	d = d.Round(time.Second)
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return strconv.FormatInt(s, 10) + "s"
	case s < 3600:
		return two(s/60, "m", s%60, "s")
	case s < 86400:
		return two(s/3600, "h", s%3600/60, "m")
	}
	return two(s/86400, "d", s%86400/3600, "h")
}

func two(a int64, ua string, b int64, ub string) string {
	out := strconv.FormatInt(a, 10) + ua
	if b > 0 {
		out += strconv.FormatInt(b, 10) + ub
	}
	return out
}

// millis writes a duration given in milliseconds: 340ms, 1.2s.
func millis(ms int64) string {
	if ms < 1000 {
		return strconv.FormatInt(ms, 10) + "ms"
	}
	return strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + "s"
}

// epochAgo is ago for HF's epoch-seconds launch times (0: unknown).
func epochAgo(now time.Time, secs int64) string {
	if secs <= 0 {
		return ""
	}
	return ago(now, time.Unix(secs, 0))
}

// needArgs checks the number of positional arguments.
func needArgs(inv *invocation, n int, usage string) error {
	if len(inv.args) != n {
		if len(inv.args) > n {
			return usageErr("unexpected argument %q; usage: ohfp %s", inv.args[n], usage)
		}
		return usageErr("missing argument; usage: ohfp %s", usage)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
