// Package state holds ohfpd's aggregates (requests, machines, templates
// and the instance types they need) in memory, their lock, and their
// write-through to the store. Package service answers HF from it,
// provision launches and terminates what it says, and reconcile folds the
// cloud into it; each takes State's lock as documented on its fields.
package state

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ohfp/ohfp/internal/clock"
	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/english"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/quiet"
	"github.com/ohfp/ohfp/internal/store"
	"github.com/ohfp/ohfp/internal/template"
)

// KV is the part of the store the state uses.
type KV interface {
	Write(ops ...store.Op) error
	Scan(prefix string, fn func(key string, value []byte) error) error
}

// ProviderConfig is one HF provider instance: its templates and its cloud.
type ProviderConfig struct {
	Name           string
	Templates      []template.Template
	Cloud          provider.Provider
	PendingTimeout time.Duration // default 180 s
	// BreakerFailures: launches of a template failing in a row for
	// reasons retrying cannot fix stop it after this many (0: never);
	// BreakerCooldown: it re-arms this long after (0: only by a reload or
	// ohfp rearm). See breaker.go.
	BreakerFailures int
	BreakerCooldown time.Duration
	// EventQueue, when set, is the queue (AWS: an SQS URL or name) of
	// cloud events the daemon long-polls beside its passes; Cloud must
	// implement provider.Events.
	EventQueue string
	// RebalanceAsReclaim reports rebalance recommendations to HF as the
	// cloud taking the host back.
	RebalanceAsReclaim bool
	// HealthChecks drains hosts with scheduled events (retirement, reboot,
	// maintenance, stop); StatusCheckGrace, when above 0, also hosts
	// failing a status check for that long. Cloud must implement
	// provider.HealthChecker.
	HealthChecks     bool
	StatusCheckGrace time.Duration
	// SpotTerminateOnReclaim is IBM's AWS_SPOT_TERMINATE_ON_RECLAIM: a
	// machine HF returns after a Spot interruption notice is terminated
	// at once (true), or left for the cloud to take back (false, IBM's
	// default) until domain.ReclaimLeeway after the notice.
	SpotTerminateOnReclaim bool
	// TagInstanceID is IBM's AWS_TAG_InstanceID: once running, each
	// machine and its volumes are tagged with its own id (Cloud must
	// implement provider.IDTagger).
	TagInstanceID bool
}

// Options configure the core (state, service, provision, reconcile).
type Options struct {
	ClusterID      string // value of the ohfp:managed-by tag
	Providers      []ProviderConfig
	Store          KV
	Clock          clock.Clock
	Logger         *slog.Logger
	ActiveInterval time.Duration // reconcile delay while work is in flight (default 3 s)
	IdleInterval   time.Duration // reconcile delay when idle (default 30 s)
	Retention      time.Duration // how long final requests and ended machines are kept (default 7 days)
	LaunchDeadline time.Duration // how long transient launch errors are retried (default 10 min)
	// VisibilityGrace is how long a just-launched instance may be missing
	// from DescribeInstances (EC2 is eventually consistent) before it is
	// taken as gone (default 2 min).
	VisibilityGrace time.Duration
	// ClaimTimeout: an acquire request HF never showed it knows (no
	// getRequestStatus for it, none of its machines returned or listed in
	// getReturnRequests) is taken as lost with a crash before its answer,
	// and its machines are terminated, once HF's own getReturnRequests
	// calls, which list every host HF holds, have left its machines out
	// for this long (default 30 min) as seen by this process. Nothing a
	// restart erases counts: the claim is persisted, and the evidence
	// starts again at every start (see provenUnclaimedLocked).
	ClaimTimeout time.Duration
	// LaunchWorkers bounds concurrent cloud calls of the provisioner.
	LaunchWorkers int
	// Gate, when set, marks the calls being served. A due full reconcile
	// listing starts only at a pause in them (quiet.Gap), or once it has
	// been put off for two idle intervals; until then passes describe
	// what is in flight, every active interval. Started at a pause, it
	// waits for a pause (at most quiet.MaxWait each time, quiet.MaxTotal
	// in all) before each page and before its diff takes the state's
	// lock; put off that long, it runs without waiting.
	Gate    *quiet.Gate
	Version string
}

// Store key prefixes.
const (
	KeyRequest  = "r/"
	KeyMachine  = "m/"
	KeyTypeInfo = "t/"
)

