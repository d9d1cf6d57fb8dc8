package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ohfp/ohfp/internal/apitype"
)

// simCounts reads the simulated region's call and error counts.
func (e *env) simCounts() (calls map[string]int, codes map[string]int) {
	e.t.Helper()
	resp, err := http.Get(e.endpoint + "/_sim/counts")
	must(e.t, err)
	defer resp.Body.Close()
	var c map[string]map[string]int
	must(e.t, json.NewDecoder(resp.Body).Decode(&c))
	return c["calls"], c["errorCodes"]
}

// subnetsByZone maps the simulated region's Availability Zones to their subnet.
func (e *env) subnetsByZone() map[string]string {
	e.t.Helper()
	sn, err := e.ec2.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{})
	must(e.t, err)
	out := map[string]string{}
	for _, s := range sn.Subnets {
		out[aws.ToString(s.AvailabilityZone)] = aws.ToString(s.SubnetId)
	}
	return out
}

// A pool where EC2 had no capacity is remembered and skipped by the next
// request (of another template too): its first RunInstances goes to the
// next pool, and ohfp status shows the pool and until when.
func TestCapacityMemorySkipsPool(t *testing.T) {
	t.Parallel() // its own region and daemons; mostly waiting
	e := newEnvWith(t, `{"templates": [
  {"templateId": "Pools", "maxNumber": 10, "attributes": {"type": ["String", "X86_64"], "ncpus": ["Numeric", "1"], "nram": ["Numeric", "4096"]},
   "imageId": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64", "vmType": "c5.large", "subnetId": "__A__,__B__"},
  {"templateId": "Pools2", "maxNumber": 10, "attributes": {"type": ["String", "X86_64"], "ncpus": ["Numeric", "1"], "nram": ["Numeric", "4096"]},
   "imageId": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64", "vmType": "c5.large", "subnetId": "__A__,__B__"}
]}`, "    aws_rate_limit: false\n    capacity_memory: 3m\n")
	zones := e.subnetsByZone()
	a, b := zones["us-east-1a"], zones["us-east-1b"]
	tpl, err := os.ReadFile(e.dir + "/awsprov_templates.json")
	must(t, err)
	must(t, os.WriteFile(e.dir+"/awsprov_templates.json", []byte(strings.NewReplacer("__A__", a, "__B__", b).Replace(string(tpl))), 0o600))
	e.sim("capacity", map[string]any{"instanceType": "c5.large", "availabilityZone": "us-east-1a", "count": 0})
	e.start()

	first := e.request("Pools", 1)
	if st := e.waitFinal(first).Requests[0]; st.Status != "complete" {
		t.Fatalf("first request: %+v", st)
	}
	calls, codes := e.simCounts()
	if calls["RunInstances"] != 2 || codes["RunInstances InsufficientInstanceCapacity"] != 1 {
		t.Fatalf("first request: RunInstances %d, InsufficientInstanceCapacity %d; want 2 and 1 (subnet A refused, B launched)", calls["RunInstances"], codes["RunInstances InsufficientInstanceCapacity"])
	}
	out, _, code := e.ohfp(0, "status", "--json")
	var st apitype.Status
	must(t, json.Unmarshal([]byte(out), &st))
	if code != 0 || len(st.Unavailable) != 1 || st.Unavailable[0].Where != a || st.Unavailable[0].InstanceType != "c5.large" ||
		st.Unavailable[0].Until.Sub(time.Now()) < 2*time.Minute {
		t.Fatalf("status (exit %d) unavailable %+v, want c5.large in %s for ~3m", code, st.Unavailable, a)
	}
	if text, _, _ := e.ohfp(0, "status"); !strings.Contains(text, "c5.large in "+a) {
		t.Fatalf("ohfp status does not show the pool:\n%s", text)
	}

	// The next request, of the other template: straight to subnet B.
	second := e.request("Pools2", 1)
	st2 := e.waitFinal(second).Requests[0]
	if st2.Status != "complete" {
		t.Fatalf("second request: %+v", st2)
	}
	calls, codes = e.simCounts()
	if calls["RunInstances"] != 3 || codes["RunInstances InsufficientInstanceCapacity"] != 1 {
		t.Fatalf("second request: RunInstances %d, InsufficientInstanceCapacity %d; want 3 and still 1: the remembered pool was not asked first", calls["RunInstances"], codes["RunInstances InsufficientInstanceCapacity"])
	}
	for _, in := range e.tagged(second) {
		if aws.ToString(in.SubnetId) != b {
			t.Fatalf("second request launched in %s, want %s", aws.ToString(in.SubnetId), b)
		}
	}
}

