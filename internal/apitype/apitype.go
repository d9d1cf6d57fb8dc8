// Package apitype holds every answer of ohfpd's admin methods (status,
// requests, machines, show): the daemon encodes them and the ohfp client
// decodes them, from these same types. It imports only package hf (pure),
// so the client stays small.
package apitype

import (
	"time"

	"github.com/ohfp/ohfp/internal/hf"
)

// Admin method names (the HF operations are hf.Operations).
const (
	MethodStatus   = "status"
	MethodRequests = "requests"
	MethodMachines = "machines"
	MethodShow     = "show"
	MethodReload   = "reload"
	// The operator's actions: refused to callers that are not root or in
	// one of the configured admin_groups (as is MethodReload).
	MethodCancel  = "cancel"
	MethodReturn  = "return"
	MethodDrain   = "drain"
	MethodUndrain = "undrain"
	MethodRearm   = "rearm"
	MethodCheck   = "check"
)

// Health levels, worst last; `ohfp status` exits with the level's Code.
const (
	Healthy  = "healthy"
	Degraded = "degraded"
	Down     = "down"
)

// Health is the daemon's verdict on itself, computed in one place
// (package health) from what happened, and read by `ohfp status`, the
// metrics, systemd's STATUS= and the watchdog.
type Health struct {
	Level string `json:"level"` // Healthy, Degraded or Down
	// Code is the exit code of `ohfp status`: 0 healthy, 1 degraded, 2 down.
	Code int `json:"code"`
	// Reasons say why it is not healthy, one line each.
	Reasons []string `json:"reasons,omitempty"`
	// Stalled: no reconcile pass finished in time; the watchdog is no
	// longer fed (a restart may help, unlike for credentials or AWS).
	Stalled bool `json:"stalled,omitempty"`
	// Providers is each provider's verdict on its cloud: "ok", or why not.
	Providers map[string]string `json:"providers,omitempty"`
}

// Status is what `ohfp status` shows.
type Status struct {
	Version            string         `json:"version"`
	Started            time.Time      `json:"started"`
	UptimeSeconds      int64          `json:"uptimeSeconds"`
	ClusterID          string         `json:"clusterId"`
	Providers          []string       `json:"providers"`
	Requests           map[string]int `json:"requests"`     // by kind and status
	Machines           map[string]int `json:"machines"`     // by cloud state, ended ones included
	LiveMachines       int            `json:"liveMachines"` // neither terminated nor gone
	InFlight           int            `json:"inFlight"`     // requests not final
	LastReconcile      time.Time      `json:"lastReconcile,omitzero"`
	LastReconcileMs    int64          `json:"lastReconcileMs"`
	LastReconcileError string         `json:"lastReconcileError,omitempty"`
	Reconciles         int            `json:"reconciles"`
	Listings           int            `json:"listings"` // full listings (everything with ohfp's tag)
	LastListing        time.Time      `json:"lastListing,omitzero"`
	LastListingMs      int64          `json:"lastListingMs"`
	ActiveIntervalMs   int64          `json:"activeIntervalMs"` // reconcile delay while busy
	IdleIntervalMs     int64          `json:"idleIntervalMs"`   // reconcile delay when idle
	CloudNote          string         `json:"cloudNote,omitempty"`
	// NextRetry is when the next launch retried after a cloud error is
	// due (the earliest); zero when none waits.
	NextRetry time.Time `json:"nextRetry,omitzero"`
	// Unsaved is how many records the disk refused and memory holds.
	Unsaved int `json:"unsaved,omitempty"`
	// Drained lists the drained templates.
	Drained []Drained `json:"drained,omitempty"`
	// Breakers lists the templates whose failure breaker counts failures
	// or has tripped (breaker_failures).
	Breakers []Breaker `json:"breakers,omitempty"`
	// Unavailable lists the capacity pools remembered without capacity
	// (capacity_memory), soonest forgotten first per provider.
	Unavailable []Unavailable `json:"unavailable,omitempty"`
	// Events are each provider's event queue figures (interruption_queue).
	Events map[string]EventQueue `json:"events,omitempty"`
	// Health is the verdict, filled by the daemon.
	Health *Health `json:"health,omitempty"`
	// AWS is each provider's cloud health, filled by the daemon.
	AWS map[string]CloudStatus `json:"aws,omitempty"`
	// HA is the lease of a shared-store cluster (the `ha:` section); nil
	// on a single host.
	HA *HA `json:"ha,omitempty"`
	// Cost is the hourly price estimate of the live machines; nil when no
	// provider prices (pricing: off).
	Cost *Cost `json:"cost,omitempty"`
}

