// Package hf holds the IBM Spectrum Symphony Host Factory wire types: the
// documents the five provider operations answer, and strict parsers for the
// documents HF sends. It is pure: no I/O, no globals that change.
//
// Field names follow /work/shared/HF-CONTRACT.md exactly (camelCase).
package hf

import (
	"encoding/json"

	"github.com/ohfp/ohfp/internal/template"
)

// The five HF operations, spelled as HF names its scripts.
const (
	OpGetAvailableTemplates = "getAvailableTemplates"
	OpRequestMachines       = "requestMachines"
	OpGetRequestStatus      = "getRequestStatus"
	OpRequestReturnMachines = "requestReturnMachines"
	OpGetReturnRequests     = "getReturnRequests"
)

// Operations lists the five HF operations in the order HF uses them.
var Operations = []string{
	OpGetAvailableTemplates,
	OpRequestMachines,
	OpGetRequestStatus,
	OpRequestReturnMachines,
	OpGetReturnRequests,
}

// IsOperation reports whether op is one of the five HF operations.
func IsOperation(op string) bool {
	for _, o := range Operations {
		if o == op {
			return true
		}
	}
	return false
}

// Status is a request's status as HF reads it (RequestStatus.Status):
// HF's word, the one home of it; ohfp's domain chooses among them.
type Status string

// Request statuses.
const (
	StatusRunning           Status = "running"
	StatusComplete          Status = "complete"
	StatusCompleteWithError Status = "complete_with_error"
)

// Result is a machine's result as HF reads it (Machine.Result): HF's
// word, the one home of it.
type Result string

// Machine results.
const (
	ResultExecuting Result = "executing"
	ResultSucceed   Result = "succeed"
	ResultFail      Result = "fail"
)

// TemplatesReply answers getAvailableTemplates.
type TemplatesReply struct {
	Message   string        `json:"message"`
	Templates []TemplateOut `json:"templates"`
}

// MarshalJSON writes templates as [] rather than null when there are none.
func (r TemplatesReply) MarshalJSON() ([]byte, error) {
	type plain TemplatesReply
	if r.Templates == nil {
		r.Templates = []TemplateOut{}
	}
	return json.Marshal(plain(r))
}

// TemplateOut is one template as getAvailableTemplates reports it: every
// template field (attributes in the typed-array form) plus availableNumber,
// in one flat JSON object.
type TemplateOut struct {
	template.Template
	// AvailableNumber is what can still be provisioned now, in units.
	AvailableNumber int `json:"availableNumber"`
}

// RequestReply answers requestMachines and requestReturnMachines.
type RequestReply struct {
	RequestID string `json:"requestId"`
	Message   string `json:"message"`
}

// StatusReply answers getRequestStatus: one entry per asked id, in order.
type StatusReply struct {
	Requests []RequestStatus `json:"requests"`
}

// MarshalJSON writes requests as [] rather than null when there are none
// (see AppendJSON).
func (r StatusReply) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// RequestStatus is the state of one acquire (req-) or return (ret-) request.
type RequestStatus struct {
	RequestID string    `json:"requestId"`
	Status    Status    `json:"status"`
	Message   string    `json:"message"`
	Machines  []Machine `json:"machines"` // never null on the wire
}

// MarshalJSON writes machines as [] rather than null when there are none
// (see AppendJSON).
func (r RequestStatus) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// Machine is one machine of a request as getRequestStatus reports it.
// Pointer fields are null on the wire while unknown (never "").
type Machine struct {
	MachineID        string  `json:"machineId"`
	Name             string  `json:"name"` // private DNS name: the host name HF uses
	Result           Result  `json:"result"`
	Status           string  `json:"status"` // the cloud state: pending, running, ...
	PrivateIPAddress *string `json:"privateIpAddress"`
	PublicIPAddress  *string `json:"publicIpAddress"`
	LaunchTime       int64   `json:"launchtime"` // epoch seconds UTC
	Message          string  `json:"message"`
	InstanceType     string  `json:"instanceType"`
	PriceType        string  `json:"priceType"`
	InstanceTags     string  `json:"instanceTags"` // "k=v;k2=v2"
	CloudHostID      *string `json:"cloudHostId"`
}

// ReturnRequestsReply answers getReturnRequests: the hosts the cloud is
// taking back, which HF should drain and release.
type ReturnRequestsReply struct {
	Message  string          `json:"message"`
	Requests []ReturnRequest `json:"requests"`
}

// MarshalJSON writes requests as [] rather than null when there are none
// (see AppendJSON).
func (r ReturnRequestsReply) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// ReturnRequest is one host the cloud is taking back.
type ReturnRequest struct {
	Machine     string `json:"machine"`     // the host name exactly as HF sent it
	GracePeriod int    `json:"gracePeriod"` // seconds left, never negative; 0 when already gone
}

// ErrorReply is the document a failed call prints: {"message": "..."}.
type ErrorReply struct {
	Message string `json:"message"`
}

// StringPtr returns a pointer to s, or nil when s is empty: the form the
// nullable Machine fields want.
func StringPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
