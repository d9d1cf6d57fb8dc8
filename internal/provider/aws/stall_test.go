package awsprov

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/clock"
	"github.com/ohfp/ohfp/internal/provider"
)

// An endpoint that accepts connections and never answers must not hold a
// caller past the configured deadlines (issue 12, case 2).

// silentListener accepts TCP connections, reads what comes and never
// answers. It counts the connections.
type silentListener struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newSilentListener(t *testing.T) *silentListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentListener{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			go func() { _, _ = c.Read(make([]byte, 1<<16)) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			c.Close()
		}
	})
	return s
}

func (s *silentListener) url() string { return "http://" + s.ln.Addr().String() }

func TestSilentEndpointEndsAtTheFirstByteDeadline(t *testing.T) {
	sl := newSilentListener(t)
	p, _ := newWireProvider(t, Settings{EndpointURL: sl.url(), RetryAttempts: 3,
		ResponseTimeout: 300 * time.Millisecond, CallTimeout: 5 * time.Second, Clock: clock.Real{}}, nil)
	start := time.Now()
	_, err := p.List(context.Background(), "c")
	took := time.Since(start)
	if err == nil {
		t.Fatal("a listing against a silent endpoint succeeded")
	}
	if took > 2*time.Second {
		t.Errorf("the call took %s; want it to end near the 300ms first-byte deadline", took)
	}
	if provider.KindOf(err) != provider.Transient || !strings.Contains(err.Error(), "AWS not answering") {
		t.Errorf("err = %v (kind %v); want Transient, saying AWS is not answering", err, provider.KindOf(err))
	}
	h := p.Health()
	if h.Calls["DescribeInstances"] != 1 || h.Timeouts["DescribeInstances"] != 1 || h.Errors["DescribeInstances"] != 1 {
		t.Errorf("calls %v timeouts %v errors %v: want one attempt, timed out (a timeout is not retried at once)", h.Calls, h.Timeouts, h.Errors)
	}
	if !h.NotAnswering || h.InFlight != 0 || !strings.HasPrefix(h.Summary(), "AWS not answering for ") {
		t.Errorf("health = %+v, summary %q; want not answering", h, h.Summary())
	}
}

