package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/clock"
	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/rpc"
	"github.com/ohfp/ohfp/internal/rpcserver"
	"github.com/ohfp/ohfp/internal/store"
	"github.com/ohfp/ohfp/internal/template"
)

// loaded is an engine holding requests*per running machines, all complete,
// on the fake cloud and an in-memory store.
type loaded struct {
	e     *Engine
	cloud *fakeCloud
	st    *store.Store
	ids   []string
	refs  []hf.MachineRef
}

func loadEngine(b *testing.B, requests, per int) *loaded {
	b.Helper()
	st, err := store.OpenInMemory(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	tpl := template.Template{TemplateID: "Bench-c5", MaxNumber: -1, VMType: "c5.large", ImageID: "ami-0123456789abcdef0",
		Attributes:   template.Attributes{{Name: "type", Type: "String", Value: "X86_64"}, {Name: "ncpus", Type: "Numeric", Value: "2"}, {Name: "nram", Type: "Numeric", Value: "4096"}},
		InstanceTags: "team=hpc"}
	cloud := newFakeCloud()
	e, err := New(Options{
		ClusterID: "bench",
		Providers: []ProviderConfig{{Name: "aws", Templates: []template.Template{tpl}, Cloud: cloud}},
		Store:     st,
		Clock:     clock.NewFake(time.Unix(1_800_000_000, 0)),
	})
	if err != nil {
		b.Fatal(err)
	}
	l := &loaded{e: e, cloud: cloud, st: st}
	in := []byte(fmt.Sprintf(`{"template":{"templateId":"Bench-c5","machineCount":%d}}`, per))
	for range requests {
		rep, err := hfraw(e).RequestMachines(nil, in)
		if err != nil {
			b.Fatal(err)
		}
		l.ids = append(l.ids, rep.RequestID)
	}
	e.ProvisionOnce(context.Background())
	e.Wait()
	cloud.settle()
	e.ReconcileOnce(context.Background())
	rep, err := hfraw(e).GetRequestStatus(nil, statusInput(l.ids...))
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range rep.Requests {
		if r.Status != hf.StatusComplete || len(r.Machines) != per {
			b.Fatalf("request %s: %s with %d machines", r.RequestID, r.Status, len(r.Machines))
		}
		for _, m := range r.Machines {
			l.refs = append(l.refs, hf.MachineRef{Name: m.Name, MachineID: m.MachineID})
		}
	}
	return l
}

func statusInput(ids ...string) []byte {
	reqs := make([]map[string]string, len(ids))
	for i, id := range ids {
		reqs[i] = map[string]string{"requestId": id}
	}
	b, _ := json.Marshal(map[string]any{"requests": reqs})
	return b
}

// benchStatus answers getRequestStatus for n ids with 10,000 machines in
// memory, including the JSON encoding the rpc server does (AppendJSON).
func benchStatus(b *testing.B, n int) {
	l := loadEngine(b, 1000, 10)
	in := statusInput(l.ids[:n]...)
	b.ReportAllocs()
	for b.Loop() {
		rep, err := hfraw(l.e).GetRequestStatus(nil, in)
		if err != nil || len(rep.Requests) != n {
			b.Fatal(err)
		}
		if out := rep.AppendJSON(nil); len(out) == 0 {
			b.Fatal("empty answer")
		}
	}
}

func BenchmarkGetRequestStatus1of10k(b *testing.B)   { benchStatus(b, 1) }
func BenchmarkGetRequestStatus100of10k(b *testing.B) { benchStatus(b, 100) }

// BenchmarkGetReturnRequests10k answers getReturnRequests with all 10,000
// machines in its input (parsing included).
func BenchmarkGetReturnRequests10k(b *testing.B) {
	l := loadEngine(b, 1000, 10)
	in, _ := json.Marshal(map[string]any{"machines": l.refs})
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		rep, err := hfraw(l.e).GetReturnRequests(nil, in)
		if err != nil || len(rep.Requests) != 0 {
			b.Fatal(err, len(rep.Requests))
		}
		if out := rep.AppendJSON(nil); len(out) == 0 {
			b.Fatal("empty answer")
		}
	}
}