// State is the daemon's aggregates and their lock. It is safe for
// concurrent use under the rules of its fields.
type State struct {
	Opts  Options
	Log   *slog.Logger
	Clock clock.Clock
	store KV

	// Admit serialises requestMachines and requestReturnMachines (and
	// reloads), which decide on what is held before they record.
	Admit sync.Mutex

	// Mu guards every field below it (Holdings are atomics).
	Mu        sync.RWMutex
	Providers map[string]*Provider
	Order     []string // provider names; the first is the default
	Requests  map[string]*domain.Request
	Machines  map[string]*domain.Machine
	ByName    map[string]*domain.Machine
	TypeInfo  map[string]provider.InstanceTypeInfo
	// TypeErr is why the last DescribeInstanceTypes of a type not in
	// TypeInfo failed (memory only: the next pass asks again).
	TypeErr map[string]error
	// Prices are the hourly price estimates of what the live machines run
	// (package cost keeps them in the background; not persisted).
	Prices   map[PriceKey]provider.Price
	Inflight map[string]bool // request ids with a cloud call under way
	// TermInflight: instance ids with a termination or release under way.
	TermInflight map[string]bool
	// TermRetry: instance ids whose termination or release failed, and
	// when it is due again (backing off, so a call the cloud keeps
	// refusing is not made every pass).
	TermRetry map[string]TermRetry
	// TagInflight and TagRetry: the same for the id tags of
	// ProviderConfig.TagInstanceID.
	TagInflight map[string]bool
	TagRetry    map[string]TermRetry
	Seq         uint64 // machine creation counter (see domain.Machine.Seq)
	// Holdings counts HF's getReturnRequests calls in this process: each
	// lists every host HF holds, so calls that leave a request's machines
	// out are the evidence that HF never learned of it.
	Holdings struct {
		Calls atomic.Int64
		Last  atomic.Int64 // clock UnixNano of the latest call
	}
	// ClaimWatch: for requests awaiting HF's claim, the getReturnRequests
	// call from which their absence counts (in memory: a restart starts
	// the evidence again).
	ClaimWatch map[string]ClaimMark
	// ClaimUnsaved: requests HF has asked about whose claim is not on
	// disk yet: being written (a *ClaimWriting), or refused (a full
	// disk). HF is not shown their machines until it is: a crash would
	// forget the claim, and HF must never hold a machine that a restart
	// could make look unclaimed.
	ClaimUnsaved map[string]error
	// Undelivered: requests recorded whose requestMachines answer is still
	// being written to the caller; nothing is launched for them until it
	// is delivered (see service.RequestMachinesHeld).
	Undelivered map[string]bool
	Started     time.Time
	Health      Health
	// Notes are the operator's actions on each request, by request id,
	// oldest first; Drains the drained templates, by DrainKey. Both are
	// durable (operator.go).
	Notes  map[string][]Note
	Drains map[string]Drain
	// Breakers are the templates' failure breakers with a count or
	// tripped, by DrainKey (breaker.go); tripped ones are durable.
	Breakers map[string]*Breaker
	// TakeOvers: the providers whose hosts were taken over from IBM's
	// plugin, and when (durable, takeover.go).
	TakeOvers map[string]TakeOver

	// unsaved: keys of records whose write failed (see Persist), under
	// unsavedMu.
	unsavedMu sync.Mutex
	unsaved   map[string]bool
	// order: the write order (write.go).
	order writeOrder

	// WakeLaunch and WakeReconcile bring the provisioner's and the
	// reconciler's next round forward (KickLaunch, KickReconcile).
	WakeLaunch    chan struct{}
	WakeReconcile chan struct{}
}

// PriceKey names a price estimate: a provider's offering.
type PriceKey struct {
	Provider string
	provider.Offering
}

// PriceKeyOf is the price estimate a machine's price is read from.
func PriceKeyOf(m *domain.Machine) PriceKey {
	return PriceKey{Provider: m.Provider, Offering: provider.Offering{InstanceType: m.InstanceType, AZ: m.AZ, Spot: m.Spot}}
}

// ClaimMark is where the evidence against a request awaiting HF's claim
// starts: the getReturnRequests call count and time.
type ClaimMark struct {
	Calls int64
	At    time.Time
}