func TestStalledBodyEndsAtTheWholeCallDeadline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	p, _ := newWireProvider(t, Settings{RetryAttempts: 2, ResponseTimeout: 10 * time.Second,
		CallTimeout: 400 * time.Millisecond, Clock: clock.Real{}}, func(_ string, _ int, rw http.ResponseWriter) {
		rw.Header().Set("Content-Type", "text/xml")
		rw.WriteHeader(200)
		_, _ = rw.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><DescribeInstancesResponse>`))
		rw.(http.Flusher).Flush()
		select { // the rest never comes
		case <-release:
		case <-time.After(20 * time.Second):
		}
	})
	start := time.Now()
	_, err := p.List(context.Background(), "c")
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the call took %s; want it to end near the 400ms whole-call deadline", took)
	}
	if err == nil || provider.KindOf(err) != provider.Transient || !strings.Contains(err.Error(), "AWS not answering") {
		t.Fatalf("err = %v (kind %v); want Transient, saying AWS is not answering", err, provider.KindOf(err))
	}
	if h := p.Health(); h.Timeouts["DescribeInstances"] != 1 || !h.NotAnswering {
		t.Errorf("health = %+v", h)
	}
}

func TestInFlightCallShowsNotAnsweringBeforeItsDeadline(t *testing.T) {
	sl := newSilentListener(t)
	p, _ := newWireProvider(t, Settings{EndpointURL: sl.url(), ResponseTimeout: 200 * time.Millisecond,
		CallTimeout: 200 * time.Millisecond, Clock: clock.Real{}}, nil)
	// A call under way (no deadline of its own would end it sooner).
	m := p.Meter()
	id, start := m.begin()
	time.Sleep(250 * time.Millisecond)
	h := p.Health()
	if h.InFlight != 1 || !h.OldestCall.Equal(start) || !h.NotAnswering || h.NotAnsweringFor < 200*time.Millisecond {
		t.Errorf("with a call waiting 250ms (first-byte timeout 200ms): %+v", h)
	}
	m.attempt(id, start, "DescribeInstances", nil)
	if h := p.Health(); h.InFlight != 0 || h.NotAnswering || h.Summary() != "ok" {
		t.Errorf("after the answer: %+v", h)
	}
}

func TestAnswerAfterTimeoutClearsNotAnswering(t *testing.T) {
	var mu sync.Mutex
	silent := true
	p, _ := newWireProvider(t, Settings{ResponseTimeout: 200 * time.Millisecond, CallTimeout: 300 * time.Millisecond,
		Clock: clock.Real{}}, func(_ string, _ int, rw http.ResponseWriter) {
		mu.Lock()
		s := silent
		mu.Unlock()
		if s {
			time.Sleep(time.Second)
			return
		}
		emptyDescribe(rw)
	})
	if _, err := p.List(context.Background(), "c"); err == nil {
		t.Fatal("want a timeout")
	}
	if h := p.Health(); !h.NotAnswering {
		t.Fatalf("after a timeout: %+v", h)
	}
	mu.Lock()
	silent = false
	mu.Unlock()
	if _, err := p.List(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	h := p.Health()
	if h.NotAnswering || h.Unreachable || h.Summary() != "ok" || h.Timeouts["DescribeInstances"] != 1 || h.Calls["DescribeInstances"] != 2 {
		t.Errorf("after AWS answered again: %+v", h)
	}
}

func TestCallersDeadlineIsNotATimeoutOfAWS(t *testing.T) {
	sl := newSilentListener(t)
	p, _ := newWireProvider(t, Settings{EndpointURL: sl.url(), Clock: clock.Real{}}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := p.List(ctx, "c")
	var te *timeoutError
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &te) {
		t.Errorf("err = %v: want the caller's deadline, not an AWS timeout", err)
	}
}

func TestMeterSurvivesANewProvider(t *testing.T) {
	sl := newSilentListener(t)
	old, _ := newWireProvider(t, Settings{EndpointURL: sl.url(), ResponseTimeout: 100 * time.Millisecond, Clock: clock.Real{}}, nil)
	if _, err := old.List(context.Background(), "c"); err == nil {
		t.Fatal("want a timeout")
	}
	// The reload: a new provider for the same name, to a working endpoint.
	p, _ := newWireProvider(t, Settings{Meter: old.Meter(), Clock: clock.Real{}}, func(_ string, _ int, rw http.ResponseWriter) { emptyDescribe(rw) })
	h := p.Health()
	if h.Calls["DescribeInstances"] != 1 || h.Errors["DescribeInstances"] != 1 || h.Timeouts["DescribeInstances"] != 1 || !h.NotAnswering {
		t.Fatalf("the new provider lost the old one's figures: %+v", h)
	}
	if _, err := p.List(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	if h := p.Health(); h.Calls["DescribeInstances"] != 2 || h.Errors["DescribeInstances"] != 1 || h.NotAnswering {
		t.Errorf("after an answer from the new endpoint: %+v", h)
	}
}

// Found by an operator's test of issue 12: after a reload to a working
// endpoint, a call stalled on the old one still held its request for the
// whole deadline. Close ends it at once, as a Transient error (tried again
// through the new provider).
func TestCloseEndsStalledCalls(t *testing.T) {
	sl := newSilentListener(t)
	p, _ := newWireProvider(t, Settings{EndpointURL: sl.url(), RetryAttempts: 0,
		ResponseTimeout: time.Minute, CallTimeout: time.Minute, Clock: clock.Real{}}, nil)
	errc := make(chan error, 1)
	go func() {
		_, err := p.List(context.Background(), "c")
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond) // the call is waiting on the silent endpoint
	start := time.Now()
	p.Close()
	select {
	case err := <-errc:
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("the stalled call ended %s after Close", took)
		}
		if provider.KindOf(err) != provider.Transient || !strings.Contains(err.Error(), "configuration reload replaced") {
			t.Errorf("err = %v (kind %v); want Transient, naming the reload", err, provider.KindOf(err))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the stalled call")
	}
}
