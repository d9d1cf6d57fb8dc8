package awssim

import (
	"maps"
	"time"
)

// Eventual consistency (EC2 Developer Guide, "Eventual consistency in the
// Amazon EC2 API", https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html):
// a resource just created may be unknown to the calls that follow
// (InvalidInstanceID.NotFound, "This does not mean the instance does not
// exist"), a TerminateInstances answering InvalidInstanceID.NotFound does
// not mean the instance is or will be terminated, and describes may omit
// the new resource. awssim gives every new instance, Spot instance request,
// EC2 Fleet, Spot Fleet request and Auto Scaling group its own visibility
// time, drawn uniformly in [0, window] after its creation; before it, every
// call but the creating one (and its idempotent retries) behaves as if the
// resource did not exist. Tags added by CreateTags to an instance reach the
// tag filters (tag:KEY, tag-key, tag-value) after a delay drawn the same
// way; the instance's tagSet shows them at once.

// Immediate, given as Options.Consistency, turns eventual consistency off:
// every resource is visible to every call as soon as it exists.
const Immediate time.Duration = -1

// DefaultConsistencyWindow is the default bound of the visibility delay.
// AWS publishes no figure; its guide says to retry describes "starting
// with a couple of seconds of wait time".
const DefaultConsistencyWindow = 2 * time.Second

// Consistency is the eventual-consistency lever (SetConsistency,
// /_sim/consistency).
type Consistency struct {
	// Window bounds the random delay after which a new resource (or a new
	// instance tag, for filters) is visible to other calls; 0: at once.
	Window time.Duration `json:"window"`
}

// SetConsistency replaces the eventual-consistency window. Resources
// already created keep the visibility time they were given.
func (r *Region) SetConsistency(c Consistency) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.consistency = max(c.Window, 0)
}

// Consistency returns the eventual-consistency window.
func (r *Region) Consistency() Consistency {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Consistency{Window: r.consistency}
}

// visibleFrom draws the time from which a resource created now is visible
// to other calls. Call with the lock held.
func (r *Region) visibleFrom() time.Time {
	if r.consistency <= 0 {
		return r.now
	}
	return r.now.Add(time.Duration(r.rng.Int64N(int64(r.consistency) + 1)))
}

// visible reports whether a resource visible from t is visible now. Call
// with the lock held.
func (r *Region) visible(t time.Time) bool { return !r.now.Before(t) }

// addInstanceTags puts tags on an instance: its tagSet at once, its tag
// filters once the consistency delay has passed. Call with the lock held.
func (r *Region) addInstanceTags(in *instance, tags map[string]string) {
	maps.Copy(in.tags, tags)
	if r.consistency <= 0 {
		maps.Copy(in.ftags, tags)
		return
	}
	tags = maps.Clone(tags)
	r.schedule(r.visibleFrom(), func(time.Time) { maps.Copy(in.ftags, tags) })
}
