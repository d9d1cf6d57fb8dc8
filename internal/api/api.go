// Package api is the one adapter between the socket (package rpcserver)
// and the core: a table of methods, the parsing of HF's documents into
// typed inputs, and the single map from errors to JSON-RPC codes. The core
// knows no bytes and no codes.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/english"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/rpc"
	"github.com/ohfp/ohfp/internal/service"
)

// Service is what the API serves: HF's five operations and the operator's
// reads, on typed inputs.
type Service interface {
	GetAvailableTemplates(provider string) (hf.TemplatesReply, error)
	RequestMachinesHeld(provider string, in hf.RequestMachines) (hf.RequestReply, func(delivered bool), error)
	GetRequestStatus(ids []string) hf.StatusReply
	RequestReturnMachines(provider string, refs []hf.MachineRef) (hf.RequestReply, error)
	GetReturnRequests(hosts service.Hosts) (hf.ReturnRequestsReply, bool)
	StatusReport() apitype.Status
	ListRequests(all bool) []apitype.RequestRow
	ListMachines(requestID string, all bool) ([]apitype.MachineRow, error)
	Show(id string) (apitype.Shown, error)
	// The operator's actions; who is the caller, for the request's
	// history and the log.
	Cancel(id string, alsoReturn bool, who string) (apitype.ActionAnswer, error)
	Return(machines []string, requestID, who string) (apitype.ActionAnswer, error)
	Drain(provider, templateID, who string) (apitype.ActionAnswer, error)
	Undrain(provider, templateID, who string) (apitype.ActionAnswer, error)
	Rearm(provider, templateID, who string) (apitype.ActionAnswer, error)
}

// Options complete a Handler with what the daemon adds.
type Options struct {
	// Reload, when set, re-reads the configuration (ohfp config reload);
	// warnings are what the caller should hear of the new one.
	Reload func(ctx context.Context) (warnings []string, err error)
	// Status, when set, adds daemon-level facts (cloud health, the
	// health verdict) to the status answer.
	Status func(*apitype.Status)
	// Caller says who is calling (e.g. "uid 0 (root)") and whether they
	// may act as the operator: cancel, return, drain, undrain, rearm, check and
	// reload. Nil: no one may (ohfpd cannot tell who calls).
	Caller func(ctx context.Context) (who string, admin bool)
	// Check, when set, dry-runs the templates against the cloud (ohfp
	// check).
	Check func(ctx context.Context, a apitype.CheckArgs) ([]apitype.CheckRow, error)
}

// method serves one method: its result, or an error for Code.
type method func(ctx context.Context, p rpc.Params) (any, error)

// Handler implements rpcserver.Handler over a Service.
type Handler struct {
	svc     Service
	opts    Options
	methods map[string]method
}

// New returns the handler of svc.
func New(svc Service, opts Options) *Handler {
	h := &Handler{svc: svc, opts: opts}
	h.methods = map[string]method{
		hf.OpGetAvailableTemplates: h.getAvailableTemplates,
		hf.OpRequestMachines:       h.requestMachines,
		hf.OpGetRequestStatus:      h.getRequestStatus,
		hf.OpRequestReturnMachines: h.requestReturnMachines,
		hf.OpGetReturnRequests:     h.getReturnRequests,
		apitype.MethodStatus:       h.status,
		apitype.MethodRequests:     h.requests,
		apitype.MethodMachines:     h.machines,
		apitype.MethodShow:         h.show,
		apitype.MethodReload:       h.admin(h.reload),
		apitype.MethodCancel:       h.admin(h.cancel),
		apitype.MethodReturn:       h.admin(h.operatorReturn),
		apitype.MethodDrain:        h.admin(h.drain),
		apitype.MethodUndrain:      h.admin(h.undrain),
		apitype.MethodRearm:        h.admin(h.rearm),
		apitype.MethodCheck:        h.admin(h.check),
	}
	return h
}

// Call implements rpcserver.Handler: every error it returns is an
// *rpc.Error (see Code).
func (h *Handler) Call(ctx context.Context, name string, p rpc.Params) (any, error) {
	m := h.methods[name]
	if m == nil {
		return nil, rpc.Errorf(rpc.MethodNotFound, "unknown operation %q: HF operations are %v", name, hf.Operations)
	}
	out, err := m(ctx, p)
	if err != nil {
		return nil, Code(err)
	}
	return out, nil
}

// providerName is the HF provider instance a call names (HF_PROVIDER_NAME).
func providerName(p rpc.Params) string { return p.Env["HF_PROVIDER_NAME"] }