// Price is a machine's hourly price estimate.
type Price struct {
	Known          bool      `json:"known"`
	DollarsPerHour float64   `json:"dollarsPerHour,omitempty"`
	Type           string    `json:"type"`             // on-demand or spot
	Source         string    `json:"source,omitempty"` // table, price-list or spot-history
	Reason         string    `json:"reason,omitempty"` // why it is not known
	At             time.Time `json:"at,omitzero"`      // when it was fetched
}

// CostSum is the summed hourly estimate of a set of live machines.
type CostSum struct {
	DollarsPerHour float64 `json:"dollarsPerHour"`
	Machines       int     `json:"machines"`          // live machines with a known price (in the sum)
	Unknown        int     `json:"unknown,omitempty"` // live machines whose price is not known
	Reason         string  `json:"reason,omitempty"`  // why, for one of them
}

// Add counts one live machine's price in the sum.
func (c *CostSum) Add(p *Price) {
	if p == nil {
		return
	}
	if p.Known {
		c.DollarsPerHour += p.DollarsPerHour
		c.Machines++
		return
	}
	c.Unknown++
	if c.Reason == "" {
		c.Reason = p.Reason
	}
}

// Cost is the hourly price estimate of the live machines, in all and per
// template and request.
type Cost struct {
	Total     CostSum        `json:"total"`
	Templates []TemplateCost `json:"templates"`
	Requests  []RequestCost  `json:"requests"`
	// Offerings are the prices per provider, template, instance type,
	// zone and price type, with how many live machines run each (the
	// per-machine price metric).
	Offerings []OfferingCost `json:"offerings"`
}

// TemplateCost is one template's live machines' estimate.
type TemplateCost struct {
	Provider   string  `json:"provider"`
	TemplateID string  `json:"templateId"`
	Sum        CostSum `json:"sum"`
}

// RequestCost is one acquire request's live machines' estimate.
type RequestCost struct {
	ID         string  `json:"id"`
	Provider   string  `json:"provider"`
	TemplateID string  `json:"templateId"`
	Sum        CostSum `json:"sum"`
}

// OfferingCost is the known price of one machine of an offering and how
// many live machines run it.
type OfferingCost struct {
	Provider       string  `json:"provider"`
	TemplateID     string  `json:"templateId"`
	InstanceType   string  `json:"instanceType"`
	AZ             string  `json:"az,omitempty"`
	PriceType      string  `json:"priceType"`
	DollarsPerHour float64 `json:"dollarsPerHour"`
	Machines       int     `json:"machines"`
}

// MachineCost is one machine's estimate within a request.
type MachineCost struct {
	ID           string `json:"id"`
	InstanceType string `json:"instanceType,omitempty"`
	AZ           string `json:"az,omitempty"`
	Live         bool   `json:"live"`
	Price        *Price `json:"price,omitempty"`
}

// EventQueue is what one provider's event queue brought.
type EventQueue struct {
	Queue     string    `json:"queue"`
	Received  int       `json:"received"`  // messages taken from the queue
	Applied   int       `json:"applied"`   // events that changed a machine
	Malformed int       `json:"malformed"` // messages that were no event (deleted)
	Foreign   int       `json:"foreign"`   // events ohfp does not act on, or of instances not ohfp's (deleted)
	Errors    int       `json:"errors"`    // failed queue calls
	LastError string    `json:"lastError,omitempty"`
	LastAt    time.Time `json:"lastAt,omitzero"`
}

// ViewArgs mark an HF operation the operator's client makes to show its
// answer (ohfp templates), not HF: a standby answers it without taking the
// lease.
type ViewArgs struct {
	View bool `json:"view"`
}

