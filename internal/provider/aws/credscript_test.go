package awsprov

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeScript writes an executable shell script into a fresh folder.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "creds.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseScriptCredentials(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, key, token, expires, err string
	}{
		{name: "IBM awsv2 JSON", in: `{"AccessKeyId": "ASIA1", "SecretAccessKey": "s", "SessionToken": "tok", "Expiration": "2026-11-30T19:00:00+00:00"}`,
			key: "ASIA1", token: "tok", expires: "2026-11-30T19:00:00Z"},
		{name: "python isoformat with microseconds", in: `{"AccessKeyId": "ASIA1", "SecretAccessKey": "s", "SessionToken": "t", "Expiration": "2026-11-30T19:00:00.123456+00:00"}`,
			key: "ASIA1", token: "t", expires: "2026-11-30T19:00:00.123456Z"},
		{name: "credential_process with Version and Z", in: `{"Version": 1, "AccessKeyId": "ASIA2", "SecretAccessKey": "s", "SessionToken": "t", "Expiration": "2026-11-30T19:00:00Z"}`,
			key: "ASIA2", token: "t", expires: "2026-11-30T19:00:00Z"},
		{name: "sts assume-role answer", in: `{"Credentials": {"AccessKeyId": "ASIA3", "SecretAccessKey": "s", "SessionToken": "t", "Expiration": "2026-11-30T19:00:00Z"}, "AssumedRoleUser": {}}`,
			key: "ASIA3", token: "t", expires: "2026-11-30T19:00:00Z"},
		{name: "no expiration", in: `{"AccessKeyId": "ASIA4", "SecretAccessKey": "s", "SessionToken": "t"}`, key: "ASIA4", token: "t"},
		{name: "IBM java credentials file", in: "# made by the script\n[default]\naws_access_key_id = ASIA5\naws_secret_access_key=s\naws_session_token = t\n[other]\naws_access_key_id = NOT\n",
			key: "ASIA5", token: "t"},
		{name: "empty", in: " \n", err: "printed nothing"},
		{name: "garbage", in: "hello world", err: "neither JSON nor a credentials file"},
		{name: "broken JSON", in: `{"AccessKeyId": `, err: "invalid JSON"},
		{name: "JSON wrong types", in: `{"AccessKeyId": 5}`, err: "wrong shape"},
		{name: "JSON without secret", in: `{"AccessKeyId": "A"}`, err: "without SecretAccessKey"},
		{name: "bad expiration", in: `{"AccessKeyId": "A", "SecretAccessKey": "s", "Expiration": "tomorrow"}`, err: `Expiration "tomorrow"`},
		{name: "ini without secret", in: "[default]\naws_access_key_id = A\n", err: "without aws_access_key_id or aws_secret_access_key"},
	}
	for _, c := range cases {
		got, err := ParseScriptCredentials([]byte(c.in))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.err)
			}
			if err != nil && strings.Contains(err.Error(), "s\"") {
				t.Errorf("%s: the error repeats a secret: %v", c.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got.AccessKeyID != c.key || got.SecretAccessKey != "s" || got.SessionToken != c.token {
			t.Errorf("%s: got %+v", c.name, got)
		}
		if c.expires == "" {
			if got.CanExpire {
				t.Errorf("%s: expires %v, want none", c.name, got.Expires)
			}
		} else if want, _ := time.Parse(time.RFC3339Nano, c.expires); !got.CanExpire || !got.Expires.Equal(want) {
			t.Errorf("%s: expires %v (%v), want %v", c.name, got.Expires, got.CanExpire, want)
		}
	}
}

// counterScript prints JSON credentials whose key counts the runs
// (ASIARUN1, ASIARUN2...), expiring life seconds after the run, and
// fails (exit 3, a message on stderr) while the file "fail" exists
// beside it.
func counterScript(t *testing.T, life int) (path, dir string) {
	t.Helper()
	path = writeScript(t, fmt.Sprintf(`d=$(dirname "$0")
if [ -e "$d/fail" ]; then echo "token service down" >&2; exit 3; fi
n=$(cat "$d/count" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$d/count"
exp=$(date -u -d "@$(( $(date +%%s) + %d ))" +%%Y-%%m-%%dT%%H:%%M:%%SZ)
printf '{"AccessKeyId": "ASIARUN%%s", "SecretAccessKey": "secret", "SessionToken": "tok", "Expiration": "%%s"}\n' $n $exp
`, life))
	return path, filepath.Dir(path)
}

