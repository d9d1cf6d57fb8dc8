// Package engine puts ohfpd's core together: the state (package state),
// the service that answers HF and the operator from it (package service),
// the provisioner (package provision) and the reconciler (package
// reconcile), and runs the latter two until the daemon stops.
package engine

import (
	"context"
	"time"

	"github.com/ohfp/ohfp/internal/cost"
	"github.com/ohfp/ohfp/internal/ibmstate"
	"github.com/ohfp/ohfp/internal/provision"
	"github.com/ohfp/ohfp/internal/reconcile"
	"github.com/ohfp/ohfp/internal/service"
	"github.com/ohfp/ohfp/internal/state"
)

// Options configure the core; see state.Options.
type Options = state.Options

// ProviderConfig is one HF provider instance; see state.ProviderConfig.
type ProviderConfig = state.ProviderConfig

// Engine is the daemon's core. It serves HF through its Service (package
// api adapts it to the socket). It is safe for concurrent use.
type Engine struct {
	*service.Service
	st *state.State
	pv *provision.Provisioner
	rc *reconcile.Reconciler
	pk *cost.Keeper
}

// New builds the core and loads its state from the store.
func New(opts Options) (*Engine, error) {
	st, err := state.New(opts)
	if err != nil {
		return nil, err
	}
	rc := reconcile.New(st)
	return &Engine{Service: service.New(st, rc), st: st, pv: provision.New(st), rc: rc, pk: cost.New(st)}, nil
}

// Reload swaps in new providers and templates. Requests and machines are
// kept; requests of templates that disappeared keep being served.
func (e *Engine) Reload(cfgs []ProviderConfig) error { return e.st.Reload(cfgs) }

// Unsaved is how many records memory holds that the disk does not yet.
func (e *Engine) Unsaved() int { return e.st.Unsaved() }

// Run runs the provisioner and the reconciler until ctx ends, then waits
// for cloud calls under way to finish.
func (e *Engine) Run(ctx context.Context) error {
	// One pass before launching or terminating anything: after a crash it
	// adopts instances already tagged with unfinished requests, so they
	// are not launched twice; on a stale store (a failover: another
	// daemon served HF meanwhile) it folds in what the cloud shows, e.g.
	// machines the other daemon returned (ohfp:return-id), before the
	// provisioner acts on the store's records (TestStaleStoreFoldedBeforeActing).
	// Should that first listing fail, the provisioner still starts: what
	// it does then is the store's own decisions, each safe to repeat
	// (launches by client token, terminations HF asked for).
	next := e.rc.ReconcileOnce(ctx)
	provisioned := make(chan struct{})
	go func() {
		defer close(provisioned)
		e.pv.Run(ctx)
	}()
	// The event queues (interruption_queue), beside the passes.
	events := make(chan struct{})
	go func() {
		defer close(events)
		e.rc.RunEvents(ctx)
	}()
	// Price estimates, in a goroutine of their own: a slow price API
	// never holds a reconcile pass.
	priced := make(chan struct{})
	go func() {
		defer close(priced)
		e.pk.Run(ctx)
	}()
	due := time.Now().Add(next)
	t := time.NewTimer(next)
	defer t.Stop()
	active := e.st.Opts.ActiveInterval
	for {
		select {
		case <-ctx.Done():
			<-provisioned
			<-events
			<-priced
			e.pv.Wait()
			return nil
		case <-e.st.WakeReconcile:
			// Work arrived: bring the next pass forward, never push it back
			// (a stream of requests must not starve the reconciler).
			if time.Until(due) > active {
				if !t.Stop() {
					select {
					case <-t.C:
					default:
					}
				}
				due = time.Now().Add(active)
				t.Reset(active)
			}
		case <-t.C:
			next = e.rc.ReconcileOnce(ctx)
			due = time.Now().Add(next)
			t.Reset(next)
		}
	}
}

// ProvisionOnce starts the cloud calls that are due and returns how long
// until the next one is due (see provision.Provisioner.ProvisionOnce).
func (e *Engine) ProvisionOnce(ctx context.Context) time.Duration { return e.pv.ProvisionOnce(ctx) }

// Wait blocks until every cloud call the provisioner started has returned.
// Tests use it after ProvisionOnce.
func (e *Engine) Wait() { e.pv.Wait() }

// ReconcileOnce runs one reconcile pass and returns the delay until the
// next (see reconcile.Reconciler.ReconcileOnce).
func (e *Engine) ReconcileOnce(ctx context.Context) time.Duration { return e.rc.ReconcileOnce(ctx) }

// TakeOver takes over, for provider prov, the hosts and requests of IBM's
// plugin's state file f (see reconcile.Reconciler.TakeOver).
func (e *Engine) TakeOver(ctx context.Context, prov string, f ibmstate.File, o reconcile.TakeOverOptions) (reconcile.TakeOverReport, error) {
	return e.rc.TakeOver(ctx, prov, f, o)
}

// RefreshPrices refreshes the machines' price estimates once (see
// cost.Keeper.Once) and returns when the next refresh is due.
func (e *Engine) RefreshPrices(ctx context.Context) time.Duration { return e.pk.Once(ctx) }

// FillTypeInfo fetches the instance types the templates need for ncpus
// and nram (see reconcile.Reconciler.FillTypeInfo).
func (e *Engine) FillTypeInfo(ctx context.Context) { e.rc.FillTypeInfo(ctx) }
