package main

import (
	"context"
	"time"

	"github.com/ohfp/ohfp/internal/api"
	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/config"
	"github.com/ohfp/ohfp/internal/engine"
	"github.com/ohfp/ohfp/internal/ha"
	"github.com/ohfp/ohfp/internal/rpcserver"
	"github.com/ohfp/ohfp/internal/state"
)

// engineOptions are the core's options on kv.
func (d *daemon) engineOptions(cfg *config.Config, pcs []engine.ProviderConfig, kv state.KV) engine.Options {
	return engine.Options{
		ClusterID:      cfg.ClusterID,
		Providers:      pcs,
		Store:          kv,
		Logger:         d.log.With("component", "engine"),
		ActiveInterval: cfg.Reconcile.ActiveInterval,
		IdleInterval:   cfg.Reconcile.IdleInterval,
		ClaimTimeout:   cfg.Reconcile.ClaimTimeout,
		Version:        version,
		Gate:           &d.gate,
	}
}

// runEngine makes eng the engine the socket serves and runs it; stop stops
// it, waits for its cloud calls under way, and takes it off the socket.
func (d *daemon) runEngine(eng *engine.Engine, opts api.Options) (stop func()) {
	d.mu.Lock()
	d.eng, d.api = eng, api.New(eng, opts)
	d.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := eng.Run(ctx); err != nil {
			d.log.Error("engine stopped", "err", err)
		}
	}()
	return func() {
		cancel()
		<-done
		d.mu.Lock()
		if d.eng == eng {
			d.eng, d.api = nil, nil
		}
		d.mu.Unlock()
	}
}

// engine is the engine serving now (nil on a standby).
func (d *daemon) engine() *engine.Engine {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.eng
}

// apiHandler is the current engine's handler, nil on a standby.
func (d *daemon) apiHandler() rpcserver.Handler {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.api == nil {
		return nil
	}
	return d.api
}

// activeEngine is a holder's engine, for the lease to stop.
type activeEngine func()

func (a activeEngine) Stop() { a() }

// startActing builds the engine on the shared state once this host holds
// the lease (ha.Options.Start): every cloud action and state write checked
// against the lease.
func (d *daemon) startActing(opts api.Options) func(ctx context.Context, kv state.KV, mayAct func() error) (ha.Active, error) {
	return func(ctx context.Context, kv state.KV, mayAct func() error) (ha.Active, error) {
		d.mu.Lock()
		d.mayAct = mayAct
		for _, p := range d.provs {
			p.SetActionGate(mayAct)
		}
		// Every call that changes the cloud asks mayAct before each HTTP
		// attempt and as it is sent (awsprov's action gate, set above).
		cfg, pcs := d.cfg, d.pcs
		d.mu.Unlock()
		t0 := time.Now()
		eng, err := engine.New(d.engineOptions(cfg, pcs, kv))
		if err != nil {
			return nil, err
		}
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		eng.FillTypeInfo(tctx)
		cancel()
		if err := d.takeOverOnce(ctx, eng); err != nil {
			// The lease is released; the next taking runs it again.
			return nil, err
		}
		rep := eng.StatusReport()
		n := 0
		for _, c := range rep.Requests {
			n += c
		}
		d.log.Info("shared state loaded; acting for the cluster", "requests", n, "in_flight", rep.InFlight, "live_machines", rep.LiveMachines, "took", time.Since(t0).Round(time.Millisecond))
		return activeEngine(d.runEngine(eng, opts)), nil
	}
}

// standbyService answers a standby's status (the daemon fills it in:
// statusExtra); ha.Handler sends a standby nothing else but reload, which
// is the daemon's own (api.Options.Reload). The embedded Service is nil:
// any other method would be a routing bug.
type standbyService struct{ api.Service }

func (standbyService) StatusReport() apitype.Status { return apitype.Status{} }
