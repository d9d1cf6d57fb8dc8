package awssim

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Faults are the injectable failures of the region. The zero value injects
// nothing. Probabilities are in [0, 1] and drawn per request from the
// seeded generator.
type Faults struct {
	// Throttling turns on EC2's token buckets (and approximations for Auto
	// Scaling and SSM): a request finding its bucket empty is answered
	// RequestLimitExceeded (EC2), Throttling (Auto Scaling) or
	// ThrottlingException (SSM). Buckets refill with the region's clock.
	Throttling bool `json:"throttling"`
	// ThrottleRate throttles this share of requests at random.
	ThrottleRate float64 `json:"throttleRate"`
	// ErrorRate answers this share of requests with a 5xx: half
	// InternalError (500), half ServiceUnavailable (503).
	ErrorRate float64 `json:"errorRate"`
	// DropRate closes the connection without an answer for this share,
	// before the call is run.
	DropRate float64 `json:"dropRate"`
	// DropAnswerRate runs this share of calls, then closes the connection
	// without their answer: the call took effect, the client cannot know
	// (the case client tokens exist for: EC2 API Reference, "Ensure
	// idempotency in Amazon EC2 API requests").
	DropAnswerRate float64 `json:"dropAnswerRate"`
	// Latency delays every answer by this much (wall time).
	Latency time.Duration `json:"latency"`
	// Actions limits the random faults and latency to these actions; empty:
	// all. Bucket throttling applies to every action regardless.
	Actions []string `json:"actions,omitempty"`
	// Denied are actions the caller's credentials may not make: an EC2
	// call is answered UnauthorizedOperation (403), dry runs included,
	// before its parameters are read; a Price List (GetProducts), Auto
	// Scaling or Service Quotas (GetServiceQuota) action
	// AccessDeniedException.
	Denied []string `json:"denied,omitempty"`
}

type levers struct {
	faults   Faults
	failures LaunchFailures
}

// LaunchFailures makes launched instances fail to start: pending, then
// terminated with a state reason, as EC2 does when a launch fails after
// the call returned (EC2 User Guide, "Troubleshoot Amazon EC2 instance
// launch issues", "Instance terminates immediately"; the codes are those
// of the API Reference's StateReason). Each instance any launcher starts
// fails with probability Rate, its reason drawn from Reasons (default
// Server.InternalError).
type LaunchFailures struct {
	Rate    float64  `json:"rate"`
	Reasons []string `json:"reasons,omitempty"`
}

// launchFailureReasons are the StateReason codes of a launch that fails
// after RunInstances returned (API Reference, StateReason).
var launchFailureReasons = map[string]string{
	"Server.InternalError":                "Server.InternalError: An internal error caused the instance to terminate during launch.",
	"Server.InsufficientInstanceCapacity": "Server.InsufficientInstanceCapacity: There was insufficient capacity available to satisfy the launch request.",
	"Client.InternalError":                "Client.InternalError: A client error caused the instance to terminate during launch.",
	"Client.InvalidSnapshot.NotFound":     "Client.InvalidSnapshot.NotFound: The specified snapshot was not found.",
	"Client.VolumeLimitExceeded":          "Client.VolumeLimitExceeded: The limit on the number of EBS volumes or total storage was exceeded. Decrease usage or request an increase in your account limits.",
}

