package awssim

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Auto Scaling groups: CreateAutoScalingGroup, UpdateAutoScalingGroup,
// DescribeAutoScalingGroups, DescribeAutoScalingInstances,
// SetDesiredCapacity, TerminateInstanceInAutoScalingGroup,
// DetachInstances, DeleteAutoScalingGroup, CreateOrUpdateTags,
// DescribeScalingActivities.

// ASGNameTag is the tag Auto Scaling puts on the instances of a group.
const ASGNameTag = "aws:autoscaling:groupName"

const asgOwnerPrefix = "asg:"

// maxActivities is how many scaling activities a group keeps.
const maxActivities = 100

type asgTag struct {
	key, value string
	propagate  bool
}

type asgLTSpec struct {
	id, name, version string
}

type asgOverride struct {
	instanceType string
	weight       string
}

type asgDistribution struct {
	odBase, odPct           int
	spotAlloc, odAlloc      string
	spotPools               int
	spotMaxPrice            string
	odBaseSet, odPctSet     bool
	spotPoolsSet            bool
	spotAllocSet, odAllocSt bool
}

type asgInstance struct {
	in          *instance
	pool        *fleetPool
	terminating bool // by TerminateInstanceInAutoScalingGroup, scale-in or deletion
	unhealthy   bool
	// protected is the instance's ProtectedFromScaleIn setting; it takes
	// effect once the instance is InService (Pending instances are never
	// protected).
	protected bool
	// launching is the activity launching the instance, InProgress while
	// it is pending.
	launching *asgActivity
}

// inService reports whether the instance is InService: running, healthy,
// not leaving.
func (gi *asgInstance) inService() bool {
	return gi.in.state == stateRunning && !gi.terminating && !gi.unhealthy
}

type asgActivity struct {
	id, description, cause, status, message, details string
	start, end                                       time.Time
	progress                                         int
}

type asGroup struct {
	name, arn   string
	created     time.Time
	min, max    int
	desired     int
	desiredType string

	lt        *asgLTSpec // plain LaunchTemplate
	mixed     bool
	mixedLT   asgLTSpec
	overrides []asgOverride
	dist      asgDistribution

	vpcZoneID string
	subnets   []*subnet
	tags      map[string]*asgTag

	pools      []*fleetPool
	spotAlloc  string
	odAlloc    string
	poolsToUse int

	m          members
	inst       map[string]*asgInstance
	leaving    map[string]*asgInstance // members no longer live, until terminated
	activities []*asgActivity
	deleting   bool

	// newProtected is NewInstancesProtectedFromScaleIn.
	newProtected bool
	// visibleAt: eventual consistency (consistency.go).
	visibleAt time.Time
	// scaleAt is the earliest time the next scaling activity runs: calls
	// that change the capacity only ask for one (launches happen in
	// scaling activities, after the call returns).
	scaleAt time.Time
}

type asgService struct {
	r      *Region
	groups map[string]*asGroup
	order  []*asGroup
}

func (r *Region) registerASGActions() {
	s := &asgService{r: r, groups: map[string]*asGroup{}}
	r.autoscaling["CreateAutoScalingGroup"] = s.createGroup
	r.autoscaling["UpdateAutoScalingGroup"] = s.updateGroup
	r.autoscaling["DescribeAutoScalingGroups"] = s.describeGroups
	r.autoscaling["DescribeAutoScalingInstances"] = s.describeInstances
	r.autoscaling["SetDesiredCapacity"] = s.setDesiredCapacity
	r.autoscaling["TerminateInstanceInAutoScalingGroup"] = s.terminateInstance
	r.autoscaling["DetachInstances"] = s.detachInstances
	r.autoscaling["DeleteAutoScalingGroup"] = s.deleteGroup
	r.autoscaling["CreateOrUpdateTags"] = s.createOrUpdateTags
	r.autoscaling["DescribeScalingActivities"] = s.describeActivities
	r.autoscaling["SetInstanceProtection"] = s.setInstanceProtection
	r.onInstanceGone = append(r.onInstanceGone, func(in *instance, at time.Time) {
		if !strings.HasPrefix(in.owner, asgOwnerPrefix) {
			return
		}
		g := s.groups[in.owner[len(asgOwnerPrefix):]]
		if g == nil {
			return
		}
		g.m.gone(in)
		if gi := g.inst[in.id]; gi != nil {
			g.leaving[in.id] = gi
		}
		if gi := g.inst[in.id]; gi != nil && !gi.terminating {
			gi.unhealthy = true
			s.activity(g, at, "Terminating EC2 instance: "+in.id,
				fmt.Sprintf("At %s an instance was taken out of service in response to an EC2 health check indicating it has been terminated or stopped.", at.UTC().Format(time.RFC3339)),
				"InProgress", "")
		}
	})
	r.tickers = append(r.tickers, s.tick)
}

func errASGNotFound(name string) *APIError {
	return errValidation(fmt.Sprintf("AutoScalingGroup name not found - AutoScalingGroup '%s' not found", name))
}

func (s *asgService) group(name string) (*asGroup, error) {
	g := s.groups[name]
	if g == nil || g.deleting || !s.r.visible(g.visibleAt) {
		return nil, errASGNotFound(name)
	}
	return g, nil
}

// asgActivityDelay bounds how long after a call the scaling activity it
// asks for starts.
const asgActivityDelay = 5 * time.Second

// later asks for a scaling activity of g, which starts a random delay in
// [1s, asgActivityDelay] from now (Auto Scaling User Guide, "Verify a
// scaling activity for an Auto Scaling group": the group's changes are
// carried out by scaling activities, which describe-scaling-activities
// shows in progress). Call with the lock held.
func (s *asgService) later(g *asGroup) {
	at := s.r.now.Add(time.Second + time.Duration(s.r.rng.Int64N(int64(asgActivityDelay-time.Second)+1)))
	if g.scaleAt.IsZero() || g.scaleAt.Before(s.r.now) || at.Before(g.scaleAt) {
		g.scaleAt = at
	}
}

// ---------------------------------------------------------------------------
// create / update

