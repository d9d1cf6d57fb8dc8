package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/hfdriver"
)

// Templates of TestScale.
const (
	tplScaleRI    = "Scale-RunInstances"
	tplScaleFleet = "Scale-EC2Fleet-maintain"
)

// scaleTemplates are an on-demand RunInstances template in the region's
// first subnet and an on-demand EC2 Fleet of type maintain over the other
// two (a /19 subnet holds about 8,000 addresses: 10,000 machines need
// more than one).
func scaleTemplates(max int, first string, others []string) string {
	attrs := map[string]any{"type": []string{"String", "X86_64"}, "ncpus": []string{"Numeric", "2"}, "nram": []string{"Numeric", "4096"}}
	image := "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"
	tpls := []map[string]any{
		{"templateId": tplScaleRI, "maxNumber": max, "attributes": attrs, "imageId": image,
			"vmType": "c5.large", "providerApi": "RunInstances", "subnetId": first},
		{"templateId": tplScaleFleet, "maxNumber": max, "attributes": attrs, "imageId": image,
			"vmTypes": map[string]int{"c5.large": 1}, "providerApi": "EC2Fleet", "fleetType": "maintain",
			"priceType": "ondemand", "subnetId": strings.Join(others, ",")},
	}
	b, _ := json.Marshal(map[string]any{"templates": tpls})
	return string(b)
}

