package e2e

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/apitype"
)

const costTemplates = `{"templates": [
  {"templateId": "OnDemand-c5", "maxNumber": 4, "attributes": {"type": ["String", "X86_64"]},
   "imageId": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64", "vmType": "c5.large"},
  {"templateId": "OnDemand-m5", "maxNumber": 4, "attributes": {"type": ["String", "X86_64"]},
   "imageId": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64", "vmType": "m5.large"},
  {"templateId": "Spot-m5", "maxNumber": 4, "attributes": {"type": ["String", "X86_64"]},
   "imageId": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64",
   "vmType": "m5.large", "priceType": "spot", "providerApi": "RunInstances"}
]}`

// statusJSON runs `ohfp status --json`.
func (e *env) statusJSON() (apitype.Status, int) {
	e.t.Helper()
	out, errOut, code := e.ohfp(0, "status", "--json")
	var st apitype.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("ohfp status --json: %v\n%s%s", err, out, errOut)
	}
	return st, code
}

// metrics scrapes /metrics on ohfpd's socket (curl --unix-socket).
func (e *env) metrics() string {
	e.t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", e.sock)
	}}, Timeout: 10 * time.Second}
	resp, err := c.Get("http://ohfpd/metrics")
	must(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(e.t, err)
	return string(b)
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// Prices through the real binaries: on-demand from the table (which wins)
// and the Price List API, Spot from the Spot price history; in ohfp show,
// ohfp status (text and --json) and /metrics.
func TestCostEstimates(t *testing.T) {
	t.Parallel() // with TestCostAPIDeniedOrUnreachable: each has its own region and daemon
	e := newEnvWith(t, costTemplates, "    pricing: api\n    prices: {c5.large: 0.09}\n")
	var spot []map[string]any
	for _, az := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
		spot = append(spot, map[string]any{"instanceType": "m5.large", "availabilityZone": az, "price": 0.031})
	}
	e.sim("prices", map[string]any{"spot": spot})
	e.start()
	ids := map[string]string{}
	for _, tpl := range []string{"OnDemand-c5", "OnDemand-m5", "Spot-m5"} {
		ids[tpl] = e.request(tpl, 1)
	}
	machine := map[string]string{}
	for tpl, id := range ids {
		st := e.waitFinal(id).Requests[0]
		if st.Status != "complete" || len(st.Machines) != 1 {
			t.Fatalf("%s: %+v", tpl, st)
		}
		machine[tpl] = st.Machines[0].MachineID
	}

	var st apitype.Status
	e.until("3 machines priced", 20*time.Second, func() bool {
		st, _ = e.statusJSON()
		return st.Cost != nil && st.Cost.Total.Machines == 3
	})
	if !near(st.Cost.Total.DollarsPerHour, 0.09+0.096+0.031) {
		t.Errorf("total %+v", st.Cost.Total)
	}
	byTpl := map[string]float64{}
	for _, c := range st.Cost.Templates {
		byTpl[c.TemplateID] = c.Sum.DollarsPerHour
	}
	if !near(byTpl["OnDemand-c5"], 0.09) || !near(byTpl["OnDemand-m5"], 0.096) || !near(byTpl["Spot-m5"], 0.031) {
		t.Errorf("per template: %v", byTpl)
	}
	if len(st.Cost.Requests) != 3 {
		t.Errorf("per request: %+v", st.Cost.Requests)
	}

	for tpl, want := range map[string]string{
		"OnDemand-c5": "$0.0900/h on-demand (table)",
		"OnDemand-m5": "$0.0960/h on-demand (price-list)",
		"Spot-m5":     "$0.0310/h spot (spot-history)",
	} {
		out, _, code := e.ohfp(0, "show", machine[tpl])
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("ohfp show %s (%s): want %q in\n%s", machine[tpl], tpl, want, out)
		}
	}
	out, _, _ := e.ohfp(0, "show", ids["OnDemand-m5"])
	if !strings.Contains(out, "$0.0960/h for 1 machine (live machines, estimate)") || !strings.Contains(out, "0.0960") {
		t.Errorf("ohfp show REQUEST:\n%s", out)
	}
	out, _, code := e.ohfp(0, "status")
	if testing.Verbose() {
		shown, _, _ := e.ohfp(0, "show", ids["Spot-m5"])
		one, _, _ := e.ohfp(0, "show", machine["Spot-m5"])
		t.Logf("ohfp status:\n%s\nohfp show REQUEST:\n%s\nohfp show MACHINE:\n%s", out, shown, one)
	}
	if code != 0 || !strings.Contains(out, "$0.2170/h for 3 machines (estimate)") || !strings.Contains(out, "Spot-m5: $0.0310/h for 1 machine") {
		t.Errorf("ohfp status (exit %d):\n%s", code, out)
	}
	m := e.metrics()
	for _, want := range []string{
		`ohfp_machine_price_estimate_dollars{az="`,
		`instance_type="m5.large",price_type="spot",provider="aws",template="Spot-m5"} 0.031`,
		`ohfp_template_price_estimate_dollars_per_hour{provider="aws",template="OnDemand-m5"} 0.096`,
		`ohfp_template_price_estimate_dollars_per_hour{provider="aws",template="OnDemand-c5"} 0.09`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// One GetProducts (m5.large: c5.large is in the table), Spot asked
	// once per spot_price_ttl, never per status or scrape.
	calls, _ := e.simCounts()
	if calls["GetProducts"] != 1 || calls["DescribeSpotPriceHistory"] != 1 {
		t.Errorf("price calls: GetProducts %d, DescribeSpotPriceHistory %d", calls["GetProducts"], calls["DescribeSpotPriceHistory"])
	}
}