func (s *asgService) createGroup(c *call) (any, error) {
	r := s.r
	p := c.p
	name := p.reqStr("AutoScalingGroupName")
	minSize := p.reqInt("MinSize")
	maxSize := p.reqInt("MaxSize")
	desired := p.intOr("DesiredCapacity", minSize)
	if err := c.err(); err != nil {
		return nil, err
	}
	if len(name) > 255 {
		return nil, errValidation("1 validation error detected: Value at 'autoScalingGroupName' failed to satisfy constraint: Member must have length less than or equal to 255")
	}
	if g := s.groups[name]; g != nil {
		return nil, &APIError{Code: "AlreadyExists", Message: fmt.Sprintf("AutoScalingGroup by this name already exists - A group with the name %s already exists", name), Status: 400}
	}
	g := &asGroup{name: name, created: c.now, inst: map[string]*asgInstance{}, leaving: map[string]*asgInstance{}, tags: map[string]*asgTag{},
		arn: fmt.Sprintf("arn:aws:autoscaling:%s:%s:autoScalingGroup:%s:autoScalingGroupName/%s", r.name, AccountID, r.newUUIDID(""), name)}
	if err := s.configure(g, p, true); err != nil {
		return nil, err
	}
	if err := checkSizes(minSize, maxSize, desired); err != nil {
		return nil, err
	}
	g.min, g.max, g.desired = minSize, maxSize, desired
	for _, t := range p.structs("Tags.member") {
		tag, err := readASGTag(t, name)
		if err != nil {
			return nil, err
		}
		g.tags[tag.key] = tag
	}
	g.visibleAt = r.visibleFrom()
	s.groups[name] = g
	s.order = append(s.order, g)
	s.later(g)
	r.log.Debug("auto scaling group created", "group", name, "desired", desired)
	return nil, nil
}

func checkSizes(minSize, maxSize, desired int) error {
	if minSize < 0 || maxSize < 0 || desired < 0 {
		return errValidation("MinSize, MaxSize and DesiredCapacity must not be negative.")
	}
	if minSize > maxSize {
		return errValidation(fmt.Sprintf("Max bound, %d, must be greater than or equal to min bound, %d", maxSize, minSize))
	}
	if desired < minSize || desired > maxSize {
		return errValidation(fmt.Sprintf("Desired capacity:%d must be between the specified min size:%d and max size:%d", desired, minSize, maxSize))
	}
	return nil
}

func readASGTag(t params, group string) (*asgTag, error) {
	tag := &asgTag{key: t.reqStr("Key"), value: t.str("Value"), propagate: t.boolOr("PropagateAtLaunch", false)}
	if err := t.Err(); err != nil {
		return nil, errValidation(err.(*APIError).Message)
	}
	if strings.HasPrefix(tag.key, "aws:") {
		return nil, errValidation("Tag keys starting with 'aws:' are reserved for internal use")
	}
	if rt := t.str("ResourceType"); rt != "" && rt != "auto-scaling-group" {
		return nil, errValidation(fmt.Sprintf("Invalid resource type: %s", rt))
	}
	if id := t.str("ResourceId"); id != "" && id != group {
		return nil, errValidation(fmt.Sprintf("The tag's ResourceId '%s' does not match the group '%s'", id, group))
	}
	return tag, nil
}

// configure reads the launch source, distribution and subnets of a
// Create/UpdateAutoScalingGroup call into g; on update, absent parameters
// keep their values.
func (s *asgService) configure(g *asGroup, p params, create bool) error {
	r := s.r
	hasLT, hasMixed := p.has("LaunchTemplate"), p.has("MixedInstancesPolicy")
	if create && !hasLT && !hasMixed {
		if p.has("LaunchConfigurationName") || p.has("InstanceId") {
			return errValidation("Launch configurations and instance ids are not supported by this simulated region; use a LaunchTemplate or a MixedInstancesPolicy.")
		}
		return errValidation("Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.")
	}
	if hasLT && hasMixed {
		return errValidation("Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter, not more than one.")
	}
	if p.has("NewInstancesProtectedFromScaleIn") || create {
		g.newProtected = p.boolOr("NewInstancesProtectedFromScaleIn", false)
	}
	if dt := p.str("DesiredCapacityType"); dt != "" {
		if dt != "units" {
			return errValidation(fmt.Sprintf("DesiredCapacityType '%s' is only supported with attribute-based instance type selection; this simulated region supports 'units'.", dt))
		}
		g.desiredType = dt
	}
	if hasLT {
		lp := p.sub("LaunchTemplate")
		g.lt = &asgLTSpec{id: lp.str("LaunchTemplateId"), name: lp.str("LaunchTemplateName"), version: lp.str("Version")}
		g.mixed = false
	}
	if hasMixed {
		mp := p.sub("MixedInstancesPolicy")
		ls := mp.sub("LaunchTemplate.LaunchTemplateSpecification")
		g.mixedLT = asgLTSpec{id: ls.str("LaunchTemplateId"), name: ls.str("LaunchTemplateName"), version: ls.str("Version")}
		g.overrides = nil
		for _, ov := range mp.structs("LaunchTemplate.Overrides.member") {
			g.overrides = append(g.overrides, asgOverride{instanceType: ov.str("InstanceType"), weight: ov.str("WeightedCapacity")})
		}
		d := mp.sub("InstancesDistribution")
		g.dist = asgDistribution{
			odBase: d.intOr("OnDemandBaseCapacity", 0), odPct: d.intOr("OnDemandPercentageAboveBaseCapacity", 100),
			spotAlloc: d.str("SpotAllocationStrategy"), odAlloc: d.str("OnDemandAllocationStrategy"),
			spotPools: d.intOr("SpotInstancePools", 2), spotMaxPrice: d.str("SpotMaxPrice"),
			odBaseSet: d.has("OnDemandBaseCapacity"), odPctSet: d.has("OnDemandPercentageAboveBaseCapacity"),
			spotPoolsSet: d.has("SpotInstancePools"), spotAllocSet: d.has("SpotAllocationStrategy"), odAllocSt: d.has("OnDemandAllocationStrategy"),
		}
		g.mixed = true
		g.lt = nil
	}
	if p.has("VPCZoneIdentifier") || create {
		g.vpcZoneID = p.str("VPCZoneIdentifier")
		g.subnets = nil
		if g.vpcZoneID != "" {
			for _, id := range strings.Split(g.vpcZoneID, ",") {
				id = strings.TrimSpace(id)
				sn := r.subnetBy[id]
				if sn == nil {
					return errValidation(fmt.Sprintf("The subnet ID '%s' does not exist", id))
				}
				g.subnets = append(g.subnets, sn)
			}
		} else {
			for _, az := range p.list("AvailabilityZones.member") {
				sn := r.subnetInAZ(az)
				if sn == nil {
					return errValidation(fmt.Sprintf("The availability zone '%s' is not legal", az))
				}
				g.subnets = append(g.subnets, sn)
			}
		}
		if len(g.subnets) == 0 {
			return errValidation("At least one Availability Zone or VPC Subnet is required.")
		}
	}
	if err := p.Err(); err != nil {
		if ae, ok := err.(*APIError); ok {
			return errValidation(ae.Message)
		}
		return err
	}
	return s.buildPools(g)
}

