package e2e

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ohfp/ohfp/internal/hfdriver"
)

// TestLSFAccountAndCluster: LSF's resource connector gives rc_account in
// requestMachines and clusterName in SCRIPT_OPTIONS; as IBM's plugins
// (AwsUtil.getEncodedUserData, example_user_data.sh) the host's user data
// exports rc_account and clustername at the marker of the shipped
// user_data.sh, and the instances are tagged RC_ACCOUNT. ohfpd is
// restarted between the answer and HF's first status question, so the
// values come from the stored request, not from memory. A request without
// rc_account exports and tags neither.
func TestLSFAccountAndCluster(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, templatesJSON, "    user_data_template: user_data.sh\n")
	script, err := os.ReadFile(filepath.Join("..", "..", "packaging", "user_data.sh"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(e.dir, "user_data.sh"), script, 0o644))
	e.plugin.Env = append(e.plugin.Env, "SCRIPT_OPTIONS=-Xmx64m -DclusterName=lsfcl1 -Dother=x")
	e.start()

	var rep hfdriver.RequestReply
	e.call("requestMachines", map[string]any{"rc_account": "projX",
		"template": map[string]any{"templateId": "OnDemand-c5", "machineCount": 1}}, &rep)
	must(t, e.daemon.Stop(10*time.Second))
	e.start()
	st := e.waitFinal(rep.RequestID).Requests[0]
	if st.Status != "complete" || len(st.Machines) != 1 {
		t.Fatalf("request: %+v", st)
	}
	before, after, _ := strings.Cut(string(script), "%EXPORT_USER_DATA%")
	want := before + "export rc_account='projX'\nexport template_id=OnDemand-c5\nexport clustername='lsfcl1'\nexport providerName=aws" + after
	if got := e.userData(st.Machines[0].MachineID); got != want {
		t.Fatalf("user data:\n%s\nwant:\n%s", got, want)
	}
	if ins := e.tagged(rep.RequestID); len(ins) != 1 || !hasTag(ins[0].Tags, "RC_ACCOUNT", "projX") {
		t.Fatalf("RC_ACCOUNT=projX not tagged: %+v", ins)
	}

	// Without rc_account and SCRIPT_OPTIONS: neither.
	e.plugin.Env = e.plugin.Env[:len(e.plugin.Env)-1]
	id := e.request("OnDemand-c5", 1)
	st = e.waitFinal(id).Requests[0]
	want = before + "export template_id=OnDemand-c5\nexport providerName=aws" + after
	if got := e.userData(st.Machines[0].MachineID); got != want {
		t.Fatalf("user data without rc_account:\n%s", got)
	}
	for _, tg := range e.tagged(id)[0].Tags {
		if aws.ToString(tg.Key) == "RC_ACCOUNT" {
			t.Fatalf("tagged RC_ACCOUNT without rc_account: %+v", tg)
		}
	}

	// An rc_account that is not a string is refused, with what to do.
	res, err := e.plugin.Raw(context.Background(), "requestMachines", []byte(`{"rc_account": 7, "template": {"templateId": "OnDemand-c5", "machineCount": 1}}`))
	must(t, err)
	if res.Exit != 1 || !strings.Contains(string(res.Stdout), "rc_account must be a string") {
		t.Fatalf("rc_account 7: exit %d, %s %s", res.Exit, res.Stdout, res.Stderr)
	}
}

// userData is the user data the simulated region holds for an instance.
func (e *env) userData(iid string) string {
	e.t.Helper()
	attr, err := e.ec2.DescribeInstanceAttribute(context.Background(), &ec2.DescribeInstanceAttributeInput{
		InstanceId: aws.String(iid), Attribute: ec2types.InstanceAttributeNameUserData})
	must(e.t, err)
	got, err := base64.StdEncoding.DecodeString(aws.ToString(attr.UserData.Value))
	must(e.t, err)
	return string(got)
}
