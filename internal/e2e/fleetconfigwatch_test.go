package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestFleetConfigFileWatched (adversarial round 2 on issue 15, N4),
// through the binaries: the ec2FleetConfig file a template names is
// watched like the templates file. It first names a launch template that
// does not exist; fixed in place (as a site does in HF's folder), the fix
// is picked up without SIGHUP and a request launches; an edit that does
// not validate is refused and logged, and the last good one stays in use.
func TestFleetConfigFileWatched(t *testing.T) {
	t.Parallel()
	tpls := `{"templates": [
  {"templateId": "LSF-Fleet", "maxNumber": 4,
   "attributes": {"type": ["String", "X86_64"], "ncpus": ["Numeric", "2"], "nram": ["Numeric", "4096"]},
   "imageId": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64",
   "ec2FleetConfig": "ec2fleet.json", "onDemandTargetCapacityRatio": 1.0}
]}`
	e := newEnvWith(t, tpls, "")
	lt, err := e.ec2.CreateLaunchTemplate(context.Background(), &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("lsf-fleet"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{InstanceType: ec2types.InstanceTypeC5Large},
	})
	must(t, err)
	ltID := aws.ToString(lt.LaunchTemplate.LaunchTemplateId)
	fleet := func(id, typ string) []byte {
		return []byte(`{"LaunchTemplateConfigs": [{"LaunchTemplateSpecification": {"LaunchTemplateId": "` + id + `", "Version": "1"},
  "Overrides": [{"InstanceType": "c5.large"}]}],
 "TargetCapacitySpecification": {"TotalTargetCapacity": $LSF_TOTAL_TARGET_CAPACITY, "OnDemandTargetCapacity": $LSF_ONDEMAND_TARGET_CAPACITY,
  "SpotTargetCapacity": $LSF_SPOT_TARGET_CAPACITY, "DefaultTargetCapacityType": "on-demand"},
 "Type": "` + typ + `"}`)
	}
	fleetFile := filepath.Join(e.dir, "ec2fleet.json")
	must(t, os.WriteFile(fleetFile, fleet("lt-0123456789abcdef0", "instant"), 0o600)) // no such launch template
	e.start()
	// ohfpd's watcher takes its first look at the files once ohfpd
	// serves, and polls every 3 s: let it see the first file.
	time.Sleep(4 * time.Second)

	// The site fixes the launch template id in the file: no SIGHUP.
	must(t, os.WriteFile(fleetFile, fleet(ltID, "instant"), 0o600))
	e.until("the fleet file's change reloaded", 20*time.Second, func() bool {
		return strings.Contains(e.logText(), `msg="configuration reloaded"`)
	})
	st := e.waitFinal(e.request("LSF-Fleet", 1)).Requests[0]
	if st.Status != "complete" || len(st.Machines) != 1 {
		t.Fatalf("request after the fleet file was fixed: %+v", st)
	}

	// An edit that does not validate: refused and logged, naming what is
	// wrong; the last good file stays in use.
	must(t, os.WriteFile(fleetFile, fleet(ltID, "sometimes"), 0o600))
	e.until("the bad fleet file refused in the log", 20*time.Second, func() bool {
		return strings.Contains(e.logText(), `\"sometimes\" is not instant, request or maintain`) ||
			strings.Contains(e.logText(), `"sometimes" is not instant, request or maintain`)
	})
	if n := strings.Count(e.logText(), `msg="configuration reloaded"`); n != 1 {
		t.Fatalf("%d reloads logged, want 1 (the bad file must be refused):\n%s", n, e.logText())
	}
	if st := e.waitFinal(e.request("LSF-Fleet", 1)).Requests[0]; st.Status != "complete" || len(st.Machines) != 1 {
		t.Fatalf("request after the refused edit: %+v", st)
	}
}
