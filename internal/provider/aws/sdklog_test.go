package awsprov

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/smithy-go/logging"
)

// TestSDKLogsIntoOhfpdsLog: what the SDK's clients log (the IMDS client's
// "falling back to IMDSv1", internal/sdklog's test) goes to the provider's
// logger, not to the SDK's own line on standard error.
func TestSDKLogsIntoOhfpdsLog(t *testing.T) {
	var buf bytes.Buffer
	p, err := New(context.Background(), Settings{Region: "us-east-1", EndpointURL: "http://127.0.0.1:1"}, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	p.cfg.Logger.Logf(logging.Warn, "falling back to IMDSv1: %v", "test")
	if out := buf.String(); !strings.Contains(out, `level=WARN msg="falling back to IMDSv1: test" component=aws-sdk`) {
		t.Errorf("the SDK's logger does not write ohfpd's log:\n%q", out)
	}
}
