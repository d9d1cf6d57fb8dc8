package awssim

import (
	"cmp"
	"fmt"
	"time"
)

// spotRequest is the Spot instance request made for every Spot instance
// any launcher starts: one-time, or persistent (RunInstances with
// SpotInstanceType persistent, interruption behaviour stop or hibernate).
type spotRequest struct {
	id         string
	instanceID string
	typ        *instanceType
	az         string
	subnetID   string
	imageID    string
	spotPrice  string // the max price: the request's, else on-demand
	reqType    string // one-time or persistent
	behavior   string // interruption behaviour: terminate, stop or hibernate
	state      string // open, active, closed, cancelled, failed, disabled
	statusCode string // fulfilled, instance-terminated-no-capacity, marked-for-stop, ...
	statusMsg  string
	statusTime time.Time
	created    time.Time
	tags       map[string]string
	// interrupting is set by InterruptSpot: the instance is being reclaimed.
	interrupting bool
	// visibleAt: eventual consistency, as its instance's.
	visibleAt time.Time
}

// Spot request status codes and messages (EC2 User Guide, "Spot request
// status", "Spot request status codes"; the messages follow the codes'
// descriptions there).
var spotStatusMessages = map[string]string{
	"fulfilled":                             "Your spot request is fulfilled.",
	"instance-terminated-no-capacity":       "Your Spot Instance was terminated due to standard capacity management processes.",
	"marked-for-stop":                       "Your Spot Instance is marked for stopping.",
	"instance-stopped-no-capacity":          "Your Spot Instance was stopped due to EC2 capacity management needs.",
	"instance-terminated-by-user":           "Spot Instance terminated.",
	"instance-stopped-by-user":              "Spot Instance stopped.",
	"request-canceled-and-instance-running": "Your spot request was canceled but your instance is still running.",
}

func (r *Region) newSpotRequest(in *instance, spec launchSpec) *spotRequest {
	price := spec.maxPrice
	if price == "" {
		price = formatPrice(in.typ.price)
	}
	sr := &spotRequest{
		id:         r.newShortID("sir-", 8),
		instanceID: in.id,
		typ:        in.typ,
		az:         in.subnet.az,
		subnetID:   in.subnet.id,
		imageID:    in.imageID,
		spotPrice:  price,
		reqType:    cmp.Or(spec.spotType, "one-time"),
		behavior:   cmp.Or(spec.interruptBehavior, "terminate"),
		state:      "active",
		created:    r.now,
		visibleAt:  in.visibleAt,
	}
	r.setSpotStatus(sr, "fulfilled", r.now)
	r.spotReqs[sr.id] = sr
	r.spotOrder = append(r.spotOrder, sr)
	return sr
}

func (r *Region) setSpotStatus(sr *spotRequest, code string, at time.Time) {
	sr.statusCode = code
	sr.statusMsg = spotStatusMessages[code]
	sr.statusTime = at
}

// spotInstanceStateChanged keeps a Spot request in step with its instance
// (EC2 User Guide, "Spot request status", the Fulfilled and
// Fulfilled-terminal tables).
func (r *Region) spotInstanceStateChanged(in *instance, at time.Time) {
	sr := r.spotReqs[in.spotRequestID]
	if sr == nil {
		return
	}
	switch in.state {
	case stateTerminated, stateShuttingDown:
		switch {
		case sr.interrupting && sr.behavior == "terminate":
			// instance-terminated-no-capacity since the notice, time and all
			sr.state = "closed"
		case sr.state == "active" || sr.state == "disabled":
			sr.state = "closed"
			r.setSpotStatus(sr, "instance-terminated-by-user", at)
		}
	case stateStopping:
		if !sr.interrupting && sr.state == "active" {
			r.setSpotStatus(sr, "marked-for-stop", at)
		}
	case stateStopped:
		switch {
		case sr.interrupting:
			sr.state = "disabled"
			r.setSpotStatus(sr, "instance-stopped-no-capacity", at)
		case sr.state == "active":
			sr.state = "disabled"
			r.setSpotStatus(sr, "instance-stopped-by-user", at)
		}
	}
}

// SpotInterruptionNotice is how long before reclaiming an instance AWS
// gives its interruption notice (EC2 User Guide, "Spot Instance
// interruption notices": two minutes, none for hibernation).
const SpotInterruptionNotice = 2 * time.Minute

// interruptSpot interrupts a Spot instance as EC2 does, by its request's
// interruption behaviour. Call with the lock held.
//
//   - terminate: the request is closed with status
//     instance-terminated-no-capacity at once (never marked-for-termination);
//     the instance stays running for SpotInterruptionNotice, then is
//     terminated with Server.SpotInstanceTermination.
//   - stop: status marked-for-stop at once, the instance running; after
//     SpotInterruptionNotice it stops (Server.SpotInstanceShutdown) and the
//     request becomes disabled with instance-stopped-no-capacity.
//   - hibernate: as stop, but with no two-minute warning: the instance
//     starts stopping at once.
func (r *Region) interruptSpot(in *instance) error {
	if in.spotRequestID == "" {
		return fmt.Errorf("awssim: %s is not a Spot instance", in.id)
	}
	sr := r.spotReqs[in.spotRequestID]
	if sr == nil || !in.live() || sr.interrupting {
		return fmt.Errorf("awssim: %s cannot be interrupted in state %s", in.id, in.state)
	}
	sr.interrupting = true
	r.interruptionWarning(in, sr.behavior) // instancestatus.go
	note := func(at time.Time) string {
		return fmt.Sprintf("Service initiated (%s)", at.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	if sr.behavior == "terminate" {
		sr.state = "closed"
		r.setSpotStatus(sr, "instance-terminated-no-capacity", r.now)
		r.schedule(r.now.Add(SpotInterruptionNotice), func(at time.Time) {
			if !in.live() {
				return
			}
			in.transitionNote = note(at)
			r.setState(in, stateShuttingDown, at, reasonSpotTerminate)
			r.schedule(at.Add(r.opts.TerminateDelay), func(t time.Time) {
				if in.state == stateShuttingDown {
					r.setState(in, stateTerminated, t, reasonSpotTerminate)
				}
			})
		})
		return nil
	}
	r.setSpotStatus(sr, "marked-for-stop", r.now)
	stop := func(at time.Time) {
		if !in.live() {
			return
		}
		in.transitionNote = note(at)
		r.setState(in, stateStopping, at, reasonSpotStop)
		r.schedule(at.Add(r.opts.TerminateDelay), func(t time.Time) {
			if in.state == stateStopping {
				r.setState(in, stateStopped, t, reasonSpotStop)
			}
		})
	}
	if sr.behavior == "hibernate" {
		stop(r.now)
	} else {
		r.schedule(r.now.Add(SpotInterruptionNotice), stop)
	}
	return nil
}
