package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/awssim"
	"github.com/ohfp/ohfp/internal/hfdriver"
)

// Issue 12 ("Do no harm"): a full disk, a damaged store, a cluster_id
// change and a run as root, through the real binaries.

// startRefused runs ohfpd with args, expecting it to refuse to start: it
// must exit non-zero within a minute, without a panic or goroutine dump,
// and its output must contain every one of want.
func (e *env) startRefused(want []string, args ...string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bin, argv := e.command(append([]string{"--config", e.cfg}, args...))
	cmd := exec.CommandContext(ctx, bin, argv...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIASIMULATED", "AWS_SECRET_ACCESS_KEY=simulated", "AWS_EC2_METADATA_DISABLED=true")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	e.logf.Write([]byte("==== soak: refused start " + strings.Join(args, " ") + "\n"))
	e.logf.Write(out.Bytes())
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		e.t.Fatalf("ohfpd %v did not refuse to start (err %v): %s", args, err, out.Bytes())
	}
	if ee.ExitCode() <= 0 || ee.ExitCode() == 2 && strings.Contains(out.String(), "goroutine ") {
		e.t.Fatalf("ohfpd %v ended with %v, not a refusal: %s", args, err, out.Bytes())
	}
	for _, bad := range []string{"panic", "goroutine ", "SIGBUS"} {
		if strings.Contains(out.String(), bad) {
			e.t.Fatalf("ohfpd %v refused with %q in its output:\n%s", args, bad, out.Bytes())
		}
	}
	for _, w := range want {
		if !strings.Contains(unquote(out.String()), w) {
			e.t.Errorf("ohfpd %v output does not mention %q:\n%s", args, w, out.Bytes())
		}
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "level=ERROR") {
			e.t.Logf("refusal: %s", line)
		}
	}
	return out.String()
}

// unquote undoes the text log handler's quoting of err="...".
func unquote(s string) string { return strings.ReplaceAll(s, `\"`, `"`) }

// completeRequest asks for n on-demand machines and waits until complete.
func (e *env) completeRequest(n int) (string, []hfdriver.Machine) {
	e.t.Helper()
	id := e.request(tplOnDemand, n)
	got := e.waitFinal([]string{id}, 60*time.Second)[id]
	if got.Status != "complete" || len(got.Machines) != n {
		e.t.Fatalf("request %s ended %+v", id, got)
	}
	return id, got.Machines
}

func TestHarmFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	c := startCloud(t, 200*time.Millisecond, 200*time.Millisecond)
	e := newEnv(t, c, daemonOpts{})
	must(t, os.MkdirAll(e.state, 0o750))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m,mode=0750", "tmpfs", e.state).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); the full-disk test needs one", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if e.daemon != nil {
			if err := e.daemon.Stop(15 * time.Second); err != nil {
				t.Errorf("stopping ohfpd: %v", err)
			}
			e.daemon = nil
		}
		if out, err := exec.Command("umount", "-l", e.state).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", e.state, err, out)
		}
	})
	e.start()
	id, _ := e.completeRequest(1)
	before := len(c.instances())

	// Fill the filesystem to the last byte.
	filler := filepath.Join(e.state, "filler")
	f, err := os.Create(filler)
	must(t, err)
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()

	ctx, cancel := callCtx()
	defer cancel()
	b, _ := json.Marshal(requestInput(tplOnDemand, 1))
	res, err := e.plugin.Raw(ctx, "requestMachines", b)
	must(t, err)
	msg := string(res.Stdout) + string(res.Stderr)
	if res.Exit != 1 || !regexp.MustCompile(`state directory full: 0 MB free on `+regexp.QuoteMeta(e.state)+`, ohfpd needs \d+ MB: free space; ohfpd resumes by itself`).MatchString(msg) {
		t.Fatalf("requestMachines on a full disk: exit %d: %s", res.Exit, msg)
	}
	t.Logf("requestMachines on a full disk: exit %d: %s", res.Exit, strings.Join(strings.Fields(msg), " "))
	if !strings.Contains(msg, "nothing was launched") {
		t.Errorf("the refusal does not say nothing was launched: %s", msg)
	}
	// Reads are still served, and ohfpd is alive.
	if st := e.status(id); st.Requests[0].Status != "complete" {
		t.Fatalf("getRequestStatus on a full disk: %+v", st)
	}
	var tpls json.RawMessage
	e.call("getAvailableTemplates", map[string]any{}, &tpls)
	time.Sleep(1500 * time.Millisecond) // a reconcile pass and a watermark round on the full disk
	if !e.alive() {
		t.Fatal("ohfpd died on the full disk")
	}
	if after := len(c.instances()); after != before {
		t.Fatalf("%d instances launched on a full disk", after-before)
	}

	// Space returns: ohfpd resumes by itself.
	must(t, os.Remove(filler))
	id2, _ := e.completeRequest(1)
	if st := e.status(id, id2); st.Requests[0].Status != "complete" {
		t.Fatalf("after the disk was freed: %+v", st)
	}
	e.stop()
	e.start() // the store opens cleanly after all this
	if st := e.status(id, id2); st.Requests[1].Status != "complete" {
		t.Fatalf("after a restart: %+v", st)
	}
}

