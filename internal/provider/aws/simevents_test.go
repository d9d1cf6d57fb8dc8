package awsprov

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// TestSimEventQueue: through the SDK's SQS client against the simulated
// region: a queue by name (GetQueueUrl) and by URL, the events of a Spot
// interruption, a rebalance recommendation, a console termination and a
// scheduled retirement in their EventBridge shapes, a malformed and a
// foreign message, deletion by DeleteMessageBatch, and the SQS limits.
func TestSimEventQueue(t *testing.T) {
	ctx := context.Background()
	p, r, clk := newSim(t, Settings{RetryAttempts: 0})
	if _, err := p.CheckQueue(ctx, "ohfp-events"); provider.KindOf(err) != provider.Fatal || err == nil {
		t.Fatalf("missing queue: %v", err)
	}
	url, err := r.CreateQueue("ohfp-events")
	if err != nil {
		t.Fatal(err)
	}
	info, err := p.CheckQueue(ctx, "ohfp-events")
	if err != nil || info.URL != url {
		t.Fatalf("CheckQueue: %+v, %v", info, err)
	}
	var subnet string
	for _, s := range r.Subnets() {
		subnet = s
		break
	}
	tpl := template.Template{TemplateID: "spot", ImageID: al2023, VMType: "m5.large", PriceType: template.PriceSpot,
		ProviderAPI: template.APIRunInstances, SubnetIDs: []string{subnet}}
	res, err := p.Launch(ctx, provider.LaunchSpec{RequestID: "req-s", ClientToken: "req-s-t", Template: tpl, Units: 3, Tags: simTags("cluster-1", "req-s")})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	r.Tick()
	drain := func() []provider.Message {
		var all []provider.Message
		for {
			msgs, err := p.ReceiveEvents(ctx, url, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) == 0 {
				return all
			}
			var hs []string
			for _, m := range msgs {
				hs = append(hs, m.Handle)
			}
			if err := p.AckEvents(ctx, "ohfp-events", hs); err != nil {
				t.Fatal(err)
			}
			all = append(all, msgs...)
		}
	}
	drain() // pending, running
	a, b, c := res.Instances[0].ID, res.Instances[1].ID, res.Instances[2].ID
	if err := r.InterruptSpot(a); err != nil {
		t.Fatal(err)
	}
	if err := r.Rebalance(b); err != nil {
		t.Fatal(err)
	}
	if err := r.TerminateFromConsole(c); err != nil {
		t.Fatal(err)
	}
	nb := clk.Now().Add(72 * time.Hour).Truncate(time.Second)
	if err := r.ScheduleEvent("instance-retirement", nb, b); err != nil {
		t.Fatal(err)
	}
	sc := sqs.NewFromConfig(p.Config(), func(o *sqs.Options) { o.BaseEndpoint = p.Config().BaseEndpoint })
	for _, body := range []string{"not json", `{"detail-type":"Object Created","source":"aws.s3","time":"2025-01-01T00:00:00Z","detail":{}}`} {
		if _, err := sc.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]provider.Event{}
	problems := map[string]int{}
	for _, m := range drain() {
		if m.Problem != "" {
			problems[m.Problem]++
		}
		for _, e := range m.Events {
			got[e.Kind.String()+" "+e.InstanceIDs[0]+" "+string(e.State)] = e
		}
	}
	for _, k := range []string{"interruption " + a + " ", "rebalance " + b + " ", "state-change " + c + " shutting-down", "scheduled " + b + " "} {
		if _, ok := got[k]; !ok {
			t.Errorf("no event %q in %v", k, got)
		}
	}
	if e := got["interruption "+a+" "]; e.Action != "terminate" || !e.Time.Equal(clk.Now().Truncate(time.Second)) {
		t.Errorf("interruption %+v", e)
	}
	if e := got["scheduled "+b+" "]; e.Code != "instance-retirement" || !e.NotBefore.Equal(nb) {
		t.Errorf("scheduled %+v, want retirement from %v", e, nb)
	}
	if problems["malformed"] != 1 || problems["foreign"] != 1 {
		t.Errorf("problems %v", problems)
	}
	if n := r.QueueMessages()["ohfp-events"]; n != 0 {
		t.Errorf("%d messages left after deleting all", n)
	}
	// SQS's limits.
	if _, err := sc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 11}); err == nil {
		t.Error("11 messages a call accepted")
	}
	if _, err := sc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 21}); err == nil {
		t.Error("a 21 s wait accepted")
	}
	// A long poll returns as soon as a message arrives.
	done := make(chan time.Duration)
	go func() {
		start := time.Now()
		p.ReceiveEvents(ctx, url, 20*time.Second)
		done <- time.Since(start)
	}()
	time.Sleep(200 * time.Millisecond)
	r.Rebalance(a)
	if d := <-done; d > 5*time.Second {
		t.Errorf("long poll returned after %v", d)
	}

	// DescribeInstanceStatus: b's retirement; a failing check once asked.
	if err := r.ImpairInstances("system", false, time.Time{}, a); err != nil {
		t.Fatal(err)
	}
	hs, err := p.InstanceHealth(ctx, false)
	if err != nil || len(hs) != 1 || hs[0].ID != b || len(hs[0].Scheduled) != 1 || hs[0].Scheduled[0].Code != "instance-retirement" {
		t.Fatalf("InstanceHealth without status checks: %+v, %v", hs, err)
	}
	hs, err = p.InstanceHealth(ctx, true)
	if err != nil || len(hs) != 2 {
		t.Fatalf("InstanceHealth with status checks: %+v, %v", hs, err)
	}
	for _, h := range hs {
		if h.ID == a && (!h.SystemImpaired || h.InstanceImpaired || h.ImpairedSince.IsZero()) {
			t.Errorf("impaired %+v", h)
		}
	}
}
