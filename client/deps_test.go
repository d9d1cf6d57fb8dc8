package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientDependencies keeps heavy packages out of the ohfp binary: HF
// runs it for every call, and it must stay small and static (the Makefile
// builds it with CGO_ENABLED=0). It speaks to the socket with net/http and
// go-retryablehttp, as ARCHITECTURE.md says; the AWS SDK, Badger,
// prometheus, the YAML parser and the daemon's core stay out.
func TestClientDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !contains(deps, "github.com/ohfp/ohfp/internal/rpc") {
		t.Fatalf("implausible dependency list: %q", deps)
	}
	forbidden := []string{
		"github.com/aws/",
		"github.com/dgraph-io/",
		"github.com/prometheus/",
		"github.com/goccy/go-yaml",
		"github.com/ohfp/ohfp/internal/engine",
		"github.com/ohfp/ohfp/internal/service",
		"github.com/ohfp/ohfp/internal/state",
		"github.com/ohfp/ohfp/internal/provision",
		"github.com/ohfp/ohfp/internal/reconcile",
		"github.com/ohfp/ohfp/internal/config", // YAML: config validate runs ohfpd instead
		"github.com/ohfp/ohfp/internal/store",
		"github.com/ohfp/ohfp/internal/provider",
		"github.com/ohfp/ohfp/internal/awssim",
		"github.com/ohfp/ohfp/internal/rpcserver",
	}
	for _, want := range []string{"net/http", "github.com/hashicorp/go-retryablehttp"} {
		if !contains(deps, want) {
			t.Errorf("the client does not use %s (ARCHITECTURE.md: net/http with go-retryablehttp on the socket)", want)
		}
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(d, f) {
				t.Errorf("the client depends on %s", d)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
