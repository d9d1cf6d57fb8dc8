package awsprov

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// IBM's AWS_CREDENTIAL_SCRIPT: a program ohfpd runs (as its own user, with
// no argument and no shell) whose output is temporary credentials, in
// either of the two forms IBM's plugins read:
//
//   - JSON, as the LSF Python plugin (hostProviders/awsv2,
//     config_manager.py) and the SDKs' credential_process read it:
//     {"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}
//     (Expiration ISO 8601, optional; "Version" allowed; the whole answer
//     of `aws sts assume-role`, with its "Credentials" object, too);
//   - a shared credentials file with a [default] profile
//     (aws_access_key_id, aws_secret_access_key, aws_session_token), as
//     the LSF Java plugin (hostProviders/aws, AWSClient.java) writes the
//     script's output to a file and reads it with ProfileCredentialsProvider.
//
// AWS_CREDENTIAL_RENEW_MARGIN (seconds, IBM's default 1770) says when the
// script runs again: that long before the Expiration the script printed,
// but not before half the credentials' life has passed (a margin longer
// than a short session would otherwise run the script on every call);
// with no Expiration, that long after the script last ran (the Java
// plugin's meaning: it re-runs the script when its output is older than
// the margin).

// DefaultCredentialRenewMargin is IBM's AWS_CREDENTIAL_RENEW_MARGIN default
// (the LSF Java plugin's 1770 seconds: 29 minutes 30 seconds).
const DefaultCredentialRenewMargin = 1770 * time.Second

// Bounds of one run of the credential script.
const (
	credScriptTimeout   = 30 * time.Second // IBM's Python plugin's timeout
	credScriptMaxOutput = 64 << 10
	// credScriptRetry is how soon a failed run is tried again while the
	// last good credentials are still in use.
	credScriptRetry = 30 * time.Second
	// credScriptMinLife is the shortest time credentials without an
	// Expiration are used before the script runs again.
	credScriptMinLife = 10 * time.Second
)

// ScriptCredentials is an aws.CredentialsProvider running a credential
// script; wrap it in aws.NewCredentialsCache (NewScriptCredentialsCache).
// It implements the cache's strategies: the renewal time is its own (see
// above), and when a run fails the last good credentials are handed back
// until they expire, the script being tried again every 30 seconds. Its
// Status says whether the last run failed and why.
type ScriptCredentials struct {
	path    string
	margin  time.Duration
	timeout time.Duration
	now     func() time.Time

	cacheOnce sync.Once
	cache     *aws.CredentialsCache // Cache

	mu      sync.Mutex
	next    time.Time       // when the cache should ask again
	good    aws.Credentials // the last good credentials (Expires: their real expiry, if any)
	lastErr string          // the last run's failure; "" after a success
	errAt   time.Time
}

// NewScriptCredentials returns a provider running path; margin <= 0 means
// DefaultCredentialRenewMargin.
func NewScriptCredentials(path string, margin time.Duration) *ScriptCredentials {
	if margin <= 0 {
		margin = DefaultCredentialRenewMargin
	}
	return &ScriptCredentials{path: path, margin: margin, timeout: credScriptTimeout, now: time.Now}
}

// NewScriptCredentialsCache returns s wrapped in the SDK's credentials
// cache (s.Cache).
func NewScriptCredentialsCache(s *ScriptCredentials) *aws.CredentialsCache { return s.Cache() }

// Cache returns s wrapped in the SDK's credentials cache, the same one
// each time (a reload's new provider keeps the credentials in use, and
// the last good ones while the script fails). The cache's expiry window
// is the renew margin; s adjusts it (AdjustExpiresBy) so that the script
// runs when s says.
func (s *ScriptCredentials) Cache() *aws.CredentialsCache {
	s.cacheOnce.Do(func() {
		s.cache = aws.NewCredentialsCache(s, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = s.margin })
	})
	return s.cache
}

// Same reports whether s runs path with margin (0: the default).
func (s *ScriptCredentials) Same(path string, margin time.Duration) bool {
	if margin <= 0 {
		margin = DefaultCredentialRenewMargin
	}
	return s != nil && s.path == path && s.margin == margin
}

// ScriptStatus is how the credential script is doing.
type ScriptStatus struct {
	Path      string
	LastError string    // "" when the last run succeeded (or none ran yet)
	ErrorAt   time.Time // when it failed
	// GoodUntil is when the last good credentials expire (zero: unknown,
	// or none yet); they are used until then while the script fails.
	GoodUntil time.Time
	HaveGood  bool
}

