package e2e

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/hfdriver"
)

// instanceState is what the simulated region says of one instance.
func (e *env) instanceState(id string) (state, reason string) {
	e.t.Helper()
	out, err := e.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}}})
	must(e.t, err)
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if in.StateReason != nil {
				reason = aws.ToString(in.StateReason.Code)
			}
			return string(in.State.Name), reason
		}
	}
	return "", ""
}

// returnDuringNotice launches one Spot host, has the region interrupt it
// and HF return it once getReturnRequests reports it; it answers the host
// and the return request's id.
func (e *env) returnDuringNotice() (hfdriver.Machine, string) {
	e.t.Helper()
	id := e.request("Spot-m5", 1)
	ms := e.waitFinal(id).Requests[0].Machines
	e.sim("interrupt-spot", map[string]any{"instanceIds": []string{ms[0].MachineID}})
	deadline := time.Now().Add(20 * time.Second)
	for {
		var rr struct {
			Requests []struct{ Machine string } `json:"requests"`
		}
		e.call("getReturnRequests", hfdriver.MachinesInput(ms), &rr)
		if len(rr.Requests) == 1 {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatal("the interruption notice never reached getReturnRequests")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var ret hfdriver.RequestReply
	e.call("requestReturnMachines", hfdriver.MachinesInput(ms), &ret)
	return ms[0], ret.RequestID
}

// IBM's default, AWS_SPOT_TERMINATE_ON_RECLAIM false, through the
// binaries: a Spot host HF returns during its interruption notice is left
// to AWS, across a kill -9 of ohfpd, and the return completes when AWS
// has taken it (that last part waits out the notice's two minutes: with
// OHFP_SOAK=1).
func TestSpotReturnedDuringNoticeLeftToAWS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start()
	m, ret := e.returnDuringNotice()
	time.Sleep(2 * time.Second) // ten active passes and more
	must(t, e.daemon.Kill())
	e.daemon = nil
	e.start()
	time.Sleep(2 * time.Second)
	if st, _ := e.instanceState(m.MachineID); st != "running" {
		t.Fatalf("ohfpd did not leave the host to AWS: it is %s", st)
	}
	var rs hfdriver.Status
	e.call("getRequestStatus", map[string]any{"requests": []map[string]string{{"requestId": ret}}}, &rs)
	if rs.Requests[0].Status != "running" {
		t.Fatalf("return before AWS took the host: %+v", rs.Requests[0])
	}
	if os.Getenv("OHFP_SOAK") == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	st, err := e.plugin.WaitFinal(ctx, ret, time.Second, nil)
	must(t, err)
	if st.Requests[0].Status != "complete" {
		t.Fatalf("return: %+v", st.Requests[0])
	}
	if s, reason := e.instanceState(m.MachineID); s != "terminated" || reason != "Server.SpotInstanceTermination" {
		t.Fatalf("the host ended %s (%s), want terminated by AWS's reclaim", s, reason)
	}
}

// spot_terminate_on_reclaim: true terminates at once.
func TestSpotReturnedDuringNoticeTerminated(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, templatesJSON, "    spot_terminate_on_reclaim: true\n")
	e.start()
	m, ret := e.returnDuringNotice()
	final := e.waitFinal(ret).Requests[0]
	if final.Status != "complete" {
		t.Fatalf("return: %+v", final)
	}
	if s, reason := e.instanceState(m.MachineID); s != "terminated" || reason != "Client.UserInitiatedShutdown" {
		t.Fatalf("the host ended %s (%s), want terminated by ohfpd at once", s, reason)
	}
}
