package awsprov

import (
	"context"
	"errors"
	"fmt"
	"github.com/ohfp/ohfp/internal/english"
	"maps"
	"math/rand/v2"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"

	"github.com/ohfp/ohfp/internal/clock"
	"github.com/ohfp/ohfp/internal/provider"
)

// EC2 API request-rate buckets (per account and region), as EC2 documents
// them; see HF-CONTRACT.md. ohfp stays inside them so it never causes the
// throttling itself.
const (
	nonMutatingBurst, nonMutatingRate = 100, 20
	mutatingBurst, mutatingRate       = 50, 5
	runBurst, runRate                 = 5, 2
	runInstancesBurst, runInstances   = 1000, 2 // RunInstances resource bucket: instances
	terminateBurst, terminateRate     = 100, 5
)

// limits holds the client-side token buckets for EC2.
type limits struct {
	nonMutating, mutating, run, runResource, terminate *rate.Limiter
}

func newLimits() *limits {
	return &limits{
		nonMutating: rate.NewLimiter(nonMutatingRate, nonMutatingBurst),
		mutating:    rate.NewLimiter(mutatingRate, mutatingBurst),
		run:         rate.NewLimiter(runRate, runBurst),
		runResource: rate.NewLimiter(runInstances, runInstancesBurst),
		terminate:   rate.NewLimiter(terminateRate, terminateBurst),
	}
}

// bucket returns the request-rate bucket EC2 charges action op to.
func (l *limits) bucket(op string) *rate.Limiter {
	switch {
	case op == "RunInstances":
		return l.run
	case op == "TerminateInstances":
		return l.terminate
	case strings.HasPrefix(op, "Describe"), strings.HasPrefix(op, "Get"), strings.HasPrefix(op, "List"):
		return l.nonMutating
	}
	return l.mutating
}

// Health is what ohfp knows of its conversation with AWS, for `ohfp status`
// and metrics. Counts are per API action (e.g. "RunInstances") and per HTTP
// attempt, retries included.
type Health struct {
	LastError   string    // the last failed attempt, classified; "" if none yet
	LastErrorAt time.Time // when it happened
	// Throttled is true while the last operation of some action ended
	// throttled (after the SDK's retries) within ThrottleMemory:
	// ThrottledActions names them, and an operation of that action
	// answered clears it. RunInstances throttled while describes pass is
	// still throttling; a rare action throttled once is not, 5 minutes on.
	Throttled        bool
	ThrottledActions []string
	// Unreachable is true while the last operation could not reach AWS
	// (a network error); Failing while AWS answered it with a server
	// error (5xx). An operation answered otherwise clears both.
	Unreachable bool
	Failing     bool
	// Credentials is true while the last operation failed for want of
	// valid credentials: none found (the SDK could not sign the call, so
	// AWS never saw it), or AWS refused them (expired, unknown, bad
	// signature). An operation AWS accepted clears it.
	Credentials bool
	// CredentialScript is the last run's failure of the provider's
	// credential script (IBM's AWS_CREDENTIAL_SCRIPT), "" when it
	// succeeded: the last good credentials are still in use until they
	// expire (then Credentials turns true).
	CredentialScript string
	// NotAnswering is true from the first call that got no answer in time
	// (see Settings.ConnectTimeout, ResponseTimeout and CallTimeout), or
	// that has waited longer than the first-byte timeout, until AWS answers
	// a call again (with anything, an error included).
	NotAnswering      bool
	NotAnsweringSince time.Time     // when the first unanswered call began
	NotAnsweringFor   time.Duration // now minus NotAnsweringSince
	InFlight          int           // HTTP attempts under way
	OldestCall        time.Time     // when the oldest attempt under way began; zero if none
	Failures          int           // consecutive operations that ended throttled or unreachable
	RetryAt           time.Time     // suggested time for the next attempt (zero when healthy)
	RetryIn           time.Duration // RetryAt minus now, never negative
	Calls             map[string]int
	Errors            map[string]int // timeouts and throttles included
	Throttles         map[string]int
	Timeouts          map[string]int // attempts that got no answer in time
}

