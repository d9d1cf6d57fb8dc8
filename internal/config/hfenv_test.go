package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHFProviderConfDirEnv: a provider that names no templates takes HF's
// folder from ohfpd's own HF_PROVIDER_CONFDIR (the first provider only:
// HF sets it per provider instance); without it, or for another provider,
// the load warns that the provider has no templates and why. A provider
// with its own templates (even none, "templates: []") is left alone.
func TestHFProviderConfDirEnv(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "providers", "awsinst")
	os.MkdirAll(conf, 0o755)
	os.WriteFile(filepath.Join(conf, "awsinstprov_config.json"), []byte(`{"AWS_REGION": "ap-south-1"}`), 0o600)
	os.WriteFile(filepath.Join(conf, "awsinstprov_templates.json"), []byte(`{"templates": [{"templateId": "t", "maxNumber": 1, "vmType": "c5.large", "imageId": "ami-0123456789abcdef0"}]}`), 0o600)
	cfg := filepath.Join(dir, "config.yaml")
	load := func(yaml, env string) *Config {
		t.Helper()
		t.Setenv("HF_PROVIDER_CONFDIR", env)
		os.WriteFile(cfg, []byte(yaml), 0o600)
		c, err := Load(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const one = "providers:\n  - name: awsinst\n    region: us-east-1\n"

	c := load(one, conf)
	if p := c.Providers[0]; p.HFConfDir != conf || len(p.Templates) != 1 || p.TemplatesFile != filepath.Join(conf, "awsinstprov_templates.json") {
		t.Errorf("from ohfpd's HF_PROVIDER_CONFDIR: %+v", p)
	}
	if ws := strings.Join(c.Warnings, "\n"); strings.Contains(ws, "no templates") {
		t.Errorf("warned though the folder gave templates: %s", ws)
	}

	c = load(one, "")
	ws := strings.Join(c.Warnings, "\n")
	if len(c.Providers[0].Templates) != 0 || !strings.Contains(ws, `provider awsinst has no templates`) || !strings.Contains(ws, "cannot change where ohfpd reads templates") {
		t.Errorf("no folder: warnings %q", ws)
	}

	c = load(one+"  - name: other\n    region: us-east-1\n", conf)
	ws = strings.Join(c.Warnings, "\n")
	if len(c.Providers[0].Templates) != 1 || len(c.Providers[1].Templates) != 0 || !strings.Contains(ws, `provider other has no templates`) {
		t.Errorf("two providers: first %d templates, second %d, warnings %q", len(c.Providers[0].Templates), len(c.Providers[1].Templates), ws)
	}

	c = load("providers:\n  - name: awsinst\n    region: us-east-1\n    templates: []\n", conf)
	if p := c.Providers[0]; p.HFConfDir != "" || strings.Contains(strings.Join(c.Warnings, "\n"), "names no hf_conf_dir") {
		t.Errorf("templates: [] took the folder or warned: %+v %q", p, c.Warnings)
	}
}

// TestIBMFieldMessages: the computeUnit warning speaks of the template's
// own instance types; an awsv2-style comma list in instanceTags is split
// as awsv2 splits it, with a warning (a comma inside a value stays).
func TestIBMFieldMessages(t *testing.T) {
	parse := func(tpl string) (*Config, string) {
		t.Helper()
		c, err := Parse([]byte("providers:\n  - name: aws\n    region: us-east-1\n    templates:\n      - "+tpl+"\n"), "/etc/ohfp/config.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return c, strings.Join(c.Warnings, "\n")
	}
	const base = `{templateId: t, maxNumber: 1, imageId: ami-0123456789abcdef0, `
	_, ws := parse(base + `vmType: c5.large, computeUnit: ncpus}`)
	if !strings.Contains(ws, "computeUnit: ignored: ohfp counts one unit per instance of c5.large") || strings.Contains(ws, "c5.xlarge") {
		t.Errorf("computeUnit with vmType: %s", ws)
	}
	_, ws = parse(base + `vmTypes: {m5.large: 1, m5.2xlarge: 4}, computeUnit: ncpus}`)
	if !strings.Contains(ws, "the template's vmTypes (m5.large: 1, m5.2xlarge: 4)") {
		t.Errorf("computeUnit with vmTypes: %s", ws)
	}

	c, ws := parse(base + `vmType: c5.large, instanceTags: "group=project1,cost=hpc"}`)
	if got := c.Providers[0].Templates[0].InstanceTags; got != "group=project1;cost=hpc" || !strings.Contains(ws, "awsv2") {
		t.Errorf("awsv2 comma list: tags %q, warnings %s", got, ws)
	}
	for _, s := range []string{"group=a,b", "group=project1;cost=hpc,x"} {
		c, ws = parse(base + `vmType: c5.large, instanceTags: "` + s + `"}`)
		if got := c.Providers[0].Templates[0].InstanceTags; got != s || strings.Contains(ws, "awsv2") {
			t.Errorf("%s: tags %q, warnings %s", s, got, ws)
		}
	}
}