// Status reports the last run.
func (s *ScriptCredentials) Status() ScriptStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := ScriptStatus{Path: s.path, LastError: s.lastErr, ErrorAt: s.errAt, HaveGood: s.good.HasKeys()}
	if s.good.CanExpire {
		st.GoodUntil = s.good.Expires
	}
	return st
}

// Retrieve implements aws.CredentialsProvider: it runs the script.
func (s *ScriptCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	start := s.now()
	c, err := s.run(ctx)
	if err == nil && c.CanExpire && !c.Expires.After(start) {
		err = fmt.Errorf("credential script %s printed credentials that expired at %s", s.path, c.Expires.UTC().Format(time.RFC3339))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.lastErr, s.errAt = err.Error(), start
		return aws.Credentials{}, err
	}
	s.good, s.lastErr, s.errAt = c, "", time.Time{}
	if c.CanExpire {
		life := c.Expires.Sub(start)
		renew := max(life-s.margin, life/2)
		s.next = start.Add(renew)
	} else {
		s.next = start.Add(max(s.margin, credScriptMinLife))
	}
	out := c
	out.CanExpire, out.Expires = true, s.next
	if c.CanExpire {
		out.Expires = c.Expires // AdjustExpiresBy moves it to s.next
	}
	return out, nil
}

// AdjustExpiresBy implements aws.AdjustExpiresByCredentialsCacheStrategy:
// the cache asks again when s decided (Retrieve, HandleFailToRefresh),
// never later than the credentials' own expiry.
func (s *ScriptCredentials) AdjustExpiresBy(c aws.Credentials, _ time.Duration) (aws.Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.next.IsZero() && (!c.CanExpire || s.next.Before(c.Expires)) {
		c.Expires = s.next
	}
	c.CanExpire = true
	return c, nil
}

// HandleFailToRefresh implements aws.HandleFailRefreshCredentialsCacheStrategy:
// a failed run leaves the last good credentials in use until they expire
// (those without an Expiration until AWS refuses them), and the script is
// run again in 30 seconds; with none left, the error goes to the call.
func (s *ScriptCredentials) HandleFailToRefresh(_ context.Context, _ aws.Credentials, err error) (aws.Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if !s.good.HasKeys() || (s.good.CanExpire && !s.good.Expires.After(now)) {
		if s.good.HasKeys() {
			return aws.Credentials{}, fmt.Errorf("%w; the last good credentials expired at %s", err, s.good.Expires.UTC().Format(time.RFC3339))
		}
		return aws.Credentials{}, err
	}
	s.next = now.Add(credScriptRetry)
	if s.good.CanExpire && s.good.Expires.Before(s.next) {
		s.next = s.good.Expires
	}
	c := s.good
	c.CanExpire, c.Expires = true, s.next
	return c, nil
}

// run runs the script once and parses what it printed.
func (s *ScriptCredentials) run(ctx context.Context) (aws.Credentials, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.path) // no shell: the path is the program
	var out, errb limitedBuffer
	out.max, errb.max = credScriptMaxOutput, 4096
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 2 * time.Second // a child holding the pipes open cannot hang ohfpd
	err := cmd.Run()
	switch {
	case ctx.Err() != nil:
		return aws.Credentials{}, fmt.Errorf("credential script %s did not finish within %s", s.path, s.timeout)
	case err != nil:
		msg := lastLine(errb.String())
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if msg != "" {
				return aws.Credentials{}, fmt.Errorf("credential script %s failed (%s): %s", s.path, ee.ProcessState, msg)
			}
			return aws.Credentials{}, fmt.Errorf("credential script %s failed (%s)", s.path, ee.ProcessState)
		}
		return aws.Credentials{}, fmt.Errorf("credential script %s: %w", s.path, err)
	case out.over:
		return aws.Credentials{}, fmt.Errorf("credential script %s printed more than %d bytes", s.path, credScriptMaxOutput)
	}
	c, err := ParseScriptCredentials(out.Bytes())
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("credential script %s: %w", s.path, err)
	}
	c.Source = "ohfp credential script"
	return c, nil
}

