package hf

import (
	"encoding/json"
	"fmt"
	"testing"
)

// machinesDoc is a getReturnRequests (or requestReturnMachines) input
// listing n machines as HF writes it.
func machinesDoc(n int) []byte {
	type ref struct {
		Name      string `json:"name"`
		MachineID string `json:"machineId"`
	}
	refs := make([]ref, n)
	for i := range refs {
		refs[i] = ref{Name: fmt.Sprintf("ip-10-%d-%d-%d.ec2.internal", i>>16, (i>>8)&255, i&255), MachineID: fmt.Sprintf("i-%017x", i+1)}
	}
	b, err := json.Marshal(map[string]any{"machines": refs})
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkParseGetReturnRequests10k parses getReturnRequests with 10,000
// machines: what the daemon does for every such call.
func BenchmarkParseGetReturnRequests10k(b *testing.B) {
	in := machinesDoc(10000)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		refs, err := ParseGetReturnRequests(in)
		if err != nil || len(refs) != 10000 {
			b.Fatal(len(refs), err)
		}
	}
}

// BenchmarkValidateGetReturnRequests10k is the client's check of the same
// document before it forwards it.
func BenchmarkValidateGetReturnRequests10k(b *testing.B) {
	in := machinesDoc(10000)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(OpGetReturnRequests, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnmarshalTyped10k is the baseline: encoding/json into typed
// structs, without ohfp's checks (duplicate keys, depth, NULs, messages).
func BenchmarkUnmarshalTyped10k(b *testing.B) {
	in := machinesDoc(10000)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		var v struct {
			Machines []MachineRef `json:"machines"`
		}
		if err := json.Unmarshal(in, &v); err != nil || len(v.Machines) != 10000 {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseRequestStatus100 parses getRequestStatus with 100 ids.
func BenchmarkParseRequestStatus100(b *testing.B) {
	reqs := make([]map[string]string, 100)
	for i := range reqs {
		reqs[i] = map[string]string{"requestId": fmt.Sprintf("req-3f2a1b9c-0000-4000-8000-%012d", i)}
	}
	in, _ := json.Marshal(map[string]any{"requests": reqs})
	b.ReportAllocs()
	for b.Loop() {
		if ids, err := ParseRequestStatus(in); err != nil || len(ids) != 100 {
			b.Fatal(err)
		}
	}
}
