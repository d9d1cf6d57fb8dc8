package awssim

import (
	"fmt"
	"time"
)

// The lifecycle EC2 Fleet and Spot Fleet share: a request or maintain fleet
// waits for ValidFrom, fills its on-demand and Spot targets from its pools,
// keeps them filled (maintain), ends at ValidUntil or on delete/cancel, and
// settles once its instances are gone. Only the state names differ.

// fleetStates names a fleet's states in its API's spelling: EC2 Fleet's
// FleetState or Spot Fleet's BatchState.
type fleetStates struct {
	submitted, active, modifying          string
	ended, endedRunning, endedTerminating string
}

var (
	ec2FleetStates  = fleetStates{fleetSubmitted, fleetActive, fleetModifying, fleetDeleted, fleetDeletedRunning, fleetDeletedTerminating}
	spotFleetStates = fleetStates{sfrSubmitted, sfrActive, sfrModifying, sfrCancelled, sfrCancelledRn, sfrCancelledTm}
)

// fleetRun is the part of a fleet its lifecycle reads and writes.
type fleetRun struct {
	id       string
	st       *fleetStates
	ev       *fleetEventNames
	typ      string // request | maintain (| instant, EC2 Fleet)
	state    string
	activity string

	pools              []*fleetPool
	spotAlloc, odAlloc string // canonical
	poolsToUse         int
	validFrom          time.Time
	validUntil         time.Time
	termWithExpiration bool

	m     members
	dying []*instance // terminated by delete/cancel or expiry
	errs  []fillFailure

	// visibleAt: eventual consistency (consistency.go).
	visibleAt time.Time
	// history is what DescribeFleetHistory / DescribeSpotFleetRequestHistory
	// answer (fleethistory.go); lastErr* rate-limit its failure events.
	history    []fleetEvent
	lastErrSig string
	lastErrAt  time.Time
}

// launch fills need units of one lifecycle from f's pools, the instances
// tagged with tags and owned by f; a Spot pool without a max price of its
// own bids defaultPrice ("" = on-demand price).
func (f *fleetRun) launch(r *Region, spot bool, need float64, tags map[string]string, defaultPrice string) fillResult {
	strategy := f.odAlloc
	if spot {
		strategy = f.spotAlloc
	}
	res := r.fill(f.pools, spot, need, strategy, f.poolsToUse, func(fp *fleetPool) launchSpec {
		spec := withTags(fp.base, tags)
		spec.spot = spot
		spec.maxPrice = ""
		if spot {
			spec.maxPrice = fp.maxPrice
			if spec.maxPrice == "" {
				spec.maxPrice = defaultPrice
			}
		}
		spec.owner = f.id
		spec.weight = fp.units()
		return spec
	})
	for _, in := range res.launched {
		f.m.add(in)
		f.record(r, f.ev.instance, "launched", fmt.Sprintf(`{"instanceType":"%s","image":"%s","productDescription":"Linux/UNIX","availabilityZone":"%s"}`, in.typ.name, in.imageID, in.subnet.az), in.id)
	}
	return res
}

// topUp brings a request or maintain fleet towards its od and sp targets
// with fill: maintain counts live units (so lost instances are replaced),
// request counts every unit ever launched (so they are not).
func (f *fleetRun) topUp(r *Region, od, sp int, fill func(spot bool, need float64) fillResult) {
	attempted := false
	launched := 0
	var fails []fillFailure
	for _, spot := range []bool{false, true} {
		target := float64(od)
		if spot {
			target = float64(sp)
		}
		have := f.m.liveUnits[lcIndex(spot)]
		if f.typ == "request" {
			have = f.m.launched[lcIndex(spot)]
		}
		if have+1e-9 >= target {
			continue
		}
		attempted = true
		res := fill(spot, target-have)
		fails = append(fails, res.fails...)
		launched += len(res.launched)
	}
	if attempted {
		f.errs = fails
		f.recordFailures(r, fails, launched)
	}
	f.updateActivity(od, sp)
}

// updateActivity sets the activity status against the od and sp targets.
func (f *fleetRun) updateActivity(od, sp int) {
	have := f.m.liveUnits
	if f.typ == "request" {
		have = f.m.launched
	}
	switch {
	case have[0]+1e-9 >= float64(od) && have[1]+1e-9 >= float64(sp):
		f.activity = "fulfilled"
	case len(f.errs) > 0:
		f.activity = "error"
	default:
		f.activity = "pending_fulfillment"
	}
}

