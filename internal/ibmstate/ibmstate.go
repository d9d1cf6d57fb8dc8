// Package ibmstate reads the state file IBM's AWS host provider plugins
// keep in the provider's work folder ($HF_PROVIDER_WORKDIR), so that ohfpd
// can take over the hosts and requests of a running cluster (ohfpd
// --take-over-ibm). Pure: bytes in, requests out.
//
// Both of IBM's plugin generations write the same shape, with a few names
// of their own (IBM's cloud-provider-plugins, hostProviders/aws: the Java
// AwsEntity, AwsRequest and AwsMachine classes, saved by AwsUtil.saveToFile
// as <provider>-db.json; hostProviders/awsv2: db_manager.py, aws-db.json):
//
//	{"requests": [{
//	  "requestId": "r-0a1b...",          // Java: the reservation id (on-demand) or sfr-/fleet id;
//	                                     // Python: dir-<pid>-<time> or the fleet id
//	  "templateId": "Template-VM-1",
//	  "time": 1734619942000,             // creation, epoch milliseconds
//	  "rc_account": "default", "hostAllocationType": "direct", "fleetType" | "fleet_type": "...",
//	  "machines": [{
//	    "machineId": "i-0721bb06651cad7f1",
//	    "name": "ip-10-0-57-22.ec2.internal",
//	    "requestId" | "reqId": "r-0a1b...",
//	    "returnId" | "retId": "ret-<uuid>" (Java) | "remove-<pid>-<time>" (Python) | "",
//	    "template": "Template-VM-1",
//	    "result": "executing" | "succeed" | "fail",
//	    "status": "pending" | "running" | ...,
//	    "privateIpAddress": "10.0.57.22", "publicIpAddress": "...",
//	    "launchtime": 1734619942,          // epoch seconds
//	    "lifeCycleType": "OnDemand" | "Spot" | ...}]}]}
//
// Return requests have no entry of their own: a returned machine carries
// its return id.
package ibmstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Request is one of the plugin's acquire requests.
type Request struct {
	ID         string
	TemplateID string
	Created    time.Time // zero when the file does not say
	Machines   []Machine
}

// Machine is one instance of a request, as the plugin last recorded it.
type Machine struct {
	ID         string // the instance id
	Name       string // the host name HF knows it by
	ReturnID   string // the return request HF made for it, if any
	Result     string
	Status     string
	LaunchTime time.Time
}

// File is what the state file holds.
type File struct {
	Requests []Request
}

// Returns lists the return ids the machines carry, in order of first sight.
func (f File) Returns() []string {
	var out []string
	for _, r := range f.Requests {
		for _, m := range r.Machines {
			if m.ReturnID != "" && !slices.Contains(out, m.ReturnID) {
				out = append(out, m.ReturnID)
			}
		}
	}
	return out
}

// InstanceIDs lists every machine's instance id.
func (f File) InstanceIDs() []string {
	var out []string
	for _, r := range f.Requests {
		for _, m := range r.Machines {
			out = append(out, m.ID)
		}
	}
	return out
}

type rawFile struct {
	Requests *[]rawRequest `json:"requests"`
}

type rawRequest struct {
	RequestID  string       `json:"requestId"`
	TemplateID string       `json:"templateId"`
	Time       *int64       `json:"time"`
	Machines   []rawMachine `json:"machines"`
}

type rawMachine struct {
	MachineID  string `json:"machineId"`
	Name       string `json:"name"`
	RequestID  string `json:"requestId"`
	ReqID      string `json:"reqId"`
	ReturnID   string `json:"returnId"`
	RetID      string `json:"retId"`
	Template   string `json:"template"`
	Result     string `json:"result"`
	Status     string `json:"status"`
	LaunchTime *int64 `json:"launchtime"`
}

