package rpc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// DefaultWaitTimeout is how long a client retries a missing or refusing
// socket before it reports that ohfpd is not running.
const DefaultWaitTimeout = 10 * time.Second

// ClientOptions configure a Client.
type ClientOptions struct {
	// WaitTimeout bounds how long a missing or refusing socket is retried
	// with backoff, so a daemon restart is invisible to HF. 0 means
	// DefaultWaitTimeout; negative means try once.
	WaitTimeout time.Duration
	// MaxResponseBytes bounds an answer; 0 means 256 MiB.
	MaxResponseBytes int64
}

// Client calls ohfpd over its Unix socket. It is safe for concurrent use.
//
// It speaks the little HTTP it needs itself, one HTTP/1.0 POST per
// connection, instead of using net/http: HF starts a client process for
// every call, and net/http (with crypto/tls, x509 and http2 behind it)
// made up half of the client's start-up; see README "Performance".
type Client struct {
	path    string
	wait    time.Duration
	maxResp int64
	nextID  atomic.Int64
}

// NewClient returns a client for the daemon listening at socketPath.
func NewClient(socketPath string, opts ClientOptions) *Client {
	wait := opts.WaitTimeout
	if wait == 0 {
		wait = DefaultWaitTimeout
	}
	if wait < 0 {
		wait = 0
	}
	maxResp := opts.MaxResponseBytes
	if maxResp <= 0 {
		maxResp = 256 << 20
	}
	return &Client{path: socketPath, wait: wait, maxResp: maxResp}
}

// SocketPath returns the socket the client calls.
func (c *Client) SocketPath() string { return c.path }

// Call invokes method with params and decodes the result into result (a
// pointer; *json.RawMessage keeps the bytes; nil discards it). A
// daemon-side failure is returned as an *Error; a daemon that cannot be
// reached as an error whose message says what to do.
//
// Only failures to connect are retried (for up to WaitTimeout): a request
// the daemon may have received is never sent twice.
func (c *Client) Call(ctx context.Context, method string, params Params, result any) error {
	id := c.nextID.Add(1)
	body, err := encodeCall(id, method, params)
	if err != nil {
		return err
	}
	return c.call(ctx, id, method, outgoing{body: body}, result)
}

// CallWithFile is Call with the input sent from f instead of params.Input:
// the size bytes at offset off, which must hold one JSON value with no
// white space around it. They go from the file to the socket by sendfile(2),
// never through the client's memory, and unchecked: the daemon takes exactly
// those bytes as the input (their length is in the envelope) and its HF
// parser says what is wrong with them, if anything. This is how ohfp sends
// large documents, getReturnRequests with every host HF holds: reading,
// checking and copying them made up a third of the call.
func (c *Client) CallWithFile(ctx context.Context, method string, params Params, f *os.File, off, size int64, result any) error {
	if len(params.Input) > 0 {
		return fmt.Errorf("cannot call %s: an input both in memory and in a file", method)
	}
	id := c.nextID.Add(1)
	head, err := encodeHead(id, method, params, size)
	if err != nil {
		return err
	}
	return c.call(ctx, id, method, outgoing{body: head, file: f, off: off, size: size, tail: []byte("}}")}, result)
}

// outgoing is a call's body: body, then (when file is set) size bytes of
// file from off, then tail.
type outgoing struct {
	body      []byte
	file      *os.File
	off, size int64
	tail      []byte
}

func (o outgoing) len() int64 { return int64(len(o.body)) + o.size + int64(len(o.tail)) }

