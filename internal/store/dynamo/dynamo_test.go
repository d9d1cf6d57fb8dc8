package dynamo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ohfp/ohfp/internal/dynalite"
	"github.com/ohfp/ohfp/internal/state"
	"github.com/ohfp/ohfp/internal/store"
)

// Table satisfies the interface package state's core writes through.
var _ state.KV = (*Table)(nil)

const region = "us-east-1"

var creds = credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")

func options(endpoint, table, cluster string) Options {
	return Options{Table: table, Region: region, Endpoint: endpoint, ClusterID: cluster, Credentials: creds, CallTimeout: 3 * time.Second, Create: true}
}

func open(t *testing.T, o Options) *Table {
	t.Helper()
	tb, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open(%s, %s): %v", o.Table, o.ClusterID, err)
	}
	t.Cleanup(func() { tb.Close() })
	return tb
}

// newTable starts a dynalite and opens a new table on it.
func newTable(t *testing.T) (*Table, string) {
	t.Helper()
	ep := dynalite.StartT(t)
	return open(t, options(ep, "ohfp-state", "c1")), ep
}

func write(t *testing.T, tb *Table, ops ...store.Op) {
	t.Helper()
	if err := tb.Write(ops...); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func put(k, v string) store.Op { return store.Op{Key: k, Value: []byte(v)} }
func del(k string) store.Op    { return store.Op{Key: k, Delete: true} }

func get(t *testing.T, tb *Table, k string) (string, bool) {
	t.Helper()
	v, ok, err := tb.Get(k)
	if err != nil {
		t.Fatalf("Get(%s): %v", k, err)
	}
	return string(v), ok
}

func scan(t *testing.T, tb *Table, prefix string) []string {
	t.Helper()
	var got []string
	err := tb.Scan(prefix, func(k string, v []byte) error {
		got = append(got, k+"="+string(v))
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%q): %v", prefix, err)
	}
	return got
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	tb, _ := newTable(t)
	write(t, tb, put("r/2", "two"), put("r/1", "one"), put("m/1", "machine"), put("t/a", "tmpl"), put("r/3", "x"), put("r/3", "three"), put("e", ""))
	if v, ok := get(t, tb, "r/3"); !ok || v != "three" {
		t.Errorf("Get(r/3) = %q, %v; want the last op of the Write", v, ok)
	}
	if v, ok, err := tb.Get("e"); err != nil || !ok || v == nil || len(v) != 0 {
		t.Errorf("Get(e) = %q (nil %v), %v, %v; want an empty, non-nil value", v, v == nil, ok, err)
	}
	if _, ok := get(t, tb, "r/9"); ok {
		t.Error("Get(r/9) found a key never written")
	}
	if got, want := strings.Join(scan(t, tb, "r/"), " "), "r/1=one r/2=two r/3=three"; got != want {
		t.Errorf("Scan(r/) = %s, want %s", got, want)
	}
	if got, want := strings.Join(scan(t, tb, ""), " "), "e= m/1=machine r/1=one r/2=two r/3=three t/a=tmpl"; got != want {
		t.Errorf("Scan() = %s, want %s", got, want)
	}
	write(t, tb, del("r/2"), del("never/written"), put("r/1", "uno"))
	if _, ok := get(t, tb, "r/2"); ok {
		t.Error("r/2 still there after its delete")
	}
	if got, want := strings.Join(scan(t, tb, "r/"), " "), "r/1=uno r/3=three"; got != want {
		t.Errorf("Scan(r/) after delete = %s, want %s", got, want)
	}
	// An error from fn stops the scan and comes back as it is.
	stop := errors.New("stop")
	n := 0
	if err := tb.Scan("", func(string, []byte) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("Scan with fn failing = %v after %d calls; want stop after 1", err, n)
	}
	h := tb.Health()
	if !h.OK || h.Writes != 9 || h.Reads == 0 || h.Fenced != 0 || h.Unavailable != 0 || h.LastError != "" {
		t.Errorf("Health = %+v; want OK, 9 writes (duplicates merged), reads, no failures", h)
	}
}

// TestScanPaginates writes more than 1 MB under one prefix, so that Query
// answers in several pages, and checks that Scan reads them all, in order.
// dynalite estimates the 1 MB page with its own item-size arithmetic, and
// AWS may end a page early or return a LastEvaluatedKey with nothing after
// it (Query.Pagination.html): so the test asks for at least two pages,
// not an exact count.
func TestScanPaginates(t *testing.T) {
	t.Parallel()
	tb, _ := newTable(t)
	const n, size = 320, 4000 // 1.28 MB
	var ops []store.Op
	for i := range n {
		v := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		ops = append(ops, store.Op{Key: fmt.Sprintf("p/%04d", i), Value: v})
	}
	write(t, tb, ops...)
	write(t, tb, put("o/1", "before"), put("q/1", "after"))
	before := tb.Health().Reads
	i := 0
	err := tb.Scan("p/", func(k string, v []byte) error {
		if want := fmt.Sprintf("p/%04d", i); k != want {
			return fmt.Errorf("key #%d = %s, want %s", i, k, want)
		}
		if len(v) != size || v[0] != byte('a'+i%26) {
			return fmt.Errorf("%s: value of %d bytes starting %q", k, len(v), v[:1])
		}
		i++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if i != n {
		t.Fatalf("Scan(p/) yielded %d keys, want %d", i, n)
	}
	if pages := tb.Health().Reads - before; pages < 2 {
		t.Errorf("Scan of 1.28 MB took %d Query call(s); want at least 2 (1 MB pages)", pages)
	}
}

func TestFence(t *testing.T) {
	t.Parallel()
	tb, _ := newTable(t)
	tb.SetFence(5)
	write(t, tb, put("k", "v5"))
	tb.SetFence(4)
	err := tb.Write(put("k", "v4"))
	if !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), "a newer lease holder wrote k: this daemon no longer holds the lease") {
		t.Fatalf("Write with an older token = %v; want ErrFenced naming k", err)
	}
	if errors.Is(err, ErrUnavailable) {
		t.Errorf("a fenced write is also ErrUnavailable: %v", err)
	}
	if v, _ := get(t, tb, "k"); v != "v5" {
		t.Errorf("after the fenced write k = %q, want v5 unchanged", v)
	}
	if err := tb.Write(del("k")); !errors.Is(err, ErrFenced) {
		t.Errorf("Delete with an older token = %v; want ErrFenced", err)
	}
	if _, ok := get(t, tb, "k"); !ok {
		t.Error("a fenced delete deleted k")
	}
	// A new key is writable by the older holder: fencing is per item.
	// Ops of a failed Write that were not fenced are applied.
	err = tb.Write(put("k", "v4"), put("fresh", "4"))
	if !errors.Is(err, ErrFenced) {
		t.Errorf("Write(k, fresh) with an older token = %v; want ErrFenced", err)
	}
	if v, _ := get(t, tb, "fresh"); v != "4" {
		t.Errorf("fresh = %q, want 4 (ops are not atomic)", v)
	}
	tb.SetFence(5) // equal: a retry of the holder's own write
	write(t, tb, put("k", "v5b"))
	tb.SetFence(6)
	write(t, tb, put("k", "v6"))
	tb.SetFence(5)
	if err := tb.Write(put("k", "v5c")); !errors.Is(err, ErrFenced) {
		t.Errorf("token 5 after 6 wrote = %v; want ErrFenced", err)
	}
	tb.SetFence(7)
	write(t, tb, del("k"))
	if _, ok := get(t, tb, "k"); ok {
		t.Error("k still there after a delete with a newer token")
	}
	if h := tb.Health(); h.Fenced != 4 || !h.OK {
		t.Errorf("Health = %+v; want 4 fenced and OK (DynamoDB answered)", h)
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	tb, _ := newTable(t)
	big := make([]byte, MaxItemSize)
	err := tb.Write(put("small", "s"), store.Op{Key: "big", Value: big})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "400 KB") {
		t.Fatalf("Write of a 400 KB value = %v; want ErrTooLarge", err)
	}
	if _, ok := get(t, tb, "small"); ok {
		t.Error("a Write refused for size sent its other ops")
	}
	if h := tb.Health(); h.Writes != 0 {
		t.Errorf("Health.Writes = %d after a refused Write; want 0 (nothing sent)", h.Writes)
	}
	// Just under the limit, DynamoDB takes it.
	ok := make([]byte, MaxItemSize-100)
	for i := range ok {
		ok[i] = byte(i)
	}
	write(t, tb, store.Op{Key: "r/near", Value: ok})
	if v, _, err := tb.Get("r/near"); err != nil || !bytes.Equal(v, ok) {
		t.Fatalf("Get of a %d-byte value: %d bytes, %v", len(ok), len(v), err)
	}
	if err := tb.Write(put(strings.Repeat("k", 1025), "v")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Write with a 1025-byte key = %v; want ErrTooLarge", err)
	}
	for _, k := range []string{"", store.MetaPrefix + "x", LeaseKey} {
		if err := tb.Write(put(k, "v")); !errors.Is(err, store.ErrReservedKey) {
			t.Errorf("Write(%q) = %v; want store.ErrReservedKey", k, err)
		}
		if _, _, err := tb.Get(k); !errors.Is(err, store.ErrReservedKey) {
			t.Errorf("Get(%q) = %v; want store.ErrReservedKey", k, err)
		}
	}
}

func TestLease(t *testing.T) {
	t.Parallel()
	tb, _ := newTable(t)
	ctx := context.Background()
	if _, ok, err := tb.ReadLease(ctx); ok || err != nil {
		t.Fatalf("ReadLease on a new table = %v, %v; want none", ok, err)
	}
	if err := tb.WantLease(ctx, "b"); !errors.Is(err, ErrNoLease) {
		t.Errorf("WantLease with no lease = %v; want ErrNoLease", err)
	}
	a, err := tb.AcquireLease(ctx, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Holder != "a" || a.Token != 1 || a.Version == "" || a.Released || a.Since.IsZero() || !a.Since.Equal(a.Renewed) {
		t.Errorf("first lease = %+v", a)
	}
	if _, err := tb.AcquireLease(ctx, "b", nil); !errors.Is(err, ErrLeaseTaken) {
		t.Errorf("second create = %v; want ErrLeaseTaken", err)
	}
	read, ok, err := tb.ReadLease(ctx)
	if err != nil || !ok || read != a {
		t.Errorf("ReadLease = %+v, %v, %v; want %+v", read, ok, err, a)
	}
	// a renews: a new Version, so b's view is stale.
	stale := read
	a2, err := tb.RenewLease(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if a2.Version == a.Version || a2.Token != 1 || a2.Holder != "a" || a2.Renewed.Before(a.Renewed) {
		t.Errorf("renewed lease = %+v, was %+v", a2, a)
	}
	if _, err := tb.AcquireLease(ctx, "b", &stale); !errors.Is(err, ErrLeaseTaken) || !strings.Contains(err.Error(), "held by a") {
		t.Errorf("acquire with a stale Version = %v; want ErrLeaseTaken saying a holds it", err)
	}
	if _, err := tb.RenewLease(ctx, Lease{Holder: "b", Token: 1}); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("renew by a non-holder = %v; want ErrLeaseLost", err)
	}
	// b wants it: Version and Token stay; a's renewal returns Want.
	if err := tb.WantLease(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	w, _, err := tb.ReadLease(ctx)
	if err != nil || w.Version != a2.Version || w.Token != a2.Token || w.Want != "b" || w.WantAt.IsZero() {
		t.Errorf("after WantLease: %+v, %v; want Version %s and Token %d unchanged, Want b", w, err, a2.Version, a2.Token)
	}
	a3, err := tb.RenewLease(ctx, a2)
	if err != nil || a3.Want != "b" || a3.WantAt.IsZero() {
		t.Errorf("RenewLease = %+v, %v; want Want b", a3, err)
	}
	// a releases; b takes it at once from what it read.
	if err := tb.ReleaseLease(ctx, a3); err != nil {
		t.Fatal(err)
	}
	rel, _, err := tb.ReadLease(ctx)
	if err != nil || !rel.Released || rel.Version == a3.Version {
		t.Fatalf("after release: %+v, %v", rel, err)
	}
	if _, err := tb.RenewLease(ctx, a3); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("renew after release = %v; want ErrLeaseLost", err)
	}
	b, err := tb.AcquireLease(ctx, "b", &rel)
	if err != nil {
		t.Fatal(err)
	}
	if b.Holder != "b" || b.Token != 2 || b.Released || b.Want != "" {
		t.Errorf("b's lease = %+v; want holder b, token 2, Want cleared", b)
	}
	if got, _, _ := tb.ReadLease(ctx); got != b {
		t.Errorf("ReadLease = %+v, want %+v", got, b)
	}
	if err := tb.ReleaseLease(ctx, a3); !errors.Is(err, ErrLeaseLost) || !strings.Contains(err.Error(), "held by b") {
		t.Errorf("release by the old holder = %v; want ErrLeaseLost saying b holds it", err)
	}
	// Two hosts acquiring from the same Version: one wins.
	_, e1 := tb.AcquireLease(ctx, "c", &b)
	_, e2 := tb.AcquireLease(ctx, "d", &b)
	if e1 != nil || !errors.Is(e2, ErrLeaseTaken) {
		t.Errorf("c then d from the same Version: %v, %v; want c to win, d ErrLeaseTaken", e1, e2)
	}
	// The lease item is never in a Scan.
	write(t, tb, put("_a", "x"))
	if got := scan(t, tb, ""); len(got) != 1 || got[0] != "_a=x" {
		t.Errorf("Scan() = %v; want only _a (not the lease)", got)
	}
	if got := scan(t, tb, "_"); len(got) != 1 {
		t.Errorf("Scan(_) = %v; want only _a (not the lease)", got)
	}
}

func TestClustersShareTable(t *testing.T) {
	t.Parallel()
	ep := dynalite.StartT(t)
	c1 := open(t, options(ep, "shared", "c1"))
	c2 := open(t, options(ep, "shared", "c2"))
	write(t, c1, put("r/1", "one"), put("r/2", "two"))
	write(t, c2, put("r/1", "uno"))
	if v, _ := get(t, c2, "r/1"); v != "uno" {
		t.Errorf("c2 r/1 = %q", v)
	}
	if _, ok := get(t, c2, "r/2"); ok {
		t.Error("c2 sees c1's r/2")
	}
	if got := strings.Join(scan(t, c1, ""), " "); got != "r/1=one r/2=two" {
		t.Errorf("c1 Scan = %s", got)
	}
	if got := strings.Join(scan(t, c2, ""), " "); got != "r/1=uno" {
		t.Errorf("c2 Scan = %s", got)
	}
	ctx := context.Background()
	if _, err := c1.AcquireLease(ctx, "h1", nil); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c2.ReadLease(ctx); ok {
		t.Error("c2 sees c1's lease")
	}
	if _, err := c2.AcquireLease(ctx, "h2", nil); err != nil {
		t.Errorf("c2's own lease: %v", err)
	}
}

func TestOpenTable(t *testing.T) {
	t.Parallel()
	ep := dynalite.StartT(t)
	o := options(ep, "missing", "c1")
	o.Create = false
	_, err := Open(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), CreateCommand("missing", region)) {
		t.Fatalf("Open of a missing table = %v; want the create-table command", err)
	}
	if want := "aws dynamodb create-table --table-name missing --attribute-definitions AttributeName=cluster,AttributeType=S AttributeName=key,AttributeType=S --key-schema AttributeName=cluster,KeyType=HASH AttributeName=key,KeyType=RANGE --billing-mode PAY_PER_REQUEST --region us-east-1"; CreateCommand("missing", region) != want {
		t.Errorf("CreateCommand = %s", CreateCommand("missing", region))
	}
	o.Create = true
	tb := open(t, o)
	write(t, tb, put("r/1", "x"))
	o.Create = false
	if v, _ := get(t, open(t, o), "r/1"); v != "x" {
		t.Errorf("reopened table: r/1 = %q", v)
	}
	db := rawClient(ep)
	out, err := db.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String("missing")})
	if err != nil {
		t.Fatal(err)
	}
	if out.Table.TableStatus != types.TableStatusActive || out.Table.BillingModeSummary == nil || out.Table.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("created table: status %s, billing %+v", out.Table.TableStatus, out.Table.BillingModeSummary)
	}
	// A table with another key schema is refused, saying what is expected.
	_, err = db.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:            aws.String("other"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), options(ep, "other", "c1"))
	if err == nil || !strings.Contains(err.Error(), `partition key "cluster" of type S and sort key "key" of type S`) || !strings.Contains(err.Error(), "HASH id (S)") {
		t.Errorf("Open of a table with key id = %v; want the expected schema", err)
	}
}

