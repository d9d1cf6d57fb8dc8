// Package awsprov implements provider.Provider on AWS with aws-sdk-go-v2:
// RunInstances launches, filtered and paginated DescribeInstances, batched
// TerminateInstances, cached DescribeInstanceTypes and SSM AMI parameters.
//
// Every client it makes carries the same middleware: client-side EC2
// request-rate buckets (so ohfp never causes throttling itself), a deadline
// on every HTTP attempt (connect, first byte, whole call: no call to a
// stalled endpoint can hang), a count of every call per action and a record
// of AWS's health (see Health and Meter). Errors come back classified as
// *provider.Error.
//
// The path is internal/provider/aws; the package is named awsprov so that
// it does not clash with the SDK's aws package. Launch dispatches on the
// template's provider API through the launchers table, so EC2 Fleet, Spot
// Fleet and Auto Scaling support can live in files of their own beside
// runinstances.go.
package awsprov

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ohfp/ohfp/internal/clock"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/sdklog"
	"github.com/ohfp/ohfp/internal/template"
)

// DefaultSSMCacheTTL is how long an AMI id resolved from an SSM parameter
// is reused.
const DefaultSSMCacheTTL = 10 * time.Minute

// Default deadlines of one HTTP attempt to AWS (see Settings).
const (
	DefaultConnectTimeout  = 10 * time.Second
	DefaultResponseTimeout = 30 * time.Second
	DefaultCallTimeout     = 60 * time.Second
)

// Settings configure the AWS provider. Zero values fall back to the
// standard AWS environment and shared config (AWS_REGION, AWS_PROFILE, the
// credential chain, AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>).
type Settings struct {
	Region          string // else AWS_REGION / the profile's region
	Profile         string // shared config profile, else AWS_PROFILE / default
	CredentialsFile string // shared credentials file (IBM's AWS_CREDENTIAL_FILE)
	// EndpointURL overrides the endpoint of every service (IBM's
	// AWS_ENDPOINT_URL, e.g. a VPC endpoint). Leave it empty to let the SDK
	// honour AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_EC2 / _SSM / _AUTO_SCALING.
	EndpointURL string
	// Proxy is an HTTP(S) proxy URL ("http://host:port"; "host:port" is
	// taken as http). Empty: the environment's HTTPS_PROXY / NO_PROXY.
	Proxy string
	// The deadlines of one HTTP attempt (0: the Default... constants):
	// ConnectTimeout bounds connecting (TCP and TLS), ResponseTimeout the
	// wait for the first byte of the answer, CallTimeout the whole
	// exchange. An attempt that runs out is not retried by the SDK; it
	// fails Transient ("AWS not answering") and the engine tries later.
	ConnectTimeout  time.Duration
	ResponseTimeout time.Duration
	CallTimeout     time.Duration
	// RetryAttempts is how many times the SDK retries a throttled, 5xx or
	// network-failed call (IBM's AWS_REQUEST_RETRY_ATTEMPTS, 0-10): the SDK
	// makes RetryAttempts+1 attempts, with exponential backoff and jitter.
	// 0 means no retry; validation errors are never retried.
	RetryAttempts int
	// Credentials, when set, replace the credential chain (static
	// credentials for --simulate).
	Credentials aws.CredentialsProvider
	// CredentialScript is IBM's AWS_CREDENTIAL_SCRIPT: a program whose
	// output is the credentials, run again before they expire
	// (credscript.go); CredentialRenewMargin is AWS_CREDENTIAL_RENEW_MARGIN
	// (0: DefaultCredentialRenewMargin). It wins over Profile and
	// CredentialsFile, as in IBM's plugin; Credentials wins over it.
	CredentialScript      string
	CredentialRenewMargin time.Duration
	// ScriptCredentials, when it runs the same script with the same
	// margin, is reused: the runner of the provider this one replaces, so
	// that a reload neither runs the script again nor loses the last good
	// credentials.
	ScriptCredentials *ScriptCredentials
	// HTTPClient, when set, is used as is (Proxy, ConnectTimeout and
	// ResponseTimeout are then ignored; CallTimeout still applies).
	HTTPClient *http.Client
	// RateLimit turns on the client-side EC2 request-rate buckets; the
	// daemon turns it on in production.
	RateLimit   bool
	SSMCacheTTL time.Duration // 0: DefaultSSMCacheTTL
	// Pricing is where price estimates come from (PricingOff, PricingTable,
	// PricingAPI; "": PricingTable); Prices the on-demand table (dollars
	// per hour by instance type), which wins over the Price List API;
	// SpotPriceTTL how long a Spot price is reused (0: DefaultSpotPriceTTL).
	Pricing      string
	Prices       map[string]float64
	SpotPriceTTL time.Duration
	// PricingEndpointURL is the Price List API's endpoint; "": EndpointURL,
	// else the SDK's (AWS_ENDPOINT_URL_PRICING, or us-east-1's).
	PricingEndpointURL string
	Clock              clock.Clock // nil: the wall clock
	// Meter, when set, records the provider's calls and health: the meter
	// of the provider this one replaces, so that counts survive a reload.
	// nil: a new one.
	Meter *Meter
	// CapacityMemory, when set, remembers pools without capacity
	// (capacity.go): the memory of the provider this one replaces, so
	// that a reload does not forget. nil: none (capacity_memory: 0).
	CapacityMemory *CapacityMemory

	// backoff replaces the SDK's retry backoff (tests).
	backoff retry.BackoffDelayer
}