// A template whose AMI does not exist stops after breaker_failures
// launches; HF sees availableNumber 0 and why, requestMachines is
// refused; ohfp rearm and the cooldown re-arm it.
func TestBreakerStopsBrokenTemplate(t *testing.T) {
	t.Parallel() // its own region and daemons; mostly waiting
	e := newEnvWith(t, `{"templates": [
  {"templateId": "Broken", "maxNumber": 10, "attributes": {"type": ["String", "X86_64"], "ncpus": ["Numeric", "1"], "nram": ["Numeric", "4096"]},
   "imageId": "ami-0000000000000bad0", "vmType": "c5.large"},
  {"templateId": "Fine", "maxNumber": 10, "attributes": {"type": ["String", "X86_64"], "ncpus": ["Numeric", "1"], "nram": ["Numeric", "4096"]},
   "imageId": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64", "vmType": "c5.large"}
]}`, "    aws_rate_limit: false\n    breaker_failures: 2\n    breaker_cooldown: 4s\n")
	e.start()
	trip := func() {
		t.Helper()
		for range 2 {
			id := e.request("Broken", 1)
			if st := e.waitFinal(id).Requests[0]; st.Status != "complete_with_error" || !strings.Contains(st.Message, "InvalidAMIID") {
				t.Fatalf("broken AMI: %+v", st)
			}
		}
		var tr struct {
			Message   string `json:"message"`
			Templates []struct {
				TemplateID      string `json:"templateId"`
				AvailableNumber int    `json:"availableNumber"`
			} `json:"templates"`
		}
		e.call("getAvailableTemplates", map[string]any{}, &tr)
		if tr.Templates[0].TemplateID != "Broken" || tr.Templates[0].AvailableNumber != 0 || tr.Templates[1].AvailableNumber != 10 ||
			!strings.Contains(tr.Message, "template Broken stopped launching after 2 failures") || !strings.Contains(tr.Message, "InvalidAMIID.NotFound") {
			t.Fatalf("getAvailableTemplates after 2 failures: %+v", tr)
		}
	}
	trip()
	calls, _ := e.simCounts()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := e.plugin.Raw(ctx, "requestMachines", []byte(`{"template": {"templateId": "Broken", "machineCount": 1}}`))
	must(t, err)
	if res.Exit != 1 || !strings.Contains(string(res.Stdout), "ohfp rearm Broken") {
		t.Fatalf("requestMachines on a stopped template: exit %d %s", res.Exit, res.Stdout)
	}
	if after, _ := e.simCounts(); after["RunInstances"] != calls["RunInstances"] {
		t.Fatal("a stopped template reached AWS")
	}
	if out, _, _ := e.ohfp(0, "templates"); !strings.Contains(out, "stopped launching") {
		t.Fatalf("ohfp templates does not say why:\n%s", out)
	}
	// HF can no longer get hosts from it: the health verdict is
	// degraded and says which template and what to do.
	healthLine := regexp.MustCompile(`(?m)^health: .*$`)
	if out, _, code := e.ohfp(0, "status"); code != 1 || !strings.Contains(out, "stopped") ||
		!regexp.MustCompile(`(?m)^health: +degraded: .*template Broken of provider aws stopped by its failure breaker after 2 failures \(last: .*InvalidAMIID.NotFound.*\): HF gets no hosts from it until it re-arms in \ds or ohfp rearm Broken`).MatchString(out) {
		t.Fatalf("ohfp status (exit %d) does not make the stopped template degraded:\n%s", code, out)
	}
	out, errOut, code := e.ohfp(0, "rearm", "Broken")
	if code != 0 || !strings.Contains(out+errOut, "re-armed") {
		t.Fatalf("ohfp rearm: exit %d %s %s", code, out, errOut)
	}
	if out, _, _ := e.ohfp(0, "status"); strings.Contains(healthLine.FindString(out), "Broken") {
		t.Fatalf("ohfp status after the re-arm still names the template:\n%s", out)
	}
	if e.available("Broken") != 10 {
		t.Fatal("rearm did not re-arm")
	}

	trip()
	deadline := time.Now().Add(10 * time.Second)
	for e.available("Broken") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the cooldown (4s) did not re-arm the template")
		}
		time.Sleep(200 * time.Millisecond)
	}
	must(t, e.daemon.Stop(10*time.Second)) // its log is read once it is written
	e.daemon = nil
	if !strings.Contains(e.log.String(), `template re-armed by the operator: it launches again" component=engine template=Broken provider=aws by="uid 0 (root)"`) {
		t.Fatal("the re-arm is not in the log with who did it")
	}
}
