package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/uuid"

	"github.com/ohfp/ohfp/internal/dynalite"
	"github.com/ohfp/ohfp/internal/hfdriver"
)

// ibmLaunch launches n instances as IBM's Java plugin does (RunInstances,
// no ohfp tag) and returns the reservation id (IBM's request id) and the
// instances.
func (e *env) ibmLaunch(n int) (string, []ec2types.Instance) {
	e.t.Helper()
	ctx := context.Background()
	imgs, err := e.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{})
	must(e.t, err)
	if len(imgs.Images) == 0 {
		e.t.Fatal("the simulated region has no image")
	}
	out, err := e.ec2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: imgs.Images[0].ImageId, InstanceType: ec2types.InstanceTypeC5Large,
		MinCount: aws.Int32(int32(n)), MaxCount: aws.Int32(int32(n)),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{{Key: aws.String("RC_ACCOUNT"), Value: aws.String("default")}}}}})
	must(e.t, err)
	return aws.ToString(out.ReservationId), out.Instances
}

// ibmMachine is a machine as IBM's Java plugin writes it in aws-db.json.
func ibmMachine(in ec2types.Instance, req, ret, result, status string) map[string]any {
	m := map[string]any{"machineId": aws.ToString(in.InstanceId), "name": aws.ToString(in.PrivateDnsName), "requestId": req,
		"template": "OnDemand-c5", "result": result, "status": status, "privateIpAddress": aws.ToString(in.PrivateIpAddress),
		"launchtime": aws.ToTime(in.LaunchTime).Unix(), "rcAccount": "default", "lifeCycleType": "OnDemand"}
	if ret != "" {
		m["returnId"] = ret
	}
	return m
}

// reset empties the log (a daemon restarted by the test).
func (l *logBuffer) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}

// logText is ohfpd's log so far.
func (e *env) logText() string { return e.log.String() }

// startWith starts ohfpd with extra arguments.
func (e *env) startWith(args ...string) {
	e.t.Helper()
	d, err := hfdriver.StartDaemon(filepath.Join(e.bin, "ohfpd"), append([]string{"--config", e.cfg}, args...),
		[]string{"AWS_ACCESS_KEY_ID=AKIASIMULATED", "AWS_SECRET_ACCESS_KEY=simulated", "AWS_EC2_METADATA_DISABLED=true"},
		e.sock, e.log, 60*time.Second)
	must(e.t, err)
	e.daemon = d
}

