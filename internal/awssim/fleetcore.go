package awssim

import (
	"errors"
	"maps"
	"math"
	"sort"
	"strconv"
)

// Shared machinery of the capacity launchers (EC2 Fleet, Spot Fleet, Auto
// Scaling groups): launch pools, allocation strategies, and filling a target
// counted in weighted units.

// fleetPool is one launch candidate of a fleet or group: a launch template
// version (or a Spot Fleet launch specification) with one set of overrides.
type fleetPool struct {
	idx         int
	base        launchSpec // instance type and subnet already overridden
	weight      float64    // weighted capacity, 0 = 1
	priority    float64
	hasPriority bool
	maxPrice    string // Spot max price of the pool, "" = fleet's or on-demand

	// echo of the configuration, for answers
	ltID, ltName, ltVersion string
	ovType, ovSubnet, ovAZ  string
	ovImage                 string
	ovWeight, ovPriority    *float64
	ovMaxPrice              string
}

func (fp *fleetPool) units() float64 {
	if fp.weight <= 0 {
		return 1
	}
	return fp.weight
}

// az returns the AZ the pool launches into: its subnet's, else the default
// subnet's at this moment.
func (r *Region) poolAZ(fp *fleetPool) string {
	if sn := r.subnetBy[fp.base.subnetID]; sn != nil {
		return sn.az
	}
	return r.defaultSubnet().az
}

// unitPrice is the pool's price per weighted unit, Spot or on-demand.
func (r *Region) unitPrice(fp *fleetPool, spot bool) float64 {
	t := r.types[fp.base.instanceType]
	if t == nil {
		return math.Inf(1)
	}
	p := t.price
	if spot {
		p = r.spotPrice(t, r.poolAZ(fp))
	}
	return p / fp.units()
}

func (r *Region) poolAvailable(fp *fleetPool) int {
	if r.types[fp.base.instanceType] == nil {
		return 0
	}
	return r.pool(fp.base.instanceType, r.poolAZ(fp)).available()
}

// Allocation strategies, normalised from the spellings of each API
// (lowest-price / lowestPrice / lowest-price ...).
const (
	allocLowestPrice          = "lowest-price"
	allocDiversified          = "diversified"
	allocCapacityOptimized    = "capacity-optimized"
	allocCapacityOptPrio      = "capacity-optimized-prioritized"
	allocPriceCapacityOptimal = "price-capacity-optimized"
	allocPrioritized          = "prioritized"
)

// normAlloc maps a strategy spelling to its canonical form; ok is false for
// unknown spellings.
func normAlloc(s string) (string, bool) {
	switch s {
	case "lowest-price", "lowestPrice":
		return allocLowestPrice, true
	case "diversified":
		return allocDiversified, true
	case "capacity-optimized", "capacityOptimized":
		return allocCapacityOptimized, true
	case "capacity-optimized-prioritized", "capacityOptimizedPrioritized":
		return allocCapacityOptPrio, true
	case "price-capacity-optimized", "priceCapacityOptimized":
		return allocPriceCapacityOptimal, true
	case "prioritized":
		return allocPrioritized, true
	}
	return "", false
}

// fillFailure is one pool that could not launch during a fill.
type fillFailure struct {
	pool *fleetPool
	spot bool
	err  *APIError
}

// fillResult is what one fill launched, per pool in launch order, and what
// failed.
type fillResult struct {
	units    float64
	launched []*instance
	pools    []*fleetPool // pool of launched[i]
	fails    []fillFailure
}

// fill launches instances of one lifecycle (Spot or on-demand) from pools
// until at least need weighted units are added (the last instance may
// overshoot, as AWS does) or no pool can launch. mk turns a pool into the
// spec to launch (tags, owner, market). Call with the lock held.
func (r *Region) fill(pools []*fleetPool, spot bool, need float64, strategy string, poolsToUse int, mk func(fp *fleetPool) launchSpec) fillResult {
	var res fillResult
	failed := map[*fleetPool]bool{}
	count := map[*fleetPool]int{}
	const eps = 1e-9
	for res.units+eps < need {
		fp, batch := r.pick(pools, failed, count, spot, strategy, poolsToUse)
		if fp == nil {
			break
		}
		n := 1
		if batch {
			n = max(1, int(math.Ceil((need-res.units)/fp.units()-eps)))
		}
		ins, err := r.launch(mk(fp), 1, n)
		if err != nil {
			failed[fp] = true
			res.fails = append(res.fails, fillFailure{pool: fp, spot: spot, err: asAPIError(err)})
			continue
		}
		for _, in := range ins {
			res.launched = append(res.launched, in)
			res.pools = append(res.pools, fp)
			res.units += fp.units()
		}
		count[fp] += len(ins)
	}
	return res
}

