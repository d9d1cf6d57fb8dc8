package main

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/rpc"
	"github.com/ohfp/ohfp/internal/rpcserver"
)

// HF's per-call log level (IBM's ACCEPT_PROPAGATED_LOG_SETTING): HF calls
// its provider scripts with HF_LOGLEVEL, the client forwards it, and when
// the provider the call names accepts it, ohfpd logs that call (the lines
// written with its context) at that level, more or less than the
// daemon's own. Other calls and the background loops keep the daemon's
// level.

type callLevelKey struct{}

// withCallLevel returns ctx carrying a log level for the lines of one call.
func withCallLevel(ctx context.Context, l slog.Level) context.Context {
	return context.WithValue(ctx, callLevelKey{}, l)
}

// parseHFLevel reads HF_LOGLEVEL in HF's spellings (LOG_DEBUG, LOG_INFO,
// LOG_WARNING, LOG_ERR..., the syslog-style names of IBM's
// hostfactoryconf.json, with or without LOG_, any letter case) and plain
// words (debug, warn, error). ok is false for an empty or unknown value.
func parseHFLevel(s string) (slog.Level, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "LOG_")
	switch s {
	case "TRACE", "DEBUG":
		return slog.LevelDebug, true
	case "INFO", "NOTICE":
		return slog.LevelInfo, true
	case "WARN", "WARNING":
		return slog.LevelWarn, true
	case "ERR", "ERROR", "CRIT", "CRITICAL", "ALERT", "EMERG", "FATAL":
		return slog.LevelError, true
	}
	return 0, false
}

// levelHandler filters records by the call's level when the context
// carries one, else by the daemon's level; the handler it wraps lets
// everything through.
type levelHandler struct {
	inner slog.Handler
	base  slog.Leveler
}

func (h *levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if ctx != nil {
		if cl, ok := ctx.Value(callLevelKey{}).(slog.Level); ok {
			return l >= cl
		}
	}
	return l >= h.base.Level()
}

func (h *levelHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.inner.Handle(ctx, r)
}

func (h *levelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &levelHandler{inner: h.inner.WithAttrs(as), base: h.base}
}

func (h *levelHandler) WithGroup(name string) slog.Handler {
	return &levelHandler{inner: h.inner.WithGroup(name), base: h.base}
}

// callLogger wraps the socket's handler: an HF call whose provider
// accepts HF's log level is served with that level in its context, and
// each HF call is logged at DEBUG (what was asked, how it went, how long
// it took), which a call at LOG_DEBUG shows and the daemon's INFO hides.
type callLogger struct {
	inner  rpcserver.Handler
	log    *slog.Logger
	accept func(provider string) bool // the provider's accept_propagated_log_setting
}

func (c *callLogger) Call(ctx context.Context, method string, p rpc.Params) (any, error) {
	if v := p.Env["HF_LOGLEVEL"]; v != "" && c.accept(p.Env["HF_PROVIDER_NAME"]) {
		if l, ok := parseHFLevel(v); ok {
			ctx = withCallLevel(ctx, l)
		}
	}
	hfCall := isHFOp(method)
	if hfCall {
		c.log.DebugContext(ctx, "HF call", "op", method, "provider", p.Env["HF_PROVIDER_NAME"], "input_bytes", len(p.Input))
	}
	start := time.Now()
	out, err := c.inner.Call(ctx, method, p)
	if hfCall {
		if err != nil {
			c.log.DebugContext(ctx, "HF call refused", "op", method, "err", err, "took", time.Since(start))
		} else {
			c.log.DebugContext(ctx, "HF call answered", "op", method, "took", time.Since(start))
		}
	}
	return out, err
}

func isHFOp(m string) bool { return slices.Contains(hf.Operations, m) }

// acceptsHFLevel says whether the named provider (the first when the call
// names none) has accept_propagated_log_setting in the configuration now
// in force.
func (d *daemon) acceptsHFLevel(provider string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range d.cfg.Providers {
		if p := &d.cfg.Providers[i]; p.Name == provider || provider == "" && i == 0 {
			return p.AcceptPropagatedLogSetting
		}
	}
	return false
}
