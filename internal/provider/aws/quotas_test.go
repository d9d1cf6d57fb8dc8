package awsprov

import (
	"context"
	"strings"
	"testing"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/template"
)

func TestQuotaOf(t *testing.T) {
	for it, want := range map[string][2]string{
		"c5.large": {"L-1216C47A", "L-34B43A08"}, "m7i-flex.large": {"L-1216C47A", "L-34B43A08"},
		"im4gn.large": {"L-1216C47A", "L-34B43A08"}, "z1d.large": {"L-1216C47A", "L-34B43A08"},
		"g4dn.xlarge": {"L-DB2E81BA", "L-3819A6DF"}, "vt1.3xlarge": {"L-DB2E81BA", "L-3819A6DF"},
		"p3.2xlarge": {"L-417A185B", "L-7212CCBC"}, "p5.48xlarge": {"L-417A185B", ""},
		"inf2.xlarge": {"L-1945791B", "L-B5D1601B"}, "trn1.2xlarge": {"L-2C3B7624", ""},
		"dl1.24xlarge": {"L-6E869C2A", "L-85EED4F7"}, "x2idn.16xlarge": {"L-7295265B", "L-E3A00192"},
		"u-6tb1.metal": {"L-43DA4232", ""}, "hpc7g.4xlarge": {"L-F7808C92", ""}, "f1.2xlarge": {"L-74FC7D96", "L-88CF9481"},
	} {
		q, ok := quotaOf(it)
		if !ok || q.onDemand != want[0] || q.spot != want[1] {
			t.Errorf("quotaOf(%s) = %+v %v, want %v", it, q, ok, want)
		}
	}
	for _, it := range []string{"mac2.metal", "", "bogus"} {
		if q, ok := quotaOf(it); ok {
			t.Errorf("quotaOf(%s) = %+v", it, q)
		}
	}
}

// The vCPU quota rows: maxNumber x the most vCPUs per unit compared with
// the applied quota, ok or too low (a failure); unknown, and no failure,
// when Service Quotas has no value or refuses the call; both lifecycles
// for a heterogeneous template; unlimited maxNumber bounded by the quota.
func TestSimCheckQuotas(t *testing.T) {
	ctx := context.Background()
	p, r, _ := newSim(t, Settings{})
	tpl := checkTemplate(r, template.APIRunInstances)
	tpl.PriceType, tpl.PercentOnDemand = template.PriceOnDemand, 0
	// c5.large 2 vCPUs at weight 1, c5.xlarge 4 at weight 2: 2 per unit.
	tpl.VMTypes = template.Weights{{Type: "c5.large", Weight: 1}, {Type: "c5.xlarge", Weight: 2}}
	tpl.MaxNumber = 20
	quota := func(res []CheckResult, code string) CheckResult {
		t.Helper()
		return row(t, res, "vCPU quota "+code)
	}

	c := quota(p.Check(ctx, tpl), "L-1216C47A")
	if !c.OK || !strings.HasPrefix(c.Result, "unknown: Service Quotas has no applied value") {
		t.Fatalf("no applied value: %+v", c)
	}
	if err := r.SetQuotas(map[string]float64{"L-1216C47A": 40, "L-34B43A08": 16}); err != nil {
		t.Fatal(err)
	}
	c = quota(p.Check(ctx, tpl), "L-1216C47A")
	if !c.OK || !strings.HasPrefix(c.Result, "ok: up to 40 vCPUs (maxNumber 20 x 2 vCPUs per unit of c5.large), the quota is 40") {
		t.Fatalf("quota just enough: %+v", c)
	}
	tpl.VMTypes = template.Weights{{Type: "c5.large", Weight: 1}, {Type: "c5.2xlarge", Weight: 2}} // 4 per unit
	c = quota(p.Check(ctx, tpl), "L-1216C47A")
	if c.OK || !strings.HasPrefix(c.Result, "too low: up to 80 vCPUs (maxNumber 20 x 4 vCPUs per unit of c5.2xlarge), the quota is 40") {
		t.Fatalf("quota too low: %+v", c)
	}

	het := checkTemplate(r, template.APIEC2Fleet) // heterogeneous, maxNumber 10, 2 vCPUs per unit
	res := p.Check(ctx, het)
	if c := quota(res, "L-1216C47A"); !c.OK {
		t.Fatalf("heterogeneous, on-demand: %+v", c)
	}
	if c := quota(res, "L-34B43A08"); c.OK || !strings.Contains(c.Result, "up to 20 vCPUs") {
		t.Fatalf("heterogeneous, Spot: %+v", c)
	}

	het.MaxNumber = -1
	if c := quota(p.Check(ctx, het), "L-34B43A08"); !c.OK || !strings.Contains(c.Result, "bounds the template at 8 units of c5.large") {
		t.Fatalf("unlimited: %+v", c)
	}

	r.SetFaults(awssim.Faults{Denied: []string{"GetServiceQuota"}})
	res = p.Check(ctx, tpl)
	if c := quota(res, "L-1216C47A"); !c.OK || c.Result != "unknown: the credentials lack servicequotas:GetServiceQuota" {
		t.Fatalf("denied: %+v", c)
	}
	for _, c := range res {
		if !c.OK {
			t.Fatalf("a quota not known failed the check: %+v", c)
		}
	}
	if h := p.Health(); h.Summary() != "ok" {
		t.Fatalf("a refused GetServiceQuota made AWS unhealthy: %s", h.Summary())
	}
}
