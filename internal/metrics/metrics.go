// Package metrics exposes ohfpd's metrics in the Prometheus text format:
// HF calls and their latency per operation, AWS calls, errors and throttles
// per action, requests and machines by state, reconcile duration and lag,
// store size. Counters of other packages are read at scrape time, so the
// hot paths carry no metrics code beyond the call timer.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/health"
	"github.com/ohfp/ohfp/internal/rpc"
	"github.com/ohfp/ohfp/internal/rpcserver"
)

// Sources are what the collector reads at scrape time.
type Sources struct {
	// Status is the daemon's status: with the cloud's health (AWS) and
	// the verdict (Health) when the daemon fills them.
	Status func() apitype.Status
	// Cloud, when set, is read for providers' health when Status leaves
	// AWS empty.
	Cloud   func() map[string]apitype.CloudStatus // per provider name
	Store   func() (lsm, vlog int64)
	Version string
}

// Metrics owns ohfpd's registry.
type Metrics struct {
	reg      *prometheus.Registry
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New builds the registry with the process and Go collectors.
func New(src Sources) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ohfp_hf_calls_total",
			Help: "Calls served over the socket, by operation and outcome (ok or the JSON-RPC error code).",
		}, []string{"operation", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ohfp_hf_call_duration_seconds",
			Help:    "Time ohfpd took to answer a call, by operation (the client's process start is not included).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"operation"}),
	}
	reg.MustRegister(m.calls, m.duration,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&stateCollector{src: src})
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Wrap times every call of h.
func (m *Metrics) Wrap(h rpcserver.Handler) rpcserver.Handler {
	return rpcserver.HandlerFunc(func(ctx context.Context, method string, p rpc.Params) (any, error) {
		start := time.Now()
		out, err := h.Call(ctx, method, p)
		op := method
		if len(op) > 40 {
			op = "other" // keep label cardinality bounded
		}
		m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
		outcome := "ok"
		if err != nil {
			outcome = strconv.Itoa(rpc.CodeOf(err))
		}
		m.calls.WithLabelValues(op, outcome).Inc()
		return out, err
	})
}