// advance moves f along its lifecycle at a tick: a submitted fleet becomes
// active once ValidFrom has passed, an ended one settles once its instances
// are gone, and an active one past ValidUntil ends (terminating its
// instances with TerminateInstancesWithExpiration). expired reports that
// this tick ended it; topUp that it is active and should be topped up.
func (f *fleetRun) advance(r *Region, now time.Time) (expired, topUp bool) {
	switch f.state {
	case f.st.submitted:
		if !f.validFrom.After(now) {
			f.setState(r, f.st.active)
		}
	case f.st.endedRunning, f.st.endedTerminating:
		if len(f.m.live) == 0 && allTerminated(f.dying) {
			f.setState(r, f.st.ended)
			f.dying = nil
		}
		return false, false
	}
	if f.state != f.st.active && f.state != f.st.modifying {
		return false, false
	}
	if !f.validUntil.IsZero() && !now.Before(f.validUntil) {
		f.record(r, f.ev.fleet, "expired", "", "")
		f.end(r, f.termWithExpiration)
		return true, false
	}
	return false, true
}

// end stops a fleet launching; with terminate it terminates its instances.
func (f *fleetRun) end(r *Region, terminate bool) {
	if terminate {
		f.setState(r, f.st.endedTerminating)
		for _, in := range f.m.sorted() {
			r.terminate(in, reasonUserTerminate)
			f.dying = append(f.dying, in)
		}
	} else {
		f.setState(r, f.st.endedRunning)
	}
}

// ended reports whether f was deleted or cancelled.
func (f *fleetRun) ended() bool {
	return f.state == f.st.ended || f.state == f.st.endedRunning || f.state == f.st.endedTerminating
}

// allTerminated reports whether every instance has reached terminated.
func allTerminated(ins []*instance) bool {
	for _, in := range ins {
		if in.state != stateTerminated {
			return false
		}
	}
	return true
}

// modified applies a target change: with terminate, the live instances
// over the od and sp targets are terminated; an active fleet is modifying
// until the next tick.
func (f *fleetRun) modified(r *Region, now time.Time, od, sp int, terminate bool) {
	if terminate {
		for _, spot := range []bool{false, true} {
			target := float64(od)
			if spot {
				target = float64(sp)
			}
			for _, in := range r.excess(&f.m, spot, target) {
				r.terminate(in, reasonUserTerminate)
			}
		}
	}
	if f.state == f.st.active {
		f.state = f.st.modifying
		r.schedule(now, func(time.Time) {
			if f.state == f.st.modifying {
				f.state = f.st.active
			}
		})
	}
	f.updateActivity(od, sp)
}

// addLTConfig reads the i-th (from 0) of LaunchTemplateConfigs into f's
// pools, one per override (or one for the template alone), each override's
// price read from priceKey (MaxPrice or SpotPrice). path names the list in
// errors. It returns the template as answers echo it and the pools made
// from overrides.
func (f *fleetRun) addLTConfig(r *Region, lc params, i int, path, priceKey string) (fleetLTSpecXML, []*fleetPool, error) {
	spec := lc.sub("LaunchTemplateSpecification")
	ver := spec.str("Version")
	if ver == "" {
		return fleetLTSpecXML{}, nil, errMissingParameter(fmt.Sprintf("%s.%d.LaunchTemplateSpecification.Version", path, i+1))
	}
	lt, v, err := r.resolveLaunchTemplate(spec.str("LaunchTemplateId"), spec.str("LaunchTemplateName"), ver)
	if err != nil {
		return fleetLTSpecXML{}, nil, err
	}
	ovs := []*params{nil} // the template alone
	if list := lc.structs("Overrides"); len(list) > 0 {
		ovs = ovs[:0]
		for j := range list {
			ovs = append(ovs, &list[j])
		}
	}
	var overridden []*fleetPool
	for _, ov := range ovs {
		pool, err := r.poolFromLT(len(f.pools), lt, v, ver, ov, priceKey)
		if err != nil {
			return fleetLTSpecXML{}, nil, err
		}
		f.pools = append(f.pools, pool)
		if ov != nil {
			overridden = append(overridden, pool)
		}
	}
	return fleetLTSpecXML{LaunchTemplateID: lt.id, LaunchTemplateName: lt.name, Version: ver}, overridden, nil
}

// liveInstancesPage pages a fleet's live instances, in launch order, for
// DescribeFleetInstances and DescribeSpotFleetInstances.
func liveInstancesPage(m *members, maxResults int, token string) ([]activeInstanceXML, string, error) {
	live := m.sorted()
	start, end, next, err := pageBounds(len(live), maxResults, token)
	if err != nil {
		return nil, "", err
	}
	var out []activeInstanceXML
	for _, in := range live[start:end] {
		out = append(out, activeXML(in))
	}
	return out, next, nil
}