// Summary says in one line how AWS is doing, e.g. "AWS throttling
// RunInstances" or "AWS not answering for 2m0s". It gives no retry time:
// when the next try is due is the engine's to say (a request's
// NextAttempt), and one status shows one.
func (h Health) Summary() string {
	switch {
	case h.Credentials:
		return "no valid AWS credentials: " + h.LastError
	case h.CredentialScript != "":
		return "credential script failing, the last good credentials still in use: " + h.CredentialScript
	case h.NotAnswering:
		s := "AWS not answering for " + h.NotAnsweringFor.Round(time.Second).String()
		switch {
		case h.InFlight == 1:
			s += ", 1 call waiting"
		case h.InFlight > 1:
			s += ", " + english.Plural(h.InFlight, "call") + " waiting"
		}
		if h.LastError != "" {
			s += ": " + h.LastError
		}
		return s
	case h.Throttled:
		return "AWS throttling " + strings.Join(h.ThrottledActions, ", ")
	case h.Unreachable:
		return "AWS unreachable: " + h.LastError
	case h.Failing:
		return "AWS failing (server errors): " + h.LastError
	}
	return "ok"
}

// Backoff bounds for the delay suggested after consecutive failures.
const (
	backoffBase = time.Second
	backoffMax  = 60 * time.Second
)

// Meter records a provider's calls and their outcomes; safe for concurrent
// use. The daemon hands a provider's Meter to the provider that replaces it
// on a reload (Settings.Meter), so that counts and health survive reloads.
type Meter struct {
	clock clock.Clock
	mu    sync.Mutex
	h     Health
	// stallAfter is how long a call may wait for its first byte before the
	// meter calls AWS not answering (the first-byte timeout).
	stallAfter time.Duration
	inflight   map[uint64]time.Time // attempt -> start
	nextID     uint64
	// throttled: actions whose last operation ended throttled, and when.
	throttled map[string]time.Time
}

// ThrottleMemory is how long an action whose last operation ended
// throttled counts as throttled when no operation of it has run since.
// Every action ohfp retries is retried well within it (backoffMax, the
// launch retries' NextAttempt), so a throttle that lasts keeps it set;
// an action called once in a while (a fleet request, a quota look-up)
// throttled once does not hold the verdict at degraded until it is
// called again, maybe hours later.
const ThrottleMemory = 5 * time.Minute

// NewMeter returns an empty meter on clock c (nil: the wall clock).
func NewMeter(c clock.Clock) *Meter {
	if c == nil {
		c = clock.Real{}
	}
	return &Meter{clock: c, stallAfter: DefaultResponseTimeout, inflight: map[uint64]time.Time{}, throttled: map[string]time.Time{},
		h: Health{Calls: map[string]int{}, Errors: map[string]int{}, Throttles: map[string]int{}, Timeouts: map[string]int{}}}
}

func (hs *Meter) setStallAfter(d time.Duration) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if d > 0 {
		hs.stallAfter = d
	}
}

func (hs *Meter) snapshot() Health {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	now := hs.clock.Now()
	h := hs.h
	h.Calls, h.Errors, h.Throttles, h.Timeouts = maps.Clone(h.Calls), maps.Clone(h.Errors), maps.Clone(h.Throttles), maps.Clone(h.Timeouts)
	if !h.RetryAt.IsZero() {
		h.RetryIn = max(0, h.RetryAt.Sub(now))
	}
	h.ThrottledActions = nil
	for op, at := range hs.throttled {
		if now.Sub(at) < ThrottleMemory {
			h.ThrottledActions = append(h.ThrottledActions, op)
		}
	}
	sort.Strings(h.ThrottledActions)
	h.Throttled = len(h.ThrottledActions) > 0
	h.InFlight = len(hs.inflight)
	for _, start := range hs.inflight {
		if h.OldestCall.IsZero() || start.Before(h.OldestCall) {
			h.OldestCall = start
		}
	}
	// A call still waiting past the first-byte timeout is not being
	// answered, whether or not one has timed out yet.
	if !h.OldestCall.IsZero() && now.Sub(h.OldestCall) >= hs.stallAfter {
		if !h.NotAnswering || h.OldestCall.Before(h.NotAnsweringSince) {
			h.NotAnsweringSince = h.OldestCall
		}
		h.NotAnswering = true
	}
	if h.NotAnswering {
		h.NotAnsweringFor = max(0, now.Sub(h.NotAnsweringSince))
	}
	return h
}