func (c *Client) call(ctx context.Context, id int64, method string, body outgoing, result any) error {
	conn, err := c.dial(ctx)
	if err != nil {
		return c.transportError(ctx, method, err)
	}
	status, data, err := c.exchange(ctx, conn, body)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The connection's deadline is the context's: it ends at once.
		<-ctx.Done()
		return c.transportError(ctx, method, err)
	case errors.Is(err, errTooLarge):
		return fmt.Errorf("the answer of ohfpd at %s to %s is larger than %d bytes", c.path, method, c.maxResp)
	case errors.Is(err, errNoAnswer):
		return c.transportError(ctx, method, err)
	case errors.Is(err, errInputFile):
		return fmt.Errorf("cannot send the input of %s: %v", method, err)
	case err != nil:
		return fmt.Errorf("ohfpd at %s stopped while answering %s (it may have been restarted; the call may or may not have taken effect): %v", c.path, method, err)
	}
	r, framed := framedResult(data, id)
	if !framed {
		r, err = decodeResponse(data)
	}
	if err != nil || r.JSONRPC != "2.0" || (r.Error == nil && r.Result == nil) {
		return fmt.Errorf("unexpected answer from %s to %s (HTTP %d): %s", c.path, method, status, snippet(data))
	}
	if r.Error != nil {
		return r.Error
	}
	if !bytes.Equal(r.ID, []byte(strconv.FormatInt(id, 10))) {
		return fmt.Errorf("unexpected answer from %s to %s: id %s, want %d", c.path, method, snippet(r.ID), id)
	}
	if result == nil {
		return nil
	}
	if rm, ok := result.(*json.RawMessage); ok {
		*rm = r.Result // as it came: no second pass over a large answer
		return nil
	}
	if err := json.Unmarshal(r.Result, result); err != nil {
		return fmt.Errorf("cannot read the answer of ohfpd to %s: %v", method, err)
	}
	return nil
}

