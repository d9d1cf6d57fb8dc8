package awsprov

import (
	"slices"
	"sync"
	"time"

	"github.com/ohfp/ohfp/internal/clock"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// DefaultCapacityMemory is how long a pool without capacity is remembered
// when the configuration says nothing (capacity_memory).
const DefaultCapacityMemory = 3 * time.Minute

// maxRemembered bounds the capacity memory: past it, the pool soonest
// forgotten is dropped to make room.
const maxRemembered = 1024

// CapacityMemory remembers the pools (instance type, subnet or
// Availability Zone, price type) where EC2 answered
// InsufficientInstanceCapacity (or kin: poolCapacityCodes), for a while,
// across requests and templates of one provider (Karpenter's unavailable
// offerings cache). It lives in memory only: a restart forgets it, and
// the first launch into a pool still without capacity learns it again at
// the cost of one call. It is safe for concurrent use, and bounded.
type CapacityMemory struct {
	ttl   time.Duration
	clock clock.Clock

	mu    sync.Mutex
	pools map[poolKey]provider.Unavailable
}

type poolKey struct{ typ, where, price string }

// NewCapacityMemory returns a memory that keeps a pool for ttl (0 or
// less: it remembers nothing).
func NewCapacityMemory(ttl time.Duration, c clock.Clock) *CapacityMemory {
	if c == nil {
		c = clock.Real{}
	}
	return &CapacityMemory{ttl: ttl, clock: c, pools: map[poolKey]provider.Unavailable{}}
}

// SetTTL changes how long pools are remembered from now on (a reload);
// 0 or less forgets everything and remembers nothing.
func (cm *CapacityMemory) SetTTL(ttl time.Duration) {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	cm.ttl = ttl
	if ttl <= 0 {
		clear(cm.pools)
	}
}

// Remember records that the pool has no capacity, until the memory's
// time has passed (again from now, when it was remembered already).
func (cm *CapacityMemory) Remember(typ, where, price, reason string) {
	if cm == nil || typ == "" || where == "" {
		return
	}
	cm.mu.Lock()
	defer cm.mu.Unlock()
	if cm.ttl <= 0 {
		return
	}
	now := cm.clock.Now()
	k := poolKey{typ, where, price}
	if _, ok := cm.pools[k]; !ok && len(cm.pools) >= maxRemembered {
		cm.expireLocked(now)
		for len(cm.pools) >= maxRemembered {
			var oldest poolKey
			first := true
			for k2, u := range cm.pools {
				if first || u.Until.Before(cm.pools[oldest].Until) {
					oldest, first = k2, false
				}
			}
			delete(cm.pools, oldest)
		}
	}
	cm.pools[k] = provider.Unavailable{InstanceType: typ, Where: where, PriceType: price, Reason: reason, Since: now, Until: now.Add(cm.ttl)}
}

// Forget drops a pool: EC2 just launched there.
func (cm *CapacityMemory) Forget(typ, where, price string) {
	if cm == nil {
		return
	}
	cm.mu.Lock()
	defer cm.mu.Unlock()
	delete(cm.pools, poolKey{typ, where, price})
}

// until returns when the pool is forgotten, if it is remembered now.
func (cm *CapacityMemory) until(typ, where, price string) (time.Time, bool) {
	if cm == nil {
		return time.Time{}, false
	}
	cm.mu.Lock()
	defer cm.mu.Unlock()
	u, ok := cm.pools[poolKey{typ, where, price}]
	if !ok || !cm.clock.Now().Before(u.Until) {
		return time.Time{}, false
	}
	return u.Until, true
}

// List returns the pools remembered now, soonest forgotten first.
func (cm *CapacityMemory) List() []provider.Unavailable {
	if cm == nil {
		return nil
	}
	cm.mu.Lock()
	defer cm.mu.Unlock()
	cm.expireLocked(cm.clock.Now())
	out := make([]provider.Unavailable, 0, len(cm.pools))
	for _, u := range cm.pools {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b provider.Unavailable) int {
		if c := a.Until.Compare(b.Until); c != 0 {
			return c
		}
		return cmpStr(a.InstanceType+"/"+a.Where+"/"+a.PriceType, b.InstanceType+"/"+b.Where+"/"+b.PriceType)
	})
	return out
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (cm *CapacityMemory) expireLocked(now time.Time) {
	for k, u := range cm.pools {
		if !now.Before(u.Until) {
			delete(cm.pools, k)
		}
	}
}

// priceOf is the price type a launch of t asks (the memory's key).
func priceOf(t *template.Template) string {
	if t.Price() == template.PriceOnDemand {
		return template.PriceOnDemand
	}
	return template.PriceSpot
}

// rememberLaunch records a RunInstances launch's pool after EC2 said it
// had no capacity there: spec is narrowed to one type and subnet (an
// alternative of Planner); anything wider is not one pool.
func (p *Provider) rememberLaunch(spec provider.LaunchSpec, code, msg string) {
	t := &spec.Template
	if p.capmem == nil || !poolCapacityCodes[code] || t.API() != template.APIRunInstances || len(t.SubnetIDs) != 1 {
		return
	}
	types := t.InstanceTypes()
	if len(types) != 1 {
		return
	}
	p.capmem.Remember(types[0], t.SubnetIDs[0], priceOf(t), code+": "+msg)
	p.log.Info("pool without capacity remembered", "instance_type", types[0], "subnet", t.SubnetIDs[0], "price_type", priceOf(t), "code", code)
}

// forgetLaunch drops from the capacity memory the pools a launch got
// instances in: EC2 has capacity there again.
func (p *Provider) forgetLaunch(spec provider.LaunchSpec, res provider.LaunchResult) {
	if p.capmem == nil {
		return
	}
	price := priceOf(&spec.Template)
	for _, in := range res.Instances {
		p.capmem.Forget(in.InstanceType, in.SubnetID, price)
	}
}

var _ provider.CapacityMemory = (*Provider)(nil)

// Rank puts the alternatives whose pool the capacity memory holds last,
// the soonest forgotten first; the others keep the template's order.
// When every one is remembered, all are still tried: EC2's capacity
// changes by the minute, and failing a request without asking would turn
// a three-minute memory into refusals HF cannot see the reason of.
func (p *Provider) Rank(spec provider.LaunchSpec, alts []int) []int {
	if p.capmem == nil || len(alts) < 2 {
		return alts
	}
	type ranked struct {
		i     int
		until time.Time
		known bool
	}
	rs := make([]ranked, len(alts))
	for n, i := range alts {
		s, _ := p.Alternative(spec, i)
		t := &s.Template
		rs[n].i = i
		if len(t.SubnetIDs) == 1 {
			if types := t.InstanceTypes(); len(types) == 1 {
				rs[n].until, rs[n].known = p.capmem.until(types[0], t.SubnetIDs[0], priceOf(t))
			}
		}
	}
	slices.SortStableFunc(rs, func(a, b ranked) int {
		switch {
		case a.known != b.known:
			if a.known {
				return 1
			}
			return -1
		case a.known:
			return a.until.Compare(b.until)
		}
		return 0
	})
	out := make([]int, len(rs))
	for n, r := range rs {
		out[n] = r.i
	}
	return out
}

// Unavailable lists the pools remembered without capacity.
func (p *Provider) Unavailable() []provider.Unavailable { return p.capmem.List() }

// CapacityMemory returns the provider's memory, for the provider that
// replaces it on a reload (Settings.CapacityMemory); nil when off.
func (p *Provider) CapacityMemory() *CapacityMemory { return p.capmem }