// HA is who acts for a shared-store cluster: the lease as this host last
// saw it.
type HA struct {
	Host         string  `json:"host"`   // this host
	Role         string  `json:"role"`   // holder, starting, stopping or standby
	Holder       string  `json:"holder"` // who holds the lease ("" when nobody)
	Since        string  `json:"since,omitempty"`
	Renewed      string  `json:"renewed,omitempty"`
	Token        uint64  `json:"token"` // fencing token of the holder
	Released     bool    `json:"released,omitempty"`
	Expired      bool    `json:"expired,omitempty"` // seen unrenewed for a lease duration
	Want         string  `json:"want,omitempty"`    // a host asking for it
	LastError    string  `json:"lastError,omitempty"`
	LeaseSeconds float64 `json:"leaseSeconds"`
	Table        string  `json:"table,omitempty"`
}

// CloudStatus is one provider's cloud health: a line for a person, and the
// figures behind it.
type CloudStatus struct {
	Summary string      `json:"summary"`
	Health  CloudHealth `json:"health"`
}

// CloudHealth are the figures of a provider's calls to its cloud.
type CloudHealth struct {
	LastError   string    `json:"lastError"`
	LastErrorAt time.Time `json:"lastErrorAt"`
	Throttled   bool      `json:"throttled"`
	Unreachable bool      `json:"unreachable"`
	// Failing: AWS answered the last operation with a server error (5xx).
	Failing bool `json:"failing,omitempty"`
	// Credentials: the last operation failed for want of valid
	// credentials (none found, expired, refused by AWS).
	Credentials bool `json:"credentials,omitempty"`
	// CredentialScript: the provider's credential script (IBM's
	// AWS_CREDENTIAL_SCRIPT) failed its last run, and why; the last good
	// credentials are in use until they expire.
	CredentialScript string `json:"credentialScript,omitempty"`
	// ThrottledActions are the actions whose last operation ended
	// throttled, after the SDK's retries.
	ThrottledActions    []string       `json:"throttledActions,omitempty"`
	Failures            int            `json:"failures"`
	RetryInSeconds      float64        `json:"retryInSeconds"`
	Calls               map[string]int `json:"calls"`
	Errors              map[string]int `json:"errors"`
	Throttles           map[string]int `json:"throttles"`
	Timeouts            map[string]int `json:"timeouts"`
	NotAnswering        bool           `json:"notAnswering"`
	NotAnsweringSince   time.Time      `json:"notAnsweringSince,omitzero"`
	NotAnsweringSeconds float64        `json:"notAnsweringSeconds,omitempty"`
	InFlight            int            `json:"inFlight"`
	OldestCall          time.Time      `json:"oldestCall,omitzero"`
}

// RequestsArgs are the arguments of the requests method: requests in
// flight and those finished within RecentFinished; All: every request.
type RequestsArgs struct {
	All bool `json:"all"`
}

// RecentFinished is how long a finished request stays in `ohfp requests`
// without --all.
const RecentFinished = time.Hour

// Drained is a drained template.
type Drained struct {
	Provider   string    `json:"provider"`
	TemplateID string    `json:"templateId"`
	Since      time.Time `json:"since"`
	By         string    `json:"by"`
}

// Breaker is a template's failure breaker: failures in a row that
// retrying cannot fix, and whether it stopped the template.
type Breaker struct {
	Provider   string    `json:"provider"`
	TemplateID string    `json:"templateId"`
	Failures   int       `json:"failures"`
	Reason     string    `json:"reason"` // the last failure
	Tripped    bool      `json:"tripped"`
	Since      time.Time `json:"since,omitzero"` // tripped at
	Until      time.Time `json:"until,omitzero"` // re-arms then (zero: by reload or ohfp rearm)
	Message    string    `json:"message,omitempty"`
}

// Unavailable is a capacity pool remembered without capacity.
type Unavailable struct {
	Provider     string    `json:"provider"`
	InstanceType string    `json:"instanceType"`
	Where        string    `json:"where"`     // subnet id or Availability Zone
	PriceType    string    `json:"priceType"` // ondemand or spot
	Reason       string    `json:"reason"`
	Since        time.Time `json:"since"`
	Until        time.Time `json:"until"`
}

