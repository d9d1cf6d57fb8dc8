package awsprov

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
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
	// Throttled is true while AWS's last answer to an operation (after the
	// SDK's retries) was throttling; Unreachable likewise for 5xx and
	// network errors. A successful operation clears both.
	Throttled   bool
	Unreachable bool
	Failures    int           // consecutive operations that ended throttled or unreachable
	RetryAt     time.Time     // suggested time for the next attempt (zero when healthy)
	RetryIn     time.Duration // RetryAt minus now, never negative
	Calls       map[string]int
	Errors      map[string]int
	Throttles   map[string]int
}

// Summary says in one line how AWS is doing, e.g. "AWS throttling,
// retrying in 8 s".
func (h Health) Summary() string {
	secs := int((h.RetryIn + time.Second - 1) / time.Second)
	switch {
	case h.Throttled:
		return fmt.Sprintf("AWS throttling, retrying in %d s", secs)
	case h.Unreachable:
		return fmt.Sprintf("AWS unreachable, retrying in %d s: %s", secs, h.LastError)
	}
	return "ok"
}

// Backoff bounds for the delay suggested after consecutive failures.
const (
	backoffBase = time.Second
	backoffMax  = 60 * time.Second
)

// health records calls and outcomes; safe for concurrent use.
type health struct {
	clock clock.Clock
	mu    sync.Mutex
	h     Health
}

func newHealth(c clock.Clock) *health {
	return &health{clock: c, h: Health{Calls: map[string]int{}, Errors: map[string]int{}, Throttles: map[string]int{}}}
}

func (hs *health) snapshot() Health {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	h := hs.h
	h.Calls, h.Errors, h.Throttles = maps.Clone(h.Calls), maps.Clone(h.Errors), maps.Clone(h.Throttles)
	if !h.RetryAt.IsZero() {
		h.RetryIn = max(0, h.RetryAt.Sub(hs.clock.Now()))
	}
	return h
}

// attempt records one HTTP attempt of action op.
func (hs *health) attempt(op string, err error) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.h.Calls[op]++
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	hs.h.Errors[op]++
	cerr := classify(op, err)
	if provider.KindOf(cerr) == provider.Throttled {
		hs.h.Throttles[op]++
	}
	hs.h.LastError = cerr.Error()
	hs.h.LastErrorAt = hs.clock.Now()
}

// operation records how a whole operation (after retries) ended.
func (hs *health) operation(op string, err error) {
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
	case err == nil || kind == provider.Fatal || kind == provider.Capacity:
		// AWS answered.
		hs.h.Throttled, hs.h.Unreachable, hs.h.Failures, hs.h.RetryAt = false, false, 0, time.Time{}
	default:
		hs.h.Failures++
		hs.h.Throttled = kind == provider.Throttled
		hs.h.Unreachable = kind == provider.Transient
		hs.h.RetryAt = hs.clock.Now().Add(backoff(hs.h.Failures))
	}
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
			out, md, err := next.HandleInitialize(ctx, in)
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
			out, md, err := next.HandleFinalize(ctx, in)
			p.health.attempt(op, err)
			return out, md, err
		})
	if _, ok := stack.Finalize.Get("Signing"); ok {
		return stack.Finalize.Insert(attempt, "Signing", middleware.Before)
	}
	return stack.Finalize.Add(attempt, middleware.After)
}

// Health returns a snapshot of the provider's AWS health and call counts.
func (p *Provider) Health() Health { return p.health.snapshot() }

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