// Provider is one configured provider with its templates.
type Provider struct {
	Cfg       ProviderConfig
	Templates map[string]*template.Template
	Order     []string
	LastFull  time.Time // last full listing (reconcile goroutine only)
	// FullDeferred is when a due full listing was first put off for want
	// of a pause in HF's calls (wall time; zero when none is waiting;
	// reconcile goroutine only).
	FullDeferred time.Time
	// LastHealth: the last look at instance health (reconcile goroutine
	// only).
	LastHealth time.Time
}

// Health is what the core knows of its own progress, for status and
// metrics.
type Health struct {
	LastReconcile      time.Time
	LastReconcileTook  time.Duration
	LastReconcileError string
	Reconciles         int
	Listings           int           // full listings done, over all providers
	LastListing        time.Time     // when the last one started
	LastListingTook    time.Duration // its listing, pauses for HF's calls included
	LaunchCalls        int
	TerminateCalls     int
	// Events counts the messages of each provider's event queue.
	Events map[string]*EventStats
	// CloudNote is the last launch or termination trouble, e.g. "AWS
	// throttling"; when the next try is due is the requests' NextAttempt.
	CloudNote string
}

// EventStats are the figures of one provider's event queue.
type EventStats struct {
	Queue     string
	Received  int       // messages taken from the queue
	Applied   int       // events that changed a machine
	Malformed int       // messages that were not an event
	Foreign   int       // events of kinds or instances not ohfp's
	Errors    int       // failed queue calls
	LastError string    // the last failed queue call, "" once one works again
	LastAt    time.Time // the last message received
}