// SetLaunchFailures replaces the launch-failure lever; unknown reason
// codes are an error.
func (r *Region) SetLaunchFailures(f LaunchFailures) error {
	for _, c := range f.Reasons {
		if _, ok := launchFailureReasons[c]; !ok {
			return fmt.Errorf("awssim: %q is not a launch-failure state reason (use one of %s)", c, strings.Join(sortedKeys(launchFailureReasons), ", "))
		}
	}
	if f.Rate < 0 || f.Rate > 1 {
		return fmt.Errorf("awssim: launch failure rate %v is not in [0, 1]", f.Rate)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f.Reasons = append([]string(nil), f.Reasons...)
	r.levers.failures = f
	return nil
}

// LaunchFailures returns the launch-failure lever.
func (r *Region) LaunchFailures() LaunchFailures {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.levers.failures
	f.Reasons = append([]string(nil), f.Reasons...)
	return f
}

// drawLaunchFailure decides whether a new instance fails to launch. Call
// with the lock held.
func (r *Region) drawLaunchFailure() stateReason {
	f := r.levers.failures
	if f.Rate <= 0 || r.rng.Float64() >= f.Rate {
		return reasonNone
	}
	code := "Server.InternalError"
	if len(f.Reasons) > 0 {
		code = f.Reasons[r.rng.IntN(len(f.Reasons))]
	}
	return stateReason{code, launchFailureReasons[code]}
}

// ShutdownFromOS shuts instances down from their operating system
// (shutdown -h): by their InstanceInitiatedShutdownBehavior, stopped (the
// default) or terminated, with Client.InstanceInitiatedShutdown (API
// Reference, StateReason; EC2 User Guide, "Change the instance initiated
// shutdown behavior"). A Spot Instance of a one-time request, which cannot
// be stopped, is terminated.
func (r *Region) ShutdownFromOS(ids ...string) error {
	return r.onInstances(ids, func(ins []*instance) error {
		for _, in := range ins {
			if in.state != stateRunning {
				return fmt.Errorf("awssim: %s is %s, not running", in.id, in.state)
			}
		}
		for _, in := range ins {
			sr := r.spotReqs[in.spotRequestID]
			oneTimeSpot := in.spot && (sr == nil || sr.reqType != "persistent")
			if in.shutdownBehavior == "terminate" || oneTimeSpot {
				r.terminate(in, reasonOSShutdown)
			} else {
				r.stop(in, reasonOSShutdown)
			}
			in.transitionNote = fmt.Sprintf("User initiated (%s)", r.now.UTC().Format("2006-01-02 15:04:05 MST"))
		}
		return nil
	})
}

type bucketClass string

// Throttling bucket classes. EC2's are AWS's documented defaults; Auto
// Scaling and SSM publish none, so theirs are approximations.
const (
	bucketNonMutating         bucketClass = "ec2:non-mutating"
	bucketDescribeUnfiltered  bucketClass = "ec2:describe-instances-unfiltered"
	bucketMutating            bucketClass = "ec2:mutating"
	bucketRunInstances        bucketClass = "ec2:RunInstances"
	bucketRunInstancesUnits   bucketClass = "ec2:RunInstances-instances"
	bucketTerminateInstances  bucketClass = "ec2:TerminateInstances"
	bucketAutoScaling         bucketClass = "autoscaling"
	bucketAutoScalingDescribe bucketClass = "autoscaling:describe"
	bucketSSM                 bucketClass = "ssm"
)

type bucket struct {
	capacity float64
	rate     float64 // tokens per second
	tokens   float64
	last     time.Time
}

func (b *bucket) take(now time.Time, n float64) bool {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(b.capacity, b.tokens+el*b.rate)
	}
	b.last = now
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

func (r *Region) initLevers() {
	now := r.clk.Now()
	mk := func(c, rate float64) *bucket { return &bucket{capacity: c, rate: rate, tokens: c, last: now} }
	r.buckets = map[bucketClass]*bucket{
		bucketNonMutating:         mk(100, 20),
		bucketDescribeUnfiltered:  mk(50, 10),
		bucketMutating:            mk(50, 5),
		bucketRunInstances:        mk(5, 2),
		bucketRunInstancesUnits:   mk(1000, 2),
		bucketTerminateInstances:  mk(100, 5),
		bucketAutoScaling:         mk(40, 10),
		bucketAutoScalingDescribe: mk(100, 20),
		bucketSSM:                 mk(40, 40),
	}
	r.actionClass["RunInstances"] = bucketRunInstances
	r.actionClass["TerminateInstances"] = bucketTerminateInstances
}

// classify returns the bucket an action draws from.
func (r *Region) classify(c *call) bucketClass {
	switch c.service {
	case svcSSM, svcPricing, svcQuotas:
		return bucketSSM
	case svcAutoScaling:
		if strings.HasPrefix(c.action, "Describe") {
			return bucketAutoScalingDescribe
		}
		return bucketAutoScaling
	}
	if c.action == "DescribeInstances" && !c.p.has("Filter") && !c.p.has("InstanceId") && !c.p.has("MaxResults") {
		return bucketDescribeUnfiltered
	}
	if cl, ok := r.actionClass[c.action]; ok {
		return cl
	}
	if strings.HasPrefix(c.action, "Describe") || strings.HasPrefix(c.action, "Get") {
		return bucketNonMutating
	}
	return bucketMutating
}

type fault struct {
	latency    time.Duration
	drop       bool // before the call runs
	dropAnswer bool // after it ran
	err        *APIError
}

func throttleError(service string) *APIError {
	switch service {
	case svcAutoScaling:
		return &APIError{Code: "Throttling", Message: "Rate exceeded", Status: 400}
	case svcSSM, svcPricing:
		return &APIError{Code: "ThrottlingException", Message: "Rate exceeded", Status: 400}
	case svcQuotas:
		return &APIError{Code: "TooManyRequestsException", Message: "Rate exceeded", Status: 400}
	}
	return &APIError{Code: "RequestLimitExceeded", Message: "Request limit exceeded.", Status: 503}
}

func serverError(service string, unavailable bool) *APIError {
	if unavailable {
		return &APIError{Code: "ServiceUnavailable", Message: "The service is unavailable. Please try again shortly.", Status: 503}
	}
	switch service {
	case svcAutoScaling:
		return &APIError{Code: "InternalFailure", Message: "An internal error has occurred.", Status: 500}
	case svcSSM:
		return &APIError{Code: "InternalServerError", Message: "An internal error has occurred.", Status: 500}
	case svcPricing:
		return &APIError{Code: "InternalErrorException", Message: "An internal error has occurred.", Status: 500}
	case svcQuotas:
		return &APIError{Code: "ServiceException", Message: "An internal error has occurred.", Status: 500}
	}
	return &APIError{Code: "InternalError", Message: "An internal error has occurred.", Status: 500}
}

// accessDeniedServices are the services whose refusals are
// AccessDeniedException, with their IAM action prefix (doc.go, "Refused
// actions").
var accessDeniedServices = map[string]string{svcPricing: "pricing", svcAutoScaling: "autoscaling", svcQuotas: "servicequotas"}

// pickFault decides the fault of one request. Call with the lock held.
func (r *Region) pickFault(c *call) fault {
	f := r.levers.faults
	var out fault
	if f.Throttling {
		if b := r.buckets[r.classify(c)]; b != nil && !b.take(r.clk.Now(), 1) {
			out.err = throttleError(c.service)
			return out
		}
	}
	if c.service == svcEC2 && contains(f.Denied, c.action) {
		out.err = errUnauthorized()
		return out
	}
	if prefix, ok := accessDeniedServices[c.service]; ok && contains(f.Denied, c.action) {
		out.err = &APIError{Code: "AccessDeniedException", Status: 400,
			Message: fmt.Sprintf("User: arn:aws:iam::%s:user/sim is not authorized to perform: %s:%s", AccountID, prefix, c.action)}
		return out
	}
	if len(f.Actions) > 0 && !contains(f.Actions, c.action) {
		return out
	}
	out.latency = f.Latency
	switch {
	case f.DropRate > 0 && r.rng.Float64() < f.DropRate:
		out.drop = true
	case f.ThrottleRate > 0 && r.rng.Float64() < f.ThrottleRate:
		out.err = throttleError(c.service)
	case f.ErrorRate > 0 && r.rng.Float64() < f.ErrorRate:
		out.err = serverError(c.service, r.rng.IntN(2) == 1)
	case f.DropAnswerRate > 0 && r.rng.Float64() < f.DropAnswerRate:
		out.dropAnswer = true
	}
	return out
}

// takeInstanceTokens draws n from RunInstances' instance bucket when
// throttling is on. Call with the lock held.
func (r *Region) takeInstanceTokens(n int) error {
	if !r.levers.faults.Throttling {
		return nil
	}
	if !r.buckets[bucketRunInstancesUnits].take(r.clk.Now(), float64(n)) {
		return throttleError(svcEC2)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// SetFaults replaces the injected faults. Turning throttling on refills the
// buckets.
func (r *Region) SetFaults(f Faults) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f.Throttling && !r.levers.faults.Throttling {
		now := r.clk.Now()
		for _, b := range r.buckets {
			b.tokens, b.last = b.capacity, now
		}
	}
	f.Actions = append([]string(nil), f.Actions...)
	r.levers.faults = f
}

// Faults returns the injected faults.
func (r *Region) Faults() Faults {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.levers.faults
	f.Actions = append([]string(nil), f.Actions...)
	return f
}

// SetThrottling turns EC2-like bucket throttling on or off.
func (r *Region) SetThrottling(on bool) {
	f := r.Faults()
	f.Throttling = on
	r.SetFaults(f)
}

// InterruptSpot interrupts Spot instances as EC2 does, by each request's
// interruption behaviour (see interruptSpot): terminate sets the request
// to instance-terminated-no-capacity now and terminates the instance
// SpotInterruptionNotice later with Server.SpotInstanceTermination; stop
// sets marked-for-stop now and stops it SpotInterruptionNotice later
// (instance-stopped-no-capacity); hibernate does the same with no notice.
// All ids are checked before any changes.
func (r *Region) InterruptSpot(ids ...string) error {
	return r.onInstances(ids, func(ins []*instance) error {
		for _, in := range ins {
			if in.spotRequestID == "" || !in.live() {
				return fmt.Errorf("awssim: %s is not a live Spot instance (state %s)", in.id, in.state)
			}
		}
		var errs []error
		for _, in := range ins {
			errs = append(errs, r.interruptSpot(in))
		}
		return errors.Join(errs...)
	})
}

// TerminateFromConsole terminates instances as a person would in the
// console: no API call is counted, and owners (fleets, groups) see them go.
func (r *Region) TerminateFromConsole(ids ...string) error {
	return r.onInstances(ids, func(ins []*instance) error {
		for _, in := range ins {
			r.terminate(in, reasonUserTerminate)
		}
		return nil
	})
}

// StopFromConsole stops instances as a person would in the console.
func (r *Region) StopFromConsole(ids ...string) error {
	return r.onInstances(ids, func(ins []*instance) error {
		for _, in := range ins {
			r.stop(in, reasonUserStop)
		}
		return nil
	})
}

// onInstances runs fn, with the lock held and the region brought up to
// now, on the instances ids name; an unknown id is an error and runs
// nothing.
func (r *Region) onInstances(ids []string, fn func(ins []*instance) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.advance(r.clk.Now())
	ins, err := r.lookup(ids)
	if err != nil {
		return err
	}
	return fn(ins)
}

func (r *Region) lookup(ids []string) ([]*instance, error) {
	out := make([]*instance, 0, len(ids))
	for _, id := range ids {
		in := r.instances[id]
		if in == nil {
			return nil, fmt.Errorf("awssim: no instance %s", id)
		}
		out = append(out, in)
	}
	return out, nil
}

// SetCapacity limits how many live instances of a type an AZ holds; n < 0
// removes the limit. Launches beyond it fail with
// InsufficientInstanceCapacity. Instances already running are kept.
func (r *Region) SetCapacity(instanceType, az string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pool(instanceType, az).limit = n
}

// Calls returns how many requests each action received (all services,
// faults included).
func (r *Region) Calls() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.calls)
}

