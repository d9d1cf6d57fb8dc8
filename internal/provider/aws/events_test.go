package awsprov

import (
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/provider"
)

// TestParseEventMessage: the EventBridge events of AWS's documentation,
// as an SQS target receives them (and wrapped by SNS), become neutral
// events; anything else is malformed or foreign, never an error.
func TestParseEventMessage(t *testing.T) {
	at := time.Date(2021, 11, 11, 21, 29, 54, 0, time.UTC)
	cases := []struct {
		name, body string
		want       provider.Event
		problem    string
	}{
		{"state change (EC2 User Guide example)", `{"id":"7bf73129-1428-4cd3-a780-95db273d1602","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","account":"123456789012","time":"2021-11-11T21:29:54Z","region":"us-east-1","resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-1234567890abcdef0"],"detail":{"instance-id":"i-1234567890abcdef0","state":"terminated"}}`,
			provider.Event{Kind: provider.EventStateChange, InstanceIDs: []string{"i-1234567890abcdef0"}, Time: at, State: "terminated"}, ""},
		{"interruption", `{"version":"0","id":"x","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","account":"123456789012","time":"2021-11-11T21:29:54Z","region":"us-east-2","resources":["arn:aws:ec2:us-east-2a:instance/i-1234567890abcdef0"],"detail":{"instance-id":"i-1234567890abcdef0","instance-action":"stop"}}`,
			provider.Event{Kind: provider.EventInterruption, InstanceIDs: []string{"i-1234567890abcdef0"}, Time: at, Action: "stop"}, ""},
		{"rebalance", `{"version":"0","id":"x","detail-type":"EC2 Instance Rebalance Recommendation","source":"aws.ec2","time":"2021-11-11T21:29:54Z","detail":{"instance-id":"i-1234567890abcdef0"}}`,
			provider.Event{Kind: provider.EventRebalance, InstanceIDs: []string{"i-1234567890abcdef0"}, Time: at}, ""},
		{"health retirement", `{"version":"0","id":"x","detail-type":"AWS Health Event","source":"aws.health","time":"2021-11-11T21:29:54Z","resources":["i-abcd1111"],"detail":{"service":"EC2","eventTypeCode":"AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED","eventTypeCategory":"scheduledChange","startTime":"Sat, 05 Jun 2021 15:10:09 GMT","eventDescription":[{"language":"en_US","latestDescription":"degraded hardware"}],"affectedEntities":[{"entityValue":"i-abcd1111"}]}}`,
			provider.Event{Kind: provider.EventScheduled, InstanceIDs: []string{"i-abcd1111"}, Time: at, Code: "instance-retirement",
				NotBefore: time.Date(2021, 6, 5, 15, 10, 9, 0, time.UTC), Description: "degraded hardware"}, ""},
		{"SNS-wrapped", `{"Type":"Notification","Message":"{\"detail-type\":\"EC2 Instance Rebalance Recommendation\",\"source\":\"aws.ec2\",\"time\":\"2021-11-11T21:29:54Z\",\"detail\":{\"instance-id\":\"i-1\"}}"}`,
			provider.Event{Kind: provider.EventRebalance, InstanceIDs: []string{"i-1"}, Time: at}, ""},
		{"not JSON", `hello`, provider.Event{}, "malformed"},
		{"no instance", `{"detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","time":"2021-11-11T21:29:54Z","detail":{}}`, provider.Event{}, "malformed"},
		{"bad time", `{"detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","time":"yesterday","detail":{"instance-id":"i-1","state":"stopped"}}`, provider.Event{}, "malformed"},
		{"S3 event", `{"detail-type":"Object Created","source":"aws.s3","time":"2021-11-11T21:29:54Z","detail":{}}`, provider.Event{}, "foreign"},
		{"health issue", `{"detail-type":"AWS Health Event","source":"aws.health","time":"2021-11-11T21:29:54Z","detail":{"service":"EC2","eventTypeCategory":"issue"}}`, provider.Event{}, "foreign"},
	}
	for _, c := range cases {
		m := ParseEventMessage(c.body)
		if m.Problem != c.problem {
			t.Errorf("%s: problem %q (%s), want %q", c.name, m.Problem, m.Detail, c.problem)
			continue
		}
		if c.problem != "" {
			continue
		}
		if len(m.Events) != 1 {
			t.Errorf("%s: %d events", c.name, len(m.Events))
			continue
		}
		e := m.Events[0]
		if e.Kind != c.want.Kind || e.InstanceIDs[0] != c.want.InstanceIDs[0] || !e.Time.Equal(c.want.Time) || e.State != c.want.State ||
			e.Action != c.want.Action || e.Code != c.want.Code || !e.NotBefore.Equal(c.want.NotBefore) || e.Description != c.want.Description {
			t.Errorf("%s: %+v, want %+v", c.name, e, c.want)
		}
	}
}
