// Package provider is the cloud boundary of ohfpd: the narrow interface
// packages provision and reconcile call the cloud through. Package provider/aws implements
// it on aws-sdk-go-v2; tests use it against the simulated region.
package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ohfp/ohfp/internal/template"
)

// Tags ohfp puts on every resource it creates, so that the cloud alone is
// enough to rebuild the daemon's state.
const (
	TagManagedBy  = "ohfp:managed-by"  // value: the daemon's cluster id
	TagProvider   = "ohfp:provider"    // value: the HF provider name
	TagRequestID  = "ohfp:request-id"  // value: req-<uuid>
	TagTemplateID = "ohfp:template-id" // value: the templateId
	// TagRequestUnits: the units HF asked for in the request (so that a
	// daemon rebuilding the request from tags after a failover knows how
	// many to wait for while EC2 shows them one by one).
	TagRequestUnits = "ohfp:request-units"
	// TagRcAccount is LSF's rc_account of the request, under the key IBM's
	// AWS plugins use (only when HF gave one).
	TagRcAccount = "RC_ACCOUNT"
	// TagReturnID is written on an instance HF returned before ohfp asks
	// the cloud to terminate it (value: ret-<uuid>), so that a daemon
	// without the return's record (a failover, a lost store) still knows it
	// was returned, by which return request, and that it must end.
	TagReturnID = "ohfp:return-id"
	// TagTakenOver marks an instance taken over from another plugin
	// (value: "ibm", ohfpd --take-over-ibm): its fleet, if any, is not
	// ohfp's, and ending it must never terminate what ohfp does not hold
	// (see ForeignFleets). On the instance, so a rebuild from the cloud's
	// tags knows it too.
	TagTakenOver = "ohfp:taken-over"
)

// State is an instance's state as the cloud says it: the one home of the
// cloud's words (a machine's state in package domain adds one the cloud
// never says, gone).
type State string

// Instance states as EC2 spells them.
const (
	StatePending      State = "pending"
	StateRunning      State = "running"
	StateShuttingDown State = "shutting-down"
	StateTerminated   State = "terminated"
	StateStopping     State = "stopping"
	StateStopped      State = "stopped"
)

// LaunchSpec is one request's provisioning call.
type LaunchSpec struct {
	RequestID   string
	ClientToken string // at most 64 ASCII characters; persisted before the call
	// RequestedAt is when the request was made: the same on every attempt,
	// so that what a launch derives from time (a fleet's ValidUntil) is the
	// same on a retry with ClientToken, which EC2 would otherwise refuse
	// (IdempotentParameterMismatch). Zero: now.
	RequestedAt time.Time
	Template    template.Template
	Units       int               // machineCount: weighted units to launch
	Tags        map[string]string // every tag the instances get (ohfp's and instanceTags)
	// RcAccount and ClusterName: LSF's rc_account and cluster name,
	// exported to the host's user data as IBM's plugins do.
	RcAccount, ClusterName string
}

// Instance is what the cloud says of one instance.
type Instance struct {
	ID            string
	State         State
	StateReason   string // EC2 state reason code, e.g. Server.SpotInstanceTermination
	InstanceType  string
	SubnetID      string
	AZ            string // Availability Zone
	PrivateIP     string
	PublicIP      string
	PrivateDNS    string
	LaunchTime    time.Time
	Spot          bool
	SpotRequestID string
	Tags          map[string]string
	// Handle names the fleet or group that launched it ("" for none), as
	// the cloud says (LaunchResult.Handle's form).
	Handle string
	// Volumes: the ids of the block storage volumes attached to it.
	Volumes []string
}

// IDTagger is implemented by a provider that can write each instance's own
// id on the instance and on its volumes (IBM's AWS_TAG_InstanceID), for
// tools that find a host's resources by it.
type IDTagger interface {
	// TagOwnID tags each of ids and its volumes with the instance's id. A
	// NotFound *Error names the ids the cloud does not show yet (or no
	// longer): the caller asks again later; the others are tagged.
	TagOwnID(ctx context.Context, ids []string) error
}

// LaunchResult is what a Launch call produced.
type LaunchResult struct {
	Instances []Instance // launched by the call itself
	Handle    string     // fleet id, Spot Fleet request id or group name; "" for RunInstances
	Errors    []string   // what the cloud reported it could not launch
}

// InstanceTypeInfo gives the HF attributes of an instance type.
type InstanceTypeInfo struct {
	Name      string
	VCPUs     int
	Cores     int
	MemoryMiB int
	Arch      string // x86_64 or arm64
}