// Errors returns how many requests of each action were answered with an
// error (injected faults included).
func (r *Region) Errors() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.errs)
}

// Pseudo error codes of ErrorCodes for the calls no error answered.
const (
	// CodeConnectionDropped: Faults.DropRate closed the connection before
	// the call ran.
	CodeConnectionDropped = "(connection dropped)"
	// CodeAnswerDropped: Faults.DropAnswerRate ran the call, then closed
	// the connection without its answer.
	CodeAnswerDropped = "(answer dropped)"
)

// ErrorCodes breaks Errors down by error code: keys are "Action Code"
// (e.g. "RunInstances RequestLimitExceeded", "DescribeInstances
// FilterLimitExceeded"); dropped connections and answers count under
// CodeConnectionDropped and CodeAnswerDropped.
func (r *Region) ErrorCodes() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.errCodes)
}

// ResetCounts zeroes Calls, Errors and ErrorCodes.
func (r *Region) ResetCounts() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.calls)
	clear(r.errs)
	clear(r.errCodes)
}

// InstanceInfo is a copy of one instance's state, for tests.
type InstanceInfo struct {
	ID            string            `json:"instanceId"`
	ReservationID string            `json:"reservationId"`
	State         string            `json:"state"`
	StateReason   string            `json:"stateReason,omitempty"`
	InstanceType  string            `json:"instanceType"`
	AZ            string            `json:"availabilityZone"`
	SubnetID      string            `json:"subnetId"`
	ImageID       string            `json:"imageId"`
	PrivateIP     string            `json:"privateIpAddress"`
	PrivateDNS    string            `json:"privateDnsName"`
	LaunchTime    time.Time         `json:"launchTime"`
	Spot          bool              `json:"spot"`
	SpotRequestID string            `json:"spotInstanceRequestId,omitempty"`
	Owner         string            `json:"owner,omitempty"`
	Weight        float64           `json:"weight"`
	Tags          map[string]string `json:"tags"`
}