// pick chooses the next pool by strategy among those not failed; batch
// reports whether the whole remainder may come from it.
func (r *Region) pick(pools []*fleetPool, failed map[*fleetPool]bool, count map[*fleetPool]int, spot bool, strategy string, poolsToUse int) (*fleetPool, bool) {
	cands := make([]*fleetPool, 0, len(pools))
	for _, fp := range pools {
		if !failed[fp] {
			cands = append(cands, fp)
		}
	}
	if len(cands) == 0 {
		return nil, false
	}
	prio := func(fp *fleetPool) float64 {
		if fp.hasPriority {
			return fp.priority
		}
		return math.Inf(1)
	}
	byPrice := func() {
		sort.SliceStable(cands, func(i, j int) bool { return r.unitPrice(cands[i], spot) < r.unitPrice(cands[j], spot) })
	}
	switch strategy {
	case allocDiversified:
		best := cands[0]
		for _, fp := range cands[1:] {
			if count[fp] < count[best] {
				best = fp
			}
		}
		return best, false
	case allocCapacityOptimized, allocCapacityOptPrio:
		sort.SliceStable(cands, func(i, j int) bool {
			ai, aj := r.poolAvailable(cands[i]), r.poolAvailable(cands[j])
			if ai != aj {
				return ai > aj
			}
			if strategy == allocCapacityOptPrio {
				return prio(cands[i]) < prio(cands[j])
			}
			return false
		})
		return cands[0], true
	case allocPrioritized:
		sort.SliceStable(cands, func(i, j int) bool { return prio(cands[i]) < prio(cands[j]) })
		return cands[0], true
	case allocPriceCapacityOptimal:
		byPrice()
		return cands[0], true
	default: // lowest price
		byPrice()
		if !spot || poolsToUse <= 1 {
			return cands[0], true
		}
		top := cands[:min(poolsToUse, len(cands))]
		best := top[0]
		for _, fp := range top[1:] {
			if count[fp] < count[best] {
				best = fp
			}
		}
		return best, false
	}
}

func asAPIError(err error) *APIError {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	return &APIError{Code: "InternalError", Message: err.Error(), Status: 500}
}

// withTags returns a copy of spec with extra tags merged over its own.
func withTags(spec launchSpec, extra map[string]string) launchSpec {
	t := maps.Clone(spec.tags)
	if t == nil {
		t = map[string]string{}
	}
	maps.Copy(t, extra)
	spec.tags = t
	return spec
}

// subnetInAZ returns the first subnet of an AZ, nil if none.
func (r *Region) subnetInAZ(az string) *subnet {
	for _, s := range r.subnets {
		if s.az == az {
			return s
		}
	}
	return nil
}

// pageBounds applies MaxResults/NextToken (an offset) to n items.
func pageBounds(n, maxResults int, token string) (start, end int, next string, err error) {
	if token != "" {
		s, e := strconv.Atoi(token)
		if e != nil || s < 0 || s > n {
			return 0, 0, "", errInvalidParameterValue("The token '" + token + "' is invalid.")
		}
		start = s
	}
	end = n
	if maxResults > 0 && start+maxResults < n {
		end = start + maxResults
		next = strconv.Itoa(end)
	}
	return start, end, next, nil
}

