package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/awssim"
)

// credScript is IBM's AWS_CREDENTIAL_SCRIPT as a site writes it: each run
// prints new federated credentials (ASIASCRIPT1, ASIASCRIPT2...) valid for
// 6 seconds, in IBM's JSON form; while "fail" exists beside it, it fails
// as a token service that is down would.
const credScript = `#!/bin/sh
d=$(dirname "$0")
if [ -e "$d/fail" ]; then echo "federation service unreachable" >&2; exit 2; fi
if [ -e "$d/garbage" ]; then echo "<html>login page</html>"; exit 0; fi
n=$(cat "$d/runs" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$d/runs"
exp=$(date -u -d "@$(( $(date +%s) + 6 ))" +%Y-%m-%dT%H:%M:%SZ)
printf '{"AccessKeyId": "ASIASCRIPT%s", "SecretAccessKey": "s", "SessionToken": "t", "Expiration": "%s"}\n' $n $exp
`

// simActions reads the simulated region's log of calls that changed it.
func (e *env) simActions() []awssim.Action {
	e.t.Helper()
	resp, err := http.Get(e.endpoint + "/_sim/actions")
	must(e.t, err)
	defer resp.Body.Close()
	var acts []awssim.Action
	must(e.t, json.NewDecoder(resp.Body).Decode(&acts))
	return acts
}

// lastKey is the access key that signed the last call of action.
func (e *env) lastKey(action string) string {
	key := ""
	for _, a := range e.simActions() {
		if a.Action == action {
			key = a.AccessKey
		}
	}
	return key
}

// Issue 15: ohfpd runs IBM's AWS_CREDENTIAL_SCRIPT itself and signs with
// what it prints (not the environment's keys), runs it again before the
// credentials expire, says in `ohfp status` when it fails while the last
// good credentials still serve, and --check-config runs it and refuses
// garbage.
func TestCredentialScriptE2E(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, templatesJSON, "    credential_script: creds.sh\n    credential_renew_margin: 3s\n")
	script := filepath.Join(e.dir, "creds.sh")
	must(t, os.WriteFile(script, []byte(credScript), 0o700))

	check := func() (string, int) {
		cmd := exec.Command(filepath.Join(e.bin, "ohfpd"), "--check-config", "--config", e.cfg)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	if out, code := check(); code != 0 || !strings.Contains(out, "credential script "+script+" gave credentials for access key *******IPT1, expiring at") {
		t.Fatalf("--check-config with a good script: exit %d\n%s", code, out)
	}
	must(t, os.WriteFile(filepath.Join(e.dir, "garbage"), nil, 0o600))
	if out, code := check(); code != 1 || !strings.Contains(out, "printed neither JSON nor a credentials file") {
		t.Fatalf("--check-config with a script printing garbage: exit %d\n%s", code, out)
	}
	must(t, os.Remove(filepath.Join(e.dir, "garbage")))

	e.start()
	id := e.request("OnDemand-c5", 1)
	if st := e.waitFinal(id); st.Requests[0].Status != "complete" {
		t.Fatalf("request %s: %+v", id, st)
	}
	first := e.lastKey("RunInstances")
	if !strings.HasPrefix(first, "ASIASCRIPT") {
		t.Fatalf("RunInstances signed with %q, not the script's credentials", first)
	}
	// Renewed before expiry: within the 6 s life a later key signs.
	e.until("a renewed key signs the next launch", 10*time.Second, func() bool {
		id := e.request("OnDemand-c5", 1)
		e.waitFinal(id)
		k := e.lastKey("RunInstances")
		return strings.HasPrefix(k, "ASIASCRIPT") && k != first
	})

	// The script fails: status degraded with its reason while the last
	// good credentials serve; then down once they expired.
	must(t, os.WriteFile(filepath.Join(e.dir, "fail"), nil, 0o600))
	e.until("status degraded by the failing script", 15*time.Second, func() bool {
		st, code := e.statusJSON()
		return code == 1 && strings.Contains(st.AWS["aws"].Health.CredentialScript, "federation service unreachable")
	})
	out, _, _ := e.ohfp(0, "status")
	if !strings.Contains(out, "credential script failing") {
		t.Errorf("ohfp status does not say the script fails:\n%s", out)
	}
	e.until("status down once the credentials expired", 20*time.Second, func() bool {
		st, code := e.statusJSON()
		return code == 2 && st.AWS["aws"].Health.Credentials
	})
	// Fixed: ohfpd recovers by itself.
	must(t, os.Remove(filepath.Join(e.dir, "fail")))
	e.until("healthy again", 20*time.Second, func() bool {
		_, code := e.statusJSON()
		return code == 0
	})
}
