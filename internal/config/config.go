// Package config reads ohfpd's single YAML configuration file, strictly:
// an unknown or duplicate key, a value of the wrong type or out of range is
// an error naming the file, the line and the key. It also reads the IBM Host
// Factory files a provider may reference (awsprov_templates.json and
// awsprov_config.json), validates the templates into template.Template, and
// converts an IBM configuration folder into an ohfpd YAML file (ImportHF).
//
// Loading touches nothing: the daemon loads a new Config, and only if that
// succeeds swaps it in. reference.md in this folder documents every key.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ohfp/ohfp/internal/template"
)

// Defaults.
const (
	DefaultSocket            = "/run/ohfp/ohfp.sock"
	DefaultSocketMode        = fs.FileMode(0o660)
	DefaultSocketGroup       = "ohfp"
	DefaultStateDir          = "/var/lib/ohfp"
	DefaultClusterID         = "ohfp"
	DefaultLogLevel          = "info"
	DefaultLogFormat         = "auto"
	DefaultActiveInterval    = 3 * time.Second
	DefaultIdleInterval      = 30 * time.Second
	DefaultClaimTimeout      = 30 * time.Minute
	DefaultLaunchDelay       = time.Second
	DefaultTerminateDelay    = time.Second
	DefaultConnectionTimeout = 10 * time.Second
	DefaultResponseTimeout   = 30 * time.Second
	DefaultCallTimeout       = 60 * time.Second
	DefaultRetryAttempts     = 3
	DefaultPendingTimeout    = 180 * time.Second
	DefaultDescribeRetries   = 3
	DefaultSpotFleetExpiry   = 30 // minutes
	DefaultCapacityMemory    = 3 * time.Minute
	DefaultBreakerFailures   = 3
	DefaultBreakerCooldown   = 10 * time.Minute
	DefaultSpotPriceTTL      = 10 * time.Minute
)

// Pricing modes (Provider.Pricing).
const (
	PricingOff   = "off"
	PricingTable = "table"
	PricingAPI   = "api"
)

// Limits.
const (
	MinPendingTimeout = 180 * time.Second
	MaxPendingTimeout = 10000 * time.Second
	MaxRetryAttempts  = 10
	MinSpotPriceTTL   = time.Minute
	MaxSpotPriceTTL   = 24 * time.Hour
)