func (in *instance) info() InstanceInfo {
	return InstanceInfo{
		ID: in.id, ReservationID: in.reservationID, State: in.state, StateReason: in.reason.code,
		InstanceType: in.typ.name, AZ: in.subnet.az, SubnetID: in.subnet.id, ImageID: in.imageID,
		PrivateIP: in.privateIP.String(), PrivateDNS: in.privateDNS, LaunchTime: in.launchTime,
		Spot: in.spot, SpotRequestID: in.spotRequestID, Owner: in.owner, Weight: in.weight,
		Tags: maps.Clone(in.tags),
	}
}

// Instances returns copies of every instance still visible, in launch
// order, after advancing the state to the clock's time.
func (r *Region) Instances() []InstanceInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.advance(r.clk.Now())
	out := make([]InstanceInfo, 0, len(r.instances))
	for _, in := range r.order {
		if !in.purged {
			out = append(out, in.info())
		}
	}
	return out
}

// Instance returns a copy of one instance, false if unknown or purged.
func (r *Region) Instance(id string) (InstanceInfo, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.advance(r.clk.Now())
	in := r.instances[id]
	if in == nil {
		return InstanceInfo{}, false
	}
	return in.info(), true
}

// Subnets returns the region's subnet ids by AZ.
func (r *Region) Subnets() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for _, s := range r.subnets {
		out[s.az] = s.id
	}
	return out
}

