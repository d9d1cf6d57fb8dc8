package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"os/user"
	"reflect"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ohfp/ohfp/internal/api"
	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/config"
	"github.com/ohfp/ohfp/internal/engine"
	"github.com/ohfp/ohfp/internal/ha"
	"github.com/ohfp/ohfp/internal/metrics"
	awsprov "github.com/ohfp/ohfp/internal/provider/aws"
	"github.com/ohfp/ohfp/internal/quiet"
	"github.com/ohfp/ohfp/internal/rpcserver"
	"github.com/ohfp/ohfp/internal/store"
)

type daemon struct {
	cfgPath  string
	simulate bool
	rebuild  bool
	adopt    string    // --adopt-cluster-id: the old cluster_id whose hosts to take over
	takeover *takeover // --take-over-ibm: IBM's plugin's state file (takeover.go)
	// takenOver: with ha:, the takeover succeeded on a lease taking
	// (under mu).
	takenOver bool
	log       *slog.Logger

	mu          sync.Mutex // guards cfg and provs across reloads
	cfg         *config.Config
	provs       map[string]*awsprov.Provider
	simEndpoint string
	pcs         []engine.ProviderConfig // the providers' configurations (unfenced)
	eng         *engine.Engine          // nil while this host does not act (ha: standby)
	api         *api.Handler            // eng's
	mayAct      func() error            // ha: the lease check every cloud action passes; nil: always
	coord       *ha.Coordinator         // ha: the lease; nil on a single host
	adminGIDs   []uint32                // admin_groups, resolved (guarded by mu)
	gate        quiet.Gate              // the calls being served, for the reconciler to give way to
	started     time.Time
}

