package rpc

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const okAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 45\r\n\r\n" + `{"jsonrpc":"2.0","id":1,"result":{"ok":true}}`

func TestBackoff(t *testing.T) {
	want := []time.Duration{50, 100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := backoff(retryWaitMin, retryWaitMax, i, time.Hour); got != w*time.Millisecond {
			t.Errorf("attempt %d: %v, want %v", i, got, w*time.Millisecond)
		}
	}
	if got := backoff(retryWaitMin, retryWaitMax, 100, time.Hour); got != time.Second {
		t.Errorf("attempt 100: %v", got)
	}
	if got := backoff(retryWaitMin, retryWaitMax, 3, 30*time.Millisecond); got != 30*time.Millisecond {
		t.Errorf("backoff past the deadline: %v", got)
	}
	if got := backoff(retryWaitMin, retryWaitMax, 3, -time.Second); got != 0 {
		t.Errorf("backoff after the deadline: %v", got)
	}
}

// A daemon that comes up during the wait gets the call, once.
func TestClientWaitsForTheSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	var calls atomic.Int32
	go func() {
		time.Sleep(300 * time.Millisecond)
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { ln.Close() })
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				calls.Add(1)
				io.WriteString(c, okAnswer)
			}
			c.Close()
		}
	}()
	start := time.Now()
	var got struct{ OK bool }
	if err := NewClient(sock, ClientOptions{WaitTimeout: 5 * time.Second}).Call(context.Background(), "status", Params{}, &got); err != nil || !got.OK {
		t.Fatalf("Call: %v, %+v", err, got)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the daemon saw %d calls", n)
	}
	// 50+100+200 ms of backoff reach 300 ms; the next is 400 ms more.
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("answered after %v", d)
	}
}

// A missing or refusing socket is retried for the wait and no longer;
// a wait of 0 tries once.
func TestClientGivesUpAfterTheWait(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	refusing := filepath.Join(dir, "refusing")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: refusing, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // the socket stays, nobody accepts: ECONNREFUSED
	for _, sock := range []string{missing, refusing} {
		for _, tc := range []struct {
			wait     time.Duration
			min, max time.Duration
		}{
			{-1, 0, 200 * time.Millisecond},
			{400 * time.Millisecond, 350 * time.Millisecond, 2 * time.Second},
		} {
			start := time.Now()
			err := NewClient(sock, ClientOptions{WaitTimeout: tc.wait}).Call(context.Background(), "status", Params{}, nil)
			d := time.Since(start)
			if want := "ohfpd is not running at " + sock + ": systemctl status ohfpd"; err == nil || err.Error() != want {
				t.Errorf("%s, wait %v: %v, want %q", filepath.Base(sock), tc.wait, err, want)
			}
			if d < tc.min || d > tc.max {
				t.Errorf("%s, wait %v: gave up after %v", filepath.Base(sock), tc.wait, d)
			}
		}
	}
}

// A call the daemon took, even in part, is never sent again, however long
// the wait.
func TestClientNeverSendsACallTwice(t *testing.T) {
	for _, tc := range []struct {
		name string
		read func(c net.Conn)
		want string
	}{
		{"closed after the call", func(c net.Conn) { http.ReadRequest(bufio.NewReader(c)) }, "closed the connection without answering status"},
		{"closed at once", func(c net.Conn) {}, "closed the connection without answering status"},
		{"closed mid-answer", func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
		}, "stopped while answering status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "s")
			ln, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var conns atomic.Int32
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					conns.Add(1)
					tc.read(c)
					c.Close()
				}
			}()
			start := time.Now()
			err = NewClient(sock, ClientOptions{WaitTimeout: 5 * time.Second}).Call(context.Background(), "status", Params{}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if n := conns.Load(); n != 1 || time.Since(start) > time.Second {
				t.Errorf("%d connections in %v, want 1 at once", n, time.Since(start))
			}
		})
	}
}