// Provider is provider.Provider on AWS, and its launch policy
// (provider.Planner, by the embedded Planner). It is safe for concurrent use.
type Provider struct {
	Planner

	log      *slog.Logger
	clock    clock.Clock
	cfg      aws.Config // with ohfp's middleware; for further clients
	ec2      ec2API
	fleet    fleetAPI // the same EC2 client: fleets, Spot Fleet, launch templates
	asg      asgAPI
	ssm      ssmAPI
	sqs      sqsAPI   // the event queue (events.go)
	quotas   quotaAPI // Service Quotas, for ohfp check (quotas.go)
	limits   *limits  // nil: no client-side rate limiting
	health   *Meter
	capmem   *CapacityMemory // nil: capacity memory off
	timeouts timeouts
	// life ends with Close: every call in flight then ends at once
	// (a reload replaced this provider; see Close).
	life context.Context
	end  context.CancelFunc

	ssmTTL    time.Duration
	mu        sync.Mutex
	ssmCache  map[string]ssmEntry                  // parameter path -> AMI id
	rootDev   map[string]string                    // AMI id -> root device name
	typeCache map[string]provider.InstanceTypeInfo // instance type -> info
	queueURLs map[string]string                    // queue name -> URL (events.go)

	handles handleLocks // serialises Release and Cap per fleet handle

	prices prices // price configuration; its caches under mu (pricing.go)

	bornMu sync.Mutex
	born   map[string]time.Time // handles this process created, until handleSettle has passed

	// gate, when set, is asked before every HTTP attempt of a call that
	// changes the cloud (SetActionGate).
	gate atomic.Pointer[func() error]

	script *ScriptCredentials // IBM's AWS_CREDENTIAL_SCRIPT; nil: none
}

// SetActionGate makes every HTTP attempt of a call that changes the cloud
// (any action but Describe*, Get* and List*) ask gate first, after the
// client-side rate limit and the SDK's retry backoff, just before it is
// signed and sent; an attempt gate refuses is not sent and the call fails
// as Transient. A master candidate's lease (package ha) is checked so: a
// host paused between its own check and the SDK's retry of a throttled
// RunInstances would otherwise send it after its lease ran out.
func (p *Provider) SetActionGate(gate func() error) {
	if gate == nil {
		p.gate.Store(nil)
		return
	}
	p.gate.Store(&gate)
}

// changesCloud reports whether an API action changes the cloud.
func changesCloud(op string) bool {
	return !strings.HasPrefix(op, "Describe") && !strings.HasPrefix(op, "Get") && !strings.HasPrefix(op, "List")
}

var _ provider.Provider = (*Provider)(nil)