// Config is the whole daemon configuration, fully defaulted and validated.
// Paths are absolute (relative ones are resolved against the directory of
// the file that names them).
type Config struct {
	// File is the absolute path the configuration was loaded from ("" when
	// parsed from bytes without a name).
	File string `json:"-"`

	// Socket is the Unix socket ohfpd listens on (when systemd does not pass
	// one). Default /run/ohfp/ohfp.sock.
	Socket string `json:"socket"`
	// SocketMode is the permission of the socket ohfpd creates; written as an
	// octal string, default "0660".
	SocketMode fs.FileMode `json:"socket_mode"`
	// SocketGroup is the group given to the socket ohfpd creates (name or
	// numeric id). Default "ohfp".
	SocketGroup string `json:"socket_group"`
	// AllowedUsers and AllowedGroups list who may call ohfpd (user or group
	// names, or numeric ids), checked with the peer credentials of each
	// connection. Empty lists: anyone who can open the socket (root and
	// ohfpd's own user are always allowed).
	AllowedUsers  []string `json:"allowed_users"`
	AllowedGroups []string `json:"allowed_groups"`
	// AdminGroups list the groups (names or numeric ids) whose members,
	// besides root, may act as the operator: ohfp cancel, return, drain,
	// undrain, check and config reload. Empty: root only.
	AdminGroups []string `json:"admin_groups"`
	// StateDir is where the Badger store lives. Default /var/lib/ohfp.
	StateDir string `json:"state_dir"`
	// ClusterID is the value of the ohfp:managed-by tag on everything this
	// daemon launches: 1-128 of letters, digits and + - = . _ : / @.
	// Default "ohfp". Two daemons sharing an AWS account need different ids.
	ClusterID string `json:"cluster_id"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `json:"log_level"`
	// LogFormat is auto (colour on a terminal, plain text otherwise), text
	// or json. Default auto.
	LogFormat string `json:"log_format"`
	// Reconcile sets how often the reconciler runs.
	Reconcile Reconcile `json:"reconcile"`
	// MetricsListen is an optional loopback host:port for a Prometheus
	// /metrics listener over TCP ("" = only on the socket).
	MetricsListen string `json:"metrics_listen,omitempty"`
	// Pprof serves Go's profiler (net/http/pprof) under /debug/pprof/ on
	// the socket, behind the same caller check as the calls. Default off.
	Pprof bool `json:"pprof,omitempty"`
	// Simulate tunes the simulated region used by ohfpd --simulate.
	Simulate Simulate `json:"simulate"`
	// HA, when set, keeps the state in a DynamoDB table shared by the
	// Symphony master candidates, with a lease so that one daemon acts at
	// a time (see HA). Nil: the embedded Badger store in state_dir.
	HA *HA `json:"ha,omitempty"`
	// Providers lists the provider instances; at least one. The first one
	// answers calls whose HF_PROVIDER_NAME matches none (or is unset).
	Providers []Provider `json:"providers"`

	// Read lists the files a template's ec2FleetConfig names, as read
	// (or tried): HF edits them in its folder like the templates file, so
	// ohfpd watches them too.
	Read []string `json:"-"`
	// Warnings are non-fatal remarks found while loading (a provider
	// without templates, ...); the daemon logs them.
	Warnings []string `json:"warnings,omitempty"`
}

// Reconcile holds the reconciler's intervals.
type Reconcile struct {
	// ActiveInterval is the delay between passes while anything is in
	// flight. Default 3s.
	ActiveInterval time.Duration `json:"active_interval"`
	// IdleInterval is the delay between passes when nothing is in flight.
	// Default 30s.
	IdleInterval time.Duration `json:"idle_interval"`
	// ClaimTimeout: the machines of a request HF never learned of (its
	// answer was lost) are terminated once HF's getReturnRequests calls
	// have left them out for this long. Default 30m.
	ClaimTimeout time.Duration `json:"claim_timeout"`
}

// Simulate holds the simulated region's timings (ohfpd --simulate).
type Simulate struct {
	// LaunchDelay is how long a simulated instance stays pending. Default 1s.
	LaunchDelay time.Duration `json:"launch_delay"`
	// TerminateDelay is how long a simulated instance stays shutting-down.
	// Default 1s.
	TerminateDelay time.Duration `json:"terminate_delay"`
}

// HA is the `ha:` section: the shared store of master candidates.
type HA struct {
	// Table is the DynamoDB table (required).
	Table string `json:"table"`
	// Region of the table. Default: the first provider's region.
	Region string `json:"region,omitempty"`
	// EndpointURL overrides DynamoDB's endpoint (a VPC endpoint, tests).
	EndpointURL string `json:"endpoint_url,omitempty"`
	// Profile and CredentialsFile select the credentials for the table.
	// Default: the first provider's.
	Profile         string `json:"profile,omitempty"`
	CredentialsFile string `json:"credentials_file,omitempty"`
	// CredentialScript and CredentialRenewMargin: the first provider's
	// credential_script, when it has one and neither Profile nor
	// CredentialsFile is given (not settable in the ha: section).
	CredentialScript      string        `json:"credential_script,omitempty"`
	CredentialRenewMargin time.Duration `json:"credential_renew_margin,omitempty"`
	// LeaseDuration is how long a holder that stops renewing keeps the
	// lease: the longest a failover waits for a dead host. Default 10s
	// (2s-5m).
	LeaseDuration time.Duration `json:"lease_duration"`
	// CreateTable creates the table when missing (on-demand capacity).
	// Default false: ohfpd prints the one command that creates it.
	CreateTable bool `json:"create_table,omitempty"`
	// Host is this host's name as the lease shows it. Default: the
	// host name.
	Host string `json:"host,omitempty"`
}

// DefaultLeaseDuration is ha.lease_duration's default.
const DefaultLeaseDuration = 10 * time.Second

// Provider is one HF provider instance: an AWS account/region and its
// templates.
type Provider struct {
	// Name is matched against HF_PROVIDER_NAME: 1-64 of letters, digits,
	// '.', '_' and '-'; unique.
	Name string `json:"name"`
	// Region is the AWS region (AWS_REGION). Empty: the SDK's default chain
	// (AWS_REGION in the environment, the shared config profile).
	Region string `json:"region,omitempty"`
	// Profile is a shared-config profile name (AWS_PROFILE equivalent).
	Profile string `json:"profile,omitempty"`
	// CredentialsFile is a shared credentials file (AWS_CREDENTIAL_FILE).
	// Empty: the default chain (environment, profile, instance role).
	CredentialsFile string `json:"credentials_file,omitempty"`
	// CredentialScript is IBM's AWS_CREDENTIAL_SCRIPT: a program whose
	// output is temporary credentials, run again before they expire;
	// CredentialRenewMargin is AWS_CREDENTIAL_RENEW_MARGIN (0: IBM's
	// default, 1770 s). The script wins over CredentialsFile and Profile.
	CredentialScript      string        `json:"credential_script,omitempty"`
	CredentialRenewMargin time.Duration `json:"credential_renew_margin,omitempty"`
	// EndpointURL overrides the EC2/Auto Scaling/SSM endpoint, e.g. a VPC
	// endpoint (AWS_ENDPOINT_URL).
	EndpointURL string `json:"endpoint_url,omitempty"`
	// Proxy is an HTTP(S) proxy as host:port or URL (AWS_PROXY_HOST and
	// AWS_PROXY_PORT).
	Proxy string `json:"proxy,omitempty"`
	// ConnectionTimeout bounds connecting to AWS (AWS_CONNECTION_TIMEOUT_MS).
	// Default 10s.
	ConnectionTimeout time.Duration `json:"connection_timeout"`
	// ResponseTimeout bounds the wait for the first byte of AWS's answer to
	// one call. Default 30s.
	ResponseTimeout time.Duration `json:"aws_response_timeout"`
	// CallTimeout bounds one call to AWS as a whole, from sending it to the
	// last byte of the answer. A call that runs out of any of the three is
	// not retried at once; the engine tries again later. Default 60s.
	CallTimeout time.Duration `json:"aws_call_timeout"`
	// RetryAttempts is how many times a failed AWS call is retried, 0-10
	// (AWS_REQUEST_RETRY_ATTEMPTS). Default 3.
	RetryAttempts int `json:"retry_attempts"`
	// PendingTimeout is how long an instance may stay pending before it is
	// failed and terminated, 180s-10000s (AWS_INSTANCE_PENDING_TIMEOUT_SEC).
	// Default 180s.
	PendingTimeout time.Duration `json:"pending_timeout"`
	// DescribeRetryAttempts is how many times a failed describe call is
	// retried, 0-10 (AWS_DESCRIBE_REQUEST_RETRY_ATTEMPTS). Default 3.
	DescribeRetryAttempts int `json:"describe_retry_attempts"`
	// DescribeInterval is the pause between describe retries
	// (AWS_DESCRIBE_REQUEST_INTERVAL, in milliseconds there). Default 0:
	// the SDK's backoff.
	DescribeInterval time.Duration `json:"describe_interval"`
	// KeyFile is IBM's AWS_KEY_FILE, carried for compatibility; ohfpd only
	// checks its permissions.
	KeyFile string `json:"key_file,omitempty"`
	// AcceptPropagatedLogSetting: when true, HF_LOGLEVEL from the calling
	// environment may lower or raise the log level
	// (ACCEPT_PROPAGATED_LOG_SETTING).
	AcceptPropagatedLogSetting bool `json:"accept_propagated_log_setting"`
	// AWSRateLimit keeps ohfp's own calls within EC2's request-rate buckets
	// (default true). Turn it off only for an account whose limits AWS has
	// raised, or against the simulated region.
	AWSRateLimit bool `json:"aws_rate_limit"`
	// CapacityMemory is how long a pool (instance type, subnet or zone,
	// price type) where EC2 had no capacity is remembered, so that
	// launches try the template's other pools first (0: off).
	CapacityMemory time.Duration `json:"capacity_memory"`
	// BreakerFailures stops a template whose launches fail this many
	// times in a row for reasons retrying cannot fix (0: off);
	// BreakerCooldown re-arms it after (0: only a reload or ohfp rearm).
	BreakerFailures int           `json:"breaker_failures"`
	BreakerCooldown time.Duration `json:"breaker_cooldown"`
	// SpotTerminateOnReclaim is IBM's AWS_SPOT_TERMINATE_ON_RECLAIM: when
	// HF returns a Spot host AWS is already reclaiming, terminate it at
	// once (true) or leave it to AWS (false, the default: the partial hour
	// is not billed).
	SpotTerminateOnReclaim bool `json:"spot_terminate_on_reclaim"`
	// TagInstanceID is IBM's AWS_TAG_InstanceID: tag every instance and
	// its EBS volumes InstanceID=<instance id>.
	TagInstanceID bool `json:"tag_instance_id"`
	// UserDataTemplate is the bootstrap script (IBM's user_data.sh) whose
	// %EXPORT_USER_DATA% marker receives a template's userData variables.
	// Default: user_data.sh beside the templates file when there is one,
	// else DefaultUserDataTemplate.
	UserDataTemplate string `json:"user_data_template,omitempty"`
	// HFConfDir is HF's folder of this provider instance
	// (HF_PROVIDER_CONFDIR, e.g. $HF_TOP/conf/providers/awsinst): its
	// <name>prov_templates.json and <name>prov_config.json are read from it
	// (awsprov_... when those are absent), where templates_file and
	// hf_config_file are not given. ohfpd picks up HF's edits by itself.
	HFConfDir string `json:"hf_conf_dir,omitempty"`
	// Pricing is where machines' hourly price estimates come from: off
	// (none), table (the default: Prices only, no AWS call) or api
	// (on-demand from Prices, else the AWS Price List API,
	// pricing:GetProducts; Spot from DescribeSpotPriceHistory).
	Pricing string `json:"pricing"`
	// Prices are on-demand prices in US dollars per hour by instance type;
	// they win over the Price List API.
	Prices map[string]float64 `json:"prices,omitempty"`
	// SpotPriceTTL is how long a Spot price from DescribeSpotPriceHistory
	// is reused (pricing: api). Default 10 min.
	SpotPriceTTL time.Duration `json:"spot_price_ttl"`
	// PricingEndpointURL is the Price List API's endpoint (pricing: api).
	// Default: EndpointURL when set, else AWS's in us-east-1.
	PricingEndpointURL string `json:"pricing_endpoint_url,omitempty"`
	// TemplatesFile is IBM's awsprov_templates.json for this provider.
	TemplatesFile string `json:"templates_file,omitempty"`
	// HFConfigFile is IBM's awsprov_config.json for this provider; its
	// settings apply where the YAML does not set them.
	HFConfigFile string `json:"hf_config_file,omitempty"`
	// Templates are the provider's templates: those written inline in the
	// YAML first, then those of TemplatesFile. Ids are unique.
	Templates []template.Template `json:"templates"`
	// InterruptionQueue is the SQS queue (URL or name) into which
	// EventBridge rules put EC2's and AWS Health's events; empty: none.
	InterruptionQueue string `json:"interruption_queue,omitempty"`
	// RebalanceAsReclaim reports EC2 rebalance recommendations (from the
	// queue) to HF as the host being taken back. Default false.
	RebalanceAsReclaim bool `json:"rebalance_as_reclaim,omitempty"`
	// HealthChecks drains hosts with a scheduled EC2 event (retirement,
	// reboot, maintenance, stop). Default true.
	HealthChecks bool `json:"health_checks"`
	// HealthCheckGrace, when set (1m-24h), also drains hosts failing an
	// EC2 status check for that long. Default 0: not drained.
	HealthCheckGrace time.Duration `json:"health_check_grace,omitempty"`
}

// Provider returns the provider named name, or the first (default) provider
// when name is empty or matches none; ok reports an exact match.
func (c *Config) Provider(name string) (p *Provider, ok bool) {
	for i := range c.Providers {
		if c.Providers[i].Name == name {
			return &c.Providers[i], true
		}
	}
	if len(c.Providers) == 0 {
		return nil, false
	}
	return &c.Providers[0], false
}

// Template returns the template with id templateId.
func (p *Provider) Template(templateID string) (*template.Template, bool) {
	for i := range p.Templates {
		if p.Templates[i].TemplateID == templateID {
			return &p.Templates[i], true
		}
	}
	return nil, false
}

// SlogLevel returns LogLevel as a slog.Level.
func (c *Config) SlogLevel() slog.Level {
	switch c.LogLevel {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Default returns the configuration used for keys a file leaves out (with no
// providers).
func Default() *Config {
	return &Config{
		Socket:      DefaultSocket,
		SocketMode:  DefaultSocketMode,
		SocketGroup: DefaultSocketGroup,
		StateDir:    DefaultStateDir,
		ClusterID:   DefaultClusterID,
		LogLevel:    DefaultLogLevel,
		LogFormat:   DefaultLogFormat,
		Reconcile:   Reconcile{ActiveInterval: DefaultActiveInterval, IdleInterval: DefaultIdleInterval, ClaimTimeout: DefaultClaimTimeout},
		Simulate:    Simulate{LaunchDelay: DefaultLaunchDelay, TerminateDelay: DefaultTerminateDelay},
	}
}

// Load reads, validates and defaults the configuration in path, with the
// templates and IBM settings files its providers reference. The error, if
// any, lists every problem found (up to 25), each naming file:line and key.
func Load(path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	c, err := parse(data, path, filepath.Dir(abs))
	if c != nil {
		c.File = abs
	}
	return c, err
}

// Parse parses configuration bytes as if read from filename: relative paths
// are resolved against filename's directory (the working directory when
// filename has none), and referenced files are read.
func Parse(data []byte, filename string) (*Config, error) {
	dir := filepath.Dir(filename)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return parse(data, filename, dir)
}

func parse(data []byte, filename, dir string) (*Config, error) {
	var errs []error
	c := Default()
	body, ok := parseFile(data, filename, &errs)
	if ok {
		d := &doc{file: filename, dir: dir, errs: &errs, warns: &c.Warnings, read: &c.Read}
		if body == nil {
			errs = append(errs, &Error{File: filename, Msg: "the file is empty: at least providers: is needed"})
		} else {
			decodeConfig(value{d: d, node: unwrap(body)}, c)
		}
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errors.Join(errs...)
	}
	return c, nil
}

var (
	clusterIDRe    = regexp.MustCompile(`^[A-Za-z0-9+\-=._:/@]{1,128}$`)
	providerNameRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// maxSocketPath is the longest path a Unix socket address holds (sun_path
// is 108 bytes including the terminating NUL).
const maxSocketPath = 107

func (d *doc) path(v value) (string, bool) {
	s, ok := v.str()
	if !ok {
		return "", false
	}
	s = strings.TrimSpace(s)
	if s == "" {
		v.errorf("empty path")
		return "", false
	}
	if strings.HasPrefix(s, "~") {
		v.errorf("%q: ~ is not expanded; write the full path", s)
		return "", false
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(d.dir, s)
	}
	return filepath.Clean(s), true
}

func oneOf(v value, s string, allowed ...string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	v.errorf("%q is not one of %s", s, strings.Join(allowed, ", "))
	return false
}

func decodeConfig(v value, c *Config) {
	d := v.d
	var providersNode *value
	present := v.decode([]field{
		{"socket", func(v value) {
			if p, ok := d.path(v); ok {
				if len(p) > maxSocketPath {
					v.errorf("socket path %q is %d bytes; a Unix socket path holds at most %d", p, len(p), maxSocketPath)
					return
				}
				c.Socket = p
			}
		}},
		{"socket_mode", func(v value) {
			s, ok := v.text()
			if !ok {
				return
			}
			m, err := strconv.ParseUint(strings.TrimSpace(s), 8, 32)
			if err != nil || m > 0o777 {
				v.errorf("%q is not an octal permission such as \"0660\"", s)
				return
			}
			if m&0o600 != 0o600 {
				v.errorf("%q must let the owner read and write the socket (0600 at least)", s)
				return
			}
			c.SocketMode = fs.FileMode(m)
		}},
		{"socket_group", func(v value) {
			if s, ok := v.text(); ok {
				c.SocketGroup = strings.TrimSpace(s)
			}
		}},
		{"allowed_users", func(v value) {
			if l, ok := v.list(); ok {
				c.AllowedUsers = l
			}
		}},
		{"allowed_groups", func(v value) {
			if l, ok := v.list(); ok {
				c.AllowedGroups = l
			}
		}},
		{"admin_groups", func(v value) {
			if l, ok := v.list(); ok {
				c.AdminGroups = l
			}
		}},
		{"state_dir", func(v value) {
			if p, ok := d.path(v); ok {
				c.StateDir = p
			}
		}},
		{"cluster_id", func(v value) {
			if s, ok := v.str(); ok {
				if !clusterIDRe.MatchString(s) {
					v.errorf("%q must be 1-128 of letters, digits and + - = . _ : / @ (it becomes the value of the ohfp:managed-by tag)", s)
					return
				}
				c.ClusterID = s
			}
		}},
		{"log_level", func(v value) {
			if s, ok := v.str(); ok {
				s = strings.ToLower(s)
				if s == "warning" {
					s = "warn"
				}
				if oneOf(v, s, "debug", "info", "warn", "error") {
					c.LogLevel = s
				}
			}
		}},
		{"log_format", func(v value) {
			if s, ok := v.str(); ok && oneOf(v, s, "auto", "text", "json") {
				c.LogFormat = s
			}
		}},
		{"reconcile", func(v value) {
			v.decode([]field{
				{"active_interval", func(v value) { positiveDuration(v, &c.Reconcile.ActiveInterval, 100*time.Millisecond) }},
				{"idle_interval", func(v value) { positiveDuration(v, &c.Reconcile.IdleInterval, 100*time.Millisecond) }},
				{"claim_timeout", func(v value) { positiveDuration(v, &c.Reconcile.ClaimTimeout, time.Second) }},
			}, nil)
		}},
		{"metrics_listen", func(v value) {
			s, ok := v.str()
			if !ok {
				return
			}
			if err := checkLoopback(s); err != nil {
				v.errorf("%s", err)
				return
			}
			c.MetricsListen = s
		}},
		{"pprof", func(v value) {
			if b, ok := v.boolean(); ok {
				c.Pprof = b
			}
		}},
		{"simulate", func(v value) {
			v.decode([]field{
				{"launch_delay", func(v value) { nonNegDuration(v, &c.Simulate.LaunchDelay) }},
				{"terminate_delay", func(v value) { nonNegDuration(v, &c.Simulate.TerminateDelay) }},
			}, nil)
		}},
		{"ha", func(v value) { decodeHA(v, c) }},
		{"providers", func(v value) { providersNode = &v }},
	}, nil)
	if present == nil {
		return
	}
	if c.Reconcile.ActiveInterval > c.Reconcile.IdleInterval {
		d.errorf(v.node, "reconcile", "active_interval (%s) must not be longer than idle_interval (%s)", c.Reconcile.ActiveInterval, c.Reconcile.IdleInterval)
	}
	if providersNode == nil {
		d.errorf(v.node, "providers", "missing: at least one provider is needed, e.g.\nproviders:\n  - name: aws\n    region: us-east-1\n    templates_file: awsprov_templates.json")
		return
	}
	decodeProviders(*providersNode, c)
	if c.HA != nil {
		if c.HA.Region == "" && len(c.Providers) > 0 {
			c.HA.Region = c.Providers[0].Region
		}
		if c.HA.Profile == "" && c.HA.CredentialsFile == "" && len(c.Providers) > 0 {
			if p0 := c.Providers[0]; p0.CredentialScript != "" {
				// The provider's credentials are its script's.
				c.HA.CredentialScript, c.HA.CredentialRenewMargin = p0.CredentialScript, p0.CredentialRenewMargin
			} else {
				c.HA.Profile, c.HA.CredentialsFile = p0.Profile, p0.CredentialsFile
			}
		}
	}
}

// tableNameRe is DynamoDB's rule for table names: 3-255 of letters,
// digits, underscore, hyphen and dot.
var tableNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// hostNameRe: what a lease may show as a holder.
var hostNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,252}$`)