// buildPools resolves the group's launch template(s) into pools: one per
// override (or the template alone) and subnet.
func (s *asgService) buildPools(g *asGroup) error {
	r := s.r
	spec := g.mixedLT
	if g.lt != nil {
		spec = *g.lt
	}
	lt, v, err := r.resolveLaunchTemplate(spec.id, spec.name, spec.version)
	if err != nil {
		return errValidation("You must use a valid fully-formed launch template. " + asAPIError(err).Message)
	}
	var pools []*fleetPool
	type ovr struct {
		typ    string
		weight float64
	}
	ovs := []ovr{{}}
	if g.mixed {
		if len(g.overrides) > 0 {
			ovs = nil
		}
		for _, o := range g.overrides {
			w := 0.0
			if o.weight != "" {
				n, err := strconv.Atoi(o.weight)
				if err != nil || n < 1 || n > 999 {
					return errValidation(fmt.Sprintf("WeightedCapacity must be an integer between 1 and 999, got '%s'", o.weight))
				}
				w = float64(n)
			}
			if o.instanceType == "" {
				return errValidation("An override must specify an InstanceType.")
			}
			if r.types[o.instanceType] == nil {
				return errValidation(fmt.Sprintf("The instance type '%s' is not supported.", o.instanceType))
			}
			ovs = append(ovs, ovr{o.instanceType, w})
		}
		g.spotAlloc, g.odAlloc = allocLowestPrice, allocPrioritized
		if g.dist.spotAlloc != "" {
			a, ok := normAlloc(g.dist.spotAlloc)
			if !ok || a != g.dist.spotAlloc || a == allocPrioritized {
				return errValidation(fmt.Sprintf("Invalid SpotAllocationStrategy '%s'. Valid values: lowest-price, capacity-optimized, capacity-optimized-prioritized, price-capacity-optimized", g.dist.spotAlloc))
			}
			g.spotAlloc = a
		}
		switch g.dist.odAlloc {
		case "", "prioritized":
		case "lowest-price":
			g.odAlloc = allocLowestPrice
		default:
			return errValidation(fmt.Sprintf("Invalid OnDemandAllocationStrategy '%s'. Valid values: prioritized, lowest-price", g.dist.odAlloc))
		}
		if g.dist.odPct < 0 || g.dist.odPct > 100 {
			return errValidation("OnDemandPercentageAboveBaseCapacity must be between 0 and 100")
		}
		g.poolsToUse = 1
		if g.spotAlloc == allocLowestPrice {
			g.poolsToUse = g.dist.spotPools
		}
	}
	for i, o := range ovs {
		for _, sn := range g.subnets {
			fp := &fleetPool{idx: len(pools), base: v.data.spec(), ltID: lt.id, ltName: lt.name, ltVersion: spec.version}
			fp.base.launchTplID = lt.id
			fp.base.launchTplVer = strconv.FormatInt(v.number, 10)
			fp.base.tags["aws:ec2launchtemplate:id"] = lt.id
			fp.base.tags["aws:ec2launchtemplate:version"] = fp.base.launchTplVer
			fp.base.subnetID = sn.id
			if o.typ != "" {
				fp.base.instanceType = o.typ
			}
			fp.weight = o.weight
			fp.priority, fp.hasPriority = float64(i), true
			fp.maxPrice = g.dist.spotMaxPrice
			pools = append(pools, fp)
		}
	}
	g.pools = pools
	return nil
}

func (s *asgService) updateGroup(c *call) (any, error) {
	p := c.p
	name := p.reqStr("AutoScalingGroupName")
	if err := c.err(); err != nil {
		return nil, err
	}
	g, err := s.group(name)
	if err != nil {
		return nil, err
	}
	minSize, maxSize, desired := p.intOr("MinSize", g.min), p.intOr("MaxSize", g.max), p.intOr("DesiredCapacity", -1)
	if err := c.err(); err != nil {
		return nil, errValidation(err.(*APIError).Message)
	}
	if desired < 0 {
		desired = min(max(g.desired, minSize), maxSize)
	}
	if err := checkSizes(minSize, maxSize, desired); err != nil {
		return nil, err
	}
	saved := *g
	if err := s.configure(g, p, false); err != nil {
		*g = saved
		return nil, err
	}
	g.min, g.max, g.desired = minSize, maxSize, desired
	s.later(g)
	return nil, nil
}

// ---------------------------------------------------------------------------
// capacity

// targets splits the desired capacity into on-demand and Spot units.
func (g *asGroup) targets() (od, spot int) {
	if !g.mixed {
		if len(g.pools) > 0 && g.pools[0].base.spot {
			return 0, g.desired
		}
		return g.desired, 0
	}
	base := min(g.dist.odBase, g.desired)
	above := g.desired - base
	odAbove := int(math.Ceil(float64(above) * float64(g.dist.odPct) / 100))
	return base + odAbove, above - odAbove
}

// reconcile scales the group towards its desired capacity: launches what
// is missing (balanced across AZs), terminates what exceeds.
func (s *asgService) reconcile(g *asGroup) {
	if g.deleting {
		return
	}
	od, sp := g.targets()
	for _, spot := range []bool{false, true} {
		target := float64(od)
		if spot {
			target = float64(sp)
		}
		have := g.activeUnits(spot)
		switch {
		case have+1e-9 < target:
			s.scaleOut(g, spot, target-have)
		case have > target+1e-9:
			s.scaleIn(g, spot, target)
		}
	}
}

// activeUnits sums the weights of the live members of one lifecycle that
// are not leaving.
func (g *asGroup) activeUnits(spot bool) float64 {
	u := 0.0
	for _, gi := range g.inst {
		if gi.in.spot == spot && gi.in.live() && !gi.terminating {
			u += gi.in.weight
		}
	}
	return u
}

