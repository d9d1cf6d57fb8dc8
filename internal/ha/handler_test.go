package ha

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/rpc"
	"github.com/ohfp/ohfp/internal/rpcserver"
	"github.com/ohfp/ohfp/internal/state"
)

// Only HF's operations move the lease; the operator's commands on a
// standby say which host acts (ohfp templates included), and status and
// reload are the standby's own.
func TestOnlyHFMovesTheLease(t *testing.T) {
	tab, ev, kvs := newTable(), &events{}, map[string]state.KV{}
	a, b := coordinator(t, "a", tab, ev, kvs), coordinator(t, "b", tab, ev, kvs)
	defer run(t, a)()
	defer run(t, b)()
	ctx := context.Background()
	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	var inner, local []string
	h := &Handler{C: b,
		Inner: func() rpcserver.Handler {
			if b.MayAct() != nil {
				return nil
			}
			return rpcserver.HandlerFunc(func(_ context.Context, m string, _ rpc.Params) (any, error) {
				inner = append(inner, m)
				return "engine", nil
			})
		},
		Local: rpcserver.HandlerFunc(func(_ context.Context, m string, _ rpc.Params) (any, error) {
			local = append(local, m)
			return "local", nil
		}),
	}
	view, _ := json.Marshal(apitype.ViewArgs{View: true})
	for _, c := range []struct {
		method string
		args   json.RawMessage
	}{{hf.OpGetAvailableTemplates, view}, {apitype.MethodDrain, nil}, {apitype.MethodCancel, nil}, {apitype.MethodRequests, nil}} {
		_, err := h.Call(ctx, c.method, rpc.Params{Args: c.args})
		if err == nil || !strings.Contains(err.Error(), "is a standby: a holds the lease") {
			t.Errorf("%s on the standby: %v", c.method, err)
		}
	}
	for _, m := range []string{apitype.MethodStatus, apitype.MethodReload} {
		if out, err := h.Call(ctx, m, rpc.Params{}); err != nil || out != "local" {
			t.Errorf("%s on the standby: %v, %v", m, out, err)
		}
	}
	if got := ev.String(); got != "start a" {
		t.Fatalf("the operator's commands moved the lease: %q", got)
	}
	if out, err := h.Call(ctx, hf.OpGetRequestStatus, rpc.Params{}); err != nil || out != "engine" {
		t.Fatalf("HF's call on b: %v, %v", out, err)
	}
	if got := ev.String(); got != "start a,stop a,start b" {
		t.Fatalf("HF's call did not move the lease: %q", got)
	}
	if len(inner) != 1 || len(local) != 2 {
		t.Fatalf("inner %v, local %v", inner, local)
	}
}
