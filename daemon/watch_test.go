package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/config"
)

// TestWatchTemplates: a change of a watched file (HF's GUI saving the
// templates) is signalled once, without a manual reload; no change, no
// signal.
func TestWatchTemplates(t *testing.T) {
	f := filepath.Join(t.TempDir(), "awsinstprov_templates.json")
	os.WriteFile(f, []byte(`{"templates": []}`), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := make(chan struct{}, 1)
	go watchTemplates(ctx, func() []string { return []string{f} }, 10*time.Millisecond, changed)
	select {
	case <-changed:
		t.Fatal("signalled without a change")
	case <-time.After(60 * time.Millisecond):
	}
	os.WriteFile(f, []byte(`{"templates": [ ]}`), 0o600) // one byte more
	select {
	case <-changed:
	case <-time.After(2 * time.Second):
		t.Fatal("change not signalled")
	}
	select {
	case <-changed:
		t.Fatal("one change signalled twice")
	case <-time.After(60 * time.Millisecond):
	}
}

// TestWatchedFilesFleetConfig (round 2 on issue 15, N4): the
// ec2FleetConfig file a template in HF's folder names is watched with the
// templates and settings files, so a change of it reaches ohfpd without a
// manual reload.
func TestWatchedFilesFleetConfig(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "providers", "awsinst")
	os.MkdirAll(conf, 0o755)
	tpl := filepath.Join(conf, "awsinstprov_templates.json")
	fleet := filepath.Join(conf, "ec2fleet.json")
	os.WriteFile(tpl, []byte(`{"templates": [{"templateId": "LSF-Fleet", "maxNumber": 2, "imageId": "ami-0123456789abcdef0", "ec2FleetConfig": "ec2fleet.json"},
		{"templateId": "Also", "maxNumber": 2, "imageId": "ami-0123456789abcdef0", "ec2FleetConfig": "ec2fleet.json"}]}`), 0o600)
	os.WriteFile(fleet, []byte(`{"LaunchTemplateConfigs": [{"LaunchTemplateSpecification": {"LaunchTemplateId": "lt-0abc", "Version": "1"},
		"Overrides": [{"InstanceType": "c5.large"}]}], "TargetCapacitySpecification": {"TotalTargetCapacity": $LSF_TOTAL_TARGET_CAPACITY}, "Type": "instant"}`), 0o600)
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("providers:\n  - name: awsinst\n    hf_conf_dir: providers/awsinst\n"), 0o600)
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := watchedFiles(c)
	if want := []string{tpl, fleet}; !slices.Equal(got, want) {
		t.Errorf("watched %q, want %q (the fleet file once)", got, want)
	}
}

// TestCheckConfigWarnsOfEmptyStrings (round 2 on issue 15, #12): IBM's
// empty strings in a template of HF's folder load as unset, and
// --check-config says so for each, located, exit 0.
func TestCheckConfigWarnsOfEmptyStrings(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "providers", "awsinst")
	os.MkdirAll(conf, 0o755)
	os.WriteFile(filepath.Join(conf, "awsinstprov_templates.json"), []byte(`{"templates": [{"templateId": "t", "maxNumber": 1,
	"vmType": "c5.large", "imageId": "ami-0123456789abcdef0",
	"launchTemplateVersion": "", "requestValidity": "", "ec2FleetConfig": ""}]}`), 0o600)
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("providers:\n  - name: awsinst\n    hf_conf_dir: providers/awsinst\n"), 0o600)
	code, out, errOut := runMain("--check-config", "--config", cfg)
	if code != 0 || !strings.Contains(out, "OK (1 provider, 1 template)") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for i, f := range []string{"launchTemplateVersion", "requestValidity", "ec2FleetConfig"} {
		want := fmt.Sprintf("warning: %s:3:%d: templates[t].%s: empty: taken as unset, as IBM's plugin does\n",
			filepath.Join(dir, "providers", "awsinst", "awsinstprov_templates.json"), []int{27, 50, 72}[i], f)
		if !strings.Contains(errOut, want) {
			t.Errorf("no %q in:\n%s", want, errOut)
		}
	}
}
