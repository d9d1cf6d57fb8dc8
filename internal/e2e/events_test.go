package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/hfdriver"
)

// reclaims is what getReturnRequests answers for the hosts HF holds.
type reclaims struct {
	Message  string `json:"message"`
	Requests []struct {
		Machine     string `json:"machine"`
		GracePeriod int    `json:"gracePeriod"`
	} `json:"requests"`
}

func (e *env) reclaims(ms []hfdriver.Machine) reclaims {
	e.t.Helper()
	var rr reclaims
	e.call("getReturnRequests", hfdriver.MachinesInput(ms), &rr)
	return rr
}

// waitReclaim calls getReturnRequests as HF does until it lists name,
// and returns how long that took and the grace.
func (e *env) waitReclaim(ms []hfdriver.Machine, name string, within time.Duration) (time.Duration, int, string) {
	e.t.Helper()
	start := time.Now()
	for {
		rr := e.reclaims(ms)
		for _, r := range rr.Requests {
			if r.Machine == name {
				return time.Since(start), r.GracePeriod, rr.Message
			}
		}
		if time.Since(start) > within {
			e.t.Fatalf("%s not reported by getReturnRequests within %v: %+v", name, within, rr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// slowPasses makes the idle reconcile interval a minute: only the event
// queue can then report within seconds.
func (e *env) slowPasses() {
	b, err := os.ReadFile(e.cfg)
	must(e.t, err)
	must(e.t, os.WriteFile(e.cfg, []byte(strings.Replace(string(b), "idle_interval: 2s", "idle_interval: 60s", 1)), 0o600))
}

func (e *env) createQueue(name string) string {
	e.t.Helper()
	e.sim("queues", map[string]string{"name": name})
	out, err := sqs.NewFromConfig(awssim.ClientConfig(e.endpoint, "us-east-1")).GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	must(e.t, err)
	return aws.ToString(out.QueueUrl)
}

// TestEventQueue: with interruption_queue, through the real binaries and
// the simulated region's SQS endpoint, while the idle passes are a minute
// apart: a Spot interruption reaches HF's getReturnRequests within one
// second of the event, with the grace from the event's time; a host
// terminated from the console is reported as soon as its event arrives;
// a scheduled retirement drains its host with the event in the message;
// malformed and foreign messages are deleted and counted, and ohfpd
// serves on.
func TestEventQueue(t *testing.T) {
	e := newEnvWith(t, templatesJSON, "    interruption_queue: ohfp-events\n")
	e.slowPasses()
	url := e.createQueue("ohfp-events")
	e.start()
	spot := e.waitFinal(e.request("Spot-m5", 2)).Requests[0].Machines
	od := e.waitFinal(e.request("OnDemand-c5", 1)).Requests[0].Machines
	all := append(append([]hfdriver.Machine{}, spot...), od...)
	time.Sleep(1500 * time.Millisecond) // the passes settle into their idle minute
	if rr := e.reclaims(all); len(rr.Requests) != 0 {
		t.Fatalf("reclaims before any event: %+v", rr)
	}

	e.sim("interrupt-spot", map[string]any{"instanceIds": []string{spot[0].MachineID}})
	took, grace, _ := e.waitReclaim(all, spot[0].Name, 5*time.Second)
	if took > time.Second {
		t.Errorf("interruption reported after %v, want within one second", took)
	}
	if grace < 115 || grace > 120 {
		t.Errorf("interruption grace %d, want the two minutes from the event", grace)
	}

	e.sim("terminate", map[string]any{"instanceIds": []string{spot[1].MachineID}})
	took, grace, _ = e.waitReclaim(all, spot[1].Name, 5*time.Second)
	if took > time.Second || grace != 0 {
		t.Errorf("console termination reported after %v with grace %d, want within one second, grace 0", took, grace)
	}

	nb := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	e.sim("schedule-event", map[string]any{"instanceIds": []string{od[0].MachineID}, "code": "instance-retirement", "notBefore": nb})
	took, grace, msg := e.waitReclaim(all, od[0].Name, 5*time.Second)
	if took > time.Second || grace < 3500 || grace > 3600 || !strings.Contains(msg, "instance-retirement") {
		t.Errorf("retirement reported after %v with grace %d and message %q; want within a second, ~3600 s, the event named", took, grace, msg)
	}

	sc := sqs.NewFromConfig(awssim.ClientConfig(e.endpoint, "us-east-1"))
	for _, body := range []string{"{not json", `{"version":"0","detail-type":"Object Created","source":"aws.s3","time":"2025-01-01T00:00:00Z","detail":{}}`} {
		_, err := sc.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)})
		must(t, err)
	}
	e.until("the queue emptied", 5*time.Second, func() bool {
		out, _, _ := e.ohfp(0, "status")
		return strings.Contains(out, "1 malformed") && strings.Contains(out, "failed calls") && !strings.Contains(out, " 0 foreign")
	})
	if got := e.reclaims(all); len(got.Requests) != 3 {
		t.Errorf("after the bad messages: %+v", got)
	}
	must(t, e.daemon.Stop(10*time.Second)) // its log is read once it stopped writing
	e.daemon = nil
	if !strings.Contains(e.log.String(), "malformed message deleted") {
		t.Error("no log line for the malformed message")
	}
}

// TestEventQueueUnreachable: a queue that does not exist changes nothing
// HF sees: the interruption is reported by the next pass, the console
// termination within the idle interval, and ohfpd --check-config names
// the queue.
func TestEventQueueUnreachable(t *testing.T) {
	e := newEnvWith(t, templatesJSON, "    interruption_queue: no-such-queue\n")
	cmd := exec.Command(filepath.Join(e.bin, "ohfpd"), "--check-config", "--config", e.cfg)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIASIMULATED", "AWS_SECRET_ACCESS_KEY=simulated", "AWS_EC2_METADATA_DISABLED=true")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "interruption_queue no-such-queue is not reachable") {
		t.Errorf("--check-config with a missing queue: %v\n%s", err, out)
	}
	e.start()
	spot := e.waitFinal(e.request("Spot-m5", 2)).Requests[0].Machines
	time.Sleep(500 * time.Millisecond)
	e.sim("interrupt-spot", map[string]any{"instanceIds": []string{spot[0].MachineID}})
	if took, grace, _ := e.waitReclaim(spot, spot[0].Name, 5*time.Second); grace < 110 {
		t.Errorf("interruption by polling after %v, grace %d", took, grace)
	}
	e.sim("terminate", map[string]any{"instanceIds": []string{spot[1].MachineID}})
	e.waitReclaim(spot, spot[1].Name, 8*time.Second)
	must(t, e.daemon.Stop(10*time.Second)) // its log is read once it stopped writing
	e.daemon = nil
	if !strings.Contains(e.log.String(), "event queue: failing") {
		t.Error("no log line saying the queue fails")
	}
}

