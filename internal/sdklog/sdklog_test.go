package sdklog_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/ohfp/ohfp/internal/sdklog"
)

// TestIMDSFallbackIsInTheLog: with no credentials but the instance
// metadata service, whose token call (IMDSv2) is refused, the SDK warns
// "falling back to IMDSv1": that warning is a line of ohfpd's log, at
// WARN with component=aws-sdk, not the SDK's own "SDK <date> WARN" line.
func TestIMDSFallbackIsInTheLog(t *testing.T) {
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut { // the IMDSv2 token
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		http.NotFound(w, r)
	}))
	defer imds.Close()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
		"AWS_EC2_METADATA_DISABLED": "false", "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.URL,
		"AWS_REGION": "us-east-1",
	} {
		t.Setenv(k, v)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithLogger(sdklog.New(log)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Credentials.Retrieve(context.Background()); err == nil {
		t.Fatal("credentials were found: the test's environment leaks some")
	}
	out := buf.String()
	if !strings.Contains(out, `level=WARN msg="falling back to IMDSv1`) || !strings.Contains(out, "component=aws-sdk") {
		t.Errorf("the SDK's IMDS warning is not in the log at WARN with component=aws-sdk:\n%s", out)
	}
}
