// Package rpcserver is ohfpd's side of the socket: it serves the JSON-RPC
// calls of package rpc over HTTP on a Unix socket, checks each caller's
// credentials (SO_PEERCRED), and creates the socket (Listen). It is kept
// apart from package rpc so that the ohfp client links none of the
// daemon's side (peer credentials, the answer hooks' delivery, pooling).
package rpcserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/quiet"
	"github.com/ohfp/ohfp/internal/rpc"
)

// Handler answers calls. ohfpd's is package api's.
//
// Call returns the result to send (marshalled with encoding/json; a
// json.RawMessage passes through) or an error. An *rpc.Error is sent as is
// (package api maps the core's errors to codes); any other error is
// rpc.Internal, with its message. The context carries the caller's peer
// credentials (PeerFromContext).
type Handler interface {
	Call(ctx context.Context, method string, params rpc.Params) (any, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, method string, params rpc.Params) (any, error)

// Call calls f.
func (f HandlerFunc) Call(ctx context.Context, method string, params rpc.Params) (any, error) {
	return f(ctx, method, params)
}

// ServerOptions configure a Server. The zero value serves everyone who can
// open the socket, with an 8 MiB body limit and no logging.
type ServerOptions struct {
	// Logger receives refusals, handler failures and panics. Nil: discard.
	Logger *slog.Logger
	// MaxBodyBytes bounds a request body; 0 means rpc.DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// AllowedUIDs and AllowedGIDs name who may call besides root and the
	// daemon's own user: a caller is allowed when its uid is listed or one
	// of its groups (primary or supplementary) is. When both are empty
	// everyone who can open the socket may call (the socket's mode and group
	// are the guard).
	AllowedUIDs []uint32
	AllowedGIDs []uint32
	// Extra, if set, serves every path other than rpc.Path (e.g. /metrics),
	// behind the same peer-credential check.
	Extra http.Handler
	// Gate, if set, is told of every call on rpc.Path, so that background
	// work can wait for a pause in them (package quiet).
	Gate *quiet.Gate
}

// Peer is the identity of the process at the other end of a connection, as
// the kernel reports it (SO_PEERCRED, SO_PEERGROUPS).
type Peer struct {
	UID uint32
	GID uint32
	PID int32
	// Groups are the caller's supplementary groups, from the kernel; nil
	// when it did not tell (then the user's groups are looked up).
	Groups []uint32
}

type peerKey struct{}

// PeerFromContext returns the caller's credentials, if they could be read.
func PeerFromContext(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// Server serves JSON-RPC calls on Unix-socket listeners.
type Server struct {
	h    Handler
	opts ServerOptions
	log  *slog.Logger
	http *http.Server

	// Injectable for tests.
	selfUID  uint32
	peerOf   func(net.Conn) (Peer, error)
	groupsOf func(uid uint32) ([]uint32, error)
	nameOf   func(gid uint32) string
	now      func() time.Time

	mu         sync.Mutex
	groupCache map[uint32]groupEntry
}

type groupEntry struct {
	gids []uint32
	at   time.Time
}

// groupCacheTTL is how long a user's supplementary groups are remembered.
const groupCacheTTL = time.Minute

// NewServer returns a server that dispatches calls to h.
func NewServer(h Handler, opts ServerOptions) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = rpc.DefaultMaxBodyBytes
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		h:          h,
		opts:       opts,
		log:        log,
		selfUID:    uint32(os.Getuid()),
		peerOf:     peerCred,
		groupsOf:   lookupGroups,
		nameOf:     groupName,
		now:        time.Now,
		groupCache: map[uint32]groupEntry{},
	}
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			p, err := s.peerOf(c)
			if err != nil {
				s.log.Debug("cannot read peer credentials", "err", err)
				return ctx
			}
			return context.WithValue(ctx, peerKey{}, p)
		},
	}
	return s
}