func decodeHA(v value, c *Config) {
	h := &HA{LeaseDuration: DefaultLeaseDuration}
	ok := true
	present := v.decode([]field{
		{"table", func(v value) {
			if s, good := v.str(); good {
				if !tableNameRe.MatchString(s) {
					v.errorf("%q is not a DynamoDB table name (3-255 of letters, digits, _ - .)", s)
					ok = false
					return
				}
				h.Table = s
			}
		}},
		{"region", func(v value) {
			if s, good := v.str(); good {
				h.Region = strings.TrimSpace(s)
			}
		}},
		{"endpoint_url", func(v value) {
			if s, good := v.str(); good {
				if u, good := checkURL(v, s); good {
					h.EndpointURL = u.(string)
				}
			}
		}},
		{"profile", func(v value) {
			if s, good := v.str(); good {
				h.Profile = strings.TrimSpace(s)
			}
		}},
		{"credentials_file", func(v value) {
			if p, good := v.d.path(v); good {
				h.CredentialsFile = p
			}
		}},
		{"lease_duration", func(v value) {
			d, good := v.duration()
			if !good {
				return
			}
			if d < 2*time.Second || d > 5*time.Minute {
				v.errorf("%s is out of range (2s-5m): it is how long a failover waits for a dead host", d)
				return
			}
			h.LeaseDuration = d
		}},
		{"create_table", func(v value) {
			if b, good := v.boolean(); good {
				h.CreateTable = b
			}
		}},
		{"host", func(v value) {
			if s, good := v.str(); good {
				if !hostNameRe.MatchString(s) {
					v.errorf("%q is not a host name", s)
					return
				}
				h.Host = s
			}
		}},
	}, nil)
	if present == nil {
		return
	}
	if h.Table == "" && ok {
		v.errorf("ha: table is missing: name the DynamoDB table the master candidates share, e.g.\nha:\n  table: ohfp-state")
		return
	}
	c.HA = h
}

func positiveDuration(v value, dst *time.Duration, min time.Duration) {
	dur, ok := v.duration()
	if !ok {
		return
	}
	if dur < min {
		v.errorf("%s is too short (at least %s)", dur, min)
		return
	}
	*dst = dur
}

func nonNegDuration(v value, dst *time.Duration) {
	dur, ok := v.duration()
	if !ok {
		return
	}
	if dur < 0 {
		v.errorf("%s is negative", dur)
		return
	}
	*dst = dur
}

func checkLoopback(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. 127.0.0.1:9464)", s)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port must be 1-65535", s)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q: metrics are only served on a loopback address (127.0.0.1, ::1 or localhost)", s)
	}
	return nil
}