// TestScale puts 10,000 machines in flight at once through the real
// binaries against the strict region (FilterLimitExceeded past 200 filter
// values, eventual consistency, EC2's throttling buckets are not on, as in
// the other soak runs): 5,000 by RunInstances (10 requests of 500) and
// 5,000 by EC2 Fleets of type maintain (5 requests of 1,000), all asked
// before the first completes. Every request must complete with exactly its
// machines, returning all 10,000 must terminate every one and delete every
// fleet, and the region's accounting must show no call refused: not one
// error of any kind (no FilterLimitExceeded, no NotFound, no 4xx or 5xx).
//
// Without OHFP_SOAK=1 it runs 200 + 200 machines. ohfpd and the region
// run under -race as in the other runs (on 2 cores about 80 s for the
// 10,000; some 25 s without -race).
func TestScale(t *testing.T) {
	riReqs, riUnits, flReqs, flUnits := 2, 100, 2, 100
	if soakMode() {
		riReqs, riUnits, flReqs, flUnits = 10, 500, 5, 1000
	}
	total := riReqs*riUnits + flReqs*flUnits

	c := startCloud(t, 100*time.Millisecond, 100*time.Millisecond)
	if c.consistencyWindow() <= 0 {
		t.Fatal("the simulated region runs without eventual consistency")
	}
	ec2c := ec2.NewFromConfig(awssim.ClientConfig(c.endpoint, "us-east-1"))
	sn, err := ec2c.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{})
	must(t, err)
	var subnets []string
	for _, s := range sn.Subnets {
		subnets = append(subnets, aws.ToString(s.SubnetId))
	}
	sort.Strings(subnets)
	if len(subnets) < 2 {
		t.Fatalf("the region has %d subnets", len(subnets))
	}
	e := newEnv(t, c, daemonOpts{templates: scaleTemplates(total, subnets[0], subnets[1:])})
	e.start()
	callsBefore, _ := c.counts()
	codesBefore := c.errorCodes()

	// 1. Every request asked at once, from 4 HF callers.
	type req struct {
		id, tpl string
		units   int
	}
	var reqs []req
	for i := 0; i < riReqs; i++ {
		reqs = append(reqs, req{tpl: tplScaleRI, units: riUnits})
	}
	for i := 0; i < flReqs; i++ {
		reqs = append(reqs, req{tpl: tplScaleFleet, units: flUnits})
	}
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	const workers = 4
	for w := 0; w < workers; w++ {
		p := e.newPlugin(fmt.Sprintf("hf-scale-%d", w))
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(reqs); i += workers {
				ctx, cancel := callCtx()
				var rep hfdriver.RequestReply
				err := p.Call(ctx, "requestMachines", requestInput(reqs[i].tpl, reqs[i].units), &rep)
				cancel()
				mu.Lock()
				if err != nil {
					failures = append(failures, err.Error())
				}
				reqs[i].id = rep.RequestID
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d requestMachines calls failed: %v", len(failures), failures)
	}
	asked := time.Since(start)

	// 2. All of them complete, in flight together.
	var ids []string
	units := map[string]int{}
	for _, r := range reqs {
		ids = append(ids, r.id)
		units[r.id] = r.units
	}
	peak := 0
	final := map[string]statusEntry{}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		running := 0
		st := e.status(ids...)
		for _, s := range st.Requests {
			final[s.RequestID] = statusEntry{Status: s.Status, Message: s.Message, Machines: s.Machines}
			if s.Status == "running" {
				running++
			}
		}
		live := 0
		for _, in := range c.instances() {
			if liveState(in.State) {
				live++
			}
		}
		peak = max(peak, live)
		if running == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests still running after 5 minutes (%d instances live)", running, len(ids), live)
		}
		time.Sleep(time.Second)
	}
	acquired := time.Since(start)
	var bad []string
	var all []hfdriver.Machine
	for _, id := range ids {
		s := final[id]
		ok := 0
		for _, m := range s.Machines {
			if m.Result == "succeed" {
				ok++
				all = append(all, m)
			}
		}
		if s.Status != "complete" || ok != units[id] {
			bad = append(bad, fmt.Sprintf("%s: %s %q with %d machines, want complete with %d", id, s.Status, s.Message, ok, units[id]))
		}
	}
	if len(bad) > 0 {
		t.Fatalf("at scale:\n  %s", strings.Join(bad, "\n  "))
	}
	byReq := map[string]int{}
	for _, in := range c.instances() {
		if liveState(in.State) {
			byReq[in.Tags["ohfp:request-id"]]++
		}
	}
	for _, id := range ids {
		if byReq[id] != units[id] {
			bad = append(bad, fmt.Sprintf("%s: the cloud holds %d live instances, asked %d", id, byReq[id], units[id]))
		}
	}
	if len(bad) > 0 {
		t.Fatalf("at scale:\n  %s", strings.Join(bad, "\n  "))
	}

	// 3. HF returns everything, 1,000 machines a call.
	retStart := time.Now()
	var rets []string
	for i := 0; i < len(all); i += 1000 {
		var rep hfdriver.RequestReply
		e.call("requestReturnMachines", hfdriver.MachinesInput(all[i:min(i+1000, len(all))]), &rep)
		rets = append(rets, rep.RequestID)
	}
	for id, s := range e.waitFinal(rets, 5*time.Minute) {
		if s.Status != "complete" {
			t.Errorf("return %s: %s %q", id, s.Status, s.Message)
		}
	}
	c.waitAllTerminated(3*time.Minute, time.Second, "every machine was returned")
	returned := time.Since(retStart)

	// Nothing left: no instance, no fleet.
	df, err := ec2c.DescribeFleets(context.Background(), &ec2.DescribeFleetsInput{})
	must(t, err)
	var fleets []string
	for _, f := range df.Fleets {
		if s := string(f.FleetState); !strings.HasPrefix(s, "deleted") {
			fleets = append(fleets, aws.ToString(f.FleetId)+" "+s)
		}
	}
	if len(fleets) > 0 {
		t.Errorf("fleets left after every machine was returned: %v", fleets)
	}

	// 4. Not one call refused.
	calls, _ := c.counts()
	codes := diff(c.errorCodes(), codesBefore)
	callsBy := diff(calls, callsBefore)
	callsBy["DescribeFleets"]-- // this test's own call
	if len(codes) > 0 {
		t.Errorf("the region refused calls: %v", codes)
	}
	report(t, map[string]any{
		"machines": total, "runInstancesMachines": riReqs * riUnits, "fleetMachines": flReqs * flUnits,
		"requests": len(ids), "returns": len(rets), "peakLiveInstances": peak,
		"askSeconds": asked.Seconds(), "acquireSeconds": acquired.Seconds(), "returnSeconds": returned.Seconds(),
		"awsCalls": sum(callsBy), "awsCallsByAction": callsBy, "awsErrors": sum(codes), "awsErrorsByCode": codes,
		"consistencyWindowMs": c.consistencyWindow().Milliseconds(), "ohfpdRace": raceEnabled,
		"fleetsLeft": len(fleets),
	})
}
