package engine

import (
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/service"
)

// Env is the HF environment of a call, as the tests give it.
type Env map[string]string

// raw calls the engine with HF's documents, parsed as package api parses
// them, so the tests keep speaking HF's bytes.
type raw struct{ e *Engine }

func (r raw) GetAvailableTemplates(env Env, input []byte) (hf.TemplatesReply, error) {
	if err := hf.ParseGetAvailableTemplates(input); err != nil {
		return hf.TemplatesReply{}, err
	}
	return r.e.GetAvailableTemplates(env["HF_PROVIDER_NAME"])
}

func (r raw) RequestMachines(env Env, input []byte) (hf.RequestReply, error) {
	in, err := hf.ParseRequestMachines(input)
	if err != nil {
		return hf.RequestReply{}, err
	}
	return r.e.RequestMachines(env["HF_PROVIDER_NAME"], in)
}

func (r raw) RequestMachinesHeld(env Env, input []byte) (hf.RequestReply, func(bool), error) {
	in, err := hf.ParseRequestMachines(input)
	if err != nil {
		return hf.RequestReply{}, nil, err
	}
	return r.e.RequestMachinesHeld(env["HF_PROVIDER_NAME"], in)
}

func (r raw) GetRequestStatus(_ Env, input []byte) (hf.StatusReply, error) {
	ids, err := hf.ParseRequestStatus(input)
	if err != nil {
		return hf.StatusReply{}, err
	}
	return r.e.GetRequestStatus(ids), nil
}

func (r raw) RequestReturnMachines(env Env, input []byte) (hf.RequestReply, error) {
	refs, err := hf.ParseReturnMachines(input)
	if err != nil {
		return hf.RequestReply{}, err
	}
	return r.e.RequestReturnMachines(env["HF_PROVIDER_NAME"], refs)
}

func (r raw) GetReturnRequests(_ Env, input []byte) (hf.ReturnRequestsReply, error) {
	out, ok := r.e.GetReturnRequests(func(visit func(id, name []byte)) bool {
		_, ok := hf.ScanGetReturnRequests(input, visit)
		return ok
	})
	if ok {
		return out, nil
	}
	refs, err := hf.ParseGetReturnRequests(input)
	if err != nil {
		return hf.ReturnRequestsReply{}, err
	}
	out, _ = r.e.GetReturnRequests(service.HostRefs(refs))
	return out, nil
}

func hfraw(e *Engine) raw { return raw{e} }