func (s *asgService) scaleOut(g *asGroup, spot bool, need float64) {
	r := s.r
	strategy := g.odAlloc
	if spot {
		strategy = g.spotAlloc
	}
	if !g.mixed {
		strategy = allocPrioritized
	}
	azCount := map[string]int{}
	for _, gi := range g.inst {
		if gi.in.live() && !gi.terminating {
			azCount[gi.in.subnet.az]++
		}
	}
	failed := map[*fleetPool]bool{}
	count := map[*fleetPool]int{}
	var got float64
	var launched []string
	var fails []*APIError
	before := g.m.total()
	for got+1e-9 < need {
		// the AZ with the fewest instances among those still able to launch
		var inAZ []*fleetPool
		bestAZ, bestN := "", math.MaxInt
		for _, sn := range g.subnets {
			if n := azCount[sn.az]; n < bestN {
				for _, fp := range g.pools {
					if !failed[fp] && fp.base.subnetID == sn.id {
						bestAZ, bestN = sn.az, n
						break
					}
				}
			}
		}
		if bestAZ == "" {
			break
		}
		for _, fp := range g.pools {
			if r.subnetBy[fp.base.subnetID].az == bestAZ {
				inAZ = append(inAZ, fp)
			}
		}
		fp, _ := r.pick(inAZ, failed, count, spot, strategy, g.poolsToUse)
		if fp == nil {
			break
		}
		spec := withTags(fp.base, g.propagated())
		spec.spot = spot
		spec.maxPrice = ""
		if spot {
			spec.maxPrice = fp.maxPrice
		}
		spec.owner = asgOwnerPrefix + g.name
		spec.weight = fp.units()
		ins, err := r.launch(spec, 1, 1)
		if err != nil {
			failed[fp] = true
			fails = append(fails, asAPIError(err))
			continue
		}
		in := ins[0]
		g.m.add(in)
		g.inst[in.id] = &asgInstance{in: in, pool: fp, protected: g.newProtected}
		count[fp]++
		azCount[in.subnet.az]++
		got += fp.units()
		launched = append(launched, in.id)
	}
	now := r.now
	after := g.m.total()
	cause := fmt.Sprintf("At %s an instance was started in response to a difference between desired and actual capacity, increasing the capacity from %s to %s.",
		now.UTC().Format(time.RFC3339), fmtUnits(before), fmtUnits(after))
	for _, id := range launched {
		a := s.activity(g, now, "Launching a new EC2 instance: "+id, cause, "InProgress", "")
		a.progress = 30
		g.inst[id].launching = a
	}
	if len(fails) > 0 {
		msg := fails[0].Message + " Launching EC2 instance failed."
		last := g.lastActivity()
		if last == nil || last.status != "Failed" || last.message != msg {
			s.activity(g, now, "Launching a new EC2 instance.  Status Reason: "+msg,
				fmt.Sprintf("At %s an instance was started in response to a difference between desired and actual capacity, increasing the capacity from %s to %s.",
					now.UTC().Format(time.RFC3339), fmtUnits(before), fmtUnits(float64(g.desired))), "Failed", msg)
		}
	}
}

// scaleIn terminates instances of one lifecycle beyond target: from the AZ
// with the most instances, newest first, never going under target.
func (s *asgService) scaleIn(g *asGroup, spot bool, target float64) {
	have := g.activeUnits(spot)
	for have > target+1e-9 {
		azCount := map[string]int{}
		var cands []*asgInstance
		for _, gi := range g.inst {
			if gi.in.live() && !gi.terminating {
				azCount[gi.in.subnet.az]++
				// Scale-in protection holds once InService (User Guide,
				// "Use instance scale-in protection": "Instance scale-in
				// protection starts when the instance state is InService");
				// a Pending instance can be taken.
				if gi.protected && gi.inService() {
					continue
				}
				if gi.in.spot == spot && have-gi.in.weight >= target-1e-9 {
					cands = append(cands, gi)
				}
			}
		}
		if len(cands) == 0 {
			return
		}
		sort.Slice(cands, func(i, j int) bool {
			ai, aj := azCount[cands[i].in.subnet.az], azCount[cands[j].in.subnet.az]
			if ai != aj {
				return ai > aj
			}
			return cands[i].in.seq > cands[j].in.seq
		})
		gi := cands[0]
		have -= gi.in.weight
		s.terminateMember(g, gi, fmt.Sprintf("At %s a user request explicitly set group desired capacity changing the desired capacity to %d. An instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity.", s.r.now.UTC().Format(time.RFC3339), g.desired))
	}
}

// terminateMember takes an instance out of service: the activity starts
// now, the EC2 termination a moment later (API Reference,
// TerminateInstanceInAutoScalingGroup: "This call simply makes a
// termination request. The instance is not terminated immediately.").
func (s *asgService) terminateMember(g *asGroup, gi *asgInstance, cause string) *asgActivity {
	gi.terminating = true
	a := s.activity(g, s.r.now, "Terminating EC2 instance: "+gi.in.id, cause, "InProgress", "")
	at := s.r.now.Add(time.Duration(s.r.rng.Int64N(int64(asgActivityDelay) + 1)))
	in := gi.in
	s.r.schedule(at, func(time.Time) {
		if in.state != stateTerminated && in.state != stateShuttingDown {
			s.r.terminate(in, reasonUserTerminate)
		}
	})
	return a
}

// propagated returns the tags a group puts on the instances it launches.
func (g *asGroup) propagated() map[string]string {
	out := map[string]string{ASGNameTag: g.name}
	for _, t := range g.tags {
		if t.propagate {
			out[t.key] = t.value
		}
	}
	return out
}

func (s *asgService) activity(g *asGroup, at time.Time, desc, cause, status, msg string) *asgActivity {
	a := &asgActivity{id: s.r.newUUIDID(""), description: desc, cause: cause, status: status, message: msg, start: at,
		details: fmt.Sprintf(`{"Subnet ID":"%s","Availability Zone":"%s"}`, g.subnets[0].id, g.subnets[0].az)}
	if status != "InProgress" {
		a.end, a.progress = at, 100
	}
	g.activities = append(g.activities, a)
	if len(g.activities) > maxActivities {
		g.activities = g.activities[len(g.activities)-maxActivities:]
	}
	return a
}