// ParseScriptCredentials reads a credential script's output: JSON
// (AccessKeyId, SecretAccessKey, SessionToken, Expiration) or a shared
// credentials file's [default] profile. The error says what is missing
// without repeating any secret.
func ParseScriptCredentials(b []byte) (aws.Credentials, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return aws.Credentials{}, errors.New("printed nothing; it must print JSON {\"AccessKeyId\": ..., \"SecretAccessKey\": ..., \"SessionToken\": ..., \"Expiration\": ...} or a credentials file with a [default] profile")
	}
	if b[0] == '{' {
		return parseJSONCredentials(b)
	}
	return parseINICredentials(b)
}

type jsonCreds struct {
	AccessKeyID     string     `json:"AccessKeyId"`
	SecretAccessKey string     `json:"SecretAccessKey"`
	SessionToken    string     `json:"SessionToken"`
	Expiration      *string    `json:"Expiration"`
	Credentials     *jsonCreds `json:"Credentials"` // aws sts assume-role's answer
}

func parseJSONCredentials(b []byte) (aws.Credentials, error) {
	var j jsonCreds
	if err := json.Unmarshal(b, &j); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return aws.Credentials{}, fmt.Errorf("printed invalid JSON (at byte %d)", se.Offset)
		}
		return aws.Credentials{}, errors.New("printed JSON of the wrong shape: AccessKeyId, SecretAccessKey, SessionToken and Expiration must be strings")
	}
	if j.AccessKeyID == "" && j.Credentials != nil {
		j = *j.Credentials
	}
	var missing []string
	if j.AccessKeyID == "" {
		missing = append(missing, "AccessKeyId")
	}
	if j.SecretAccessKey == "" {
		missing = append(missing, "SecretAccessKey")
	}
	if len(missing) > 0 {
		return aws.Credentials{}, fmt.Errorf("printed JSON without %s", strings.Join(missing, " and "))
	}
	c := aws.Credentials{AccessKeyID: j.AccessKeyID, SecretAccessKey: j.SecretAccessKey, SessionToken: j.SessionToken}
	if j.Expiration != nil && strings.TrimSpace(*j.Expiration) != "" {
		t, err := parseExpiration(*j.Expiration)
		if err != nil {
			return aws.Credentials{}, err
		}
		c.CanExpire, c.Expires = true, t
	}
	return c, nil
}

// parseExpiration reads ISO 8601 as IBM's Python plugin does
// (datetime.fromisoformat, "Z" allowed); without a zone, UTC.
func parseExpiration(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("printed Expiration %q, which is not an ISO 8601 time such as 2026-11-30T18:00:00Z", s)
}

func parseINICredentials(b []byte) (aws.Credentials, error) {
	var c aws.Credentials
	section, sawDefault := "", false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.TrimSpace(line[1 : len(line)-1])
			sawDefault = sawDefault || section == "default"
			continue
		}
		if section != "default" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "aws_access_key_id":
			c.AccessKeyID = strings.TrimSpace(v)
		case "aws_secret_access_key":
			c.SecretAccessKey = strings.TrimSpace(v)
		case "aws_session_token":
			c.SessionToken = strings.TrimSpace(v)
		}
	}
	if !sawDefault {
		return aws.Credentials{}, errors.New("printed neither JSON nor a credentials file with a [default] profile")
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return aws.Credentials{}, errors.New("printed a [default] profile without aws_access_key_id or aws_secret_access_key")
	}
	return c, nil
}

// limitedBuffer keeps at most max bytes and notes whether more came. It
// does not embed bytes.Buffer: io.Copy would use the embedded ReadFrom
// and bypass the limit.
type limitedBuffer struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room < len(p) {
		b.over = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *limitedBuffer) Bytes() []byte  { return b.buf.Bytes() }
func (b *limitedBuffer) String() string { return b.buf.String() }

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// CredentialScript returns the provider's credential script runner (nil:
// none), for the provider that replaces it on a reload
// (Settings.ScriptCredentials).
func (p *Provider) CredentialScript() *ScriptCredentials { return p.script }

// PrimeCredentials runs the credential script, if the provider has one,
// through the credentials cache (so that the first AWS call finds them):
// the error of a script that fails. nil without a script.
func (p *Provider) PrimeCredentials(ctx context.Context) error {
	if p.script == nil || p.cfg.Credentials == nil {
		return nil
	}
	_, err := p.cfg.Credentials.Retrieve(ctx)
	return err
}