// New builds the state and loads it from the store.
func New(opts Options) (*State, error) {
	if opts.Store == nil {
		return nil, errors.New("engine: no store")
	}
	if len(opts.Providers) == 0 {
		return nil, errors.New("engine: no provider configured")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ClusterID == "" {
		opts.ClusterID = "ohfp"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.ActiveInterval, 3*time.Second)
	def(&opts.IdleInterval, 30*time.Second)
	def(&opts.Retention, 7*24*time.Hour)
	def(&opts.LaunchDeadline, 10*time.Minute)
	def(&opts.VisibilityGrace, 2*time.Minute)
	def(&opts.ClaimTimeout, 30*time.Minute)
	if opts.LaunchWorkers <= 0 {
		opts.LaunchWorkers = 8
	}
	s := &State{
		Opts:          opts,
		Log:           opts.Logger,
		Clock:         opts.Clock,
		store:         opts.Store,
		Requests:      map[string]*domain.Request{},
		Machines:      map[string]*domain.Machine{},
		ByName:        map[string]*domain.Machine{},
		TypeInfo:      map[string]provider.InstanceTypeInfo{},
		TypeErr:       map[string]error{},
		Prices:        map[PriceKey]provider.Price{},
		Inflight:      map[string]bool{},
		TermInflight:  map[string]bool{},
		TermRetry:     map[string]TermRetry{},
		TagInflight:   map[string]bool{},
		TagRetry:      map[string]TermRetry{},
		ClaimWatch:    map[string]ClaimMark{},
		ClaimUnsaved:  map[string]error{},
		Undelivered:   map[string]bool{},
		Notes:         map[string][]Note{},
		Drains:        map[string]Drain{},
		Breakers:      map[string]*Breaker{},
		TakeOvers:     map[string]TakeOver{},
		unsaved:       map[string]bool{},
		WakeLaunch:    make(chan struct{}, 1),
		WakeReconcile: make(chan struct{}, 1),
	}
	s.order.init()
	s.Started = s.Clock.Now()
	if err := s.setProviders(opts.Providers); err != nil {
		return nil, err
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	if err := s.orphanedProvidersLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

// orphanedProvidersLocked refuses a configuration without a provider that
// still holds machines or unfinished requests: nothing could reconcile,
// return or terminate them (HF's returns would wait for ever, machines
// ended in the console would never be reported). Called with Mu held (or
// before the state is shared).
func (s *State) orphanedProvidersLocked() error {
	machines, requests := map[string]int{}, map[string]int{}
	for _, m := range s.Machines {
		if m.Live() && s.Providers[m.Provider] == nil {
			machines[m.Provider]++
		}
	}
	for _, r := range s.Requests {
		if !r.Final() && s.Providers[r.Provider] == nil {
			requests[r.Provider]++
		}
	}
	var problems []string
	for name := range machines {
		problems = append(problems, fmt.Sprintf("%s (%s, %s)", name, english.Plural(machines[name], "live machine"), english.Plural(requests[name], "unfinished request")))
		delete(requests, name)
	}
	for name, n := range requests {
		problems = append(problems, fmt.Sprintf("%s (%s)", name, english.Plural(n, "unfinished request")))
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return fmt.Errorf("the configuration no longer has provider %s, which still holds cloud machines or requests: keep it under providers: (a renamed provider is a new one) until HF has returned its machines, or return them first (ohfp machines shows them)",
		strings.Join(problems, ", provider "))
}

func (s *State) setProviders(cfgs []ProviderConfig) error {
	ps := map[string]*Provider{}
	var order []string
	for _, c := range cfgs {
		if c.Cloud == nil {
			return fmt.Errorf("engine: provider %q has no cloud", c.Name)
		}
		if _, dup := ps[c.Name]; dup {
			return fmt.Errorf("engine: provider %q configured twice", c.Name)
		}
		if c.PendingTimeout <= 0 {
			c.PendingTimeout = 180 * time.Second
		}
		p := &Provider{Cfg: c, Templates: map[string]*template.Template{}}
		for i := range c.Templates {
			t := c.Templates[i]
			p.Templates[t.TemplateID] = &t
			p.Order = append(p.Order, t.TemplateID)
		}
		ps[c.Name] = p
		order = append(order, c.Name)
	}
	s.Providers = ps
	s.Order = order
	return nil
}

// TermRetry is a failed termination's next try.
type TermRetry struct {
	Failures int
	At       time.Time
}

// Reload swaps in new providers and templates. Requests and machines are
// kept; requests of templates that disappeared keep being served.
func (s *State) Reload(cfgs []ProviderConfig) error {
	s.Admit.Lock()
	defer s.Admit.Unlock()
	s.Mu.Lock()
	defer s.Mu.Unlock()
	old, oldOrder := s.Providers, s.Order
	if err := s.setProviders(cfgs); err != nil {
		s.Providers, s.Order = old, oldOrder
		return err
	}
	if err := s.orphanedProvidersLocked(); err != nil {
		s.Providers, s.Order = old, oldOrder
		return err
	}
	// The operator changed a template (perhaps the cause): it launches
	// again. A template whose definition did not change stays stopped: a
	// file rewritten as it was (HF's GUI, configuration management, a
	// touch) is no fix.
	for _, b := range s.BreakersLocked() {
		var before, after *template.Template
		if p := old[b.Provider]; p != nil {
			before = p.Templates[b.TemplateID]
		}
		if p := s.Providers[b.Provider]; p != nil {
			after = p.Templates[b.TemplateID]
		}
		if before != nil && after != nil && reflect.DeepEqual(*before, *after) {
			continue
		}
		if tripped, err := s.RearmLocked(b.Provider, b.TemplateID); err != nil {
			s.Log.Error("re-arming a template's breaker failed", "template", b.TemplateID, "provider", b.Provider, "err", err)
		} else if tripped {
			s.Log.Warn("template re-armed: its definition changed in a configuration reload", "template", b.TemplateID, "provider", b.Provider)
		}
	}
	s.KickReconcile()
	return nil
}

// load rebuilds the aggregates from the store (records.go).
func (s *State) load() error {
	err := s.store.Scan(KeyRequest, func(k string, v []byte) error {
		r, err := decodeRequest(k, v)
		if err != nil {
			return err
		}
		s.Requests[r.ID] = r
		return nil
	})
	if err != nil {
		return fmt.Errorf("load requests: %w", err)
	}
	err = s.store.Scan(KeyMachine, func(k string, v []byte) error {
		m, err := decodeMachine(k, v)
		if err != nil {
			return err
		}
		s.Machines[m.ID] = m
		if m.Name != "" {
			s.ByName[m.Name] = m
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load machines: %w", err)
	}
	for _, r := range s.Requests {
		if r.AnswerPending && !r.Final() {
			// Recorded, its answer not known to have reached HF: not
			// launched until HF asks about it (Claim), or ended unlaunched
			// (reconcile: answerNeverDelivered).
			s.Undelivered[r.ID] = true
		}
		if r.AwaitingClaim {
			for _, id := range r.MachineIDs {
				if m := s.Machines[id]; m != nil {
					m.AwaitingClaim = true
				}
			}
		}
	}
	err = s.store.Scan(KeyTypeInfo, func(k string, v []byte) error {
		ti, err := decodeType(k, v)
		if err != nil {
			s.Log.Warn("dropping an unreadable instance type from the cache", "err", err)
			return nil // a cache entry; refetched when needed
		}
		s.TypeInfo[ti.Name] = ti
		return nil
	})
	if err != nil {
		return fmt.Errorf("load instance types: %w", err)
	}
	if err := s.loadOperator(); err != nil {
		return err
	}
	if err := s.loadTakeOvers(); err != nil {
		return err
	}
	return s.loadBreakers()
}

// Persist writes requests and machines in one synchronous batch: Stage
// then Wait. Called with Mu held for writing, the write is made under the
// lock, and HF's reads wait for it; callers that hold Mu use Stage, release
// Mu, then Wait (or PersistReleasing), so that the disk (a fsync; with
// DynamoDB a round trip, seconds when the table is slow) is written while
// HF's reads go on. When the write fails (a full or read-only disk),
// its keys are remembered and written again, as they then stand in
// memory, by every later reconcile pass until a write succeeds
// (SaveUnsaved): memory never stays ahead of the disk for longer than the
// disk is unwritable.
//
// Between the change in memory and the end of its write, a reader sees the
// change; a crash then loses it, as a failed write followed by a crash
// always did. What makes that harmless, by who reads:
//
//   - Launches and terminations: a launch writes its own attempt (and its
//     client token) and waits for it before the cloud call; the write
//     order makes every change staged before it durable first. The
//     provisioner waits for every write staged before it chose its
//     terminations (AwaitWrites) before it terminates anything. So no
//     cloud call acts on a change whose write is still under way.
//   - HF's claim (Claim): a request whose claim is being written is in
//     ClaimUnsaved from the moment it changes in memory: HF is not shown
//     its machines until the claim is on disk, as when it cannot be
//     written.
//   - Final answers: getRequestStatus never shows HF a request in a final
//     status (complete, complete_with_error) while a write of its record
//     is under way: it waits for that write (UnwrittenMark, service). A
//     crash could otherwise turn a request HF was told failed back into a
//     queued one that launches. Machines shown executing or succeed, and
//     requests shown running, are the cloud's facts: a restart finds them
//     again (the instances carry the request's tags; a relaunch with the
//     same client token returns the same instances), so HF's next answer
//     agrees with the one it had. A machine shown failed by a rule (its
//     pending timeout, gone from the cloud) is failed again by the same
//     rule on the cloud's data after a restart; one doomed because HF
//     never learned of its request is one HF does not ask about.
//   - getReturnRequests lists what the cloud is taking back (interruption
//     notices, hosts gone or stopped outside HF, scheduled events): cloud
//     facts too, found again after a restart; events taken from a queue
//     are deleted from it only once their write succeeded.
//   - Writes kept under the lock, where a rollback on failure would let a
//     reader see what is then undone: requestReturnMachines (its machines'
//     ReturnID is written with the request: a reconcile write between
//     would lose it), the lookup of requests another daemon made (HF must
//     not be told "failed" unless it is remembered), the operator's notes
//     and drains and the breakers' trips (rare, and each written alone).
//
// Records not yet in memory (a new request) are written without Mu and
// put in memory after their write.
func (s *State) Persist(reqs []*domain.Request, ms []*domain.Machine, deletes ...string) error {
	return s.Stage(reqs, ms, deletes...).Wait()
}

// Unsaved is how many records memory holds that the disk does not yet.
func (s *State) Unsaved() int {
	s.unsavedMu.Lock()
	defer s.unsavedMu.Unlock()
	return len(s.unsaved)
}

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// KickLaunch brings the provisioner's next round forward.
func (s *State) KickLaunch() { kick(s.WakeLaunch) }

// KickReconcile brings the reconciler's next pass forward.
func (s *State) KickReconcile() { kick(s.WakeReconcile) }

// CacheTypeInfo writes an instance type's description to the store (a
// cache: refetched when lost).
func (s *State) CacheTypeInfo(ti provider.InstanceTypeInfo) error {
	b, err := encodeType(ti)
	if err != nil {
		return err
	}
	return s.store.Write(store.Op{Key: KeyTypeInfo + ti.Name, Value: b})
}