func (d *daemon) run(ctx context.Context) error {
	cfg := d.cfg
	// SIGHUP is caught before the socket serves and READY=1 is sent: its
	// default action ends the process, and systemctl reload may come at
	// once. One that comes while ohfpd starts is served by the loop below.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	d.started = time.Now()
	for _, w := range cfg.Warnings {
		d.log.Warn(w)
	}
	for _, w := range config.CheckPermissions(d.cfgPath) {
		d.log.Warn(w)
	}

	if d.simulate {
		region := "us-east-1"
		if r := cfg.Providers[0].Region; r != "" {
			region = r
		}
		sim := awssim.New(awssim.Options{
			Region:         region,
			LaunchDelay:    cfg.Simulate.LaunchDelay,
			TerminateDelay: cfg.Simulate.TerminateDelay,
			// Eventual consistency as on AWS: awssim's default window.
			Logger: d.log.With("component", "awssim"),
		})
		endpoint, stopSim := sim.Start()
		defer stopSim()
		go sim.Run(ctx, 100*time.Millisecond)
		d.simEndpoint = endpoint
		d.log.Info("simulated AWS region started in-process", "endpoint", endpoint, "region", region)
	}

	var storeSize func() (int64, int64)
	var handler rpcserver.Handler
	apiOpts := api.Options{Reload: d.reload, Status: d.statusExtra, Caller: d.caller, Check: d.check}
	pcs, provs, err := d.buildProviders(ctx, cfg)
	if err != nil {
		return err
	}
	d.provs, d.pcs = provs, pcs
	d.primeCredentials(ctx, provs) // credscript.go
	// stopActing stops the engine (or, in a shared-store cluster, the
	// lease and the engine it runs) once the socket is closed.
	var stopActing func()
	if cfg.HA == nil {
		st, err := store.Open(cfg.StateDir, d.log.With("component", "store"))
		if err != nil {
			return err
		}
		defer func() {
			if err := st.Close(); err != nil {
				d.log.Error("closing the store", "err", err)
			}
		}()
		go st.RunGC(ctx, 10*time.Minute)
		storeSize = st.Size
		if err := d.claimStore(ctx, st, cfg, provs); err != nil {
			return err
		}
		eng, err := engine.New(d.engineOptions(cfg, pcs, st))
		if err != nil {
			return err
		}
		if d.rebuild {
			d.log.Info("rebuilding state from the cloud's tags before serving")
			eng.ReconcileOnce(ctx)
			rep := eng.StatusReport()
			if rep.LastReconcileError != "" {
				// Serving an empty or partial store would tell HF its request
				// ids are unknown: refuse, and say what failed.
				return fmt.Errorf("rebuilding from the cloud failed, nothing is served: %s; fix AWS access (credentials, endpoint) and start again with --rebuild-from-cloud", rep.LastReconcileError)
			}
			d.log.Info("rebuilt from the cloud", "requests", len(rep.Requests), "live_machines", rep.LiveMachines)
		}
		if d.takeover != nil {
			if err := d.runTakeover(ctx, eng); err != nil {
				return err
			}
		}
		// Instance types the templates need for ncpus and nram, before the
		// first getAvailableTemplates (cached in the store after the first
		// start; bounded, as the cloud may be unreachable).
		tctx, tcancel := context.WithTimeout(ctx, 5*time.Second)
		eng.FillTypeInfo(tctx)
		tcancel()
		stopActing = d.runEngine(eng, apiOpts)
		handler = d.apiHandler()
	} else {
		if d.rebuild || d.adopt != "" {
			return fmt.Errorf("--rebuild-from-cloud and --adopt-cluster-id apply to a state directory; with ha: the state is in DynamoDB table %s, shared by the candidates, and a host that takes the lease folds the cloud's tags into it before acting", cfg.HA.Table)
		}
		coord, closeTable, err := d.openShared(ctx, cfg, apiOpts)
		if err != nil {
			return err
		}
		defer closeTable()
		storeSize = func() (int64, int64) { return 0, 0 }
		d.coord = coord
		haCtx, stopHA := context.WithCancel(context.Background())
		haDone := make(chan struct{})
		go func() {
			defer close(haDone)
			coord.Run(haCtx)
		}()
		stopActing = func() { stopHA(); <-haDone }
		handler = &ha.Handler{C: coord, Inner: d.apiHandler, Local: api.New(standbyService{}, apiOpts)}
	}

	ln, err := d.listen(cfg)
	if err != nil {
		stopActing()
		return err
	}
	uids, gids := d.allowed(cfg)
	d.adminGIDs, _ = resolveGroups(cfg.AdminGroups, "admin_groups", d.log)
	mx := metrics.New(metrics.Sources{Status: d.fullStatus, Store: storeSize, Version: version})
	extra := http.NewServeMux()
	extra.Handle("/metrics", mx.Handler())
	if cfg.Pprof {
		extra.HandleFunc("/debug/pprof/", pprof.Index)
		extra.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		extra.HandleFunc("/debug/pprof/profile", pprof.Profile)
		extra.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		extra.HandleFunc("/debug/pprof/trace", pprof.Trace)
		d.log.Info("profiler served on the socket", "path", "/debug/pprof/")
	}
	handler = &callLogger{inner: handler, log: d.log.With("component", "rpc"), accept: d.acceptsHFLevel}
	srv := rpcserver.NewServer(mx.Wrap(handler), rpcserver.ServerOptions{
		Logger:      d.log.With("component", "rpc"),
		AllowedUIDs: uids,
		AllowedGIDs: gids,
		Extra:       extra,
		Gate:        &d.gate,
	})
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	if cfg.MetricsListen != "" {
		stopMetrics, err := serveMetrics(cfg.MetricsListen, mx.Handler(), d.log)
		if err != nil {
			_ = srv.Shutdown(context.Background())
			stopActing()
			return err
		}
		defer stopMetrics()
	}

	engCtx, stopEngine := context.WithCancel(context.Background())
	defer stopEngine()
	if os.Getenv("GOMEMLIMIT") == "" {
		go tuneMemoryLimit(engCtx, d.engine, d.log)
	}
	notify("READY=1")
	if cfg.HA == nil {
		d.log.Info("ohfpd serving", "version", version, "socket", cfg.Socket, "state_dir", cfg.StateDir, "providers", len(pcs), "simulate", d.simulate)
	} else {
		d.log.Info("ohfpd serving as a master candidate: it acts once HF calls it and it holds the lease", "version", version, "socket", cfg.Socket, "table", cfg.HA.Table, "host", d.coord.Status().Host, "providers", len(pcs), "simulate", d.simulate)
	}
	stopWatchdog := d.watchdog(ctx)
	defer stopWatchdog()

	filesChanged := make(chan struct{}, 1)
	go watchTemplates(ctx, func() []string {
		d.mu.Lock()
		defer d.mu.Unlock()
		return watchedFiles(d.cfg)
	}, templatesPollInterval, filesChanged)
	for {
		select {
		case <-hup:
			d.reloadAs(ctx, "SIGHUP") // logs a refusal
			continue
		case <-filesChanged:
			d.log.Info("templates or IBM settings file changed; reloading")
			d.reloadAs(ctx, "templates or IBM settings file changed")
			continue
		case err := <-serveErr:
			stopActing()
			return fmt.Errorf("rpc server: %w", err)
		case <-ctx.Done():
		}
		break
	}

	notify("STOPPING=1")
	d.log.Info("stopping: finishing calls in flight")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		d.log.Warn("rpc shutdown", "err", err)
	}
	stopActing()
	d.log.Info("stopped")
	return nil
}