// A Price List endpoint nobody answers and a Spot price history the role
// may not read: launches go on, the estimates are unknown with the
// reason, and ohfpd stays healthy.
func TestCostAPIDeniedOrUnreachable(t *testing.T) {
	t.Parallel()
	dead := "http://" + freeAddr(t) // nothing listens there
	e := newEnvWith(t, costTemplates, "    pricing: api\n    pricing_endpoint_url: "+dead+"\n    retry_attempts: 0\n")
	e.sim("faults", map[string]any{"denied": []string{"DescribeSpotPriceHistory"}})
	e.start()
	od, sp := e.request("OnDemand-m5", 1), e.request("Spot-m5", 1)
	for _, id := range []string{od, sp} {
		if st := e.waitFinal(id).Requests[0]; st.Status != "complete" {
			t.Fatalf("launch with pricing failing: %+v", st)
		}
	}
	var st apitype.Status
	var code int
	e.until("2 machines with an unknown price and a reason", 20*time.Second, func() bool {
		st, code = e.statusJSON()
		n := 0
		for _, c := range st.Cost.Templates {
			if c.Sum.Unknown == 1 && c.Sum.Reason != "not fetched yet" {
				n++
			}
		}
		return n == 2
	})
	for _, c := range st.Cost.Templates {
		switch c.TemplateID {
		case "OnDemand-m5":
			if !strings.Contains(c.Sum.Reason, "GetProducts") {
				t.Errorf("unreachable Price List: %+v", c.Sum)
			}
		case "Spot-m5":
			if !strings.Contains(c.Sum.Reason, "ec2:DescribeSpotPriceHistory") {
				t.Errorf("denied Spot price history: %+v", c.Sum)
			}
		}
	}
	if code != 0 || st.Health == nil || st.Health.Level != apitype.Healthy {
		t.Errorf("pricing failures made ohfpd unhealthy: exit %d, %+v", code, st.Health)
	}
	out, _, _ := e.ohfp(0, "show", od)
	if !strings.Contains(out, "unknown") {
		t.Errorf("ohfp show REQUEST with the price unknown:\n%s", out)
	}
	if m := e.metrics(); !strings.Contains(m, `ohfp_template_price_unknown_machines{provider="aws",template="Spot-m5"} 1`) {
		t.Errorf("/metrics lacks the unknown count")
	}
}
