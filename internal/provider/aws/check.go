package awsprov

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// CheckResult is one thing Check tried for a template.
type CheckResult struct {
	What   string // e.g. "RunInstances dry run: c5.large in subnet-1"
	OK     bool
	Result string // "ok", or what AWS answered
}

// maxCheckPairs bounds the instance type and subnet pairs Check tries per
// template.
const maxCheckPairs = 20

// Check checks template t against AWS (ohfp check), through the API the
// template launches with. First its resources, each by its own describe
// call and on its own row (checkres.go): the AMI (an SSM parameter
// resolved first), each subnet, each security group, the instance types'
// offerings in the subnets' zones; so every problem of a template shows in
// one run. Then the dry runs: a RunInstances template has one RunInstances
// with DryRun per instance type and subnet pair, which EC2 answers
// DryRunOperation when the call would have succeeded,
// UnauthorizedOperation when the credentials lack the permission, or the
// first error the launch would meet. EC2 Fleet, Spot Fleet and Auto
// Scaling templates are checked through a launch template of their own
// (checkFleet). When a resource row failed, only the first pair is
// dry-run (it tries the permissions; the others would stop at the same
// failure). Then the vCPU quotas the template may need (checkQuotas) and,
// with pricing: api, the price APIs. Nothing is launched. The credentials
// are the caller's first row (CheckCredentials), once per provider.
func (p *Provider) Check(ctx context.Context, t template.Template) []CheckResult {
	var out []CheckResult
	ami := ""
	if t.ImageID != "" {
		var err error
		if ami, err = p.resolveImage(ctx, t.ImageID); err != nil {
			out = append(out, CheckResult{What: "image " + t.ImageID, Result: checkError(err)})
		}
	}
	res, good := p.checkResources(ctx, t, ami)
	out = append(out, res...)
	if ami != "" {
		t.ImageID = ami // resolved once, not again per pair
	}
	// With a row above failed, the dry runs would each stop at it: one
	// tries the permissions, the others wait for the fix.
	pairs := maxCheckPairs
	if !good || len(out) > len(res) {
		pairs = 1
	}
	if t.API() == template.APIRunInstances {
		out = append(out, p.checkRunInstances(ctx, t, pairs)...)
	} else {
		out = append(out, p.checkFleet(ctx, t, pairs)...)
	}
	out = append(out, p.checkQuotas(ctx, t)...)
	return append(out, p.checkPrices(ctx, t)...)
}

// checkRunInstances dry-runs RunInstances for each instance type and
// subnet pair of t (at most most).
func (p *Provider) checkRunInstances(ctx context.Context, t template.Template, most int) []CheckResult {
	var out []CheckResult
	pairs := max(len(t.InstanceTypes()), 1) * max(len(t.SubnetIDs), 1)
	for i := 0; i < min(pairs, most); i++ {
		spec, where := Planner{}.Alternative(provider.LaunchSpec{RequestID: "check", Template: t, Units: 1}, i)
		spec.Units = max(spec.Template.WeightOf(spec.Template.VMType), 1)
		what := "RunInstances dry run: " + where
		in, err := p.runInstancesInput(ctx, spec)
		if err != nil {
			out = append(out, CheckResult{What: what, Result: checkError(err)})
			continue
		}
		in.MinCount, in.MaxCount = aws.Int32(1), aws.Int32(1)
		in.ClientToken = nil
		out = append(out, p.dryRunInstances(ctx, what, in, false))
	}
	if pairs > most {
		out = append(out, morePairs(pairs-most, most))
	}
	return out
}

// dryRunInstances sends in with DryRun and reads EC2's answer. notMine:
// the launch is not made with these credentials (a Spot Fleet launches
// with its fleet role), so their lacking ec2:RunInstances is no failure,
// only a check not made.
func (p *Provider) dryRunInstances(ctx context.Context, what string, in *ec2.RunInstancesInput, notMine bool) CheckResult {
	in.DryRun = aws.Bool(true)
	_, err := p.ec2.RunInstances(ctx, in)
	switch code := apiCode(err); {
	case err == nil:
		// EC2 answers a dry run with an error, always: this endpoint
		// launched something.
		return CheckResult{What: what, Result: "the endpoint ignored DryRun and answered as for a launch: check endpoint_url"}
	case code == "DryRunOperation":
		return CheckResult{What: what, OK: true, Result: "ok"}
	case code == "UnauthorizedOperation" && notMine:
		return CheckResult{What: what, OK: true, Result: "not checked: these credentials lack ec2:RunInstances, which a Spot Fleet does not need (it launches with its fleet role), so the AMI, subnets, groups and types are not tried here"}
	case code == "UnauthorizedOperation":
		return CheckResult{What: what, Result: "not permitted: the credentials lack ec2:RunInstances (or a permission it needs: iam:PassRole for the instance profile, ec2:CreateTags): " + apiMessage(err)}
	}
	return CheckResult{What: what, Result: checkError(err)}
}

// checkPrices tries, with pricing: api, what the template's price
// estimates need: the Price List's price of its first instance type (when
// prices: does not list it), and a DescribeSpotPriceHistory dry run for a
// Spot template. A failure here never stops a launch; it says what the
// estimates will lack.
func (p *Provider) checkPrices(ctx context.Context, t template.Template) []CheckResult {
	if p.prices.mode != PricingAPI {
		return nil
	}
	types := t.InstanceTypes()
	if len(types) == 0 {
		return nil
	}
	var out []CheckResult
	if p.prices.table[types[0]] == 0 {
		what := "price estimate: Price List GetProducts for " + types[0]
		if pr := p.listPrice(ctx, types[0]); pr.Known {
			out = append(out, CheckResult{What: what, OK: true, Result: fmt.Sprintf("ok: $%.4f/h on-demand", pr.Dollars)})
		} else {
			out = append(out, CheckResult{What: what, Result: pr.Reason})
		}
	}
	if t.Price() != template.PriceOnDemand {
		what := "price estimate: DescribeSpotPriceHistory dry run"
		_, err := p.prices.spot.DescribeSpotPriceHistory(ctx, &ec2.DescribeSpotPriceHistoryInput{DryRun: aws.Bool(true), InstanceTypes: []ec2types.InstanceType{ec2types.InstanceType(types[0])}})
		switch code := apiCode(err); code {
		case "DryRunOperation":
			out = append(out, CheckResult{What: what, OK: true, Result: "ok"})
		case "UnauthorizedOperation":
			out = append(out, CheckResult{What: what, Result: "not permitted: the credentials lack ec2:DescribeSpotPriceHistory (Spot machines' estimates will be unknown)"})
		default:
			if err == nil {
				out = append(out, CheckResult{What: what, OK: true, Result: "ok"})
			} else {
				out = append(out, CheckResult{What: what, Result: checkError(err)})
			}
		}
	}
	return out
}

// checkError is an error for Check's table: AWS's code and message.
func checkError(err error) string {
	var pe *provider.Error
	if errors.As(err, &pe) && pe.Code != "" {
		return pe.Code + ": " + pe.Message
	}
	if code := apiCode(err); code != "" {
		return code + ": " + apiMessage(err)
	}
	return classify("RunInstances", err).Error()
}

// morePairs is the row of the n instance type and subnet pairs not
// dry-run, most having been.
func morePairs(n, most int) CheckResult {
	r := CheckResult{What: fmt.Sprintf("%d more instance type and subnet pairs", n), OK: true, Result: "not tried"}
	if most < maxCheckPairs {
		r.Result = "not tried until the failures above are fixed"
	}
	return r
}