// listen takes the socket from systemd (socket activation) or creates it.
func (d *daemon) listen(cfg *config.Config) (net.Listener, error) {
	if ln, err := activationListener(); err != nil {
		return nil, err
	} else if ln != nil {
		d.log.Info("using the socket passed by systemd")
		return ln, nil
	}
	ln, err := rpcserver.Listen(cfg.Socket, cfg.SocketMode, cfg.SocketGroup)
	var ge *rpcserver.GroupError
	if errors.As(err, &ge) && ln != nil {
		d.log.Warn("socket group not applied", "err", err)
		return ln, nil
	}
	return ln, err
}

// allowed resolves the users and groups that may call ohfpd. The socket's
// group is always among them.
func (d *daemon) allowed(cfg *config.Config) (uids, gids []uint32) {
	for _, u := range cfg.AllowedUsers {
		if id, err := strconv.ParseUint(u, 10, 32); err == nil {
			uids = append(uids, uint32(id))
		} else if uu, err := user.Lookup(u); err == nil {
			id, _ := strconv.ParseUint(uu.Uid, 10, 32)
			uids = append(uids, uint32(id))
		} else {
			d.log.Warn("allowed_users: no such user in /etc/passwd; ohfpd is static and does not ask LDAP or SSSD: give the uid (id -u NAME)", "user", u)
		}
	}
	groups := append([]string{cfg.SocketGroup}, cfg.AllowedGroups...)
	for i, g := range groups {
		if g == "" {
			continue
		}
		if id, err := strconv.ParseUint(g, 10, 32); err == nil {
			gids = append(gids, uint32(id))
		} else if gg, err := user.LookupGroup(g); err == nil {
			id, _ := strconv.ParseUint(gg.Gid, 10, 32)
			gids = append(gids, uint32(id))
		} else if i > 0 {
			d.log.Warn("allowed_groups: no such group in /etc/group; ohfpd is static and does not ask LDAP or SSSD: give the gid (getent group NAME)", "group", g)
		}
	}
	return uids, gids
}

