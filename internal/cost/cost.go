// Package cost keeps the hourly price estimate of every live machine. In
// the background, it asks each provider that prices (provider.Pricer) for
// the offerings (instance type, Availability Zone, Spot or on-demand) its
// live machines run, and puts the answers in the state (State.Prices),
// which ohfp show, ohfp status and the metrics read. HF's calls never wait
// for it and never reach a price API; a price that cannot be had is an
// estimate not known, with the reason, and nothing else.
//
// Estimates are not persisted: after a start they are asked again (the
// provider's table answers at once, the cloud's APIs within the first
// round).
package cost

import (
	"context"
	"time"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/state"
)

// fetchTimeout bounds one provider's round of price fetches (each call
// has the provider's own deadlines besides).
const fetchTimeout = 2 * time.Minute

// Keeper keeps State.Prices.
type Keeper struct {
	st *state.State
}

// New returns the keeper of st's prices.
func New(st *state.State) *Keeper { return &Keeper{st: st} }

// Run refreshes the estimates until ctx ends: every active interval while
// a live machine's offering has no estimate yet, else every idle interval
// (the provider's caches decide what is asked again).
func (k *Keeper) Run(ctx context.Context) {
	for {
		next := k.Once(ctx)
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Once refreshes the estimates of every provider that prices, and returns
// when to run again.
func (k *Keeper) Once(ctx context.Context) time.Duration {
	type job struct {
		name   string
		pricer provider.Pricer
		offers []provider.Offering
	}
	st := k.st
	var jobs []job
	st.Mu.RLock()
	byProv := map[string]map[provider.Offering]bool{}
	for _, m := range st.Machines {
		if !m.Live() || m.InstanceType == "" {
			continue
		}
		key := state.PriceKeyOf(m)
		if byProv[key.Provider] == nil {
			byProv[key.Provider] = map[provider.Offering]bool{}
		}
		byProv[key.Provider][key.Offering] = true
	}
	for _, name := range st.Order {
		p := st.Providers[name]
		pr, ok := p.Cfg.Cloud.(provider.Pricer)
		if !ok || !pr.PricingOn() {
			continue
		}
		j := job{name: name, pricer: pr}
		for o := range byProv[name] {
			j.offers = append(j.offers, o)
		}
		jobs = append(jobs, j)
	}
	st.Mu.RUnlock()

	got := map[string]map[provider.Offering]provider.Price{}
	for _, j := range jobs {
		if len(j.offers) == 0 {
			continue
		}
		fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
		got[j.name] = j.pricer.Prices(fctx, j.offers)
		cancel()
	}

	st.Mu.Lock()
	// Keep only what live machines run, now.
	for key := range st.Prices {
		if !byProv[key.Provider][key.Offering] {
			delete(st.Prices, key)
		}
	}
	for name, prices := range got {
		for o, p := range prices {
			st.Prices[state.PriceKey{Provider: name, Offering: o}] = p
		}
	}
	st.Mu.Unlock()

	// Machines launched meanwhile without an estimate: soon again.
	st.Mu.RLock()
	defer st.Mu.RUnlock()
	for _, m := range st.Machines {
		if m.Live() && m.InstanceType != "" && st.Providers[m.Provider] != nil {
			if pr, ok := st.Providers[m.Provider].Cfg.Cloud.(provider.Pricer); ok && pr.PricingOn() {
				if _, ok := st.Prices[state.PriceKeyOf(m)]; !ok {
					return st.Opts.ActiveInterval
				}
			}
		}
	}
	return st.Opts.IdleInterval
}
