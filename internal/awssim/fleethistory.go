package awssim

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Fleet history: DescribeFleetHistory (EC2 Fleet) and
// DescribeSpotFleetRequestHistory (Spot Fleet).
//
// EC2 API Reference, DescribeFleetHistory: "EC2 Fleet events are delayed
// by up to 30 seconds before they can be described. This ensures that you
// can query by the last evaluated time and not miss a recorded event. EC2
// Fleet events are available for 48 hours." EventInformation lists the
// sub-types: error events (iamFleetRoleInvalid,
// allLaunchSpecsTemporarilyBlacklisted, spotInstanceCountLimitExceeded,
// spotFleetRequestConfigurationInvalid), fleetRequestChange events (the
// states), instanceChange (launched, terminated) and information
// (launchSpecTemporarilyBlacklisted, launchSpecUnusable, ...). For fleets
// of type request and maintain this is where launch errors are reported:
// CreateFleetResult/FleetData Errors are "Supported only for fleets of
// type instant".

// HistoryDelay bounds how late an event of a fleet's history can be
// described.
const HistoryDelay = 30 * time.Second

// historyRetention is how long events stay describable.
const historyRetention = 48 * time.Hour

// fleetEventNames are a fleet API's spellings of the event types.
type fleetEventNames struct {
	instance, fleet, err, info string
}

var (
	// DescribeFleetHistory EventType: instance-change | fleet-change |
	// service-error (no information type: those events are service-error).
	ec2FleetEvents = fleetEventNames{"instance-change", "fleet-change", "service-error", "service-error"}
	// DescribeSpotFleetRequestHistory EventType: instanceChange |
	// fleetRequestChange | error | information.
	spotFleetEvents = fleetEventNames{"instanceChange", "fleetRequestChange", "error", "information"}
)

type fleetEvent struct {
	at, describable     time.Time
	typ, sub, desc, iid string
}

// record adds an event to f's history, describable up to HistoryDelay
// later. Call with the lock held.
func (f *fleetRun) record(r *Region, typ, sub, desc, instanceID string) {
	ev := fleetEvent{at: r.now, describable: r.now.Add(time.Duration(r.rng.Int64N(int64(HistoryDelay) + 1))), typ: typ, sub: sub, desc: desc, iid: instanceID}
	f.history = append(f.history, ev)
	// forget what no describe can return any more
	cut := 0
	for cut < len(f.history) && r.now.Sub(f.history[cut].at) > historyRetention {
		cut++
	}
	f.history = f.history[cut:]
}

// setState changes f's state and records the change.
func (f *fleetRun) setState(r *Region, state string) {
	if f.state == state {
		return
	}
	f.state = state
	f.record(r, f.ev.fleet, state, "", "")
}

// recordFailures records the launch failures of a top-up: each failed
// pool as information (launchSpecTemporarilyBlacklisted), and, when
// nothing could be launched at all, an error
// (allLaunchSpecsTemporarilyBlacklisted). The same failures are recorded
// again at most every five minutes.
func (f *fleetRun) recordFailures(r *Region, fails []fillFailure, launched int) {
	if len(fails) == 0 {
		f.lastErrSig = ""
		return
	}
	var parts []string
	for _, x := range fails {
		parts = append(parts, fmt.Sprintf("%d/%v/%s", x.pool.idx, x.spot, x.err.Code))
	}
	sort.Strings(parts)
	sig := strings.Join(parts, ",")
	if sig == f.lastErrSig && r.now.Sub(f.lastErrAt) < 5*time.Minute {
		return
	}
	f.lastErrSig, f.lastErrAt = sig, r.now
	for _, x := range fails {
		f.record(r, f.ev.info, "launchSpecTemporarilyBlacklisted", r.failureDescription(x), "")
	}
	if launched == 0 {
		x := fails[len(fails)-1]
		f.record(r, f.ev.err, "allLaunchSpecsTemporarilyBlacklisted",
			"All launch specifications failed to launch; the last error: "+r.failureDescription(x), "")
	}
}