// copyDir copies the files of src (flat, as Badger's directory is) to dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	must(t, os.RemoveAll(dst))
	must(t, os.MkdirAll(dst, 0o750))
	entries, err := os.ReadDir(src)
	must(t, err)
	for _, en := range entries {
		b, err := os.ReadFile(filepath.Join(src, en.Name()))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dst, en.Name()), b, 0o640))
	}
}

func TestHarmDamagedStore(t *testing.T) {
	t.Parallel() // its own region and daemon; mostly waiting
	c := startCloud(t, 200*time.Millisecond, 200*time.Millisecond)
	e := newEnv(t, c, daemonOpts{})
	e.start()
	id, _ := e.completeRequest(2)
	e.stop()
	good := filepath.Join(e.dir, "state.good")
	copyDir(t, e.state, good)
	way := []string{"mv " + e.state + " " + e.state + ".damaged", "ohfpd --rebuild-from-cloud"}

	// A truncated table: Badger panics in a goroutine ("slice bounds out
	// of range") when it opens it.
	ssts, _ := filepath.Glob(filepath.Join(e.state, "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no table after a clean stop")
	}
	fi, err := os.Stat(ssts[0])
	must(t, err)
	must(t, os.Truncate(ssts[0], fi.Size()/2))
	e.startRefused(append([]string{"state directory " + e.state + " is damaged: table " + filepath.Base(ssts[0]) + " is truncated or corrupt"}, way...))

	// The MANIFEST deleted: Badger would open it empty and delete every table.
	copyDir(t, good, e.state)
	must(t, os.Remove(filepath.Join(e.state, "MANIFEST")))
	e.startRefused(append([]string{"state directory " + e.state + " is damaged: its MANIFEST file is missing"}, way...))
	if ssts, _ := filepath.Glob(filepath.Join(e.state, "*.sst")); len(ssts) == 0 {
		t.Fatal("the refused start deleted the tables")
	}

	// The undamaged copy still opens with the request known.
	copyDir(t, good, e.state)
	e.start()
	if st := e.status(id); st.Requests[0].Status != "complete" || len(st.Requests[0].Machines) != 2 {
		t.Fatalf("the undamaged store lost the request: %+v", st)
	}
	e.stop()

	// The way out the message gives works.
	must(t, os.Rename(e.state, e.state+".damaged"))
	e.start("--rebuild-from-cloud")
	if !e.alive() {
		t.Fatal("ohfpd --rebuild-from-cloud did not start")
	}
}

