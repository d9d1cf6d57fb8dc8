// Package domain holds ohfp's aggregates, requests and machines, and the
// pure rules that turn what the cloud says into what HF is told. No I/O:
// everything here is decided from the values passed in, including the time.
package domain

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ohfp/ohfp/internal/english"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/provider"
)

// The words of a request and a machine each have one home, and a named
// type there:
//   - Kind, Phase and State are ohfp's own (this package).
//   - A request's Status and a machine's Result are HF's wire words
//     (hf.Status, hf.Result): HF defines them, the rules here choose them.
//   - The cloud's instance states are the provider's (provider.State); a
//     machine's State is the one the cloud last said, converted once by
//     Observe, or StateGone, which no cloud says.
// The disk records (package state) spell every one as a plain string.

// Kind says whether a request acquires or returns machines.
type Kind string

// Request kinds.
const (
	KindAcquire Kind = "acquire"
	KindReturn  Kind = "return"
)

// Phase is how far the launch of an acquire request went.
type Phase string

// Launch phases of an acquire request.
const (
	// PhaseQueued: recorded durably, the cloud call not yet made (or to be
	// retried after a transient error).
	PhaseQueued Phase = "queued"
	// PhaseLaunched: the cloud call answered; its instances are recorded.
	PhaseLaunched Phase = "launched"
	// PhaseFailed: the cloud refused the launch for good.
	PhaseFailed Phase = "failed"
)

// State is a machine's state as ohfp last knew it: the cloud's instance
// state (provider.State) from the last observation, or StateGone.
type State string

// Machine states: the cloud's, as the provider spells them, and gone.
const (
	StatePending      = State(provider.StatePending)
	StateRunning      = State(provider.StateRunning)
	StateShuttingDown = State(provider.StateShuttingDown)
	StateTerminated   = State(provider.StateTerminated)
	StateStopping     = State(provider.StateStopping)
	StateStopped      = State(provider.StateStopped)
	// StateGone marks an instance the cloud no longer shows at all.
	StateGone State = "gone"
)

