// Package rpc carries HF calls and sysadmin commands from the ohfp client to
// the ohfpd daemon: JSON-RPC 2.0 over HTTP on a Unix socket.
//
// A call is POST /v1/rpc (Host "ohfpd") with the body, compact and in
// this order (encodeCall; the daemon reads other orders too, slower)
//
//	{"jsonrpc":"2.0","id":1,"method":"requestMachines",
//	 "params":{"env":{"HF_PROVIDER_NAME":...},"inputBytes":N,"input":<the raw HF document>}}
//
// where the HF document comes last, byte for byte, after its length N (a
// sysadmin command sends "args" first instead, and no input). It is
// answered, with a newline after the envelope,
// {"jsonrpc":"2.0","id":1,"result":<the HF answer>} or
// {"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"..."}}.
//
// This package is the wire (envelopes, codes, their decoding) and the
// client. It must stay light: the static client binary links it, so it
// imports neither the AWS SDK, Badger, prometheus nor the daemon's core.
// The client speaks HTTP/1.1 with net/http through go-retryablehttp, which
// retries only a connection that could not be made, within the wait, and
// never a call once sent (see Client). The daemon's side, with peer
// credentials and the socket, is package rpcserver.
package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Path is the HTTP path every call is posted to.
const Path = "/v1/rpc"

// Host is the placeholder HTTP Host the client sends; the socket path, not
// the host, says where the daemon is.
const Host = "ohfpd"

// DefaultSocket is where ohfpd listens unless configured otherwise.
const DefaultSocket = "/run/ohfp/ohfp.sock"

// DefaultMaxBodyBytes bounds a request body: an HF document (at most 4 MiB)
// plus the envelope, with room to spare.
const DefaultMaxBodyBytes = 8 << 20

// Error codes. The JSON-RPC 2.0 ones, and ohfp's own in the server range.
const (
	ParseError       = -32700 // the body is not JSON
	InvalidRequest   = -32600 // the body is JSON but not a JSON-RPC 2.0 request
	MethodNotFound   = -32601 // no such method
	InvalidInput     = -32602 // the params (the HF document) are refused
	Internal         = -32603 // a fault inside ohfpd
	PermissionDenied = -32001 // the caller's uid may not use ohfpd
	Unavailable      = -32003 // ohfpd cannot serve now (starting, stopping, store down)
	NotFound         = -32004 // the thing asked about does not exist
)

// Env names the HF environment variables the client forwards: HF's
// provider variables, HF's per-call log level (HF_LOGLEVEL, applied to
// the call when the provider has accept_propagated_log_setting) and LSF's
// SCRIPT_OPTIONS (its clusterName=, exported to the hosts' user data).
var Env = []string{"HF_PROVIDER_NAME", "HF_PROVIDER_CONFDIR", "HF_PROVIDER_WORKDIR", "HF_PROVIDER_LOGDIR", "HF_LOGLEVEL", "SCRIPT_OPTIONS"}

// Error is a JSON-RPC error: what a daemon-side failure looks like on the
// wire and what Client.Call returns for it. Message is meant for a person
// (it ends up in HF's log).
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Error returns the message alone: it is what HF shows.
func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of the *Error in err's chain, or 0.
func CodeOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// Params are the parameters of every method.
type Params struct {
	// Input is the HF document, forwarded byte for byte (less surrounding
	// white space) so the daemon's line numbers match the caller's file.
	Input json.RawMessage `json:"input,omitempty"`
	// Env holds the HF_PROVIDER_* variables of the caller that were set.
	Env map[string]string `json:"env,omitempty"`
	// Args carries a sysadmin command's arguments.
	Args json.RawMessage `json:"args,omitempty"`
}

// Request is the JSON-RPC 2.0 request envelope.
type Request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
}

// Response is the JSON-RPC 2.0 response envelope.
type Response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

// DeadlineHeader carries the wall-clock time (Unix milliseconds) after
// which the client no longer waits for the answer. ohfpd carries out no
// call that reaches it after that: a daemon that was stopped (SIGSTOP, a
// stalled disk) must not act on a call its caller already reported failed.
const DeadlineHeader = "Ohfp-Deadline"

type answerHooksKey struct{}

// AnswerHooks are what a handler asks to run once its answer has been
// written to the caller, or could not be.
type AnswerHooks struct{ fns []func(delivered bool) }

// WithAnswerHooks returns a context whose handlers' AfterAnswer calls
// collect in the returned hooks; the server runs them after writing the
// answer.
func WithAnswerHooks(ctx context.Context) (context.Context, *AnswerHooks) {
	h := &AnswerHooks{}
	return context.WithValue(ctx, answerHooksKey{}, h), h
}

// AfterAnswer arranges for fn to run once the answer to the call of ctx
// has been written (delivered true) or could not be (the caller went
// away). Without a server that delivers answers (ctx has no hooks), fn
// runs at once with true.
func AfterAnswer(ctx context.Context, fn func(delivered bool)) {
	if h, ok := ctx.Value(answerHooksKey{}).(*AnswerHooks); ok {
		h.fns = append(h.fns, fn)
		return
	}
	fn(true)
}

// Run runs the hooks, once each.
func (h *AnswerHooks) Run(delivered bool) {
	fns := h.fns
	h.fns = nil
	for _, fn := range fns {
		fn(delivered)
	}
}