func runs(t *testing.T, dir string) int {
	b, _ := os.ReadFile(filepath.Join(dir, "count"))
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// The cache runs the script once, hands the same credentials until the
// renewal (margin before expiry), then runs it again while the first
// credentials are still valid.
func TestScriptCredentialsRenewBeforeExpiry(t *testing.T) {
	t.Parallel()
	path, dir := counterScript(t, 6)
	sc := NewScriptCredentials(path, 3*time.Second)
	cache := NewScriptCredentialsCache(sc)
	ctx := context.Background()
	c1, err := cache.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := time.Now()
	if c1.AccessKeyID != "ASIARUN1" {
		t.Fatalf("first key %s", c1.AccessKeyID)
	}
	realExpiry := sc.Status().GoodUntil
	if realExpiry.IsZero() {
		t.Fatal("no expiry recorded")
	}
	if c, _ := cache.Retrieve(ctx); c.AccessKeyID != "ASIARUN1" || runs(t, dir) != 1 {
		t.Fatalf("second call ran the script again: key %s, runs %d", c.AccessKeyID, runs(t, dir))
	}
	// The Expiration has a second's resolution: renewal is due between
	// 2 and 3 s after the run (6 s life - 3 s margin), before the 5-6 s expiry.
	deadline := realExpiry.Add(-500 * time.Millisecond)
	for runs(t, dir) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the script was not run again before the credentials expired (runs %d)", runs(t, dir))
		}
		time.Sleep(100 * time.Millisecond)
		if _, err := cache.Retrieve(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(first); el < time.Second {
		t.Errorf("renewed after %s: too soon for a 3s margin on 6s credentials", el)
	}
	if c, _ := cache.Retrieve(ctx); c.AccessKeyID != "ASIARUN2" {
		t.Errorf("after renewal key %s, want ASIARUN2", c.AccessKeyID)
	}
	if st := sc.Status(); st.LastError != "" {
		t.Errorf("status after success: %+v", st)
	}
}

// A script failing at renewal leaves the last good credentials in use
// (and says why in Status) until they expire; then the call fails.
func TestScriptCredentialsFailureKeepsLastGood(t *testing.T) {
	t.Parallel()
	path, dir := counterScript(t, 4)
	sc := NewScriptCredentials(path, 3*time.Second) // renew at half life: 2 s
	cache := NewScriptCredentialsCache(sc)
	ctx := context.Background()
	if c, err := cache.Retrieve(ctx); err != nil || c.AccessKeyID != "ASIARUN1" {
		t.Fatalf("first: %v %v", c.AccessKeyID, err)
	}
	expiry := sc.Status().GoodUntil
	if err := os.WriteFile(filepath.Join(dir, "fail"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Past the renewal time, before the expiry: the script fails, the
	// old credentials serve.
	for sc.Status().LastError == "" {
		if time.Now().After(expiry) {
			t.Fatal("the script was not run again before expiry")
		}
		time.Sleep(100 * time.Millisecond)
		c, err := cache.Retrieve(ctx)
		if err != nil || c.AccessKeyID != "ASIARUN1" {
			t.Fatalf("before expiry: %s %v, want the last good credentials", c.AccessKeyID, err)
		}
	}
	st := sc.Status()
	if !strings.Contains(st.LastError, "token service down") || !strings.Contains(st.LastError, "exit status 3") || !st.HaveGood {
		t.Errorf("status %+v: want the script's stderr and exit status", st)
	}
	time.Sleep(time.Until(expiry) + 100*time.Millisecond)
	if _, err := cache.Retrieve(ctx); err == nil || !strings.Contains(err.Error(), "expired at") {
		t.Fatalf("after expiry with the script failing: %v, want an error naming the expiry", err)
	}
	// Fixed: the next call runs it again (no 30 s wait once expired).
	if err := os.Remove(filepath.Join(dir, "fail")); err != nil {
		t.Fatal(err)
	}
	if c, err := cache.Retrieve(ctx); err != nil || c.AccessKeyID != "ASIARUN2" {
		t.Fatalf("after the fix: %s %v", c.AccessKeyID, err)
	}
	if st := sc.Status(); st.LastError != "" {
		t.Errorf("status after the fix: %+v", st)
	}
}

// No good credentials yet: the failure goes to the caller, with why.
func TestScriptCredentialsFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct{ name, body, want string }{
		{"exit 1", "echo 'no SSO session: run aws sso login' >&2; exit 1", "failed (exit status 1): no SSO session: run aws sso login"},
		{"garbage", "echo hello", "neither JSON nor a credentials file"},
		{"expired", `echo '{"AccessKeyId": "A", "SecretAccessKey": "s", "Expiration": "2001-01-01T00:00:00Z"}'`, "expired at 2001-01-01T00:00:00Z"},
		{"too much", "head -c 70000 /dev/zero | tr '\\0' x", "more than 65536 bytes"},
	}
	for _, c := range cases {
		sc := NewScriptCredentials(writeScript(t, c.body+"\n"), 0)
		_, err := NewScriptCredentialsCache(sc).Retrieve(ctx)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if st := sc.Status(); !strings.Contains(st.LastError, c.want) || st.HaveGood {
			t.Errorf("%s: status %+v", c.name, st)
		}
	}
	// A hanging script is killed at the timeout, its children too
	// (WaitDelay: a child holding stdout cannot hang ohfpd).
	sc := NewScriptCredentials(writeScript(t, "sleep 30 &\nsleep 30\n"), 0)
	sc.timeout = 300 * time.Millisecond
	start := time.Now()
	_, err := sc.Retrieve(ctx)
	if err == nil || !strings.Contains(err.Error(), "did not finish within 300ms") {
		t.Errorf("hanging script: %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("hanging script held the call %s", el)
	}
	// The path is run as a program, never through a shell.
	odd := filepath.Join(t.TempDir(), "creds; touch pwned")
	if err := os.WriteFile(odd, []byte("#!/bin/sh\necho '{\"AccessKeyId\": \"ODD\", \"SecretAccessKey\": \"s\"}'\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if c, err := NewScriptCredentials(odd, 0).Retrieve(ctx); err != nil || c.AccessKeyID != "ODD" {
		t.Errorf("script with ; in its name: %v %v", c.AccessKeyID, err)
	}
	if _, err := os.Stat("pwned"); err == nil {
		t.Error("a shell ran the path")
	}
}

// Without an Expiration (IBM's Java plugin's credentials file), the script
// runs again margin after the last run.
func TestScriptCredentialsNoExpiryRenewsAfterMargin(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC)
	sc := NewScriptCredentials(writeScript(t, "printf '[default]\\naws_access_key_id=A\\naws_secret_access_key=s\\n'\n"), 20*time.Minute)
	sc.now = func() time.Time { return now }
	c, err := sc.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, _ = sc.AdjustExpiresBy(c, -20*time.Minute)
	if !c.CanExpire || !c.Expires.Equal(now.Add(20*time.Minute)) {
		t.Errorf("renewal at %v, want %v", c.Expires, now.Add(20*time.Minute))
	}
	// Failing later: the credentials (of unknown expiry) stay, retried in 30 s.
	sc.path = filepath.Join(t.TempDir(), "gone")
	now = now.Add(20 * time.Minute)
	_, err = sc.Retrieve(context.Background())
	if err == nil {
		t.Fatal("a missing script succeeded")
	}
	c, err = sc.HandleFailToRefresh(context.Background(), c, err)
	if err != nil || c.AccessKeyID != "A" || !c.Expires.Equal(now.Add(30*time.Second)) {
		t.Errorf("fallback %+v %v", c, err)
	}
}

// A reload's new provider keeps the script's runner (and so the
// credentials in use, and the last good ones while the script fails)
// when the script and margin are the same; another script starts afresh.
func TestScriptCredentialsSurviveReload(t *testing.T) {
	t.Parallel()
	path, dir := counterScript(t, 3600)
	ctx := context.Background()
	s := Settings{Region: "us-east-1", EndpointURL: "http://127.0.0.1:1", CredentialScript: path}
	p1, err := New(ctx, s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p1.PrimeCredentials(ctx); err != nil {
		t.Fatal(err)
	}
	s.ScriptCredentials = p1.CredentialScript()
	p2, err := New(ctx, s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if p2.CredentialScript() != p1.CredentialScript() {
		t.Fatal("the reload's provider runs its own script runner")
	}
	if err := p2.PrimeCredentials(ctx); err != nil || runs(t, dir) != 1 {
		t.Fatalf("after the reload the script ran again: runs %d, %v", runs(t, dir), err)
	}
	s.CredentialRenewMargin = time.Minute // changed: a new runner
	p3, err := New(ctx, s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if p3.CredentialScript() == p1.CredentialScript() {
		t.Error("a changed margin kept the old runner")
	}
}
