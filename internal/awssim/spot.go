package awssim

import (
	"fmt"
	"time"
)

// spotRequest is a one-time Spot instance request, made for every Spot
// instance any launcher starts.
type spotRequest struct {
	id         string
	instanceID string
	typ        *instanceType
	az         string
	subnetID   string
	imageID    string
	spotPrice  string // the max price: the request's, else on-demand
	state      string // open, active, closed, cancelled, failed
	statusCode string // fulfilled, marked-for-termination, instance-terminated-by-service, ...
	statusMsg  string
	statusTime time.Time
	created    time.Time
	tags       map[string]string
	// interrupting is set by InterruptSpot: the instance is being reclaimed.
	interrupting bool
}

var spotStatusMessages = map[string]string{
	"fulfilled":                             "Your spot request is fulfilled.",
	"marked-for-termination":                "Your Spot Instance is marked for termination because EC2 needs the capacity back.",
	"instance-terminated-by-service":        "Your Spot Instance was terminated because EC2 needed the capacity back.",
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
		state:      "active",
		created:    r.now,
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

// spotInstanceStateChanged keeps a Spot request in step with its instance.
func (r *Region) spotInstanceStateChanged(in *instance, at time.Time) {
	sr := r.spotReqs[in.spotRequestID]
	if sr == nil {
		return
	}
	switch in.state {
	case stateTerminated, stateShuttingDown:
		if sr.interrupting {
			sr.state = "closed"
			r.setSpotStatus(sr, "instance-terminated-by-service", at)
		} else if sr.state == "active" {
			sr.state = "closed"
			r.setSpotStatus(sr, "instance-terminated-by-user", at)
		}
	case stateStopped:
		if sr.state == "active" {
			sr.state = "closed"
			r.setSpotStatus(sr, "instance-stopped-by-user", at)
		}
	}
}

// SpotInterruptionNotice is how long before reclaiming an instance AWS
// marks it for termination.
const SpotInterruptionNotice = 2 * time.Minute

// interruptSpot marks a Spot instance for termination now and terminates it
// SpotInterruptionNotice later with Server.SpotInstanceTermination. Call
// with the lock held.
func (r *Region) interruptSpot(in *instance) error {
	if in.spotRequestID == "" {
		return fmt.Errorf("awssim: %s is not a Spot instance", in.id)
	}
	sr := r.spotReqs[in.spotRequestID]
	if sr == nil || !in.live() || sr.interrupting {
		return fmt.Errorf("awssim: %s cannot be interrupted in state %s", in.id, in.state)
	}
	sr.interrupting = true
	r.setSpotStatus(sr, "marked-for-termination", r.now)
	r.schedule(r.now.Add(SpotInterruptionNotice), func(at time.Time) {
		if !in.live() {
			return
		}
		in.transitionNote = fmt.Sprintf("Service initiated (%s)", at.UTC().Format("2006-01-02 15:04:05 MST"))
		r.setState(in, stateShuttingDown, at, reasonSpotTerminate)
		r.schedule(at.Add(r.opts.TerminateDelay), func(t time.Time) {
			if in.state == stateShuttingDown {
				r.setState(in, stateTerminated, t, reasonSpotTerminate)
			}
		})
	})
	return nil
}