// Issue 15, switching a running cluster: hosts IBM's plugin launched (no
// ohfp tag) and its in-flight and return requests, listed in its state
// file in IBM's format, are taken over by ohfpd --take-over-ibm: HF's
// request and return ids answer as IBM's plugin would, a host the cloud
// takes back shows in getReturnRequests, a returned host IBM never
// terminated is terminated, HF's return of the others terminates them,
// and a second takeover changes nothing.
func TestTakeOverIBMPlugin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()

	// Request A: two hosts HF holds, running. Request B: in flight in
	// IBM's file (executing, pending). Return R1: a host IBM terminated.
	// Return R2: a host HF returned whose termination IBM never sent.
	// Request C: an instance long gone from AWS.
	reqA, insA := e.ibmLaunch(2)
	reqB, insB := e.ibmLaunch(1)
	reqD, insD := e.ibmLaunch(2)
	ret1, ret2 := "ret-"+uuid.NewString(), "ret-"+uuid.NewString()
	e.until("IBM's hosts visible and running", 20*time.Second, func() bool {
		out, err := e.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{
			aws.ToString(insA[0].InstanceId), aws.ToString(insA[1].InstanceId), aws.ToString(insD[0].InstanceId), aws.ToString(insD[1].InstanceId)}})
		if err != nil {
			return false
		}
		n := 0
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				if in.State.Name == ec2types.InstanceStateNameRunning {
					n++
				}
			}
		}
		return n == 4
	})
	_, err := e.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(insD[0].InstanceId)}})
	must(t, err)
	reqC := "r-0" + strings.Repeat("a", 16)
	gone := ec2types.Instance{InstanceId: aws.String("i-0123456789abcdef0"), PrivateDnsName: aws.String("ip-10-0-9-9.ec2.internal"),
		LaunchTime: aws.Time(time.Now().Add(-48 * time.Hour))}
	db := map[string]any{"requests": []any{
		map[string]any{"requestId": reqA, "templateId": "OnDemand-c5", "status": "complete", "time": time.Now().Add(-time.Hour).UnixMilli(), "rc_account": "default",
			"machines": []any{ibmMachine(insA[0], reqA, "", "succeed", "running"), ibmMachine(insA[1], reqA, "", "succeed", "running")}},
		map[string]any{"requestId": reqB, "templateId": "OnDemand-c5", "status": "running", "time": time.Now().UnixMilli(),
			"machines": []any{ibmMachine(insB[0], reqB, "", "executing", "pending")}},
		map[string]any{"requestId": reqD, "templateId": "OnDemand-c5", "status": "complete", "time": time.Now().Add(-time.Hour).UnixMilli(),
			"machines": []any{ibmMachine(insD[0], reqD, ret1, "succeed", "shutting-down"), ibmMachine(insD[1], reqD, ret2, "succeed", "running")}},
		map[string]any{"requestId": reqC, "templateId": "OnDemand-c5", "status": "complete", "time": time.Now().Add(-48 * time.Hour).UnixMilli(),
			"machines": []any{ibmMachine(gone, reqC, "", "succeed", "running")}},
	}}
	b, _ := json.MarshalIndent(db, "", "  ")
	dbPath := filepath.Join(e.dir, "work", "aws-db.json")
	must(t, os.MkdirAll(filepath.Dir(dbPath), 0o755))
	must(t, os.WriteFile(dbPath, b, 0o644))

	e.startWith("--take-over-ibm", dbPath)
	if !strings.Contains(e.logText(), "took over IBM's plugin's hosts and requests") {
		t.Fatalf("no takeover in the log")
	}

	// HF asks about IBM's ids as it did before the switch.
	var st hfdriver.Status
	e.until("IBM's requests answered", 30*time.Second, func() bool {
		e.call("getRequestStatus", hfdriver.StatusInput(reqA, reqB, ret1, ret2, reqC), &st)
		return st.Requests[0].Status == "complete" && st.Requests[1].Status == "complete" && st.Requests[2].Status == "complete" && st.Requests[3].Status == "complete"
	})
	byID := map[string]hfdriver.Machine{}
	for _, m := range append(st.Requests[0].Machines, st.Requests[1].Machines...) {
		byID[m.MachineID] = m
	}
	for _, in := range append(insA, insB...) {
		m, ok := byID[aws.ToString(in.InstanceId)]
		if !ok || m.Result != "succeed" || m.Name == "" || m.PrivateIPAddress == nil {
			t.Errorf("IBM's host %s in getRequestStatus: %+v", aws.ToString(in.InstanceId), m)
		}
	}
	if c := st.Requests[4]; c.Status != "complete_with_error" || !strings.Contains(c.Message, "taken over from IBM's plugin") {
		t.Errorf("request of a long-gone instance: %+v", c)
	}
	// The returned host IBM never terminated was terminated by ohfp.
	if state, _ := e.instance(aws.ToString(insD[1].InstanceId)); state != "terminated" && state != "shutting-down" {
		t.Errorf("IBM-returned host %s is %s", aws.ToString(insD[1].InstanceId), state)
	}

	// Run again (a second start with the flag, IBM's hosts still up):
	// nothing is adopted or tagged twice, and the answers are the same.
	must(t, e.daemon.Stop(10*time.Second))
	first := e.logText()
	e.log.reset()
	e.startWith("--take-over-ibm", dbPath)
	if !strings.Contains(e.logText(), "adopted_now=0") || !strings.Contains(e.logText(), "tagged_now=0") || strings.Contains(e.logText(), "live_instances=0") {
		t.Errorf("second takeover changed something (first run:\n%s)", first)
	}
	var st2 hfdriver.Status
	e.call("getRequestStatus", hfdriver.StatusInput(reqA, reqB, ret1, ret2, reqC), &st2)
	for i, r := range st2.Requests {
		if r.Status != st.Requests[i].Status || len(r.Machines) != len(st.Requests[i].Machines) {
			t.Errorf("after the second takeover %s is %s with %d machines, was %s with %d", r.RequestID, r.Status, len(r.Machines), st.Requests[i].Status, len(st.Requests[i].Machines))
		}
	}

	// The cloud takes one back: getReturnRequests tells HF, as IBM's did.
	held := []hfdriver.Machine{byID[aws.ToString(insA[0].InstanceId)], byID[aws.ToString(insA[1].InstanceId)], byID[aws.ToString(insB[0].InstanceId)]}
	if rr := e.reclaims(held); len(rr.Requests) != 0 {
		t.Fatalf("getReturnRequests lists healthy hosts: %+v", rr)
	}
	_, err = e.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(insB[0].InstanceId)}})
	must(t, err)
	e.waitReclaim(held, byID[aws.ToString(insB[0].InstanceId)].Name, 30*time.Second)

	// HF returns IBM's two other hosts: ohfp terminates them.
	var rep hfdriver.RequestReply
	e.call("requestReturnMachines", hfdriver.MachinesInput(held[:2]), &rep)
	if fin := e.waitFinal(rep.RequestID); fin.Requests[0].Status != "complete" {
		t.Fatalf("return of IBM's hosts: %+v", fin)
	}
	for _, m := range held[:2] {
		if state, _ := e.instance(m.MachineID); state != "terminated" {
			t.Errorf("returned IBM host %s is %s", m.MachineID, state)
		}
	}
}

