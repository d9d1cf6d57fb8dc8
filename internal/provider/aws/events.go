package awsprov

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ohfp/ohfp/internal/provider"
)

// The event queue (provider.Events): EventBridge rules put the events EC2
// and AWS Health send into an SQS queue, which ohfpd long-polls.
//
// SQS limits (Amazon SQS API Reference, ReceiveMessage): at most 10
// messages a call (MaxNumberOfMessages 1-10), a long poll of at most 20 s
// (WaitTimeSeconds 0-20); DeleteMessageBatch takes at most 10 entries.
const (
	maxReceive  = 10
	maxWaitTime = 20 * time.Second
)

// sqsAPI is the part of the SQS client ohfp uses.
type sqsAPI interface {
	GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, opts ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, opts ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

var _ provider.Events = (*Provider)(nil)

// queueURL resolves a queue given as a URL or a name (GetQueueUrl, once).
func (p *Provider) queueURL(ctx context.Context, queue string) (string, error) {
	if strings.Contains(queue, "://") {
		return queue, nil
	}
	p.mu.Lock()
	u, ok := p.queueURLs[queue]
	p.mu.Unlock()
	if ok {
		return u, nil
	}
	out, err := p.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(queue)})
	if err != nil {
		return "", classify("GetQueueUrl", err)
	}
	u = aws.ToString(out.QueueUrl)
	p.mu.Lock()
	if p.queueURLs == nil {
		p.queueURLs = map[string]string{}
	}
	p.queueURLs[queue] = u
	p.mu.Unlock()
	return u, nil
}

// queueWait is the long poll's length: 20 s, or less when the provider's
// first-byte deadline would end the poll before SQS answers.
func (p *Provider) queueWait(wait time.Duration) time.Duration {
	wait = min(wait, maxWaitTime, p.timeouts.response-5*time.Second, p.timeouts.call-5*time.Second)
	return max(wait, 0)
}

// sqsContext ends with ctx or the provider's life (a reload).
func (p *Provider) sqsContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	cctx, cancel := context.WithTimeout(ctx, d)
	stop := context.AfterFunc(p.life, cancel)
	return cctx, func() { stop(); cancel() }
}

// ReceiveEvents long-polls queue for up to wait (at most 20 s) and returns
// at most 10 messages, each parsed into neutral events.
func (p *Provider) ReceiveEvents(ctx context.Context, queue string, wait time.Duration) ([]provider.Message, error) {
	if p.sqs == nil {
		return nil, &provider.Error{Op: "ReceiveMessage", Kind: provider.Fatal, Message: "no SQS client"}
	}
	wait = p.queueWait(wait)
	cctx, cancel := p.sqsContext(ctx, wait+p.timeouts.call)
	defer cancel()
	u, err := p.queueURL(cctx, queue)
	if err != nil {
		return nil, err
	}
	out, err := p.sqs.ReceiveMessage(cctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(u),
		MaxNumberOfMessages: maxReceive,
		WaitTimeSeconds:     int32(wait / time.Second),
	})
	if err != nil {
		if p.life.Err() != nil && ctx.Err() == nil {
			return nil, provider.ErrReplaced
		}
		return nil, classify("ReceiveMessage", err)
	}
	msgs := make([]provider.Message, 0, len(out.Messages))
	for _, m := range out.Messages {
		msg := ParseEventMessage(aws.ToString(m.Body))
		msg.Handle, msg.ID = aws.ToString(m.ReceiptHandle), aws.ToString(m.MessageId)
		msgs = append(msgs, msg)
	}
	return msgs, nil
}

// AckEvents deletes handled messages, 10 a call (DeleteMessageBatch).
func (p *Provider) AckEvents(ctx context.Context, queue string, handles []string) error {
	cctx, cancel := p.sqsContext(ctx, p.timeouts.call)
	defer cancel()
	u, err := p.queueURL(cctx, queue)
	if err != nil {
		return err
	}
	var errs []error
	for start := 0; start < len(handles); start += maxReceive {
		batch := handles[start:min(start+maxReceive, len(handles))]
		entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(batch))
		for i, h := range batch {
			entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(h)}
		}
		out, err := p.sqs.DeleteMessageBatch(cctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(u), Entries: entries})
		if err != nil {
			errs = append(errs, classify("DeleteMessageBatch", err))
			continue
		}
		for _, f := range out.Failed {
			errs = append(errs, &provider.Error{Op: "DeleteMessageBatch", Code: aws.ToString(f.Code), Message: aws.ToString(f.Message), Kind: provider.Transient})
		}
	}
	return errors.Join(errs...)
}

// CheckQueue reaches the queue (GetQueueUrl for a name, then
// GetQueueAttributes), for ohfpd --check-config.
func (p *Provider) CheckQueue(ctx context.Context, queue string) (provider.QueueInfo, error) {
	cctx, cancel := p.sqsContext(ctx, p.timeouts.call)
	defer cancel()
	u, err := p.queueURL(cctx, queue)
	if err != nil {
		return provider.QueueInfo{}, err
	}
	out, err := p.sqs.GetQueueAttributes(cctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(u),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages}})
	if err != nil {
		return provider.QueueInfo{URL: u}, classify("GetQueueAttributes", err)
	}
	n, _ := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)])
	return provider.QueueInfo{URL: u, Messages: n}, nil
}

// EventBridge event detail types and sources ohfp reads (EC2 User Guide,
// "Spot Instance interruption notices", "EC2 instance rebalance
// recommendations", "State change events for Amazon EC2 instances"; AWS
// Health User Guide, "Reference: AWS Health events Amazon EventBridge
// schema").
const (
	DetailInterruption = "EC2 Spot Instance Interruption Warning"
	DetailRebalance    = "EC2 Instance Rebalance Recommendation"
	DetailStateChange  = "EC2 Instance State-change Notification"
	DetailHealth       = "AWS Health Event"
	SourceEC2          = "aws.ec2"
	SourceHealth       = "aws.health"
)

