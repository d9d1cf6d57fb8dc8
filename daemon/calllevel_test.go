package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestParseHFLevel: HF's spellings (IBM's LOG_* names, with or without
// LOG_, any case) and plain words; unknown values are not a level.
func TestParseHFLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{
		"LOG_DEBUG": slog.LevelDebug, "LOG_TRACE": slog.LevelDebug, "debug": slog.LevelDebug, "DEBUG": slog.LevelDebug,
		"LOG_INFO": slog.LevelInfo, "LOG_NOTICE": slog.LevelInfo, "info": slog.LevelInfo,
		"LOG_WARNING": slog.LevelWarn, "LOG_WARN": slog.LevelWarn, "warn": slog.LevelWarn,
		"LOG_ERR": slog.LevelError, "LOG_ERROR": slog.LevelError, "LOG_CRIT": slog.LevelError, "error": slog.LevelError,
	} {
		if got, ok := parseHFLevel(in); !ok || got != want {
			t.Errorf("parseHFLevel(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "LOG_", "verbose", "3"} {
		if _, ok := parseHFLevel(in); ok {
			t.Errorf("parseHFLevel(%q) took it as a level", in)
		}
	}
}

// TestCallLevel: a context with a call level logs at that level, more or
// less than the daemon's; others (and loggers derived With attributes)
// keep the daemon's.
func TestCallLevel(t *testing.T) {
	var b bytes.Buffer
	log := newLogger(slog.LevelInfo, "text", &b).With("component", "x")
	debugCtx := withCallLevel(context.Background(), slog.LevelDebug)
	errCtx := withCallLevel(context.Background(), slog.LevelError)
	log.Debug("d-plain")
	log.DebugContext(debugCtx, "d-call")
	log.InfoContext(errCtx, "i-quiet-call")
	log.Info("i-plain")
	out := b.String()
	for want, in := range map[string]bool{"d-plain": false, "d-call": true, "i-quiet-call": false, "i-plain": true} {
		if strings.Contains(out, want) != in {
			t.Errorf("%s logged = %v, want %v:\n%s", want, !in, in, out)
		}
	}
}
