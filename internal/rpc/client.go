package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/hashicorp/go-retryablehttp"
)

// DefaultWaitTimeout is how long a client retries a missing or refusing
// socket before it reports that ohfpd is not running.
const DefaultWaitTimeout = 10 * time.Second

// The backoff between two attempts to connect: 50 ms, doubling to 1 s.
const (
	retryWaitMin = 50 * time.Millisecond
	retryWaitMax = time.Second
)

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
// It speaks HTTP/1.1 with net/http, one connection per call (ohfp makes
// one call a process), through go-retryablehttp, whose policy here
// retries only a connection that could not be made (retryableDial): a
// call that was sent, even in part, is never sent again.
type Client struct {
	path    string
	wait    time.Duration
	maxResp int64
	httpc   *http.Client
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
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	tr := &http.Transport{
		Proxy: nil, // never route the socket through a proxy named in the environment
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, "unix", socketPath)
			if err != nil {
				return nil, err
			}
			if uc, ok := conn.(*net.UnixConn); ok {
				return fileConn{uc}, nil
			}
			return conn, nil
		},
		Protocols: &protocols,
		// One call a process, one connection a call: net/http then never
		// resends a call itself (it does only on a reused connection).
		DisableKeepAlives:  true,
		DisableCompression: true,
		// A call of up to 64 KiB (ohfp checks and sends from memory the
		// documents up to that size) leaves in one write with its header.
		WriteBufferSize:        64 << 10,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &Client{
		path:    socketPath,
		wait:    wait,
		maxResp: maxResp,
		httpc: &http.Client{
			Transport: tr,
			// A redirect would send the call again: never follow one.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
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
	return c.call(ctx, id, method, body, result)
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
	body := retryablehttp.ReaderFunc(func() (io.Reader, error) {
		return &fileBody{head: head, f: f, off: off, size: size, tail: []byte("}}")}, nil
	})
	return c.call(ctx, id, method, body, result)
}

var (
	errTooLarge  = errors.New("answer too large")
	errInputFile = errors.New("input file")
)

// call posts body (a []byte, or a ReaderFunc giving a fresh *fileBody for
// each attempt) and reads the answer to call id.
func (c *Client) call(ctx context.Context, id int64, method string, body any, result any) error {
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, "http://"+Host+Path, body)
	if err != nil {
		return fmt.Errorf("cannot build the call to %s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if dl, ok := ctx.Deadline(); ok {
		req.Header.Set(DeadlineHeader, strconv.FormatInt(dl.UnixMilli(), 10))
	}
	resp, err := c.retrying().Do(req)
	switch {
	case err != nil && errors.Is(err, errInputFile) && ctx.Err() == nil:
		// The call is cut short: the daemon reads less than its
		// Content-Length and drops it.
		return fmt.Errorf("cannot send the input of %s: %v", method, unwrapURL(err))
	case err != nil:
		return c.transportError(ctx, method, err)
	}
	defer resp.Body.Close()
	data, err := c.readAnswer(resp)
	switch {
	case errors.Is(err, errTooLarge):
		return fmt.Errorf("the answer of ohfpd at %s to %s is larger than %d bytes", c.path, method, c.maxResp)
	case err != nil && ctx.Err() != nil:
		return c.transportError(ctx, method, err)
	case err != nil:
		return fmt.Errorf("ohfpd at %s stopped while answering %s (it may have been restarted; the call may or may not have taken effect): %v", c.path, method, err)
	}
	r, framed := framedResult(data, id)
	if !framed {
		r, err = decodeResponse(data)
	}
	if err != nil || r.JSONRPC != "2.0" || (r.Error == nil && r.Result == nil) {
		return fmt.Errorf("unexpected answer from %s to %s (HTTP %d): %s", c.path, method, resp.StatusCode, snippet(data))
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

// retrying returns the go-retryablehttp client of one call. It retries the
// failures to connect that a (re)starting daemon explains (no socket yet,
// nobody accepting), with backoff from 50 ms doubling to 1 s, for up to
// the wait timeout from now; nothing has been sent before a connection
// exists, so a retry never repeats a call. Any answer, and any other
// failure, ends the call. It logs nothing: ohfp's stdout is HF's.
func (c *Client) retrying() *retryablehttp.Client {
	deadline := time.Now().Add(c.wait)
	return &retryablehttp.Client{
		HTTPClient:   c.httpc,
		Logger:       nil,
		RetryWaitMin: retryWaitMin,
		RetryWaitMax: retryWaitMax,
		RetryMax:     math.MaxInt32, // bounded by the deadline instead
		CheckRetry: func(ctx context.Context, resp *http.Response, err error) (bool, error) {
			return resp == nil && err != nil && ctx.Err() == nil && retryableDial(err) && time.Now().Before(deadline), nil
		},
		Backoff: func(lo, hi time.Duration, attempt int, _ *http.Response) time.Duration {
			return backoff(lo, hi, attempt, time.Until(deadline))
		},
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
}

// backoff is the wait before attempt+1 (attempt counts from 0): lo
// doubled attempt times, at most hi, and no longer than rem.
func backoff(lo, hi time.Duration, attempt int, rem time.Duration) time.Duration {
	d := hi
	if attempt < 30 {
		d = min(lo<<attempt, hi)
	}
	return max(min(d, rem), 0)
}

// readAnswer reads the body of resp, at most c.maxResp bytes, sized once
// from its Content-Length when there is one.
func (c *Client) readAnswer(resp *http.Response) ([]byte, error) {
	if resp.ContentLength > c.maxResp {
		return nil, errTooLarge
	}
	if resp.ContentLength >= 0 {
		data := make([]byte, resp.ContentLength)
		_, err := io.ReadFull(resp.Body, data)
		return data, err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResp+1))
	if err == nil && int64(len(data)) > c.maxResp {
		err = errTooLarge
	}
	return data, err
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
// (rpcserver's Server.ServeHTTP, which writes results; writeResponse
// writes only errors): {"jsonrpc":"2.0","id":ID,"result":RESULT} and a
// newline. RESULT is taken between the two, unread: ohfpd wrote it
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

// ErrNoAnswer and ErrPermission are kinds of failed call a caller may act
// on (errors.Is): ohfpd did not answer in time (hung, stopped with
// SIGSTOP, overloaded), and the caller may not open ohfpd's socket.
// ohfp status tells them apart from ohfpd's health.
var (
	ErrNoAnswer   = errors.New("ohfpd did not answer in time")
	ErrPermission = errors.New("permission denied on ohfpd's socket")
)

// kindError is a message for a person that is also one of the kinds
// above.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// viewMethods change nothing: a call of theirs that timed out needs no
// word on whether it took effect.
var viewMethods = map[string]bool{"status": true, "requests": true, "machines": true, "show": true,
	"getAvailableTemplates": true, "getRequestStatus": true}

// transportError turns a failed HTTP exchange into a message a person can
// act on.
func (c *Client) transportError(ctx context.Context, method string, err error) error {
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			if viewMethods[method] {
				return &kindError{ErrNoAnswer, fmt.Sprintf("ohfpd at %s did not answer %s in time (is it stopped, hung or overloaded? systemctl status ohfpd)", c.path, method)}
			}
			what := "ohfpd carries out no call that reaches it after its caller stopped waiting, so this call most likely took no effect"
			if method == "requestMachines" {
				what = "ohfpd carries out no call that reaches it after its caller stopped waiting, and cancels a request whose answer it could not deliver, so this call took no effect"
			}
			return &kindError{ErrNoAnswer, fmt.Sprintf("ohfpd at %s did not answer %s in time (is it stopped or overloaded? systemctl status ohfpd); %s: `ohfp requests --all` lists every request ohfpd holds",
				c.path, method, what)}
		}
		return fmt.Errorf("the call to %s was cancelled: %w", method, ctx.Err())
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		switch {
		case retryableDial(err):
			return fmt.Errorf("ohfpd is not running at %s: systemctl status ohfpd", c.path)
		case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
			return &kindError{ErrPermission, fmt.Sprintf("permission denied on %s: %s", c.path, joinHint(c.path))}
		}
		return fmt.Errorf("cannot connect to ohfpd at %s: %v", c.path, op.Err)
	}
	return fmt.Errorf("ohfpd at %s closed the connection without answering %s (it may have been restarted; the call may or may not have taken effect: `ohfp requests --all` lists every request ohfpd holds): %v", c.path, method, unwrapURL(err))
}

// unwrapURL drops the `Post "http://ohfpd/v1/rpc": ` net/http puts before
// an error: the socket path, not that URL, says where the call went.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
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
