package e2e

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/rpc"
)

// A cluster_id change is refused by reload (issue 12, case 5): the old id
// stays in force and the refusal names the way out.
func TestReloadRefusesClusterIDChange(t *testing.T) {
	e := newEnv(t)
	e.start()
	id := e.request("OnDemand-c5", 1)
	cfg, err := os.ReadFile(e.cfg)
	must(t, err)
	if !bytes.Contains(cfg, []byte("cluster_id: e2e\n")) {
		t.Fatalf("config without cluster_id: e2e:\n%s", cfg)
	}
	must(t, os.WriteFile(e.cfg, bytes.Replace(cfg, []byte("cluster_id: e2e\n"), []byte("cluster_id: e2e-new\n"), 1), 0o600))
	c := rpc.NewClient(e.sock, rpc.ClientOptions{WaitTimeout: 5 * time.Second})
	var out map[string]string
	err = c.Call(context.Background(), "reload", rpc.Params{}, &out)
	if err == nil {
		t.Fatal("reload accepted a cluster_id change")
	}
	for _, want := range []string{`cluster_id changed from "e2e" to "e2e-new"`, "`cluster_id: e2e`", "ohfpd --adopt-cluster-id e2e"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not mention %q", err, want)
		}
	}
	if st := e.waitFinal(id).Requests[0]; st.Status != "complete" || len(st.Machines) != 1 {
		t.Fatalf("request after the refused reload: %+v", st)
	}
}
