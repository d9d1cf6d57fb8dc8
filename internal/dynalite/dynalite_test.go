package dynalite

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestInstallConcurrent installs into an empty cache from several
// goroutines at once (each takes the flock through its own open file, as
// separate test binaries do): all get the same working cli.js, and no
// temporary folder is left behind.
func TestInstallConcurrent(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("OHFP_TEST_CACHE", cache)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 3
	paths := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths[i], errs[i] = Install(ctx)
		}()
	}
	wg.Wait()
	want := filepath.Join(cache, "dynalite-"+Version, "node_modules", "dynalite", "cli.js")
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Install #%d: %v", i, errs[i])
		}
		if paths[i] != want {
			t.Errorf("Install #%d = %q, want %q", i, paths[i], want)
		}
	}
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary install folder left behind: %s", e.Name())
		}
	}
	// Installed: the next call returns at once, without npm.
	t.Setenv("PATH", "")
	start := time.Now()
	if p, err := Install(ctx); err != nil || p != want {
		t.Fatalf("Install again = %q, %v; want %q without npm", p, err, want)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("second Install took %v", d)
	}
}

// TestInstallWithoutNode fails with a message naming what is missing.
func TestInstallWithoutNode(t *testing.T) {
	t.Setenv("OHFP_TEST_CACHE", t.TempDir())
	t.Setenv("PATH", t.TempDir())
	_, err := Install(context.Background())
	if err == nil || !strings.Contains(err.Error(), "node") || !strings.Contains(err.Error(), "npm") {
		t.Fatalf("Install without node = %v, want an error naming node and npm", err)
	}
}

func TestStartStop(t *testing.T) {
	s := startServer(t)
	defer s.Stop()
	if !strings.HasPrefix(s.Endpoint, "http://127.0.0.1:") {
		t.Fatalf("Endpoint = %q", s.Endpoint)
	}
	// It speaks the DynamoDB JSON protocol (no signature check).
	if err := listTables(s.Endpoint); err != nil {
		t.Fatal(err)
	}
	pid := s.cmd.Process.Pid
	if why := s.Died(); why != "" {
		t.Fatalf("running, yet Died says %q", why)
	}
	s.Stop()
	s.Stop() // twice is fine
	if why := s.Died(); why != "" {
		t.Fatalf("stopped by Stop, yet Died says %q", why)
	}
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.Endpoint, "http://"), time.Second); err == nil {
		c.Close()
		t.Fatal("server still accepts connections after Stop")
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("node (pid %d) still running after Stop", pid)
	}
}

// A server killed from elsewhere is reported by Died, with how it ended.
func TestDied(t *testing.T) {
	s := startServer(t)
	defer s.Stop()
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.exited
	if why := s.Died(); !strings.Contains(why, "killed") {
		t.Fatalf("Died = %q, want how node ended (signal: killed)", why)
	}
}

// A client that hangs up in the middle of a request (a daemon killed
// mid-call) does not take the server down: dynalite alone would throw
// ECONNRESET "aborted" and exit.
func TestClientHangsUpMidRequest(t *testing.T) {
	s := startServer(t)
	defer s.Stop()
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", strings.TrimPrefix(s.Endpoint, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Length: 1000\r\n\r\n{\"Lim")
		time.Sleep(100 * time.Millisecond)
		c.Close()
	}
	time.Sleep(300 * time.Millisecond)
	if why := s.Died(); why != "" {
		t.Fatalf("a client hanging up mid-request ended dynalite: %s", why)
	}
	if err := listTables(s.Endpoint); err != nil {
		t.Fatalf("after clients hung up: %v", err)
	}
}

func TestStartT(t *testing.T) {
	a, b := StartT(t), StartT(t)
	if a == b {
		t.Fatalf("two servers share endpoint %s", a)
	}
}

// startServer installs dynalite (cached) and starts one server.
func startServer(t *testing.T) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli, err := Install(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// listTables asks the server at endpoint for its tables in the DynamoDB
// JSON protocol (dynalite checks no signature).
func listTables(endpoint string) error {
	req, _ := http.NewRequest("POST", endpoint, strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00")
	req.Header.Set("X-Amz-Date", "20240101T000000Z")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "TableNames") {
		return fmt.Errorf("ListTables: %d %s", resp.StatusCode, body)
	}
	return nil
}