// Serve accepts connections on ln until Shutdown. It returns nil after
// Shutdown, else the listener's error.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for calls in flight to
// finish, or for ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.http.Shutdown(ctx)
}

// ServeHTTP serves one HTTP request: rpc.Path takes JSON-RPC calls, other paths
// go to ServerOptions.Extra.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	peer, known := PeerFromContext(r.Context())
	if e := s.authorize(peer, known); e != nil {
		s.log.Warn("refused a caller", "uid", peer.UID, "gid", peer.GID, "pid", peer.PID, "credentials_known", known, "path", r.URL.Path)
		writeResponse(w, httpStatus(e.Code), nil, e)
		return
	}
	if r.URL.Path != rpc.Path {
		if s.opts.Extra != nil {
			s.opts.Extra.ServeHTTP(w, r)
			return
		}
		writeResponse(w, http.StatusNotFound, nil, rpc.Errorf(rpc.MethodNotFound, "no such endpoint %s: ohfpd answers JSON-RPC on POST %s", r.URL.Path, rpc.Path))
		return
	}
	s.opts.Gate.Begin()
	defer s.opts.Gate.End()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeResponse(w, http.StatusMethodNotAllowed, nil, rpc.Errorf(rpc.InvalidRequest, "%s %s is not allowed: use POST", r.Method, rpc.Path))
		return
	}
	body, release, err := readBody(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes), r.ContentLength, s.opts.MaxBodyBytes)
	defer release()
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.log.Warn("refused an oversized call", "limit", tooBig.Limit, "uid", peer.UID)
			writeResponse(w, http.StatusRequestEntityTooLarge, nil, rpc.Errorf(rpc.InvalidRequest,
				"the call is larger than the %d bytes ohfpd accepts; HF documents are limited to %d bytes", tooBig.Limit, hf.MaxInputBytes))
			return
		}
		writeResponse(w, http.StatusBadRequest, nil, rpc.Errorf(rpc.InvalidRequest, "cannot read the call: %v", err))
		return
	}
	req, params, e := rpc.DecodeRequest(body)
	if e != nil {
		writeResponse(w, httpStatus(e.Code), req.ID, e)
		return
	}
	if e := s.late(r, req.Method, peer); e != nil {
		writeResponse(w, httpStatus(e.Code), req.ID, e)
		return
	}
	ctx, hooks := rpc.WithAnswerHooks(r.Context())
	// The result is encoded straight into the answer's envelope, in a
	// pooled buffer: getRequestStatus for 100 requests answers 300 KB, and
	// a fresh buffer for the result and another for the envelope were most
	// of what the daemon allocated per call (and so of its collections).
	p, _ := answerPool.Get().(*[]byte)
	if p == nil {
		b := make([]byte, 0, 4<<10)
		p = &b
	}
	b := append((*p)[:0], `{"jsonrpc":"2.0","id":`...)
	b = append(b, req.ID...) // checked by rpc.DecodeRequest: a number or a string
	b = append(b, `,"result":`...)
	b, e = s.call(ctx, req.Method, params, peer, b)
	if e != nil {
		writeResponse(w, httpStatus(e.Code), req.ID, e)
		hooks.Run(false)
	} else {
		b = append(b, "}\n"...)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		_, werr := w.Write(b) // copied out (to the socket or net/http's buffer) when it returns
		if werr == nil {
			// Out to the socket now: an answer the caller can no longer
			// take (it went away) fails here, not in net/http's buffer.
			werr = http.NewResponseController(w).Flush()
		}
		if werr != nil {
			s.log.Warn("the answer could not be delivered; the caller went away", "method", req.Method, "uid", peer.UID, "pid", peer.PID, "err", werr)
		}
		hooks.Run(werr == nil)
	}
	if cap(b) <= maxPooledAnswer {
		*p = b[:0]
		answerPool.Put(p)
	}
}

