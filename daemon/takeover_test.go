package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A state file of IBM's plugin that cannot be read or is not IBM's is
// refused before anything is opened: exit 1, a message that says what is
// wrong, no state directory created.
func TestTakeOverBadFileRefusedAtOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	state := filepath.Join(dir, "state")
	if err := os.WriteFile(cfg, []byte("state_dir: "+state+"\nsocket: "+filepath.Join(dir, "s.sock")+"\nproviders:\n  - name: aws\n    region: us-east-1\n    templates: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "aws-db.json")
	os.WriteFile(bad, []byte(`{"requests": [{"requestId": "r-1", "machines": [{"machineId": "not-an-instance"}]}]}`), 0o600)
	cases := map[string]string{
		bad:                                 `machineId "not-an-instance" is not an EC2 instance id`,
		filepath.Join(dir, "missing.json"):  "no such file",
		"other=" + bad:                      `no provider "other"`,
		"aws=" + filepath.Join(dir, "none"): "$HF_PROVIDER_WORKDIR",
	}
	for arg, want := range cases {
		code, _, errOut := runMain("--config", cfg, "--take-over-ibm", arg)
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("--take-over-ibm %s: exit %d, %q, want %q", arg, code, errOut, want)
		}
	}
	if _, err := os.Stat(state); err == nil {
		t.Error("the state directory was created for a refused takeover")
	}
}
