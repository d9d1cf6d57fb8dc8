package awsprov

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/english"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// ohfp check of EC2 Fleet, Spot Fleet and Auto Scaling templates.
//
// Each of them launches through a launch template ohfp creates per request,
// and CreateFleet and RequestSpotFleet name it by id: a dry run of the
// very call ohfp makes needs one that exists. The check creates it as a
// launch would (the same builder, launchTemplateData), named
// LaunchTemplateName(checkRequestID) = ohfp-check-<template>, and deletes
// it when done. A launch template launches nothing and costs nothing; one
// left by a check that ended before deleting it is deleted by the next
// check of the template before it makes its own.
//
// Then, per API:
//   - EC2 Fleet: CreateFleet with DryRun, built by createFleetInput;
//   - Spot Fleet: the fleet role's ARN, then RequestSpotFleet with DryRun,
//     built by spotFleetConfig;
//   - Auto Scaling, which has no dry run: DescribeAutoScalingGroups (the
//     credentials may call Auto Scaling), and CreateAutoScalingGroup built
//     by asgInput but not sent (the row says so);
//
// and for all three a RunInstances dry run of the launch template per
// instance type and subnet pair, which tries what a fleet meets only when
// it launches (the AMI, the security groups, the types offered).

// TagCheck marks the launch templates ohfp check creates (its value is
// the template id).
const TagCheck = "ohfp:check"

// ltNameChars are the characters EC2 allows in a launch template name.
var ltNameChars = regexp.MustCompile(`^[a-zA-Z0-9().\-/_]+$`)

// checkRequestID is the request id ohfp check uses for template t: it
// names the check's launch template, ohfp-check-<template id> (a hash of
// the id when the id has characters a launch template name may not).
func checkRequestID(t *template.Template) string {
	id := t.TemplateID
	if !ltNameChars.MatchString(id) || len(id) > 100 {
		sum := sha256.Sum256([]byte(id))
		id = hex.EncodeToString(sum[:8])
	}
	return "check-" + id
}

// checkUnits is the capacity the check's fleet dry runs ask for: the
// template's maxNumber (1 when unlimited or 0), so that a heterogeneous
// template's on-demand and Spot parts both appear.
func checkUnits(t *template.Template) int {
	return max(t.MaxNumber, 1)
}