// late refuses a call that reaches ohfpd after its caller stopped waiting
// (rpc.DeadlineHeader), or whose caller has already gone: carrying it out
// would act on a call HF was told failed.
func (s *Server) late(r *http.Request, method string, peer Peer) *rpc.Error {
	gone := r.Context().Err() != nil
	var over time.Duration
	if v := r.Header.Get(rpc.DeadlineHeader); v != "" {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			over = time.Since(time.UnixMilli(ms)) // the client's wall clock, this host's
		}
	}
	if !gone && over <= 0 {
		return nil
	}
	s.log.Warn("refused a call that arrived after its caller stopped waiting; it was not carried out", "method", method, "late", over.Round(time.Millisecond), "caller_gone", gone, "uid", peer.UID)
	return rpc.Errorf(rpc.Unavailable, "%s reached ohfpd %s after its caller stopped waiting (ohfpd was stopped or overloaded); it was not carried out: call again",
		method, max(over, 0).Round(time.Millisecond))
}

// maxPooledAnswer bounds the answers whose buffers are kept for the next.
const maxPooledAnswer = 4 << 20

var answerPool sync.Pool // of *[]byte

// readBody reads a call, sized once from its Content-Length when that is
// given and within limit (a large call is not grown by doubling). A call
// over pooledBody bytes is read into a buffer from bodyPool, which release
// returns there: getReturnRequests brings every host HF holds (720 KB at
// 10,000), and a fresh buffer for each was most of what the daemon
// allocated per call. Nothing may refer to the body after release: the
// HF parsers and the envelope decoders copy what they keep.
func readBody(r io.Reader, length, limit int64) (body []byte, release func(), err error) {
	if length <= 0 || length > limit {
		body, err = io.ReadAll(r)
		return body, func() {}, err
	}
	size := int(length) + bytes.MinRead // room for ReadFrom to see the end
	release = func() {}
	var b []byte
	if length > pooledBody {
		p, _ := bodyPool.Get().(*[]byte)
		if p == nil || cap(*p) < size {
			b := make([]byte, 0, size)
			p = &b
		}
		b = (*p)[:0]
		release = func() { bodyPool.Put(p) }
	} else {
		b = make([]byte, 0, size)
	}
	buf := bytes.NewBuffer(b)
	_, err = buf.ReadFrom(r)
	return buf.Bytes(), release, err
}

// pooledBody is the size above which calls are read into pooled buffers.
const pooledBody = 64 << 10

var bodyPool sync.Pool // of *[]byte

// call runs the handler, turning its error or panic into an *rpc.Error, and
// appends its result, as JSON, to dst.
func (s *Server) call(ctx context.Context, method string, params rpc.Params, peer Peer, dst []byte) (result []byte, rerr *rpc.Error) {
	start := s.now()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in handler", "method", method, "panic", p, "stack", string(debug.Stack()))
			result, rerr = nil, rpc.Errorf(rpc.Internal, "internal error in ohfpd while handling %s (details in the ohfpd log); the call was not completed, ohfpd keeps serving", method)
		}
	}()
	out, err := s.h.Call(ctx, method, params)
	if err != nil {
		e := toError(err)
		level := slog.LevelInfo
		if e.Code == rpc.Internal || e.Code == rpc.Unavailable {
			level = slog.LevelError
		}
		s.log.Log(ctx, level, "call failed", "method", method, "code", e.Code, "err", e.Message, "uid", peer.UID, "elapsed", s.now().Sub(start))
		return nil, e
	}
	if a, ok := out.(Appender); ok {
		return a.AppendJSON(dst), nil
	}
	b, err := json.Marshal(out)
	if err != nil {
		s.log.Error("cannot encode a result", "method", method, "err", err)
		return nil, rpc.Errorf(rpc.Internal, "internal error in ohfpd: cannot encode the answer to %s: %v", method, err)
	}
	return append(dst, b...), nil
}

