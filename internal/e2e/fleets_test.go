package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/hfdriver"
)

const fleetRole = "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role"

// fleetTemplate is one template of the providerApi × priceType matrix.
func fleetTemplate(id, api, fleetType, price string) string {
	t := map[string]any{
		"templateId": id, "maxNumber": 40,
		"attributes": map[string]any{"type": []string{"String", "X86_64"}, "ncpus": []string{"Numeric", "2"}, "nram": []string{"Numeric", "8192"}},
		"imageId":    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64",
		"priceType":  price,
	}
	switch api {
	case "RunInstances":
		t["vmType"] = "m5.large"
		t["providerApi"] = api
	default:
		t["vmTypes"] = map[string]int{"m5.large": 1, "m5.xlarge": 2}
		t["providerApi"] = api
		t["allocationStrategy"] = "capacityOptimized"
	}
	if fleetType != "" {
		t["fleetType"] = fleetType
	}
	if api == "SpotFleet" {
		t["fleetRole"] = fleetRole
	}
	if api == "ASG" {
		t["subnetId"] = "__SUBNETS__" // filled in with the simulated region's subnets
	}
	if price == "heterogeneous" {
		t["percentOnDemand"] = 50
		t["vmTypesOnDemand"] = map[string]int{"m5.large": 1}
	}
	b, _ := json.Marshal(t)
	return string(b)
}

type matrixCase struct{ id, api, fleetType, price string }

func matrix() []matrixCase {
	cs := []matrixCase{
		{"RI-ondemand", "RunInstances", "", "ondemand"},
		{"RI-spot", "RunInstances", "", "spot"},
	}
	for _, ft := range []string{"instant", "request", "maintain"} {
		for _, p := range []string{"ondemand", "spot", "heterogeneous"} {
			cs = append(cs, matrixCase{"EC2Fleet-" + ft + "-" + p, "EC2Fleet", ft, p})
		}
	}
	cs = append(cs,
		matrixCase{"SpotFleet-spot", "SpotFleet", "", "spot"},
		matrixCase{"SpotFleet-heterogeneous", "SpotFleet", "", "heterogeneous"},
		matrixCase{"ASG-ondemand", "ASG", "", "ondemand"},
		matrixCase{"ASG-spot", "ASG", "", "spot"},
	)
	return cs
}

func matrixTemplates() string {
	var parts []string
	for _, c := range matrix() {
		parts = append(parts, fleetTemplate(c.id, c.api, c.fleetType, c.price))
	}
	// RunInstances over every subnet of the region, for TestRunInstancesFindsCapacity.
	pools := strings.Replace(fleetTemplate("RI-pools", "RunInstances", "", "ondemand"), `"priceType"`, `"subnetId":"__SUBNETS__","priceType"`, 1)
	parts = append(parts, pools)
	return `{"templates": [` + strings.Join(parts, ",\n") + `]}`
}

// sim posts a lever to the simulated region's control endpoint.
func (e *env) sim(path string, body any) {
	e.t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(e.endpoint+"/_sim/"+path, "application/json", bytes.NewReader(b))
	must(e.t, err)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		e.t.Fatalf("/_sim/%s: %s", path, resp.Status)
	}
}

// leftovers lists everything ohfp created that is still alive in the
// simulated region: instances, fleets, Spot Fleet requests, groups, launch
// templates.
func (e *env) leftovers() []string {
	e.t.Helper()
	ctx := context.Background()
	var out []string
	di, err := e.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag-key"), Values: []string{"ohfp:request-id"}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "shutting-down", "stopping", "stopped"}}}})
	must(e.t, err)
	for _, r := range di.Reservations {
		for _, in := range r.Instances {
			out = append(out, "instance "+aws.ToString(in.InstanceId)+" "+string(in.State.Name))
		}
	}
	df, err := e.ec2.DescribeFleets(ctx, &ec2.DescribeFleetsInput{})
	must(e.t, err)
	for _, f := range df.Fleets {
		if !strings.HasPrefix(string(f.FleetState), "deleted") {
			out = append(out, "fleet "+aws.ToString(f.FleetId)+" "+string(f.FleetState))
		}
	}
	ds, err := e.ec2.DescribeSpotFleetRequests(ctx, &ec2.DescribeSpotFleetRequestsInput{})
	must(e.t, err)
	for _, s := range ds.SpotFleetRequestConfigs {
		if !strings.HasPrefix(string(s.SpotFleetRequestState), "cancelled") {
			out = append(out, "spot fleet "+aws.ToString(s.SpotFleetRequestId)+" "+string(s.SpotFleetRequestState))
		}
	}
	as := autoscaling.NewFromConfig(awssim.ClientConfig(e.endpoint, "us-east-1"))
	dg, err := as.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{})
	must(e.t, err)
	for _, g := range dg.AutoScalingGroups {
		out = append(out, "group "+aws.ToString(g.AutoScalingGroupName))
	}
	dl, err := e.ec2.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{})
	must(e.t, err)
	for _, lt := range dl.LaunchTemplates {
		out = append(out, "launch template "+aws.ToString(lt.LaunchTemplateName))
	}
	return out
}