var (
	descRequests   = prometheus.NewDesc("ohfp_requests", "Requests held, by kind and HF status.", []string{"kind", "status"}, nil)
	descMachines   = prometheus.NewDesc("ohfp_machines", "Machines held, by cloud state.", []string{"state"}, nil)
	descInFlight   = prometheus.NewDesc("ohfp_requests_in_flight", "Requests not yet final.", nil, nil)
	descReconciles = prometheus.NewDesc("ohfp_reconciles_total", "Reconcile passes run.", nil, nil)
	descRecDur     = prometheus.NewDesc("ohfp_reconcile_duration_seconds", "Duration of the last reconcile pass.", nil, nil)
	descRecLag     = prometheus.NewDesc("ohfp_reconcile_lag_seconds", "Time since the last reconcile pass started.", nil, nil)
	descListings   = prometheus.NewDesc("ohfp_listings_total", "Full listings of the instances with ohfp's tag, over all providers.", nil, nil)
	descListDur    = prometheus.NewDesc("ohfp_listing_duration_seconds", "Duration of the last full listing, pauses for HF's calls included.", nil, nil)
	descAWSCalls   = prometheus.NewDesc("ohfp_aws_calls_total", "AWS API calls (HTTP attempts), by provider and action.", []string{"provider", "action"}, nil)
	descAWSErrors  = prometheus.NewDesc("ohfp_aws_errors_total", "AWS API calls that failed, by provider and action.", []string{"provider", "action"}, nil)
	descAWSThrot   = prometheus.NewDesc("ohfp_aws_throttles_total", "AWS API calls answered with throttling, by provider and action.", []string{"provider", "action"}, nil)
	descAWSHealthy = prometheus.NewDesc("ohfp_aws_healthy", "1 while the provider's calls to AWS work; 0 while credentials fail, an action is throttled (its last call, after retries), AWS fails (5xx), is unreachable or does not answer (package health).", []string{"provider"}, nil)
	descHealth     = prometheus.NewDesc("ohfp_health", "ohfpd's health verdict, as ohfp status's exit code: 0 healthy, 1 degraded, 2 down.", nil, nil)
	descLive       = prometheus.NewDesc("ohfp_machines_live", "Machines neither terminated nor gone.", nil, nil)
	descAWSTimeout = prometheus.NewDesc("ohfp_aws_timeouts_total", "AWS API calls that got no answer within their deadline (connect, first byte or whole call), by provider and action.", []string{"provider", "action"}, nil)
	descAWSWaits   = prometheus.NewDesc("ohfp_aws_calls_in_flight", "AWS API calls (HTTP attempts) under way, by provider.", []string{"provider"}, nil)
	descAWSSilent  = prometheus.NewDesc("ohfp_aws_not_answering_seconds", "How long AWS has not answered the provider's calls; 0 while it answers.", []string{"provider"}, nil)
	descStore      = prometheus.NewDesc("ohfp_store_size_bytes", "Size of the Badger store, by part.", []string{"part"}, nil)
	descCapacity   = prometheus.NewDesc("ohfp_capacity_unavailable_until_seconds", "Capacity pools remembered without capacity (capacity_memory): when each is forgotten, as a Unix time, by provider, instance type, subnet or zone, and price type.", []string{"provider", "instance_type", "where", "price_type"}, nil)
	descBreakerF   = prometheus.NewDesc("ohfp_template_launch_failures", "Launches of a template that failed in a row for reasons retrying cannot fix (the failure breaker's count), by provider and template; templates with none are left out.", []string{"provider", "template"}, nil)
	descBreakerT   = prometheus.NewDesc("ohfp_template_stopped", "1 while a template's failure breaker has stopped it (availableNumber 0), by provider and template; templates not stopped are left out.", []string{"provider", "template"}, nil)
	descEvents     = prometheus.NewDesc("ohfp_events_total", "Messages of the provider's event queue (interruption_queue), by outcome: received, applied (an event that changed a machine), malformed, foreign; and failed queue calls (error).", []string{"provider", "outcome"}, nil)
	descBuild      = prometheus.NewDesc("ohfp_build_info", "ohfpd's version.", []string{"version"}, nil)
	// Price estimates: per kind of machine, not per instance, so that the
	// series are bounded by the configuration (templates x instance types
	// x zones x price types), not by the number of machines.
	descMachinePrice = prometheus.NewDesc("ohfp_machine_price_estimate_dollars",
		"Hourly price estimate, in US dollars, of one live machine of this provider, template, instance type, Availability Zone and price type (on-demand or spot); ohfp_machine_price_estimate_machines says how many run it.",
		[]string{"provider", "template", "instance_type", "az", "price_type"}, nil)
	descMachinePriced = prometheus.NewDesc("ohfp_machine_price_estimate_machines",
		"Live machines of this provider, template, instance type, Availability Zone and price type, whose price estimate is ohfp_machine_price_estimate_dollars.",
		[]string{"provider", "template", "instance_type", "az", "price_type"}, nil)
	descTemplatePrice = prometheus.NewDesc("ohfp_template_price_estimate_dollars_per_hour",
		"Sum of the hourly price estimates, in US dollars, of a template's live machines whose price is known.",
		[]string{"provider", "template"}, nil)
	descTemplateUnpriced = prometheus.NewDesc("ohfp_template_price_unknown_machines",
		"Live machines of a template whose price estimate is not known (ohfp status says why); they are not in ohfp_template_price_estimate_dollars_per_hour.",
		[]string{"provider", "template"}, nil)
)

