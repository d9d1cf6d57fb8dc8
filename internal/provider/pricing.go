package provider

import (
	"context"
	"time"
)

// Price types of an estimate.
const (
	PriceOnDemand = "on-demand"
	PriceSpot     = "spot"
)

// Price sources.
const (
	SourceTable       = "table"        // the operator's prices: table
	SourcePriceList   = "price-list"   // the cloud's list price (AWS Price List API)
	SourceSpotHistory = "spot-history" // the cloud's current Spot price
)

// Offering is what an instance's hourly price depends on.
type Offering struct {
	InstanceType string
	// AZ is the Availability Zone; Spot prices differ per zone ("" while
	// the zone is not known).
	AZ   string
	Spot bool
}

// PriceType is PriceSpot or PriceOnDemand.
func (o Offering) PriceType() string {
	if o.Spot {
		return PriceSpot
	}
	return PriceOnDemand
}

// Price is an hourly price estimate of one offering.
type Price struct {
	// Known: Dollars holds the estimate; else Reason says why there is none.
	Known   bool
	Dollars float64 // US dollars per hour
	Source  string  // SourceTable, SourcePriceList or SourceSpotHistory
	Reason  string
	At      time.Time // when it was fetched (or failed)
}

// Pricer is implemented by providers that estimate what instances cost.
// Package cost type-asserts it and calls it in the background, never on
// HF's calls (the service only asks PricingOn).
type Pricer interface {
	// PricingOn reports whether the provider estimates prices at all.
	PricingOn() bool
	// Prices returns an estimate for every offering: from the provider's
	// cache, fetching what is missing or stale within ctx and the
	// provider's deadlines. A failed fetch gives estimates that are not
	// Known, with the reason, and is not tried again for a while.
	Prices(ctx context.Context, offers []Offering) map[Offering]Price
}
