package hf

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// Seeds live in testdata/fuzz/<FuzzName>/ so plain `go test` runs them.

// checkErr asserts what every refusal must look like.
func checkErr(t *testing.T, op string, err error) {
	t.Helper()
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Fatalf("error %T is not an *InputError: %v", err, err)
	}
	msg := err.Error()
	if ie.Op != op || !strings.HasPrefix(msg, op+": ") || len(msg) <= len(op)+2 {
		t.Fatalf("error %q does not name %s", msg, op)
	}
	if !utf8.ValidString(msg) {
		t.Fatalf("error message is not UTF-8: %q", msg)
	}
}

// checkAccepted asserts what every accepted document must be.
func checkAccepted(t *testing.T, data []byte) {
	t.Helper()
	if !json.Valid(data) || !utf8.Valid(data) || len(data) > MaxInputBytes {
		t.Fatalf("accepted a document that is not valid JSON within limits: %q", data)
	}
}

func FuzzParseRequestMachines(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseRequestMachines(data)
		if err != nil {
			checkErr(t, OpRequestMachines, err)
			return
		}
		checkAccepted(t, data)
		if !ValidTemplateID(got.TemplateID) || got.MachineCount < 1 || got.MachineCount > MaxMachineCount {
			t.Fatalf("accepted out-of-range values %+v from %q", got, data)
		}
		canon, _ := json.Marshal(map[string]any{"template": got})
		again, err := ParseRequestMachines(canon)
		if err != nil || again != got {
			t.Fatalf("re-parse of %s gave %+v, %v", canon, again, err)
		}
	})
}

func FuzzParseRequestStatus(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseRequestStatus(data)
		if err != nil {
			checkErr(t, OpGetRequestStatus, err)
			return
		}
		checkAccepted(t, data)
		items := make([]map[string]string, len(got))
		for i, id := range got {
			if id == "" || len(id) > MaxIDLength || strings.ContainsAny(id, "\x00\n\r\t") {
				t.Fatalf("accepted bad id %q", id)
			}
			items[i] = map[string]string{"requestId": id}
		}
		canon, _ := json.Marshal(map[string]any{"requests": items})
		again, err := ParseRequestStatus(canon)
		if err != nil || strings.Join(again, "\x00") != strings.Join(got, "\x00") {
			t.Fatalf("re-parse of %s gave %q, %v", canon, again, err)
		}
	})
}

func fuzzMachines(t *testing.T, op string, parse func([]byte) ([]MachineRef, error), data []byte) {
	got, err := parse(data)
	if err != nil {
		checkErr(t, op, err)
		return
	}
	checkAccepted(t, data)
	if got == nil {
		t.Fatal("nil list accepted; want an empty list")
	}
	for _, m := range got {
		if m.Name == "" && m.MachineID == "" {
			t.Fatalf("accepted a machine with neither id nor name from %q", data)
		}
	}
	canon, _ := json.Marshal(map[string]any{"machines": got})
	again, err := parse(canon)
	if err != nil || len(again) != len(got) {
		t.Fatalf("re-parse of %s gave %+v, %v", canon, again, err)
	}
	for i := range got {
		if again[i] != got[i] {
			t.Fatalf("re-parse of %s changed [%d]: %+v", canon, i, again[i])
		}
	}
}

func FuzzParseReturnMachines(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzMachines(t, OpRequestReturnMachines, ParseReturnMachines, data)
	})
}

func FuzzParseGetReturnRequests(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzMachines(t, OpGetReturnRequests, ParseGetReturnRequests, data)
	})
}

func FuzzParseGetAvailableTemplates(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := ParseGetAvailableTemplates(data); err != nil {
			checkErr(t, OpGetAvailableTemplates, err)
			return
		}
		checkAccepted(t, data)
	})
}