// failureDescription says which pool failed and why, with EC2's error
// code and message.
func (r *Region) failureDescription(x fillFailure) string {
	az := r.poolAZ(x.pool)
	return fmt.Sprintf("%s, %s, Linux/UNIX, %s, %s: %s: %s", x.pool.base.instanceType, x.pool.base.imageID, az, lifecycle(x.spot), x.err.Code, x.err.Message)
}

type eventInformationXML struct {
	EventDescription string `xml:"eventDescription,omitempty"`
	EventSubType     string `xml:"eventSubType,omitempty"`
	InstanceID       string `xml:"instanceId,omitempty"`
}

type historyRecordXML struct {
	EventInformation eventInformationXML `xml:"eventInformation"`
	EventType        string              `xml:"eventType"`
	Timestamp        string              `xml:"timestamp"`
}

type describeFleetHistoryResult struct {
	Records           []historyRecordXML `xml:"historyRecordSet>item"`
	LastEvaluatedTime string             `xml:"lastEvaluatedTime"`
	NextToken         string             `xml:"nextToken,omitempty"`
	FleetID           string             `xml:"fleetId"`
	StartTime         string             `xml:"startTime"`
}

type describeSFRHistoryResult struct {
	Records            []historyRecordXML `xml:"historyRecordSet>item"`
	LastEvaluatedTime  string             `xml:"lastEvaluatedTime"`
	NextToken          string             `xml:"nextToken,omitempty"`
	SpotFleetRequestID string             `xml:"spotFleetRequestId"`
	StartTime          string             `xml:"startTime"`
}

// historyPage reads the common parameters of the history calls and
// returns f's describable events of the asked type since StartTime.
func historyPage(c *call, f *fleetRun, types []string) (recs []historyRecordXML, start time.Time, next string, err error) {
	start = c.p.timeOr("StartTime")
	evType := c.p.str("EventType")
	token := c.p.str("NextToken")
	if err := c.err(); err != nil {
		return nil, start, "", err
	}
	if start.IsZero() {
		return nil, start, "", errMissingParameter("StartTime")
	}
	if evType != "" && !contains(types, evType) {
		return nil, start, "", errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for EventType. Valid values: %s", evType, strings.Join(types, ", ")))
	}
	limit, err := maxResults(c.p, 1, 1000)
	if err != nil {
		return nil, start, "", err
	}
	var all []historyRecordXML
	for _, ev := range f.history {
		if ev.at.Before(start) || c.now.Before(ev.describable) || evType != "" && ev.typ != evType {
			continue
		}
		all = append(all, historyRecordXML{EventInformation: eventInformationXML{EventDescription: ev.desc, EventSubType: ev.sub, InstanceID: ev.iid},
			EventType: ev.typ, Timestamp: ts(ev.at)})
	}
	s, e, next, err := pageBounds(len(all), limit, token)
	if err != nil {
		return nil, start, "", err
	}
	return all[s:e], start, next, nil
}

func (s *fleetService) describeFleetHistory(c *call) (any, error) {
	id := c.p.reqStr("FleetId")
	if err := c.err(); err != nil {
		return nil, err
	}
	f, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	recs, start, next, err := historyPage(c, &f.fleetRun, []string{"instance-change", "fleet-change", "service-error"})
	if err != nil {
		return nil, err
	}
	return &describeFleetHistoryResult{Records: recs, LastEvaluatedTime: ts(c.now.Add(-HistoryDelay)), NextToken: next, FleetID: f.id, StartTime: ts(start)}, nil
}

func (s *spotFleetService) describeSpotFleetRequestHistory(c *call) (any, error) {
	id := c.p.reqStr("SpotFleetRequestId")
	if err := c.err(); err != nil {
		return nil, err
	}
	f, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	recs, start, next, err := historyPage(c, &f.fleetRun, []string{"instanceChange", "fleetRequestChange", "error", "information"})
	if err != nil {
		return nil, err
	}
	return &describeSFRHistoryResult{Records: recs, LastEvaluatedTime: ts(c.now.Add(-HistoryDelay)), NextToken: next, SpotFleetRequestID: f.id, StartTime: ts(start)}, nil
}