// SpotRequest is the state of one Spot instance request.
type SpotRequest struct {
	ID           string
	InstanceID   string
	State        string // open, active, closed, cancelled, failed
	StatusCode   string // as EC2 reports it: fulfilled, instance-terminated-no-capacity, marked-for-stop, ...
	StatusUpdate time.Time
	// Interrupted: the cloud is reclaiming (or has reclaimed) the instance;
	// the interruption notice was given at StatusUpdate. With EC2 a
	// terminate-on-interruption instance shows instance-terminated-no-capacity
	// from the notice on, while still running for two minutes, never
	// marked-for-termination: read this, not StatusCode.
	Interrupted bool
}

// Provider is the cloud as the engine sees it. Implementations batch and
// paginate (up to 1000 instance ids a call) and never make one call per
// request.
type Provider interface {
	// Launch provisions spec.Units units. Calling it again with the same
	// ClientToken returns the first call's result instead of launching again.
	Launch(ctx context.Context, spec LaunchSpec) (LaunchResult, error)
	// List returns every instance tagged TagManagedBy=owner that the cloud
	// still shows, terminated ones included.
	List(ctx context.Context, owner string) ([]Instance, error)
	// Describe returns the instances tagged TagManagedBy=owner among ids,
	// and those tagged with one of requestIDs (fleets still launching):
	// what a busy reconcile pass needs, without listing everything. Ids
	// the cloud does not know are left out, never an error. An empty owner
	// describes ids whatever their tags (to confirm that an instance
	// missing from a listing by tag is really gone).
	Describe(ctx context.Context, owner string, ids, requestIDs []string) ([]Instance, error)
	// Terminate terminates the instances. Ids the cloud does not know do
	// not stop the others from being terminated; they come back in a
	// NotFound *Error (its IDs), which does not say they are gone: the
	// caller confirms with a later Describe (an instance just launched may
	// not be visible yet, and then it is still running).
	Terminate(ctx context.Context, ids []string) error
	// Tag writes tags on the instances (overwriting a tag of the same
	// key). Ids the cloud does not know come back in a NotFound *Error
	// (its IDs), the others are tagged: as with Terminate, that does not
	// say they are gone.
	Tag(ctx context.Context, ids []string, tags map[string]string) error
	// Find returns the instances tagged TagManagedBy=owner, in any state
	// the cloud still shows, that match one of q's criteria: what memory
	// does not hold and HF names (a failover: another daemon's request or
	// return, or a host it launched). Nothing found is no error. With an
	// eventually consistent cloud, an instance (or tag) just created may
	// be missing.
	Find(ctx context.Context, owner string, q Query) ([]Instance, error)
	// InstanceType describes an instance type (cached by the implementation).
	InstanceType(ctx context.Context, name string) (InstanceTypeInfo, error)
	// SpotRequests describes Spot instance requests by id.
	SpotRequests(ctx context.Context, ids []string) ([]SpotRequest, error)
}

// Query names instances for Find: any of the criteria matches.
type Query struct {
	IDs        []string // instance ids
	Names      []string // private DNS names (HF's host names)
	RequestIDs []string // values of TagRequestID
	ReturnIDs  []string // values of TagReturnID
}

// Empty reports whether q names nothing.
func (q Query) Empty() bool {
	return len(q.IDs) == 0 && len(q.Names) == 0 && len(q.RequestIDs) == 0 && len(q.ReturnIDs) == 0
}

// Kind classifies a cloud error by what the engine should do about it.
type Kind int

const (
	// Fatal errors (validation, unknown AMI, unauthorized) end the request.
	Fatal Kind = iota
	// Capacity errors (InsufficientInstanceCapacity and kin) end the request
	// or the part of it that could not be had.
	Capacity
	// Quota errors: an account limit was reached (InstanceLimitExceeded,
	// VcpuLimitExceeded, MaxSpotInstanceCountExceeded, ...). Another
	// instance type may still launch (vCPU limits are per family), so a
	// launch tries its alternatives as for Capacity; but waiting does not
	// fix it (a person raises the limit or frees capacity), so it counts
	// toward a template's failure breaker.
	Quota
	// Throttled errors are retried later with backoff.
	Throttled
	// Transient errors (5xx, network) are retried later with backoff.
	Transient
	// NotFound errors: the cloud does not know the resource (Error.IDs
	// names it). With an eventually consistent cloud this does not mean it
	// is gone: a resource just created may be unknown for a while (EC2
	// Developer Guide, "Eventual consistency in the Amazon EC2 API": a
	// TerminateInstances answering InvalidInstanceID.NotFound "does not
	// mean the instance was or will be terminated"). Not retried as is:
	// confirm with a later describe, and act again if the resource shows.
	NotFound
)

func (k Kind) String() string {
	switch k {
	case Capacity:
		return "capacity"
	case Quota:
		return "quota"
	case Throttled:
		return "throttled"
	case Transient:
		return "transient"
	case NotFound:
		return "not found"
	}
	return "fatal"
}

