package provider

import (
	"context"
	"time"
)

// EventKind is what a cloud event says of an instance.
type EventKind int

const (
	// EventInterruption: the cloud reclaims a Spot instance after a notice
	// (AWS: two minutes from the event's time).
	EventInterruption EventKind = iota + 1
	// EventRebalance: a Spot instance is at elevated risk of interruption.
	EventRebalance
	// EventStateChange: the instance entered State.
	EventStateChange
	// EventScheduled: maintenance, retirement, a reboot or a stop is
	// scheduled for the instance from NotBefore.
	EventScheduled
)

func (k EventKind) String() string {
	switch k {
	case EventInterruption:
		return "interruption"
	case EventRebalance:
		return "rebalance"
	case EventStateChange:
		return "state-change"
	case EventScheduled:
		return "scheduled"
	}
	return "unknown"
}

// Event is one cloud event about instances, in neutral terms.
type Event struct {
	Kind        EventKind
	InstanceIDs []string
	Time        time.Time // when the cloud emitted it
	State       State     // EventStateChange: the state entered
	Action      string    // EventInterruption: terminate, stop or hibernate
	Code        string    // EventScheduled: the cloud's code, e.g. instance-retirement
	NotBefore   time.Time // EventScheduled: the earliest start (zero: unknown)
	Description string
}

// ErrReplaced ends a long poll of a provider that a configuration reload
// replaced: no failure of the queue (the new provider polls on).
var ErrReplaced = &Error{Op: "ReceiveMessage", Kind: Transient, Message: "ended by a configuration reload"}

// Message is one message taken from an event queue: the events it
// carries, or why it carries none ohfp can use (Problem: "malformed" or
// "foreign", with Detail for the log). Handle acknowledges it.
type Message struct {
	Handle  string
	ID      string
	Events  []Event
	Problem string
	Detail  string
}

// QueueInfo is what a queue check found.
type QueueInfo struct {
	URL      string
	Messages int // approximate number waiting
}

// Events is implemented by providers that can read cloud events from a
// queue (AWS: EventBridge rules into an SQS queue). The queue complements
// the reconcile passes; it never replaces them.
type Events interface {
	// ReceiveEvents waits up to wait for messages on queue (a URL or a
	// name) and returns at most 10.
	ReceiveEvents(ctx context.Context, queue string, wait time.Duration) ([]Message, error)
	// AckEvents deletes handled messages from the queue.
	AckEvents(ctx context.Context, queue string, handles []string) error
	// CheckQueue reaches the queue and reads its attributes.
	CheckQueue(ctx context.Context, queue string) (QueueInfo, error)
}

// InstanceHealth is the health the cloud reports for a running instance
// with something wrong or scheduled; healthy instances are left out.
type InstanceHealth struct {
	ID string
	// InstanceImpaired, SystemImpaired: a failed instance or system status
	// check, since ImpairedSince (zero: the cloud did not say).
	InstanceImpaired bool
	SystemImpaired   bool
	ImpairedSince    time.Time
	Scheduled        []ScheduledEvent // not completed or cancelled
}

// ScheduledEvent is maintenance the cloud scheduled for an instance.
type ScheduledEvent struct {
	Code        string // instance-retirement, instance-reboot, system-reboot, system-maintenance, instance-stop
	NotBefore   time.Time
	Description string
}

// HealthChecker is implemented by providers that can report instance
// status checks and scheduled events.
type HealthChecker interface {
	// InstanceHealth lists the running instances with a scheduled event,
	// and, when statusChecks, those failing a status check.
	InstanceHealth(ctx context.Context, statusChecks bool) ([]InstanceHealth, error)
}