// toError puts a handler's error on the wire: an *rpc.Error as it is (the
// codes are chosen by package api), anything else as rpc.Internal.
func toError(err error) *rpc.Error {
	var e *rpc.Error
	if errors.As(err, &e) {
		return e
	}
	return &rpc.Error{Code: rpc.Internal, Message: err.Error()}
}

// writeResponse writes a JSON-RPC error answer. A nil id is written as
// null. (Results are written by ServeHTTP, into the envelope directly.)
func writeResponse(w http.ResponseWriter, status int, id json.RawMessage, e *rpc.Error) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	resp := rpc.Response{JSONRPC: "2.0", ID: id, Error: e}
	b, err := json.Marshal(resp)
	if err != nil { // only a malformed id could do this; rpc.DecodeRequest rules it out
		b = []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error in ohfpd: cannot encode the answer"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// authorize checks a caller against the configured users and groups.
func (s *Server) authorize(p Peer, known bool) *rpc.Error {
	if len(s.opts.AllowedUIDs) == 0 && len(s.opts.AllowedGIDs) == 0 {
		return nil
	}
	if !known {
		return rpc.Errorf(rpc.PermissionDenied, "permission denied: ohfpd cannot tell who is calling (no peer credentials on this connection)")
	}
	if p.UID == 0 || p.UID == s.selfUID || contains(s.opts.AllowedUIDs, p.UID) || contains(s.opts.AllowedGIDs, p.GID) {
		return nil
	}
	gids := p.Groups
	if gids == nil {
		var err error
		if gids, err = s.groups(p.UID); err != nil {
			s.log.Warn("cannot look up the groups of a caller", "uid", p.UID, "err", err)
		}
	}
	for _, g := range gids {
		if contains(s.opts.AllowedGIDs, g) {
			return nil
		}
	}
	hint := "allow it in the ohfpd configuration"
	if len(s.opts.AllowedGIDs) > 0 {
		hint = "add it to group " + s.nameOf(s.opts.AllowedGIDs[0])
	}
	return rpc.Errorf(rpc.PermissionDenied, "permission denied: uid %d is not allowed to use ohfpd (%s)", p.UID, hint)
}

// groups returns uid's groups, cached for groupCacheTTL.
func (s *Server) groups(uid uint32) ([]uint32, error) {
	now := s.now()
	s.mu.Lock()
	e, ok := s.groupCache[uid]
	s.mu.Unlock()
	if ok && now.Sub(e.at) < groupCacheTTL {
		return e.gids, nil
	}
	gids, err := s.groupsOf(uid)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.groupCache[uid] = groupEntry{gids: gids, at: now}
	s.mu.Unlock()
	return gids, nil
}

func contains(list []uint32, v uint32) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// lookupGroups returns the groups of the user with the given uid.
func lookupGroups(uid uint32) ([]uint32, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return nil, err
	}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, err
	}
	out := make([]uint32, 0, len(ids))
	for _, id := range ids {
		if n, err := strconv.ParseUint(id, 10, 32); err == nil {
			out = append(out, uint32(n))
		}
	}
	return out, nil
}

// groupName returns the name of group gid, or "with gid N".
func groupName(gid uint32) string {
	if g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10)); err == nil {
		return g.Name
	}
	return "with gid " + strconv.FormatUint(uint64(gid), 10)
}

// httpStatus is the HTTP status sent with an error code. JSON-RPC over HTTP
// keeps 200 for answered calls; transport-level refusals get their own.
func httpStatus(code int) int {
	switch code {
	case rpc.ParseError, rpc.InvalidRequest:
		return http.StatusBadRequest
	case rpc.PermissionDenied:
		return http.StatusForbidden
	}
	return http.StatusOK
}

// Appender is a result that writes its own JSON, compact and valid (the HF
// answers do): the server appends it as it is, where json.Marshal would
// scan a large answer once more to check and compact it.
type Appender interface {
	AppendJSON(b []byte) []byte
}