// Request is an HF request: an acquire (req-) or a return (ret-).
type Request struct {
	ID         string    `json:"id"`
	Kind       Kind      `json:"kind"`
	Provider   string    `json:"provider"`
	TemplateID string    `json:"templateId,omitempty"`
	Units      int       `json:"units,omitempty"` // asked units (acquire)
	CreatedAt  time.Time `json:"createdAt"`
	// Acquire: LSF's rc_account and cluster name, for the instances' tag
	// RC_ACCOUNT and the user data's exports (as IBM's plugins).
	RcAccount   string `json:"rcAccount,omitempty"`
	ClusterName string `json:"clusterName,omitempty"`

	// Acquire: the cloud call and its outcome.
	ClientToken string    `json:"clientToken,omitempty"`
	Phase       Phase     `json:"phase,omitempty"`
	Attempts    int       `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	Handle      string    `json:"handle,omitempty"` // fleet or group, when the API has one
	// HandleCapped: the fleet or group was told to launch no more.
	HandleCapped bool `json:"handleCapped,omitempty"`
	// HandleDeleted: the fleet or group (and its launch template) is gone.
	HandleDeleted bool `json:"handleDeleted,omitempty"`
	// TakenOver: taken over from IBM's plugin (ohfpd --take-over-ibm):
	// its fleet, if any, is IBM's, and is ended without terminating
	// anything (provider.ForeignFleets), never deleted as ohfp's own.
	TakenOver bool `json:"takenOver,omitempty"`
	// FallbackUnits: units asked on-demand after Spot fell short
	// (heterogeneous Spot Fleet); the fallback launch uses its own token.
	FallbackUnits int `json:"fallbackUnits,omitempty"`
	// Pool: which of a RunInstances template's instance type and subnet
	// pairs the launch asks (the provider's alternatives, provider.Planner); moved on, durably,
	// before each next try when EC2 has no capacity in the last.
	Pool int `json:"pool,omitempty"`
	// PoolOrder: the order the alternatives are tried in (indices of
	// provider.Planner.Alternative; Pool is a position in it). Set before
	// the first attempt, the part not yet tried re-ranked each time the
	// launch moves on (provider.CapacityMemory: pools remembered without
	// capacity last); empty: the template's order.
	PoolOrder   []int  `json:"poolOrder,omitempty"`
	LaunchError string `json:"launchError,omitempty"`
	Shortfall   string `json:"shortfall,omitempty"` // why fewer units came than asked
	RetryNote   string `json:"retryNote,omitempty"` // e.g. "AWS throttling; next attempt at 12:00:08Z"
	Rebuilt     bool   `json:"rebuilt,omitempty"`   // recreated from cloud tags
	// UnitsFromTag: Units of a rebuilt request came from its instances'
	// TagRequestUnits (what HF asked for), not from the instances seen.
	UnitsFromTag bool `json:"unitsFromTag,omitempty"`

	// Both: the machines, by instance id, in launch (or return) order.
	MachineIDs []string `json:"machineIds,omitempty"`
	// Return: hosts HF named that ohfp does not hold.
	Unknown []string `json:"unknown,omitempty"`
	// Return: the termination call has been made.
	TerminateSent bool `json:"terminateSent,omitempty"`

	// AwaitingClaim: HF has not yet shown that it knows this acquire
	// request (it has not asked about it, returned one of its machines or
	// listed one in getReturnRequests). Set when the request is made,
	// cleared durably on HF's first sign. Records written before this field
	// existed lack it and so are never taken as unclaimed.
	AwaitingClaim bool `json:"awaitingClaim,omitempty"`
	// AnswerPending: recorded by requestMachines before its answer was
	// delivered to HF. A request that is so on disk is not launched by a
	// daemon loading it (a restart, or another candidate after a
	// failover) until HF asks about it, which proves the answer reached
	// HF: with a shared table a write whose answer timed out may still be
	// applied, while HF was told nothing was recorded.
	AnswerPending bool `json:"answerPending,omitempty"`
	// Unclaimed: HF never learned of this request (its answer was lost
	// with a crash), proved by HF's own getReturnRequests calls; its
	// machines were terminated.
	Unclaimed bool `json:"unclaimed,omitempty"`

	// Final state, once reached.
	Status     hf.Status `json:"status,omitempty"`
	Message    string    `json:"message,omitempty"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
}

// IsRequestID reports whether id has the shape of the ids ohfpd hands
// out: req-<uuid> (acquire) or ret-<uuid> (return).
func IsRequestID(id string) bool {
	rest, ok := strings.CutPrefix(id, "req-")
	if !ok {
		rest, ok = strings.CutPrefix(id, "ret-")
	}
	if !ok || len(rest) != 36 {
		return false
	}
	_, err := uuid.Parse(rest)
	return err == nil
}

// RequestIDTime is when a req- or ret- id was made, for ids of ohfpd's
// shape whose UUID is version 7 (RFC 9562: a Unix time in milliseconds);
// false for older ids (version 4).
func RequestIDTime(id string) (time.Time, bool) {
	if !IsRequestID(id) {
		return time.Time{}, false
	}
	u, err := uuid.Parse(id[4:])
	if err != nil || u.Version() != 7 {
		return time.Time{}, false
	}
	sec, nsec := u.Time().UnixTime()
	return time.Unix(sec, nsec), true
}

// Final reports whether the request reached a final HF status.
func (r *Request) Final() bool {
	return r.Status == hf.StatusComplete || r.Status == hf.StatusCompleteWithError
}

