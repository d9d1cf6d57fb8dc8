package config

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// normalise replaces the absolute testdata path so goldens are portable.
func normalise(t *testing.T, s string) string {
	abs, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(s, abs, "$TESTDATA")
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("missing golden file (run go test -update): %v", err)
	}
	if string(want) != got {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestGoodConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/good/*.yaml")
	if len(files) == 0 {
		t.Fatal("no good configs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			b, err := json.MarshalIndent(c, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(f, ".yaml")+".json", normalise(t, string(b))+"\n")
		})
	}
}

func TestBadConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) == 0 {
		t.Fatal("no bad configs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f)
			if err == nil {
				t.Fatalf("Load accepted %s: %+v", f, c)
			}
			if c != nil {
				t.Errorf("Load returned a config with an error")
			}
			// Every problem is located in a file, with a line.
			var e *Error
			if !errors.As(err, &e) || e.Line == 0 && !strings.Contains(e.Msg, "no such file") && !strings.Contains(e.Msg, "empty") {
				t.Errorf("error is not located: %v", err)
			}
			golden(t, strings.TrimSuffix(f, ".yaml")+".err", normalise(t, err.Error())+"\n")
		})
	}
}

func TestDefaultsAndLookups(t *testing.T) {
	c, err := Parse([]byte("providers:\n- name: a\n- name: b\n"), "/etc/ohfp/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Socket != DefaultSocket || c.SocketMode != 0o660 || c.SocketGroup != "ohfp" || c.StateDir != DefaultStateDir ||
		c.ClusterID != "ohfp" || c.LogLevel != "info" || c.LogFormat != "auto" ||
		c.Reconcile.ActiveInterval != 3*time.Second || c.Reconcile.IdleInterval != 30*time.Second {
		t.Errorf("defaults wrong: %+v", c)
	}
	p := c.Providers[1]
	if p.ConnectionTimeout != 10*time.Second || p.RetryAttempts != 3 || p.PendingTimeout != 180*time.Second ||
		p.ResponseTimeout != 30*time.Second || p.CallTimeout != 60*time.Second {
		t.Errorf("provider defaults wrong: %+v", p)
	}
	if got, ok := c.Provider("b"); !ok || got.Name != "b" {
		t.Errorf("Provider(b) = %v %v", got, ok)
	}
	if got, ok := c.Provider("zzz"); ok || got.Name != "a" {
		t.Errorf("Provider(zzz) should fall back to the first: %v %v", got, ok)
	}
	if len(c.Warnings) != 2 || !strings.Contains(c.Warnings[0], "provider a has no templates") {
		t.Errorf("warnings = %q", c.Warnings)
	}
	if c.SlogLevel().String() != "INFO" {
		t.Errorf("SlogLevel = %v", c.SlogLevel())
	}
}

func TestPrecedence(t *testing.T) {
	c, err := Load("testdata/good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	legacy, ok := c.Provider("legacy")
	if !ok {
		t.Fatal("no legacy provider")
	}
	// YAML (retry_attempts: 1) beats the hf_config_file (5); the file beats
	// the defaults; the same region both ways is accepted.
	if legacy.RetryAttempts != 1 || legacy.Region != "eu-west-1" || legacy.PendingTimeout != 600*time.Second ||
		legacy.ConnectionTimeout != 5*time.Second || legacy.DescribeInterval != 500*time.Millisecond ||
		legacy.Proxy != "proxy.example.com:3128" || !legacy.AcceptPropagatedLogSetting ||
		!filepath.IsAbs(legacy.CredentialsFile) {
		t.Errorf("legacy provider = %+v", legacy)
	}
	aws, _ := c.Provider("awsinst")
	// Inline templates first, then the file's, in order.
	var ids []string
	for _, tp := range aws.Templates {
		ids = append(ids, tp.TemplateID)
	}
	if strings.Join(ids, ",") != "Fleet-weighted,From-LT,Template-VM-1,Spot-mixed" {
		t.Errorf("template order = %v", ids)
	}
	fw, _ := aws.Template("Fleet-weighted")
	if len(fw.VMTypes) != 3 || fw.VMTypes[0].Type != "c5.2xlarge" || fw.VMTypes[2].Type != "c5.xlarge" || fw.VMTypes[2].Weight != 1 {
		t.Errorf("vmTypes order lost: %+v", fw.VMTypes)
	}
	if fw.FleetType != "instant" || fw.WeightOf("m5.2xlarge") != 2 {
		t.Errorf("fleetType default or weights wrong: %+v", fw)
	}
	if at, _ := fw.Attributes.Get("ncores"); at.Type != "Numeric" || at.Value != "4" {
		t.Errorf("plain attribute ncores = %+v", at)
	}
	vm1, _ := aws.Template("Template-VM-1")
	if vm1.UserDataScript != filepath.Join(mustAbs(t, "testdata/files"), "userdata.sh") {
		t.Errorf("userDataScript not resolved against the templates file: %q", vm1.UserDataScript)
	}
	spot, _ := aws.Template("Spot-mixed")
	if spot.API() != "SpotFleet" || spot.SpotFleetExpiry != 30 {
		t.Errorf("spot template defaults: %+v", spot)
	}
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestErrorsAreCollected(t *testing.T) {
	_, err := Load("testdata/bad/spot_fleet.yaml")
	var n int
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if _, ok := e.(*Error); ok {
			n++
		}
	}
	if n < 5 {
		t.Errorf("want every problem reported, got %d: %v", n, err)
	}
}

func TestSuggest(t *testing.T) {
	known := templateFieldNames
	for in, want := range map[string]string{
		"securityGroupId": "securityGroupIds",
		"imageID":         "imageId",
		"vmtype":          "vmType",
		"maxnumber":       "maxNumber",
		"zzzzzz":          "",
	} {
		if got := suggest(in, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHFConfigLogLevelWarns(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "awsprov_config.json"), []byte(`{"LogLevel": "DEBUG", "AWS_REGION": "us-west-2"}`), 0o600)
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("providers:\n  - name: aws\n    hf_config_file: awsprov_config.json\n"), 0o600)
	c, err := Load(filepath.Join(dir, "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Providers[0].Region != "us-west-2" || c.LogLevel != "info" {
		t.Errorf("provider = %+v, log_level %s", c.Providers[0], c.LogLevel)
	}
	found := false
	for _, w := range c.Warnings {
		found = found || strings.Contains(w, "awsprov_config.json:1: LogLevel is ignored")
	}
	if !found {
		t.Errorf("no LogLevel warning in %q", c.Warnings)
	}
}

func TestUnknownIBMKeyInYAML(t *testing.T) {
	_, err := Parse([]byte("providers:\n  - name: aws\n    AWS_NO_SUCH_KEY: true\n"), "c.yaml")
	if err == nil || !strings.Contains(err.Error(), "c.yaml:3:5: providers[aws].AWS_NO_SUCH_KEY: unknown key; this IBM awsprov_config.json key is not supported") {
		t.Errorf("err = %v", err)
	}
}

func TestPprof(t *testing.T) {
	for doc, want := range map[string]bool{
		"providers:\n- name: a\n":               false,
		"pprof: true\nproviders:\n- name: a\n":  true,
		"pprof: false\nproviders:\n- name: a\n": false,
	} {
		c, err := Parse([]byte(doc), "/etc/ohfp/config.yaml")
		if err != nil || c.Pprof != want {
			t.Errorf("%q: pprof %v, %v; want %v", doc, c != nil && c.Pprof, err, want)
		}
	}
	if _, err := Parse([]byte("pprof: yes please\nproviders:\n- name: a\n"), "/etc/ohfp/config.yaml"); err == nil || !strings.Contains(err.Error(), "pprof") {
		t.Errorf("a non-boolean pprof was accepted or not named: %v", err)
	}
}

// The ha: section: defaults from the first provider, and each mistake an
// error naming the key.
func TestHASection(t *testing.T) {
	c, err := Parse([]byte("ha:\n  table: ohfp-state\nproviders:\n- name: a\n  region: eu-west-1\n  profile: hf\n"), "/etc/ohfp/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.HA == nil || c.HA.Table != "ohfp-state" || c.HA.Region != "eu-west-1" || c.HA.Profile != "hf" || c.HA.LeaseDuration != DefaultLeaseDuration || c.HA.CreateTable {
		t.Fatalf("ha = %+v", c.HA)
	}
	if c, err := Parse([]byte("providers:\n- name: a\n"), "c.yaml"); err != nil || c.HA != nil {
		t.Fatalf("without ha: %+v, %v", c.HA, err)
	}
	for doc, want := range map[string]string{
		"ha:\n  region: us-east-1\n":                   "table is missing",
		"ha:\n  table: x\n":                            "not a DynamoDB table name",
		"ha:\n  table: t1t\n  lease_duration: 1s\n":    "out of range (2s-5m)",
		"ha:\n  table: t1t\n  endpoint_url: ftp://x\n": "not an http(s) URL",
		"ha:\n  table: t1t\n  tabel: x\n":              "tabel",
	} {
		_, err := Parse([]byte(doc+"providers:\n- name: a\n"), "c.yaml")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", doc, err, want)
		}
	}
}
