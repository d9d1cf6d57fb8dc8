package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestImportHF(t *testing.T) {
	src := "testdata/hf/awsinst"
	text, notes, err := ImportHF(src)
	if err != nil {
		t.Fatalf("ImportHF: %v\n%s", err, text)
	}
	golden(t, "testdata/hf/awsinst.yaml", normalise(t, string(text)))

	// Every field that could not be carried has a note.
	for _, want := range []string{"ebsOptimized", "placementGroupName", "AWS_SPOT_TERMINATE_ON_RECLAIM", "LogLevel"} {
		found := false
		for _, n := range notes {
			found = found || strings.Contains(n, want)
		}
		if !found {
			t.Errorf("no note mentions %s: %q", want, notes)
		}
	}

	// The output loads with Load, from another folder, and means the same.
	out := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(out, text, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(out)
	if err != nil {
		t.Fatalf("imported config does not load: %v\n%s", err, text)
	}
	p, ok := c.Provider("awsinst")
	if !ok {
		t.Fatalf("provider awsinst missing: %+v", c.Providers)
	}
	if p.Region != "us-east-1" || p.Proxy != "proxy.example.com:3128" || p.RetryAttempts != 2 ||
		p.PendingTimeout != 300*time.Second || p.ConnectionTimeout != 10*time.Second ||
		p.CredentialsFile != mustAbs(t, src+"/credentials") || c.LogLevel != "info" {
		t.Errorf("settings not carried: %+v", p)
	}
	if len(p.Templates) != 2 {
		t.Fatalf("templates = %d", len(p.Templates))
	}
	vm, _ := p.Template("Template-VM-1")
	if vm.UserDataScript != mustAbs(t, src+"/user_data.sh") || vm.VMType != "t2.micro" || vm.SubnetIDs[0] != "subnet-0a1b2c3d" {
		t.Errorf("Template-VM-1 = %+v", vm)
	}
	if at, _ := vm.Attributes.Get("ncores"); at.Value != "1" {
		t.Errorf("attributes not carried: %+v", vm.Attributes)
	}
	spot, _ := p.Template("Template-Spot-1")
	if spot.SpotFleetExpiry != 60 || len(spot.VMTypes) != 2 || spot.VMTypes[1].Type != "m5.large" || len(spot.SubnetIDs) != 2 || spot.MaxSpotPrice != 0.1 {
		t.Errorf("Template-Spot-1 = %+v", spot)
	}
}

func TestImportHFErrors(t *testing.T) {
	if _, _, err := ImportHF(t.TempDir()); err == nil || !strings.Contains(err.Error(), "awsprov_templates.json") {
		t.Errorf("empty folder: %v", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "awsprov_templates.json"), []byte(`{"templates": [{"templateId": "x", "maxNumber": 1, "vmType": "c5.large"}]}`), 0o600)
	text, _, err := ImportHF(dir)
	if err == nil || !strings.Contains(err.Error(), "imageId: missing") || len(text) == 0 {
		t.Errorf("invalid template: err %v, text %q", err, text)
	}
}

func TestCheckPermissions(t *testing.T) {
	dir := t.TempDir()
	cred := filepath.Join(dir, "credentials")
	os.WriteFile(cred, []byte("[default]\n"), 0o644)
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("providers:\n  - name: aws\n    credentials_file: credentials\n"), 0o666)
	os.Chmod(cfg, 0o666)
	w := CheckPermissions(cfg)
	joined := strings.Join(w, "\n")
	for _, want := range []string{"the configuration " + cfg + " is readable by every user", "is writable by every user", "credentials_file " + cred + " is readable"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings %q lack %q", w, want)
		}
	}
	os.Chmod(cfg, 0o640)
	os.Chmod(cred, 0o600)
	if w := CheckPermissions(cfg); len(w) != 0 {
		t.Errorf("private files still warned: %q", w)
	}
}
