// Command ohfp is the Host Factory side of ohfp: a small static client that
// HF runs once per provider call. It reads the call's JSON document,
// checks it, forwards it with the HF environment to the ohfpd daemon over
// its Unix socket, and prints the answer.
//
//	<operation>.sh -f FILE            (HF, through a symlink to ohfp)
//	ohfp <operation> [-f FILE] [--socket PATH] [--wait DURATION]
//	ohfp status | requests | machines | templates | show ID | config ...
//	ohfp --version
//
// For an HF operation it prints the answer on stdout and exits 0 on
// success; on any failure it prints exactly one document {"message": "..."}
// on stdout and exits 1. The sysadmin commands print tables (or, with
// --json, the daemon's answer) and report failures on stderr with exit 1,
// a usage error with exit 64 (EX_USAGE), a caller without access with 77
// (EX_NOPERM); ohfp status exits with the health verdict's code (2: down).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/rpc"
	"golang.org/x/sys/unix"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

// callTimeout bounds a call once connected: every HF call should answer in
// milliseconds; this only keeps a hung daemon from hanging HF forever.
const callTimeout = 120 * time.Second

// command is one thing ohfp can do.
type command struct {
	// hf marks the five HF operations: they take a JSON document (-f FILE
	// or stdin), validated with the hf parsers before it is forwarded.
	hf bool
	// run performs an HF operation and returns the document to print.
	run func(ctx context.Context, inv *invocation) (json.RawMessage, error)
	// admin performs a sysadmin command, writing to out; a returned error
	// is printed on stderr (exit 1), an *exitError sets the exit code.
	admin func(ctx context.Context, inv *invocation, out *output) error
	// opts lists the sysadmin options the command accepts (e.g. "json").
	opts []string
}

// commands maps an operation (from argv[0] or the first argument) to what
// it does: the five HF operations, and the sysadmin commands (admin.go).
// Nothing here does work at start-up: HF runs ohfp for every call.
var commands = map[string]command{
	hf.OpGetAvailableTemplates: {hf: true, run: forwardHF},
	hf.OpRequestMachines:       {hf: true, run: forwardHF},
	hf.OpGetRequestStatus:      {hf: true, run: forwardHF},
	hf.OpRequestReturnMachines: {hf: true, run: forwardHF},
	hf.OpGetReturnRequests:     {hf: true, run: forwardHF},

	"status":    {admin: cmdStatus, opts: []string{optJSON}},
	"requests":  {admin: cmdRequests, opts: []string{optJSON, optAll, optInterval}},
	"machines":  {admin: cmdMachines, opts: []string{optJSON, optAll, optRequest}},
	"templates": {admin: cmdTemplates, opts: []string{optJSON, optProvider}},
	"show":      {admin: cmdShow, opts: []string{optJSON}},
	"config":    {admin: cmdConfig, opts: []string{optJSON, optOutput, optName}},

	// The operator's actions (operator.go): root and admin_groups only.
	"cancel":  {admin: cmdCancel, opts: []string{optJSON, optReturn}},
	"return":  {admin: cmdReturn, opts: []string{optJSON, optRequest}},
	"drain":   {admin: cmdDrain, opts: []string{optJSON, optProvider}},
	"undrain": {admin: cmdUndrain, opts: []string{optJSON, optProvider}},
	"rearm":   {admin: cmdRearm, opts: []string{optJSON, optProvider}},
	"check":   {admin: cmdCheck, opts: []string{optJSON, optProvider}},
}

// invocation is a parsed command line.
type invocation struct {
	op      string
	file    string // -f FILE; "-" or "" means stdin
	hasFile bool
	socket  string
	wait    time.Duration
	timeout time.Duration // a call once connected: callTimeout, or OHFP_TIMEOUT
	args    []string      // positional arguments after the operation (sysadmin commands)
	version bool
	help    bool

	// Sysadmin options, by name (optJSON, ...): "true" for a switch.
	flags      map[string]string
	waitSet    bool // --wait or OHFP_WAIT was given
	timeoutSet bool // OHFP_TIMEOUT was given

	input  []byte     // the HF document, once read
	fileIn *fileInput // or a large one, left in its file
	stdin  io.Reader  // standard input
	isTTY  bool       // standard input is a terminal
	lookup func(string) (string, bool)
}

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr, os.LookupEnv))
}