// Machine is one cloud instance ohfp launched.
type Machine struct {
	ID           string    `json:"id"` // the instance id
	RequestID    string    `json:"requestId"`
	ReturnID     string    `json:"returnId,omitempty"` // set once HF returns it
	Provider     string    `json:"provider"`
	TemplateID   string    `json:"templateId"`
	Name         string    `json:"name,omitempty"` // private DNS name
	PrivateIP    string    `json:"privateIp,omitempty"`
	PublicIP     string    `json:"publicIp,omitempty"`
	State        State     `json:"state"`
	StateReason  string    `json:"stateReason,omitempty"`
	InstanceType string    `json:"instanceType,omitempty"`
	Spot         bool      `json:"spot,omitempty"`
	SpotRequest  string    `json:"spotRequest,omitempty"`
	Weight       int       `json:"weight"`
	LaunchTime   time.Time `json:"launchTime,omitzero"`
	Tags         string    `json:"tags,omitempty"` // instanceTags as "k=v;k2=v2"

	// Result as HF sees it in the acquire request; once succeed or fail it
	// never goes back to executing.
	Result  hf.Result `json:"result"`
	Message string    `json:"message,omitempty"`

	// Doomed: ohfp decided to terminate it (pending timeout, orphan).
	Doomed bool `json:"doomed,omitempty"`
	// TerminateSent: the cloud accepted ohfp's termination call.
	TerminateSent bool `json:"terminateSent,omitempty"`
	// Handle: the fleet or group that launched it, if any.
	Handle string `json:"handle,omitempty"`
	// CapacityReleased: its fleet's or group's capacity was lowered for it,
	// so the cloud will not replace it.
	CapacityReleased bool `json:"capacityReleased,omitempty"`
	// IDTagged: the instance and its volumes carry their own id as a tag
	// (tag_instance_id, IBM's AWS_TAG_InstanceID).
	IDTagged bool `json:"idTagged,omitempty"`
	// ReclaimedAt: the cloud took it back outside HF (terminated, stopped or
	// vanished, not through a return request).
	ReclaimedAt time.Time `json:"reclaimedAt,omitzero"`
	// InterruptAt: a Spot interruption notice was given at that time.
	InterruptAt time.Time `json:"interruptAt,omitzero"`
	// DrainAt: the cloud said, at that time, that HF should drain the
	// machine before it fails (a scheduled retirement, reboot or
	// maintenance, failed status checks, a rebalance recommendation);
	// DrainBy is when the cloud will act (zero: now); DrainReason says
	// what, for HF's message and the operator.
	DrainAt     time.Time `json:"drainAt,omitzero"`
	DrainBy     time.Time `json:"drainBy,omitzero"`
	DrainReason string    `json:"drainReason,omitempty"`
	// Unlisted: an instance of one of IBM's fleets taken over with it
	// (ohfpd --take-over-ibm) that IBM's file did not list: HF may or may
	// not hold it. Until HF shows it does (getReturnRequests lists it, or
	// it is returned), the claim rule applies to it on its own: HF's
	// getReturnRequests calls leaving it out for the claim timeout prove
	// HF does not hold it, and it is terminated. Its tag
	// provider.TagTakenOver is "ibm-unlisted", so a rebuild from tags
	// knows it too.
	Unlisted bool `json:"unlisted,omitempty"`
	// Seq orders machine creation within this process (not persisted): a
	// cloud listing taken before a machine was recorded says nothing about
	// its absence.
	Seq uint64 `json:"-"`
	// AwaitingClaim mirrors its request's AwaitingClaim in memory (not
	// persisted), so getReturnRequests can tell at a glance, for each of
	// 10,000 hosts, whether listing it is HF's first sign of the request.
	AwaitingClaim bool `json:"-"`
	// AZ: its Availability Zone, as the cloud last said (not persisted:
	// the first listing after a start says it again). Spot prices depend
	// on it.
	AZ string `json:"-"`
	// LastSeen: the last reconcile pass that saw it in the cloud.
	LastSeen time.Time `json:"lastSeen,omitzero"`
	// EndedAt: when it was seen terminated or gone.
	EndedAt time.Time `json:"endedAt,omitzero"`
}

