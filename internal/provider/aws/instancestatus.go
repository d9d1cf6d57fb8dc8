package awsprov

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/provider"
)

var _ provider.HealthChecker = (*Provider)(nil)

// ScheduledEventCodes are the EC2 scheduled event codes that drain a host
// (EC2 User Guide, "Scheduled events for your instances").
var ScheduledEventCodes = []string{"instance-retirement", "instance-stop", "instance-reboot", "system-reboot", "system-maintenance"}

// InstanceHealth lists the running instances of the account and region
// with a scheduled event and, when statusChecks, those failing a status
// check: one filtered, paginated DescribeInstanceStatus per question (1000
// instances a page), never one call per instance, so a pass costs two or
// three calls whatever the cluster's size. (DescribeInstanceStatus has no
// tag filter; the caller keeps its own instances.) Without
// IncludeAllInstances EC2 answers for running instances only, which are
// the ones HF could still drain.
func (p *Provider) InstanceHealth(ctx context.Context, statusChecks bool) ([]provider.InstanceHealth, error) {
	api, ok := p.ec2.(ec2.DescribeInstanceStatusAPIClient)
	if !ok {
		return nil, &provider.Error{Op: "DescribeInstanceStatus", Kind: provider.Fatal, Message: "this EC2 client cannot describe instance status"}
	}
	byID := map[string]*provider.InstanceHealth{}
	var order []string
	add := func(st ec2types.InstanceStatus) {
		id := aws.ToString(st.InstanceId)
		h := byID[id]
		if h == nil {
			h = &provider.InstanceHealth{ID: id}
			byID[id] = h
			order = append(order, id)
		}
		since := func(s *ec2types.InstanceStatusSummary) (bool, time.Time) {
			if s == nil || s.Status != ec2types.SummaryStatusImpaired {
				return false, time.Time{}
			}
			var at time.Time
			for _, d := range s.Details {
				if d.ImpairedSince != nil && (at.IsZero() || d.ImpairedSince.Before(at)) {
					at = *d.ImpairedSince
				}
			}
			return true, at
		}
		if imp, at := since(st.InstanceStatus); imp {
			h.InstanceImpaired = true
			if h.ImpairedSince.IsZero() || !at.IsZero() && at.Before(h.ImpairedSince) {
				h.ImpairedSince = at
			}
		}
		if imp, at := since(st.SystemStatus); imp {
			h.SystemImpaired = true
			if h.ImpairedSince.IsZero() || !at.IsZero() && at.Before(h.ImpairedSince) {
				h.ImpairedSince = at
			}
		}
		if len(h.Scheduled) > 0 {
			return // seen by an earlier question
		}
		for _, e := range st.Events {
			d := aws.ToString(e.Description)
			// A completed or cancelled event stays listed for a while with
			// its description so marked.
			if strings.HasPrefix(d, "[Completed]") || strings.HasPrefix(d, "[Canceled]") || strings.HasPrefix(d, "[Cancelled]") {
				continue
			}
			h.Scheduled = append(h.Scheduled, provider.ScheduledEvent{Code: string(e.Code), NotBefore: aws.ToTime(e.NotBefore), Description: d})
		}
	}
	ask := func(name string, values ...string) error {
		in := &ec2.DescribeInstanceStatusInput{
			Filters:    []ec2types.Filter{{Name: aws.String(name), Values: values}},
			MaxResults: aws.Int32(1000),
		}
		pg := ec2.NewDescribeInstanceStatusPaginator(api, in)
		for pg.HasMorePages() {
			out, err := pg.NextPage(ctx)
			if err != nil {
				return classify("DescribeInstanceStatus", err)
			}
			for _, st := range out.InstanceStatuses {
				add(st)
			}
		}
		return nil
	}
	if err := ask("event.code", ScheduledEventCodes...); err != nil {
		return nil, err
	}
	if statusChecks {
		if err := ask("instance-status.status", "impaired"); err != nil {
			return nil, err
		}
		if err := ask("system-status.status", "impaired"); err != nil {
			return nil, err
		}
	}
	out := make([]provider.InstanceHealth, 0, len(order))
	for _, id := range order {
		h := byID[id]
		if len(h.Scheduled) == 0 && !h.InstanceImpaired && !h.SystemImpaired {
			continue
		}
		out = append(out, *h)
	}
	return out, nil
}