// buildProviders makes one AWS provider per configured provider. A
// provider whose name d.provs already holds keeps that one's meter.
func (d *daemon) buildProviders(ctx context.Context, cfg *config.Config) ([]engine.ProviderConfig, map[string]*awsprov.Provider, error) {
	var pcs []engine.ProviderConfig
	provs := map[string]*awsprov.Provider{}
	for _, p := range cfg.Providers {
		s := awsprov.Settings{
			Region:          p.Region,
			Profile:         p.Profile,
			CredentialsFile: p.CredentialsFile,
			EndpointURL:     p.EndpointURL,

			CredentialScript:      p.CredentialScript,
			CredentialRenewMargin: p.CredentialRenewMargin,

			Proxy:           p.Proxy,
			ConnectTimeout:  p.ConnectionTimeout,
			ResponseTimeout: p.ResponseTimeout,
			CallTimeout:     p.CallTimeout,
			RetryAttempts:   p.RetryAttempts,
			RateLimit:       p.AWSRateLimit,

			Pricing:            p.Pricing,
			Prices:             p.Prices,
			SpotPriceTTL:       p.SpotPriceTTL,
			PricingEndpointURL: p.PricingEndpointURL,
		}
		if old := d.provs[p.Name]; old != nil {
			// The same provider after a reload: its calls, errors and
			// health go on (and the old provider's calls still under way
			// end on the same meter, at their deadline), and so does what
			// it remembers of pools without capacity, and the credentials
			// its credential script gave (the last good ones too).
			s.Meter = old.Meter()
			s.CapacityMemory = old.CapacityMemory()
			s.ScriptCredentials = old.CredentialScript()
		}
		if s.CapacityMemory == nil {
			s.CapacityMemory = awsprov.NewCapacityMemory(p.CapacityMemory, nil)
		} else {
			s.CapacityMemory.SetTTL(p.CapacityMemory)
		}
		if d.simulate {
			s.EndpointURL = d.simEndpoint
			if s.Region == "" {
				s.Region = "us-east-1"
			}
			s.Profile, s.CredentialsFile, s.Proxy, s.CredentialScript = "", "", "", ""
			s.Credentials = credentials.NewStaticCredentialsProvider("SIMULATED", "SIMULATED", "")
		}
		ap, err := awsprov.New(ctx, s, d.log.With("component", "aws", "provider", p.Name))
		if err != nil {
			return nil, nil, fmt.Errorf("provider %s: %w", p.Name, err)
		}
		if d.mayAct != nil {
			ap.SetActionGate(d.mayAct) // ha: every attempt checks the lease
		}
		provs[p.Name] = ap
		pcs = append(pcs, engine.ProviderConfig{
			Name:            p.Name,
			Templates:       p.Templates,
			Cloud:           ap,
			PendingTimeout:  p.PendingTimeout,
			BreakerFailures: p.BreakerFailures,
			BreakerCooldown: p.BreakerCooldown,

			SpotTerminateOnReclaim: p.SpotTerminateOnReclaim,
			TagInstanceID:          p.TagInstanceID,
		})
		withEvents(&pcs[len(pcs)-1], p) // events.go
	}
	return pcs, provs, nil
}

// reload re-reads the configuration and templates for ohfp config reload
// (api.Options.Reload): see reloadAs.
func (d *daemon) reload(ctx context.Context) ([]string, error) {
	by := "SIGHUP"
	if _, ok := rpcserver.PeerFromContext(ctx); ok {
		by, _ = d.caller(ctx) // the API let only an operator through
	}
	return d.reloadAs(ctx, by)
}

