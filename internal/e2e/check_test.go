package e2e

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/hfdriver"
)

// ohfp check through the binaries: the provider's credentials first, on
// one row; every problem of a broken template in one run (an AMI that does
// not exist, an unknown subnet, an unknown security group, a type the
// region does not offer), a good template all ok; a template or provider
// ohfpd does not have is a clear refusal naming those it has, not an
// internal error logged at ERROR.
func TestCheckEveryProblemOneRun(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, `{"templates": [
  {"templateId": "Good", "maxNumber": 4, "attributes": {"type": ["String", "X86_64"], "ncpus": ["Numeric", "2"], "nram": ["Numeric", "4096"]},
   "imageId": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64", "vmType": "c5.large", "subnetId": "__SUBNETS__"},
  {"templateId": "Broken", "maxNumber": 4, "attributes": {"type": ["String", "X86_64"], "ncpus": ["Numeric", "2"], "nram": ["Numeric", "4096"]},
   "imageId": "ami-0000000000000dead", "vmType": "c5.bogus", "subnetId": "subnet-0000000000000dead", "securityGroupIds": ["sg-0000000000000dead"]}
]}`, "    aws_rate_limit: false\n")
	e.start()
	out, errOut, code := e.ohfp(0, "check")
	// The four rows, and the one dry run tried (it stops at one of them).
	if code != 1 || !strings.Contains(errOut, "5 checks failed") {
		t.Errorf("check: exit %d, stderr %q; want 1 and 5 failures", code, errOut)
	}
	ls := lines(out)
	if len(ls) < 2 || !regexp.MustCompile(`^aws - credentials ok: AWS took them \(access key AKIASIMULATED`).MatchString(ls[1]) {
		t.Fatalf("the first row is not the credentials':\n%s", out)
	}
	for _, want := range []string{
		`(?m)^aws Broken image ami-0000000000000dead FAIL InvalidAMIID.NotFound`,
		`(?m)^aws Broken subnet subnet-0000000000000dead FAIL InvalidSubnetID.NotFound`,
		`(?m)^aws Broken security group sg-0000000000000dead FAIL InvalidGroup.NotFound`,
		`(?m)^aws Broken instance type c5.bogus FAIL not offered in region us-east-1`,
		`(?m)^aws Good image /aws/service/\S+ ok: ami-`,
		`(?m)^aws Broken RunInstances dry run: c5.bogus in subnet-0000000000000dead FAIL `,
		`(?m)^aws Good instance type c5.large ok: offered in us-east-1a, us-east-1b, us-east-1c$`,
	} {
		if !regexp.MustCompile(want).MatchString(strings.Join(ls, "\n")) {
			t.Errorf("check lacks %s:\n%s", want, out)
		}
	}
	if regexp.MustCompile(`(?m)^aws Good .* FAIL`).MatchString(strings.Join(ls, "\n")) {
		t.Errorf("a good template failed:\n%s", out)
	}

	_, errOut, code = e.ohfp(0, "check", "NoSuch")
	if code != 1 || errOut != "ohfp check: no template NoSuch (known: Good, Broken)\n" {
		t.Errorf("check NoSuch: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = e.ohfp(0, "check", "--provider", "nope")
	if code != 1 || errOut != "ohfp check: no provider nope (known: aws)\n" {
		t.Errorf("check --provider nope: exit %d, stderr %q", code, errOut)
	}
	must(t, e.daemon.Stop(10*time.Second))
	e.daemon = nil
	for _, l := range strings.Split(e.log.String(), "\n") {
		if strings.Contains(l, "NoSuch") && (strings.Contains(l, "level=ERROR") || strings.Contains(l, "internal error")) {
			t.Errorf("check NoSuch logged as an internal error: %s", l)
		}
	}
}

// Without credentials, ohfp check says so on one row and tries nothing
// else, instead of a pile of identical errors (or an AMI "ok").
func TestCheckNoCredentials(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, `{"templates": [
  {"templateId": "A", "maxNumber": 4, "attributes": {"type": ["String", "X86_64"], "ncpus": ["Numeric", "2"], "nram": ["Numeric", "4096"]},
   "imageId": "ami-0123456789abcdef0", "vmType": "c5.large"},
  {"templateId": "B", "maxNumber": 4, "attributes": {"type": ["String", "X86_64"], "ncpus": ["Numeric", "2"], "nram": ["Numeric", "4096"]},
   "imageId": "ami-0123456789abcdef0", "vmType": "c5.large"}
]}`, "    aws_rate_limit: false\n")
	d, err := hfdriver.StartDaemon(filepath.Join(e.bin, "ohfpd"), []string{"--config", e.cfg},
		[]string{"AWS_EC2_METADATA_DISABLED=true", "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(e.dir, "none"), "AWS_CONFIG_FILE=" + filepath.Join(e.dir, "none"),
			"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_PROFILE=", "AWS_WEB_IDENTITY_TOKEN_FILE=", "AWS_CONTAINER_CREDENTIALS_FULL_URI=", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="},
		e.sock, e.log, 30*time.Second)
	must(t, err)
	e.daemon = d
	out, errOut, code := e.ohfp(0, "check")
	ls := lines(out)
	if code != 1 || len(ls) != 2 || !regexp.MustCompile(`^aws - credentials FAIL no AWS credentials found .*; 2 templates not checked until this is fixed$`).MatchString(ls[1]) ||
		!strings.Contains(errOut, "1 check failed of 1") {
		t.Fatalf("check without credentials: exit %d\n%s%s", code, out, errOut)
	}
}

// lines splits a table into lines with runs of spaces collapsed.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		out = append(out, strings.Join(strings.Fields(l), " "))
	}
	return out
}