// begin records the start of one HTTP attempt; end must follow.
func (hs *Meter) begin() (id uint64, start time.Time) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.nextID++
	start = hs.clock.Now()
	hs.inflight[hs.nextID] = start
	return hs.nextID, start
}

// stall is how an attempt changed whether AWS is answering.
type stall int

const (
	stallSame  stall = iota
	stallBegan       // the first attempt not answered in time
	stallEnded       // AWS answered again after not answering
)

// attempt records the end of HTTP attempt id of action op, begun at start.
func (hs *Meter) attempt(id uint64, start time.Time, op string, err error) stall {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	delete(hs.inflight, id)
	hs.h.Calls[op]++
	change := stallSame
	var te *timeoutError
	switch {
	case errors.As(err, &te):
		hs.h.Timeouts[op]++
		if !hs.h.NotAnswering {
			hs.h.NotAnswering, hs.h.NotAnsweringSince = true, start
			change = stallBegan
		}
	case answered(err):
		if hs.h.NotAnswering {
			change = stallEnded
		}
		hs.h.NotAnswering, hs.h.NotAnsweringSince = false, time.Time{}
	}
	if err == nil || errors.Is(err, context.Canceled) || apiCode(err) == "DryRunOperation" {
		return change // DryRunOperation: a dry run that would have succeeded
	}
	hs.h.Errors[op]++
	cerr := classify(op, err)
	if provider.KindOf(cerr) == provider.Throttled {
		hs.h.Throttles[op]++
	}
	hs.h.LastError = cerr.Error()
	hs.h.LastErrorAt = hs.clock.Now()
	return change
}

// answered reports whether an attempt's outcome came from AWS: a response
// (an error response included), not a network failure or a timeout.
func answered(err error) bool {
	if err == nil {
		return true
	}
	var ae smithy.APIError
	return httpStatus(err) != 0 || errors.As(err, &ae)
}