// BenchmarkGetAvailableTemplates10k answers getAvailableTemplates with
// 1,000 requests and 10,000 machines held (availableNumber is computed).
func BenchmarkGetAvailableTemplates10k(b *testing.B) {
	l := loadEngine(b, 1000, 10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hfraw(l.e).GetAvailableTemplates(nil, []byte(`{}`)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRequestMachines10k admits one request (held units, write-ahead
// to the in-memory store) with 10,000 machines held.
func BenchmarkRequestMachines10k(b *testing.B) {
	l := loadEngine(b, 1000, 10)
	in := []byte(`{"template":{"templateId":"Bench-c5","machineCount":1}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hfraw(l.e).RequestMachines(nil, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReconcileOnce10k is one idle reconcile pass over 10,000 running
// instances: the diff with memory, nothing to persist. The fake cloud's
// List (copying 10,000 instances) is included; the SDK's describe is not
// (see internal/bench for that).
func BenchmarkReconcileOnce10k(b *testing.B) {
	l := loadEngine(b, 1000, 10)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l.e.ReconcileOnce(ctx)
	}
	b.StopTimer()
	if l.cloud.count() != 10000 {
		b.Fatalf("%d instances", l.cloud.count())
	}
}

// BenchmarkReconcileList10k is the fake cloud's List alone, to subtract
// from BenchmarkReconcileOnce10k.
func BenchmarkReconcileList10k(b *testing.B) {
	l := loadEngine(b, 1000, 10)
	ctx := context.Background()
	for b.Loop() {
		insts, err := l.cloud.List(ctx, "bench")
		if err != nil || len(insts) != 10000 {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad10k is the engine's start-up: rebuilding 1,000 requests and
// 10,000 machines from the store.
func BenchmarkLoad10k(b *testing.B) {
	l := loadEngine(b, 1000, 10)
	b.ReportAllocs()
	for b.Loop() {
		e, err := New(Options{ClusterID: "bench", Providers: l.e.st.Opts.Providers, Store: l.st, Clock: l.e.st.Clock})
		if err != nil || len(e.st.Machines) != 10000 {
			b.Fatal(err)
		}
	}
}

var _ provider.Provider = (*fakeCloud)(nil)

// benchServe times whole calls on the daemon's side of the socket: the
// HTTP exchange, the JSON-RPC envelope, the operation and its answer, as
// the benchmark's floor client sends them (HTTP/1.0, one connection each).
func benchServe(b *testing.B, op string, input func(l *loaded) []byte) {
	l := loadEngine(b, 1000, 10)
	sock := filepath.Join(b.TempDir(), "s")
	ln, err := rpcserver.Listen(sock, 0, "")
	if err != nil {
		b.Fatal(err)
	}
	// The five operations as package api serves them (api imports engine).
	srv := rpcserver.NewServer(rpcserver.HandlerFunc(func(_ context.Context, method string, p rpc.Params) (any, error) {
		switch method {
		case hf.OpGetReturnRequests:
			return hfraw(l.e).GetReturnRequests(Env(p.Env), p.Input)
		case hf.OpGetRequestStatus:
			return hfraw(l.e).GetRequestStatus(Env(p.Env), p.Input)
		}
		return nil, rpc.Errorf(rpc.MethodNotFound, "%s", method)
	}), rpcserver.ServerOptions{})
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown(context.Background()) })
	in := input(l)
	// The envelope ohfp writes (rpc.encodeCall): the document last.
	body := append([]byte(`{"jsonrpc":"2.0","id":1,"method":"`+op+`","params":{"env":{"HF_PROVIDER_NAME":"aws"},"inputBytes":`+
		strconv.Itoa(len(in))+`,"input":`), in...)
	body = append(body, `}}`...)
	call := append([]byte("POST /v1/rpc HTTP/1.0\r\nHost: ohfpd\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"), body...)
	b.SetBytes(int64(len(call)))
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("unix", sock)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(call); err != nil {
			b.Fatal(err)
		}
		resp, err := io.ReadAll(c)
		c.Close()
		if err != nil || !bytes.Contains(resp, []byte(`"result"`)) {
			b.Fatalf("%v: %.300s", err, resp)
		}
	}
}

func BenchmarkServeGetReturnRequests10k(b *testing.B) {
	benchServe(b, hf.OpGetReturnRequests, func(l *loaded) []byte {
		in, _ := json.Marshal(map[string]any{"machines": l.refs})
		return in
	})
}

// BenchmarkServeGetRequestStatus100 is getRequestStatus for 100 requests of
// 10 machines (a 300 KB answer) on the daemon's side of the socket.
func BenchmarkServeGetRequestStatus100(b *testing.B) {
	benchServe(b, hf.OpGetRequestStatus, func(l *loaded) []byte { return statusInput(l.ids[100:200]...) })
}

// slowKV is a store whose writes take 2 ms (a slow disk; DynamoDB takes
// longer).
type slowKV struct{ *store.Store }

func (s slowKV) Write(ops ...store.Op) error {
	time.Sleep(2 * time.Millisecond)
	return s.Store.Write(ops...)
}

// BenchmarkGetRequestStatusDuringSlowWrites answers getRequestStatus for
// one request while another request's record is written back to back,
// each write taking 2 ms: writes are made outside the lock HF's reads
// take, so the answer does not wait for them (under the lock it took
// about a write's time).
func BenchmarkGetRequestStatusDuringSlowWrites(b *testing.B) {
	l := loadEngine(b, 100, 10)
	e, err := New(Options{ClusterID: "bench", Providers: l.e.st.Opts.Providers, Store: slowKV{l.st}, Clock: l.e.st.Clock})
	if err != nil {
		b.Fatal(err)
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
			}
			e.st.Mu.Lock()
			w := e.st.Stage([]*domain.Request{e.st.Requests[l.ids[0]]}, nil)
			e.st.Mu.Unlock()
			if err := w.Wait(); err != nil {
				panic(err)
			}
		}
	}()
	in := statusInput(l.ids[1])
	b.ReportAllocs()
	for b.Loop() {
		rep, err := hfraw(e).GetRequestStatus(nil, in)
		if err != nil || len(rep.Requests) != 1 || rep.Requests[0].Status != hf.StatusComplete {
			b.Fatal(err, rep)
		}
	}
	b.StopTimer()
	close(stop)
	<-stopped
}
