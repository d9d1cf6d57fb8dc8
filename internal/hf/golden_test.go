package hf

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ohfp/ohfp/internal/template"
)

var update = flag.Bool("update", false, "rewrite the golden .out.json files under testdata/golden")

// parseGolden parses in as op's input and renders the outcome as the JSON
// the golden files hold: {"parsed": ...} or {"error": "..."}.
func parseGolden(op string, in []byte) ([]byte, error) {
	var parsed any
	var err error
	switch op {
	case OpGetAvailableTemplates:
		err = ParseGetAvailableTemplates(in)
		parsed = struct{}{}
	case OpRequestMachines:
		parsed, err = ParseRequestMachines(in)
	case OpGetRequestStatus:
		var ids []string
		ids, err = ParseRequestStatus(in)
		parsed = map[string]any{"requestIds": ids}
	case OpRequestReturnMachines:
		parsed, err = ParseReturnMachines(in)
	case OpGetReturnRequests:
		parsed, err = ParseGetReturnRequests(in)
	default:
		return nil, errors.New("unknown operation " + op)
	}
	out := map[string]any{"parsed": parsed}
	if err != nil {
		out = map[string]any{"error": err.Error()}
	}
	b, merr := json.MarshalIndent(out, "", "  ")
	return append(b, '\n'), merr
}

// TestGoldenInputs parses every testdata/golden/<op>.<case>.in.json and
// compares the outcome with <op>.<case>.out.json.
func TestGoldenInputs(t *testing.T) {
	ins, err := filepath.Glob("testdata/golden/*.in.json")
	if err != nil || len(ins) < 10 {
		t.Fatalf("golden inputs: %d files, %v", len(ins), err)
	}
	for _, in := range ins {
		base := strings.TrimSuffix(filepath.Base(in), ".in.json")
		op, _, _ := strings.Cut(base, ".")
		t.Run(base, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseGolden(op, data)
			if err != nil {
				t.Fatal(err)
			}
			compareGolden(t, strings.TrimSuffix(in, ".in.json")+".out.json", got)
		})
	}
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func str(s string) *string { return &s }

// TestGoldenReplies renders each reply type as HF reads it, the contract's
// documented examples among them.
func TestGoldenReplies(t *testing.T) {
	tmpl := template.Template{
		TemplateID: "OnDemand-c5",
		MaxNumber:  20,
		Attributes: template.Attributes{
			{Name: "type", Type: "String", Value: "X86_64"},
			{Name: "ncpus", Type: "Numeric", Value: "2"},
			{Name: "nram", Type: "Numeric", Value: "4096"},
		},
		ImageID:      "ami-0123456789abcdef0",
		VMType:       "c5.large",
		PriceType:    "ondemand",
		InstanceTags: "team=hpc",
	}
	replies := map[string]any{
		"getAvailableTemplates": TemplatesReply{
			Message:   "1 template",
			Templates: []TemplateOut{{Template: tmpl, AvailableNumber: 17}},
		},
		"getAvailableTemplates.none": TemplatesReply{Message: "no templates configured"},
		"requestMachines": RequestReply{
			RequestID: "req-3f2a1b9c-0000-4000-8000-000000000001",
			Message:   "Request VM from AWS successful.",
		},
		"getRequestStatus": StatusReply{Requests: []RequestStatus{
			{
				RequestID: "req-3f2a1b9c-0000-4000-8000-000000000001",
				Status:    StatusRunning,
				Message:   "",
				Machines: []Machine{{
					MachineID:        "i-0721bb06651cad7f1",
					Name:             "ip-10-0-57-22.ec2.internal",
					Result:           ResultSucceed,
					Status:           "running",
					PrivateIPAddress: str("10.0.57.22"),
					PublicIPAddress:  nil,
					LaunchTime:       1734619942,
					Message:          "",
					InstanceType:     "c5.large",
					PriceType:        "ondemand",
					InstanceTags:     "k=v;k2=v2",
					CloudHostID:      nil,
				}},
			},
			{
				RequestID: "req-unknown",
				Status:    StatusCompleteWithError,
				Message:   "ohfp does not know request req-unknown",
			},
		}},
		"getRequestStatus.none":      StatusReply{},
		"getReturnRequests":          ReturnRequestsReply{Message: "", Requests: []ReturnRequest{{Machine: "ip-10-0-57-7.ec2.internal", GracePeriod: 95}, {Machine: "ip-10-0-57-8.ec2.internal", GracePeriod: 0}}},
		"getReturnRequests.none":     ReturnRequestsReply{Message: "no machine is being reclaimed"},
		"requestReturnMachines":      RequestReply{RequestID: "ret-6c0a7e2d-0000-4000-8000-000000000002", Message: "Delete VM success."},
		"requestReturnMachines.fail": ErrorReply{Message: "requestReturnMachines: machines is empty"},
	}
	for name, r := range replies {
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			compareGolden(t, "testdata/golden/reply."+name+".out.json", append(got, '\n'))
		})
	}
}

// TestReplyShapes checks properties of the replies that HF depends on,
// independent of the golden files.
func TestReplyShapes(t *testing.T) {
	b, err := json.Marshal(StatusReply{Requests: []RequestStatus{{RequestID: "r", Status: StatusRunning}}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"machines":[]`)) {
		t.Errorf("machines not an empty list: %s", b)
	}
	b, _ = json.Marshal(Machine{MachineID: "i-1", PrivateIPAddress: StringPtr("")})
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"privateIpAddress", "publicIpAddress", "cloudHostId"} {
		if v, ok := m[k]; !ok || v != nil {
			t.Errorf("%s = %v (present %v), want null", k, v, ok)
		}
	}
	if _, ok := m["launchtime"].(float64); !ok {
		t.Errorf("launchtime not a number: %s", b)
	}
	b, _ = json.Marshal(TemplatesReply{Templates: []TemplateOut{{Template: template.Template{TemplateID: "t", MaxNumber: -1}, AvailableNumber: 5}}})
	var tr struct {
		Templates []map[string]any `json:"templates"`
	}
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.Templates) != 1 || tr.Templates[0]["templateId"] != "t" || tr.Templates[0]["availableNumber"] != 5.0 || tr.Templates[0]["maxNumber"] != -1.0 {
		t.Errorf("template not flat: %s", b)
	}
	if _, ok := tr.Templates[0]["attributes"].(map[string]any); !ok {
		t.Errorf("attributes not an object: %s", b)
	}
}
