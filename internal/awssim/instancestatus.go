package awssim

import (
	"fmt"
	"slices"
	"time"
)

// Instance status checks and scheduled events: DescribeInstanceStatus,
// the levers that break a check or schedule an event, and the EventBridge
// events (Spot interruption warnings, rebalance recommendations, AWS
// Health scheduled changes) that go with them (see doc.go).

type instanceHealth struct {
	instanceImpaired, systemImpaired time.Time // zero: the check passes
	events                           []scheduledEvent
}

type scheduledEvent struct {
	id, code, description string
	notBefore, notAfter   time.Time
}

// ScheduledEventCodes are the codes EC2 gives scheduled events.
var ScheduledEventCodes = []string{"instance-reboot", "system-reboot", "system-maintenance", "instance-retirement", "instance-stop"}

// healthEventType is the AWS Health event type of each code.
var healthEventType = map[string]string{
	"instance-retirement": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
	"instance-stop":       "AWS_EC2_INSTANCE_STOP_SCHEDULED",
	"instance-reboot":     "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED",
	"system-reboot":       "AWS_EC2_SYSTEM_REBOOT_MAINTENANCE_SCHEDULED",
	"system-maintenance":  "AWS_EC2_INSTANCE_NETWORK_MAINTENANCE_SCHEDULED",
}

func (r *Region) healthOf(id string) *instanceHealth {
	h := r.health[id]
	if h == nil {
		h = &instanceHealth{}
		r.health[id] = h
	}
	return h
}

// ImpairInstances makes the instance (check "instance") or system
// (check "system") status check of instances fail from since (zero:
// now), or pass again (ok true).
func (r *Region) ImpairInstances(check string, ok bool, since time.Time, ids ...string) error {
	if check != "instance" && check != "system" {
		return fmt.Errorf("awssim: check %q: want instance or system", check)
	}
	return r.onInstances(ids, func(ins []*instance) error {
		for _, in := range ins {
			h := r.healthOf(in.id)
			at := r.now
			if !since.IsZero() && since.Before(r.now) {
				at = since
			}
			if ok {
				at = time.Time{}
			}
			if check == "instance" {
				h.instanceImpaired = at
			} else {
				h.systemImpaired = at
			}
		}
		return nil
	})
}

// ScheduleEvent schedules an event (one of ScheduledEventCodes) for
// instances from notBefore, as EC2 does for a retirement or maintenance:
// DescribeInstanceStatus lists it, and AWS Health sends its EventBridge
// event (a scheduledChange) at once.
func (r *Region) ScheduleEvent(code string, notBefore time.Time, ids ...string) error {
	typ, ok := healthEventType[code]
	if !ok {
		return fmt.Errorf("awssim: event code %q: want one of %v", code, ScheduledEventCodes)
	}
	return r.onInstances(ids, func(ins []*instance) error {
		nb := notBefore
		if nb.IsZero() {
			nb = r.now.Add(14 * 24 * time.Hour)
		}
		desc := map[string]string{
			"instance-retirement": "The instance is running on degraded hardware",
			"instance-stop":       "The instance is running on degraded hardware",
			"instance-reboot":     "Scheduled reboot",
			"system-reboot":       "Scheduled reboot",
			"system-maintenance":  "Scheduled maintenance",
		}[code]
		for _, in := range ins {
			h := r.healthOf(in.id)
			h.events = append(h.events, scheduledEvent{id: r.newID("instance-event-"), code: code, description: desc, notBefore: nb, notAfter: nb.Add(2 * time.Hour)})
			r.emitEvent("AWS Health Event", "aws.health", []string{in.id}, map[string]any{
				"eventArn":          fmt.Sprintf("arn:aws:health:%s::event/EC2/%s/%s", r.name, typ, r.newUUIDID("")),
				"service":           "EC2",
				"eventTypeCode":     typ,
				"eventTypeCategory": "scheduledChange",
				"eventScopeCode":    "ACCOUNT_SPECIFIC",
				"communicationId":   r.newUUIDID(""),
				"startTime":         nb.UTC().Format(time.RFC1123),
				"endTime":           nb.Add(2 * time.Hour).UTC().Format(time.RFC1123),
				"lastUpdatedTime":   r.now.UTC().Format(time.RFC1123),
				"statusCode":        "upcoming",
				"eventRegion":       r.name,
				"eventDescription":  []map[string]string{{"language": "en_US", "latestDescription": desc}},
				"affectedEntities":  []map[string]string{{"entityValue": in.id}},
			}, r.now)
		}
		return nil
	})
}

// Rebalance sends an EC2 Instance Rebalance Recommendation for Spot
// instances.
func (r *Region) Rebalance(ids ...string) error {
	return r.onInstances(ids, func(ins []*instance) error {
		for _, in := range ins {
			if in.spotRequestID == "" || !in.live() {
				return fmt.Errorf("awssim: %s is not a live Spot instance", in.id)
			}
		}
		for _, in := range ins {
			r.emitEvent("EC2 Instance Rebalance Recommendation", "aws.ec2", []string{r.instanceARN(in.id)}, map[string]string{"instance-id": in.id}, r.now)
		}
		return nil
	})
}

// interruptionWarning sends the EC2 Spot Instance Interruption Warning of
// an interruption begun now. Call with the lock held.
func (r *Region) interruptionWarning(in *instance, action string) {
	r.emitEvent("EC2 Spot Instance Interruption Warning", "aws.ec2", []string{r.instanceARN(in.id)},
		map[string]string{"instance-id": in.id, "instance-action": action}, r.now)
}