// fleetRoleARN is the shape of an IAM role's ARN.
var fleetRoleARN = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$`)

// checkFleet checks a template whose API is EC2 Fleet, Spot Fleet or Auto
// Scaling (see above).
func (p *Provider) checkFleet(ctx context.Context, t template.Template, pairs int) []CheckResult {
	api := t.API()
	var out []CheckResult
	if api == template.APISpotFleet {
		r := CheckResult{What: "Spot Fleet role " + t.FleetRole}
		switch {
		case t.FleetRole == "":
			r.What, r.Result = "Spot Fleet role", "no fleetRole: a Spot Fleet needs the ARN of an IAM role it can launch with"
		case !fleetRoleARN.MatchString(t.FleetRole):
			r.Result = "not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
		default:
			r.OK, r.Result = true, "ok: an IAM role ARN (its trust of spotfleet.amazonaws.com and its permissions are used, and so tried, only when a fleet launches)"
		}
		out = append(out, r)
		if !r.OK {
			return out
		}
	}
	if api == template.APIASG && len(t.SubnetIDs) == 0 {
		return append(out, CheckResult{What: "Auto Scaling group", Result: "no subnetId: an Auto Scaling group needs the subnets to launch in"})
	}
	spec := provider.LaunchSpec{RequestID: checkRequestID(&t), Template: t, Units: checkUnits(&t), Tags: map[string]string{TagCheck: t.TemplateID}}
	name := LaunchTemplateName(spec.RequestID)
	// One an earlier check left: deleted, so this one is made from the
	// template as it is now.
	if err := p.deleteLaunchTemplates(ctx, []string{name}); err != nil {
		return append(out, CheckResult{What: "DeleteLaunchTemplate " + name + " (left by an earlier check)", Result: checkError(err)})
	}
	what := "CreateLaunchTemplate " + name + " (deleted after the check)"
	lt, err := p.ensureLaunchTemplate(ctx, spec)
	if err != nil {
		r := CheckResult{What: what, Result: checkError(err)}
		if apiCode(err) == "UnauthorizedOperation" {
			r.Result = "not permitted: the credentials lack ec2:CreateLaunchTemplate (or ec2:CreateTags), which every " + api + " launch needs: " + apiMessage(err)
		}
		return append(out, r)
	}
	out = append(out, CheckResult{What: what, OK: true, Result: "ok: " + lt.ID})
	switch api {
	case template.APIEC2Fleet:
		out = append(out, p.checkCreateFleet(ctx, spec, lt))
	case template.APISpotFleet:
		out = append(out, p.checkSpotFleet(ctx, spec, lt))
	case template.APIASG:
		out = append(out, p.checkASG(ctx, spec, lt)...)
	}
	out = append(out, p.checkLaunchTemplatePairs(ctx, t, lt, api == template.APISpotFleet, pairs)...)
	// Deleted even when the check's time ran out.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := p.deleteLaunchTemplates(dctx, []string{name}); err != nil {
		out = append(out, CheckResult{What: "DeleteLaunchTemplate " + name,
			Result: "left behind (the next ohfp check of the template deletes it, or aws ec2 delete-launch-template --launch-template-name " + name + "): " + checkError(err)})
	}
	return out
}

// dryRunAnswer reads EC2's answer to a fleet call with DryRun. perm names
// the permissions the call needs.
func dryRunAnswer(what string, err error, perm string) CheckResult {
	switch code := apiCode(err); {
	case err == nil:
		return CheckResult{What: what, Result: "the endpoint ignored DryRun and answered as for a launch: check endpoint_url"}
	case code == "DryRunOperation":
		return CheckResult{What: what, OK: true, Result: "ok"}
	case code == "UnauthorizedOperation":
		return CheckResult{What: what, Result: "not permitted: the credentials lack " + perm + ": " + apiMessage(err)}
	}
	return CheckResult{What: what, Result: checkError(err)}
}

// checkCreateFleet dry-runs the CreateFleet call ohfp would make.
func (p *Provider) checkCreateFleet(ctx context.Context, spec provider.LaunchSpec, lt ltRef) CheckResult {
	what := fmt.Sprintf("CreateFleet dry run (%s)", english.Plural(spec.Units, "unit"))
	in, err := p.createFleetInput(spec, lt)
	if err != nil {
		return CheckResult{What: what, Result: checkError(err)}
	}
	in.DryRun, in.ClientToken = aws.Bool(true), nil
	_, err = p.fleet.CreateFleet(ctx, in)
	return dryRunAnswer(what, err, "ec2:CreateFleet (or a permission it needs: ec2:RunInstances, ec2:CreateTags, iam:PassRole for the instance profile)")
}

// checkSpotFleet dry-runs the RequestSpotFleet call ohfp would make.
func (p *Provider) checkSpotFleet(ctx context.Context, spec provider.LaunchSpec, lt ltRef) CheckResult {
	what := fmt.Sprintf("RequestSpotFleet dry run (%s)", english.Plural(spec.Units, "unit"))
	cfg, err := p.spotFleetConfig(spec, lt)
	if err != nil {
		return CheckResult{What: what, Result: checkError(err)}
	}
	cfg.ClientToken = nil
	_, err = p.fleet.RequestSpotFleet(ctx, &ec2.RequestSpotFleetInput{DryRun: aws.Bool(true), SpotFleetRequestConfig: cfg})
	return dryRunAnswer(what, err, "ec2:RequestSpotFleet (or iam:PassRole for the fleet role "+spec.Template.FleetRole+")")
}

// checkASG checks what can be checked of an Auto Scaling launch without
// changing anything: Auto Scaling has no dry run.
func (p *Provider) checkASG(ctx context.Context, spec provider.LaunchSpec, lt ltRef) []CheckResult {
	var out []CheckResult
	what := "DescribeAutoScalingGroups"
	_, err := p.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{LaunchTemplateName(spec.RequestID)}})
	switch code := apiCode(err); {
	case err == nil:
		out = append(out, CheckResult{What: what, OK: true, Result: "ok"})
	case code == "AccessDeniedException", code == "AccessDenied":
		out = append(out, CheckResult{What: what, Result: "not permitted: the credentials lack autoscaling:DescribeAutoScalingGroups: " + apiMessage(err)})
	default:
		out = append(out, CheckResult{What: what, Result: checkError(err)})
	}
	what = "CreateAutoScalingGroup"
	in, err := asgInput(spec, lt)
	if err != nil {
		return append(out, CheckResult{What: what, Result: checkError(err)})
	}
	kind := "its launch template"
	if in.MixedInstancesPolicy != nil {
		kind = "a mixed instances policy of " + english.Plural(len(in.MixedInstancesPolicy.LaunchTemplate.Overrides), "type")
	}
	return append(out, CheckResult{What: what, OK: true, Result: fmt.Sprintf("not checkable: Auto Scaling has no dry run. "+
		"The call is built (%s, subnets %s); it needs autoscaling:CreateAutoScalingGroup, UpdateAutoScalingGroup, CreateOrUpdateTags, "+
		"TerminateInstanceInAutoScalingGroup, DeleteAutoScalingGroup, DescribeScalingActivities, the service-linked role "+
		"AWSServiceRoleForAutoScaling, and the EC2 permissions of the RunInstances dry runs below",
		kind, aws.ToString(in.VPCZoneIdentifier))})
}

// checkLaunchTemplatePairs dry-runs RunInstances of the check's launch
// template for each instance type and subnet pair the fleet or group may
// launch (at most most). notMine: see dryRunInstances.
func (p *Provider) checkLaunchTemplatePairs(ctx context.Context, t template.Template, lt ltRef, notMine bool, most int) []CheckResult {
	its := fleetTypes(&t, !notMine)
	if len(its) == 0 {
		its = []string{""} // the launch template's type
	}
	subnets := t.SubnetIDs
	if len(subnets) == 0 {
		subnets = []string{""} // the default VPC's
	}
	var out []CheckResult
	n := 0
	for _, it := range its {
		for _, sn := range subnets {
			if n++; n > most {
				continue
			}
			in := &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
				LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt.ID), Version: aws.String(lt.Version)}}
			where := []string{}
			if it != "" {
				in.InstanceType = types.InstanceType(it)
				where = append(where, it)
			}
			if sn != "" {
				where = append(where, "in "+sn)
				if nics := instanceNICs(&t, aws.String(sn)); len(nics) > 0 {
					in.NetworkInterfaces = nics
				} else {
					in.SubnetId = aws.String(sn)
				}
			}
			what := "RunInstances dry run of the launch template"
			if len(where) > 0 {
				what += ": " + strings.Join(where, " ")
			}
			out = append(out, p.dryRunInstances(ctx, what, in, notMine))
		}
	}
	if n > most {
		out = append(out, morePairs(n-most, most))
	}
	return out
}
