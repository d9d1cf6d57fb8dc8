package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ohfp/ohfp/internal/api"
	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/engine"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/rpc"
	"github.com/ohfp/ohfp/internal/store"
	"github.com/ohfp/ohfp/internal/template"
)

type noCloud struct{ provider.Provider }

func (noCloud) List(context.Context, string) ([]provider.Instance, error) { return nil, nil }
func (noCloud) InstanceType(_ context.Context, n string) (provider.InstanceTypeInfo, error) {
	return provider.InstanceTypeInfo{Name: n, VCPUs: 2, MemoryMiB: 4096}, nil
}

func TestScrape(t *testing.T) {
	st, err := store.OpenInMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e, err := engine.New(engine.Options{Store: st, Providers: []engine.ProviderConfig{{Name: "aws", Cloud: noCloud{},
		Templates: []template.Template{{TemplateID: "t1", MaxNumber: 5, VMType: "c5.large"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.RequestMachines("", hf.RequestMachines{TemplateID: "t1", MachineCount: 2}); err != nil {
		t.Fatal(err)
	}
	m := New(Sources{Status: e.StatusReport, Version: "1.2.3", Store: st.Size,
		Cloud: func() map[string]apitype.CloudStatus {
			return map[string]apitype.CloudStatus{"aws": {Health: apitype.CloudHealth{Calls: map[string]int{"DescribeInstances": 7}, Throttles: map[string]int{"RunInstances": 2}, Throttled: true}},
				"stalled": {Health: apitype.CloudHealth{Calls: map[string]int{"RunInstances": 3}, Timeouts: map[string]int{"RunInstances": 2}, NotAnswering: true,
					NotAnsweringSeconds: 90, InFlight: 1}}}
		}})
	h := m.Wrap(api.New(e, api.Options{}))
	if _, err := h.Call(context.Background(), "getRequestStatus", rpc.Params{Input: []byte(`{"requests":[{"requestId":"req-x"}]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Call(context.Background(), "requestMachines", rpc.Params{Input: []byte(`{}`)}); err == nil {
		t.Fatal("bad input must fail")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`ohfp_hf_calls_total{operation="getRequestStatus",outcome="ok"} 1`,
		`ohfp_hf_calls_total{operation="requestMachines",outcome="-32602"} 1`,
		`ohfp_hf_call_duration_seconds_count{operation="getRequestStatus"} 1`,
		`ohfp_requests{kind="acquire",status="running"} 1`,
		`ohfp_requests_in_flight 1`,
		`ohfp_aws_calls_total{action="DescribeInstances",provider="aws"} 7`,
		`ohfp_aws_throttles_total{action="RunInstances",provider="aws"} 2`,
		`ohfp_aws_healthy{provider="aws"} 0`,
		`ohfp_aws_healthy{provider="stalled"} 0`,
		`ohfp_aws_timeouts_total{action="RunInstances",provider="stalled"} 2`,
		`ohfp_aws_calls_in_flight{provider="stalled"} 1`,
		`ohfp_aws_not_answering_seconds{provider="stalled"} 90`,
		`ohfp_build_info{version="1.2.3"} 1`,
		`ohfp_store_size_bytes{part="lsm"}`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// The metrics read the one verdict (package health): a provider without
// valid credentials, or with one action throttled, is not healthy, and
// ohfp_health says what ohfp status's exit code says.
func TestScrapeReadsTheHealthVerdict(t *testing.T) {
	rep := apitype.Status{Providers: []string{"aws", "spot"}, LiveMachines: 3, Machines: map[string]int{"running": 3, "terminated": 5},
		AWS: map[string]apitype.CloudStatus{
			"aws":  {Health: apitype.CloudHealth{Credentials: true, LastError: "no EC2 IMDS role found"}},
			"spot": {Health: apitype.CloudHealth{Throttled: true, ThrottledActions: []string{"RunInstances"}}},
		},
		Health: &apitype.Health{Level: apitype.Degraded, Code: 1}}
	m := New(Sources{Status: func() apitype.Status { return rep }})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`ohfp_aws_healthy{provider="aws"} 0`,
		`ohfp_aws_healthy{provider="spot"} 0`,
		`ohfp_health 1`,
		`ohfp_machines_live 3`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestScrapeCost(t *testing.T) {
	sum := func(d float64, n, unknown int) apitype.CostSum {
		return apitype.CostSum{DollarsPerHour: d, Machines: n, Unknown: unknown}
	}
	m := New(Sources{Status: func() apitype.Status {
		return apitype.Status{Cost: &apitype.Cost{
			Templates: []apitype.TemplateCost{{Provider: "aws", TemplateID: "od", Sum: sum(0.17, 2, 0)}, {Provider: "aws", TemplateID: "spot", Sum: sum(0.03, 1, 1)}},
			Offerings: []apitype.OfferingCost{{Provider: "aws", TemplateID: "od", InstanceType: "c5.large", AZ: "us-east-1a", PriceType: "on-demand", DollarsPerHour: 0.085, Machines: 2}},
		}}
	}})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`ohfp_machine_price_estimate_dollars{az="us-east-1a",instance_type="c5.large",price_type="on-demand",provider="aws",template="od"} 0.085`,
		`ohfp_machine_price_estimate_machines{az="us-east-1a",instance_type="c5.large",price_type="on-demand",provider="aws",template="od"} 2`,
		`ohfp_template_price_estimate_dollars_per_hour{provider="aws",template="od"} 0.17`,
		`ohfp_template_price_unknown_machines{provider="aws",template="spot"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("missing %s", want)
		}
	}
}
