package ibmstate

import (
	"os"
	"strings"
	"testing"
	"time"
)

// Both of IBM's plugin generations' state files, written as their code
// writes them (hostProviders/aws AwsUtil.saveToFile with Jackson's
// defaults; hostProviders/awsv2 db_manager.py).
func TestParseIBMStateFiles(t *testing.T) {
	java, err := os.ReadFile("testdata/java-aws-db.json")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(java)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Requests) != 2 || f.Requests[0].ID != "r-0f1e2d3c4b5a69788" || f.Requests[0].TemplateID != "Template-VM-1" ||
		!f.Requests[0].Created.Equal(time.Unix(1764525600, 0)) || len(f.Requests[0].Machines) != 2 || len(f.Requests[1].Machines) != 0 {
		t.Fatalf("java: %+v", f)
	}
	m := f.Requests[0].Machines[1]
	if m.ID != "i-0e90ecb3228822f6f" || m.Name != "ip-10-0-57-7.ec2.internal" || m.ReturnID != "ret-6a1f0f3e-3a5b-4b6e-9d43-0c1d2e3f4a5b" || !m.LaunchTime.Equal(time.Unix(1764525601, 0)) {
		t.Errorf("java machine: %+v", m)
	}
	if got := f.Returns(); len(got) != 1 || got[0] != m.ReturnID {
		t.Errorf("java returns: %v", got)
	}

	py, err := os.ReadFile("testdata/python-aws-db.json")
	if err != nil {
		t.Fatal(err)
	}
	f, err = Parse(py)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Requests) != 2 || f.Requests[0].ID != "dir-4242-1764525600" || len(f.Requests[0].Machines) != 2 {
		t.Fatalf("python: %+v", f)
	}
	if m := f.Requests[0].Machines[1]; m.ReturnID != "remove-4343-1764529200" || m.Result != "succeed" {
		t.Errorf("python machine: %+v", m)
	}
	if m := f.Requests[0].Machines[0]; m.ReturnID != "" || m.Status != "pending" {
		t.Errorf("python pending machine: %+v", m)
	}
	if ids := f.InstanceIDs(); len(ids) != 2 {
		t.Errorf("ids %v", ids)
	}
}

func TestParseRefusesWhatIsNotIBMs(t *testing.T) {
	cases := map[string]string{
		`{"templates": []}`: `no "requests" list`,
		`{"requests": [`:    "not JSON",
		`[1,2]`:             "not IBM's state file",
		`{"requests": [{"requestId": "", "machines": []}]}`:                          `requestId ""`,
		`{"requests": [{"requestId": "r-1", "machines": [{"machineId": "host1"}]}]}`: `machineId "host1" is not an EC2 instance id`,
		`{"requests": [{"requestId": "r-1"}, {"requestId": "r-1"}]}`:                 "appears twice",
		`{"requests": [{"requestId": "r-1", "machines": [{"machineId": "i-0123456789abcdef0"}]}, {"requestId": "r-2", "machines": [{"machineId": "i-0123456789abcdef0"}]}]}`: "also in request r-1",
		`{"requests": [{"requestId": "r-1", "machines": [{"machineId": "i-0123456789abcdef0", "retId": "bad id; rm"}]}]}`:                                                    "return id",
	}
	for in, want := range cases {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
	if f, err := Parse([]byte(`{"requests": []}`)); err != nil || len(f.Requests) != 0 {
		t.Errorf("empty file: %+v %v", f, err)
	}
}

func TestIsReturnID(t *testing.T) {
	for id, want := range map[string]bool{
		"remove-4242-1734619942":                   true,
		"ret-6f1c2a3b-1111-4111-8111-111111111111": true,  // Java: UUID v4
		"ret-01a22dde-0027-7669-88ca-5661f3cb05a8": false, // ohfp's own: v7
		"remove-x-1": false,
		"req-6f1c2a3b-1111-4111-8111-111111111111": false,
		"dir-4242-1734619942":                      false,
	} {
		if got := IsReturnID(id); got != want {
			t.Errorf("IsReturnID(%q) = %v, want %v", id, got, want)
		}
	}
}
