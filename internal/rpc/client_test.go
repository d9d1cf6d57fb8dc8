package rpc

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cannedDaemon answers every connection with raw, after reading the call;
// it hands the parsed call to seen.
func cannedDaemon(t testing.TB, raw string, seen chan<- *http.Request) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err == nil {
				body, _ := io.ReadAll(req.Body)
				req.Body = io.NopCloser(strings.NewReader(string(body)))
				if seen != nil {
					seen <- req
				}
				io.WriteString(c, raw)
			}
			c.Close()
		}
	}()
	return sock
}

func TestClientSpeaksHTTP(t *testing.T) {
	const answer = `{"jsonrpc":"2.0","id":1,"result":{"ok":true}}`
	seen := make(chan *http.Request, 1)
	sock := cannedDaemon(t, "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: "+
		itoa(len(answer)+1)+"\r\n\r\n"+answer+"\n", seen)
	c := NewClient(sock, ClientOptions{WaitTimeout: -1})
	var got struct{ OK bool }
	if err := c.Call(context.Background(), "status", Params{Env: map[string]string{"HF_PROVIDER_NAME": "aws"}}, &got); err != nil || !got.OK {
		t.Fatalf("Call: %v, %+v", err, got)
	}
	req := <-seen
	body, _ := io.ReadAll(req.Body)
	if req.Method != "POST" || req.URL.Path != Path || req.Host != Host || req.Header.Get("Content-Type") != "application/json" ||
		req.ContentLength != int64(len(body)) {
		t.Fatalf("the call went out as %s %s host %q, %v, length %d of %d", req.Method, req.URL, req.Host, req.Header, req.ContentLength, len(body))
	}
	r, p, e := DecodeRequest(body)
	if e != nil || r.Method != "status" || p.Env["HF_PROVIDER_NAME"] != "aws" {
		t.Fatalf("the daemon would read %+v %+v %v", r, p, e)
	}
}

func TestClientReadsAnswers(t *testing.T) {
	const answer = `{"jsonrpc":"2.0","id":1,"result":[1,2,3]}`
	for _, tc := range []struct {
		name, raw, want, wantErr string
		max                      int64
	}{
		{name: "content length", raw: "HTTP/1.1 200 OK\r\nContent-Length: " + itoa(len(answer)) + "\r\n\r\n" + answer, want: "[1,2,3]"},
		{name: "until close", raw: "HTTP/1.0 200 OK\n\n" + answer, want: "[1,2,3]"},
		{name: "header case", raw: "HTTP/1.0 200 OK\r\ncontent-length:  " + itoa(len(answer)) + "\r\n\r\n" + answer + "trailing", want: "[1,2,3]"},
		{name: "too large", raw: "HTTP/1.0 200 OK\r\nContent-Length: " + itoa(len(answer)) + "\r\n\r\n" + answer, max: 10, wantErr: "larger than 10 bytes"},
		{name: "too large until close", raw: "HTTP/1.0 200 OK\r\n\r\n" + answer, max: 10, wantErr: "larger than 10 bytes"},
		{name: "chunked", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(int64(len(answer)), 16) + "\r\n" + answer + "\r\n0\r\n\r\n", want: "[1,2,3]"},
		{name: "too large chunked", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(int64(len(answer)), 16) + "\r\n" + answer + "\r\n0\r\n\r\n", max: 10, wantErr: "larger than 10 bytes"},
		{name: "not http", raw: "SSH-2.0-OpenSSH\r\n", wantErr: `closed the connection without answering x (it may have been restarted; the call may or may not have taken effect: ` + "`ohfp requests --all`" + ` lists every request ohfpd holds): net/http: HTTP/1.x transport connection broken: malformed HTTP response "SSH-2.0-OpenSSH"`},
		{name: "nothing", raw: "", wantErr: "closed the connection without answering x (it may have been restarted; the call may or may not have taken effect: `ohfp requests --all` lists every request ohfpd holds): EOF"},
		{name: "cut short", raw: "HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\n{", wantErr: "stopped while answering"},
		{name: "not json-rpc", raw: "HTTP/1.0 502 Bad Gateway\r\n\r\noops", wantErr: "unexpected answer from"},
		{name: "error", raw: "HTTP/1.0 200 OK\r\n\r\n" + `{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad input"}}`, wantErr: "bad input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := cannedDaemon(t, tc.raw, nil)
			c := NewClient(sock, ClientOptions{WaitTimeout: -1, MaxResponseBytes: tc.max})
			var got json.RawMessage
			err := c.Call(context.Background(), "x", Params{}, &got)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v (%s), want an error containing %q", err, got, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestClientHonoursContext(t *testing.T) {
	// A daemon that accepts and never answers.
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = NewClient(sock, ClientOptions{}).Call(ctx, "x", Params{}, nil)
	if err == nil || !strings.Contains(err.Error(), "did not answer x in time") || time.Since(start) > 5*time.Second {
		t.Fatalf("got %v after %v", err, time.Since(start))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestFramedResult(t *testing.T) {
	for _, tc := range []struct {
		data, result string // result "" means left to decodeResponse
	}{
		{`{"jsonrpc":"2.0","id":7,"result":{"requests":[]}}` + "\n", `{"requests":[]}`},
		{`{"jsonrpc":"2.0","id":7,"result":[1,2]}`, `[1,2]`},
		{`{"jsonrpc":"2.0","id":7,"result":{"a":"}"}}` + " \r\n", `{"a":"}"}`},
		{`{"jsonrpc":"2.0","id":70,"result":{}}`, ``},
		{`{"jsonrpc":"2.0","id":7,"error":{"code":1,"message":"m"}}`, ``},
		{`{"jsonrpc":"2.0","id":7,"result":null}`, ``},
		{`{"jsonrpc":"2.0","id":7,"result":"x"}`, ``},
		{`{"jsonrpc":"2.0","id":7,"result":{}`, ``},
		{`{"jsonrpc":"2.0","id":7,"result":{}}}`, `{}}`}, // ohfpd's framing is trusted: HF would refuse this
		{`{"id":7,"jsonrpc":"2.0","result":{}}`, ``},
		{` {"jsonrpc":"2.0","id":7,"result":{}}`, ``},
	} {
		r, ok := framedResult([]byte(tc.data), 7)
		if ok != (tc.result != "") || ok && (string(r.Result) != tc.result || string(r.ID) != "7" || r.JSONRPC != "2.0") {
			t.Errorf("framedResult(%s) = %+v, %v; want result %q", tc.data, r, ok, tc.result)
		}
		if !ok || !json.Valid([]byte(tc.data)) {
			continue
		}
		// Where both read a call, they agree.
		d, err := decodeResponse([]byte(tc.data))
		if err != nil || string(d.Result) != string(r.Result) || string(d.ID) != string(r.ID) {
			t.Errorf("decodeResponse(%s) = %+v, %v; framedResult %+v", tc.data, d, err, r)
		}
	}
}