// Error is a classified cloud error.
type Error struct {
	Op      string // the API action, e.g. RunInstances
	Code    string // the AWS error code, e.g. InvalidAMIID.NotFound
	Message string
	Kind    Kind
	// IDs are the resources the error is about, when it names some
	// (NotFound: the ids the cloud did not know).
	IDs []string
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s: %s", e.Op, e.Message)
	}
	return fmt.Sprintf("%s: %s: %s", e.Op, e.Code, e.Message)
}

// KindOf returns the kind of err: the Kind of a wrapped *Error, Transient
// for context deadline errors, else Fatal.
func KindOf(err error) Kind {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Transient
	}
	return Fatal
}

// Retryable reports whether err is worth retrying later.
func Retryable(err error) bool {
	k := KindOf(err)
	return k == Throttled || k == Transient
}

// FleetStatus is what the cloud says of one fleet, Spot Fleet request or
// Auto Scaling group (a launch handle).
type FleetStatus struct {
	Handle string
	// Target and Fulfilled are in weighted units.
	Target    int
	Fulfilled int
	// Errors are the cloud's reasons for capacity it could not launch
	// (e.g. "InsufficientInstanceCapacity: ..."), newest last.
	Errors []string
	// Closed: no more capacity will arrive (instant fleet done, fleet or
	// request expired, cancelled or failed).
	Closed bool
	// Gone: the cloud says the handle was deleted (and has no instance
	// left).
	Gone bool
	// OutOfCapacity: among Errors, the cloud said it had no capacity.
	OutOfCapacity bool
	// NotFound: the cloud does not know the handle. Right after the launch
	// that is eventual consistency (the handle is not visible yet), not a
	// deletion; only a handle known long enough (past any visibility
	// window) can be taken as gone on this ground. Gone is not set.
	NotFound bool
}

// Fleets is implemented by providers whose launches create a fleet, Spot
// Fleet request or Auto Scaling group (LaunchResult.Handle is set).
// Packages provision (Release) and reconcile (Poll, Cap, Delete)
// type-assert it.
type Fleets interface {
	// Poll describes the handles, batched (one describe per API for all
	// handles). A handle the cloud does not know comes back NotFound.
	Poll(ctx context.Context, handles []string) (map[string]FleetStatus, error)
	// Release returns instances of a handle: it lowers the target capacity
	// by units FIRST (so nothing replaces them), then terminates ids. With
	// no ids it only lowers the capacity: provision does that when the
	// cloud took an instance back (Spot reclaim, console), so that a
	// maintain fleet or group does not replace it behind HF's back. For an
	// Auto Scaling group with no ids, lower DesiredCapacity (and MaxSize if
	// needed) by units.
	Release(ctx context.Context, handle string, ids []string, units int) error
	// Cap stops a handle from launching more: its target capacity is set
	// to keepUnits (what has arrived), without terminating anything.
	Cap(ctx context.Context, handle string, keepUnits int) error
	// Delete removes the handle and the launch template ohfp created for
	// it; instances still running are terminated.
	Delete(ctx context.Context, handle string) error
}

// ForeignFleets is implemented by providers whose fleets ohfp can take
// over from another plugin (IBM's: ohfpd --take-over-ibm).
type ForeignFleets interface {
	// FleetInstances lists the ids of the instances the fleet handle
	// counts as its own now (EC2: DescribeFleetInstances,
	// DescribeSpotFleetInstances: the active ones), so that a fleet is
	// taken over whole, not only what another plugin's file recorded. A
	// handle the cloud does not know: none, no error.
	FleetInstances(ctx context.Context, handle string) ([]string, error)
	// Abandon ends a fleet ohfp did not create without terminating any
	// of its instances (EC2: DeleteFleets / CancelSpotFleetRequests with
	// TerminateInstances false) and without touching its launch
	// templates: what ohfp does not hold stays with whoever does. A
	// handle the cloud does not know, or that cannot be deleted without
	// terminating (an instant EC2 Fleet, which launches nothing more), is
	// no error.
	Abandon(ctx context.Context, handle string) error
}

type pageHookKey struct{}

// WithPageHook returns a context under which a provider calls hook before
// fetching each page of a paginated listing (the reconciler uses it to let
// HF's calls go first; see package quiet).
func WithPageHook(ctx context.Context, hook func(context.Context)) context.Context {
	return context.WithValue(ctx, pageHookKey{}, hook)
}

// BeforePage calls the page hook ctx carries, if any.
func BeforePage(ctx context.Context) {
	if hook, ok := ctx.Value(pageHookKey{}).(func(context.Context)); ok && hook != nil {
		hook(ctx)
	}
}
