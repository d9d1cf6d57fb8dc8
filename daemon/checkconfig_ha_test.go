package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ohfp/ohfp/internal/dynalite"
	"github.com/ohfp/ohfp/internal/store/dynamo"
)

// ohfpd --check-config validates the ha: block and reaches the table: a
// missing table gives the command that creates it, an unreachable one
// says "state store unavailable", a reachable one who holds the lease.
func TestCheckConfigReachesTheTable(t *testing.T) {
	endpoint := dynalite.StartT(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIATEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	dir := t.TempDir()
	write := func(endpoint string) string {
		cfg := filepath.Join(dir, "config.yaml")
		must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`cluster_id: blue
ha:
  table: ohfp-check
  endpoint_url: %s
providers:
  - name: aws
    region: us-east-1
    templates_file: t.json
`, endpoint)), 0o600))
		must(t, os.WriteFile(filepath.Join(dir, "t.json"), []byte(`{"templates": [{"templateId": "a", "maxNumber": 1, "imageId": "ami-12345678", "vmType": "c5.large",
  "attributes": {"type": ["String", "X86_64"], "ncpus": ["Numeric", "2"], "nram": ["Numeric", "4096"]}}]}`), 0o600))
		return cfg
	}
	cfg := write(endpoint)

	code, out, errOut := runMain("--check-config", "--config", cfg)
	if code != 1 || !strings.Contains(errOut, "aws dynamodb create-table --table-name ohfp-check") {
		t.Fatalf("missing table: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	ctx := context.Background()
	tab, err := dynamo.Open(ctx, dynamo.Options{Table: "ohfp-check", Region: "us-east-1", Endpoint: endpoint, ClusterID: "blue", Create: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIATEST", "test", "")})
	must(t, err)
	defer tab.Close()
	code, out, errOut = runMain("--check-config", "--config", cfg)
	if code != 0 || !strings.Contains(out, "ha: DynamoDB table ohfp-check in us-east-1 reachable; nobody holds the lease yet") {
		t.Fatalf("reachable table: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if _, err := tab.AcquireLease(ctx, "master1", nil); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runMain("--check-config", "--config", cfg)
	if code != 0 || !strings.Contains(out, "lease held by master1 since") {
		t.Fatalf("held lease: exit %d\nstdout: %s", code, out)
	}

	// Nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	closed := "http://" + ln.Addr().String()
	ln.Close()
	cfg = write(closed)
	start := time.Now()
	code, out, errOut = runMain("--check-config", "--config", cfg)
	if code != 1 || !strings.Contains(errOut, "state store unavailable") {
		t.Fatalf("unreachable table: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if d := time.Since(start); d > 40*time.Second {
		t.Errorf("unreachable table took %s to report", d)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// With create_table: true a missing table is no error: ohfpd creates it.
func TestCheckConfigCreateTable(t *testing.T) {
	endpoint := dynalite.StartT(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIATEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf("ha:\n  table: ohfp-new\n  endpoint_url: %s\n  create_table: true\nproviders:\n  - name: aws\n    region: us-east-1\n", endpoint)), 0o600))
	code, out, errOut := runMain("--check-config", "--config", cfg)
	if code != 0 || !strings.Contains(out, "not created yet: ohfpd creates it at start") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf("ha:\n  table: ohfp-new\n  endpoint_url: %s\nproviders:\n  - name: aws\n    region: us-east-1\n", endpoint)), 0o600))
	code, _, errOut = runMain("--check-config", "--config", cfg)
	if code != 1 || !strings.Contains(errOut, "--endpoint-url "+endpoint) {
		t.Fatalf("without create_table: exit %d, stderr %s (the command must name the endpoint)", code, errOut)
	}
}