// CancelArgs are the arguments of the cancel method.
type CancelArgs struct {
	Request string `json:"request"`
	// Return: also return the machines that came.
	Return bool `json:"return,omitempty"`
}

// ReturnArgs are the arguments of the return method: machines (ids or
// host names), or every live machine of an acquire request.
type ReturnArgs struct {
	Machines []string `json:"machines,omitempty"`
	Request  string   `json:"request,omitempty"`
}

// DrainArgs are the arguments of the drain and undrain methods.
type DrainArgs struct {
	Template string `json:"template"`
	Provider string `json:"provider,omitempty"` // needed when two providers have the template
}

// CheckArgs are the arguments of the check method.
type CheckArgs struct {
	Provider string `json:"provider,omitempty"`
	Template string `json:"template,omitempty"`
}

// ActionAnswer is the answer of an operator action.
type ActionAnswer struct {
	Message string `json:"message"`
	// ReturnID is the return request made (cancel --return, return).
	ReturnIDs []string `json:"returnIds,omitempty"`
}

// CheckRow is one line of `ohfp check`: one thing tried for a template.
type CheckRow struct {
	Provider   string `json:"provider"`
	TemplateID string `json:"templateId"`
	What       string `json:"what"` // e.g. "RunInstances c5.large in subnet-1"
	OK         bool   `json:"ok"`
	Result     string `json:"result"` // "ok", or AWS's answer
}

// Note is one entry of a request's history.
type Note struct {
	At     time.Time `json:"at"`
	Who    string    `json:"who"`
	Action string    `json:"action"`
	Text   string    `json:"text"`
}

// MachinesArgs are the arguments of the machines method.
type MachinesArgs struct {
	Request string `json:"request,omitempty"`
	All     bool   `json:"all"`
}

// ShowArgs are the arguments of the show method.
type ShowArgs struct {
	ID string `json:"id"`
}

// RequestRow is one line of `ohfp requests`.
type RequestRow struct {
	ID         string    `json:"requestId"`
	Kind       string    `json:"kind"`
	Provider   string    `json:"provider"`
	TemplateID string    `json:"templateId,omitempty"`
	Units      int       `json:"units,omitempty"`
	Machines   int       `json:"machines"`
	Status     string    `json:"status"`
	Message    string    `json:"message"`
	Created    time.Time `json:"created"`
	Finished   time.Time `json:"finished,omitzero"`
}

// MachineRow is one line of `ohfp machines`.
type MachineRow struct {
	hf.Machine
	RequestID  string `json:"requestId"`
	ReturnID   string `json:"returnId,omitempty"`
	TemplateID string `json:"templateId"`
	Weight     int    `json:"weight"`
}

// Shown is `ohfp show ID`: a request with its HF status, or one machine.
type Shown struct {
	Request *Request          `json:"request,omitempty"`
	Status  *hf.RequestStatus `json:"status,omitempty"`
	Machine *Machine          `json:"machine,omitempty"`
}