// The same switch-over on a master candidate with ha: (the state in a
// shared DynamoDB table): the takeover runs when the host takes the lease,
// before it acts, and HF's ids from IBM's plugin answer.
func TestTakeOverIBMPluginShared(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	endpoint := dynalite.StartT(t)
	cfg, err := os.ReadFile(e.cfg)
	must(t, err)
	must(t, os.WriteFile(e.cfg, append([]byte(fmt.Sprintf("ha:\n  table: ohfp-takeover\n  endpoint_url: %s\n  create_table: true\n  lease_duration: 3s\n", endpoint)), cfg...), 0o600))

	req, ins := e.ibmLaunch(2)
	_, unlisted := e.ibmLaunch(1) // a host IBM's file does not list (HF holds it)
	db := map[string]any{"requests": []any{map[string]any{"requestId": req, "templateId": "OnDemand-c5", "time": time.Now().UnixMilli(),
		"machines": []any{ibmMachine(ins[0], req, "", "executing", "pending"), ibmMachine(ins[1], req, "", "executing", "pending")}}}}
	b, _ := json.Marshal(db)
	dbPath := filepath.Join(e.dir, "aws-db.json")
	must(t, os.WriteFile(dbPath, b, 0o644))

	e.startWith("--take-over-ibm", dbPath)
	var st hfdriver.Status
	e.until("IBM's request answered complete by the lease holder", 60*time.Second, func() bool {
		var s hfdriver.Status
		if err := e.plugin.Call(ctx, "getRequestStatus", hfdriver.StatusInput(req), &s); err != nil || len(s.Requests) != 1 {
			return false
		}
		st = s
		return s.Requests[0].Status == "complete"
	})
	if len(st.Requests[0].Machines) != 2 {
		t.Fatalf("IBM's request: %+v", st)
	}
	// HF returns IBM's two hosts and the one the file does not list: it
	// is found in AWS by its instance id and terminated too.
	ret := append(st.Requests[0].Machines, hfdriver.Machine{MachineID: aws.ToString(unlisted[0].InstanceId), Name: aws.ToString(unlisted[0].PrivateDnsName)})
	var rep hfdriver.RequestReply
	e.call("requestReturnMachines", hfdriver.MachinesInput(ret), &rep)
	if strings.Contains(rep.Message, "not provisioned by ohfpd") {
		t.Errorf("return of IBM's unlisted host: %s", rep.Message)
	}
	if fin := e.waitFinal(rep.RequestID); fin.Requests[0].Status != "complete" || len(fin.Requests[0].Machines) != 3 {
		t.Fatalf("return: %+v", fin)
	}
	// A return id of IBM's plugin that no longer names any machine.
	if fin := e.waitFinal("remove-4242-1734619942"); fin.Requests[0].Status != "complete" {
		t.Errorf("IBM's gone return: %+v", fin)
	}
	for _, in := range append(ins, unlisted...) {
		if state, _ := e.instance(aws.ToString(in.InstanceId)); state != "terminated" {
			t.Errorf("returned IBM host %s is %s", aws.ToString(in.InstanceId), state)
		}
	}
	if !strings.Contains(e.logText(), "took over IBM's plugin's hosts and requests") {
		t.Errorf("no takeover in the log")
	}
}
