package awssim

import (
	"fmt"
	"strconv"
	"strings"
)

func (r *Region) registerSSM() {
	r.ssm["GetParameter"] = r.ssmGetParameter
	r.ssm["GetParameters"] = r.ssmGetParameters
}

type ssmParamJSON struct {
	ARN              string  `json:"ARN"`
	DataType         string  `json:"DataType"`
	LastModifiedDate float64 `json:"LastModifiedDate"`
	Name             string  `json:"Name"`
	Selector         string  `json:"Selector,omitempty"`
	Type             string  `json:"Type"`
	Value            string  `json:"Value"`
	Version          int64   `json:"Version"`
}

// lookupParam resolves a parameter name with an optional :version selector.
func (r *Region) lookupParam(name string) (*ssmParamJSON, bool) {
	base, sel := name, ""
	if i := strings.LastIndexByte(name, ':'); i > 0 {
		base, sel = name[:i], name[i:]
	}
	p := r.params[base]
	if p == nil {
		return nil, false
	}
	if sel != "" {
		v, err := strconv.ParseInt(sel[1:], 10, 64)
		if err != nil || v != p.version {
			return nil, false
		}
	}
	return &ssmParamJSON{
		ARN:      fmt.Sprintf("arn:aws:ssm:%s::parameter%s", r.name, p.name),
		DataType: "text", LastModifiedDate: float64(p.modified.UnixMilli()) / 1000,
		Name: p.name, Selector: sel, Type: p.typ, Value: p.value, Version: p.version,
	}, true
}

func (r *Region) ssmGetParameter(c *call) (any, error) {
	var in struct {
		Name           *string
		WithDecryption bool
	}
	if err := c.decodeJSON(&in); err != nil {
		return nil, err
	}
	if in.Name == nil || *in.Name == "" {
		return nil, &APIError{Code: "ValidationException", Message: "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null", Status: 400}
	}
	p, ok := r.lookupParam(*in.Name)
	if !ok {
		return nil, &APIError{Code: "ParameterNotFound", Message: fmt.Sprintf("Parameter %s not found.", *in.Name), Status: 400}
	}
	return map[string]any{"Parameter": p}, nil
}

func (r *Region) ssmGetParameters(c *call) (any, error) {
	var in struct {
		Names          []string
		WithDecryption bool
	}
	if err := c.decodeJSON(&in); err != nil {
		return nil, err
	}
	if len(in.Names) == 0 {
		return nil, &APIError{Code: "ValidationException", Message: "1 validation error detected: Value null at 'names' failed to satisfy constraint: Member must not be null", Status: 400}
	}
	if len(in.Names) > 10 {
		return nil, &APIError{Code: "ValidationException", Message: fmt.Sprintf("1 validation error detected: Value '%v' at 'names' failed to satisfy constraint: Member must have length less than or equal to 10", in.Names), Status: 400}
	}
	out := struct {
		Parameters        []*ssmParamJSON
		InvalidParameters []string
	}{Parameters: []*ssmParamJSON{}, InvalidParameters: []string{}}
	for _, n := range in.Names {
		if p, ok := r.lookupParam(n); ok {
			out.Parameters = append(out.Parameters, p)
		} else {
			out.InvalidParameters = append(out.InvalidParameters, n)
		}
	}
	return out, nil
}
