package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// ibmTemplates is an HF provider folder's awsprov_templates.json as IBM's
// samples write it: typed attributes, blank fields, IBM-style userData.
const ibmTemplates = `{
    "templates": [
        {
            "templateId": "Template-VM-1",
            "maxNumber": 5,
            "attributes": {
                "type": ["String", "X86_64"],
                "ncpus": ["Numeric", "1"],
                "nram": ["Numeric", "4096"],
                "awshost": ["Boolean", "1"]
            },
            "imageId": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64",
            "subnetId": "",
            "vmType": "c5.large",
            "keyName": "",
            "securityGroupIds": [""],
            "instanceTags": "group=e2e",
            "userData": "zone=us_east_1a;rc_account=proj1"
        }
    ]
}`

// TestIBMProviderFolder is issue 15's "done when" through the binaries:
// ohfpd starts from an IBM-format HF provider folder (awsprov_config.json
// with IBM's keys, awsprov_templates.json; no YAML templates; the shipped
// user_data.sh beside the configuration), launches a template with IBM-style userData, and the
// instance receives user_data.sh with the variables exported at its
// %EXPORT_USER_DATA% line (read back from the simulated region with
// DescribeInstanceAttribute); AWS_TAG_InstanceID tags the instance and its
// volumes with its id; a template edited in the folder (as HF's GUI does)
// is served without a reload, and an edit that does not validate is
// refused while the last good templates stay served.
func TestIBMProviderFolder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hfDir := filepath.Join(e.dir, "conf", "providers", "awsinst")
	must(t, os.MkdirAll(hfDir, 0o755))
	script, err := os.ReadFile(filepath.Join("..", "..", "packaging", "user_data.sh"))
	must(t, err)
	// The shipped user_data.sh, where the package installs it: beside
	// the configuration (user_data_template's default).
	must(t, os.WriteFile(filepath.Join(e.dir, "user_data.sh"), script, 0o644))
	must(t, os.WriteFile(filepath.Join(hfDir, "awsprov_config.json"), []byte(fmt.Sprintf(`{
    "LogLevel": "INFO",
    "AWS_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": %q,
    "AWS_TAG_InstanceID": true,
    "AWS_SPOT_TERMINATE_ON_RECLAIM": false
}`, e.endpoint)), 0o644))
	tplFile := filepath.Join(hfDir, "awsprov_templates.json")
	must(t, os.WriteFile(tplFile, []byte(ibmTemplates), 0o644))
	// The YAML names the provider and HF's folder, nothing else of it.
	must(t, os.WriteFile(e.cfg, []byte(fmt.Sprintf(`socket: %s
state_dir: %s
cluster_id: e2e
reconcile:
  active_interval: 200ms
  idle_interval: 2s
providers:
  - name: awsinst
    hf_conf_dir: %s
`, e.sock, filepath.Join(e.dir, "state"), hfDir)), 0o600))
	must(t, os.Remove(filepath.Join(e.dir, "awsprov_templates.json"))) // newEnv's: not used
	e.plugin.Env = append(e.plugin.Env, "HF_PROVIDER_NAME=awsinst", "HF_PROVIDER_CONFDIR="+hfDir)
	e.start()

	if got := strings.Join(e.templateIDs(), ","); got != "Template-VM-1" {
		t.Fatalf("templates from the HF folder: %s", got)
	}
	id := e.request("Template-VM-1", 1)
	st := e.waitFinal(id).Requests[0]
	if st.Status != "complete" || len(st.Machines) != 1 {
		t.Fatalf("request: %+v", st)
	}
	iid := st.Machines[0].MachineID

	// The user data the instance received: user_data.sh with the exports
	// at its marker, the rest unchanged.
	attr, err := e.ec2.DescribeInstanceAttribute(context.Background(), &ec2.DescribeInstanceAttributeInput{
		InstanceId: aws.String(iid), Attribute: ec2types.InstanceAttributeNameUserData})
	must(t, err)
	got, err := base64.StdEncoding.DecodeString(aws.ToString(attr.UserData.Value))
	must(t, err)
	before, after, ok := strings.Cut(string(script), "%EXPORT_USER_DATA%")
	if !ok {
		t.Fatal("the shipped user_data.sh has no export marker line")
	}
	exports := "export zone=us_east_1a\nexport rc_account=proj1\nexport template_id=Template-VM-1\nexport providerName=awsinst"
	if want := before + exports + after; string(got) != want {
		t.Fatalf("user data the instance received:\n%s\nwant:\n%s", got, want)
	}

	// AWS_TAG_InstanceID: the instance and its volumes carry its id.
	deadline := time.Now().Add(20 * time.Second)
	for {
		dv, err := e.ec2.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{
			{Name: aws.String("attachment.instance-id"), Values: []string{iid}}}})
		must(t, err)
		tagged := len(dv.Volumes) > 0
		for _, v := range dv.Volumes {
			tagged = tagged && hasTag(v.Tags, "InstanceID", iid)
		}
		if ins := e.tagged(id); tagged && len(ins) == 1 && hasTag(ins[0].Tags, "InstanceID", iid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("InstanceID=%s never tagged on the instance and its volumes: %+v", iid, dv.Volumes)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// HF's GUI edits the template in the folder: served without a reload.
	edited := strings.Replace(ibmTemplates, `"maxNumber": 5`, `"maxNumber": 7`, 1)
	edited = strings.Replace(edited, `"templates": [`, `"templates": [
        {"templateId": "Template-Added", "maxNumber": 2,
         "attributes": {"type": ["String", "X86_64"], "ncpus": ["Numeric", "1"], "nram": ["Numeric", "2048"]},
         "imageId": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64", "vmType": "t3.small"},`, 1)
	must(t, os.WriteFile(tplFile, []byte(edited), 0o644))
	maxOf := func() map[string]int {
		var tr struct {
			Templates []struct {
				TemplateID string `json:"templateId"`
				MaxNumber  int    `json:"maxNumber"`
			} `json:"templates"`
		}
		e.call("getAvailableTemplates", map[string]any{}, &tr)
		out := map[string]int{}
		for _, t := range tr.Templates {
			out[t.TemplateID] = t.MaxNumber
		}
		return out
	}
	deadline = time.Now().Add(20 * time.Second)
	for m := maxOf(); m["Template-VM-1"] != 7 || m["Template-Added"] != 2; m = maxOf() {
		if time.Now().After(deadline) {
			t.Fatalf("the edited folder is not served: %v", m)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// An edit that does not validate: refused and logged, the last good
	// templates stay served.
	must(t, os.WriteFile(tplFile, []byte(strings.Replace(edited, `"vmType": "t3.small"`, `"vmTyp": "t3.small"`, 1)), 0o644))
	deadline = time.Now().Add(20 * time.Second)
	for !strings.Contains(e.log.String(), "vmTyp") {
		if time.Now().After(deadline) {
			t.Fatal("the bad edit was never looked at (no refusal in the log)")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if m := maxOf(); len(m) != 2 || m["Template-VM-1"] != 7 || m["Template-Added"] != 2 {
		t.Fatalf("after a refused edit: %v", m)
	}
	// Launching from the still-served template works.
	if st := e.waitFinal(e.request("Template-Added", 1)).Requests[0]; st.Status != "complete" {
		t.Fatalf("request after the refused edit: %+v", st)
	}
}

func hasTag(tags []ec2types.Tag, k, v string) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == k && aws.ToString(t.Value) == v {
			return true
		}
	}
	return false
}
