package awsprov

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ohfp/ohfp/internal/clock"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/template"
)

// These tests speak the real EC2 wire protocol through the real SDK to a
// canned loopback server, to check what the SDK retries, how errors come
// out, and what the middleware counts.

// noBackoff makes SDK retries immediate.
type noBackoff struct{}

func (noBackoff) BackoffDelay(int, error) (time.Duration, error) { return 0, nil }

// wire is a loopback EC2 whose answers a test scripts.
type wire struct {
	mu     sync.Mutex
	calls  map[string]int
	answer func(action string, n int, w http.ResponseWriter) // n: 1-based call count of action
}

func (s *wire) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	action := r.Form.Get("Action")
	s.mu.Lock()
	s.calls[action]++
	n := s.calls[action]
	s.mu.Unlock()
	s.answer(action, n, w)
}

func (s *wire) count(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[action]
}

func ec2Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>11111111-2222-3333-4444-555555555555</RequestID></Response>`, code, msg)
}

func emptyDescribe(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r-1</requestId><reservationSet/></DescribeInstancesResponse>`)
}

// isolateAWSEnv keeps the developer's AWS settings out of a test.
func isolateAWSEnv(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_EC2": "",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_MAX_ATTEMPTS": "", "AWS_RETRY_MODE": "",
	} {
		t.Setenv(k, v)
	}
}

func newWireProvider(t *testing.T, s Settings, answer func(string, int, http.ResponseWriter)) (*Provider, *wire) {
	t.Helper()
	isolateAWSEnv(t)
	w := &wire{calls: map[string]int{}, answer: answer}
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	if s.EndpointURL == "" {
		s.EndpointURL = srv.URL
	}
	s.Region = "us-east-1"
	s.Credentials = credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")
	s.backoff = noBackoff{}
	if s.Clock == nil {
		s.Clock = clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	}
	p, err := New(context.Background(), s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return p, w
}

func TestRetryPolicyOnTheWire(t *testing.T) {
	cases := []struct {
		name     string
		status   int
		code     string
		attempts int
		kind     provider.Kind
	}{
		{"validation error is not retried", 400, "InvalidParameterValue", 1, provider.Fatal},
		{"unknown AMI is not retried", 400, "InvalidAMIID.NotFound", 1, provider.Fatal},
		{"unauthorized is not retried", 403, "UnauthorizedOperation", 1, provider.Fatal},
		{"capacity is not retried though EC2 sends it as a 500", 500, "InsufficientInstanceCapacity", 1, provider.Capacity},
		{"spot price too low is not retried", 400, "SpotMaxPriceTooLow", 1, provider.Capacity},
		{"throttling is retried", 503, "RequestLimitExceeded", 3, provider.Throttled},
		{"internal error is retried", 500, "InternalError", 3, provider.Transient},
		{"unavailable is retried", 503, "Unavailable", 3, provider.Transient},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, w := newWireProvider(t, Settings{RetryAttempts: 2}, func(_ string, _ int, rw http.ResponseWriter) {
				ec2Error(rw, c.status, c.code, "message for "+c.code)
			})
			_, err := p.List(context.Background(), "cluster-1")
			var pe *provider.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *provider.Error", err)
			}
			if pe.Kind != c.kind || pe.Code != c.code || pe.Message != "message for "+c.code || pe.Op != "DescribeInstances" {
				t.Errorf("error = %+v, want kind %v code %s and AWS's message", pe, c.kind, c.code)
			}
			if got := w.count("DescribeInstances"); got != c.attempts {
				t.Errorf("%d attempts, want %d", got, c.attempts)
			}
			h := p.Health()
			if h.Calls["DescribeInstances"] != c.attempts || h.Errors["DescribeInstances"] != c.attempts {
				t.Errorf("health counted calls %v errors %v, want %d each", h.Calls, h.Errors, c.attempts)
			}
			if !strings.Contains(h.LastError, c.code) {
				t.Errorf("LastError = %q", h.LastError)
			}
		})
	}
}

