package awsprov

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"

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

// Check dry-runs template t against EC2 (ohfp check): the AMI is resolved
// (an SSM parameter too), then one RunInstances with DryRun per instance
// type and subnet pair, which EC2 answers DryRunOperation when the call
// would have succeeded, UnauthorizedOperation when the credentials lack
// the permission, or the error the launch would meet (an unknown AMI,
// subnet or security group, a type not offered). Nothing is launched.
func (p *Provider) Check(ctx context.Context, t template.Template) []CheckResult {
	var out []CheckResult
	if t.ImageID != "" {
		ami, err := p.resolveImage(ctx, t.ImageID)
		if err != nil {
			return append(out, CheckResult{What: "image " + t.ImageID, Result: checkError(err)})
		}
		r := CheckResult{What: "image " + t.ImageID, OK: true, Result: "ok"}
		if ami != t.ImageID {
			r.Result = "ok: " + ami
		}
		out = append(out, r)
		t.ImageID = ami // resolved once, not again per pair
	}
	pairs := max(len(t.InstanceTypes()), 1) * max(len(t.SubnetIDs), 1)
	for i := 0; i < min(pairs, maxCheckPairs); i++ {
		spec, where := Planner{}.Alternative(provider.LaunchSpec{RequestID: "check", Template: t, Units: 1}, i)
		spec.Units = max(spec.Template.WeightOf(spec.Template.VMType), 1)
		what := "RunInstances dry run: " + where
		in, err := p.runInstancesInput(ctx, spec)
		if err != nil {
			out = append(out, CheckResult{What: what, Result: checkError(err)})
			continue
		}
		in.DryRun = aws.Bool(true)
		in.MinCount, in.MaxCount = aws.Int32(1), aws.Int32(1)
		in.ClientToken = nil
		_, err = p.ec2.RunInstances(ctx, in)
		switch code := apiCode(err); {
		case err == nil:
			// EC2 answers a dry run with an error, always: this endpoint
			// launched something.
			out = append(out, CheckResult{What: what, Result: "the endpoint ignored DryRun and answered as for a launch: check endpoint_url"})
		case code == "DryRunOperation":
			out = append(out, CheckResult{What: what, OK: true, Result: "ok"})
		case code == "UnauthorizedOperation":
			out = append(out, CheckResult{What: what, Result: "not permitted: the credentials lack ec2:RunInstances (or a permission it needs: iam:PassRole for the instance profile, ec2:CreateTags): " + apiMessage(err)})
		default:
			out = append(out, CheckResult{What: what, Result: checkError(err)})
		}
	}
	if pairs > maxCheckPairs {
		out = append(out, CheckResult{What: fmt.Sprintf("%d more instance type and subnet pairs", pairs-maxCheckPairs), OK: true, Result: "not tried"})
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
