// Package sdklog routes what the AWS SDK logs into ohfpd's log (slog).
package sdklog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/smithy-go/logging"
)

// New routes what the AWS SDK logs (such as the IMDS client's
// "falling back to IMDSv1") into ohfpd's log, in its format and with
// component=aws-sdk, instead of the SDK's default, a line of its own on
// standard error ("SDK 2026/11/30 18:05:57 WARN ..."). Set it as
// aws.Config.Logger (config.WithLogger) wherever a configuration is loaded.
func New(l *slog.Logger) logging.Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return sdkLogger{l: l.With("component", "aws-sdk"), ctx: context.Background()}
}

type sdkLogger struct {
	l   *slog.Logger
	ctx context.Context
}

// Logf implements logging.Logger: Warn is slog's WARN, Debug its DEBUG,
// anything else INFO.
func (s sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelInfo
	switch c {
	case logging.Warn:
		level = slog.LevelWarn
	case logging.Debug:
		level = slog.LevelDebug
	}
	s.l.Log(s.ctx, level, fmt.Sprintf(format, v...))
}

// WithContext implements logging.ContextLogger.
func (s sdkLogger) WithContext(ctx context.Context) logging.Logger {
	s.ctx = ctx
	return s
}