// Live reports whether the machine still holds capacity: not terminated,
// not gone.
func (m *Machine) Live() bool {
	return m.State != StateTerminated && m.State != StateGone
}

// WantsTermination reports whether ohfp must still ask the cloud to
// terminate the machine: HF returned it or ohfp doomed it, it is live, and
// no termination call has been accepted yet.
func (m *Machine) WantsTermination() bool {
	return (m.ReturnID != "" || m.Doomed) && m.Live() && !m.TerminateSent
}

// WantsCapacityRelease reports whether the machine's fleet or group must
// still be told to drop its capacity because the cloud took the machine
// back outside HF, so that no replacement arrives behind HF's back. Not
// for a machine that failed before it was usable: its request still waits
// for those units, and the fleet's or group's replacement is what brings
// them (lowering the capacity for it would leave the request short, and a
// group below its instances refuses every later return). A machine HF
// returned after an interruption notice that the cloud then took, before
// any termination call of ohfp's (LeftToCloud), needs it too: its Release
// never ran.
func (m *Machine) WantsCapacityRelease() bool {
	if m.Handle == "" || m.CapacityReleased || m.Doomed || m.Result == hf.ResultFail {
		return false
	}
	if m.ReturnID != "" {
		return !m.InterruptAt.IsZero() && !m.Live() && !m.TerminateSent
	}
	return !m.ReclaimedAt.IsZero()
}

// Held reports whether the machine counts against its template's maxNumber:
// it is live or HF has not yet been told it failed.
func (m *Machine) Held() bool {
	return m.Live() && m.Result != hf.ResultFail
}

// Observation is what the cloud said of an instance in one pass.
type Observation struct {
	State       provider.State
	StateReason string
	PrivateIP   string
	PublicIP    string
	PrivateDNS  string
	LaunchTime  time.Time
	AZ          string // Availability Zone
	// SpotRequestID: the instance's Spot request, when the cloud says (a
	// fleet's launch answer may not yet).
	SpotRequestID string
}

// Observe applies a cloud observation, taken at now, to the machine: the
// cloud's state becomes the machine's, and its acquire result and reclaim
// marks advance. It returns true when anything HF can see changed. The
// pending timeout is not its concern (PendingExpired, GiveUp).
func (m *Machine) Observe(o Observation, now time.Time) bool {
	before := *m
	m.LastSeen = now
	m.State = State(o.State)
	if o.StateReason != "" {
		m.StateReason = o.StateReason
	}
	if o.PrivateIP != "" {
		m.PrivateIP = o.PrivateIP
	}
	if o.PublicIP != "" {
		m.PublicIP = o.PublicIP
	}
	if o.PrivateDNS != "" {
		m.Name = o.PrivateDNS
	}
	if !o.LaunchTime.IsZero() {
		m.LaunchTime = o.LaunchTime
	}
	if o.AZ != "" {
		m.AZ = o.AZ
	}
	if o.SpotRequestID != "" && m.SpotRequest == "" {
		m.SpotRequest, m.Spot = o.SpotRequestID, true
	}
	m.advance(now)
	return !sameVisible(&before, m)
}

// Vanish records that the cloud no longer shows the machine at all.
func (m *Machine) Vanish(now time.Time) bool {
	if m.State == StateGone {
		return false
	}
	m.State = StateGone
	m.advance(now)
	return true
}

// advance moves the acquire result and the reclaim marks after a state
// change.
func (m *Machine) advance(now time.Time) {
	switch m.State {
	case StateRunning:
		if m.Result == hf.ResultExecuting && m.PrivateIP != "" {
			m.Result = hf.ResultSucceed
		}
	case StateTerminated, StateGone, StateShuttingDown, StateStopping, StateStopped:
		if m.Result == hf.ResultExecuting {
			m.Result = hf.ResultFail
			if m.Message == "" {
				m.Message = fmt.Sprintf("instance %s before it was usable%s", describeEnd(m.State), reasonSuffix(m.StateReason))
			}
		}
		// Ended outside HF: not returned by HF and not terminated by ohfp.
		if m.ReturnID == "" && !m.Doomed && !m.TerminateSent && m.ReclaimedAt.IsZero() {
			m.ReclaimedAt = now
		}
		if (m.State == StateTerminated || m.State == StateGone) && m.EndedAt.IsZero() {
			m.EndedAt = now
		}
	}
}

