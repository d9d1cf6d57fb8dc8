package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/rpc"
	"github.com/ohfp/ohfp/internal/service"
)

// TestCode is the one map from the core's errors to JSON-RPC codes.
func TestCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{&hf.InputError{Op: "requestMachines", Problem: "no"}, rpc.InvalidInput},
		{fmt.Errorf("wrapped: %w", &service.StoreError{Err: errors.New("disk full")}), rpc.Unavailable},
		{&service.NotFoundError{What: "request", ID: "req-x"}, rpc.NotFound},
		{&service.RefusedError{Msg: "already finished"}, rpc.InvalidInput},
		{context.Canceled, rpc.Unavailable},
		{rpc.Errorf(rpc.PermissionDenied, "no"), rpc.PermissionDenied},
		{errors.New("boom"), rpc.Internal},
	} {
		if got := Code(tc.err); got.Code != tc.code || got.Message == "" {
			t.Errorf("%v: got %d %q, want %d", tc.err, got.Code, got.Message, tc.code)
		}
	}
}

// TestUnknownMethod: a method outside the table is refused with the list
// of HF's operations.
func TestUnknownMethod(t *testing.T) {
	h := New(nil, Options{Caller: func(context.Context) (string, bool) { return "uid 0 (root)", true }})
	_, err := h.Call(context.Background(), "getMachines", rpc.Params{})
	if rpc.CodeOf(err) != rpc.MethodNotFound {
		t.Fatalf("got %v", err)
	}
	_, err = h.Call(context.Background(), "reload", rpc.Params{})
	if rpc.CodeOf(err) != rpc.Unavailable {
		t.Fatalf("reload without a reloader: %v", err)
	}
	_, err = h.Call(context.Background(), "show", rpc.Params{Args: json.RawMessage(`[1]`)})
	if rpc.CodeOf(err) != rpc.InvalidInput {
		t.Fatalf("bad arguments: %v", err)
	}
}

// stubService records the operator actions it is asked for.
type stubService struct {
	Service
	calls []string
}

func (s *stubService) Cancel(id string, alsoReturn bool, who string) (apitype.ActionAnswer, error) {
	s.calls = append(s.calls, fmt.Sprintf("cancel %s %v by %s", id, alsoReturn, who))
	return apitype.ActionAnswer{Message: "ok"}, nil
}

func (s *stubService) Drain(p, tpl, who string) (apitype.ActionAnswer, error) {
	s.calls = append(s.calls, "drain "+tpl+" by "+who)
	return apitype.ActionAnswer{Message: "ok"}, nil
}

func (s *stubService) Return(ms []string, req, who string) (apitype.ActionAnswer, error) {
	s.calls = append(s.calls, fmt.Sprintf("return %v %s by %s", ms, req, who))
	return apitype.ActionAnswer{Message: "ok"}, nil
}

// TestOperatorActionsNeedAnAdmin: cancel, return, drain, undrain, check
// and reload are refused (PermissionDenied, nothing done) to a caller the
// daemon does not call an admin, and to everyone when it cannot tell who
// calls; an admin's call reaches the service with who it was.
func TestOperatorActionsNeedAnAdmin(t *testing.T) {
	svc := &stubService{}
	admin := false
	reloaded := 0
	h := New(svc, Options{
		Caller: func(context.Context) (string, bool) {
			if admin {
				return "uid 0 (root)", true
			}
			return "uid 1000 (hfadmin)", false
		},
		Reload: func(context.Context) ([]string, error) { reloaded++; return nil, nil },
		Check:  func(context.Context, apitype.CheckArgs) ([]apitype.CheckRow, error) { return nil, nil },
	})
	calls := map[string]string{
		apitype.MethodCancel:  `{"request":"req-1","return":true}`,
		apitype.MethodReturn:  `{"machines":["i-1"]}`,
		apitype.MethodDrain:   `{"template":"t1"}`,
		apitype.MethodUndrain: `{"template":"t1"}`,
		apitype.MethodCheck:   `{}`,
		apitype.MethodReload:  ``,
	}
	for m, args := range calls {
		_, err := h.Call(context.Background(), m, rpc.Params{Args: json.RawMessage(args)})
		if rpc.CodeOf(err) != rpc.PermissionDenied || !strings.Contains(err.Error(), "uid 1000 (hfadmin) is not an operator") || !strings.Contains(err.Error(), "admin_groups") {
			t.Errorf("%s by a non-admin: %v", m, err)
		}
	}
	if len(svc.calls) != 0 || reloaded != 0 {
		t.Fatalf("a refused caller still acted: %v, %d reloads", svc.calls, reloaded)
	}
	// Reading stays open.
	nobody := New(svc, Options{})
	if _, err := nobody.Call(context.Background(), apitype.MethodCancel, rpc.Params{Args: json.RawMessage(calls[apitype.MethodCancel])}); rpc.CodeOf(err) != rpc.PermissionDenied {
		t.Errorf("cancel with no caller check: %v", err)
	}
	admin = true
	for _, m := range []string{apitype.MethodCancel, apitype.MethodReturn, apitype.MethodDrain, apitype.MethodReload} {
		if _, err := h.Call(context.Background(), m, rpc.Params{Args: json.RawMessage(calls[m])}); err != nil {
			t.Errorf("%s by an admin: %v", m, err)
		}
	}
	want := []string{"cancel req-1 true by uid 0 (root)", "return [i-1]  by uid 0 (root)", "drain t1 by uid 0 (root)"}
	if !slices.Equal(svc.calls, want) || reloaded != 1 {
		t.Fatalf("calls %q, %d reloads; want %q and 1", svc.calls, reloaded, want)
	}
	if _, err := h.Call(context.Background(), apitype.MethodCancel, rpc.Params{Args: json.RawMessage(`{}`)}); rpc.CodeOf(err) != rpc.InvalidInput {
		t.Errorf("cancel without an id: %v", err)
	}
}

// TestReferenceListsEveryOperatorCommand: the configuration reference's
// admin_groups row names every command that needs an operator, read from
// the handler itself (a method refused to a non-operator).
func TestReferenceListsEveryOperatorCommand(t *testing.T) {
	ref, err := os.ReadFile("../config/reference.md")
	if err != nil {
		t.Fatal(err)
	}
	var row string
	for _, l := range strings.Split(string(ref), "\n") {
		if strings.HasPrefix(l, "| `admin_groups` |") {
			row = l
		}
	}
	if row == "" {
		t.Fatal("reference.md has no admin_groups row")
	}
	asked := false
	h := New(&stubService{}, Options{
		Caller: func(context.Context) (string, bool) { asked = true; return "uid 1000 (hfadmin)", false },
	})
	n := 0
	for name, m := range h.methods {
		// Only an operator's method asks who calls; the others, run on
		// the stub with no arguments, may fail as they like.
		asked = false
		func() {
			defer func() { recover() }()
			m(context.Background(), rpc.Params{Args: json.RawMessage(`{}`)})
		}()
		if !asked {
			continue
		}
		n++
		cmd := name
		if name == apitype.MethodReload {
			cmd = "config reload"
		}
		if !strings.Contains(row, "`"+cmd+"`") && !strings.Contains(row, "`ohfp "+cmd+"`") {
			t.Errorf("reference.md's admin_groups row does not name %s, which needs an operator:\n%s", cmd, row)
		}
	}
	if n < 7 {
		t.Errorf("only %d operator methods found", n)
	}
}
