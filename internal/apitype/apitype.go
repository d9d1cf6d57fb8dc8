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
)

// Status is what `ohfp status` shows.
type Status struct {
	Version            string         `json:"version"`
	Started            time.Time      `json:"started"`
	UptimeSeconds      int64          `json:"uptimeSeconds"`
	ClusterID          string         `json:"clusterId"`
	Providers          []string       `json:"providers"`
	Requests           map[string]int `json:"requests"` // by kind and status
	Machines           map[string]int `json:"machines"` // by cloud state
	InFlight           int            `json:"inFlight"` // requests not final
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
	// AWS is each provider's cloud health, filled by the daemon.
	AWS map[string]CloudStatus `json:"aws,omitempty"`
}

// CloudStatus is one provider's cloud health: a line for a person, and the
// figures behind it.
type CloudStatus struct {
	Summary string      `json:"summary"`
	Health  CloudHealth `json:"health"`
}

// CloudHealth are the figures of a provider's calls to its cloud.
type CloudHealth struct {
	LastError           string         `json:"lastError"`
	LastErrorAt         time.Time      `json:"lastErrorAt"`
	Throttled           bool           `json:"throttled"`
	Unreachable         bool           `json:"unreachable"`
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

// RequestsArgs are the arguments of the requests method.
type RequestsArgs struct {
	All bool `json:"all"`
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
	Units         int       `json:"units,omitempty"`
	CreatedAt     time.Time `json:"createdAt"`
	ClientToken   string    `json:"clientToken,omitempty"`
	Phase         string    `json:"phase,omitempty"`
	Attempts      int       `json:"attempts,omitempty"`
	NextAttempt   time.Time `json:"nextAttempt,omitzero"`
	Handle        string    `json:"handle,omitempty"`
	HandleCapped  bool      `json:"handleCapped,omitempty"`
	HandleDeleted bool      `json:"handleDeleted,omitempty"`
	FallbackUnits int       `json:"fallbackUnits,omitempty"`
	Pool          int       `json:"pool,omitempty"`
	LaunchError   string    `json:"launchError,omitempty"`
	Shortfall     string    `json:"shortfall,omitempty"`
	RetryNote     string    `json:"retryNote,omitempty"`
	Rebuilt       bool      `json:"rebuilt,omitempty"`
	MachineIDs    []string  `json:"machineIds,omitempty"`
	Unknown       []string  `json:"unknown,omitempty"`
	TerminateSent bool      `json:"terminateSent,omitempty"`
	AwaitingClaim bool      `json:"awaitingClaim,omitempty"`
	Unclaimed     bool      `json:"unclaimed,omitempty"`
	Status        string    `json:"status,omitempty"`
	Message       string    `json:"message,omitempty"`
	FinishedAt    time.Time `json:"finishedAt,omitzero"`
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
	ReclaimedAt      time.Time `json:"reclaimedAt,omitzero"`
	InterruptAt      time.Time `json:"interruptAt,omitzero"`
	LastSeen         time.Time `json:"lastSeen,omitzero"`
	EndedAt          time.Time `json:"endedAt,omitzero"`
}

// ReloadAnswer is the answer of the reload method.
type ReloadAnswer struct {
	Message string `json:"message"`
}
