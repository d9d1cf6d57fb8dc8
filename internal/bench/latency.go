package main

import (
	"fmt"
	"time"

	"github.com/ohfp/ohfp/internal/hfdriver"
)

const (
	clientOhfp  = "ohfp"
	clientProbe = "probe"
)

// sampleRow times n spawned calls of op by each client, alternating which
// goes first. file gives the input of call i (written before timing); each,
// if set, sees every answer with the time its process was started.
func (b *bench) sampleRow(name, op string, n, warm int, file func(client string, i int) (string, error),
	each func(client string, i int, t0 time.Time, out []byte) error) (LatencyRow, error) {
	e := b.e
	plugin := map[string]string{clientOhfp: e.ohfp, clientProbe: e.probe}
	times := map[string][]time.Duration{}
	order := [2]string{clientOhfp, clientProbe}
	for i := -warm; i < n; i++ {
		if i%2 != 0 {
			order[0], order[1] = order[1], order[0]
		}
		for _, c := range order {
			f, err := file(c, max(i, 0))
			if err != nil {
				return LatencyRow{}, err
			}
			t0 := time.Now()
			out, d, err := e.spawn(plugin[c], op, f)
			if err != nil {
				return LatencyRow{}, err
			}
			if i < 0 {
				continue
			}
			times[c] = append(times[c], d)
			if b.trace != nil {
				fmt.Fprintf(b.trace, "%s,%s,%d,%.3f\n", name, c, t0.UnixMicro(), float64(d.Microseconds())/1000)
			}
			if each != nil {
				if err := each(c, i, t0, out); err != nil {
					return LatencyRow{}, fmt.Errorf("%s answer: %w", c, err)
				}
			}
		}
	}
	row := LatencyRow{Name: name, Op: op, Samples: n}
	row.P50Ms, row.P99Ms, row.MaxMs = pct(times[clientOhfp], 50), pct(times[clientOhfp], 99), pct(times[clientOhfp], 100)
	row.ProbeP50Ms, row.ProbeP99Ms = pct(times[clientProbe], 50), pct(times[clientProbe], 99)
	return row, nil
}

func fixed(path string, err error) func(string, int) (string, error) {
	return func(string, int) (string, error) { return path, err }
}

// readLatency times the read operations with 10,000 machines in memory.
func (b *bench) readLatency() error {
	e := b.e
	n := b.o.samples
	ids100 := b.ids[min(100, len(b.ids)-1):min(200, len(b.ids))]
	rows := []struct {
		name, op string
		in       any
	}{
		{"getAvailableTemplates", "getAvailableTemplates", map[string]any{}},
		{"getRequestStatus, 1 id", "getRequestStatus", hfdriver.StatusInput(b.ids[3])},
		{fmt.Sprintf("getRequestStatus, %d ids", len(ids100)), "getRequestStatus", hfdriver.StatusInput(ids100...)},
		{fmt.Sprintf("getReturnRequests, %d machines", len(b.refs)), "getReturnRequests", map[string]any{"machines": b.refs}},
	}
	for _, r := range rows {
		f, err := e.input(r.op, r.in)
		row, err := b.sampleRow(r.name, r.op, n, 5, fixed(f, err), nil)
		if err != nil {
			return err
		}
		b.res.Latency = append(b.res.Latency, row)
		logf("%-36s p50 %.2f ms (probe %.2f), p99 %.2f ms", r.name, row.P50Ms, row.ProbeP50Ms, row.P99Ms)
	}
	return nil
}