func (g *asGroup) lastActivity() *asgActivity {
	if len(g.activities) == 0 {
		return nil
	}
	return g.activities[len(g.activities)-1]
}

// tick forgets terminated members, terminates stopped ones (they fail the
// EC2 health check), completes activities, scales groups and finishes
// deletions.
func (s *asgService) tick(now time.Time) {
	keep := s.order[:0]
	for _, g := range s.order {
		for _, gi := range g.inst {
			a := gi.launching
			if a == nil || a.status != "InProgress" || gi.in.state == statePending {
				continue
			}
			a.end, a.progress = now, 100
			a.status = "Successful"
			if gi.in.state == stateTerminated && gi.in.reason.code != "" && gi.in.reason != reasonUserTerminate {
				a.status, a.message = "Failed", gi.in.reason.message
			}
			gi.launching = nil
		}
		for id, gi := range g.leaving {
			switch gi.in.state {
			case stateStopped:
				gi.terminating = true
				s.r.terminate(gi.in, reasonUserTerminate)
			case stateTerminated:
				delete(g.inst, id)
				delete(g.leaving, id)
				for _, a := range g.activities {
					if a.status == "InProgress" && strings.HasPrefix(a.description, "Terminating") && strings.HasSuffix(a.description, id) {
						a.status, a.end, a.progress = "Successful", now, 100
					}
				}
			}
		}
		if g.deleting && len(g.inst) == 0 {
			delete(s.groups, g.name)
			continue
		}
		keep = append(keep, g)
		if !now.Before(g.scaleAt) {
			s.reconcile(g)
		}
	}
	clear(s.order[len(keep):])
	s.order = keep
}

// ---------------------------------------------------------------------------
// other actions

func (s *asgService) setDesiredCapacity(c *call) (any, error) {
	name := c.p.reqStr("AutoScalingGroupName")
	desired := c.p.reqInt("DesiredCapacity")
	c.p.boolOr("HonorCooldown", false)
	if err := c.err(); err != nil {
		return nil, err
	}
	g, err := s.group(name)
	if err != nil {
		return nil, err
	}
	if desired > g.max {
		return nil, errValidation(fmt.Sprintf("New SetDesiredCapacity value %d is above max value %d for the AutoScalingGroup.", desired, g.max))
	}
	if desired < g.min {
		return nil, errValidation(fmt.Sprintf("New SetDesiredCapacity value %d is below min value %d for the AutoScalingGroup.", desired, g.min))
	}
	g.desired = desired
	s.later(g)
	return nil, nil
}

// findMember returns the group and membership of an instance.
func (s *asgService) findMember(id string) (*asGroup, *asgInstance) {
	in := s.r.instances[id]
	if in == nil || !strings.HasPrefix(in.owner, asgOwnerPrefix) {
		return nil, nil
	}
	g := s.groups[in.owner[len(asgOwnerPrefix):]]
	if g == nil || !s.r.visible(g.visibleAt) {
		return nil, nil
	}
	gi := g.inst[id]
	if gi == nil {
		return nil, nil
	}
	return g, gi
}

type activityXML struct {
	ActivityID           string `xml:"ActivityId"`
	AutoScalingGroupARN  string `xml:"AutoScalingGroupARN,omitempty"`
	AutoScalingGroupName string `xml:"AutoScalingGroupName"`
	Cause                string `xml:"Cause"`
	Description          string `xml:"Description"`
	Details              string `xml:"Details"`
	StartTime            string `xml:"StartTime"`
	EndTime              string `xml:"EndTime,omitempty"`
	Progress             int    `xml:"Progress"`
	StatusCode           string `xml:"StatusCode"`
	StatusMessage        string `xml:"StatusMessage,omitempty"`
}

func (g *asGroup) activityXML(a *asgActivity) activityXML {
	return activityXML{ActivityID: a.id, AutoScalingGroupARN: g.arn, AutoScalingGroupName: g.name, Cause: a.cause, Description: a.description,
		Details: a.details, StartTime: ts(a.start), EndTime: ts(a.end), Progress: a.progress, StatusCode: a.status, StatusMessage: a.message}
}

type terminateInASGResult struct {
	Activity   activityXML   `xml:"Activity"`
	Activities []activityXML `xml:"Activities>member"`
}

func (s *asgService) terminateInstance(c *call) (any, error) {
	id := c.p.reqStr("InstanceId")
	c.p.reqStr("ShouldDecrementDesiredCapacity")
	decrement := c.p.boolOr("ShouldDecrementDesiredCapacity", false)
	if err := c.err(); err != nil {
		return nil, errValidation(err.(*APIError).Message)
	}
	g, gi := s.findMember(id)
	if gi == nil || g.deleting {
		return nil, errValidation("Instance Id not found - No managed instance found for instance ID: " + id)
	}
	if gi.terminating {
		return nil, errValidation(fmt.Sprintf("The instance %s is already terminating.", id))
	}
	w := int(math.Ceil(gi.in.weight))
	if decrement && g.desired-w < g.min {
		return nil, errValidation(fmt.Sprintf("Currently, desiredSize equals minSize (%d). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.", g.min))
	}
	var cause string
	if decrement {
		g.desired -= w
		cause = fmt.Sprintf("At %s instance %s was taken out of service in response to a user request, shrinking the capacity from %d to %d.", c.now.UTC().Format(time.RFC3339), id, g.desired+w, g.desired)
	} else {
		cause = fmt.Sprintf("At %s instance %s was taken out of service in response to a user request.", c.now.UTC().Format(time.RFC3339), id)
	}
	a := s.terminateMember(g, gi, cause)
	x := g.activityXML(a)
	return &terminateInASGResult{Activity: x, Activities: []activityXML{x}}, nil
}

type activitiesResult struct {
	Activities []activityXML `xml:"Activities>member"`
	NextToken  string        `xml:"NextToken,omitempty"`
}