// reloadAs re-reads the configuration and templates; an invalid one is
// refused and the old one stays in force. Whichever way it came (SIGHUP,
// ohfp config reload, a changed templates file), a refusal is logged here,
// once, at ERROR, with by. warnings are what the new configuration should
// have done otherwise, logged and returned for the caller to see.
func (d *daemon) reloadAs(ctx context.Context, by string) (warnings []string, err error) {
	defer func() {
		if err != nil {
			d.log.Error("reload refused; the old configuration stays in force", "by", by, "err", err)
		}
	}()
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg, err := config.Load(d.cfgPath)
	if err != nil {
		return nil, err
	}
	warnings = append(warnings, cfg.Warnings...)
	for _, w := range cfg.Warnings {
		d.log.Warn(w)
	}
	if cfg.ClusterID != d.cfg.ClusterID {
		return nil, fmt.Errorf("cluster_id changed from %q to %q: ohfpd would take every host tagged ohfp:managed-by=%s as taken back. Put back `cluster_id: %s`, or restart with ohfpd --adopt-cluster-id %s to re-tag its hosts and keep them",
			d.cfg.ClusterID, cfg.ClusterID, d.cfg.ClusterID, d.cfg.ClusterID, d.cfg.ClusterID)
	}
	if cfg.Socket != d.cfg.Socket || cfg.StateDir != d.cfg.StateDir || cfg.Pprof != d.cfg.Pprof || cfg.MetricsListen != d.cfg.MetricsListen {
		w := "socket, state_dir, pprof and metrics_listen changes take effect at the next restart"
		d.log.Warn(w)
		warnings = append(warnings, w)
	}
	if !reflect.DeepEqual(cfg.HA, d.cfg.HA) {
		// The store and the lease are the daemon's ground: the running
		// ones stay, and status keeps showing them.
		w := "ha: changes take effect at the next restart (systemctl restart ohfpd); until then the running table, host name and lease duration stay"
		d.log.Warn(w)
		warnings = append(warnings, w)
		cfg.HA = d.cfg.HA
	}
	pcs, provs, err := d.buildProviders(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if eng := d.eng; eng != nil {
		if err := eng.Reload(pcs); err != nil {
			for _, p := range provs {
				p.Close()
			}
			return nil, err
		}
	}
	// Calls still waiting on the old providers (a stalled endpoint) end
	// now and are made again through the new ones.
	for _, p := range d.provs {
		p.Close()
	}
	d.cfg, d.provs, d.pcs = cfg, provs, pcs
	gids, gw := resolveGroups(cfg.AdminGroups, "admin_groups", d.log)
	d.adminGIDs = gids
	warnings = append(warnings, gw...)
	d.log.Info("configuration reloaded", "file", d.cfgPath, "providers", len(pcs), "by", by, "warnings", len(warnings))
	return warnings, nil
}

// serveMetrics serves /metrics on the opt-in loopback TCP listener.
func serveMetrics(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	log.Info("metrics served", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() { _ = srv.Close() }, nil
}

// cloudStatus returns every provider's AWS health, for status and metrics.
func (d *daemon) cloudStatus() map[string]apitype.CloudStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]apitype.CloudStatus, len(d.provs))
	for name, p := range d.provs {
		out[name] = cloudStatus(p.Health())
	}
	return out
}

// cloudStatus is an AWS provider's health as the admin answers carry it.
func cloudStatus(h awsprov.Health) apitype.CloudStatus {
	c := apitype.CloudHealth{
		LastError: h.LastError, LastErrorAt: h.LastErrorAt, Throttled: h.Throttled, ThrottledActions: h.ThrottledActions,
		Unreachable: h.Unreachable, Failing: h.Failing, Credentials: h.Credentials, CredentialScript: h.CredentialScript, Failures: h.Failures, RetryInSeconds: h.RetryIn.Seconds(),
		Calls: h.Calls, Errors: h.Errors, Throttles: h.Throttles, Timeouts: h.Timeouts,
		NotAnswering: h.NotAnswering, InFlight: h.InFlight, OldestCall: h.OldestCall,
	}
	if h.NotAnswering {
		c.NotAnsweringSince = h.NotAnsweringSince
		c.NotAnsweringSeconds = h.NotAnsweringFor.Seconds()
	}
	return apitype.CloudStatus{Summary: h.Summary(), Health: c}
}

// tuneMemoryLimit sets the soft memory limit from the machines held
// (memoryLimit) at start and every 30 seconds until ctx ends.
func tuneMemoryLimit(ctx context.Context, current func() *engine.Engine, log *slog.Logger) {
	last := int64(-1)
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		n := 0
		if eng := current(); eng != nil {
			n = eng.MachineCount()
		}
		if l := memoryLimit(n); l != last {
			debug.SetMemoryLimit(l)
			if last >= 0 || l != defaultMemoryLimit {
				log.Info("soft memory limit set", "limit_mib", l>>20, "machines", n)
			}
			last = l
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