func (e *env) waitNothingLeft() {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := e.leftovers()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("left behind in the cloud: %v", left)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func units(ms []hfdriver.Machine) int {
	n := 0
	for _, m := range ms {
		if m.Result != "succeed" {
			continue
		}
		if m.InstanceType == "m5.xlarge" {
			n += 2
		} else {
			n++
		}
	}
	return n
}

func newFleetEnv(t *testing.T) *env {
	e := newEnvWith(t, matrixTemplates(), "    aws_rate_limit: false\n")
	e.start()
	return e
}

// Every combination is asked at once (as HF would, templates side by
// side), then checked one by one, returned, and nothing may be left.
func TestEveryProviderAPIAndPriceType(t *testing.T) {
	e := newFleetEnv(t)
	ids := map[string]string{}
	for _, c := range matrix() {
		ids[c.id] = e.request(c.id, 4)
	}
	rets := map[string]string{}
	for _, c := range matrix() {
		t.Run(c.id, func(t *testing.T) {
			e.t = t
			defer func() { e.t = nil }()
			st := e.waitFinal(ids[c.id]).Requests[0]
			if st.Status != "complete" {
				t.Fatalf("%s: %+v", c.id, st)
			}
			if u := units(st.Machines); u < 4 {
				t.Fatalf("%s: %d units running, want at least 4: %+v", c.id, u, st.Machines)
			}
			wantSpot := c.price == "spot"
			for _, m := range st.Machines {
				if wantSpot && m.PriceType != "spot" || c.price == "ondemand" && m.PriceType != "ondemand" {
					t.Fatalf("%s: machine %s priced %s", c.id, m.MachineID, m.PriceType)
				}
			}
			var ret hfdriver.RequestReply
			e.call("requestReturnMachines", hfdriver.MachinesInput(st.Machines), &ret)
			rets[c.id] = ret.RequestID
		})
	}
	e.t = t
	for _, c := range matrix() {
		if rets[c.id] == "" {
			continue // its subtest failed
		}
		if rs := e.waitFinal(rets[c.id]).Requests[0]; rs.Status != "complete" {
			t.Errorf("%s return: %+v", c.id, rs)
		}
	}
	e.waitNothingLeft()
}

func TestReturnNotUndoneByReplacement(t *testing.T) {
	e := newFleetEnv(t)
	for _, tpl := range []string{"EC2Fleet-maintain-spot", "ASG-ondemand"} {
		t.Run(tpl, func(t *testing.T) {
			e.t = t
			id := e.request(tpl, 4)
			st := e.waitFinal(id).Requests[0]
			if st.Status != "complete" {
				t.Fatalf("%+v", st)
			}
			before := len(e.tagged(id, "pending", "running"))
			var ret hfdriver.RequestReply
			e.call("requestReturnMachines", hfdriver.MachinesInput(st.Machines[:1]), &ret)
			e.waitFinal(ret.RequestID)
			time.Sleep(3 * time.Second) // many reconcile passes and simulator ticks
			if after := len(e.tagged(id, "pending", "running")); after != before-1 {
				t.Fatalf("%d live instances after returning 1 of %d: a replacement was launched", after, before)
			}
			e.call("requestReturnMachines", hfdriver.MachinesInput(st.Machines[1:]), &ret)
			e.waitFinal(ret.RequestID)
			e.waitNothingLeft()
		})
	}
}

func TestCapacityShortEndsWithError(t *testing.T) {
	e := newFleetEnv(t)
	for _, az := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
		e.sim("capacity", map[string]any{"instanceType": "m5.large", "availabilityZone": az, "count": 1})
		e.sim("capacity", map[string]any{"instanceType": "m5.xlarge", "availabilityZone": az, "count": 0})
	}
	for _, tpl := range []string{"RI-ondemand", "EC2Fleet-instant-ondemand", "EC2Fleet-request-spot"} {
		t.Run(tpl, func(t *testing.T) {
			e.t = t
			id := e.request(tpl, 6)
			st := e.waitFinal(id).Requests[0]
			if st.Status != "complete_with_error" || !strings.Contains(st.Message, "InsufficientInstanceCapacity") && !strings.Contains(st.Message, "launched") {
				t.Fatalf("%+v", st)
			}
			if len(st.Machines) == 0 || units(st.Machines) >= 6 {
				t.Fatalf("some machines must have come, fewer than asked: %+v", st.Machines)
			}
			for _, m := range st.Machines {
				if m.Result != "succeed" {
					t.Fatalf("machines that came are usable: %+v", m)
				}
			}
			var ret hfdriver.RequestReply
			e.call("requestReturnMachines", hfdriver.MachinesInput(st.Machines), &ret)
			e.waitFinal(ret.RequestID)
			e.waitNothingLeft()
		})
	}
}