func rawClient(ep string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{Region: region, BaseEndpoint: aws.String(ep), Credentials: creds})
}

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	o := options(closedPort(t), "tab1", "c1")
	o.CallTimeout = time.Second
	start := time.Now()
	_, err := Open(context.Background(), o)
	if !errors.Is(err, ErrUnavailable) || !strings.HasPrefix(err.Error(), "state store unavailable: DynamoDB table tab1: ") {
		t.Fatalf("Open on a closed port = %v; want ErrUnavailable", err)
	}
	if d := time.Since(start); d > o.CallTimeout+500*time.Millisecond {
		t.Errorf("Open on a closed port took %v; CallTimeout is %v", d, o.CallTimeout)
	}
}

// TestServerGone stops DynamoDB under an open Table: every call fails
// with ErrUnavailable within the CallTimeout, and Health says so.
func TestServerGone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cli, err := dynalite.Install(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := dynalite.Start(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	o := options(srv.Endpoint, "tab1", "c1")
	o.CallTimeout = time.Second
	tb := open(t, o)
	tb.SetFence(1)
	write(t, tb, put("r/1", "x"))
	srv.Stop()
	calls := map[string]func() error{
		"Write": func() error { return tb.Write(put("r/1", "y"), put("r/2", "z")) },
		"Get":   func() error { _, _, err := tb.Get("r/1"); return err },
		"Scan":  func() error { return tb.Scan("", func(string, []byte) error { return nil }) },
		"Renew": func() error { _, err := tb.RenewLease(ctx, Lease{Holder: "a", Token: 1}); return err },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if !errors.Is(err, ErrUnavailable) || !strings.HasPrefix(err.Error(), "state store unavailable: DynamoDB table tab1: ") {
			t.Errorf("%s with DynamoDB gone = %v; want ErrUnavailable", name, err)
		}
		if errors.Is(err, ErrFenced) || errors.Is(err, ErrLeaseLost) {
			t.Errorf("%s with DynamoDB gone = %v; must not look like a lost lease", name, err)
		}
		if d := time.Since(start); d > o.CallTimeout+500*time.Millisecond {
			t.Errorf("%s took %v; CallTimeout is %v", name, d, o.CallTimeout)
		}
	}
	h := tb.Health()
	if h.OK || h.Unavailable != 5 || h.FailingSince.IsZero() || !strings.Contains(h.LastError, "state store unavailable") || h.Writes != 1 {
		t.Errorf("Health = %+v; want not OK, 5 unavailable (2 writes, get, scan, renew), 1 write", h)
	}
	tb.Close()
	if err := tb.Write(put("r/1", "x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v; want ErrClosed", err)
	}
}

// TestErrorClasses answers PutItem with throttling, a 5xx and a
// validation error from a fake endpoint: the first two are ErrUnavailable
// (after the SDK's retries), the last is not. A fake, because dynalite
// never throttles nor fails; the error bodies are those AWS documents
// (Programming.Errors.html).
func TestErrorClasses(t *testing.T) {
	t.Parallel()
	var status atomic.Int32
	var body atomic.Value
	var puts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		switch r.Header.Get("X-Amz-Target") {
		case "DynamoDB_20120810.DescribeTable":
			fmt.Fprint(w, `{"Table":{"TableName":"tab1","TableStatus":"ACTIVE",
				"AttributeDefinitions":[{"AttributeName":"cluster","AttributeType":"S"},{"AttributeName":"key","AttributeType":"S"}],
				"KeySchema":[{"AttributeName":"cluster","KeyType":"HASH"},{"AttributeName":"key","KeyType":"RANGE"}]}}`)
		case "DynamoDB_20120810.PutItem":
			puts.Add(1)
			w.WriteHeader(int(status.Load()))
			fmt.Fprint(w, body.Load().(string))
		default:
			w.WriteHeader(400)
			fmt.Fprint(w, `{"__type":"com.amazon.coral.validate#ValidationException","message":"unexpected"}`)
		}
	}))
	defer srv.Close()
	o := options(srv.URL, "tab1", "c1")
	o.CallTimeout = 2 * time.Second
	tb := open(t, o)
	for _, c := range []struct {
		status      int
		body        string
		unavailable bool
	}{
		{400, `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}`, true},
		{400, `{"__type":"com.amazon.coral.availability#ThrottlingException","message":"slow down"}`, true},
		{400, `{"__type":"com.amazonaws.dynamodb.v20120810#RequestLimitExceeded","message":"slow down"}`, true},
		{500, `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"oops"}`, true},
		{503, `{}`, true},
		{400, `{"__type":"com.amazon.coral.validate#ValidationException","message":"bad"}`, false},
		{400, `{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}`, false},
	} {
		status.Store(int32(c.status))
		body.Store(c.body)
		puts.Store(0)
		start := time.Now()
		err := tb.Write(put("r/1", "x"))
		if err == nil || errors.Is(err, ErrUnavailable) != c.unavailable {
			t.Errorf("PutItem answered %d %s: Write = %v; want unavailable %v", c.status, c.body, err, c.unavailable)
		}
		if c.unavailable && puts.Load() < 2 {
			t.Errorf("PutItem answered %d %s was not retried (%d calls)", c.status, c.body, puts.Load())
		}
		if d := time.Since(start); d > o.CallTimeout+500*time.Millisecond {
			t.Errorf("PutItem answered %d: Write took %v", c.status, d)
		}
	}
}