// fmtUnits renders weighted capacity as AWS does (2, 2.5).
func fmtUnits(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// poolFromLT builds a pool from a resolved launch template version and
// optional overrides read from ov (InstanceType, SubnetId, AvailabilityZone,
// ImageId, WeightedCapacity, Priority, and priceKey: MaxPrice or
// SpotPrice). Subnet/AZ existence errors are reported as AWS does.
func (r *Region) poolFromLT(idx int, lt *launchTemplate, v *ltVersion, version string, ov *params, priceKey string) (*fleetPool, error) {
	fp := &fleetPool{idx: idx, base: v.data.spec(), ltID: lt.id, ltName: lt.name, ltVersion: version}
	fp.base.launchTplID = lt.id
	fp.base.launchTplVer = strconv.FormatInt(v.number, 10)
	fp.base.tags["aws:ec2launchtemplate:id"] = lt.id
	fp.base.tags["aws:ec2launchtemplate:version"] = fp.base.launchTplVer
	if ov != nil {
		if err := r.applyOverrides(fp, *ov, priceKey); err != nil {
			return nil, err
		}
	}
	return fp, nil
}

func (r *Region) applyOverrides(fp *fleetPool, ov params, priceKey string) error {
	if t := ov.str("InstanceType"); t != "" {
		fp.base.instanceType, fp.ovType = t, t
	}
	if img := ov.str("ImageId"); img != "" {
		fp.base.imageID, fp.ovImage = img, img
	}
	if s := ov.str("SubnetId"); s != "" {
		if r.subnetBy[s] == nil {
			return &APIError{Code: "InvalidSubnetID.NotFound", Message: "The subnet ID '" + s + "' does not exist", Status: 400}
		}
		fp.base.subnetID, fp.ovSubnet = s, s
	}
	if az := ov.str("AvailabilityZone"); az != "" {
		fp.ovAZ = az
		if fp.ovSubnet == "" {
			sn := r.subnetInAZ(az)
			if sn == nil {
				return errInvalidParameterValue("Invalid availability zone: [" + az + "]")
			}
			fp.base.subnetID = sn.id
		}
	}
	if ov.has("WeightedCapacity") {
		w := ov.floatOr("WeightedCapacity", 1)
		if w <= 0 {
			return errInvalidParameterValue("WeightedCapacity must be greater than 0, got " + fmtUnits(w))
		}
		fp.weight, fp.ovWeight = w, &w
	}
	if ov.has("Priority") {
		pr := ov.floatOr("Priority", 0)
		fp.priority, fp.hasPriority, fp.ovPriority = pr, true, &pr
	}
	if mp := ov.str(priceKey); mp != "" {
		fp.maxPrice, fp.ovMaxPrice = mp, mp
	}
	return ov.Err()
}

// members tracks the instances a fleet or group launched: the live ones
// (pending or running) and the weighted units, live and ever launched, per
// lifecycle (index 0 on-demand, 1 Spot).
type members struct {
	live      map[string]*instance
	liveUnits [2]float64
	launched  [2]float64
}

func lcIndex(spot bool) int {
	if spot {
		return 1
	}
	return 0
}

func (m *members) add(in *instance) {
	if m.live == nil {
		m.live = map[string]*instance{}
	}
	m.live[in.id] = in
	m.liveUnits[lcIndex(in.spot)] += in.weight
	m.launched[lcIndex(in.spot)] += in.weight
}

// gone forgets an instance that stopped being live; false if it was not
// a live member.
func (m *members) gone(in *instance) bool {
	if _, ok := m.live[in.id]; !ok {
		return false
	}
	delete(m.live, in.id)
	m.liveUnits[lcIndex(in.spot)] -= in.weight
	if m.liveUnits[lcIndex(in.spot)] < 1e-9 {
		m.liveUnits[lcIndex(in.spot)] = 0
	}
	return true
}

func (m *members) total() float64 { return m.liveUnits[0] + m.liveUnits[1] }

// sorted returns the live instances in launch order.
func (m *members) sorted() []*instance {
	out := make([]*instance, 0, len(m.live))
	for _, in := range m.live {
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// excess picks live instances of one lifecycle to terminate so that the
// live units drop to at most target without going under it: highest price
// per unit first, newest first among equals.
func (r *Region) excess(m *members, spot bool, target float64) []*instance {
	have := m.liveUnits[lcIndex(spot)]
	if have <= target+1e-9 {
		return nil
	}
	var cands []*instance
	for _, in := range m.live {
		if in.spot == spot {
			cands = append(cands, in)
		}
	}
	price := func(in *instance) float64 {
		p := in.typ.price
		if spot {
			p = r.spotPrice(in.typ, in.subnet.az)
		}
		return p / in.weight
	}
	sort.Slice(cands, func(i, j int) bool {
		pi, pj := price(cands[i]), price(cands[j])
		if pi != pj {
			return pi > pj
		}
		return cands[i].seq > cands[j].seq
	})
	var out []*instance
	for _, in := range cands {
		if have-in.weight >= target-1e-9 {
			out = append(out, in)
			have -= in.weight
		}
	}
	return out
}