// New loads the AWS configuration (the standard environment and shared
// config, overridden by s) and returns a provider. It makes no AWS call.
func New(ctx context.Context, s Settings, logger *slog.Logger) (*Provider, error) {
	var opts []func(*config.LoadOptions) error
	if s.Region != "" {
		opts = append(opts, config.WithRegion(s.Region))
	}
	if s.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(s.Profile))
	}
	if s.CredentialsFile != "" {
		opts = append(opts, config.WithSharedCredentialsFiles([]string{s.CredentialsFile}))
	}
	var script *ScriptCredentials
	if s.Credentials == nil && s.CredentialScript != "" {
		script = s.ScriptCredentials
		if !script.Same(s.CredentialScript, s.CredentialRenewMargin) {
			script = NewScriptCredentials(s.CredentialScript, s.CredentialRenewMargin)
		}
		s.Credentials = script.Cache()
	}
	if s.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(s.Credentials))
	}
	s.ConnectTimeout = orDefault(s.ConnectTimeout, DefaultConnectTimeout)
	s.ResponseTimeout = orDefault(s.ResponseTimeout, DefaultResponseTimeout)
	s.CallTimeout = orDefault(s.CallTimeout, DefaultCallTimeout)
	hc, err := httpClient(s)
	if err != nil {
		return nil, err
	}
	if hc != nil {
		opts = append(opts, config.WithHTTPClient(hc))
	}
	if s.RetryAttempts < 0 || s.RetryAttempts > 10 {
		return nil, fmt.Errorf("AWS retry attempts %d: must be between 0 and 10", s.RetryAttempts)
	}
	opts = append(opts, config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = s.RetryAttempts + 1
			// The client-side buckets and the engine's backoff pace ohfp;
			// the SDK's retry quota would only turn throttling into
			// "retry quota exceeded" errors.
			o.RateLimiter = ratelimit.None
			// EC2 sends capacity errors as 5xx; retrying them at once only
			// delays the engine's reaction (another type, zone or report).
			o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(noRetryCapacity),
				retry.IsErrorRetryableFunc(noRetryTimeout)}, o.Retryables...)
			if s.backoff != nil {
				o.Backoff = s.backoff
			}
		})
	}))
	opts = append(opts, config.WithLogger(sdklog.New(logger)))
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("no AWS region: set region in the provider's configuration or AWS_REGION")
	}
	if s.EndpointURL != "" {
		cfg.BaseEndpoint = aws.String(s.EndpointURL)
	}
	// Wrapped after loading: the SDK configures custom CA bundles on its own
	// client type while it loads.
	cfg.HTTPClient = bufferedBody{cfg.HTTPClient}
	p := newProvider(s, logger)
	p.script = script
	// The Price List client: the Price List Query API is served from
	// us-east-1 whatever the provider's region. Its calls are counted and
	// bounded in time like the others, but do not make AWS's health: a
	// cluster that cannot reach the pricing endpoint or may not call it
	// still launches and is healthy (pricing: api, see pricing.go).
	pcfg := cfg.Copy()
	pcfg.Region = DefaultPricingRegion
	pcfg.APIOptions = append(pcfg.APIOptions[:len(pcfg.APIOptions):len(pcfg.APIOptions)], p.instrumentSide)
	// Service Quotas serves ohfp check only: a refusal there says what the
	// check cannot tell, not that AWS is failing.
	scfg := cfg.Copy()
	scfg.APIOptions = append(scfg.APIOptions[:len(scfg.APIOptions):len(scfg.APIOptions)], p.instrumentSide)
	cfg.APIOptions = append(cfg.APIOptions, p.instrument)
	p.cfg = cfg
	p.prices.region = cfg.Region
	// cfg.BaseEndpoint alone would lose to AWS_ENDPOINT_URL_<SERVICE>; the
	// configured endpoint wins, so set it on each client too.
	endpoint := func(base **string) {
		if s.EndpointURL != "" {
			*base = aws.String(s.EndpointURL)
		}
	}
	ec2c := ec2.NewFromConfig(cfg, func(o *ec2.Options) { endpoint(&o.BaseEndpoint) })
	p.ec2, p.fleet = ec2c, ec2c
	p.asg = autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { endpoint(&o.BaseEndpoint) })
	p.ssm = ssm.NewFromConfig(cfg, func(o *ssm.Options) { endpoint(&o.BaseEndpoint) })
	// The event queue's client has none of ohfp's EC2 middleware: its long
	// polls are no stalled calls, and a lost queue is not AWS failing
	// (the queue only complements the passes; its figures are its own).
	qcfg := cfg.Copy()
	qcfg.APIOptions = nil
	p.sqs = sqs.NewFromConfig(qcfg, func(o *sqs.Options) { endpoint(&o.BaseEndpoint) })
	p.prices.spot = ec2c
	p.quotas = servicequotas.NewFromConfig(scfg, func(o *servicequotas.Options) { endpoint(&o.BaseEndpoint) })
	if p.prices.mode == PricingAPI {
		p.prices.list = pricing.NewFromConfig(pcfg, func(o *pricing.Options) {
			endpoint(&o.BaseEndpoint)
			if s.PricingEndpointURL != "" {
				o.BaseEndpoint = aws.String(s.PricingEndpointURL)
			}
		})
	}
	logger.Debug("AWS provider ready", "region", cfg.Region, "endpoint", s.EndpointURL,
		"retry_attempts", s.RetryAttempts, "rate_limit", s.RateLimit,
		"connect_timeout", s.ConnectTimeout, "response_timeout", s.ResponseTimeout, "call_timeout", s.CallTimeout)
	return p, nil
}