// lossyTransport forwards requests to DynamoDB but, for the next n
// requests whose target is op, throws the answer away and answers 500, as
// when an answer is lost on the way back: the SDK then retries a call
// DynamoDB already applied.
type lossyTransport struct {
	op string
	n  atomic.Int32
}

func (l *lossyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || r.Header.Get("X-Amz-Target") != "DynamoDB_20120810."+l.op || l.n.Add(-1) < 0 {
		return resp, err
	}
	resp.Body.Close()
	return &http.Response{
		StatusCode: 500, Status: "500 Internal Server Error", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:    io.NopCloser(strings.NewReader(`{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"lost"}`)),
		Request: r,
	}, nil
}

// TestRetriedAfterSuccess: a fenced put and a lease acquisition whose
// first answer was lost are retried by the SDK and still succeed.
func TestRetriedAfterSuccess(t *testing.T) {
	t.Parallel()
	ep := dynalite.StartT(t)
	lossy := &lossyTransport{op: "PutItem"}
	o := options(ep, "lossy", "c1")
	o.HTTPClient = &http.Client{Transport: lossy}
	tb := open(t, o)
	ctx := context.Background()
	lossy.n.Store(1)
	l, err := tb.AcquireLease(ctx, "a", nil)
	if err != nil || l.Token != 1 {
		t.Fatalf("AcquireLease with its first answer lost = %+v, %v; want it acquired", l, err)
	}
	if lossy.n.Load() >= 0 {
		t.Fatal("the answer was not lost: the test proves nothing")
	}
	if got, _, _ := tb.ReadLease(ctx); got != l {
		t.Errorf("ReadLease = %+v, want %+v", got, l)
	}
	tb.SetFence(l.Token)
	lossy.n.Store(1)
	write(t, tb, put("r/1", "x"))
	if v, _ := get(t, tb, "r/1"); v != "x" {
		t.Errorf("r/1 = %q", v)
	}
	// A lost answer for another host's acquisition from the same Version
	// is still ErrLeaseTaken.
	lossy.n.Store(1)
	if _, err := tb.AcquireLease(ctx, "b", nil); !errors.Is(err, ErrLeaseTaken) {
		t.Errorf("create over an existing lease = %v; want ErrLeaseTaken", err)
	}
}