func describeEnd(state State) string {
	switch state {
	case StateGone:
		return "vanished from the cloud"
	case StateStopping, StateStopped:
		return "was stopped"
	}
	return "was terminated"
}

func reasonSuffix(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}

// PendingExpired reports whether the machine has been pending longer than
// timeout and should be given up on.
func (m *Machine) PendingExpired(now time.Time, timeout time.Duration) bool {
	if m.Result != hf.ResultExecuting || m.State != StatePending || m.LaunchTime.IsZero() {
		return false
	}
	return now.Sub(m.LaunchTime) > timeout
}

// GiveUp marks a machine failed because it stayed pending too long; the
// caller terminates it.
func (m *Machine) GiveUp(timeout time.Duration) {
	m.Result = hf.ResultFail
	m.Doomed = true
	m.Message = fmt.Sprintf("instance still pending after %d s (pending timeout); ohfp terminated it", int(timeout.Seconds()))
}

func sameVisible(a, b *Machine) bool {
	return a.State == b.State && a.Result == b.Result && a.PrivateIP == b.PrivateIP &&
		a.PublicIP == b.PublicIP && a.Name == b.Name && a.LaunchTime.Equal(b.LaunchTime) &&
		a.Message == b.Message && a.ReclaimedAt.Equal(b.ReclaimedAt) && a.EndedAt.Equal(b.EndedAt) &&
		a.StateReason == b.StateReason
}

// GraceSeconds is the two-minute Spot interruption notice.
const GraceSeconds = 120

// ReclaimLeeway bounds how long a machine HF returned while the cloud was
// already reclaiming it (a Spot interruption notice) is left for the cloud
// to terminate, counted from the notice: its two minutes, then three more
// for the instance to go through shutting-down. Past it ohfp terminates the
// machine itself, so that a notice the cloud does not carry out (or a stop
// instead of a termination) never leaves a returned host running.
const ReclaimLeeway = GraceSeconds*time.Second + 3*time.Minute

// LeftToCloud reports whether, at now, a machine HF returned is left for
// the cloud to take back rather than terminated by ohfp (IBM's
// AWS_SPOT_TERMINATE_ON_RECLAIM=false: the partial hour of a Spot instance
// AWS interrupts is not billed). It holds while the machine had an
// interruption notice, is running, pending or already shutting down, no
// termination call was made, and the notice is younger than
// ReclaimLeeway. Everything it reads is durable (the return, the notice's
// time as the cloud gave it), so a restart neither shortens nor extends
// the wait.
func (m *Machine) LeftToCloud(now time.Time) bool {
	if m.ReturnID == "" || m.InterruptAt.IsZero() || m.TerminateSent || !m.Live() {
		return false
	}
	if m.State == StateStopping || m.State == StateStopped {
		return false // stopped instead of terminated: nothing more will come from the cloud
	}
	return now.Before(m.InterruptAt.Add(ReclaimLeeway))
}

// Reclaim says whether HF should drain and release the machine because the
// cloud is taking it back, and with how many seconds of grace. Machines HF
// returned itself are never reclaimed.
func (m *Machine) Reclaim(now time.Time) (grace int, ok bool) {
	if m.ReturnID != "" {
		return 0, false
	}
	if !m.ReclaimedAt.IsZero() {
		return 0, true
	}
	if !m.InterruptAt.IsZero() {
		left := GraceSeconds - int(now.Sub(m.InterruptAt)/time.Second)
		if left < 0 {
			left = 0
		}
		return left, true
	}
	if !m.DrainAt.IsZero() && m.Live() {
		return max(0, int(m.DrainBy.Sub(now)/time.Second)), true
	}
	return 0, false
}

