package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	tr := &http.Transport{
		Proxy: nil, // never route the socket through an HTTP proxy from the environment
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", socketPath)
		},
		DisableCompression:  true,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Client{
		path:    socketPath,
		wait:    wait,
		maxResp: maxResp,
		httpc:   &http.Client{Transport: tr},
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

	deadline := time.Now().Add(c.wait)
	rc := &retryablehttp.Client{
		HTTPClient:   c.httpc,
		Logger:       nil, // silent: the client's stdout and stderr belong to HF
		RetryWaitMin: 50 * time.Millisecond,
		RetryWaitMax: time.Second,
		RetryMax:     1 << 30, // bounded by the deadline instead
		CheckRetry: func(ctx context.Context, _ *http.Response, err error) (bool, error) {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return err != nil && retryableDial(err) && time.Now().Before(deadline), nil
		},
		Backoff: func(lo, hi time.Duration, attempt int, _ *http.Response) time.Duration {
			d := lo << min(attempt, 20)
			if d > hi || d <= 0 {
				d = hi
			}
			if rem := time.Until(deadline); d > rem {
				d = max0(rem)
			}
			return d
		},
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, "http://"+Host+Path, body)
	if err != nil {
		return fmt.Errorf("cannot build the call to %s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := rc.Do(req)
	if err != nil {
		return c.transportError(ctx, method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResp+1))
	if err != nil {
		return fmt.Errorf("ohfpd at %s stopped while answering %s (it may have been restarted; the call may or may not have taken effect): %v", c.path, method, err)
	}
	if int64(len(data)) > c.maxResp {
		return fmt.Errorf("the answer of ohfpd at %s to %s is larger than %d bytes", c.path, method, c.maxResp)
	}
	r, err := decodeResponse(data)
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

// encodeCall writes the request envelope. Input and Args are copied byte
// for byte (encoding/json would compact them), so the daemon sees the
// document exactly as HF wrote it and its line numbers match.
func encodeCall(id int64, method string, p Params) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc":"2.0","id":`)
	b.WriteString(strconv.FormatInt(id, 10))
	b.WriteString(`,"method":`)
	m, err := json.Marshal(method)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the call to %s: %w", method, err)
	}
	b.Write(m)
	b.WriteString(`,"params":{`)
	sep := ""
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"input", p.Input}, {"args", p.Args}} {
		if len(f.raw) == 0 {
			continue
		}
		if !jsontext.Value(f.raw).IsValid() && !json.Valid(f.raw) { // the strict check is the fast one
			return nil, fmt.Errorf("cannot call %s: its %s is not valid JSON", method, f.name)
		}
		b.WriteString(sep + `"` + f.name + `":`)
		b.Write(f.raw)
		sep = ","
	}
	if len(p.Env) > 0 {
		env, err := json.Marshal(p.Env)
		if err != nil {
			return nil, fmt.Errorf("cannot encode the call to %s: %w", method, err)
		}
		b.WriteString(sep + `"env":`)
		b.Write(env)
	}
	b.WriteString("}}")
	return b.Bytes(), nil
}

// decodeResponse reads an answer envelope: fastResponse when it can,
// encoding/json otherwise.
func decodeResponse(data []byte) (response, error) {
	if r, ok := fastResponse(data); ok {
		return r, nil
	}
	var r response
	err := json.Unmarshal(data, &r)
	return r, err
}

func max0(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d
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
			return fmt.Errorf("ohfpd at %s did not answer %s in time", c.path, method)
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
	return fmt.Errorf("ohfpd at %s closed the connection without answering %s (it may have been restarted; the call may or may not have taken effect): %v", c.path, method, err)
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