type statusDetailXML struct {
	Name          string `xml:"name"`
	Status        string `xml:"status"`
	ImpairedSince string `xml:"impairedSince,omitempty"`
}

type statusSummaryXML struct {
	Status  string            `xml:"status"`
	Details []statusDetailXML `xml:"details>item"`
}

type instanceEventXML struct {
	InstanceEventID string `xml:"instanceEventId"`
	Code            string `xml:"code"`
	Description     string `xml:"description"`
	NotBefore       string `xml:"notBefore"`
	NotAfter        string `xml:"notAfter"`
}

type instanceStatusXML struct {
	InstanceID       string             `xml:"instanceId"`
	AvailabilityZone string             `xml:"availabilityZone"`
	InstanceState    stateXML           `xml:"instanceState"`
	SystemStatus     statusSummaryXML   `xml:"systemStatus"`
	InstanceStatus   statusSummaryXML   `xml:"instanceStatus"`
	Events           []instanceEventXML `xml:"eventsSet>item,omitempty"`
}

type describeInstanceStatusXML struct {
	Statuses  []instanceStatusXML `xml:"instanceStatusSet>item"`
	NextToken string              `xml:"nextToken,omitempty"`
}

func summaryOf(in *instance, impaired time.Time) statusSummaryXML {
	if in.state != stateRunning {
		return statusSummaryXML{Status: "not-applicable"}
	}
	if impaired.IsZero() {
		return statusSummaryXML{Status: "ok", Details: []statusDetailXML{{Name: "reachability", Status: "passed"}}}
	}
	return statusSummaryXML{Status: "impaired", Details: []statusDetailXML{{Name: "reachability", Status: "failed", ImpairedSince: ts(impaired)}}}
}

// describeInstanceStatus serves DescribeInstanceStatus (EC2 API
// Reference): InstanceId.N or filters with MaxResults (5-1000, not with
// ids) and NextToken; running instances only unless IncludeAllInstances.
// Filters: event.code, instance-status.status, system-status.status,
// instance-state-name, availability-zone.
func (r *Region) describeInstanceStatus(c *call) (any, error) {
	p := c.p
	ids := p.list("InstanceId")
	fs := p.filters()
	all := p.boolOr("IncludeAllInstances", false)
	if err := c.err(); err != nil {
		return nil, err
	}
	if len(ids) > 0 && p.has("MaxResults") {
		return nil, errInvalidParameterCombination("The parameter instancesSet cannot be used with the parameter maxResults")
	}
	limit, err := maxResults(p, 5, 1000)
	if err != nil {
		return nil, err
	}
	row := func(in *instance) (instanceStatusXML, bool) {
		h := r.health[in.id]
		if h == nil {
			h = &instanceHealth{}
		}
		x := instanceStatusXML{InstanceID: in.id, AvailabilityZone: in.subnet.az, InstanceState: stateOf(in.state),
			SystemStatus: summaryOf(in, h.systemImpaired), InstanceStatus: summaryOf(in, h.instanceImpaired)}
		var codes []string
		for _, e := range h.events {
			x.Events = append(x.Events, instanceEventXML{InstanceEventID: e.id, Code: e.code, Description: e.description, NotBefore: ts(e.notBefore), NotAfter: ts(e.notAfter)})
			codes = append(codes, e.code)
		}
		for _, f := range fs {
			var have []string
			switch f.name {
			case "event.code":
				have = codes
			case "instance-status.status":
				have = []string{x.InstanceStatus.Status}
			case "system-status.status":
				have = []string{x.SystemStatus.Status}
			case "instance-state-name":
				have = []string{in.state}
			case "availability-zone":
				have = []string{in.subnet.az}
			default:
				return x, false
			}
			if !slices.ContainsFunc(have, func(v string) bool { return slices.Contains(f.values, v) }) {
				return x, false
			}
		}
		return x, true
	}
	for _, f := range fs {
		switch f.name {
		case "event.code", "instance-status.status", "system-status.status", "instance-state-name", "availability-zone":
		default:
			return nil, errInvalidParameterValue(fmt.Sprintf("The filter '%s' is invalid", f.name))
		}
	}
	out := &describeInstanceStatusXML{}
	if len(ids) > 0 {
		ins, err := r.instancesByID(ids)
		if err != nil {
			return nil, err
		}
		for _, in := range ins {
			if in.state != stateRunning && !all {
				continue
			}
			if x, ok := row(in); ok {
				out.Statuses = append(out.Statuses, x)
			}
		}
		return out, nil
	}
	start := 0
	if tok := p.str("NextToken"); tok != "" {
		after, err := decodeToken("s", tok)
		if err != nil {
			return nil, err
		}
		for start < len(r.order) && r.order[start].seq <= after {
			start++
		}
	}
	count := 0
	for i := start; i < len(r.order); i++ {
		in := r.order[i]
		if in.purged || !r.visible(in.visibleAt) || in.state != stateRunning && !all {
			continue
		}
		x, ok := row(in)
		if !ok {
			continue
		}
		out.Statuses = append(out.Statuses, x)
		count++
		if limit > 0 && count == limit {
			if i+1 < len(r.order) {
				out.NextToken = encodeToken("s", in.seq)
			}
			break
		}
	}
	return out, nil
}