// run executes one ohfp invocation and returns the exit code.
func run(argv []string, stdin *os.File, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	inv, err := parseArgs(argv, lookup)
	if err != nil {
		if inv != nil && commands[inv.op].admin != nil {
			io.WriteString(stderr, "ohfp: "+err.Error()+"\n")
			return exitUsage
		}
		return fail(stdout, err.Error())
	}
	if inv.version {
		io.WriteString(stdout, "ohfp "+version+"\n")
		return 0
	}
	if inv.help {
		io.WriteString(stdout, usage())
		return 0
	}
	cmd := commands[inv.op]
	if cmd.admin != nil {
		return runAdmin(cmd, inv, stdout, stderr)
	}
	inv.stdin = stdin
	if _, err := unix.IoctlGetTermios(int(stdin.Fd()), unix.TCGETS); err == nil {
		inv.isTTY = true
	}
	if cmd.hf {
		// An HF call lives milliseconds and holds at most a few copies of
		// a document of at most 4 MiB: collecting garbage would only cost
		// time. The limit brings the collector back should that be wrong.
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(128 << 20)
		// Small documents are read and checked here, so garbage fails fast
		// without bothering the daemon; large ones (getReturnRequests with
		// every host HF holds) are checked once, by the daemon, with the
		// same messages: parsing them twice doubled the call's time. A
		// large file is not even read: it goes from the file to the socket.
		if inv.input, inv.fileIn, err = readInput(inv); err != nil {
			return fail(stdout, err.Error())
		}
		if inv.fileIn != nil {
			defer inv.fileIn.f.Close()
		} else if len(inv.input) <= clientValidateMax || len(inv.input) > hf.MaxInputBytes {
			if err := hf.Validate(inv.op, inv.input); err != nil {
				return fail(stdout, err.Error())
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), inv.callBound())
	defer cancel()
	out, err := cmd.run(ctx, inv)
	if err != nil {
		return fail(stdout, err.Error())
	}
	// HF gets the daemon's document as it came (one more pass over a large
	// answer costs milliseconds); a person at a terminal gets it indented.
	if f, ok := stdout.(*os.File); ok && isTerminal(f) {
		var buf bytes.Buffer
		if err := json.Indent(&buf, out, "", "  "); err != nil {
			return fail(stdout, "ohfpd answered "+inv.op+" with a document that is not JSON: "+err.Error())
		}
		out = buf.Bytes()
	}
	// The answer sits inside the daemon's envelope: the newline goes over
	// the envelope's closing brace, with no copy.
	out = append(out, '\n')
	if _, err := stdout.Write(out); err != nil {
		io.WriteString(stderr, "ohfp: cannot write the answer: "+err.Error()+"\n")
		return 1
	}
	return 0
}

// clientValidateMax is the largest input the client checks itself.
const clientValidateMax = 64 << 10

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// forwardHF sends an HF operation to ohfpd and returns its answer.
func forwardHF(ctx context.Context, inv *invocation) (json.RawMessage, error) {
	env := map[string]string{}
	for _, name := range rpc.Env {
		if v, ok := inv.lookup(name); ok {
			env[name] = v
		}
	}
	c := rpc.NewClient(inv.socket, rpc.ClientOptions{WaitTimeout: inv.wait})
	var out json.RawMessage
	var err error
	if in := inv.fileIn; in != nil {
		err = c.CallWithFile(ctx, inv.op, rpc.Params{Env: env}, in.f, in.off, in.size, &out)
	} else {
		err = c.Call(ctx, inv.op, rpc.Params{Input: inv.input, Env: env}, &out)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// fail prints {"message": msg} on stdout and returns exit code 1.
func fail(stdout io.Writer, msg string) int {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(hf.ErrorReply{Message: msg}); err != nil { // cannot happen for a string
		buf.Reset()
		buf.WriteString("{\"message\": \"ohfp failed\"}\n")
	}
	stdout.Write(buf.Bytes())
	return 1
}

// parseArgs reads the command line. The operation is argv[0]'s base name
// (with or without .sh) when it names one, else the first argument.
func parseArgs(argv []string, lookup func(string) (string, bool)) (*invocation, error) {
	inv := &invocation{lookup: lookup}
	if len(argv) > 0 {
		name := strings.TrimSuffix(filepath.Base(argv[0]), ".sh")
		if commands[name].hf {
			inv.op = name
		}
		argv = argv[1:]
	}
	var waitFlag string
	var haveWait bool
	var positional []string
	var firstErr error // an unknown option: reported once the operation is known
	var unknownOpt string
	inv.flags = map[string]string{}
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		if a == "--" {
			positional = append(positional, argv[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		needValue := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(argv) {
				return "", errors.New(a + " needs a value")
			}
			i++
			return argv[i], nil
		}
		var err error
		switch name {
		case "f", "file":
			inv.file, err = needValue()
			inv.hasFile = true
		case "socket":
			inv.socket, err = needValue()
		case "wait":
			waitFlag, err = needValue()
			haveWait = true
		case "version":
			inv.version = true
		case "h", "help":
			inv.help = true
		default:
			opt, takesValue := adminOption(name)
			switch {
			case opt == "":
				if firstErr == nil {
					firstErr = errors.New("unknown option " + a + "; " + shortUsage)
					unknownOpt = a
				}
			case takesValue:
				inv.flags[opt], err = needValue()
			case hasVal:
				err = errors.New(a + " takes no value")
			default:
				inv.flags[opt] = "true"
			}
		}
		if err != nil {
			firstErr = err
			break
		}
	}
	if inv.version || inv.help {
		return inv, nil
	}
	if inv.op == "" && len(positional) > 0 && positional[0] == "help" {
		inv.help = true
		return inv, nil
	}
	if inv.op == "" {
		if len(positional) == 0 {
			if firstErr != nil {
				return nil, firstErr
			}
			return nil, errors.New("no operation given: " + shortUsage + "; operations: " + strings.Join(opNames(), ", "))
		}
		inv.op, positional = positional[0], positional[1:]
		if _, ok := commands[inv.op]; !ok {
			if firstErr != nil {
				return nil, firstErr
			}
			return nil, errors.New("unknown operation " + strconv.Quote(inv.op) + ": use one of " + strings.Join(hf.Operations, ", ") + ", or a sysadmin command: " + strings.Join(opNames()[len(hf.Operations):], ", ") + " (see ohfp help)")
		}
	}
	cmd := commands[inv.op]
	if firstErr != nil {
		if unknownOpt != "" && cmd.admin != nil {
			firstErr = errors.New("unknown option " + unknownOpt + " (see ohfp help)")
		}
		return inv, firstErr
	}
	for opt := range inv.flags {
		if !slices.Contains(cmd.opts, opt) {
			if cmd.hf {
				return inv, errors.New("unknown option --" + opt + "; " + shortUsage)
			}
			return inv, errors.New(inv.op + " takes no --" + opt + " (see ohfp help)")
		}
	}
	if cmd.hf && len(positional) > 0 {
		return nil, errors.New(inv.op + " takes no argument " + strconv.Quote(positional[0]) + ": give the input with -f FILE or on stdin")
	}
	if !cmd.hf && inv.hasFile {
		return inv, errors.New(inv.op + " takes no -f FILE")
	}
	inv.args = positional

	if inv.socket == "" {
		if v, ok := lookup("OHFP_SOCKET"); ok && v != "" {
			inv.socket = v
		} else {
			inv.socket = rpc.DefaultSocket
		}
	}
	inv.wait = rpc.DefaultWaitTimeout
	src := "--wait"
	if !haveWait {
		if v, ok := lookup("OHFP_WAIT"); ok && v != "" {
			waitFlag, haveWait, src = v, true, "OHFP_WAIT"
		}
	}
	if haveWait {
		inv.waitSet = true
		d, err := parseWait(waitFlag)
		if err != nil {
			return inv, errors.New(src + " " + strconv.Quote(waitFlag) + " is not a duration such as 10s or 500ms")
		}
		inv.wait = d
		if d == 0 {
			inv.wait = -1 // try once
		}
	}
	inv.timeout = callTimeout
	if v, ok := lookup("OHFP_TIMEOUT"); ok && v != "" {
		d, err := parseWait(v)
		if err != nil || d == 0 {
			return inv, errors.New("OHFP_TIMEOUT " + strconv.Quote(v) + " is not a positive duration such as 120s")
		}
		inv.timeout, inv.timeoutSet = d, true
	}
	return inv, nil
}

// callBound is how long a call may take in all: the wait for a
// (re)starting daemon, then the call itself.
func (inv *invocation) callBound() time.Duration {
	t := inv.timeout
	if t <= 0 {
		t = callTimeout
	}
	return max(inv.wait, 0) + t
}

// parseWait reads a Go duration, or a whole number of seconds.
func parseWait(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errors.New("bad duration")
	}
	return d, nil
}

// readInput reads the HF document from -f FILE or stdin, up to one byte
// over hf.MaxInputBytes (so the parser can report the size), or leaves a
// large -f FILE in its file (largeInput), opened once either way.
func readInput(inv *invocation) ([]byte, *fileInput, error) {
	var r io.Reader
	name := "standard input"
	size := int64(-1) // a regular file's, when known
	if inv.hasFile && inv.file != "-" {
		if inv.file == "" {
			return nil, nil, errors.New("-f needs a file name")
		}
		f, err := os.Open(inv.file)
		if err != nil {
			return nil, nil, errors.New("cannot read the input file: " + err.Error())
		}
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		if size > clientValidateMax && size <= hf.MaxInputBytes {
			if in := largeInput(f, size); in != nil {
				return nil, in, nil // the caller closes f
			}
		}
		defer f.Close()
		r, name = f, inv.file
	} else {
		if inv.isTTY {
			if inv.op == hf.OpGetAvailableTemplates {
				return []byte("{}"), nil, nil
			}
			return nil, nil, errors.New(inv.op + " needs a JSON document: give -f FILE or pipe it on standard input")
		}
		r = inv.stdin
		if f, ok := r.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
				size = fi.Size()
			}
		}
	}
	// Read in one go when the size is known (a file): getReturnRequests
	// brings every host HF holds, and growing the buffer copied it over
	// and over.
	var buf bytes.Buffer
	if size >= 0 {
		buf.Grow(int(min(size, hf.MaxInputBytes+1)) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(r, hf.MaxInputBytes+1)); err != nil {
		return nil, nil, errors.New("cannot read " + name + ": " + err.Error())
	}
	return buf.Bytes(), nil, nil
}

// fileInput is a large HF document left in its file: the size bytes from
// off, the document less the white space around it.
type fileInput struct {
	f         *os.File
	off, size int64
}

// largeInput leaves a -f FILE of more than clientValidateMax bytes (and at
// most hf.MaxInputBytes) in its file, to be sent unread
// (rpc.Client.CallWithFile). The white space at either end is found in the
// first and last 4 KiB; a file that is white space that far, or that
// cannot be read there, gives nil and is read as any other.
func largeInput(f *os.File, size int64) *fileInput {
	var buf [4 << 10]byte
	n, err := f.ReadAt(buf[:], 0)
	lead := int64(len(buf[:n]) - len(bytes.TrimLeft(buf[:n], " \t\r\n")))
	if err != nil || lead == int64(n) {
		return nil
	}
	n, err = f.ReadAt(buf[:], size-int64(len(buf)))
	trail := int64(len(buf[:n]) - len(bytes.TrimRight(buf[:n], " \t\r\n")))
	if err != nil && err != io.EOF || trail == int64(n) {
		return nil
	}
	return &fileInput{f: f, off: lead, size: size - lead - trail}
}

const shortUsage = "run as <operation>.sh -f FILE or ohfp <operation> [-f FILE] [--socket PATH] [--wait DURATION]"

// opNames lists the HF operations, then the sysadmin commands.
func opNames() []string {
	var extra []string
	for name, c := range commands {
		if !c.hf {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	return append(append([]string{}, hf.Operations...), extra...)
}

func usage() string {
	return `ohfp ` + version + ` - the IBM Spectrum Symphony Host Factory client of ohfpd

Usage:
  <operation>.sh -f FILE          as Host Factory runs it (a symlink to ohfp)
  ohfp <operation> [-f FILE]      the input is read from FILE, else standard input
  ohfp <command> [options]        a sysadmin command

Operations: ` + strings.Join(hf.Operations, ", ") + `

Sysadmin commands:
  status                          health, version, AWS, requests and machines by state;
                                  exits 0 healthy, 1 degraded, 2 down (or ohfpd not answering
                                  within 10s, $OHFP_TIMEOUT); --json prints the verdict either way
  requests [--all]                requests in flight and those finished in the last hour
                                  (--all: every request ohfpd holds)
  requests watch ID [--interval D]  follow a request until it is complete
  machines [--request ID] [--all] live machines, or those of one request (--all: ended ones too)
  templates [--provider NAME]     templates with available and maximum units
  show ID                         a request with its machines, or one machine (id or host name)
  config reload                   make ohfpd re-read its configuration (operator)
  config validate FILE            check a configuration file (runs ohfpd --check-config)
  config import-hf DIR [-o FILE] [--name NAME]
                                  IBM's <name>prov_config.json and <name>prov_templates.json in
                                  HF's provider folder DIR to YAML (--name: the provider's name)
  help                            this text

Operator commands (root, or a member of admin_groups in the ohfpd configuration;
each is recorded in the request's history, shown by ohfp show, and ohfpd's log):
  cancel REQ [--return]           stop a request launching: a queued or retrying launch is
                                  not made, a fleet is capped at what came (--return: and
                                  return what came)
  return MACHINE...
  return --request REQ            return machines (ids or host names) as HF would: a return
                                  request (ret-...) recorded first, fleet capacity lowered;
                                  HF is told by getReturnRequests that the hosts are taken back
  drain TEMPLATE [--provider P]
  undrain TEMPLATE [--provider P] offer no units of a template (availableNumber 0) until
                                  undrained; kept across restarts
  rearm TEMPLATE [--provider P]   launch a template again after its failure breaker stopped it
                                  (breaker_failures); logged with who did it
  check [TEMPLATE] [--provider P] check the templates against AWS: the credentials, then each
                                  template's AMI, subnets, security groups and instance types
                                  (each on its own row: every problem in one run), a dry run
                                  through the API it launches with (RunInstances, CreateFleet,
                                  RequestSpotFleet; Auto Scaling: what can be without a dry
                                  run), and the vCPU quotas; exit 1 on a failure (an unknown
                                  quota is none)

Options:
  -f, --file FILE     the input JSON document ("-" for standard input)
  --socket PATH       ohfpd's socket (default $OHFP_SOCKET, else ` + rpc.DefaultSocket + `)
  --wait DURATION     how long to wait for ohfpd to come up (default $OHFP_WAIT, else 10s;
                      3s for sysadmin commands)
                      then $OHFP_TIMEOUT (default 120s) bounds the call itself: a call
                      that reaches ohfpd after that is not carried out (status: 10s in
                      all by default, the 3s wait included)
  --json              sysadmin commands: print ohfpd's answer as JSON, for scripts
  --version           print the version

Environment forwarded to ohfpd: ` + strings.Join(rpc.Env, ", ") + `
ohfpd for config validate and import-hf: $OHFPD, else next to ohfp, else in PATH.

Exit status:
  0                   done (status: healthy)
  1                   failed, the reason on stderr (status: degraded; check: a row failed); an HF
                      operation prints HF's JSON {"message": ...} on stdout instead
  2                   status: down, or ohfpd not running or not answering
  64                  usage error: a bad option, argument, --wait or OHFP_TIMEOUT (nothing sent)
  77                  permission denied: the socket, or ohfpd refusing the caller (ohfpd may be
                      healthy)
  130                 interrupted
`
}
