package hf

import (
	"strings"
	"testing"
)

// BenchmarkParseLargeStatus parses a getRequestStatus near the size limit.
func BenchmarkParseLargeStatus(b *testing.B) {
	item := `{"requestId": "req-3f2a1b9c-0000-4000-8000-000000000001"},`
	n := (MaxInputBytes - 32) / len(item)
	in := []byte(`{"requests": [` + strings.Repeat(item, n-1) + item[:len(item)-1] + `]}`)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := ParseRequestStatus(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseRequestMachines parses the common small document.
func BenchmarkParseRequestMachines(b *testing.B) {
	in := []byte(`{"template":{"templateId":"OnDemand-c5","machineCount":3}}`)
	for b.Loop() {
		if _, err := ParseRequestMachines(in); err != nil {
			b.Fatal(err)
		}
	}
}