// operation records how a whole operation (after retries) ended.
func (hs *Meter) operation(op string, err error) {
	if errors.Is(err, context.Canceled) {
		return // our own shutdown or caller, not AWS's doing
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	kind := provider.Fatal
	if err != nil {
		kind = provider.KindOf(classify(op, err))
	}
	switch {
	case err != nil && credentialsError(err):
		// Never sent (the SDK could not sign it: no attempt was counted),
		// or refused by AWS: either way nothing works until fixed.
		hs.h.Credentials = true
		hs.h.Unreachable, hs.h.Failing = false, false
		if httpStatus(err) == 0 {
			hs.h.Errors[op]++
		}
		hs.h.LastError = credentialsMessage(err)
		hs.h.LastErrorAt = hs.clock.Now()
	case err == nil || kind == provider.Fatal || kind == provider.Capacity || kind == provider.Quota:
		// AWS answered and took the credentials.
		hs.h.Unreachable, hs.h.Failing, hs.h.Credentials, hs.h.Failures, hs.h.RetryAt = false, false, false, 0, time.Time{}
		delete(hs.throttled, op)
	default:
		hs.h.Failures++
		hs.h.Credentials = false
		if kind == provider.Throttled {
			hs.throttled[op] = hs.clock.Now()
			hs.h.Unreachable, hs.h.Failing = false, false
		} else {
			delete(hs.throttled, op)
			answered := httpStatus(err) != 0
			hs.h.Unreachable, hs.h.Failing = !answered, answered
		}
		hs.h.RetryAt = hs.clock.Now().Add(backoff(hs.h.Failures))
	}
}

// credentialCodes are the AWS error codes that refuse the caller's
// credentials themselves (not a permission they lack).
var credentialCodes = map[string]bool{
	"AuthFailure":                 true, // EC2
	"InvalidClientTokenId":        true, // Auto Scaling, STS
	"UnrecognizedClientException": true, // SSM
	"SignatureDoesNotMatch":       true,
	"IncompleteSignature":         true,
	"ExpiredToken":                true,
	"ExpiredTokenException":       true,
	"RequestExpired":              true,
	"InvalidAccessKeyId":          true,
	"MissingAuthenticationToken":  true,
}

// credentialsError reports whether err is a failure of the credentials:
// the SDK found none (or could not refresh them) and sent nothing, or AWS
// refused them.
func credentialsError(err error) bool {
	if credentialCodes[apiCode(err)] {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "get identity") || strings.Contains(s, "get credentials") ||
		strings.Contains(s, "failed to retrieve credentials") || strings.Contains(s, "failed to refresh cached credentials")
}

// credentialsMessage is a credentials failure for a person: AWS's message,
// or the SDK's without its operation prefix.
func credentialsMessage(err error) string {
	if m := apiMessage(err); m != "" {
		return apiCode(err) + ": " + m
	}
	s := err.Error()
	if i := strings.Index(s, "get identity: "); i >= 0 {
		s = s[i+len("get identity: "):]
	}
	return s
}

// backoff is the delay suggested after n consecutive failures: exponential
// from backoffBase, capped at backoffMax, with jitter in [d/2, d].
func backoff(n int) time.Duration {
	d := backoffBase
	for i := 1; i < n && d < backoffMax; i++ {
		d *= 2
	}
	d = min(d, backoffMax)
	return d/2 + rand.N(d/2+1)
}

// instrument adds ohfp's middleware to a client's stack: per operation, it
// records the outcome; per HTTP attempt (after the retry middleware, before
// signing), it waits for the EC2 bucket when rate limiting is on and counts
// the call.
func (p *Provider) instrument(stack *middleware.Stack) error {
	err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("ohfpOperation",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			op := awsmiddleware.GetOperationName(ctx)
			if p.limits != nil && awsmiddleware.GetServiceID(ctx) == ec2.ServiceID && op == "RunInstances" {
				if ri, ok := in.Parameters.(*ec2.RunInstancesInput); ok && ri.MaxCount != nil {
					n := min(max(int(*ri.MaxCount), 1), runInstancesBurst)
					if err := p.limits.runResource.WaitN(ctx, n); err != nil {
						return middleware.InitializeOutput{}, middleware.Metadata{}, limitError(ctx, err)
					}
				}
			}
			cctx, cancel := context.WithCancel(ctx)
			stop := context.AfterFunc(p.life, cancel)
			out, md, err := next.HandleInitialize(cctx, in)
			stop()
			cancel()
			if err != nil && ctx.Err() == nil && p.life.Err() != nil {
				err = &provider.Error{Op: op, Kind: provider.Transient,
					Message: "the call was ended: a configuration reload replaced this AWS provider; it is made again through the new one"}
			}
			p.health.operation(op, err)
			return out, md, err
		}), middleware.After)
	if err != nil {
		return err
	}
	attempt := middleware.FinalizeMiddlewareFunc("ohfpAttempt",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			op := awsmiddleware.GetOperationName(ctx)
			if p.limits != nil && awsmiddleware.GetServiceID(ctx) == ec2.ServiceID {
				if err := p.limits.bucket(op).Wait(ctx); err != nil {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, limitError(ctx, err)
				}
			}
			if g := p.gate.Load(); g != nil && changesCloud(op) {
				if err := (*g)(); err != nil {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, &provider.Error{Op: op, Kind: provider.Transient, Message: "not sent: " + err.Error()}
				}
				// Asked again as the transport reads the body, just
				// before the request leaves (bufferedBody).
				ctx = context.WithValue(ctx, gateKey{}, *g)
			}
			id, start := p.health.begin()
			// The whole-call deadline: one attempt, from sending the
			// request to the last byte of the answer. The transport bounds
			// connecting and the first byte (see httpClient).
			actx, cancel := context.WithTimeout(ctx, p.timeouts.call)
			began := time.Now()
			out, md, err := next.HandleFinalize(actx, in)
			cancel()
			if err != nil && ctx.Err() == nil {
				if what, limit := p.timeouts.which(actx, err); what != "" {
					err = &timeoutError{op: op, what: what, limit: limit, took: time.Since(began), cause: err}
				}
			}
			switch p.health.attempt(id, start, op, err) {
			case stallBegan:
				p.log.Warn("AWS not answering; calls end at their deadline and are tried again later", "action", op, "err", err)
			case stallEnded:
				p.log.Info("AWS answering again", "action", op)
			default:
				var te *timeoutError
				if errors.As(err, &te) {
					p.log.Debug("AWS call timed out", "action", op, "err", err)
				}
			}
			return out, md, err
		})
	if _, ok := stack.Finalize.Get("Signing"); ok {
		return stack.Finalize.Insert(attempt, "Signing", middleware.Before)
	}
	return stack.Finalize.Add(attempt, middleware.After)
}