func (s *asgService) detachInstances(c *call) (any, error) {
	name := c.p.reqStr("AutoScalingGroupName")
	ids := c.p.list("InstanceIds.member")
	c.p.reqStr("ShouldDecrementDesiredCapacity")
	decrement := c.p.boolOr("ShouldDecrementDesiredCapacity", false)
	if err := c.err(); err != nil {
		return nil, errValidation(err.(*APIError).Message)
	}
	g, err := s.group(name)
	if err != nil {
		return nil, err
	}
	var members []*asgInstance
	units := 0
	for _, id := range ids {
		gi := g.inst[id]
		if gi == nil || gi.terminating || !gi.in.live() {
			return nil, errValidation(fmt.Sprintf("The instance %s is not part of Auto Scaling group %s.", id, name))
		}
		members = append(members, gi)
		units += int(math.Ceil(gi.in.weight))
	}
	if decrement && g.desired-units < g.min {
		return nil, errValidation(fmt.Sprintf("The number of instances to detach would make the group's desired capacity (%d) less than its min size (%d).", g.desired-units, g.min))
	}
	out := &activitiesResult{}
	for _, gi := range members {
		cause := fmt.Sprintf("At %s instance %s was detached in response to a user request.", c.now.UTC().Format(time.RFC3339), gi.in.id)
		if decrement {
			g.desired -= int(math.Ceil(gi.in.weight))
			cause = fmt.Sprintf("At %s instance %s was detached in response to a user request, shrinking the capacity to %d.", c.now.UTC().Format(time.RFC3339), gi.in.id, g.desired)
		}
		g.m.gone(gi.in)
		delete(g.inst, gi.in.id)
		delete(g.leaving, gi.in.id)
		gi.in.owner = ""
		a := s.activity(g, c.now, "Detaching EC2 instance: "+gi.in.id, cause, "Successful", "")
		out.Activities = append(out.Activities, g.activityXML(a))
	}
	s.later(g)
	return out, nil
}

func (s *asgService) deleteGroup(c *call) (any, error) {
	name := c.p.reqStr("AutoScalingGroupName")
	force := c.p.boolOr("ForceDelete", false)
	if err := c.err(); err != nil {
		return nil, errValidation(err.(*APIError).Message)
	}
	g, err := s.group(name)
	if err != nil {
		return nil, err
	}
	if !force {
		for _, gi := range g.inst {
			if gi.in.live() && !gi.terminating {
				return nil, &APIError{Code: "ResourceInUse", Message: "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance requests in the group.", Status: 400}
			}
		}
		if len(g.inst) > 0 {
			return nil, &APIError{Code: "ScalingActivityInProgress", Message: "You cannot delete an AutoScalingGroup while there are scaling activities in progress for that group.", Status: 400}
		}
		delete(s.groups, name)
		for i, x := range s.order {
			if x == g {
				s.order = append(s.order[:i], s.order[i+1:]...)
				break
			}
		}
		return nil, nil
	}
	g.desired, g.min = 0, 0
	for _, gi := range g.inst {
		if !gi.terminating && gi.in.live() {
			s.terminateMember(g, gi, fmt.Sprintf("At %s the group was deleted with ForceDelete.", c.now.UTC().Format(time.RFC3339)))
		}
	}
	g.deleting = true
	return nil, nil
}

func (s *asgService) createOrUpdateTags(c *call) (any, error) {
	tags := c.p.structs("Tags.member")
	if err := c.err(); err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		return nil, errValidation("1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null")
	}
	type upd struct {
		g   *asGroup
		tag *asgTag
	}
	var ups []upd
	for _, t := range tags {
		id := t.str("ResourceId")
		g, err := s.group(id)
		if err != nil {
			return nil, err
		}
		tag, err := readASGTag(t, id)
		if err != nil {
			return nil, err
		}
		ups = append(ups, upd{g, tag})
	}
	for _, u := range ups {
		u.g.tags[u.tag.key] = u.tag
	}
	return nil, nil
}

func (s *asgService) describeActivities(c *call) (any, error) {
	name := c.p.str("AutoScalingGroupName")
	ids := c.p.list("ActivityIds.member")
	maxRecords := c.p.intOr("MaxRecords", 100)
	token := c.p.str("NextToken")
	if err := c.err(); err != nil {
		return nil, errValidation(err.(*APIError).Message)
	}
	var all []activityXML
	for _, g := range s.order {
		if name != "" && g.name != name {
			continue
		}
		for i := len(g.activities) - 1; i >= 0; i-- { // newest first
			a := g.activities[i]
			if len(ids) == 0 || contains(ids, a.id) {
				all = append(all, g.activityXML(a))
			}
		}
	}
	start, end, next, err := asgPageBounds(len(all), maxRecords, token)
	if err != nil {
		return nil, err
	}
	return &activitiesResult{Activities: all[start:end], NextToken: next}, nil
}

// validMaxRecords checks an Auto Scaling MaxRecords against the action's
// limit.
func validMaxRecords(maxRecords, limit int) error {
	if maxRecords < 1 || maxRecords > limit {
		return errValidation(fmt.Sprintf("1 validation error detected: Value '%d' at 'maxRecords' failed to satisfy constraint: Member must have value less than or equal to %d", maxRecords, limit))
	}
	return nil
}

// asgPageBounds is pageBounds with Auto Scaling's error for a bad token.
func asgPageBounds(n, maxRecords int, token string) (start, end int, next string, err error) {
	start, end, next, err = pageBounds(n, maxRecords, token)
	if err != nil {
		return 0, 0, "", errValidation("The NextToken is invalid.")
	}
	return start, end, next, nil
}

// ---------------------------------------------------------------------------
// describe

type asgLTXML struct {
	LaunchTemplateID   string `xml:"LaunchTemplateId,omitempty"`
	LaunchTemplateName string `xml:"LaunchTemplateName,omitempty"`
	Version            string `xml:"Version,omitempty"`
}

type asgInstanceXML struct {
	AvailabilityZone     string    `xml:"AvailabilityZone"`
	HealthStatus         string    `xml:"HealthStatus"`
	InstanceID           string    `xml:"InstanceId"`
	InstanceType         string    `xml:"InstanceType"`
	LaunchTemplate       *asgLTXML `xml:"LaunchTemplate,omitempty"`
	LifecycleState       string    `xml:"LifecycleState"`
	ProtectedFromScaleIn bool      `xml:"ProtectedFromScaleIn"`
	WeightedCapacity     string    `xml:"WeightedCapacity,omitempty"`
}

type asgTagXML struct {
	Key               string `xml:"Key"`
	PropagateAtLaunch bool   `xml:"PropagateAtLaunch"`
	ResourceID        string `xml:"ResourceId"`
	ResourceType      string `xml:"ResourceType"`
	Value             string `xml:"Value"`
}