// dial connects to the socket. The failures a (re)starting daemon explains
// (no socket yet, nobody accepting) are retried with backoff from 50 ms to
// 1 s for up to the wait timeout; nothing has been sent before a
// connection exists, so a retry never repeats a call.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	deadline := time.Now().Add(c.wait)
	d := net.Dialer{Timeout: 5 * time.Second}
	backoff := 50 * time.Millisecond
	for {
		conn, err := d.DialContext(ctx, "unix", c.path)
		if err == nil || !retryableDial(err) || ctx.Err() != nil {
			return conn, err
		}
		rem := time.Until(deadline)
		if rem <= 0 {
			return nil, err
		}
		t := time.NewTimer(min(backoff, rem))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

var (
	errNoAnswer  = errors.New("no answer")
	errTooLarge  = errors.New("answer too large")
	errInputFile = errors.New("input file")
)

// exchange posts body on conn and returns the HTTP status and the answer.
// HTTP/1.0: the server answers with a Content-Length, never chunked, and
// closes the connection. An error wrapping errNoAnswer means nothing of an
// answer arrived.
func (c *Client) exchange(ctx context.Context, conn net.Conn, body outgoing) (int, []byte, error) {
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	head := "POST " + Path + " HTTP/1.0\r\nHost: " + Host + "\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.FormatInt(body.len(), 10) + "\r\n"
	if dl, ok := ctx.Deadline(); ok {
		head += DeadlineHeader + ": " + strconv.FormatInt(dl.UnixMilli(), 10) + "\r\n"
	}
	head += "\r\n"
	bufs := net.Buffers{[]byte(head), body.body}
	if _, err := bufs.WriteTo(conn); err != nil {
		return 0, nil, fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	if body.file != nil {
		if err := sendFile(conn, body.file, body.off, body.size); err != nil {
			// The call is cut short: the daemon reads less than its
			// Content-Length and drops it.
			if !errors.Is(err, errInputFile) {
				err = fmt.Errorf("%w: %w", errNoAnswer, err)
			}
			return 0, nil, err
		}
		if _, err := conn.Write(body.tail); err != nil {
			return 0, nil, fmt.Errorf("%w: %w", errNoAnswer, err)
		}
	}
	r := bufio.NewReaderSize(conn, 32<<10)
	status, length, err := readHead(r)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	if length > c.maxResp {
		return status, nil, errTooLarge
	}
	if length >= 0 {
		data := make([]byte, length)
		_, err := io.ReadFull(r, data)
		return status, data, err
	}
	data, err := io.ReadAll(io.LimitReader(r, c.maxResp+1))
	if err == nil && int64(len(data)) > c.maxResp {
		err = errTooLarge
	}
	return status, data, err
}

// readHead reads an HTTP/1.x status line and header, returning the status
// and the Content-Length (-1 when absent).
func readHead(r *bufio.Reader) (status int, length int64, err error) {
	line, err := readLine(r)
	if err != nil {
		return 0, 0, err
	}
	proto, rest, _ := strings.Cut(line, " ")
	code, _, _ := strings.Cut(rest, " ")
	status, err = strconv.Atoi(code)
	if !strings.HasPrefix(proto, "HTTP/1.") || err != nil || len(code) != 3 {
		return 0, 0, fmt.Errorf("not an HTTP answer: %q", snippet([]byte(line)))
	}
	length = -1
	for {
		line, err := readLine(r)
		if err != nil {
			return 0, 0, err
		}
		if line == "" {
			return status, length, nil
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimSpace(value)
		switch {
		case strings.EqualFold(name, "Content-Length"):
			if length, err = strconv.ParseInt(value, 10, 64); err != nil || length < 0 {
				return 0, 0, fmt.Errorf("bad Content-Length %q", value)
			}
		case strings.EqualFold(name, "Transfer-Encoding") && !strings.EqualFold(value, "identity"):
			return 0, 0, fmt.Errorf("unexpected Transfer-Encoding %q", value)
		}
	}
}

// readLine reads one CRLF- (or LF-) terminated header line of at most
// 32 KiB (the reader's buffer).
func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return "", errors.New("header line too long")
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// encodeCall writes the request envelope. Input and Args are copied byte
// for byte (encoding/json would compact them), so the daemon sees the
// document exactly as HF wrote it and its line numbers match. The input
// comes last, after "inputBytes" (its length): the daemon then takes those
// bytes, unread, and leaves the reading to the HF parser (see readParams).
// An input in memory is checked here all the same (CallWithFile's is not:
// the daemon refuses an input that is not exactly as long as announced, so
// a broken document cannot change the envelope around it either way).
func encodeCall(id int64, method string, p Params) ([]byte, error) {
	in := bytes.Trim(p.Input, " \t\r\n")
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"args", p.Args}, {"input", in}} {
		if len(f.raw) > 0 && !jsontext.Value(f.raw).IsValid() && !json.Valid(f.raw) { // the strict check is the fast one
			return nil, fmt.Errorf("cannot call %s: its %s is not valid JSON", method, f.name)
		}
	}
	size := int64(-1)
	if len(in) > 0 {
		size = int64(len(in))
	}
	b, err := encodeHead(id, method, p, size)
	if err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return b, nil
	}
	b = append(b, in...)
	return append(b, "}}"...), nil
}

