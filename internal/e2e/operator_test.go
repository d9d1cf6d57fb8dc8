package e2e

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/hfdriver"
)

// ohfp runs the real ohfp as root (uid 0: an operator), or, with
// uid > 0, as that user.
func (e *env) ohfp(uid uint32, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	bin := filepath.Join(e.bin, "ohfp")
	if uid != 0 {
		bin = filepath.Join(e.dir, "bin", "ohfp") // a copy the user can run
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "OHFP_SOCKET="+e.sock, "OHFP_WAIT=0")
	if uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	}
	var o, er bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &er
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		e.t.Fatal(err)
	}
	return o.String(), er.String(), cmd.ProcessState.ExitCode()
}

func (e *env) available(tpl string) int {
	e.t.Helper()
	var tr struct {
		Templates []struct {
			TemplateID      string `json:"templateId"`
			AvailableNumber int    `json:"availableNumber"`
		} `json:"templates"`
	}
	e.call("getAvailableTemplates", map[string]any{}, &tr)
	for _, t := range tr.Templates {
		if t.TemplateID == tpl {
			return t.AvailableNumber
		}
	}
	e.t.Fatalf("no template %s", tpl)
	return 0
}

// The operator's day with the real binaries: status exit codes, cancel
// of a throttled launch, an operator return HF hears of, a drain that
// survives a restart, and the HF user refused the operator commands.
func TestOperatorCommands(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("runs ohfp as another user: needs root")
	}
	e := newEnv(t)
	// Another user may reach the socket (the refusal is ohfpd's, by its
	// peer credentials) and run a copy of ohfp.
	f, err := os.OpenFile(e.cfg, os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	// socket_group "": a machine may have an ohfp group the HF stand-in is not in.
	_, err = f.WriteString("socket_mode: \"0666\"\nsocket_group: \"\"\nadmin_groups: [\"4242\"]\n")
	must(t, err)
	f.Close()
	for d := e.dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		must(t, os.Chmod(d, 0o755))
	}
	must(t, os.MkdirAll(filepath.Join(e.dir, "bin"), 0o755))
	src, err := os.Open(filepath.Join(e.bin, "ohfp"))
	must(t, err)
	dst, err := os.OpenFile(filepath.Join(e.dir, "bin", "ohfp"), os.O_CREATE|os.O_WRONLY, 0o755)
	must(t, err)
	_, err = io.Copy(dst, src)
	must(t, err)
	src.Close()
	dst.Close()
	e.start()

	if out, errOut, code := e.ohfp(0, "status"); code != 0 || !strings.Contains(out, "health:") {
		t.Fatalf("status of a healthy daemon: exit %d\n%s%s", code, out, errOut)
	}

	// A launch AWS throttles every time: status says degraded (exit 1)
	// with one retry time, cancel stops it, nothing is launched.
	e.sim("faults", map[string]any{"throttleRate": 1, "actions": []string{"RunInstances"}})
	id := e.request("OnDemand-c5", 2)
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _, code := e.ohfp(0, "status")
		if code == 1 && strings.Contains(out, "AWS throttling RunInstances") && strings.Contains(out, "next launch attempt") {
			if n := strings.Count(out, "retrying in"); n != 0 {
				t.Fatalf("status gives %d more retry times:\n%s", n, out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status during throttling: exit %d\n%s", code, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out, errOut, code := e.ohfp(0, "cancel", id); code != 0 || !strings.Contains(out, "cancelled") {
		t.Fatalf("cancel: exit %d %s%s", code, out, errOut)
	}
	e.sim("faults", map[string]any{})
	if st := e.waitFinal(id).Requests[0]; st.Status != "complete_with_error" || !strings.Contains(st.Message, "cancelled by the operator") {
		t.Fatalf("HF's status of the cancelled request: %+v", st)
	}
	if out, _, _ := e.ohfp(0, "show", id); !strings.Contains(out, "history:") || !strings.Contains(out, "by uid 0 (root)") {
		t.Fatalf("show lacks the history:\n%s", out)
	}
	if out, _, _ := e.ohfp(0, "requests"); !strings.Contains(out, id) {
		t.Fatalf("requests hides the request that just ended:\n%s", out)
	}
	time.Sleep(time.Second)
	if n := len(e.tagged(id)); n != 0 {
		t.Fatalf("%d instances launched for a cancelled request", n)
	}

	// An operator return: a ret- request, the instance terminated, HF
	// told by getReturnRequests.
	id2 := e.request("OnDemand-c5", 2)
	ms := e.waitFinal(id2).Requests[0].Machines
	out, errOut, code := e.ohfp(0, "return", ms[0].MachineID)
	if code != 0 || !strings.Contains(out, "ret-") {
		t.Fatalf("return: exit %d %s%s", code, out, errOut)
	}
	var rr struct {
		Requests []struct {
			Machine string `json:"machine"`
		} `json:"requests"`
	}
	e.call("getReturnRequests", hfdriver.MachinesInput(ms), &rr)
	if len(rr.Requests) != 1 || rr.Requests[0].Machine != ms[0].Name {
		t.Fatalf("getReturnRequests after an operator return: %+v", rr)
	}
	for deadline := time.Now().Add(20 * time.Second); len(e.tagged(id2, "pending", "running")) != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("the returned instance is still up")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Drain, across a restart; undrain.
	if _, errOut, code := e.ohfp(0, "drain", "Spot-m5"); code != 0 {
		t.Fatalf("drain: %s", errOut)
	}
	must(t, e.daemon.Stop(10*time.Second))
	e.start()
	if n := e.available("Spot-m5"); n != 0 {
		t.Fatalf("drained template offers %d after a restart", n)
	}
	if out, _, _ := e.ohfp(0, "status"); !strings.Contains(out, "drained:") {
		t.Fatalf("status lacks the drain:\n%s", out)
	}

	// The HF user (not root, not in admin_groups) may read, not act.
	const nobody = 65534
	if out, errOut, code := e.ohfp(nobody, "status"); code > 1 || !strings.Contains(out, "health:") {
		t.Fatalf("status as another user: exit %d %s%s", code, out, errOut)
	}
	for _, args := range [][]string{{"undrain", "Spot-m5"}, {"cancel", id2}, {"return", ms[1].MachineID}, {"config", "reload"}} {
		_, errOut, code := e.ohfp(nobody, args...)
		if code != 77 || !strings.Contains(errOut, "not an operator") { // EX_NOPERM
			t.Errorf("%v as uid %d: exit %d, %q", args, nobody, code, errOut)
		}
	}
	if n := e.available("Spot-m5"); n != 0 {
		t.Fatalf("a refused undrain undrained: %d", n)
	}
	if _, errOut, code := e.ohfp(0, "undrain", "Spot-m5"); code != 0 || e.available("Spot-m5") != 10 {
		t.Fatalf("undrain: %s", errOut)
	}

	// check: every template's dry run passes against the simulated
	// region; denied RunInstances fails it, exit 1.
	if out, errOut, code := e.ohfp(0, "check"); code != 0 || strings.Count(out, "RunInstances dry run") != 2 || strings.Contains(out, "FAIL") {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
	e.sim("faults", map[string]any{"denied": []string{"RunInstances"}})
	if out, errOut, code := e.ohfp(0, "check", "OnDemand-c5"); code != 1 || !strings.Contains(out, "FAIL not permitted") {
		t.Fatalf("check with RunInstances denied: exit %d\n%s%s", code, out, errOut)
	}
	e.sim("faults", map[string]any{})

	// ohfpd gone: status is down, exit 2.
	must(t, e.daemon.Stop(10*time.Second))
	e.daemon = nil
	if _, errOut, code := e.ohfp(0, "status"); code != 2 || !strings.Contains(errOut, "down") {
		t.Fatalf("status without ohfpd: exit %d %s", code, errOut)
	}
}

// ohfp check with the real binaries over a template of each provider API:
// RunInstances, EC2 Fleet (CreateFleet dry run), Spot Fleet
// (RequestSpotFleet dry run) and Auto Scaling (no dry run: said so), and
// the vCPU quotas. All pass with quotas large enough and leave nothing in
// the region; a quota too low fails (exit 1); a quota the credentials may
// not read is unknown and fails nothing (exit 0); a denied CreateFleet
// fails.
func TestCheckEveryAPI(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("ohfp check is an operator's command: needs root")
	}
	t.Parallel() // its own region and daemon
	tpls := `{"templates": [` + strings.Join([]string{
		fleetTemplate("RI-ondemand", "RunInstances", "", "ondemand"),
		fleetTemplate("EC2Fleet-request-heterogeneous", "EC2Fleet", "request", "heterogeneous"),
		fleetTemplate("SpotFleet-spot", "SpotFleet", "", "spot"),
		fleetTemplate("ASG-ondemand", "ASG", "", "ondemand"),
	}, ",\n") + `]}`
	e := newEnvWith(t, tpls, "")
	e.start()
	// maxNumber 40 of m5.large (2 vCPUs, weight 1) or m5.xlarge (4, weight 2): 80 vCPUs.
	e.sim("quotas", map[string]float64{"L-1216C47A": 80, "L-34B43A08": 80})
	out, errOut, code := e.ohfp(0, "check")
	if code != 0 || strings.Contains(out, "FAIL") {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"RunInstances dry run: m5.large", "CreateFleet dry run (40 units)", "RequestSpotFleet dry run (40 units)",
		"Spot Fleet role " + fleetRole, "DescribeAutoScalingGroups", "not checkable: Auto Scaling has no dry run",
		"RunInstances dry run of the launch template: m5.xlarge in subnet-",
		"vCPU quota L-1216C47A", "vCPU quota L-34B43A08", "ok: up to 80 vCPUs"} {
		if !strings.Contains(out, want) {
			t.Errorf("check's table lacks %q:\n%s", want, out)
		}
	}
	if left := e.leftovers(); len(left) != 0 {
		t.Fatalf("check left %v", left)
	}

	e.sim("quotas", map[string]float64{"L-34B43A08": 8})
	if out, errOut, code := e.ohfp(0, "check", "SpotFleet-spot"); code != 1 || !strings.Contains(out, "FAIL too low: up to 80 vCPUs") {
		t.Fatalf("check with a Spot quota too low: exit %d\n%s%s", code, out, errOut)
	}
	e.sim("faults", map[string]any{"denied": []string{"GetServiceQuota"}})
	if out, errOut, code := e.ohfp(0, "check", "SpotFleet-spot"); code != 0 || !strings.Contains(out, "unknown: the credentials lack servicequotas:GetServiceQuota") {
		t.Fatalf("check with quotas unreadable: exit %d\n%s%s", code, out, errOut)
	}
	e.sim("faults", map[string]any{"denied": []string{"CreateFleet"}})
	if out, errOut, code := e.ohfp(0, "check", "EC2Fleet-request-heterogeneous"); code != 1 || !strings.Contains(out, "FAIL not permitted: the credentials lack ec2:CreateFleet") {
		t.Fatalf("check with CreateFleet denied: exit %d\n%s%s", code, out, errOut)
	}
	e.sim("faults", map[string]any{})
	if left := e.leftovers(); len(left) != 0 {
		t.Fatalf("the checks left %v", left)
	}
}