type asgOverrideXML struct {
	InstanceType     string `xml:"InstanceType,omitempty"`
	WeightedCapacity string `xml:"WeightedCapacity,omitempty"`
}

type asgDistributionXML struct {
	OnDemandAllocationStrategy          string `xml:"OnDemandAllocationStrategy"`
	OnDemandBaseCapacity                int    `xml:"OnDemandBaseCapacity"`
	OnDemandPercentageAboveBaseCapacity int    `xml:"OnDemandPercentageAboveBaseCapacity"`
	SpotAllocationStrategy              string `xml:"SpotAllocationStrategy"`
	SpotInstancePools                   int    `xml:"SpotInstancePools,omitempty"`
	SpotMaxPrice                        string `xml:"SpotMaxPrice,omitempty"`
}

type asgMixedXML struct {
	LaunchTemplate struct {
		LaunchTemplateSpecification asgLTXML         `xml:"LaunchTemplateSpecification"`
		Overrides                   []asgOverrideXML `xml:"Overrides>member"`
	} `xml:"LaunchTemplate"`
	InstancesDistribution asgDistributionXML `xml:"InstancesDistribution"`
}

type asgXML struct {
	AutoScalingGroupARN              string           `xml:"AutoScalingGroupARN"`
	AutoScalingGroupName             string           `xml:"AutoScalingGroupName"`
	AvailabilityZones                []string         `xml:"AvailabilityZones>member"`
	CapacityRebalance                bool             `xml:"CapacityRebalance"`
	CreatedTime                      string           `xml:"CreatedTime"`
	DefaultCooldown                  int              `xml:"DefaultCooldown"`
	DesiredCapacity                  int              `xml:"DesiredCapacity"`
	DesiredCapacityType              string           `xml:"DesiredCapacityType,omitempty"`
	HealthCheckGracePeriod           int              `xml:"HealthCheckGracePeriod"`
	HealthCheckType                  string           `xml:"HealthCheckType"`
	Instances                        []asgInstanceXML `xml:"Instances>member"`
	LaunchTemplate                   *asgLTXML        `xml:"LaunchTemplate,omitempty"`
	MaxSize                          int              `xml:"MaxSize"`
	MinSize                          int              `xml:"MinSize"`
	MixedInstancesPolicy             *asgMixedXML     `xml:"MixedInstancesPolicy,omitempty"`
	NewInstancesProtectedFromScaleIn bool             `xml:"NewInstancesProtectedFromScaleIn"`
	ServiceLinkedRoleARN             string           `xml:"ServiceLinkedRoleARN"`
	Status                           string           `xml:"Status,omitempty"`
	Tags                             []asgTagXML      `xml:"Tags>member"`
	TerminationPolicies              []string         `xml:"TerminationPolicies>member"`
	VPCZoneIdentifier                string           `xml:"VPCZoneIdentifier,omitempty"`
}

type describeASGResult struct {
	Groups    []asgXML `xml:"AutoScalingGroups>member"`
	NextToken string   `xml:"NextToken,omitempty"`
}

func (s *asgService) describeGroups(c *call) (any, error) {
	names := c.p.list("AutoScalingGroupNames.member")
	maxRecords := c.p.intOr("MaxRecords", 50)
	token := c.p.str("NextToken")
	type flt struct {
		name   string
		values []string
	}
	var filters []flt
	for _, f := range c.p.structs("Filters.member") {
		filters = append(filters, flt{f.str("Name"), f.list("Values.member")})
	}
	if err := c.err(); err != nil {
		return nil, errValidation(err.(*APIError).Message)
	}
	if err := validMaxRecords(maxRecords, 100); err != nil {
		return nil, err
	}
	var matched []*asGroup
	for _, g := range s.order {
		if len(names) > 0 && !contains(names, g.name) || !s.r.visible(g.visibleAt) {
			continue
		}
		ok := true
		for _, f := range filters {
			switch {
			case f.name == "tag-key":
				ok = ok && anyTag(g, func(t *asgTag) bool { return contains(f.values, t.key) })
			case f.name == "tag-value":
				ok = ok && anyTag(g, func(t *asgTag) bool { return contains(f.values, t.value) })
			case strings.HasPrefix(f.name, "tag:"):
				t := g.tags[f.name[4:]]
				ok = ok && t != nil && contains(f.values, t.value)
			case f.name == "auto-scaling-group":
				ok = ok && contains(f.values, g.name)
			default:
				return nil, errValidation(fmt.Sprintf("Filter name '%s' is invalid.", f.name))
			}
		}
		if ok {
			matched = append(matched, g)
		}
	}
	start, end, next, err := asgPageBounds(len(matched), maxRecords, token)
	if err != nil {
		return nil, err
	}
	out := &describeASGResult{NextToken: next}
	for _, g := range matched[start:end] {
		out.Groups = append(out.Groups, s.groupXML(g))
	}
	return out, nil
}

func anyTag(g *asGroup, f func(*asgTag) bool) bool {
	for _, t := range g.tags {
		if f(t) {
			return true
		}
	}
	return false
}

func (gi *asgInstance) lifecycle() string {
	switch {
	case gi.terminating || gi.unhealthy || !gi.in.live():
		if gi.in.state == stateTerminated {
			return "Terminated"
		}
		return "Terminating"
	case gi.in.state == statePending:
		return "Pending"
	}
	return "InService"
}

func (g *asGroup) instanceLT(gi *asgInstance) *asgLTXML {
	return &asgLTXML{LaunchTemplateID: gi.pool.ltID, LaunchTemplateName: gi.pool.ltName, Version: gi.pool.ltVersion}
}

func (g *asGroup) sortedMembers() []*asgInstance {
	out := make([]*asgInstance, 0, len(g.inst))
	for _, gi := range g.inst {
		out = append(out, gi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].in.seq < out[j].in.seq })
	return out
}

