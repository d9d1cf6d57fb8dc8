package service

import (
	"sort"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/state"
)

// Price estimates, read from State.Prices (package cost keeps them in the
// background); nothing here asks the cloud.

// pricingLocked reports whether the provider named name prices. Called
// with the state's Mu held.
func (sv *Service) pricingLocked(name string) bool {
	p := sv.st.Providers[name]
	if p == nil {
		return false
	}
	pr, ok := p.Cfg.Cloud.(provider.Pricer)
	return ok && pr.PricingOn()
}

// priceLocked is a machine's estimate: nil when its provider does not
// price, or when it ended and its offering's estimate is no longer kept.
// Called with the state's Mu held.
func (sv *Service) priceLocked(m *domain.Machine) *apitype.Price {
	if m.InstanceType == "" || !sv.pricingLocked(m.Provider) {
		return nil
	}
	key := state.PriceKeyOf(m)
	p, ok := sv.st.Prices[key]
	if !ok {
		if !m.Live() {
			return nil
		}
		reason := "not fetched yet"
		if m.Spot && m.AZ == "" {
			reason = "Availability Zone not known yet"
		}
		return &apitype.Price{Type: key.PriceType(), Reason: reason}
	}
	return &apitype.Price{Known: p.Known, DollarsPerHour: p.Dollars, Type: key.PriceType(), Source: p.Source, Reason: p.Reason, At: p.At}
}

// costLocked sums the live machines' estimates per template and request.
// nil when no provider prices. Called with the state's Mu held.
func (sv *Service) costLocked() *apitype.Cost {
	on := false
	for _, name := range sv.st.Order {
		on = on || sv.pricingLocked(name)
	}
	if !on {
		return nil
	}
	type tkey struct{ prov, tpl string }
	type okey struct {
		prov, tpl string
		state.PriceKey
	}
	c := &apitype.Cost{Templates: []apitype.TemplateCost{}, Requests: []apitype.RequestCost{}, Offerings: []apitype.OfferingCost{}}
	tpls := map[tkey]*apitype.TemplateCost{}
	reqs := map[string]*apitype.RequestCost{}
	offs := map[okey]*apitype.OfferingCost{}
	for _, m := range sv.st.Machines {
		if !m.Live() {
			continue
		}
		p := sv.priceLocked(m)
		if p == nil {
			continue
		}
		c.Total.Add(p)
		tk := tkey{m.Provider, m.TemplateID}
		if tpls[tk] == nil {
			tpls[tk] = &apitype.TemplateCost{Provider: m.Provider, TemplateID: m.TemplateID}
		}
		tpls[tk].Sum.Add(p)
		if reqs[m.RequestID] == nil {
			reqs[m.RequestID] = &apitype.RequestCost{ID: m.RequestID, Provider: m.Provider, TemplateID: m.TemplateID}
		}
		reqs[m.RequestID].Sum.Add(p)
		if p.Known {
			ok := okey{m.Provider, m.TemplateID, state.PriceKeyOf(m)}
			if offs[ok] == nil {
				offs[ok] = &apitype.OfferingCost{Provider: m.Provider, TemplateID: m.TemplateID, InstanceType: m.InstanceType,
					AZ: m.AZ, PriceType: p.Type, DollarsPerHour: p.DollarsPerHour}
			}
			offs[ok].Machines++
		}
	}
	for _, t := range tpls {
		c.Templates = append(c.Templates, *t)
	}
	sort.Slice(c.Templates, func(i, j int) bool {
		a, b := c.Templates[i], c.Templates[j]
		return a.Provider < b.Provider || a.Provider == b.Provider && a.TemplateID < b.TemplateID
	})
	for _, r := range reqs {
		c.Requests = append(c.Requests, *r)
	}
	sort.Slice(c.Requests, func(i, j int) bool {
		ri, rj := sv.st.Requests[c.Requests[i].ID], sv.st.Requests[c.Requests[j].ID]
		if ri != nil && rj != nil && !ri.CreatedAt.Equal(rj.CreatedAt) {
			return ri.CreatedAt.Before(rj.CreatedAt)
		}
		return c.Requests[i].ID < c.Requests[j].ID
	})
	for _, o := range offs {
		c.Offerings = append(c.Offerings, *o)
	}
	sort.Slice(c.Offerings, func(i, j int) bool {
		a, b := c.Offerings[i], c.Offerings[j]
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		if a.TemplateID != b.TemplateID {
			return a.TemplateID < b.TemplateID
		}
		if a.InstanceType != b.InstanceType {
			return a.InstanceType < b.InstanceType
		}
		if a.AZ != b.AZ {
			return a.AZ < b.AZ
		}
		return a.PriceType < b.PriceType
	})
	return c
}

// requestCostLocked is a request's machines' estimates, each and summed
// over the live ones; nil when its provider does not price. Called with
// the state's Mu held.
func (sv *Service) requestCostLocked(r *domain.Request) *apitype.RequestMachinesCost {
	if !sv.pricingLocked(r.Provider) {
		return nil
	}
	out := &apitype.RequestMachinesCost{Machines: []apitype.MachineCost{}}
	for _, m := range sv.st.MachinesOfLocked(r) {
		if m == nil {
			continue
		}
		p := sv.priceLocked(m)
		out.Machines = append(out.Machines, apitype.MachineCost{ID: m.ID, InstanceType: m.InstanceType, AZ: m.AZ, Live: m.Live(), Price: p})
		if m.Live() {
			out.Sum.Add(p)
		}
	}
	return out
}
