package main

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lmittmann/tint"
	"golang.org/x/sys/unix"
)

// newLogger builds the daemon's logger: tint with colour on a terminal;
// under journald (JOURNAL_STREAM set) plain key=value lines without
// timestamps, since the journal stamps them; plain text otherwise; JSON
// when asked.
//
// The level filters in a levelHandler (calllevel.go): an HF call may log
// at its own level (HF_LOGLEVEL with accept_propagated_log_setting).
func newLogger(level slog.Level, format string, w io.Writer) *slog.Logger {
	return slog.New(&levelHandler{inner: newHandler(format, w), base: level})
}

// newHandler is the handler of newLogger, letting every level through.
func newHandler(format string, w io.Writer) slog.Handler {
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	switch format {
	case "json":
		return slog.NewJSONHandler(w, opts)
	case "text":
		return slog.NewTextHandler(w, opts)
	}
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		return tint.NewHandler(w, &tint.Options{Level: slog.LevelDebug, TimeFormat: time.TimeOnly})
	}
	if os.Getenv("JOURNAL_STREAM") != "" {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.NewTextHandler(w, opts)
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// levelFromEnv reads HF_LOGLEVEL of ohfpd's own environment (HF's
// spellings, parseHFLevel); INFO when unset or unknown.
func levelFromEnv() slog.Level {
	if l, ok := parseHFLevel(os.Getenv("HF_LOGLEVEL")); ok {
		return l
	}
	return slog.LevelInfo
}