func TestSpotInterruptionGraceShrinks(t *testing.T) {
	e := newFleetEnv(t)
	id := e.request("EC2Fleet-instant-spot", 1)
	ms := e.waitFinal(id).Requests[0].Machines
	e.sim("interrupt-spot", map[string]any{"instanceIds": []string{ms[0].MachineID}})
	grace := func() int {
		var rr struct {
			Requests []struct {
				Machine     string `json:"machine"`
				GracePeriod int    `json:"gracePeriod"`
			} `json:"requests"`
		}
		e.call("getReturnRequests", hfdriver.MachinesInput(ms), &rr)
		if len(rr.Requests) == 0 {
			return -1
		}
		if rr.Requests[0].Machine != ms[0].Name {
			t.Fatalf("reclaim names %q, want %q", rr.Requests[0].Machine, ms[0].Name)
		}
		return rr.Requests[0].GracePeriod
	}
	deadline := time.Now().Add(20 * time.Second)
	g1 := grace()
	for g1 < 0 {
		if time.Now().After(deadline) {
			t.Fatal("the interruption notice never reached getReturnRequests")
		}
		time.Sleep(100 * time.Millisecond)
		g1 = grace()
	}
	if g1 > 120 || g1 < 100 {
		t.Fatalf("first grace %d, want close to 120", g1)
	}
	time.Sleep(2100 * time.Millisecond)
	if g2 := grace(); g2 >= g1 || g2 < 0 {
		t.Fatalf("grace did not shrink: %d then %d", g1, g2)
	}
}

// TestFleetExpiry: a Spot Fleet that cannot fill (capacity for 3 of its 8
// units) with a one-minute spotFleetRequestExpiry ends with what arrived,
// capped, saying why: out of capacity, once the fleet's history (up to
// 30 s late, as on AWS) reports every pool short, or at expiry, whichever
// comes first (the engine's tests cover each rule alone). It may wait out
// the minute, so it runs with the soak runs (make soak, which CI runs too).
func TestFleetExpiry(t *testing.T) {
	if os.Getenv("OHFP_SOAK") == "" {
		t.Skip("takes a minute of real time: run with OHFP_SOAK=1 (make soak)")
	}
	tpl := strings.Replace(fleetTemplate("Spot-expiring", "SpotFleet", "", "spot"), `"priceType"`, `"spotFleetRequestExpiry": 1, "priceType"`, 1)
	e := newEnvWith(t, `{"templates": [`+tpl+`]}`, "    aws_rate_limit: false\n")
	for _, az := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
		e.sim("capacity", map[string]any{"instanceType": "m5.large", "availabilityZone": az, "count": 1})
		e.sim("capacity", map[string]any{"instanceType": "m5.xlarge", "availabilityZone": az, "count": 0})
	}
	e.start()
	id := e.request("Spot-expiring", 8)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := e.plugin.WaitFinal(ctx, id, time.Second, nil)
	must(t, err)
	r := st.Requests[0]
	if r.Status != "complete_with_error" || units(r.Machines) != 3 ||
		!strings.Contains(r.Message, "within 1m0s") && !strings.Contains(r.Message, "is out of capacity: ") {
		t.Fatalf("expired fleet: %+v", r)
	}
	var ret hfdriver.RequestReply
	e.call("requestReturnMachines", hfdriver.MachinesInput(r.Machines), &ret)
	e.waitFinal(ret.RequestID)
	e.waitNothingLeft()
}

// A RunInstances template over several subnets, with capacity only in the
// last subnet's zone: the request completes there, through the real
// provider and the region's InsufficientInstanceCapacity.
func TestRunInstancesFindsCapacity(t *testing.T) {
	e := newFleetEnv(t)
	sn, err := e.ec2.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{})
	must(t, err)
	if len(sn.Subnets) < 2 {
		t.Fatalf("the region has %d subnets", len(sn.Subnets))
	}
	last := sn.Subnets[len(sn.Subnets)-1]
	for _, s := range sn.Subnets {
		n := 0
		if aws.ToString(s.AvailabilityZone) == aws.ToString(last.AvailabilityZone) {
			n = 10
		}
		e.sim("capacity", map[string]any{"instanceType": "m5.large", "availabilityZone": aws.ToString(s.AvailabilityZone), "count": n})
	}
	id := e.request("RI-pools", 3)
	st := e.waitFinal(id).Requests[0]
	if st.Status != "complete" || len(st.Machines) != 3 {
		t.Fatalf("%+v", st)
	}
	for _, in := range e.tagged(id, "pending", "running") {
		if aws.ToString(in.SubnetId) != aws.ToString(last.SubnetId) {
			t.Fatalf("instance %s in %s, want %s (the only zone with capacity)", aws.ToString(in.InstanceId), aws.ToString(in.SubnetId), aws.ToString(last.SubnetId))
		}
	}
	var ret hfdriver.RequestReply
	e.call("requestReturnMachines", hfdriver.MachinesInput(st.Machines), &ret)
	e.waitFinal(ret.RequestID)
	e.waitNothingLeft()
}
