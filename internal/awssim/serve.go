package awssim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Run advances the region's state every interval (wall time) until ctx is
// done, so that instances move on in real-time mode even when nobody calls.
// Requests advance the state anyway; Run is opt-in.
func (r *Region) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Tick()
		}
	}
}

// Start serves the region on 127.0.0.1 on a free port and returns its
// endpoint (http://127.0.0.1:PORT) and a function that stops the server.
// Meant for tests.
func (r *Region) Start() (endpoint string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic("awssim: cannot listen on loopback: " + err.Error())
	}
	srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}
}

// ListenAndServe runs a standalone simulated region on addr until ctx is
// done: the AWS APIs at / and the control endpoint at /_sim/. The state
// advances in the background every 100ms of wall time.
func ListenAndServe(ctx context.Context, addr string, opts Options) error {
	r := New(opts)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go r.Run(ctx, 100*time.Millisecond)
	go func() {
		<-ctx.Done()
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		srv.Shutdown(sctx)
	}()
	r.log.Info("simulated AWS region listening", "addr", ln.Addr().String())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ClientConfig returns an aws.Config for clients of a simulated region:
// static dummy credentials, the region, BaseEndpoint set to endpoint, and
// the standard retryer with 3 attempts. Tests that check errors set
// RetryMaxAttempts to 1 on their client options.
func ClientConfig(endpoint, region string) aws.Config {
	if region == "" {
		region = "us-east-1"
	}
	return aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIASIMULATED000000", "simulated-secret-key", ""),
		BaseEndpoint: aws.String(endpoint),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 3 })
		},
		RetryMaxAttempts: 3,
		HTTPClient:       &http.Client{Transport: bufferedBodyTransport{http.DefaultTransport}},
	}
}

// bufferedBodyTransport hands net/http a private in-memory copy of each
// request body. The SDK closes its own body as soon as the round trip
// returns; against a loopback server that answers within microseconds the
// transport may still be checking that body for extra bytes, get io.EOF
// from the closed wrapper as an error, and tear the connection down while
// the response is being read ("use of closed network connection").
type bufferedBodyTransport struct{ next http.RoundTripper }

func (t bufferedBodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		req.ContentLength = int64(len(b))
	}
	return t.next.RoundTrip(req)
}