func (h *Handler) getAvailableTemplates(_ context.Context, p rpc.Params) (any, error) {
	in := p.Input
	if len(in) == 0 {
		in = []byte(`{}`)
	}
	if err := hf.ParseGetAvailableTemplates(in); err != nil {
		return nil, err
	}
	return h.svc.GetAvailableTemplates(providerName(p))
}

func (h *Handler) requestMachines(ctx context.Context, p rpc.Params) (any, error) {
	in, err := hf.ParseRequestMachines(p.Input)
	if err != nil {
		return nil, err
	}
	in.ClusterName = clusterName(p.Env["SCRIPT_OPTIONS"])
	// Nothing launches until the answer is out to HF: a request whose
	// answer could not be delivered is cancelled (see RequestMachinesHeld).
	out, delivered, err := h.svc.RequestMachinesHeld(providerName(p), in)
	if err != nil {
		return nil, err
	}
	rpc.AfterAnswer(ctx, delivered)
	return out, nil
}

func (h *Handler) getRequestStatus(_ context.Context, p rpc.Params) (any, error) {
	ids, err := hf.ParseRequestStatus(p.Input)
	if err != nil {
		return nil, err
	}
	return h.svc.GetRequestStatus(ids), nil
}

func (h *Handler) requestReturnMachines(_ context.Context, p rpc.Params) (any, error) {
	refs, err := hf.ParseReturnMachines(p.Input)
	if err != nil {
		return nil, err
	}
	return h.svc.RequestReturnMachines(providerName(p), refs)
}

// getReturnRequests lets the service look the hosts up as the document is
// scanned (hf.ScanGetReturnRequests: 10,000 hosts without a copy); a
// document the scan cannot read is parsed (or refused) by
// hf.ParseGetReturnRequests.
func (h *Handler) getReturnRequests(_ context.Context, p rpc.Params) (any, error) {
	input := p.Input
	out, ok := h.svc.GetReturnRequests(func(visit func(id, name []byte)) bool {
		_, ok := hf.ScanGetReturnRequests(input, visit)
		return ok
	})
	if ok {
		return out, nil
	}
	refs, err := hf.ParseGetReturnRequests(input)
	if err != nil {
		return nil, err
	}
	out, _ = h.svc.GetReturnRequests(service.HostRefs(refs))
	return out, nil
}

func (h *Handler) status(context.Context, rpc.Params) (any, error) {
	rep := h.svc.StatusReport()
	if h.opts.Status != nil {
		h.opts.Status(&rep)
	}
	return rep, nil
}

func (h *Handler) requests(_ context.Context, p rpc.Params) (any, error) {
	var a apitype.RequestsArgs
	if err := decodeArgs(p.Args, &a); err != nil {
		return nil, err
	}
	return h.svc.ListRequests(a.All), nil
}

func (h *Handler) machines(_ context.Context, p rpc.Params) (any, error) {
	var a apitype.MachinesArgs
	if err := decodeArgs(p.Args, &a); err != nil {
		return nil, err
	}
	return h.svc.ListMachines(a.Request, a.All)
}

func (h *Handler) show(_ context.Context, p rpc.Params) (any, error) {
	var a apitype.ShowArgs
	if err := decodeArgs(p.Args, &a); err != nil {
		return nil, err
	}
	return h.svc.Show(a.ID)
}

// adminMethod is an operator action: it gets who is calling.
type adminMethod func(ctx context.Context, p rpc.Params, who string) (any, error)

// admin lets only the operator (root, or a member of admin_groups) call
// m; the HF user (in the socket's group) may still make HF's calls and
// read.
func (h *Handler) admin(m adminMethod) method {
	return func(ctx context.Context, p rpc.Params) (any, error) {
		if h.opts.Caller == nil {
			return nil, rpc.Errorf(rpc.PermissionDenied, "permission denied: operator actions need ohfpd to know who is calling, and it cannot tell here")
		}
		who, ok := h.opts.Caller(ctx)
		if !ok {
			return nil, rpc.Errorf(rpc.PermissionDenied, "permission denied: %s is not an operator of ohfpd: only root and members of admin_groups (in the ohfpd configuration) may change what it does; HF's calls and the reading commands stay open", who)
		}
		return m(ctx, p, who)
	}
}

func (h *Handler) cancel(_ context.Context, p rpc.Params, who string) (any, error) {
	var a apitype.CancelArgs
	if err := decodeArgs(p.Args, &a); err != nil {
		return nil, err
	}
	if a.Request == "" {
		return nil, rpc.Errorf(rpc.InvalidInput, "cancel needs a request id")
	}
	return h.svc.Cancel(a.Request, a.Return, who)
}