// newProvider builds a provider without clients (New and tests add them).
func newProvider(s Settings, logger *slog.Logger) *Provider {
	c := s.Clock
	if c == nil {
		c = clock.Real{}
	}
	ttl := s.SSMCacheTTL
	if ttl <= 0 {
		ttl = DefaultSSMCacheTTL
	}
	m := s.Meter
	if m == nil {
		m = NewMeter(c)
	}
	t := timeouts{
		connect:  orDefault(s.ConnectTimeout, DefaultConnectTimeout),
		response: orDefault(s.ResponseTimeout, DefaultResponseTimeout),
		call:     orDefault(s.CallTimeout, DefaultCallTimeout),
	}
	m.setStallAfter(min(t.response, t.call))
	p := &Provider{
		log:       logger,
		clock:     c,
		health:    m,
		capmem:    s.CapacityMemory,
		timeouts:  t,
		ssmTTL:    ttl,
		ssmCache:  map[string]ssmEntry{},
		rootDev:   map[string]string{},
		typeCache: map[string]provider.InstanceTypeInfo{},
		prices:    newPrices(s),
	}
	p.life, p.end = context.WithCancel(context.Background())
	if s.RateLimit {
		p.limits = newLimits()
	}
	return p
}

// Close ends the calls this provider has in flight (a reload replaced it:
// a call stalled on the old endpoint must not hold a request for its whole
// deadline). They fail Transient, so the engine tries again, through the
// new provider. The provider must not be used afterwards.
func (p *Provider) Close() { p.end() }

// httpClient builds the HTTP client for Proxy, ConnectTimeout and
// ResponseTimeout (or returns s.HTTPClient).
func httpClient(s Settings) (aws.HTTPClient, error) {
	if s.HTTPClient != nil {
		return s.HTTPClient, nil
	}
	c := awshttp.NewBuildableClient()
	if s.Proxy != "" {
		raw := s.Proxy
		if !strings.Contains(raw, "://") {
			raw = "http://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("AWS proxy %q: not a URL like http://host:port", s.Proxy)
		}
		c = c.WithTransportOptions(func(t *http.Transport) { t.Proxy = http.ProxyURL(u) })
	}
	if s.ConnectTimeout > 0 {
		c = c.WithDialerOptions(func(d *net.Dialer) { d.Timeout = s.ConnectTimeout })
	}
	c = c.WithTransportOptions(func(t *http.Transport) {
		if s.ConnectTimeout > 0 {
			t.TLSHandshakeTimeout = s.ConnectTimeout
		}
		if s.ResponseTimeout > 0 {
			t.ResponseHeaderTimeout = s.ResponseTimeout
		}
	})
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// bufferedBody hands net/http a private in-memory copy of each request
// body. The SDK closes its own body as soon as the round trip returns; when
// the server answers within microseconds (a VPC endpoint, the simulated
// region on loopback) the transport may still be probing that body for
// EOF, get an error from the closed reader and tear the connection down
// while the response is read ("use of closed network connection"). EC2,
// Auto Scaling and SSM bodies are small forms, so the copy is cheap.
type bufferedBody struct{ next aws.HTTPClient }

func (b bufferedBody) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		data, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		gate, _ := req.Context().Value(gateKey{}).(func() error)
		body := func() io.ReadCloser {
			if gate != nil {
				return &gatedBody{r: bytes.NewReader(data), gate: gate}
			}
			return io.NopCloser(bytes.NewReader(data))
		}
		req.Body = body()
		req.GetBody = func() (io.ReadCloser, error) { return body(), nil }
		req.ContentLength = int64(len(data))
	}
	return b.next.Do(req)
}