// encodeHead writes the envelope up to the input: with an input of size
// bytes (size >= 0), up to and including "input":, for the input and "}}"
// to follow; without one (size < 0), whole.
func encodeHead(id int64, method string, p Params, size int64) ([]byte, error) {
	b := make([]byte, 0, 256+len(p.Args)+int(max(size, 0)))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"method":`...)
	m, err := json.Marshal(method)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the call to %s: %w", method, err)
	}
	b = append(b, m...)
	b = append(b, `,"params":{`...)
	sep := ""
	if len(p.Args) > 0 {
		b = append(b, `"args":`...)
		b = append(b, p.Args...)
		sep = ","
	}
	if len(p.Env) > 0 {
		env, err := json.Marshal(p.Env)
		if err != nil {
			return nil, fmt.Errorf("cannot encode the call to %s: %w", method, err)
		}
		b = append(b, sep+`"env":`...)
		b = append(b, env...)
		sep = ","
	}
	if size < 0 {
		return append(b, "}}"...), nil
	}
	b = append(b, sep+`"inputBytes":`...)
	b = strconv.AppendInt(b, size, 10)
	return append(b, `,"input":`...), nil
}

// framedResult reads a successful answer to call id as ohfpd frames it
// (rpcserver.writeResponse): {"jsonrpc":"2.0","id":ID,"result":RESULT}
// and a newline. RESULT is taken between the two, unread: ohfpd wrote it
// with the encoders fuzzed against encoding/json (internal/hf), and a pass
// over a large answer (300 KB for 100 requests of 10 machines) was a tenth
// of the client's time. Any other answer (an error, another framing) goes
// to decodeResponse.
func framedResult(data []byte, id int64) (Response, bool) {
	var pre [64]byte
	p := append(pre[:0], `{"jsonrpc":"2.0","id":`...)
	p = strconv.AppendInt(p, id, 10)
	p = append(p, `,"result":`...)
	rest, ok := bytes.CutPrefix(data, p)
	if !ok {
		return Response{}, false
	}
	rest = bytes.TrimRight(rest, " \t\r\n")
	if len(rest) < 3 || rest[len(rest)-1] != '}' {
		return Response{}, false
	}
	rest = rest[:len(rest)-1]
	switch rest[0] {
	case '{', '[':
	default:
		return Response{}, false // null, a string, a number: the reference decides
	}
	if c := rest[len(rest)-1]; c != '}' && c != ']' {
		return Response{}, false
	}
	return Response{JSONRPC: "2.0", ID: strconv.AppendInt(nil, id, 10), Result: rest}, true
}

// decodeResponse reads an answer envelope: fastResponse when it can,
// encoding/json otherwise.
func decodeResponse(data []byte) (Response, error) {
	if r, ok := fastResponse(data); ok {
		return r, nil
	}
	var r Response
	err := json.Unmarshal(data, &r)
	return r, err
}

// retryableDial reports whether err is a failure to connect that a daemon
// (re)starting explains: no socket yet, or nobody accepting on it.
func retryableDial(err error) bool {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return false
	}
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EAGAIN)
}

// transportError turns a failed HTTP exchange into a message a person can
// act on.
func (c *Client) transportError(ctx context.Context, method string, err error) error {
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			what := "ohfpd carries out no call that reaches it after its caller stopped waiting, so this call most likely took no effect"
			if method == "requestMachines" {
				what = "ohfpd carries out no call that reaches it after its caller stopped waiting, and cancels a request whose answer it could not deliver, so this call took no effect"
			}
			return fmt.Errorf("ohfpd at %s did not answer %s in time (is it stopped or overloaded? systemctl status ohfpd); %s: `ohfp requests --all` lists every request ohfpd holds",
				c.path, method, what)
		}
		return fmt.Errorf("the call to %s was cancelled: %w", method, ctx.Err())
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		switch {
		case retryableDial(err):
			return fmt.Errorf("ohfpd is not running at %s: systemctl status ohfpd", c.path)
		case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
			return fmt.Errorf("permission denied on %s: %s", c.path, joinHint(c.path))
		}
		return fmt.Errorf("cannot connect to ohfpd at %s: %v", c.path, op.Err)
	}
	return fmt.Errorf("ohfpd at %s closed the connection without answering %s (it may have been restarted; the call may or may not have taken effect: `ohfp requests --all` lists every request ohfpd holds): %v", c.path, method, err)
}

// joinHint says which group to join to use the socket.
func joinHint(path string) string {
	if fi, err := os.Stat(path); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			name := strconv.FormatUint(uint64(st.Gid), 10)
			if g, err := user.LookupGroupId(name); err == nil {
				name = g.Name
			}
			return "add your user to group " + name + " (usermod -aG " + name + " USER) and log in again"
		}
	}
	return "ask an administrator to add your user to the group that owns the socket (usually ohfp) and log in again"
}

func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	if len(b) == 0 {
		return "(empty)"
	}
	return string(b)
}