// The call carries its deadline (ohfpd refuses it after that) and the
// client's own headers only: no keep-alive, no compression.
func TestClientSendsItsDeadline(t *testing.T) {
	seen := make(chan *http.Request, 1)
	sock := cannedDaemon(t, okAnswer, seen)
	dl := time.Now().Add(90 * time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), dl)
	defer cancel()
	if err := NewClient(sock, ClientOptions{}).Call(ctx, "status", Params{}, nil); err != nil {
		t.Fatal(err)
	}
	req := <-seen
	if got := req.Header.Get(DeadlineHeader); got != strconv.FormatInt(dl.UnixMilli(), 10) {
		t.Errorf("%s: %q, want %d", DeadlineHeader, got, dl.UnixMilli())
	}
	if !req.Close || req.Header.Get("Accept-Encoding") != "" || req.ProtoMajor != 1 || req.ProtoMinor != 1 {
		t.Errorf("the call went out as %s, close %v, header %v", req.Proto, req.Close, req.Header)
	}
	if err := NewClient(sock, ClientOptions{}).Call(context.Background(), "status", Params{}, nil); err != nil {
		t.Fatal(err)
	}
	if req := <-seen; req.Header.Get(DeadlineHeader) != "" {
		t.Errorf("a call without a deadline sent %s: %q", DeadlineHeader, req.Header.Get(DeadlineHeader))
	}
}

// CallWithFile sends the envelope around the file's bytes, whatever the
// size (the file's part by sendfile once net/http's buffer is full), and
// says so when the file is shorter than announced.
func TestCallWithFile(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{10, 64 << 10, 800 << 10} {
		doc := []byte(`  {"machines":[` + strings.Repeat(`{"name":"host-0001"},`, n/21) + `{"name":"x"}]}` + "\n")
		file := filepath.Join(dir, "doc.json")
		if err := os.WriteFile(file, doc, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		seen := make(chan *http.Request, 1)
		sock := cannedDaemon(t, okAnswer, seen)
		c := NewClient(sock, ClientOptions{WaitTimeout: -1})
		trimmed := bytes.TrimSpace(doc)
		if err := c.CallWithFile(context.Background(), "getReturnRequests", Params{Env: map[string]string{"HF_PROVIDER_NAME": "aws"}}, f, 2, int64(len(trimmed)), nil); err != nil {
			t.Fatalf("%d bytes: %v", len(doc), err)
		}
		req := <-seen
		body, _ := io.ReadAll(req.Body)
		if req.ContentLength != int64(len(body)) {
			t.Errorf("%d bytes: Content-Length %d, body %d", len(doc), req.ContentLength, len(body))
		}
		r, p, e := DecodeRequest(body)
		if e != nil || r.Method != "getReturnRequests" || !bytes.Equal(p.Input, trimmed) || p.Env["HF_PROVIDER_NAME"] != "aws" {
			t.Errorf("%d bytes: the daemon would read %s %+v, %v", len(doc), r.Method, p.Env, e)
		}

		// The same call announcing 1,000 bytes more than the file holds.
		sock = cannedDaemon(t, okAnswer, nil)
		err = NewClient(sock, ClientOptions{WaitTimeout: -1}).CallWithFile(context.Background(), "getReturnRequests", Params{}, f, 2, int64(len(trimmed))+1000, nil)
		if want := "cannot send the input of getReturnRequests: input file: " + file + " ends "; err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%d bytes, short file: %v, want %q...", len(doc), err, want)
		}
	}
}

// BenchmarkCallWithFile is getReturnRequests with 10,000 hosts (720 KB)
// sent from its file to a daemon that reads it and answers at once.
func BenchmarkCallWithFile(b *testing.B) {
	doc := []byte(`{"machines":[` + strings.Repeat(`{"name":"ip-10-0-12-34.ec2.internal","machineId":"i-0123456789abcdef0"},`, 9999) + `{"name":"x"}]}`)
	file := filepath.Join(b.TempDir(), "doc.json")
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sock := filepath.Join(b.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() { // reads the call and answers, as cheaply as it can
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if req, err := http.ReadRequest(bufio.NewReaderSize(c, 64<<10)); err == nil {
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, okAnswer)
			}
			c.Close()
		}
	}()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		c := NewClient(sock, ClientOptions{WaitTimeout: -1}) // one call a client, as in ohfp
		if err := c.CallWithFile(context.Background(), "getReturnRequests", Params{}, f, 0, int64(len(doc)), nil); err != nil {
			b.Fatal(err)
		}
	}
}