// Request is everything ohfpd holds about a request, for a person.
type Request struct {
	ID            string    `json:"id"`
	Kind          string    `json:"kind"`
	Provider      string    `json:"provider"`
	TemplateID    string    `json:"templateId,omitempty"`
	RcAccount     string    `json:"rcAccount,omitempty"`   // LSF's rc_account, exported to the host and tagged RC_ACCOUNT
	ClusterName   string    `json:"clusterName,omitempty"` // LSF's clusterName (SCRIPT_OPTIONS), exported to the host
	Units         int       `json:"units,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
	ClientToken   string    `json:"clientToken,omitempty"`
	Phase         string    `json:"phase,omitempty"`
	Attempts      int       `json:"attempts,omitempty"`
	NextAttempt   time.Time `json:"nextAttempt,omitzero"`
	Handle        string    `json:"handle,omitempty"`
	HandleCapped  bool      `json:"handleCapped,omitempty"`
	HandleDeleted bool      `json:"handleDeleted,omitempty"`
	TakenOver     bool      `json:"takenOver,omitempty"` // from IBM's plugin (ohfpd --take-over-ibm)
	FallbackUnits int       `json:"fallbackUnits,omitempty"`
	Pool          int       `json:"pool,omitempty"`
	PoolOrder     []int     `json:"poolOrder,omitempty"`
	LaunchError   string    `json:"launchError,omitempty"`
	Shortfall     string    `json:"shortfall,omitempty"`
	RetryNote     string    `json:"retryNote,omitempty"`
	Rebuilt       bool      `json:"rebuilt,omitempty"`
	UnitsFromTag  bool      `json:"unitsFromTag,omitempty"`
	MachineIDs    []string  `json:"machineIds,omitempty"`
	Unknown       []string  `json:"unknown,omitempty"`
	TerminateSent bool      `json:"terminateSent,omitempty"`
	AwaitingClaim bool      `json:"awaitingClaim,omitempty"`
	AnswerPending bool      `json:"answerPending,omitempty"`
	Unclaimed     bool      `json:"unclaimed,omitempty"`
	Status        string    `json:"status,omitempty"`
	Message       string    `json:"message,omitempty"`
	FinishedAt    time.Time `json:"finishedAt,omitzero"`
	// History is what operators did to the request.
	History []Note `json:"history,omitempty"`
	// Cost is the estimate of its machines, each and summed over the live
	// ones; nil when its provider does not price.
	Cost *RequestMachinesCost `json:"cost,omitempty"`
}

// RequestMachinesCost is a request's machines' estimates.
type RequestMachinesCost struct {
	Sum      CostSum       `json:"sum"`
	Machines []MachineCost `json:"machines"`
}

// Machine is everything ohfpd holds about a machine, for a person.
type Machine struct {
	ID               string    `json:"id"`
	RequestID        string    `json:"requestId"`
	ReturnID         string    `json:"returnId,omitempty"`
	Provider         string    `json:"provider"`
	TemplateID       string    `json:"templateId"`
	Name             string    `json:"name,omitempty"`
	PrivateIP        string    `json:"privateIp,omitempty"`
	PublicIP         string    `json:"publicIp,omitempty"`
	State            string    `json:"state"`
	StateReason      string    `json:"stateReason,omitempty"`
	InstanceType     string    `json:"instanceType,omitempty"`
	Spot             bool      `json:"spot,omitempty"`
	SpotRequest      string    `json:"spotRequest,omitempty"`
	Weight           int       `json:"weight"`
	LaunchTime       time.Time `json:"launchTime,omitzero"`
	Tags             string    `json:"tags,omitempty"`
	Result           string    `json:"result"`
	Message          string    `json:"message,omitempty"`
	Doomed           bool      `json:"doomed,omitempty"`
	TerminateSent    bool      `json:"terminateSent,omitempty"`
	Handle           string    `json:"handle,omitempty"`
	CapacityReleased bool      `json:"capacityReleased,omitempty"`
	IDTagged         bool      `json:"idTagged,omitempty"`
	ReclaimedAt      time.Time `json:"reclaimedAt,omitzero"`
	InterruptAt      time.Time `json:"interruptAt,omitzero"`
	DrainAt          time.Time `json:"drainAt,omitzero"`      // the cloud asked for it to be drained
	DrainBy          time.Time `json:"drainBy,omitzero"`      // when the cloud acts (the grace's end)
	DrainReason      string    `json:"drainReason,omitempty"` // why (scheduled event, status check, rebalance)
	LastSeen         time.Time `json:"lastSeen,omitzero"`
	EndedAt          time.Time `json:"endedAt,omitzero"`
	AZ               string    `json:"az,omitempty"`
	// Unlisted: an instance of IBM's fleet that IBM's file did not list,
	// awaiting HF's claim (HF's getReturnRequests listing it).
	Unlisted bool `json:"unlisted,omitempty"`
	// Price is its hourly estimate; nil when its provider does not price.
	Price *Price `json:"price,omitempty"`
}

// ReloadAnswer is the answer of the reload method.
type ReloadAnswer struct {
	Message string `json:"message"`
	// Warnings are what the new configuration does otherwise than it
	// says (an unknown admin group, a change that waits for a restart).
	Warnings []string `json:"warnings,omitempty"`
}