type stateCollector struct{ src Sources }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descMachines, descInFlight, descReconciles, descRecDur, descRecLag, descListings, descListDur,
		descAWSCalls, descAWSErrors, descAWSThrot, descAWSHealthy, descAWSTimeout, descAWSWaits, descAWSSilent, descStore, descBuild,
		descHealth, descLive, descCapacity, descBreakerF, descBreakerT, descEvents, descMachinePrice, descMachinePriced, descTemplatePrice, descTemplateUnpriced} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descBuild, prometheus.GaugeValue, 1, c.src.Version)
	var cloud map[string]apitype.CloudStatus
	if c.src.Status != nil {
		rep := c.src.Status()
		cloud = rep.AWS
		if rep.Health != nil {
			ch <- prometheus.MustNewConstMetric(descHealth, prometheus.GaugeValue, float64(rep.Health.Code))
		}
		ch <- prometheus.MustNewConstMetric(descLive, prometheus.GaugeValue, float64(rep.LiveMachines))
		for k, n := range rep.Requests {
			kind, status := splitKey(k)
			ch <- prometheus.MustNewConstMetric(descRequests, prometheus.GaugeValue, float64(n), kind, status)
		}
		for st, n := range rep.Machines {
			ch <- prometheus.MustNewConstMetric(descMachines, prometheus.GaugeValue, float64(n), st)
		}
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(rep.InFlight))
		ch <- prometheus.MustNewConstMetric(descReconciles, prometheus.CounterValue, float64(rep.Reconciles))
		ch <- prometheus.MustNewConstMetric(descRecDur, prometheus.GaugeValue, float64(rep.LastReconcileMs)/1000)
		if !rep.LastReconcile.IsZero() {
			ch <- prometheus.MustNewConstMetric(descRecLag, prometheus.GaugeValue, time.Since(rep.LastReconcile).Seconds())
		}
		for _, u := range rep.Unavailable {
			ch <- prometheus.MustNewConstMetric(descCapacity, prometheus.GaugeValue, float64(u.Until.Unix()), u.Provider, u.InstanceType, u.Where, u.PriceType)
		}
		for _, b := range rep.Breakers {
			ch <- prometheus.MustNewConstMetric(descBreakerF, prometheus.GaugeValue, float64(b.Failures), b.Provider, b.TemplateID)
			if b.Tripped {
				ch <- prometheus.MustNewConstMetric(descBreakerT, prometheus.GaugeValue, 1, b.Provider, b.TemplateID)
			}
		}
		ch <- prometheus.MustNewConstMetric(descListings, prometheus.CounterValue, float64(rep.Listings))
		ch <- prometheus.MustNewConstMetric(descListDur, prometheus.GaugeValue, float64(rep.LastListingMs)/1000)
		for name, e := range rep.Events {
			for outcome, n := range map[string]int{"received": e.Received, "applied": e.Applied, "malformed": e.Malformed, "foreign": e.Foreign, "error": e.Errors} {
				ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(n), name, outcome)
			}
		}
		if c := rep.Cost; c != nil {
			for _, o := range c.Offerings {
				ch <- prometheus.MustNewConstMetric(descMachinePrice, prometheus.GaugeValue, o.DollarsPerHour, o.Provider, o.TemplateID, o.InstanceType, o.AZ, o.PriceType)
				ch <- prometheus.MustNewConstMetric(descMachinePriced, prometheus.GaugeValue, float64(o.Machines), o.Provider, o.TemplateID, o.InstanceType, o.AZ, o.PriceType)
			}
			for _, t := range c.Templates {
				ch <- prometheus.MustNewConstMetric(descTemplatePrice, prometheus.GaugeValue, t.Sum.DollarsPerHour, t.Provider, t.TemplateID)
				ch <- prometheus.MustNewConstMetric(descTemplateUnpriced, prometheus.GaugeValue, float64(t.Sum.Unknown), t.Provider, t.TemplateID)
			}
		}
	}
	if cloud == nil && c.src.Cloud != nil {
		cloud = c.src.Cloud()
	}
	{
		for name, cs := range cloud {
			h := cs.Health
			for a, n := range h.Calls {
				ch <- prometheus.MustNewConstMetric(descAWSCalls, prometheus.CounterValue, float64(n), name, a)
			}
			for a, n := range h.Errors {
				ch <- prometheus.MustNewConstMetric(descAWSErrors, prometheus.CounterValue, float64(n), name, a)
			}
			for a, n := range h.Throttles {
				ch <- prometheus.MustNewConstMetric(descAWSThrot, prometheus.CounterValue, float64(n), name, a)
			}
			for a, n := range h.Timeouts {
				ch <- prometheus.MustNewConstMetric(descAWSTimeout, prometheus.CounterValue, float64(n), name, a)
			}
			healthy := 1.0
			if !health.CloudOK(h) {
				healthy = 0
			}
			ch <- prometheus.MustNewConstMetric(descAWSHealthy, prometheus.GaugeValue, healthy, name)
			ch <- prometheus.MustNewConstMetric(descAWSWaits, prometheus.GaugeValue, float64(h.InFlight), name)
			ch <- prometheus.MustNewConstMetric(descAWSSilent, prometheus.GaugeValue, h.NotAnsweringSeconds, name)
		}
	}
	if c.src.Store != nil {
		lsm, vlog := c.src.Store()
		ch <- prometheus.MustNewConstMetric(descStore, prometheus.GaugeValue, float64(lsm), "lsm")
		ch <- prometheus.MustNewConstMetric(descStore, prometheus.GaugeValue, float64(vlog), "vlog")
	}
}

// splitKey splits apitype.Status.Requests' "kind status" keys.
func splitKey(k string) (string, string) {
	for i := 0; i < len(k); i++ {
		if k[i] == ' ' {
			return k[:i], k[i+1:]
		}
	}
	return k, ""
}