func (h *Handler) operatorReturn(_ context.Context, p rpc.Params, who string) (any, error) {
	var a apitype.ReturnArgs
	if err := decodeArgs(p.Args, &a); err != nil {
		return nil, err
	}
	return h.svc.Return(a.Machines, a.Request, who)
}

func (h *Handler) drain(_ context.Context, p rpc.Params, who string) (any, error) {
	var a apitype.DrainArgs
	if err := decodeArgs(p.Args, &a); err != nil {
		return nil, err
	}
	if a.Template == "" {
		return nil, rpc.Errorf(rpc.InvalidInput, "drain needs a template id")
	}
	return h.svc.Drain(a.Provider, a.Template, who)
}

func (h *Handler) undrain(_ context.Context, p rpc.Params, who string) (any, error) {
	var a apitype.DrainArgs
	if err := decodeArgs(p.Args, &a); err != nil {
		return nil, err
	}
	if a.Template == "" {
		return nil, rpc.Errorf(rpc.InvalidInput, "undrain needs a template id")
	}
	return h.svc.Undrain(a.Provider, a.Template, who)
}

func (h *Handler) rearm(_ context.Context, p rpc.Params, who string) (any, error) {
	var a apitype.DrainArgs
	if err := decodeArgs(p.Args, &a); err != nil {
		return nil, err
	}
	if a.Template == "" {
		return nil, rpc.Errorf(rpc.InvalidInput, "rearm needs a template id")
	}
	return h.svc.Rearm(a.Provider, a.Template, who)
}

func (h *Handler) check(ctx context.Context, p rpc.Params, _ string) (any, error) {
	if h.opts.Check == nil {
		return nil, rpc.Errorf(rpc.Unavailable, "check is not available in this mode")
	}
	var a apitype.CheckArgs
	if err := decodeArgs(p.Args, &a); err != nil {
		return nil, err
	}
	return h.opts.Check(ctx, a)
}

func (h *Handler) reload(ctx context.Context, _ rpc.Params, who string) (any, error) {
	if h.opts.Reload == nil {
		return nil, rpc.Errorf(rpc.Unavailable, "reload is not available in this mode")
	}
	warnings, err := h.opts.Reload(ctx)
	if err != nil {
		return nil, rpc.Errorf(rpc.InvalidInput, "the new configuration was refused and the old one stays in force: %v", err)
	}
	msg := "configuration reloaded"
	if len(warnings) > 0 {
		msg += ", with " + english.Plural(len(warnings), "warning") + ":"
		for _, w := range warnings {
			msg += "\n  " + w
		}
	}
	return apitype.ReloadAnswer{Message: msg, Warnings: warnings}, nil
}

func decodeArgs(b json.RawMessage, v any) error {
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return rpc.Errorf(rpc.InvalidInput, "bad arguments: %v", err)
	}
	return nil
}

// Code is the one map from the core's errors to JSON-RPC codes: a refused
// HF document or argument is InvalidInput, an unknown id NotFound, a store
// that cannot record (or a call stopped before it finished) Unavailable,
// anything else Internal. An *rpc.Error passes as it is.
func Code(err error) *rpc.Error {
	var (
		re *rpc.Error
		ie *hf.InputError
		se *service.StoreError
		nf *service.NotFoundError
		rf *service.RefusedError
	)
	switch {
	case errors.As(err, &re):
		return re
	case errors.As(err, &ie):
		return rpc.Errorf(rpc.InvalidInput, "%s", ie.Error())
	case errors.As(err, &se):
		return rpc.Errorf(rpc.Unavailable, "%s", se.Error())
	case errors.As(err, &rf):
		return rpc.Errorf(rpc.InvalidInput, "%s", rf.Error())
	case errors.As(err, &nf):
		return rpc.Errorf(rpc.NotFound, "%s", nf.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return rpc.Errorf(rpc.Unavailable, "ohfpd stopped the call before it finished: %v", err)
	}
	return rpc.Errorf(rpc.Internal, "internal error: %v", err)
}

// clusterName is the clusterName= of LSF's SCRIPT_OPTIONS
// ("-DclusterName=cl1"), as IBM's plugins read it (hostProviders/aws:
// System.getProperty("clusterName"); awsv2: the word after clusterName=).
// "" when absent or not a plain name (it is exported to a shell script).
func clusterName(opts string) string {
	_, after, ok := strings.Cut(opts, "clusterName=")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(after, " ")
	for _, r := range name {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return ""
		}
	}
	return name
}
