package provider

import "time"

// Unavailable is a capacity pool a provider remembers as having no
// capacity: an instance type in a place (a subnet, or an Availability
// Zone when the cloud names only that) at a price type.
type Unavailable struct {
	InstanceType string
	Where        string // subnet id, or Availability Zone
	PriceType    string // ondemand or spot
	Reason       string // the cloud's words, e.g. "InsufficientInstanceCapacity: ..."
	Since        time.Time
	Until        time.Time // forgotten then
}

// CapacityMemory is implemented by providers that remember, for a while,
// the pools where the cloud said it had no capacity (capacity_memory),
// across requests and templates. Package provision type-asserts it to rank
// a launch's pools; the service, to show what it remembers.
type CapacityMemory interface {
	// Rank orders alts, indices of spec's alternatives
	// (Planner.Alternative) not yet tried: those the provider remembers
	// without capacity go last (the soonest forgotten first), the others
	// keep their order. It never drops one: when every pool is
	// remembered, they are all still tried.
	Rank(spec LaunchSpec, alts []int) []int
	// Unavailable lists the pools remembered now, soonest forgotten
	// first.
	Unavailable() []Unavailable
}