var (
	instanceIDRe = regexp.MustCompile(`^i-[0-9a-f]{8}([0-9a-f]{9})?$`)
	// requestIDRe: what ohfp can carry as a tag value and HF as an id.
	requestIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,127}$`)
)

// Parse reads a state file. Unknown fields are ignored (IBM's plugins add
// some across versions); what ohfp needs is checked, and every problem is
// named with where it is.
func Parse(data []byte) (File, error) {
	var raw rawFile
	if err := json.Unmarshal(data, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return File{}, fmt.Errorf("not JSON (at byte %d): %v", se.Offset, err)
		}
		return File{}, fmt.Errorf("not IBM's state file: %v", err)
	}
	if raw.Requests == nil {
		return File{}, errors.New(`not IBM's state file: no "requests" list at the top (IBM's plugins write {"requests": [...]})`)
	}
	var f File
	var problems []string
	seen := map[string]string{} // instance id -> request
	reqSeen := map[string]bool{}
	for i, rr := range *raw.Requests {
		where := fmt.Sprintf("requests[%d]", i)
		if !requestIDRe.MatchString(rr.RequestID) {
			problems = append(problems, fmt.Sprintf("%s: requestId %q is missing or not an id", where, rr.RequestID))
			continue
		}
		if reqSeen[rr.RequestID] {
			problems = append(problems, fmt.Sprintf("%s: requestId %s appears twice", where, rr.RequestID))
			continue
		}
		reqSeen[rr.RequestID] = true
		r := Request{ID: rr.RequestID, TemplateID: rr.TemplateID}
		if rr.Time != nil && *rr.Time > 0 {
			r.Created = time.UnixMilli(*rr.Time).UTC()
		}
		for j, rm := range rr.Machines {
			mwhere := fmt.Sprintf("%s (%s).machines[%d]", where, rr.RequestID, j)
			if !instanceIDRe.MatchString(rm.MachineID) {
				problems = append(problems, fmt.Sprintf("%s: machineId %q is not an EC2 instance id", mwhere, rm.MachineID))
				continue
			}
			if other, dup := seen[rm.MachineID]; dup {
				problems = append(problems, fmt.Sprintf("%s: instance %s is also in request %s", mwhere, rm.MachineID, other))
				continue
			}
			seen[rm.MachineID] = rr.RequestID
			m := Machine{ID: rm.MachineID, Name: strings.TrimSpace(rm.Name), ReturnID: strings.TrimSpace(rm.ReturnID),
				Result: rm.Result, Status: rm.Status}
			if m.ReturnID == "" {
				m.ReturnID = strings.TrimSpace(rm.RetID)
			}
			if m.ReturnID != "" && !requestIDRe.MatchString(m.ReturnID) {
				problems = append(problems, fmt.Sprintf("%s: return id %q is not an id", mwhere, m.ReturnID))
				continue
			}
			if rm.LaunchTime != nil && *rm.LaunchTime > 0 {
				m.LaunchTime = time.Unix(*rm.LaunchTime, 0).UTC()
			}
			if r.TemplateID == "" {
				r.TemplateID = rm.Template
			}
			r.Machines = append(r.Machines, m)
		}
		f.Requests = append(f.Requests, r)
	}
	if len(problems) > 0 {
		return File{}, fmt.Errorf("%d problem(s): %s", len(problems), strings.Join(problems, "; "))
	}
	return f, nil
}

// awsv2ReturnRe: the return ids of IBM's LSF Python plugin
// (hostProviders/awsv2: "remove-<pid>-<time>").
var awsv2ReturnRe = regexp.MustCompile(`^remove-[0-9]+-[0-9]+$`)

// IsReturnID reports whether id has the shape of a return id IBM's
// plugins hand out: "remove-<pid>-<time>" (awsv2), or "ret-" and a
// random (version 4) UUID (the Java plugin; ohfp's own ret- ids carry a
// version 7 UUID).
func IsReturnID(id string) bool {
	if awsv2ReturnRe.MatchString(id) {
		return true
	}
	rest, ok := strings.CutPrefix(id, "ret-")
	if !ok || len(rest) != 36 {
		return false
	}
	u, err := uuid.Parse(rest)
	return err == nil && u.Version() == 4
}