// Drain records that the cloud asks for the machine to be drained (see
// DrainAt), at at, before by, for reason. The first reason stays; it
// reports whether anything changed. An interruption notice or a return
// already says more.
func (m *Machine) Drain(at, by time.Time, reason string) bool {
	if !m.DrainAt.IsZero() || !m.Live() || m.ReturnID != "" || !m.InterruptAt.IsZero() || !m.ReclaimedAt.IsZero() {
		return false
	}
	m.DrainAt, m.DrainBy, m.DrainReason = at, by, reason
	return true
}

// AcquireStatus derives an acquire request's HF status and message from its
// machines. It does not modify the request.
func AcquireStatus(r *Request, machines []*Machine) (status hf.Status, message string) {
	switch r.Phase {
	case PhaseFailed:
		return hf.StatusCompleteWithError, r.LaunchError
	case PhaseQueued, "":
		msg := "request accepted; launching"
		if r.RetryNote != "" {
			msg = r.RetryNote
		}
		return hf.StatusRunning, msg
	}
	var executing, failed, units int
	for _, m := range machines {
		switch m.Result {
		case hf.ResultExecuting:
			executing++
		case hf.ResultFail:
			failed++
		case hf.ResultSucceed:
			units += weightOf(m)
		}
	}
	if executing > 0 {
		return hf.StatusRunning, fmt.Sprintf("%d of %s running; %s starting", units, english.Plural(r.Units, "unit"), english.Plural(executing, "machine"))
	}
	if r.TakenOver {
		return takenOverStatus(machines)
	}
	if units < r.Units && r.Shortfall == "" && r.Rebuilt && r.UnitsFromTag {
		// Rebuilt after a failover: EC2 shows the other daemon's instances
		// one by one; the reconciler ends the wait (Shortfall) after the
		// visibility grace.
		return hf.StatusRunning, fmt.Sprintf("%d of %s found in the cloud; waiting for the others to show", units, english.Plural(r.Units, "unit"))
	}
	if units < r.Units && r.Shortfall == "" && r.Handle != "" && r.HandleCapped && r.FallbackUnits == 0 {
		// Capped by a cancel at what the cloud counted; EC2 shows the
		// rest a while after.
		return hf.StatusRunning, fmt.Sprintf("%d of %s running; %s capped, waiting for EC2 to show what it launched", units, english.Plural(r.Units, "unit"), r.Handle)
	}
	if units < r.Units && r.Shortfall == "" && (r.Handle != "" || r.FallbackUnits > 0) {
		// A fleet or group still working towards its target.
		return hf.StatusRunning, fmt.Sprintf("%d of %s running; waiting for %s to launch the rest", units, english.Plural(r.Units, "unit"), r.Handle)
	}
	if units >= r.Units && failed == 0 && r.Shortfall == "" {
		return hf.StatusComplete, fmt.Sprintf("%d of %s running", units, english.Plural(r.Units, "unit"))
	}
	if units >= r.Units {
		return hf.StatusComplete, fmt.Sprintf("%d of %s running; %s failed and %s replaced by others", units, english.Plural(r.Units, "unit"), english.Plural(failed, "machine"), wereWas(failed))
	}
	msg := fmt.Sprintf("%d of %s running", units, english.Plural(r.Units, "unit"))
	if failed > 0 {
		msg += fmt.Sprintf("; %s failed", english.Plural(failed, "machine"))
	}
	if r.Shortfall != "" {
		msg += "; " + r.Shortfall
	}
	return hf.StatusCompleteWithError, msg
}