// instrumentSide adds to a side client's stack (the Price List API, whose
// endpoint is not the provider's region) what instrument adds but the
// health: its calls end with the provider (Close) and at the whole-call
// deadline, and are counted per action, errors and timeouts included; a
// failure does not make AWS unhealthy, throttled or not answering.
func (p *Provider) instrumentSide(stack *middleware.Stack) error {
	err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("ohfpSideOperation",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			cctx, cancel := context.WithCancel(ctx)
			stop := context.AfterFunc(p.life, cancel)
			defer func() { stop(); cancel() }()
			return next.HandleInitialize(cctx, in)
		}), middleware.After)
	if err != nil {
		return err
	}
	attempt := middleware.FinalizeMiddlewareFunc("ohfpSideAttempt",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			op := awsmiddleware.GetOperationName(ctx)
			actx, cancel := context.WithTimeout(ctx, p.timeouts.call)
			began := time.Now()
			out, md, err := next.HandleFinalize(actx, in)
			cancel()
			if err != nil && ctx.Err() == nil {
				if what, limit := p.timeouts.which(actx, err); what != "" {
					err = &timeoutError{op: op, what: what, limit: limit, took: time.Since(began), cause: err}
				}
			}
			p.health.count(op, err)
			return out, md, err
		})
	if _, ok := stack.Finalize.Get("Signing"); ok {
		return stack.Finalize.Insert(attempt, "Signing", middleware.Before)
	}
	return stack.Finalize.Add(attempt, middleware.After)
}

// count records one HTTP attempt of a side client: calls, errors,
// throttles and timeouts per action, and nothing of AWS's health.
func (hs *Meter) count(op string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.h.Calls[op]++
	if err == nil {
		return
	}
	hs.h.Errors[op]++
	var te *timeoutError
	if errors.As(err, &te) {
		hs.h.Timeouts[op]++
	}
	if provider.KindOf(classify(op, err)) == provider.Throttled {
		hs.h.Throttles[op]++
	}
}

// Health returns a snapshot of the provider's AWS health and call counts.
func (p *Provider) Health() Health {
	h := p.health.snapshot()
	if p.script != nil {
		h.CredentialScript = p.script.Status().LastError
	}
	return h
}

// Meter returns the provider's meter, to hand to the provider that replaces
// it (Settings.Meter).
func (p *Provider) Meter() *Meter { return p.health }

// timeouts are a provider's deadlines for one HTTP attempt.
type timeouts struct {
	connect, response, call time.Duration
}

// which tells which deadline an attempt's error came from ("connection",
// "first byte" or "whole answer", and its length), or "" when err is not a
// timeout. actx is the attempt's context (with the whole-call deadline).
func (t timeouts) which(actx context.Context, err error) (string, time.Duration) {
	var ne net.Error
	switch {
	case errors.Is(actx.Err(), context.DeadlineExceeded):
		return "whole answer", t.call
	case !errors.As(err, &ne) || !ne.Timeout():
		return "", 0
	case strings.Contains(err.Error(), "awaiting response headers"):
		return "first byte", t.response
	case strings.Contains(err.Error(), "dial"), strings.Contains(err.Error(), "handshake"):
		return "connection", t.connect
	}
	return "answer", t.call
}

// timeoutError is an attempt that AWS did not answer in time. It is
// Transient (the engine tries again later) but not retried by the SDK at
// once: a stalled endpoint must not hold the caller for several deadlines.
type timeoutError struct {
	op, what    string
	limit, took time.Duration
	cause       error
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("AWS not answering: no %s to %s within %s", e.what, e.op, e.limit)
}

func (e *timeoutError) Unwrap() error { return e.cause }

// noRetryTimeout tells the SDK's retryer not to retry a timeout.
func noRetryTimeout(err error) aws.Ternary {
	var te *timeoutError
	if errors.As(err, &te) {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

// limitError explains a wait for a client-side bucket that could not
// finish: the context ended, or would end before a token comes (which
// counts as a deadline, hence Transient).
func limitError(ctx context.Context, err error) error {
	cause := ctx.Err()
	if cause == nil {
		cause = context.DeadlineExceeded
	}
	return fmt.Errorf("waiting for the client-side EC2 rate limit: %v: %w", err, cause)
}
