package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/rpc"
)

func (e *env) templateIDs() []string {
	e.t.Helper()
	var tr struct {
		Templates []struct {
			TemplateID string `json:"templateId"`
		} `json:"templates"`
	}
	e.call("getAvailableTemplates", map[string]any{}, &tr)
	var ids []string
	for _, t := range tr.Templates {
		ids = append(ids, t.TemplateID)
	}
	return ids
}

func TestReloadGoodAndBadConfig(t *testing.T) {
	e := newEnv(t)
	e.start()
	id := e.request("OnDemand-c5", 1)
	if got := strings.Join(e.templateIDs(), ","); got != "OnDemand-c5,Spot-m5" {
		t.Fatalf("templates before reload: %s", got)
	}
	tplFile := filepath.Join(e.dir, "awsprov_templates.json")
	added := strings.Replace(templatesJSON, `"templates": [`, `"templates": [
  {"templateId": "Added-t3", "maxNumber": 3, "attributes": {"type": ["String", "X86_64"], "ncpus": ["Numeric", "2"], "nram": ["Numeric", "2048"]},
   "imageId": "ami-0123456789abcdef0", "vmType": "t3.small"},`, 1)
	must(t, os.WriteFile(tplFile, []byte(added), 0o600))

	// Good config through SIGHUP (systemctl reload).
	must(t, e.daemon.Cmd.Process.Signal(syscall.SIGHUP))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.HasPrefix(strings.Join(e.templateIDs(), ","), "Added-t3") {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not load the new template: %v", e.templateIDs())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Bad config through the reload call (ohfp config reload): refused
	// with the reason, the old configuration stays in force.
	must(t, os.WriteFile(tplFile, []byte(strings.Replace(added, `"vmType": "t3.small"`, `"vmTyp": "t3.small"`, 1)), 0o600))
	c := rpc.NewClient(e.sock, rpc.ClientOptions{WaitTimeout: 5 * time.Second})
	var out map[string]string
	err := c.Call(context.Background(), "reload", rpc.Params{}, &out)
	if err == nil || !strings.Contains(err.Error(), "vmTyp") || !strings.Contains(err.Error(), "old one stays in force") {
		t.Fatalf("bad reload: %v", err)
	}
	if got := strings.Join(e.templateIDs(), ","); got != "Added-t3,OnDemand-c5,Spot-m5" {
		t.Fatalf("templates after a refused reload: %s", got)
	}
	// Requests made before the reloads still answer.
	if st := e.waitFinal(id).Requests[0]; st.Status != "complete" {
		t.Fatalf("request across reloads: %+v", st)
	}
}

// TestReloadRefusedAlikeAndWarningsSaid: a refused reload is logged once,
// at ERROR, with who asked, whether it came by SIGHUP (systemctl reload) or
// by ohfp config reload; a reload that takes a configuration with a
// problem (an admin group /etc/group does not have) says so in its answer,
// not only in the log.
func TestReloadRefusedAlikeAndWarningsSaid(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("ohfp config reload needs an operator: run as root")
	}
	t.Parallel()
	e := newEnv(t)
	e.start()
	good, err := os.ReadFile(e.cfg)
	must(t, err)
	must(t, os.WriteFile(e.cfg, append(append([]byte{}, good...), "bogus_key: 1\n"...), 0o600))

	must(t, e.daemon.Cmd.Process.Signal(syscall.SIGHUP))
	time.Sleep(2 * time.Second) // the refusal is only in the log, read once ohfpd has stopped
	if _, errOut, code := e.ohfp(0, "config", "reload"); code != 1 || !strings.Contains(errOut, "bogus_key") {
		t.Fatalf("ohfp config reload of a bad file: exit %d, %s", code, errOut)
	}
	must(t, os.WriteFile(e.cfg, append(append([]byte{}, good...), "admin_groups: [\"no-such-group-ohfp\"]\n"...), 0o600))
	out, errOut, code := e.ohfp(0, "config", "reload")
	if code != 0 || !strings.Contains(out, "configuration reloaded, with 1 warning:") || !strings.Contains(out, `no such group "no-such-group-ohfp"`) {
		t.Errorf("reload with an unknown admin group: exit %d, stdout %q, stderr %q; want the warning in the answer", code, out, errOut)
	}

	must(t, e.daemon.Stop(10*time.Second))
	e.daemon = nil
	var got []string
	for _, l := range strings.Split(e.log.String(), "\n") {
		if strings.Contains(l, "reload refused") {
			got = append(got, l)
		}
	}
	if len(got) != 2 {
		t.Fatalf("want 2 refusals in the log (SIGHUP, ohfp config reload), got %d:\n%s", len(got), strings.Join(got, "\n"))
	}
	for i, by := range []string{"by=SIGHUP", `by="uid 0`} {
		if !strings.Contains(got[i], "level=ERROR") || !strings.Contains(got[i], by) || !strings.Contains(got[i], "bogus_key") {
			t.Errorf("refusal %d is not at ERROR with %s and the reason: %s", i+1, by, got[i])
		}
	}
}