func TestHarmClusterIDChange(t *testing.T) {
	t.Parallel() // its own region and daemon; mostly waiting
	c := startCloud(t, 200*time.Millisecond, 200*time.Millisecond)
	e := newEnv(t, c, daemonOpts{})
	e.start()
	id, ms := e.completeRequest(3)
	e.stop()

	cfg, err := os.ReadFile(e.cfg)
	must(t, err)
	must(t, os.WriteFile(e.cfg, bytes.Replace(cfg, []byte("cluster_id: soak\n"), []byte("cluster_id: soak2\n"), 1), 0o600))
	e.startRefused([]string{
		`state directory ` + e.state + ` belongs to cluster_id "soak", but the configuration says cluster_id "soak2"`,
		"`cluster_id: soak`", "ohfpd --adopt-cluster-id soak",
	})
	for _, in := range c.instances() {
		if in.State != "running" {
			t.Fatalf("the refused start touched %s: %s", in.ID, in.State)
		}
	}

	e.start("--adopt-cluster-id", "soak")
	e.cluster = "soak2"
	time.Sleep(2500 * time.Millisecond) // several reconcile passes
	st := e.status(id)
	if st.Requests[0].Status != "complete" || len(st.Requests[0].Machines) != 3 {
		t.Fatalf("after adopting: %+v", st)
	}
	var rr struct {
		Requests []struct {
			Machine string `json:"machine"`
		} `json:"requests"`
	}
	e.call("getReturnRequests", hfdriver.MachinesInput(ms), &rr)
	if len(rr.Requests) != 0 {
		t.Fatalf("HF is told %d hosts were taken back after adopting: %+v", len(rr.Requests), rr.Requests)
	}
	for _, in := range c.instances() {
		if in.State != "running" || in.Tags["ohfp:managed-by"] != "soak2" {
			t.Fatalf("after adopting, %s is %s tagged %q", in.ID, in.State, in.Tags["ohfp:managed-by"])
		}
	}
	e.stop()
	e.start() // from now on without the flag
	if st := e.status(id); st.Requests[0].Status != "complete" {
		t.Fatalf("after a restart: %+v", st)
	}
}

func TestHarmRootOnServiceUserDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	c := startCloud(t, 200*time.Millisecond, 200*time.Millisecond)
	e := newEnv(t, c, daemonOpts{})
	e.start()
	e.stop()
	// The state directory of the service user (uid 65534 stands in for ohfp).
	must(t, filepath.Walk(e.state, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, 65534, 65534)
	}))
	out := e.startRefused([]string{"ohfpd runs as root, but state directory " + e.state + " belongs to ", "(uid 65534)", "Run ohfpd as "})
	// Nothing root-owned was left behind.
	entries, _ := os.ReadDir(e.state)
	for _, en := range entries {
		info, _ := en.Info()
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Uid == 0 {
			t.Errorf("the refused start left %s owned by root (output: %s)", en.Name(), out)
		}
	}
}

// mountTmpfs mounts a tmpfs of size on e.state (root only) until the end
// of the test, stopping ohfpd first.
func mountTmpfs(t *testing.T, e *env, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	must(t, os.MkdirAll(e.state, 0o750))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0750", "tmpfs", e.state).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if e.daemon != nil {
			_ = e.daemon.Stop(15 * time.Second)
			e.daemon = nil
		}
		if out, err := exec.Command("umount", "-l", e.state).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", e.state, err, out)
		}
	})
}

