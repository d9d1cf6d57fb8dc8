package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/rpc"
	"github.com/ohfp/ohfp/internal/service"
)

// hfService records HF's operations as the service gets them: typed, with
// the provider HF named.
type hfService struct {
	Service
	calls     []string
	err       error // answered by the operations that can fail
	delivered []bool
}

func (s *hfService) GetAvailableTemplates(p string) (hf.TemplatesReply, error) {
	s.calls = append(s.calls, "templates "+p)
	return hf.TemplatesReply{Message: "ok"}, s.err
}

func (s *hfService) RequestMachinesHeld(p string, in hf.RequestMachines) (hf.RequestReply, func(bool), error) {
	s.calls = append(s.calls, fmt.Sprintf("request %s %s %d", p, in.TemplateID, in.MachineCount))
	if s.err != nil {
		return hf.RequestReply{}, nil, s.err
	}
	return hf.RequestReply{RequestID: "req-1"}, func(d bool) { s.delivered = append(s.delivered, d) }, nil
}

func (s *hfService) GetRequestStatus(ids []string) hf.StatusReply {
	s.calls = append(s.calls, fmt.Sprintf("status %v", ids))
	return hf.StatusReply{}
}

func (s *hfService) RequestReturnMachines(p string, refs []hf.MachineRef) (hf.RequestReply, error) {
	s.calls = append(s.calls, fmt.Sprintf("return %s %v", p, refs))
	return hf.RequestReply{RequestID: "ret-1"}, s.err
}

func (s *hfService) GetReturnRequests(hosts service.Hosts) (hf.ReturnRequestsReply, bool) {
	var seen []string
	ok := hosts(func(id, name []byte) { seen = append(seen, string(id)+"/"+string(name)) })
	s.calls = append(s.calls, fmt.Sprintf("returns %v %v", ok, seen))
	return hf.ReturnRequestsReply{}, ok
}

func callHF(h *Handler, ctx context.Context, op, input string) (any, error) {
	return h.Call(ctx, op, rpc.Params{Input: json.RawMessage(input), Env: map[string]string{"HF_PROVIDER_NAME": "aws1"}})
}

// TestHFOperationsTyped: each of HF's operations parses its document and
// hands the service typed values and the provider HF named
// (HF_PROVIDER_NAME); getAvailableTemplates takes no document as {}.
func TestHFOperationsTyped(t *testing.T) {
	svc := &hfService{}
	h := New(svc, Options{})
	ctx := context.Background()
	for _, c := range []struct{ op, input string }{
		{hf.OpGetAvailableTemplates, ``},
		{hf.OpRequestMachines, `{"template": {"templateId": "t1", "machineCount": 3}}`},
		{hf.OpGetRequestStatus, `{"requests": [{"requestId": "req-a"}, {"requestId": "ret-b"}]}`},
		{hf.OpRequestReturnMachines, `{"machines": [{"name": "host-1", "machineId": "i-1"}]}`},
		{hf.OpGetReturnRequests, `{"machines": [{"name": "host-2", "machineId": "i-2"}]}`},
	} {
		if _, err := callHF(h, ctx, c.op, c.input); err != nil {
			t.Errorf("%s %s: %v", c.op, c.input, err)
		}
	}
	want := []string{
		"templates aws1",
		"request aws1 t1 3",
		"status [req-a ret-b]",
		"return aws1 [{host-1 i-1}]",
		"returns true [i-2/host-2]",
	}
	if !slices.Equal(svc.calls, want) {
		t.Errorf("the service got\n  %q\nwant\n  %q", svc.calls, want)
	}
}

// TestMalformedHFInput: a document HF's operation cannot take is refused
// with InvalidInput and a message that names the operation and what is
// wrong, and the service is not called (for getReturnRequests: only the
// scan ran, which visits nothing it cannot read).
func TestMalformedHFInput(t *testing.T) {
	for _, c := range []struct{ op, input, want string }{
		{hf.OpGetAvailableTemplates, `[1]`, hf.OpGetAvailableTemplates},
		{hf.OpRequestMachines, `{"template": {"templateId": "t1", "machineCount": 0}}`, "machineCount"},
		{hf.OpRequestMachines, `{"template": {"templateId": "t1", "machineCount": 1}`, hf.OpRequestMachines},
		{hf.OpRequestMachines, ``, hf.OpRequestMachines},
		{hf.OpGetRequestStatus, `{"requests": "req-1"}`, "requests"},
		{hf.OpRequestReturnMachines, `{"machines": [{}]}`, hf.OpRequestReturnMachines},
		{hf.OpGetReturnRequests, `{"machines": 7}`, "machines"},
	} {
		svc := &hfService{}
		_, err := callHF(New(svc, Options{}), context.Background(), c.op, c.input)
		if rpc.CodeOf(err) != rpc.InvalidInput || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v; want InvalidInput naming %q", c.op, c.input, err, c.want)
		}
		for _, call := range svc.calls {
			if !strings.HasPrefix(call, "returns false") {
				t.Errorf("%s %s: the service was called: %s", c.op, c.input, call)
			}
		}
	}
}