// TestHealthDrains: without a queue, DescribeInstanceStatus at the idle
// interval drains a host with a scheduled retirement (grace: until the
// event) and, with health_check_grace, a host whose status check has
// failed for longer (grace 0); a host failing for less is left alone.
func TestHealthDrains(t *testing.T) {
	e := newEnvWith(t, templatesJSON, "    health_check_grace: 1m\n")
	e.start()
	ms := e.waitFinal(e.request("OnDemand-c5", 3)).Requests[0].Machines
	nb := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
	e.sim("schedule-event", map[string]any{"instanceIds": []string{ms[0].MachineID}, "code": "instance-retirement", "notBefore": nb})
	e.sim("impair", map[string]any{"instanceIds": []string{ms[1].MachineID}, "check": "system", "since": time.Now().Add(-2 * time.Minute)})
	e.sim("impair", map[string]any{"instanceIds": []string{ms[2].MachineID}, "check": "instance"})
	_, grace, msg := e.waitReclaim(ms, ms[0].Name, 8*time.Second)
	if grace < 7100 || !strings.Contains(msg, "instance-retirement") {
		t.Errorf("retirement grace %d, message %q", grace, msg)
	}
	_, grace, msg = e.waitReclaim(ms, ms[1].Name, 8*time.Second)
	if grace != 0 || !strings.Contains(msg, "system status check failing") {
		t.Errorf("impaired grace %d, message %q", grace, msg)
	}
	for _, r := range e.reclaims(ms).Requests {
		if r.Machine == ms[2].Name {
			t.Errorf("a host impaired for less than health_check_grace was reported")
		}
	}
}
