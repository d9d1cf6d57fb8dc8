package awsprov

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"

	"github.com/ohfp/ohfp/internal/english"
	"github.com/ohfp/ohfp/internal/template"
)

// EC2's vCPU quotas, for ohfp check.
//
// EC2 bounds the vCPUs of the running On-Demand Instances, and of the
// running and requested Spot Instances, of an account in a region, per
// group of instance families (EC2 User Guide, "On-Demand Instance quotas"
// and "Spot Instance quotas"). Service Quotas' GetServiceQuota (service
// code ec2) gives the applied value of each. The check compares it with
// the most the template may ask: maxNumber units of the instance type
// with the most vCPUs per unit of weight, on-demand, Spot or both as its
// priceType says. What already runs in the account counts against the
// same quota and is not counted here.

// vcpuQuota is one group of instance families and its quota codes ("":
// none known to ohfp).
type vcpuQuota struct {
	name           string
	onDemand, spot string
}

// quotaFamilies maps an instance type's family (its leading letters) to
// its quotas. On-demand codes: EC2 User Guide, "On-Demand Instance quotas"
// (each name links to its code). Spot: the names are those of "Spot
// Instance quotas"; its codes are the ones Service Quotas shows.
var quotaFamilies = func() map[string]vcpuQuota {
	std := vcpuQuota{"Standard (A, C, D, H, I, M, R, T, Z)", "L-1216C47A", "L-34B43A08"}
	m := map[string]vcpuQuota{
		"g": {"G and VT", "L-DB2E81BA", "L-3819A6DF"}, "vt": {"G and VT", "L-DB2E81BA", "L-3819A6DF"},
		"p":   {"P", "L-417A185B", "L-7212CCBC"},
		"f":   {"F", "L-74FC7D96", "L-88CF9481"},
		"x":   {"X", "L-7295265B", "L-E3A00192"},
		"inf": {"Inf", "L-1945791B", "L-B5D1601B"},
		"dl":  {"DL", "L-6E869C2A", "L-85EED4F7"},
		"trn": {"Trn", "L-2C3B7624", ""},
		"hpc": {"HPC", "L-F7808C92", ""},
		"u":   {"High Memory", "L-43DA4232", ""},
	}
	for _, f := range []string{"a", "c", "d", "h", "i", "im", "is", "m", "r", "t", "z"} {
		m[f] = std
	}
	return m
}()

// quotaOf returns the vCPU quotas of an instance type, by its family: the
// letters before its generation (c5.large: c; inf2.xlarge: inf;
// u-6tb1.metal: u).
func quotaOf(instanceType string) (vcpuQuota, bool) {
	i := strings.IndexFunc(instanceType, func(r rune) bool { return r < 'a' || r > 'z' })
	if i < 0 {
		return vcpuQuota{}, false
	}
	q, ok := quotaFamilies[instanceType[:i]]
	if ok && instanceType[:i] == "p" && instanceType[i] >= '5' && instanceType[i] <= '9' {
		// Spot P5 and later have a quota of their own ("All P5 Spot
		// Instance Requests") whose code ohfp does not know.
		q.spot = ""
	}
	return q, ok
}

// quotaNeed is what a template may ask of one quota.
type quotaNeed struct {
	code, what string
	vcpus      int    // at most, for maxNumber units
	perUnit    int    // vCPUs per unit of the type that needs the most
	worst      string // that type
}

