package service

import (
	"strings"
	"testing"

	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/state"
	"github.com/ohfp/ohfp/internal/template"
)

// TestAttributesIBMMeaning: filled-in ncpus is the physical cores on a
// hyper-threaded type (IBM: half the vCPUs), the vCPUs when the type gives
// no cores or one thread per core; a template whose type is not known yet
// and that lacks type, ncpus or nram is withheld with a reason, never
// shown with attributes missing.
func TestAttributesIBMMeaning(t *testing.T) {
	sv := New(&state.State{TypeInfo: map[string]provider.InstanceTypeInfo{
		"c5.large":   {Name: "c5.large", VCPUs: 2, Cores: 1, MemoryMiB: 4096, Arch: "x86_64"},
		"m7g.xlarge": {Name: "m7g.xlarge", VCPUs: 4, Cores: 4, MemoryMiB: 16384, Arch: "arm64"},
		"t3.micro":   {Name: "t3.micro", VCPUs: 2, MemoryMiB: 1024, Arch: "x86_64"},
	}}, nil)
	for _, c := range []struct {
		tpl  template.Template
		want string
	}{
		{template.Template{TemplateID: "ht", VMType: "c5.large"}, `{"type":["String","X86_64"],"ncpus":["Numeric","1"],"nram":["Numeric","4096"]}`},
		{template.Template{TemplateID: "arm", VMType: "m7g.xlarge"}, `{"type":["String","ARM64"],"ncpus":["Numeric","4"],"nram":["Numeric","16384"]}`},
		{template.Template{TemplateID: "nocores", VMType: "t3.micro"}, `{"type":["String","X86_64"],"ncpus":["Numeric","2"],"nram":["Numeric","1024"]}`},
		{template.Template{TemplateID: "given", VMType: "c5.large", Attributes: template.Attributes{{Name: "ncpus", Type: "Numeric", Value: "2"}}},
			`{"ncpus":["Numeric","2"],"type":["String","X86_64"],"nram":["Numeric","4096"]}`},
	} {
		attrs, why := sv.attributesLocked(&c.tpl)
		b, _ := attrs.MarshalJSON()
		if why != "" || string(b) != c.want {
			t.Errorf("%s: %s (%q), want %s", c.tpl.TemplateID, b, why, c.want)
		}
	}
	// Unknown type, attributes missing: withheld with a reason.
	if _, why := sv.attributesLocked(&template.Template{TemplateID: "new", VMType: "c7i.large"}); !strings.Contains(why, "type, ncpus, nram of c7i.large not known yet") {
		t.Errorf("unknown type: why = %q", why)
	}
	// Unknown type, attributes all given: shown as written.
	full := template.Template{TemplateID: "full", VMType: "c7i.large", Attributes: template.Attributes{
		{Name: "type", Type: "String", Value: "X86_64"}, {Name: "ncpus", Type: "Numeric", Value: "1"}, {Name: "nram", Type: "Numeric", Value: "4096"}}}
	if attrs, why := sv.attributesLocked(&full); why != "" || len(attrs) != 3 {
		t.Errorf("full attributes: %v %q", attrs, why)
	}
}

// TestAttributesTypeRefused: a type AWS refused (InvalidInstanceType) is
// named as refused, with what to do, not as a lookup still pending; a
// lookup that failed otherwise says how.
func TestAttributesTypeRefused(t *testing.T) {
	sv := New(&state.State{TypeInfo: map[string]provider.InstanceTypeInfo{}, TypeErr: map[string]error{
		"c5.nosuch": &provider.Error{Op: "DescribeInstanceTypes", Code: "InvalidInstanceType", Kind: provider.Fatal, Message: "instance type c5.nosuch is not offered in this region"},
		"c6i.large": &provider.Error{Op: "DescribeInstanceTypes", Code: "RequestLimitExceeded", Kind: provider.Throttled, Message: "Request limit exceeded."},
	}}, nil)
	_, why := sv.attributesLocked(&template.Template{TemplateID: "bad", VMType: "c5.nosuch"})
	if !strings.Contains(why, "AWS refused instance type c5.nosuch") || !strings.Contains(why, "InvalidInstanceType") || !strings.Contains(why, "fix vmType") || strings.Contains(why, "not known yet") {
		t.Errorf("refused type: why = %q", why)
	}
	_, why = sv.attributesLocked(&template.Template{TemplateID: "slow", VMType: "c6i.large"})
	if !strings.Contains(why, "DescribeInstanceTypes failed") || !strings.Contains(why, "RequestLimitExceeded") {
		t.Errorf("throttled lookup: why = %q", why)
	}
}
