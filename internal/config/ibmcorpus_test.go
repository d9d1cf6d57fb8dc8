package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/template"
)

// TestIBMCorpus loads IBM-format provider folders written from IBM's field
// tables and samples (hostProviders/aws and hostProviders/awsv2 of IBM's
// cloud-provider-plugins for LSF, the Symphony Host Factory reference for
// Symphony's): every field and key, documented values and ranges, IBM's
// habits ("securityGroupIds": [""], empty proxy keys, Boolean and range
// attributes, lower-case strategies, a timeout above an hour, an EC2
// Fleet file with $LSF_ placeholders). Each loads; the golden file holds
// the provider as ohfp understood it and the warnings, which say what ohfp
// does differently.
func TestIBMCorpus(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/ibm/*/config.yaml")
	if len(dirs) < 3 {
		t.Fatalf("corpus has %d folders", len(dirs))
	}
	for _, f := range dirs {
		name := filepath.Base(filepath.Dir(f))
		t.Run(name, func(t *testing.T) {
			c, err := Load(f)
			if err != nil {
				t.Fatalf("IBM's files do not load:\n%v", err)
			}
			out, _ := json.MarshalIndent(struct {
				Warnings []string  `json:"warnings"`
				Provider *Provider `json:"provider"`
			}{c.Warnings, &c.Providers[0]}, "", "  ")
			golden(t, filepath.Join("testdata", "ibm", name+".golden.json"), normalise(t, string(out))+"\n")
			for _, w := range c.Warnings {
				if !strings.Contains(w, ":") {
					t.Errorf("warning not located: %q", w)
				}
			}
		})
	}
}

// TestHFConfDir: a provider pointed at HF's folder reads the instance's
// renamed files (awsinstprov_*), region and credentials included.
func TestHFConfDir(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "providers", "awsinst")
	os.MkdirAll(conf, 0o755)
	os.WriteFile(filepath.Join(conf, "awsinstprov_config.json"), []byte(`{"AWS_REGION": "ap-south-1", "AWS_CREDENTIAL_FILE": "credentials"}`), 0o600)
	os.WriteFile(filepath.Join(conf, "credentials"), []byte("[default]\n"), 0o600)
	os.WriteFile(filepath.Join(conf, "awsinstprov_templates.json"), []byte(`{"templates": [{"templateId": "t", "maxNumber": 1, "vmType": "c5.large", "imageId": "ami-0123456789abcdef0"}]}`), 0o600)
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("providers:\n  - name: awsinst\n    hf_conf_dir: providers/awsinst\n"), 0o600)
	c, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := c.Providers[0]
	if p.Region != "ap-south-1" || p.CredentialsFile != filepath.Join(conf, "credentials") || len(p.Templates) != 1 || p.TemplatesFile != filepath.Join(conf, "awsinstprov_templates.json") {
		t.Errorf("provider = %+v", p)
	}
}

// TestCredentialScript: IBM's AWS_CREDENTIAL_SCRIPT and
// AWS_CREDENTIAL_RENEW_MARGIN (seconds, as a string or a number) are
// carried; a script that cannot be run is a warning naming why (IBM's Java
// plugin goes on without it; --check-config runs it and fails); beside a
// credentials file the script wins, with a warning, as in IBM's plugin.
func TestCredentialScript(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "fed.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o700)
	os.WriteFile(filepath.Join(dir, "plain.sh"), []byte("#!/bin/sh\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "credentials"), []byte("[default]\n"), 0o600)
	cases := []struct {
		json, script string
		margin       time.Duration
		warn         string
	}{
		{`{"AWS_REGION": "us-east-1", "AWS_CREDENTIAL_SCRIPT": "fed.sh", "AWS_CREDENTIAL_RENEW_MARGIN": "300"}`, script, 300 * time.Second, ""},
		{`{"AWS_REGION": "us-east-1", "AWS_CREDENTIAL_SCRIPT": "fed.sh", "AWS_CREDENTIAL_RENEW_MARGIN": 60, "AWS_CREDENTIAL_FILE": "credentials"}`, script, time.Minute, "credentials_file / profile are ignored"},
		{`{"AWS_REGION": "us-east-1", "AWS_CREDENTIAL_SCRIPT": "plain.sh"}`, filepath.Join(dir, "plain.sh"), 0, "not executable: chmod +x"},
		{`{"AWS_REGION": "us-east-1", "AWS_CREDENTIAL_SCRIPT": "missing.sh"}`, filepath.Join(dir, "missing.sh"), 0, "no such file"},
		{`{"AWS_REGION": "us-east-1", "AWS_CREDENTIAL_SCRIPT": "", "AWS_CREDENTIAL_RENEW_MARGIN": ""}`, "", 0, ""},
	}
	for i, c := range cases {
		os.WriteFile(filepath.Join(dir, "awsprov_config.json"), []byte(c.json), 0o600)
		cfg := filepath.Join(dir, "config.yaml")
		os.WriteFile(cfg, []byte("providers:\n  - name: aws\n    hf_config_file: awsprov_config.json\n    templates: []\n"), 0o600)
		got, err := Load(cfg)
		if err != nil {
			t.Errorf("%d: %v", i, err)
			continue
		}
		p := got.Providers[0]
		if p.CredentialScript != c.script || p.CredentialRenewMargin != c.margin {
			t.Errorf("%d: script %q margin %s", i, p.CredentialScript, p.CredentialRenewMargin)
		}
		ws := strings.Join(got.Warnings, "\n")
		if c.warn != "" && !strings.Contains(ws, c.warn) {
			t.Errorf("%d: warnings %q, want %q", i, ws, c.warn)
		}
		if c.warn == "" && strings.Contains(ws, "CREDENTIAL") {
			t.Errorf("%d: unexpected warning %q", i, ws)
		}
	}
	// ha: the shared table's credentials are the provider's script's.
	os.WriteFile(filepath.Join(dir, "awsprov_config.json"), []byte(`{"AWS_REGION": "us-east-1", "AWS_CREDENTIAL_SCRIPT": "fed.sh", "AWS_CREDENTIAL_RENEW_MARGIN": 600}`), 0o600)
	os.WriteFile(filepath.Join(dir, "ha.yaml"), []byte("ha:\n  table: ohfp-state\nproviders:\n  - name: aws\n    hf_config_file: awsprov_config.json\n    templates: []\n"), 0o600)
	if c, err := Load(filepath.Join(dir, "ha.yaml")); err != nil || c.HA.CredentialScript != script || c.HA.CredentialRenewMargin != 10*time.Minute || c.HA.CredentialsFile != "" {
		t.Errorf("ha: %+v %v", c.HA, err)
	}
	// A negative margin is refused (IBM's plugin stops too).
	os.WriteFile(filepath.Join(dir, "awsprov_config.json"), []byte(`{"AWS_REGION": "us-east-1", "AWS_CREDENTIAL_SCRIPT": "fed.sh", "AWS_CREDENTIAL_RENEW_MARGIN": -5}`), 0o600)
	if _, err := Load(filepath.Join(dir, "config.yaml")); err == nil || !strings.Contains(err.Error(), "AWS_CREDENTIAL_RENEW_MARGIN") {
		t.Errorf("negative margin: %v", err)
	}
}

// TestEC2FleetConfigPairs: an ec2FleetConfig file whose overrides tie
// types to subnets keeps those pairs (template.FleetOverrides) rather than
// every type in every subnet; the template's own subnetId replaces the
// file's, and then every pair is asked.
func TestEC2FleetConfigPairs(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "fleet.json"), []byte(`{"LaunchTemplateConfigs": [{"LaunchTemplateSpecification": {"LaunchTemplateId": "lt-0abc", "Version": "1"},
		"Overrides": [{"InstanceType": "c5.large", "SubnetId": "subnet-1"}, {"InstanceType": "m5.large", "SubnetId": "subnet-2", "WeightedCapacity": 2}]}],
		"TargetCapacitySpecification": {"TotalTargetCapacity": $LSF_TOTAL_TARGET_CAPACITY, "DefaultTargetCapacityType": "spot"}, "Type": "instant"}`), 0o600)
	load := func(extra string) []template.FleetOverride {
		t.Helper()
		cfg := filepath.Join(dir, "config.yaml")
		os.WriteFile(cfg, []byte("providers:\n  - name: aws\n    templates:\n      - templateId: f\n        maxNumber: 4\n        imageId: ami-0123456789abcdef0\n        ec2FleetConfig: fleet.json\n"+extra), 0o600)
		c, err := Load(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c.Providers[0].Templates[0].FleetOverrides
	}
	want := []template.FleetOverride{{Type: "c5.large", Subnet: "subnet-1"}, {Type: "m5.large", Subnet: "subnet-2"}}
	if got := load(""); !slices.Equal(got, want) {
		t.Errorf("pairs = %v, want %v", got, want)
	}
	if got := load("        subnetId: subnet-9\n"); got != nil {
		t.Errorf("with the template's own subnetId, pairs = %v, want none", got)
	}
}
