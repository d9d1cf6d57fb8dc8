package awssim

import (
	"fmt"
	"maps"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// EC2 instance state names and codes.
const (
	statePending      = "pending"
	stateRunning      = "running"
	stateShuttingDown = "shutting-down"
	stateTerminated   = "terminated"
	stateStopping     = "stopping"
	stateStopped      = "stopped"
)

var stateCodes = map[string]int{
	statePending: 0, stateRunning: 16, stateShuttingDown: 32,
	stateTerminated: 48, stateStopping: 64, stateStopped: 80,
}

// State reasons as EC2 spells them.
var (
	reasonUserTerminate = stateReason{"Client.UserInitiatedShutdown", "Client.UserInitiatedShutdown: User initiated shutdown"}
	reasonUserStop      = stateReason{"Client.UserInitiatedShutdown", "Client.UserInitiatedShutdown: User initiated shutdown"}
	reasonSpotTerminate = stateReason{"Server.SpotInstanceTermination", "Server.SpotInstanceTermination: Spot instance termination"}
	reasonSpotStop      = stateReason{"Server.SpotInstanceShutdown", "Server.SpotInstanceShutdown: Spot instance shutdown"}
	reasonServiceStop   = stateReason{"Server.ScheduledStop", "Server.ScheduledStop: Stopped due to scheduled retirement"}
	reasonOSShutdown    = stateReason{"Client.InstanceInitiatedShutdown", "Client.InstanceInitiatedShutdown: Instance initiated shutdown"}
	reasonNone          = stateReason{}
)

type stateReason struct{ code, message string }

// launchSpec is what one instance is launched from. RunInstances, fleets,
// Spot Fleets and Auto Scaling groups all fill one and call launch.
type launchSpec struct {
	instanceType string   // required: a catalogue name, e.g. m5.large
	subnetID     string   // "" = the default subnet (fewest addresses in use)
	imageID      string   // required: an AMI the region knows
	keyName      string   // optional
	sgIDs        []string // "" = the default security group
	iamProfile   string   // optional: instance profile ARN or name
	userData     string   // optional, base64 as sent
	blockDevices []blockDevice
	tags         map[string]string // the instance's tags

	spot     bool   // launch as Spot: a Spot request sir-... per instance
	maxPrice string // Spot max price, "" = on-demand price
	// spotType is the Spot request type, one-time ("") or persistent;
	// interruptBehavior what an interruption does: terminate (""), stop or
	// hibernate.
	spotType, interruptBehavior string

	owner       string  // who launched: "" (RunInstances), a fleet id, sfr-id or "asg:NAME"
	weight      float64 // weighted capacity of the instance for its owner (0 = 1)
	clientToken string  // reported as the instance's clientToken
	// shutdownBehavior is InstanceInitiatedShutdownBehavior: "" (stop) or
	// terminate.
	shutdownBehavior string
	launchTplID      string // the launch template it came from, if any
	launchTplVer     string
	spotValidTill    time.Time // unused by RunInstances; fleets may set
}

type blockDevice struct {
	deviceName          string
	volumeSize          int
	volumeType          string
	deleteOnTermination bool
}

// instance is one simulated EC2 instance. Fields are read and written under
// the region's lock.
type instance struct {
	id            string
	reservationID string
	seq           int64
	launchIndex   int
	typ           *instanceType
	subnet        *subnet
	imageID       string
	keyName       string
	sgIDs         []string
	iamProfile    string
	userData      string
	blockDevices  []blockDevice
	volumes       []*volume // volumes.go
	tags          map[string]string
	clientToken   string

	state          string
	stateChanged   time.Time
	reason         stateReason
	transitionNote string // stateTransitionReason, e.g. "User initiated (2025-...)"
	launchTime     time.Time
	privateIP      netip.Addr
	privateDNS     string

	spot          bool
	spotRequestID string
	maxPrice      string

	owner        string
	weight       float64
	launchTplID  string
	launchTplVer string

	holdsCapacity bool // counted in its pool
	purged        bool

	// visibleAt is when other calls start to see the instance (eventual
	// consistency); ftags are the tags its tag filters see.
	visibleAt time.Time
	ftags     map[string]string
	// failLaunch, when set, is the state reason with which the instance
	// goes from pending to terminated instead of running.
	failLaunch stateReason
	// shutdownBehavior is InstanceInitiatedShutdownBehavior: stop ("") or
	// terminate.
	shutdownBehavior string
}

func (in *instance) live() bool {
	return in.state == statePending || in.state == stateRunning
}

// checkLaunch validates a launch's instance type, AMI, subnet and
// security groups as RunInstances does before anything else (a dry run
// stops there). Call with the lock held.
func (r *Region) checkLaunch(spec launchSpec) (*instanceType, *image, *subnet, []string, error) {
	typ := r.types[spec.instanceType]
	if typ == nil {
		return nil, nil, nil, nil, errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for InstanceType.", spec.instanceType))
	}
	imageID, err := r.resolveAlias(spec.imageID)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	img := r.images[imageID]
	if img == nil {
		return nil, nil, nil, nil, amiError(imageID)
	}
	if img.arch != typ.arch {
		return nil, nil, nil, nil, errInvalidParameterValue(fmt.Sprintf("The architecture '%s' of the specified instance type does not match the architecture '%s' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again. You can use 'describe-instance-types' or 'describe-images' to discover the architecture of the instance type or AMI.", typ.arch, img.arch))
	}
	var sn *subnet
	if spec.subnetID == "" {
		sn = r.defaultSubnet()
	} else if sn = r.subnetBy[spec.subnetID]; sn == nil {
		return nil, nil, nil, nil, &APIError{Code: "InvalidSubnetID.NotFound", Message: fmt.Sprintf("The subnet ID '%s' does not exist", spec.subnetID), Status: 400}
	}
	sgs := spec.sgIDs
	if len(sgs) == 0 {
		sgs = []string{r.sgs[0].id}
	}
	for _, g := range sgs {
		if r.sgByID(g) == nil {
			return nil, nil, nil, nil, &APIError{Code: "InvalidGroup.NotFound", Message: fmt.Sprintf("The security group '%s' does not exist in VPC '%s'", g, r.vpc.id), Status: 400}
		}
	}
	return typ, img, sn, sgs, nil
}

// launch starts between min and max instances of spec in its pool, or none
// with InsufficientInstanceCapacity when fewer than min fit. Call with the
// lock held. All instances share one new reservation. They start pending
// and run after Options.LaunchDelay.
func (r *Region) launch(spec launchSpec, minCount, maxCount int) ([]*instance, error) {
	typ, img, sn, sgs, err := r.checkLaunch(spec)
	if err != nil {
		return nil, err
	}
	if spec.spot && spec.maxPrice != "" {
		mp, err := strconv.ParseFloat(spec.maxPrice, 64)
		if err != nil || mp <= 0 {
			return nil, errInvalidParameterValue(fmt.Sprintf("Invalid max price: %s", spec.maxPrice))
		}
		if sp := r.spotPrice(typ, sn.az); mp < sp {
			return nil, &APIError{Code: "SpotMaxPriceTooLow", Message: fmt.Sprintf("Your Spot request price of %s is lower than the minimum required Spot request fulfillment price of %s.", spec.maxPrice, formatPrice(sp)), Status: 400}
		}
	}
	p := r.pool(typ.name, sn.az)
	n := min(maxCount, p.available(), sn.availableIPs())
	if n < minCount || n == 0 {
		if sn.availableIPs() < minCount {
			return nil, &APIError{Code: "InsufficientFreeAddressesInSubnet", Message: fmt.Sprintf("There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", sn.id), Status: 400}
		}
		return nil, r.iceError(typ.name, sn.az)
	}
	now := r.now
	resID := r.newID("r-")
	out := make([]*instance, 0, n)
	for i := range n {
		ip, _ := sn.allocIP()
		r.seq++
		in := &instance{
			id:            r.newID("i-"),
			reservationID: resID,
			seq:           r.seq,
			launchIndex:   i,
			typ:           typ,
			subnet:        sn,
			imageID:       img.id,
			keyName:       spec.keyName,
			sgIDs:         append([]string(nil), sgs...),
			iamProfile:    spec.iamProfile,
			userData:      spec.userData,
			blockDevices:  spec.blockDevices,
			tags:          make(map[string]string, len(spec.tags)),
			clientToken:   spec.clientToken,
			state:         statePending,
			stateChanged:  now,
			launchTime:    now,
			privateIP:     ip,
			privateDNS:    r.privateDNS(ip),
			spot:          spec.spot,
			maxPrice:      spec.maxPrice,
			owner:         spec.owner,
			weight:        spec.weight,
			launchTplID:   spec.launchTplID,
			launchTplVer:  spec.launchTplVer,
			holdsCapacity: true,
		}
		for k, v := range spec.tags {
			in.tags[k] = v
		}
		in.ftags = maps.Clone(in.tags)
		in.visibleAt = r.visibleFrom()
		in.shutdownBehavior = spec.shutdownBehavior
		in.failLaunch = r.drawLaunchFailure()
		if in.weight == 0 {
			in.weight = 1
		}
		p.used++
		if spec.spot {
			sr := r.newSpotRequest(in, spec)
			in.spotRequestID = sr.id
		}
		r.instances[in.id] = in
		r.order = append(r.order, in)
		r.addVolumes(in)
		out = append(out, in)
		r.schedule(now.Add(r.opts.LaunchDelay), func(at time.Time) {
			if in.state != statePending {
				return
			}
			if in.failLaunch.code != "" {
				// EC2 User Guide, "Troubleshoot Amazon EC2 instance launch
				// issues", "Instance terminates immediately": pending, then
				// terminated with the reason.
				r.setState(in, stateTerminated, at, in.failLaunch)
				return
			}
			r.setState(in, stateRunning, at, reasonNone)
		})
	}
	r.log.Debug("launched", "count", n, "type", typ.name, "az", sn.az, "reservation", resID, "owner", spec.owner, "spot", spec.spot)
	return out, nil
}

func (r *Region) iceError(typ, az string) *APIError {
	var others []string
	for _, s := range r.subnets {
		if s.az != az && r.pool(typ, s.az).available() > 0 {
			others = append(others, s.az)
		}
	}
	msg := fmt.Sprintf("We currently do not have sufficient %s capacity in the Availability Zone you requested (%s). Our system will be working on provisioning additional capacity.", typ, az)
	if len(others) > 0 {
		msg += fmt.Sprintf(" You can currently get %s capacity by not specifying an Availability Zone in your request or choosing %s.", typ, strings.Join(others, ", "))
	}
	return &APIError{Code: "InsufficientInstanceCapacity", Message: msg, Status: 500}
}

func (r *Region) sgByID(id string) *securityGroup {
	for _, g := range r.sgs {
		if g.id == id {
			return g
		}
	}
	return nil
}

// spotPrice is the current Spot price of a type in an AZ: the latest point
// of its Spot price history (a stable discount off the on-demand price,
// slightly different per AZ, unless the /_sim/prices lever set another).
func (r *Region) spotPrice(t *instanceType, az string) float64 {
	pts := r.spotPoints(t, az)
	return pts[len(pts)-1].price
}

func formatPrice(p float64) string { return strconv.FormatFloat(p, 'f', 6, 64) }

// setState moves an instance to a new state at time at, keeping the pool,
// subnet addresses and Spot request in step, and fires onInstanceGone when
// it stops being live. Call with the lock held.
func (r *Region) setState(in *instance, state string, at time.Time, reason stateReason) {
	if in.state == state {
		return
	}
	wasLive := in.live()
	in.state = state
	in.stateChanged = at
	if reason.code != "" {
		in.reason = reason
	}
	if state == stateRunning {
		in.reason = reasonNone
	}
	switch state {
	case stateStopped, stateTerminated:
		if in.holdsCapacity {
			r.pool(in.typ.name, in.subnet.az).used--
			in.holdsCapacity = false
		}
	}
	if state == stateTerminated {
		in.subnet.releaseIP(in.privateIP)
		r.schedule(at.Add(r.retention()), func(time.Time) { r.purge(in) })
	}
	if wasLive && !in.live() {
		for _, f := range r.onInstanceGone {
			f(in, at)
		}
	}
	if in.spotRequestID != "" {
		r.spotInstanceStateChanged(in, at)
	}
	r.stateChangeEvent(in, state, at) // sqs.go
}

// terminate starts terminating an instance (shutting-down now, terminated
// after TerminateDelay) and returns its previous state. Terminated and
// shutting-down instances are left alone. Call with the lock held.
func (r *Region) terminate(in *instance, reason stateReason) (previous string) {
	previous = in.state
	if in.state == stateTerminated || in.state == stateShuttingDown {
		return previous
	}
	at := r.now
	if in.state == stateStopped {
		// a stopped instance goes straight to terminated, as in AWS
		r.setState(in, stateTerminated, at, reason)
		return previous
	}
	in.transitionNote = fmt.Sprintf("User initiated (%s)", at.UTC().Format("2006-01-02 15:04:05 MST"))
	r.setState(in, stateShuttingDown, at, reason)
	r.schedule(at.Add(r.opts.TerminateDelay), func(t time.Time) {
		if in.state == stateShuttingDown {
			r.setState(in, stateTerminated, t, reason)
		}
	})
	return previous
}

// stop starts stopping an instance (stopping now, stopped after
// TerminateDelay) and returns its previous state. Call with the lock held.
func (r *Region) stop(in *instance, reason stateReason) (previous string) {
	previous = in.state
	if !in.live() {
		return previous
	}
	at := r.now
	in.transitionNote = fmt.Sprintf("User initiated (%s)", at.UTC().Format("2006-01-02 15:04:05 MST"))
	r.setState(in, stateStopping, at, reason)
	r.schedule(at.Add(r.opts.TerminateDelay), func(t time.Time) {
		if in.state == stateStopping {
			r.setState(in, stateStopped, t, reason)
		}
	})
	return previous
}

func (r *Region) purge(in *instance) {
	if in.state != stateTerminated || in.purged {
		return
	}
	in.purged = true
	delete(r.instances, in.id)
	r.dropVolumes(in)
	r.purged++
}

// retention is how long one terminated instance stays visible: the fixed
// Options.TerminatedRetention, else a draw in [5m, 1h] (EC2 API Reference,
// DescribeInstances: "Recently terminated instances might appear in the
// returned results. This interval is usually less than one hour.").
func (r *Region) retention() time.Duration {
	if r.opts.TerminatedRetention > 0 {
		return r.opts.TerminatedRetention
	}
	const lo, hi = 5 * time.Minute, time.Hour
	return lo + time.Duration(r.rng.Int64N(int64(hi-lo)+1))
}

// AMIAliasPrefix starts an ImageId that names a Systems Manager parameter
// instead of an AMI (EC2 User Guide, "Use a Systems Manager parameter
// instead of an AMI ID"; API Reference, FleetLaunchTemplateOverridesRequest
// ImageId: "The Systems Manager parameter will resolve to an AMI ID on
// launch").
const AMIAliasPrefix = "resolve:ssm:"

// resolveAlias turns resolve:ssm:NAME (or NAME:VERSION) into the AMI id
// the parameter holds; any other id is returned as is. Call with the lock
// held.
func (r *Region) resolveAlias(imageID string) (string, error) {
	name, ok := strings.CutPrefix(imageID, AMIAliasPrefix)
	if !ok {
		return imageID, nil
	}
	p := r.params[name]
	if i := strings.LastIndexByte(name, ':'); p == nil && i > 0 {
		p = r.params[name[:i]]
	}
	if p == nil {
		return "", errInvalidParameterValue(fmt.Sprintf("The parameter %s of the ImageId %s does not exist or is not an AMI parameter.", name, imageID))
	}
	return p.value, nil
}

// checkNoAlias refuses an AMI alias in a fleet of type request or
// maintain, or a Spot Fleet (API Reference, FleetLaunchTemplateOverrides
// ImageId: "This parameter is only available for fleets of type instant.
// For fleets of type maintain and request, you must specify the AMI ID in
// the launch template.").
func checkNoAlias(pools []*fleetPool, what string) error {
	for _, fp := range pools {
		if strings.HasPrefix(fp.base.imageID, AMIAliasPrefix) {
			return errInvalidParameterValue(fmt.Sprintf("The ImageId %s of launch template %s is a Systems Manager parameter; %s needs an AMI ID in the launch template (aliases are only available for EC2 Fleets of type instant).", fp.base.imageID, fp.ltID, what))
		}
	}
	return nil
}