// fillDisk fills the filesystem of dir to the last byte with dir/filler.
func fillDisk(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	must(t, err)
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for n := len(chunk); n > 0; n /= 2 {
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
}

// logSince returns ohfpd's log from offset on.
func (e *env) logSince(off int) string {
	b, _ := os.ReadFile(e.logPath)
	return unquote(string(b[min(off, len(b)):]))
}

func (e *env) logSize() int {
	fi, err := os.Stat(e.logPath)
	if err != nil {
		return 0
	}
	return int(fi.Size())
}

// Issue 12, bug A: SIGTERM while the state directory is full died with
// SIGBUS in Badger's memtable flush at Close, losing what it held. ohfpd
// now stops cleanly, leaving Badger's memtable log for the next start,
// which replays it: nothing is lost.
func TestHarmFullDiskSigterm(t *testing.T) {
	c := startCloud(t, 200*time.Millisecond, 200*time.Millisecond)
	e := newEnv(t, c, daemonOpts{})
	mountTmpfs(t, e, "24m")
	e.start()
	id, _ := e.completeRequest(1)
	id2, _ := e.completeRequest(2)
	fillDisk(t, e.state)
	off := e.logSize()
	err := e.daemon.Stop(20 * time.Second)
	e.daemon = nil
	if err != nil {
		t.Fatalf("SIGTERM on a full disk: %v\n%s", err, lastLines(e.logSince(off), 40))
	}
	log := e.logSince(off)
	for _, bad := range []string{"fatal error", "SIGBUS: bus error", "panic"} {
		if strings.Contains(log, bad) {
			t.Fatalf("ohfpd's stop on a full disk logged %q:\n%s", bad, lastLines(log, 40))
		}
	}
	if !strings.Contains(log, "state directory full at shutdown: 0 MB free on "+e.state) || !strings.Contains(log, "Badger's memtable log (.mem) is left as it is") {
		t.Errorf("the stop does not say why the memtable was not flushed:\n%s", lastLines(log, 20))
	}
	must(t, os.Remove(filepath.Join(e.state, "filler")))
	e.start()
	st := e.status(id, id2)
	for i, n := range []int{1, 2} {
		if st.Requests[i].Status != "complete" || len(st.Requests[i].Machines) != n {
			t.Errorf("after the restart, request %s: %+v", st.Requests[i].RequestID, st.Requests[i])
		}
	}
	if !strings.Contains(e.logSince(off), "the last shutdown of the store was not clean") {
		t.Error("the restart does not say the last shutdown was not clean")
	}
}

// Issue 12, bug B: starting (or restarting after a kill -9) while the
// state directory is full died with SIGBUS in Badger's openMemTable,
// silently (under systemd, a restart loop). ohfpd now refuses to start
// with the way out; likewise on a read-only filesystem.
func TestHarmFullDiskStart(t *testing.T) {
	c := startCloud(t, 200*time.Millisecond, 200*time.Millisecond)
	e := newEnv(t, c, daemonOpts{})
	mountTmpfs(t, e, "24m")
	e.start()
	id, _ := e.completeRequest(1)
	e.kill("before filling the disk")
	fillDisk(t, e.state)
	full := regexp.MustCompile(`state directory full: 0 MB free on ` + regexp.QuoteMeta(e.state) + `, ohfpd needs \d+ MB: free space, then start ohfpd again`)
	for range 2 { // as systemd's restarts would
		out := e.startRefused(nil)
		if !full.MatchString(unquote(out)) {
			t.Fatalf("start on a full disk:\n%s", out)
		}
	}
	must(t, os.Remove(filepath.Join(e.state, "filler")))
	e.start()
	if st := e.status(id); st.Requests[0].Status != "complete" {
		t.Fatalf("after space came back: %+v", st)
	}
	e.stop()

	if out, err := exec.Command("mount", "-o", "remount,ro", e.state).CombinedOutput(); err != nil {
		t.Fatalf("remount ro: %v %s", err, out)
	}
	e.startRefused([]string{"state directory read-only: the filesystem of " + e.state + " is mounted read-only, ohfpd cannot record anything: remount it read-write, then start ohfpd again"})
	if out, err := exec.Command("mount", "-o", "remount,rw", e.state).CombinedOutput(); err != nil {
		t.Fatalf("remount rw: %v %s", err, out)
	}
	e.start()
	if st := e.status(id); st.Requests[0].Status != "complete" {
		t.Fatalf("after the remount: %+v", st)
	}
}

// Issue 12, bug D, as the operator found it: a return request made while
// AWS failed, ohfpd killed, then Badger's memtable log and the identity
// file deleted. ohfpd recreated the identity file silently and opened
// the store without the return request. It now refuses the store as
// damaged.
func TestHarmIdentityFileDeleted(t *testing.T) {
	t.Parallel() // its own region and daemon; mostly waiting
	c := startCloud(t, 200*time.Millisecond, 200*time.Millisecond)
	e := newEnv(t, c, daemonOpts{})
	e.start()
	_, ms := e.completeRequest(2)
	e.stop() // a restart: the first writes are in a table
	e.start()
	c.setFaults(awssim.Faults{ErrorRate: 1.0})
	var rep hfdriver.RequestReply
	e.call("requestReturnMachines", hfdriver.MachinesInput(ms[:1]), &rep)
	if !strings.HasPrefix(rep.RequestID, "ret-") {
		t.Fatalf("requestReturnMachines answered %+v", rep)
	}
	e.kill("after the return request")
	c.setFaults(awssim.Faults{})
	mems, _ := filepath.Glob(filepath.Join(e.state, "*.mem"))
	for _, f := range append(mems, filepath.Join(e.state, "ohfpd-store.json")) {
		must(t, os.Remove(f))
	}
	e.startRefused([]string{"state directory " + e.state + " is damaged: its identity file ohfpd-store.json is missing",
		"mv " + e.state + " " + e.state + ".damaged", "ohfpd --rebuild-from-cloud"})
	if _, err := os.Stat(filepath.Join(e.state, "ohfpd-store.json")); err == nil {
		t.Error("the refused start wrote an identity file")
	}
	// The way out gives the return request back from the cloud's tags.
	must(t, os.Rename(e.state, e.state+".damaged"))
	e.start("--rebuild-from-cloud")
	var rr struct {
		Requests []struct {
			Machine string `json:"machine"`
		} `json:"requests"`
	}
	e.call("getReturnRequests", hfdriver.MachinesInput(ms), &rr)
	t.Logf("after --rebuild-from-cloud, getReturnRequests: %+v", rr.Requests)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Issue 12, bug E, as the operator found it: following the damaged-store
// message literally, root moved the service user's state directory aside
// and ran ohfpd --rebuild-from-cloud, which created a root-owned state
// directory; the service then failed on it with "not writable:
// permission denied". Now the damaged-store message says to rebuild as
// the service user, root is refused before creating anything, and the
// service user on a root-owned directory is told to chown it.
func TestHarmRebuildAsServiceUser(t *testing.T) {
	t.Parallel() // its own region and daemon; mostly waiting
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("no setpriv")
	}
	const uid = 65534 // stands in for ohfp
	c := startCloud(t, 200*time.Millisecond, 200*time.Millisecond)
	e := newEnv(t, c, daemonOpts{})
	// The service user's files: its configuration and the folder of its
	// socket and state directory, reachable through the test's folders.
	for _, d := range []string{binDir, filepath.Dir(e.dir), e.dir} {
		must(t, os.Chmod(d, 0o755))
	}
	// The service user is in no ohfp group here (the machine may have one):
	// the socket keeps the user's own group.
	cfg, err := os.ReadFile(e.cfg)
	must(t, err)
	must(t, os.WriteFile(e.cfg, append([]byte("socket_group: \"\"\n"), cfg...), 0o600))
	for _, f := range []string{e.dir, e.cfg, filepath.Join(e.dir, "awsprov_templates.json")} {
		must(t, os.Chown(f, uid, uid))
	}
	service := []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"}
	name := "nobody"
	if out, err := exec.Command("id", "-nu", "65534").Output(); err == nil {
		name = strings.TrimSpace(string(out))
	}
	e.as = service
	e.start()
	id, _ := e.completeRequest(1)
	e.stop()

	// Damaged: the message says to rebuild as the service user.
	must(t, os.Remove(filepath.Join(e.state, "ohfpd-store.json")))
	e.startRefused([]string{"state directory " + e.state + " is damaged",
		"mv " + e.state + " " + e.state + ".damaged",
		"ohfpd --rebuild-from-cloud as the service user " + name + ", not as root (runuser -u " + name + " -- ohfpd --rebuild-from-cloud"})
	must(t, os.Rename(e.state, e.state+".damaged"))

	// Root, as the operator did: refused, nothing created.
	e.as = nil
	e.startRefused([]string{"ohfpd runs as root, but state directory " + e.state + " does not exist and " + e.state + ".damaged beside it belongs to " + name + " (uid 65534)",
		"runuser -u " + name + " -- ohfpd"}, "--rebuild-from-cloud")
	if _, err := os.Stat(e.state); err == nil {
		t.Fatal("root's refused start created the state directory")
	}

	// Had root created it: the service user is told to chown it.
	must(t, os.Mkdir(e.state, 0o750))
	e.as = service
	e.startRefused([]string{"state directory " + e.state + " belongs to root (uid 0)", "as root: chown -R " + name + ":"})
	must(t, os.Remove(e.state))

	// The way out, as the service user.
	e.start("--rebuild-from-cloud")
	if st := e.status(id); st.Requests[0].Status != "complete" || len(st.Requests[0].Machines) != 1 {
		t.Fatalf("after --rebuild-from-cloud as %s: %+v", name, st)
	}
	fi, err := os.Stat(e.state)
	must(t, err)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid {
		t.Fatalf("the rebuilt state directory belongs to uid %d", st.Uid)
	}
}