// writeLatency times requestMachines (1 machine each), waits for those
// machines, then times requestReturnMachines returning them one by one.
// The ohfp requestMachines calls also give the time to the cloud call.
func (b *bench) writeLatency() error {
	e := b.e
	n := b.o.samples
	f, err := e.input("requestMachines", map[string]any{"template": map[string]any{"templateId": "Bench-c5", "machineCount": 1}})
	type sent struct {
		id string
		t0 time.Time
	}
	reqs := map[string][]sent{}
	row, err := b.sampleRow("requestMachines, 1 machine", "requestMachines", n, 0, fixed(f, err), func(c string, _ int, t0 time.Time, out []byte) error {
		var rep hfdriver.RequestReply
		if err := result(out, &rep); err != nil || rep.RequestID == "" {
			return fmt.Errorf("no request id in %q (%v)", clip(string(out)), err)
		}
		reqs[c] = append(reqs[c], sent{rep.RequestID, t0})
		return nil
	})
	if err != nil {
		return err
	}
	b.res.Latency = append(b.res.Latency, row)
	logf("%-36s p50 %.2f ms (probe %.2f), p99 %.2f ms", row.Name, row.P50Ms, row.ProbeP50Ms, row.P99Ms)

	if err := b.waitIdle(len(b.refs)+2*n, 5*time.Minute); err != nil {
		return err
	}
	// The time from the call's start to RunInstances reaching the region.
	insts, err := e.simInstances()
	if err != nil {
		return err
	}
	launched := map[string]time.Time{}
	for _, in := range insts {
		rid := in.Tags["ohfp:request-id"]
		if t, ok := launched[rid]; !ok || in.LaunchTime.Before(t) {
			launched[rid] = in.LaunchTime
		}
	}
	var toCloud []time.Duration
	for _, s := range reqs[clientOhfp] {
		t, ok := launched[s.id]
		if !ok {
			return fmt.Errorf("the region launched nothing for %s", s.id)
		}
		toCloud = append(toCloud, t.Sub(s.t0))
	}
	b.res.ToCloud = ToCloud{Samples: len(toCloud), P50Ms: pct(toCloud, 50), P99Ms: pct(toCloud, 99), MaxMs: pct(toCloud, 100)}

	// The machines of those requests, to return one per call.
	machines := map[string][]map[string]string{}
	for c, list := range reqs {
		for i := 0; i < len(list); i += 100 {
			var ids []string
			for _, s := range list[i:min(i+100, len(list))] {
				ids = append(ids, s.id)
			}
			var st reqStatus
			if err := e.call("getRequestStatus", hfdriver.StatusInput(ids...), &st); err != nil {
				return err
			}
			for _, r := range st.Requests {
				if r.Status != "complete" || len(r.Machines) != 1 {
					return fmt.Errorf("request %s: %s with %d machines: %s", r.RequestID, r.Status, len(r.Machines), r.Message)
				}
				m := r.Machines[0]
				machines[c] = append(machines[c], map[string]string{"name": m.Name, "machineId": m.MachineID})
			}
		}
	}
	row, err = b.sampleRow("requestReturnMachines, 1 machine", "requestReturnMachines", n, 0, func(c string, i int) (string, error) {
		return e.input("requestReturnMachines", map[string]any{"machines": machines[c][i : i+1]})
	}, nil)
	if err != nil {
		return err
	}
	b.res.Latency = append(b.res.Latency, row)
	logf("%-36s p50 %.2f ms (probe %.2f), p99 %.2f ms", row.Name, row.P50Ms, row.ProbeP50Ms, row.P99Ms)
	// Let the terminations finish so they do not load later figures.
	return b.waitIdle(len(b.refs), 5*time.Minute)
}

// largeRequest times one request of o.bigRequest machines from the call to
// "complete", polling getRequestStatus in-process every 10 ms.
func (b *bench) largeRequest() error {
	e := b.e
	f, err := e.input("requestMachines", map[string]any{"template": map[string]any{"templateId": "Bench-c5", "machineCount": b.o.bigRequest}})
	if err != nil {
		return err
	}
	t0 := time.Now()
	out, _, err := e.spawn(e.ohfp, "requestMachines", f)
	if err != nil {
		return err
	}
	var rep hfdriver.RequestReply
	if err := result(out, &rep); err != nil {
		return err
	}
	var done time.Duration
	for {
		var st reqStatus
		if err := e.call("getRequestStatus", hfdriver.StatusInput(rep.RequestID), &st); err != nil {
			return err
		}
		if r := st.Requests[0]; r.Status != "running" {
			done = time.Since(t0)
			if r.Status != "complete" || len(r.Machines) != b.o.bigRequest {
				return fmt.Errorf("request %s: %s with %d machines: %s", r.RequestID, r.Status, len(r.Machines), r.Message)
			}
			break
		}
		if time.Since(t0) > 5*time.Minute {
			return fmt.Errorf("request %s still running after 5 minutes", rep.RequestID)
		}
		time.Sleep(10 * time.Millisecond)
	}
	insts, err := e.simInstances()
	if err != nil {
		return err
	}
	var first time.Time
	for _, in := range insts {
		if in.Tags["ohfp:request-id"] == rep.RequestID && (first.IsZero() || in.LaunchTime.Before(first)) {
			first = in.LaunchTime
		}
	}
	l := &b.res.Large
	l.Machines, l.CompleteSeconds, l.ToCloudMs = b.o.bigRequest, done.Seconds(), ms(first.Sub(t0))
	l.ReconcileIntervalSeconds = b.o.interval.Seconds()
	return nil
}
