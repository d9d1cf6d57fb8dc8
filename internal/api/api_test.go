package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

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
	h := New(nil, Options{})
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