// DefaultSecurityGroup returns the id of the default VPC's security group
// "default".
func (r *Region) DefaultSecurityGroup() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sgs[0].id
}

// ImageID returns the id of the seeded AMI whose SSM public parameter is
// name, e.g. "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64".
func (r *Region) ImageID(ssmParameter string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.params[ssmParameter]; p != nil {
		return p.value
	}
	return ""
}

// ---------------------------------------------------------------------------
// HTTP control endpoint

type idsBody struct {
	InstanceIDs []string `json:"instanceIds"`
}

type capacityBody struct {
	InstanceType     string `json:"instanceType"`
	AvailabilityZone string `json:"availabilityZone"`
	Count            int    `json:"count"`
}

// controlHandler serves the levers as JSON under /_sim/ (a path AWS never
// uses):
//
//	GET  /_sim/faults                 -> Faults
//	POST /_sim/faults                 <- Faults
//	POST /_sim/interrupt-spot         <- {"instanceIds": [...]}
//	POST /_sim/terminate              <- {"instanceIds": [...]}
//	POST /_sim/stop                   <- {"instanceIds": [...]}
//	POST /_sim/capacity               <- {"instanceType", "availabilityZone", "count"}
//	GET  /_sim/counts                 -> {"calls": {...}, "errors": {...}, "errorCodes": {"Action Code": n}}
//	POST /_sim/counts/reset
//	GET  /_sim/instances              -> [InstanceInfo]
//	POST /_sim/tick
//	GET  /_sim/consistency            -> Consistency ({"window": ns})
//	POST /_sim/consistency            <- Consistency
//	GET  /_sim/launch-failures        -> LaunchFailures
//	POST /_sim/launch-failures        <- {"rate", "reasons": [...]}
//	POST /_sim/os-shutdown            <- {"instanceIds": [...]}
//	GET  /_sim/queues                 -> {"name": messages held}
//	POST /_sim/queues                 <- {"name"} -> {"queueUrl"}
//	POST /_sim/rebalance              <- {"instanceIds": [...]}
//	POST /_sim/schedule-event         <- {"instanceIds", "code", "notBefore"}
//	POST /_sim/impair                 <- {"instanceIds", "check": "instance"|"system", "ok", "since"}
//	GET  /_sim/quotas                 -> {"L-1216C47A": 64, ...}
//	POST /_sim/quotas                 <- {"L-1216C47A": 64, ...} (a negative value removes one)
func (r *Region) controlHandler() http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any, err error) {
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "BadRequest", "message": err.Error()}})
			return
		}
		if v == nil {
			v = map[string]bool{"ok": true}
		}
		json.NewEncoder(w).Encode(v)
	}
	decode := func(req *http.Request, v any) error {
		dec := json.NewDecoder(http.MaxBytesReader(nil, req.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("bad JSON body: %w", err)
		}
		return nil
	}
	mux.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, req *http.Request) { reply(w, r.Faults(), nil) })
	mux.HandleFunc("POST /_sim/faults", func(w http.ResponseWriter, req *http.Request) {
		var f Faults
		err := decode(req, &f)
		if err == nil {
			r.SetFaults(f)
		}
		reply(w, nil, err)
	})
	idsAction := func(fn func(...string) error) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			var b idsBody
			err := decode(req, &b)
			if err == nil {
				err = fn(b.InstanceIDs...)
			}
			reply(w, nil, err)
		}
	}
	mux.HandleFunc("POST /_sim/interrupt-spot", idsAction(r.InterruptSpot))
	mux.HandleFunc("POST /_sim/terminate", idsAction(r.TerminateFromConsole))
	mux.HandleFunc("POST /_sim/stop", idsAction(r.StopFromConsole))
	mux.HandleFunc("POST /_sim/capacity", func(w http.ResponseWriter, req *http.Request) {
		var b capacityBody
		err := decode(req, &b)
		if err == nil {
			r.SetCapacity(b.InstanceType, b.AvailabilityZone, b.Count)
		}
		reply(w, nil, err)
	})
	mux.HandleFunc("GET /_sim/counts", func(w http.ResponseWriter, req *http.Request) {
		reply(w, map[string]map[string]int{"calls": r.Calls(), "errors": r.Errors(), "errorCodes": r.ErrorCodes()}, nil)
	})
	mux.HandleFunc("POST /_sim/counts/reset", func(w http.ResponseWriter, req *http.Request) { r.ResetCounts(); reply(w, nil, nil) })
	mux.HandleFunc("GET /_sim/actions", func(w http.ResponseWriter, req *http.Request) { reply(w, r.Actions(), nil) })
	mux.HandleFunc("GET /_sim/instances", func(w http.ResponseWriter, req *http.Request) { reply(w, r.Instances(), nil) })
	mux.HandleFunc("POST /_sim/tick", func(w http.ResponseWriter, req *http.Request) { r.Tick(); reply(w, nil, nil) })
	mux.HandleFunc("GET /_sim/consistency", func(w http.ResponseWriter, req *http.Request) { reply(w, r.Consistency(), nil) })
	mux.HandleFunc("POST /_sim/consistency", func(w http.ResponseWriter, req *http.Request) {
		var c Consistency
		err := decode(req, &c)
		if err == nil {
			r.SetConsistency(c)
		}
		reply(w, nil, err)
	})
	mux.HandleFunc("GET /_sim/launch-failures", func(w http.ResponseWriter, req *http.Request) { reply(w, r.LaunchFailures(), nil) })
	mux.HandleFunc("POST /_sim/launch-failures", func(w http.ResponseWriter, req *http.Request) {
		var f LaunchFailures
		err := decode(req, &f)
		if err == nil {
			err = r.SetLaunchFailures(f)
		}
		reply(w, nil, err)
	})
	mux.HandleFunc("POST /_sim/os-shutdown", idsAction(r.ShutdownFromOS))
	// Events and instance health (sqs.go, instancestatus.go).
	mux.HandleFunc("GET /_sim/queues", func(w http.ResponseWriter, req *http.Request) { reply(w, r.QueueMessages(), nil) })
	mux.HandleFunc("POST /_sim/queues", func(w http.ResponseWriter, req *http.Request) {
		var b struct {
			Name string `json:"name"`
		}
		err := decode(req, &b)
		var u string
		if err == nil {
			u, err = r.CreateQueue(b.Name)
		}
		reply(w, map[string]string{"queueUrl": u}, err)
	})
	mux.HandleFunc("POST /_sim/rebalance", idsAction(r.Rebalance))
	mux.HandleFunc("POST /_sim/schedule-event", func(w http.ResponseWriter, req *http.Request) {
		var b struct {
			InstanceIDs []string  `json:"instanceIds"`
			Code        string    `json:"code"`
			NotBefore   time.Time `json:"notBefore"`
		}
		err := decode(req, &b)
		if err == nil {
			err = r.ScheduleEvent(b.Code, b.NotBefore, b.InstanceIDs...)
		}
		reply(w, nil, err)
	})
	mux.HandleFunc("POST /_sim/impair", func(w http.ResponseWriter, req *http.Request) {
		var b struct {
			InstanceIDs []string  `json:"instanceIds"`
			Check       string    `json:"check"`
			OK          bool      `json:"ok"`
			Since       time.Time `json:"since"`
		}
		err := decode(req, &b)
		if err == nil {
			err = r.ImpairInstances(b.Check, b.OK, b.Since, b.InstanceIDs...)
		}
		reply(w, nil, err)
	})
	mux.HandleFunc("GET /_sim/quotas", func(w http.ResponseWriter, req *http.Request) { reply(w, r.Quotas(), nil) })
	mux.HandleFunc("POST /_sim/quotas", func(w http.ResponseWriter, req *http.Request) {
		var q map[string]float64
		err := decode(req, &q)
		if err == nil {
			err = r.SetQuotas(q)
		}
		reply(w, nil, err)
	})
	mux.HandleFunc("POST /_sim/prices", func(w http.ResponseWriter, req *http.Request) {
		var s PriceSetting
		err := decode(req, &s)
		if err == nil {
			err = r.SetPrices(s)
		}
		reply(w, nil, err)
	})
	return mux
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