// takenOverStatus is the status of a request taken over from IBM's
// plugin, none of whose machines is starting: it completed under IBM's
// plugin, and its units are the machines that still run (one that ended,
// by a return, the cloud or before the takeover, is not counted as
// running: IBM's plugin would not show it so).
func takenOverStatus(machines []*Machine) (hf.Status, string) {
	var units, failed int
	for _, m := range machines {
		switch {
		case !m.Live() || m.State == StateShuttingDown:
		case m.Result == hf.ResultSucceed:
			units += weightOf(m)
		default:
			failed++
		}
	}
	// The machines that ended are told by the status's "since then".
	msg := fmt.Sprintf("taken over from IBM's plugin; %s running", english.Plural(units, "unit"))
	if failed > 0 {
		msg += fmt.Sprintf("; %s failed", english.Plural(failed, "machine"))
	}
	if units == 0 {
		return hf.StatusCompleteWithError, msg
	}
	return hf.StatusComplete, msg
}

// The messages of machines that came for a request after it ended (a
// launch whose answer was lost, a cancel during the launch call): ohfp
// terminates them.
const (
	MsgArrivedAfter = "arrived after its request had finished; ohfp terminated it"
	MsgAfterCancel  = "launched after the operator cancelled the request; ohfp terminated it"
)

// Since tells what became of a finished acquire request's machines after
// its status was fixed (its message says what came then): returned,
// ended outside HF, or launched for it late and terminated. "" when
// nothing changed. It is appended to the message, so that a request whose
// machines are all gone does not read "10 of 10 units running" alone.
func Since(machines []*Machine) string {
	var returned, returnedGone, ended, late, lateGone int
	for _, m := range machines {
		switch {
		case m == nil:
		case m.Result == hf.ResultSucceed && m.ReturnID != "":
			returned++
			if !m.Live() {
				returnedGone++
			}
		case m.Result == hf.ResultSucceed && !m.Live():
			ended++
		case m.Result == hf.ResultFail && (m.Message == MsgArrivedAfter || m.Message == MsgAfterCancel):
			late++
			if !m.Live() {
				lateGone++
			}
		}
	}
	var parts []string
	switch {
	case returned > 0 && returnedGone == returned:
		parts = append(parts, fmt.Sprintf("%d returned and terminated", returned))
	case returned > 0:
		parts = append(parts, fmt.Sprintf("%d returned (%d terminated so far)", returned, returnedGone))
	}
	if ended > 0 {
		parts = append(parts, fmt.Sprintf("%d ended without being returned (the cloud or the console)", ended))
	}
	out := ""
	if len(parts) > 0 {
		out = "; since then " + strings.Join(parts, ", ")
	}
	if late > 0 {
		verb := "were"
		if lateGone < late {
			verb = "are being"
		}
		out += fmt.Sprintf("; %s launched for it after it ended %s terminated", english.Plural(late, "machine"), verb)
	}
	return out
}

// ReturnResult is a machine's result inside a return request: succeed once
// terminated or gone, executing while it shuts down.
func ReturnResult(m *Machine) hf.Result {
	if m == nil || !m.Live() {
		return hf.ResultSucceed
	}
	return hf.ResultExecuting
}

// ReturnStatus derives a return request's HF status and message.
func ReturnStatus(r *Request, machines []*Machine) (status hf.Status, message string) {
	done := 0
	for _, m := range machines {
		if ReturnResult(m) == hf.ResultSucceed {
			done++
		}
	}
	msg := fmt.Sprintf("%d of %s terminated", done, english.Plural(len(machines), "machine"))
	if len(r.Unknown) > 0 {
		msg += fmt.Sprintf("; %d not provisioned by ohfp and ignored: %s", len(r.Unknown), joinMax(r.Unknown, 10))
	}
	if done < len(machines) {
		return hf.StatusRunning, msg
	}
	return hf.StatusComplete, msg
}

// plural writes n and the noun, in the plural unless n is 1.

func wereWas(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}

func weightOf(m *Machine) int {
	if m.Weight > 0 {
		return m.Weight
	}
	return 1
}

func joinMax(items []string, n int) string {
	out := ""
	for i, s := range items {
		if i == n {
			return out + fmt.Sprintf(", and %d more", len(items)-n)
		}
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}