// checkQuotas compares the vCPU quotas the template may use with the most
// it may ask. An unknown quota (no permission, no applied value, a type
// of no known family) says so and is no failure; a quota below the most
// the template may ask is.
func (p *Provider) checkQuotas(ctx context.Context, t template.Template) []CheckResult {
	if p.quotas == nil || t.MaxNumber == 0 {
		return nil
	}
	var out []CheckResult
	needs := map[string]*quotaNeed{}
	for _, it := range fleetTypes(&t, true) {
		q, ok := quotaOf(it)
		if !ok {
			out = append(out, CheckResult{What: "vCPU quota of " + it, OK: true, Result: "unknown: ohfp knows no EC2 vCPU quota for this family"})
			continue
		}
		info, err := p.InstanceType(ctx, it)
		if err != nil || info.VCPUs <= 0 {
			r := CheckResult{What: "vCPU quota of " + it, OK: true, Result: "unknown: the vCPUs of " + it + " are unknown"}
			if err != nil {
				r.Result += ": " + checkError(err)
			}
			out = append(out, r)
			continue
		}
		perUnit := int(math.Ceil(float64(info.VCPUs) / float64(max(t.WeightOf(it), 1))))
		type quotaRef struct{ code, what string }
		var lifecycles []quotaRef
		if t.Price() != template.PriceSpot {
			lifecycles = append(lifecycles, quotaRef{q.onDemand, "Running On-Demand " + q.name + " instances"})
		}
		if t.Price() != template.PriceOnDemand {
			lifecycles = append(lifecycles, quotaRef{q.spot, "All " + q.name + " Spot Instance Requests"})
		}
		for _, lc := range lifecycles {
			if lc.code == "" {
				out = append(out, CheckResult{What: "vCPU quota " + lc.what, OK: true, Result: "unknown: ohfp knows no quota code for " + it + " here"})
				continue
			}
			n := needs[lc.code]
			if n == nil {
				n = &quotaNeed{code: lc.code, what: lc.what}
				needs[lc.code] = n
			}
			if perUnit > n.perUnit {
				n.perUnit, n.worst = perUnit, it
			}
		}
	}
	codes := make([]string, 0, len(needs))
	for c := range needs {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		out = append(out, p.checkQuota(ctx, &t, needs[c]))
	}
	return out
}

// checkQuota reads one quota and compares it with what t may ask of it.
func (p *Provider) checkQuota(ctx context.Context, t *template.Template, n *quotaNeed) CheckResult {
	r := CheckResult{What: fmt.Sprintf("vCPU quota %s (%s)", n.code, n.what), OK: true}
	got, err := p.quotas.GetServiceQuota(ctx, &servicequotas.GetServiceQuotaInput{ServiceCode: aws.String("ec2"), QuotaCode: aws.String(n.code)})
	switch code := apiCode(err); {
	case err == nil && got.Quota != nil && got.Quota.Value != nil:
	case code == "AccessDeniedException":
		r.Result = "unknown: the credentials lack servicequotas:GetServiceQuota"
		return r
	case code == "NoSuchResourceException":
		r.Result = "unknown: Service Quotas has no applied value for it (see the Service Quotas console)"
		return r
	case err == nil:
		r.Result = "unknown: Service Quotas answered without a value"
		return r
	default:
		r.Result = "unknown: " + checkError(err)
		return r
	}
	quota := int(math.Floor(*got.Quota.Value))
	if t.MaxNumber < 0 {
		r.Result = fmt.Sprintf("ok: %d vCPUs; maxNumber is unlimited, so the quota bounds the template at %s of %s (%s each)",
			quota, english.Plural(quota/max(n.perUnit, 1), "unit"), n.worst, english.Plural(n.perUnit, "vCPU"))
		return r
	}
	need := t.MaxNumber * n.perUnit
	how := fmt.Sprintf("up to %d vCPUs (maxNumber %d x %d vCPUs per unit of %s)", need, t.MaxNumber, n.perUnit, n.worst)
	if need > quota {
		r.OK = false
		r.Result = fmt.Sprintf("too low: %s, the quota is %d: ask AWS for more (Service Quotas console, Amazon EC2, %s) or lower maxNumber", how, quota, n.code)
		return r
	}
	r.Result = fmt.Sprintf("ok: %s, the quota is %d (what else runs in the account counts too)", how, quota)
	return r
}