func (s *asgService) groupXML(g *asGroup) asgXML {
	x := asgXML{
		AutoScalingGroupARN: g.arn, AutoScalingGroupName: g.name, CreatedTime: ts(g.created), DefaultCooldown: 300,
		DesiredCapacity: g.desired, DesiredCapacityType: g.desiredType, HealthCheckType: "EC2", MaxSize: g.max, MinSize: g.min,
		ServiceLinkedRoleARN: fmt.Sprintf("arn:aws:iam::%s:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling", AccountID),
		TerminationPolicies:  []string{"Default"}, VPCZoneIdentifier: g.vpcZoneID,
		NewInstancesProtectedFromScaleIn: g.newProtected,
	}
	seen := map[string]bool{}
	for _, sn := range g.subnets {
		if !seen[sn.az] {
			seen[sn.az] = true
			x.AvailabilityZones = append(x.AvailabilityZones, sn.az)
		}
	}
	if g.deleting {
		x.Status = "Delete in progress"
	}
	if g.lt != nil {
		x.LaunchTemplate = &asgLTXML{LaunchTemplateID: g.pools[0].ltID, LaunchTemplateName: g.pools[0].ltName, Version: g.lt.version}
	}
	if g.mixed {
		m := &asgMixedXML{}
		m.LaunchTemplate.LaunchTemplateSpecification = asgLTXML{LaunchTemplateID: g.pools[0].ltID, LaunchTemplateName: g.pools[0].ltName, Version: g.mixedLT.version}
		for _, o := range g.overrides {
			m.LaunchTemplate.Overrides = append(m.LaunchTemplate.Overrides, asgOverrideXML{InstanceType: o.instanceType, WeightedCapacity: o.weight})
		}
		d := g.dist
		m.InstancesDistribution = asgDistributionXML{OnDemandAllocationStrategy: "prioritized", OnDemandBaseCapacity: d.odBase,
			OnDemandPercentageAboveBaseCapacity: d.odPct, SpotAllocationStrategy: "lowest-price", SpotMaxPrice: d.spotMaxPrice}
		if d.odAlloc != "" {
			m.InstancesDistribution.OnDemandAllocationStrategy = d.odAlloc
		}
		if d.spotAlloc != "" {
			m.InstancesDistribution.SpotAllocationStrategy = d.spotAlloc
		}
		if m.InstancesDistribution.SpotAllocationStrategy == "lowest-price" {
			m.InstancesDistribution.SpotInstancePools = d.spotPools
		}
		x.MixedInstancesPolicy = m
	}
	for _, gi := range g.sortedMembers() {
		if gi.in.state == stateTerminated {
			continue
		}
		x.Instances = append(x.Instances, g.memberXML(gi))
	}
	for _, k := range sortedKeys(g.tags) {
		t := g.tags[k]
		x.Tags = append(x.Tags, asgTagXML{Key: t.key, Value: t.value, PropagateAtLaunch: t.propagate, ResourceID: g.name, ResourceType: "auto-scaling-group"})
	}
	return x
}

func (g *asGroup) memberXML(gi *asgInstance) asgInstanceXML {
	health := "Healthy"
	if gi.unhealthy {
		health = "Unhealthy"
	}
	return asgInstanceXML{
		AvailabilityZone: gi.in.subnet.az, HealthStatus: health, InstanceID: gi.in.id, InstanceType: gi.in.typ.name,
		LaunchTemplate: g.instanceLT(gi), LifecycleState: gi.lifecycle(), WeightedCapacity: fmtUnits(gi.in.weight),
		ProtectedFromScaleIn: gi.protected,
	}
}

// asgInstanceDetailsXML is AutoScalingInstanceDetails: a group's Instance
// and the group's name.
type asgInstanceDetailsXML struct {
	AutoScalingGroupName string `xml:"AutoScalingGroupName"`
	asgInstanceXML
}

type describeASGInstancesResult struct {
	Instances []asgInstanceDetailsXML `xml:"AutoScalingInstances>member"`
	NextToken string                  `xml:"NextToken,omitempty"`
}

func (s *asgService) describeInstances(c *call) (any, error) {
	ids := c.p.list("InstanceIds.member")
	maxRecords := c.p.intOr("MaxRecords", 50)
	token := c.p.str("NextToken")
	if err := c.err(); err != nil {
		return nil, errValidation(err.(*APIError).Message)
	}
	if err := validMaxRecords(maxRecords, 50); err != nil {
		return nil, err
	}
	type member struct {
		g  *asGroup
		gi *asgInstance
	}
	var all []member
	if len(ids) > 0 {
		for _, id := range ids {
			if g, gi := s.findMember(id); gi != nil && gi.in.state != stateTerminated {
				all = append(all, member{g, gi})
			}
		}
	} else {
		for _, g := range s.order {
			for _, gi := range g.sortedMembers() {
				if gi.in.state != stateTerminated {
					all = append(all, member{g, gi})
				}
			}
		}
	}
	start, end, next, err := asgPageBounds(len(all), maxRecords, token)
	if err != nil {
		return nil, err
	}
	out := &describeASGInstancesResult{NextToken: next}
	for _, m := range all[start:end] {
		x := m.g.memberXML(m.gi)
		// DescribeAutoScalingInstances spells the health HEALTHY/UNHEALTHY.
		x.HealthStatus = strings.ToUpper(x.HealthStatus)
		out.Instances = append(out.Instances, asgInstanceDetailsXML{AutoScalingGroupName: m.g.name, asgInstanceXML: x})
	}
	return out, nil
}

// setInstanceProtection is SetInstanceProtection: the ProtectedFromScaleIn
// setting of up to 50 instances of a group (API Reference,
// SetInstanceProtection). The setting takes effect once an instance is
// InService.
func (s *asgService) setInstanceProtection(c *call) (any, error) {
	name := c.p.reqStr("AutoScalingGroupName")
	ids := c.p.list("InstanceIds.member")
	c.p.reqStr("ProtectedFromScaleIn")
	protect := c.p.boolOr("ProtectedFromScaleIn", false)
	if err := c.err(); err != nil {
		return nil, errValidation(err.(*APIError).Message)
	}
	if len(ids) == 0 {
		return nil, errValidation("1 validation error detected: Value null at 'instanceIds' failed to satisfy constraint: Member must not be null")
	}
	if len(ids) > 50 {
		return nil, errValidation("The number of instance IDs must not exceed 50.")
	}
	g, err := s.group(name)
	if err != nil {
		return nil, err
	}
	var members []*asgInstance
	for _, id := range ids {
		gi := g.inst[id]
		if gi == nil || !gi.in.live() {
			return nil, errValidation(fmt.Sprintf("The instance %s is not part of Auto Scaling group %s.", id, name))
		}
		members = append(members, gi)
	}
	for _, gi := range members {
		gi.protected = protect
	}
	return nil, nil
}