func TestThrottlingHealthAndRecovery(t *testing.T) {
	clk := clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	throttle := true
	var mu sync.Mutex
	p, _ := newWireProvider(t, Settings{RetryAttempts: 1, Clock: clk}, func(_ string, _ int, rw http.ResponseWriter) {
		mu.Lock()
		defer mu.Unlock()
		if throttle {
			ec2Error(rw, 503, "RequestLimitExceeded", "Request limit exceeded.")
			return
		}
		emptyDescribe(rw)
	})
	if h := p.Health(); h.Summary() != "ok" {
		t.Fatalf("fresh provider: %q", h.Summary())
	}
	for n := 1; n <= 3; n++ {
		_, err := p.List(context.Background(), "c")
		if provider.KindOf(err) != provider.Throttled || !provider.Retryable(err) {
			t.Fatalf("err = %v, want Throttled", err)
		}
		h := p.Health()
		if !h.Throttled || h.Failures != n || h.Throttles["DescribeInstances"] != 2*n {
			t.Fatalf("after %d throttled calls: %+v", n, h)
		}
		// Exponential backoff with jitter in [d/2, d], d = 1 s << (n-1).
		d := time.Second << (n - 1)
		if h.RetryIn < d/2 || h.RetryIn > d {
			t.Errorf("RetryIn = %v after %d failures, want within [%v, %v]", h.RetryIn, n, d/2, d)
		}
		if !strings.HasPrefix(h.Summary(), "AWS throttling DescribeInstances") {
			t.Errorf("Summary = %q", h.Summary())
		}
	}
	clk.Advance(time.Minute)
	if h := p.Health(); h.RetryIn != 0 {
		t.Errorf("RetryIn = %v after the retry time passed", h.RetryIn)
	}
	mu.Lock()
	throttle = false
	mu.Unlock()
	if _, err := p.List(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	h := p.Health()
	if h.Throttled || h.Failures != 0 || h.Summary() != "ok" || h.Calls["DescribeInstances"] != 7 {
		t.Errorf("after recovery: %+v", h)
	}
	if h.LastError == "" || !h.LastErrorAt.Equal(clk.Now().Add(-time.Minute)) {
		t.Errorf("LastError %q at %v: the last failure must stay visible", h.LastError, h.LastErrorAt)
	}
}

func TestDroppedConnectionIsTransient(t *testing.T) {
	p, w := newWireProvider(t, Settings{RetryAttempts: 2}, func(_ string, _ int, rw http.ResponseWriter) {
		conn, _, err := rw.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	_, err := p.List(context.Background(), "c")
	if provider.KindOf(err) != provider.Transient {
		t.Fatalf("err = %v (kind %v), want Transient", err, provider.KindOf(err))
	}
	if got := w.count("DescribeInstances"); got != 3 {
		t.Errorf("%d attempts, want 3", got)
	}
	if h := p.Health(); !h.Unreachable || !strings.HasPrefix(h.Summary(), "AWS unreachable: ") {
		t.Errorf("health = %+v", h)
	}
}

func TestUnreachableEndpointIsTransient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: connection refused
	p, _ := newWireProvider(t, Settings{EndpointURL: "http://" + addr, ConnectTimeout: time.Second}, nil)
	err = p.Terminate(context.Background(), []string{"i-0123456789abcdef0"})
	if provider.KindOf(err) != provider.Transient {
		t.Fatalf("err = %v (kind %v), want Transient", err, provider.KindOf(err))
	}
}

func TestCanceledContextIsNotAnAWSFault(t *testing.T) {
	p, _ := newWireProvider(t, Settings{}, func(_ string, _ int, rw http.ResponseWriter) { emptyDescribe(rw) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.List(ctx, "c")
	if !errors.Is(err, context.Canceled) || provider.KindOf(err) != provider.Transient {
		t.Fatalf("err = %v: want context.Canceled, classified Transient", err)
	}
	if h := p.Health(); h.Unreachable || h.Failures != 0 {
		t.Errorf("a canceled call marked AWS unhealthy: %+v", h)
	}
}

func TestEndpointFromEnvironment(t *testing.T) {
	isolateAWSEnv(t)
	w := &wire{calls: map[string]int{}, answer: func(_ string, _ int, rw http.ResponseWriter) { emptyDescribe(rw) }}
	srv := httptest.NewServer(w)
	defer srv.Close()
	t.Setenv("AWS_ENDPOINT_URL_EC2", srv.URL)
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	p, err := New(context.Background(), Settings{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if p.Config().Region != "eu-west-1" {
		t.Errorf("region %q, want AWS_REGION's", p.Config().Region)
	}
	if _, err := p.List(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	if w.count("DescribeInstances") != 1 {
		t.Errorf("AWS_ENDPOINT_URL_EC2 was not used")
	}

	// A configured endpoint wins over the environment's.
	w2 := &wire{calls: map[string]int{}, answer: func(_ string, _ int, rw http.ResponseWriter) { emptyDescribe(rw) }}
	srv2 := httptest.NewServer(w2)
	defer srv2.Close()
	p, err = New(context.Background(), Settings{EndpointURL: srv2.URL}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.List(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	if w2.count("DescribeInstances") != 1 || w.count("DescribeInstances") != 1 {
		t.Errorf("Settings.EndpointURL did not override AWS_ENDPOINT_URL_EC2")
	}
}

func TestRateLimitWaitPastDeadlineIsTransient(t *testing.T) {
	p, w := newWireProvider(t, Settings{RateLimit: true}, func(_ string, _ int, rw http.ResponseWriter) { emptyDescribe(rw) })
	p.limits.nonMutating.AllowN(time.Now(), nonMutatingBurst) // drain
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, err := p.List(ctx, "c")
	if provider.KindOf(err) != provider.Transient || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v (kind %v), want a Transient deadline error", err, provider.KindOf(err))
	}
	if w.count("DescribeInstances") != 0 {
		t.Error("the call went out although its bucket was empty")
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	isolateAWSEnv(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, c := range []struct {
		s    Settings
		want string
	}{
		{Settings{}, "no AWS region"},
		{Settings{Region: "us-east-1", Proxy: "http://"}, "AWS proxy"},
		{Settings{Region: "us-east-1", RetryAttempts: 11}, "between 0 and 10"},
	} {
		if _, err := New(context.Background(), c.s, logger); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", c.s, err, c.want)
		}
	}
}

func TestProxyIsUsed(t *testing.T) {
	isolateAWSEnv(t)
	var proxied sync.WaitGroup
	proxied.Add(1)
	var once sync.Once
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		// A forward proxy sees the absolute URL of the target.
		if r.URL.Host == "ec2.test.invalid" {
			once.Do(proxied.Done)
		}
		emptyDescribe(rw)
	}))
	defer proxy.Close()
	p, err := New(context.Background(), Settings{
		Region: "us-east-1", EndpointURL: "http://ec2.test.invalid", Proxy: strings.TrimPrefix(proxy.URL, "http://"),
		ConnectTimeout: 2 * time.Second, Credentials: credentials.NewStaticCredentialsProvider("A", "B", ""),
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.List(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	proxied.Wait()
}

func TestRateLimitBuckets(t *testing.T) {
	l := newLimits()
	for op, want := range map[string]any{
		"RunInstances": l.run, "TerminateInstances": l.terminate, "DescribeInstances": l.nonMutating,
		"DescribeSpotInstanceRequests": l.nonMutating, "CreateFleet": l.mutating, "CreateTags": l.mutating,
		"RequestSpotFleet": l.mutating, "GetConsoleOutput": l.nonMutating,
	} {
		if l.bucket(op) != want {
			t.Errorf("%s drawn from the wrong bucket", op)
		}
	}
	if l.run.Burst() != 5 || l.run.Limit() != 2 || l.terminate.Burst() != 100 || l.terminate.Limit() != 5 ||
		l.nonMutating.Burst() != 100 || l.nonMutating.Limit() != 20 || l.mutating.Burst() != 50 || l.mutating.Limit() != 5 {
		t.Error("bucket sizes differ from EC2's documented ones")
	}

	// Every attempt draws from its bucket, retries included; SSM is not EC2.
	p, _ := newWireProvider(t, Settings{RateLimit: true, RetryAttempts: 1}, func(action string, n int, rw http.ResponseWriter) {
		if n == 1 {
			ec2Error(rw, 503, "RequestLimitExceeded", "slow down")
			return
		}
		emptyDescribe(rw)
	})
	if _, err := p.List(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	if got := p.limits.nonMutating.Tokens(); got > 98.5 {
		t.Errorf("non-mutating bucket holds %.1f tokens after 2 attempts, want about 98", got)
	}
	if got := p.limits.run.Tokens(); got < 5 {
		t.Errorf("RunInstances bucket drawn by a describe: %.1f tokens", got)
	}
}

func TestRunInstancesOnTheWire(t *testing.T) {
	p, _ := newWireProvider(t, Settings{RateLimit: true}, func(action string, _ int, rw http.ResponseWriter) {
		rw.Header().Set("Content-Type", "text/xml")
		fmt.Fprint(rw, `<?xml version="1.0" encoding="UTF-8"?>
<RunInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>x</requestId><reservationId>r-1</reservationId>
<instancesSet><item><instanceId>i-0123456789abcdef0</instanceId><instanceType>c5.large</instanceType><instanceState><code>0</code><name>pending</name></instanceState>
<tagSet><item><key>ohfp:request-id</key><value>req-1</value></item></tagSet></item></instancesSet></RunInstancesResponse>`)
	})
	res, err := p.Launch(context.Background(), provider.LaunchSpec{
		ClientToken: "tok", Template: template.Template{TemplateID: "t", ImageID: "ami-0123456789abcdef0", VMType: "c5.large"}, Units: 3,
		Tags: map[string]string{provider.TagRequestID: "req-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Instances) != 1 || res.Instances[0].ID != "i-0123456789abcdef0" || res.Instances[0].Tags[provider.TagRequestID] != "req-1" ||
		len(res.Errors) != 1 {
		t.Errorf("result = %+v", res)
	}
	if got := p.limits.runResource.Tokens(); got > 997.5 {
		t.Errorf("instance bucket holds %.1f tokens after asking for 3", got)
	}
	if got := p.limits.run.Tokens(); got > 4.5 {
		t.Errorf("RunInstances bucket holds %.1f tokens after one call", got)
	}
}