// gateKey carries the action gate (SetActionGate) of a call that changes
// the cloud to its HTTP request.
type gateKey struct{}

// gatedBody asks the gate once more when net/http first reads the body:
// after the headers are formatted and before the request is flushed to the
// connection, the last moment before it leaves. Asked only in the
// middleware, a process frozen (SIGSTOP, a VM pause) between the check and
// the send, during signing or a dial, would send the call on waking; the
// failover soak caught exactly that. Refused, the request is abandoned
// before its body is written: the server never gets a whole request.
type gatedBody struct {
	r      *bytes.Reader
	gate   func() error
	asked  bool
	refuse error
}

func (b *gatedBody) Read(p []byte) (int, error) {
	if !b.asked {
		b.asked = true
		if err := b.gate(); err != nil {
			b.refuse = &provider.Error{Op: "send", Kind: provider.Transient, Message: "not sent: " + err.Error()}
		}
	}
	if b.refuse != nil {
		return 0, b.refuse
	}
	return b.r.Read(p)
}

func (b *gatedBody) Close() error { return nil }

// Config returns the AWS configuration the provider's clients use (region,
// credentials, endpoint, HTTP client, retryer and ohfp's middleware), to
// make clients of other services alike, e.g. autoscaling.NewFromConfig.
func (p *Provider) Config() aws.Config { return p.cfg }

// launcher launches one LaunchSpec through one provider API.
type launcher func(p *Provider, ctx context.Context, spec provider.LaunchSpec) (provider.LaunchResult, error)

// launchers maps a template's provider API (template.API()) to its
// implementation. Files beside this one add theirs (EC2Fleet, SpotFleet,
// ASG) from an init function.
var launchers = map[string]launcher{
	template.APIRunInstances: (*Provider).launchRunInstances,
}

// Launch provisions spec.Units units through the template's provider API.
func (p *Provider) Launch(ctx context.Context, spec provider.LaunchSpec) (provider.LaunchResult, error) {
	api := spec.Template.API()
	l, ok := launchers[api]
	if !ok {
		return provider.LaunchResult{}, &provider.Error{Op: "Launch", Kind: provider.Fatal,
			Message: fmt.Sprintf("template %s: providerApi %s is not supported by this ohfpd", spec.Template.TemplateID, api)}
	}
	res, err := l(p, ctx, spec)
	if err != nil {
		var pe *provider.Error
		if errors.As(err, &pe) && pe.Kind == provider.Capacity {
			p.rememberLaunch(spec, pe.Code, pe.Message)
		}
	}
	if err == nil {
		p.forgetLaunch(spec, res)
	}
	if err == nil && res.Handle != "" {
		p.bornMu.Lock()
		if p.born == nil {
			p.born = map[string]time.Time{}
		}
		if _, ok := p.born[res.Handle]; !ok { // a retry with the same token: the first answer's time
			p.born[res.Handle] = p.clock.Now()
		}
		p.bornMu.Unlock()
	}
	return res, err
}

// handleSettle is how long after creating a fleet, Spot Fleet request or
// group Poll does not describe it: EC2 would not know it yet (EC2
// Developer Guide, "Eventual consistency in the Amazon EC2 API": a
// resource just created "might not have propagated throughout the
// system"; retry "starting with a couple of seconds of wait time") and
// answer InvalidFleetId.NotFound or InvalidSpotFleetRequestId.NotFound.
// Poll gives such a handle NotFound without asking, as the cloud would.
// A handle still unknown after it is asked normally (and the engine waits
// VisibilityGrace before taking it as gone).
const handleSettle = 5 * time.Second

// young reports whether this process created handle less than
// handleSettle ago; it forgets handles older than that.
func (p *Provider) young(handle string, now time.Time) bool {
	p.bornMu.Lock()
	defer p.bornMu.Unlock()
	at, ok := p.born[handle]
	if !ok {
		return false
	}
	if now.Sub(at) >= handleSettle {
		delete(p.born, handle)
		return false
	}
	return true
}