// ebEvent is an EventBridge event as it reaches an SQS target: the body
// of the message.
type ebEvent struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

type ec2Detail struct {
	InstanceID     string `json:"instance-id"`
	InstanceAction string `json:"instance-action"`
	State          string `json:"state"`
}

type healthDetail struct {
	Service           string `json:"service"`
	EventTypeCode     string `json:"eventTypeCode"`
	EventTypeCategory string `json:"eventTypeCategory"`
	StatusCode        string `json:"statusCode"`
	StartTime         string `json:"startTime"`
	EventDescription  []struct {
		Language          string `json:"language"`
		LatestDescription string `json:"latestDescription"`
	} `json:"eventDescription"`
	AffectedEntities []struct {
		EntityValue string `json:"entityValue"`
	} `json:"affectedEntities"`
}

// ParseEventMessage reads one SQS message body: an EventBridge event
// (or one an SNS topic wrapped). A body that is not an event is
// "malformed"; an event ohfp does not act on is "foreign".
func ParseEventMessage(body string) provider.Message {
	bad := func(problem, format string, args ...any) provider.Message {
		return provider.Message{Problem: problem, Detail: fmt.Sprintf(format, args...)}
	}
	var ev ebEvent
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		return bad("malformed", "not a JSON event: %v", err)
	}
	if ev.DetailType == "" && ev.Source == "" {
		// An SNS notification carrying the event in Message.
		var sns struct{ Type, Message string }
		if json.Unmarshal([]byte(body), &sns) == nil && sns.Type == "Notification" && sns.Message != "" {
			return ParseEventMessage(sns.Message)
		}
		return bad("malformed", "no detail-type or source: not an EventBridge event")
	}
	at, err := time.Parse(time.RFC3339, ev.Time)
	if err != nil {
		return bad("malformed", "%s event with time %q: %v", ev.DetailType, ev.Time, err)
	}
	switch {
	case ev.Source == SourceEC2 && (ev.DetailType == DetailInterruption || ev.DetailType == DetailRebalance || ev.DetailType == DetailStateChange):
		var d ec2Detail
		if err := json.Unmarshal(ev.Detail, &d); err != nil || !strings.HasPrefix(d.InstanceID, "i-") {
			return bad("malformed", "%s without an instance-id in its detail", ev.DetailType)
		}
		e := provider.Event{InstanceIDs: []string{d.InstanceID}, Time: at}
		switch ev.DetailType {
		case DetailInterruption:
			e.Kind, e.Action = provider.EventInterruption, d.InstanceAction
		case DetailRebalance:
			e.Kind = provider.EventRebalance
		default:
			if d.State == "" {
				return bad("malformed", "%s without a state", ev.DetailType)
			}
			e.Kind, e.State = provider.EventStateChange, provider.State(d.State)
		}
		return provider.Message{Events: []provider.Event{e}}
	case ev.Source == SourceHealth && ev.DetailType == DetailHealth:
		var d healthDetail
		if err := json.Unmarshal(ev.Detail, &d); err != nil {
			return bad("malformed", "%s with an unreadable detail: %v", ev.DetailType, err)
		}
		if d.Service != "EC2" || d.EventTypeCategory != "scheduledChange" {
			return bad("foreign", "AWS Health event %s (%s, %s) is not an EC2 scheduled change", d.EventTypeCode, d.Service, d.EventTypeCategory)
		}
		if strings.EqualFold(d.StatusCode, "closed") {
			return provider.Message{} // over: nothing to do
		}
		e := provider.Event{Kind: provider.EventScheduled, Time: at, Code: scheduledCode(d.EventTypeCode)}
		if t, ok := parseHealthTime(d.StartTime); ok {
			e.NotBefore = t
		}
		for _, ds := range d.EventDescription {
			e.Description = ds.LatestDescription
			break
		}
		for _, a := range d.AffectedEntities {
			if strings.HasPrefix(a.EntityValue, "i-") {
				e.InstanceIDs = append(e.InstanceIDs, a.EntityValue)
			}
		}
		if len(e.InstanceIDs) == 0 {
			for _, r := range ev.Resources {
				if strings.HasPrefix(r, "i-") {
					e.InstanceIDs = append(e.InstanceIDs, r)
				}
			}
		}
		if len(e.InstanceIDs) == 0 {
			return bad("foreign", "AWS Health event %s names no instance", d.EventTypeCode)
		}
		return provider.Message{Events: []provider.Event{e}}
	}
	return bad("foreign", "%s from %s is not an event ohfp reads", ev.DetailType, ev.Source)
}

// scheduledCode maps an AWS Health event type code to the EC2 scheduled
// event code DescribeInstanceStatus would give.
func scheduledCode(typeCode string) string {
	switch c := strings.ToUpper(typeCode); {
	case strings.Contains(c, "RETIREMENT"):
		return "instance-retirement"
	case strings.Contains(c, "INSTANCE_STOP"):
		return "instance-stop"
	case strings.Contains(c, "SYSTEM_REBOOT"):
		return "system-reboot"
	case strings.Contains(c, "REBOOT"):
		return "instance-reboot"
	case strings.Contains(c, "MAINTENANCE"):
		return "system-maintenance"
	}
	return typeCode
}

// parseHealthTime reads AWS Health's times: "Sat, 05 Jun 2021 15:10:09
// GMT" (RFC 1123) in its EventBridge events, RFC 3339 elsewhere.
func parseHealthTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC1123, time.RFC1123Z, time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
