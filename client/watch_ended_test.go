package main

import (
	"strings"
	"testing"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/hf"
)

// A finished request whose machines were returned and terminated does
// not read as if they were running (issue 18, finding 10).
func TestProgressSaysMachinesEnded(t *testing.T) {
	s := apitype.Shown{Request: &apitype.Request{ID: "req-1", Kind: "acquire", Units: 2}, Status: &hf.RequestStatus{
		RequestID: "req-1", Status: hf.StatusComplete, Machines: []hf.Machine{
			{MachineID: "i-1", Result: hf.ResultSucceed, Status: "terminated"},
			{MachineID: "i-2", Result: hf.ResultSucceed, Status: "running"},
		}}}
	if got := progress("req-1", s, nil); !strings.HasSuffix(got, "  1 since ended") {
		t.Fatalf("progress = %q", got)
	}
}