// TestHFServiceErrorsMapped: the service's errors reach HF through Code
// (a store that cannot record is Unavailable, a refusal InvalidInput), and
// a request whose answer fails is never released for launch.
func TestHFServiceErrorsMapped(t *testing.T) {
	svc := &hfService{err: fmt.Errorf("record: %w", &service.StoreError{Err: errors.New("no space left on device")})}
	h := New(svc, Options{})
	ctx, hooks := rpc.WithAnswerHooks(context.Background())
	_, err := callHF(h, ctx, hf.OpRequestMachines, `{"template": {"templateId": "t1", "machineCount": 1}}`)
	if rpc.CodeOf(err) != rpc.Unavailable || !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("requestMachines on a full disk: %v; want Unavailable with the cause", err)
	}
	hooks.Run(false)
	if len(svc.delivered) != 0 {
		t.Errorf("a failed requestMachines released a launch: %v", svc.delivered)
	}
	svc.err = &service.RefusedError{Msg: "template t9 is not offered"}
	if _, err := callHF(h, context.Background(), hf.OpGetAvailableTemplates, `{}`); rpc.CodeOf(err) != rpc.InvalidInput || !strings.Contains(err.Error(), "t9") {
		t.Errorf("a refusal: %v; want InvalidInput", err)
	}
}

// TestRequestMachinesHeldUntilAnswered: requestMachines hands the
// service's release to the answer hooks, so the launch waits for the
// answer and learns whether it was delivered.
func TestRequestMachinesHeldUntilAnswered(t *testing.T) {
	for _, delivered := range []bool{true, false} {
		svc := &hfService{}
		ctx, hooks := rpc.WithAnswerHooks(context.Background())
		if _, err := callHF(New(svc, Options{}), ctx, hf.OpRequestMachines, `{"template": {"templateId": "t1", "machineCount": 2}}`); err != nil {
			t.Fatal(err)
		}
		if len(svc.delivered) != 0 {
			t.Fatalf("released before the answer went out: %v", svc.delivered)
		}
		hooks.Run(delivered)
		if !slices.Equal(svc.delivered, []bool{delivered}) {
			t.Errorf("answer delivered=%v: the service was told %v", delivered, svc.delivered)
		}
	}
}

func (s *hfService) StatusReport() apitype.Status                            { return apitype.Status{} }
func (s *hfService) ListRequests(bool) []apitype.RequestRow                  { return nil }
func (s *hfService) ListMachines(string, bool) ([]apitype.MachineRow, error) { return nil, nil }
func (s *hfService) Show(string) (apitype.Shown, error)                      { return apitype.Shown{}, nil }

// TestMethodTable: the table holds HF's five operations and the admin
// methods, nothing else; exactly the operator's actions (and reload and
// check) are refused to a caller who is not an operator, while HF's
// operations and the reads stay open to the HF user.
func TestMethodTable(t *testing.T) {
	h := New(&hfService{}, Options{Caller: func(context.Context) (string, bool) { return "uid 1000 (hfadmin)", false }})
	reads := []string{apitype.MethodStatus, apitype.MethodRequests, apitype.MethodMachines, apitype.MethodShow}
	actions := []string{apitype.MethodReload, apitype.MethodCancel, apitype.MethodReturn, apitype.MethodDrain, apitype.MethodUndrain, apitype.MethodRearm, apitype.MethodCheck}
	want := slices.Concat(hf.Operations, reads, actions)
	got := slices.Collect(maps.Keys(h.methods))
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("methods %q, want %q", got, want)
	}
	inputs := map[string]string{
		hf.OpRequestMachines:       `{"template": {"templateId": "t1", "machineCount": 1}}`,
		hf.OpGetRequestStatus:      `{"requests": [{"requestId": "req-a"}]}`,
		hf.OpRequestReturnMachines: `{"machines": [{"name": "h"}]}`,
		hf.OpGetReturnRequests:     `{"machines": []}`,
	}
	for _, m := range slices.Concat(hf.Operations, reads) {
		if _, err := h.Call(context.Background(), m, rpc.Params{Input: json.RawMessage(inputs[m])}); err != nil {
			t.Errorf("%s by the HF user: %v", m, err)
		}
	}
	for _, m := range actions {
		if _, err := h.Call(context.Background(), m, rpc.Params{}); rpc.CodeOf(err) != rpc.PermissionDenied {
			t.Errorf("%s by the HF user: %v; want PermissionDenied", m, err)
		}
	}
}
