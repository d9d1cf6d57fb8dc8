// Package packaging holds the .deb/.rpm build (nfpm.yaml, build.sh), the
// files the packages ship and their install scripts. Its tests build the real
// binaries and packages and check what a sysadmin gets: package contents,
// configuration files, install-script behaviour, the systemd units, and
// ohfpd's socket activation and readiness protocol.
package packaging

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/config"
)

// testVersion is stamped into the binaries and given to build.sh.
const testVersion = "1.2.3-rc.1"

var (
	repoRoot string // the repository's root
	tmpRoot  string // removed when the tests end
	binDir   string // ohfpd and ohfp built for the tests
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = filepath.Dir(wd)
	dir, err := os.MkdirTemp("", "ohfp-packaging-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	tmpRoot = dir
	binDir = filepath.Join(dir, "bin")
	// The binaries as `make build` makes them.
	cmd := exec.Command("make", "-s", "build", "BIN="+binDir, "VERSION="+testVersion)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "make build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// run runs a command and returns its standard output; it fails the test with
// the command's standard error when it fails.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// needTool skips the test when a tool is missing, unless requireVar is set
// in the environment, in which case it fails.
func needTool(t *testing.T, tool, requireVar, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err == nil {
		return
	}
	msg := fmt.Sprintf("%s is not installed: this check did NOT run (apt-get install -y %s)", tool, pkg)
	if requireVar != "" && os.Getenv(requireVar) != "" {
		t.Fatalf("%s, and %s is set", msg, requireVar)
	}
	if requireVar != "" {
		msg += fmt.Sprintf("; set %s=1 to make this a failure", requireVar)
	}
	t.Log("!!!!!!!! " + msg)
	t.Skip(msg)
}

var (
	pkgOnce sync.Once
	pkgDir  string
	pkgErr  error
	pkgOut  string
)

// buildPackages runs build.sh once into a temporary folder and returns it.
func buildPackages(t *testing.T) string {
	t.Helper()
	pkgOnce.Do(func() {
		pkgDir = filepath.Join(tmpRoot, "dist")
		cmd := exec.Command("./packaging/build.sh", "v"+testVersion)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "OHFP_BIN="+binDir, "OHFP_DIST="+pkgDir, "SOURCE_DATE_EPOCH=1700000000")
		out, err := cmd.CombinedOutput()
		pkgOut = string(out)
		if err != nil {
			pkgErr = fmt.Errorf("build.sh: %v\n%s", err, out)
		}
	})
	if pkgErr != nil {
		t.Fatal(pkgErr)
	}
	return pkgDir
}

func onePackage(t *testing.T, dir, pattern string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil || len(m) != 1 {
		t.Fatalf("want exactly one %s in %s, found %v (build.sh said:\n%s)", pattern, dir, m, pkgOut)
	}
	return m[0]
}

// entry is one file of a package as a listing shows it.
type entry struct {
	path  string
	mode  string // ls-style, e.g. -rw-r-----
	owner string // user/group
	link  string // symlink target
}

var hfScripts = []string{"getAvailableTemplates", "requestMachines", "getRequestStatus", "requestReturnMachines", "getReturnRequests"}

// wantFiles is what both packages must hold (directories as "/x/").
func wantFiles() []entry {
	w := []entry{
		{path: "/usr/bin/ohfpd", mode: "-rwxr-xr-x", owner: "root/root"},
		{path: "/usr/bin/ohfp", mode: "-rwxr-xr-x", owner: "root/root"},
		{path: "/usr/libexec/ohfp/hf/", mode: "drwxr-xr-x", owner: "root/root"},
		{path: "/etc/ohfp/", mode: "drwxr-x---", owner: "root/ohfp"},
		{path: "/etc/ohfp/config.yaml", mode: "-rw-r-----", owner: "root/ohfp"},
		{path: "/etc/ohfp/awsprov_templates.json", mode: "-rw-r-----", owner: "root/ohfp"},
		{path: "/etc/ohfp/user_data.sh", mode: "-rw-r-----", owner: "root/ohfp"},
		{path: "/usr/lib/systemd/system/ohfpd.service", mode: "-rw-r--r--", owner: "root/root"},
		{path: "/usr/lib/systemd/system/ohfpd.socket", mode: "-rw-r--r--", owner: "root/root"},
		{path: "/usr/lib/sysusers.d/ohfp.conf", mode: "-rw-r--r--", owner: "root/root"},
		{path: "/usr/lib/tmpfiles.d/ohfp.conf", mode: "-rw-r--r--", owner: "root/root"},
	}
	for _, s := range hfScripts {
		w = append(w, entry{path: "/usr/libexec/ohfp/hf/" + s + ".sh", link: "../../../bin/ohfp"})
	}
	for _, d := range []string{"README.md", "reference.md", "hostProviders.json", "hostProviderPlugins.json", "awsprov_templates.json", "config.yaml.example"} {
		w = append(w, entry{path: "/usr/share/doc/ohfp/" + d, mode: "-rw-r--r--", owner: "root/root"})
	}
	for _, m := range manPages {
		w = append(w, entry{path: m, mode: "-rw-r--r--", owner: "root/root"})
	}
	w = append(w,
		entry{path: "/usr/share/bash-completion/completions/ohfp", mode: "-rw-r--r--", owner: "root/root"},
		entry{path: "/usr/share/bash-completion/completions/ohfpd", link: "ohfp"})
	return w
}

// manPages are the manual pages both packages install.
var manPages = []string{"/usr/share/man/man1/ohfp.1.gz", "/usr/share/man/man8/ohfpd.8.gz", "/usr/share/man/man5/ohfp.yaml.5.gz"}

// debOnly and rpmOnly are what one packager installs and not the other.
var (
	debOnly = []entry{
		{path: "/usr/share/doc/ohfp/copyright", mode: "-rw-r--r--", owner: "root/root"},
		{path: "/usr/share/doc/ohfp/changelog.Debian.gz", mode: "-rw-r--r--", owner: "root/root"},
		{path: "/usr/share/lintian/overrides/ohfp", mode: "-rw-r--r--", owner: "root/root"},
		{path: "/usr/share/zsh/vendor-completions/_ohfp", mode: "-rw-r--r--", owner: "root/root"},
	}
	rpmOnly = []entry{
		{path: "/usr/share/licenses/ohfp/LICENSE", mode: "-rw-r--r--", owner: "root/root"},
		{path: "/usr/share/zsh/site-functions/_ohfp", mode: "-rw-r--r--", owner: "root/root"},
	}
)

func checkEntries(t *testing.T, kind string, got map[string]entry) {
	t.Helper()
	want := wantFiles()
	if kind == "deb" {
		want = append(want, debOnly...)
	} else {
		want = append(want, rpmOnly...)
	}
	for _, w := range want {
		g, ok := got[w.path]
		if !ok {
			t.Errorf("%s: %s is missing", kind, w.path)
			continue
		}
		if w.link != "" {
			if g.link != w.link {
				t.Errorf("%s: %s links to %q, want %q", kind, w.path, g.link, w.link)
			}
			continue
		}
		if g.owner == "0/0" { // nfpm's generated files carry ids, not names
			g.owner = "root/root"
		}
		if g.mode != w.mode || g.owner != w.owner {
			t.Errorf("%s: %s is %s %s, want %s %s", kind, w.path, g.mode, g.owner, w.mode, w.owner)
		}
	}
}

func TestDebPackage(t *testing.T) {
	needTool(t, "dpkg-deb", "", "dpkg")
	deb := onePackage(t, buildPackages(t), "*.deb")

	// Contents: dpkg-deb -c prints "mode owner/group size date time ./path [-> target]".
	got := map[string]entry{}
	for _, line := range strings.Split(strings.TrimSpace(run(t, "", nil, "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("unexpected dpkg-deb -c line %q", line)
		}
		e := entry{path: strings.TrimPrefix(f[5], "."), mode: f[0], owner: f[1]}
		if len(f) >= 8 && f[6] == "->" {
			e.link = f[7]
		}
		got[e.path] = e
	}
	checkEntries(t, "deb", got)

	// Control fields.
	debArch := map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "i386"}[runtime.GOARCH]
	for field, want := range map[string]string{
		"Package":      "ohfp",
		"Version":      "1.2.3~rc.1-1",
		"Architecture": debArch,
		"License":      "Apache-2.0",
	} {
		if got := strings.TrimSpace(run(t, "", nil, "dpkg-deb", "-f", deb, field)); got != want {
			t.Errorf("deb field %s = %q, want %q", field, got, want)
		}
	}

	// No dependency on a libc: the binaries are static (TestBinariesAreStatic).
	if got := strings.TrimSpace(run(t, "", nil, "dpkg-deb", "-f", deb, "Depends", "Pre-Depends")); got != "" {
		t.Errorf("the .deb depends on %q; its static binaries need nothing", got)
	}

	// Control archive: conffiles and the maintainer scripts.
	ctl := t.TempDir()
	run(t, "", nil, "dpkg-deb", "-e", deb, ctl)
	conf, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
	if err != nil {
		t.Fatalf("the .deb has no conffiles: %v", err)
	}
	confs := strings.Fields(string(conf))
	slices.Sort(confs)
	if want := []string{"/etc/ohfp/awsprov_templates.json", "/etc/ohfp/config.yaml", "/etc/ohfp/user_data.sh"}; !slices.Equal(confs, want) {
		t.Errorf("conffiles = %v, want %v", confs, want)
	}
	for script, src := range map[string]string{"preinst": "preinstall.sh", "postinst": "postinstall.sh", "prerm": "preremove.sh", "postrm": "postremove.sh"} {
		b, err := os.ReadFile(filepath.Join(ctl, script))
		if err != nil {
			t.Errorf("the .deb has no %s: %v", script, err)
			continue
		}
		want, _ := os.ReadFile(filepath.Join(repoRoot, "packaging", "scripts", src))
		if !bytes.Equal(b, want) {
			t.Errorf("the .deb's %s is not packaging/scripts/%s", script, src)
		}
	}

	// The files themselves: binaries stamped with the version, the shipped
	// configuration valid in place.
	root := t.TempDir()
	run(t, "", nil, "dpkg-deb", "-x", deb, root)
	if out := run(t, "", nil, filepath.Join(root, "usr/bin/ohfpd"), "--version"); !strings.Contains(out, testVersion) {
		t.Errorf("ohfpd --version from the .deb = %q, want it to name %s", out, testVersion)
	}
	if out := run(t, "", nil, filepath.Join(root, "usr/bin/ohfp"), "--version"); !strings.Contains(out, testVersion) {
		t.Errorf("ohfp --version from the .deb = %q, want it to name %s", out, testVersion)
	}
	checkSampleRefused(t, filepath.Join(root, "usr/bin/ohfpd"), filepath.Join(root, "etc/ohfp/config.yaml"))
	if out := run(t, "", nil, filepath.Join(root, "usr/bin/ohfpd"), "--check-config", "--config", filledSample(t, filepath.Join(root, "etc/ohfp"))); !strings.Contains(out, "OK (1 provider, 2 templates)") {
		t.Errorf("ohfpd --check-config on the packaged config, placeholders filled in: %q", out)
	}
}

// placeholders are the sample's, and what TestFilesAgree and
// TestSocketActivation put in their place.
var placeholders = map[string]string{
	"<your-region>":            "us-east-1",
	"<your-subnet-id>":         "subnet-0123456789abcdef0",
	"<your-second-subnet-id>":  "subnet-0fedcba9876543210",
	"<your-security-group-id>": "sg-0123456789abcdef0",
}

// filledSample copies config.yaml and awsprov_templates.json from dir into
// a temporary folder with every placeholder replaced, and returns the
// config's path there.
func filledSample(t *testing.T, dir string) string {
	t.Helper()
	out := t.TempDir()
	for _, f := range []string{"config.yaml", "awsprov_templates.json"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for k, v := range placeholders {
			s = strings.ReplaceAll(s, k, v)
		}
		if m := regexp.MustCompile(`<your-[a-z-]+>`).FindString(s); m != "" {
			t.Fatalf("%s holds placeholder %s, which this test does not know", f, m)
		}
		if err := os.WriteFile(filepath.Join(out, f), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(out, "config.yaml")
}

// checkSampleRefused: the sample configuration, as shipped, is refused,
// with a message naming every placeholder where it is.
func checkSampleRefused(t *testing.T, ohfpd, cfg string) {
	t.Helper()
	cmd := exec.Command(ohfpd, "--check-config", "--config", cfg)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("ohfpd --check-config accepted the sample with its placeholders:\n%s", out)
	}
	for _, want := range []string{
		"config.yaml:", "providers[aws].region: <your-region> is a placeholder",
		"awsprov_templates.json:", "templates[OnDemand-c5-large].subnetId: <your-subnet-id> is a placeholder",
		"templates[OnDemand-c5-large].securityGroupIds[0]: <your-security-group-id> is a placeholder",
		"templates[Spot-m5-xlarge].subnetId: <your-second-subnet-id> is a placeholder",
		"replace it with your own value",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ohfpd --check-config on the sample does not say %q:\n%s", want, out)
		}
	}
}

func TestRpmPackage(t *testing.T) {
	needTool(t, "rpm", "OHFP_REQUIRE_RPM", "rpm")
	rpm := onePackage(t, buildPackages(t), "*.rpm")

	if got := strings.TrimSpace(run(t, "", nil, "rpm", "-qp", "--queryformat", "%{NAME} %{VERSION} %{LICENSE}", rpm)); got != "ohfp 1.2.3~rc.1 Apache-2.0" {
		t.Errorf("rpm name, version, license = %q", got)
	}

	// rpm -qlp lists every path; the query format adds modes, owners and links.
	list := strings.Fields(run(t, "", nil, "rpm", "-qlp", rpm))
	got := map[string]entry{}
	qf := `[%{FILENAMES}\t%{FILEMODES:perms}\t%{FILEUSERNAME}/%{FILEGROUPNAME}\t%{FILELINKTOS}\n]`
	for _, line := range strings.Split(strings.TrimRight(run(t, "", nil, "rpm", "-qp", "--queryformat", qf, rpm), "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			t.Fatalf("unexpected rpm query line %q", line)
		}
		e := entry{path: f[0], mode: f[1], owner: f[2], link: f[3]}
		if strings.HasPrefix(e.mode, "d") {
			e.path += "/"
		}
		got[e.path] = e
	}
	for _, w := range append(wantFiles(), rpmOnly...) {
		if !slices.Contains(list, strings.TrimSuffix(w.path, "/")) {
			t.Errorf("rpm -qlp does not list %s", w.path)
		}
	}
	checkEntries(t, "rpm", got)

	confs := strings.Fields(run(t, "", nil, "rpm", "-qp", "--configfiles", rpm))
	slices.Sort(confs)
	if want := []string{"/etc/ohfp/awsprov_templates.json", "/etc/ohfp/config.yaml", "/etc/ohfp/user_data.sh"}; !slices.Equal(confs, want) {
		t.Errorf("rpm --configfiles = %v, want %v", confs, want)
	}
	// %config(noreplace): an edited configuration survives upgrades.
	flags := run(t, "", nil, "rpm", "-qp", "--queryformat", `[%{FILENAMES} %{FILEFLAGS:fflags}\n]`, rpm)
	for _, c := range confs {
		var fl string
		for _, line := range strings.Split(flags, "\n") {
			if p, f, ok := strings.Cut(line, " "); ok && p == c {
				fl = f
			}
		}
		if !strings.Contains(fl, "c") || !strings.Contains(fl, "n") {
			t.Errorf("%s has rpm file flags %q, want config and noreplace (c, n)", c, fl)
		}
	}

	for _, req := range strings.Split(run(t, "", nil, "rpm", "-qp", "--requires", rpm), "\n") {
		if strings.Contains(req, "libc") || strings.Contains(req, "GLIBC") {
			t.Errorf("the .rpm requires %q; its static binaries need no libc", req)
		}
	}

	scripts := run(t, "", nil, "rpm", "-qp", "--scripts", rpm)
	for _, s := range []string{"preinstall scriptlet", "postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet"} {
		if !strings.Contains(scripts, s) {
			t.Errorf("the .rpm has no %s", s)
		}
	}
}

// unitFile parses a systemd unit into key -> values (all sections merged).
func unitFile(t *testing.T, name string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "systemd", name))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: odd line %q", name, line)
		}
		m[k] = append(m[k], v)
	}
	return m
}

func one(t *testing.T, unit map[string][]string, key string) string {
	t.Helper()
	v := unit[key]
	if len(v) != 1 {
		t.Fatalf("want one %s=, got %q", key, v)
	}
	return v[0]
}

// TestFilesAgree checks that the units, the shipped configuration and the HF
// registration samples name the same socket, group, folders and provider.
func TestFilesAgree(t *testing.T) {
	cfg, err := config.Load(filledSample(t, filepath.Join(repoRoot, "packaging")))
	if err != nil {
		t.Fatalf("the shipped config.yaml does not load: %v", err)
	}
	sock := unitFile(t, "ohfpd.socket")
	svc := unitFile(t, "ohfpd.service")
	if got := one(t, sock, "ListenStream"); got != cfg.Socket {
		t.Errorf("ohfpd.socket listens on %s, config.yaml says socket: %s", got, cfg.Socket)
	}
	if got := one(t, sock, "SocketGroup"); got != cfg.SocketGroup {
		t.Errorf("ohfpd.socket group %s, config.yaml says socket_group: %s", got, cfg.SocketGroup)
	}
	if got := one(t, sock, "SocketMode"); got != "0660" {
		t.Errorf("SocketMode=%s, want 0660", got)
	}
	if got := "/var/lib/" + one(t, svc, "StateDirectory"); got != cfg.StateDir {
		t.Errorf("StateDirectory gives %s, config.yaml says state_dir: %s", got, cfg.StateDir)
	}
	if got := "/run/" + one(t, svc, "RuntimeDirectory"); got != filepath.Dir(cfg.Socket) {
		t.Errorf("RuntimeDirectory gives %s, the socket is in %s", got, filepath.Dir(cfg.Socket))
	}
	if one(t, svc, "RuntimeDirectoryPreserve") != "yes" {
		t.Error("RuntimeDirectoryPreserve must be yes: the socket unit's socket lives in the RuntimeDirectory")
	}
	for _, k := range []string{"ExecStart", "ExecStartPre"} {
		if v := one(t, svc, k); !strings.HasPrefix(v, "/usr/bin/ohfpd ") || !strings.HasSuffix(v, "--config /etc/ohfp/config.yaml") {
			t.Errorf("%s=%s does not run /usr/bin/ohfpd on /etc/ohfp/config.yaml", k, v)
		}
	}
	if one(t, svc, "Type") != "notify" || one(t, svc, "User") != "ohfp" || !slices.Contains(svc["Requires"], "ohfpd.socket") {
		t.Error("ohfpd.service must be Type=notify, User=ohfp and require ohfpd.socket")
	}

	var providers struct {
		Version   int
		Providers []struct {
			Name, Plugin, ConfPath string
			Enabled                int
		}
	}
	var plugins struct {
		Version         int
		ProviderPlugins []struct {
			Name, ScriptPath string
			Enabled          int
		} `json:"providerplugins"`
	}
	for file, v := range map[string]any{"hostProviders.json": &providers, "hostProviderPlugins.json": &plugins} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "packaging", "hf", file))
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	if len(providers.Providers) != 1 || len(plugins.ProviderPlugins) != 1 {
		t.Fatalf("want one provider and one plugin in the samples, got %+v %+v", providers, plugins)
	}
	p, pl := providers.Providers[0], plugins.ProviderPlugins[0]
	if p.Name != cfg.Providers[0].Name {
		t.Errorf("hostProviders.json names provider %q, config.yaml's first provider is %q", p.Name, cfg.Providers[0].Name)
	}
	if p.Plugin != pl.Name || p.Enabled != 1 || pl.Enabled != 1 {
		t.Errorf("provider %+v does not use the enabled plugin %+v", p, pl)
	}
	if p.ConfPath != "/etc/ohfp/" || pl.ScriptPath != "/usr/libexec/ohfp/hf/" {
		t.Errorf("confPath %s, scriptPath %s: want /etc/ohfp/ and /usr/libexec/ohfp/hf/", p.ConfPath, pl.ScriptPath)
	}
}

// TestShippedConfigChecks: the sample refuses to start until its
// placeholders are replaced, and then checks clean.
func TestShippedConfigChecks(t *testing.T) {
	ohfpd := filepath.Join(binDir, "ohfpd")
	checkSampleRefused(t, ohfpd, filepath.Join(repoRoot, "packaging", "config.yaml"))
	out := run(t, "", nil, ohfpd, "--check-config", "--config", filledSample(t, filepath.Join(repoRoot, "packaging")))
	if !strings.Contains(out, "OK (1 provider, 2 templates)") {
		t.Errorf("ohfpd --check-config: %q", out)
	}
}

// unitRoot makes a file system root holding the units, the binaries their
// Exec lines name and the targets they refer to, for systemd-analyze --root.
func unitRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	units := filepath.Join(root, "usr/lib/systemd/system")
	for _, d := range []string{units, filepath.Join(root, "usr/bin"), filepath.Join(root, "bin")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile := func(src, dst string, mode os.FileMode) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, mode); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(filepath.Join(binDir, "ohfpd"), filepath.Join(root, "usr/bin/ohfpd"), 0o755)
	kill, err := exec.LookPath("kill")
	if err != nil {
		kill = "/bin/kill"
	}
	copyFile(kill, filepath.Join(root, "bin/kill"), 0o755)
	for _, u := range []string{"ohfpd.service", "ohfpd.socket"} {
		copyFile(filepath.Join(repoRoot, "systemd", u), filepath.Join(units, u), 0o644)
	}
	for _, u := range []string{"sysinit.target", "sockets.target", "multi-user.target", "network-online.target", "shutdown.target", "basic.target"} {
		src := filepath.Join("/usr/lib/systemd/system", u)
		if _, err := os.Stat(src); err != nil {
			t.Skipf("%s is missing on this machine: cannot verify the units offline", src)
		}
		copyFile(src, filepath.Join(units, u), 0o644)
	}
	return root
}

func verifyUnits(t *testing.T, root string) (string, error) {
	units := filepath.Join(root, "usr/lib/systemd/system")
	cmd := exec.Command("systemd-analyze", "verify", "--root="+root,
		filepath.Join(units, "ohfpd.service"), filepath.Join(units, "ohfpd.socket"))
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestSystemdUnitsVerify(t *testing.T) {
	needTool(t, "systemd-analyze", "", "systemd")
	root := unitRoot(t)
	if out, err := verifyUnits(t, root); err != nil || out != "" {
		t.Errorf("systemd-analyze verify: err=%v\n%s", err, out)
	}

	// The check above means something: a misspelt key is reported.
	svc := filepath.Join(root, "usr/lib/systemd/system/ohfpd.service")
	b, _ := os.ReadFile(svc)
	bad := strings.Replace(string(b), "ProtectClock=yes", "ProtectClok=yes", 1)
	if bad == string(b) {
		t.Fatal("ohfpd.service has no ProtectClock=yes")
	}
	if err := os.WriteFile(svc, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _ := verifyUnits(t, root); !strings.Contains(out, "ProtectClok") {
		t.Errorf("systemd-analyze verify did not notice a misspelt key: %q", out)
	}
}

func TestSystemdSecurityExposure(t *testing.T) {
	needTool(t, "systemd-analyze", "", "systemd")
	cmd := exec.Command("systemd-analyze", "security", "--offline=yes", filepath.Join(repoRoot, "systemd", "ohfpd.service"))
	out, err := cmd.CombinedOutput()
	const marker = "Overall exposure level for ohfpd.service: "
	i := bytes.Index(out, []byte(marker))
	if i < 0 {
		if err != nil && bytes.Contains(out, []byte("offline")) {
			t.Skipf("systemd-analyze security --offline is not supported here: %s", out)
		}
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	f := strings.Fields(string(out[i+len(marker):]))
	score, perr := strconv.ParseFloat(f[0], 64)
	if perr != nil {
		t.Fatalf("cannot read the exposure level in %q", out[i:])
	}
	t.Logf("systemd-analyze security: exposure %.1f", score)
	if score > 2.0 {
		t.Errorf("ohfpd.service exposure %.1f, want at most 2.0:\n%s", score, out)
	}
}

// TestMaintainerScripts runs the install scripts with stand-ins for
// systemctl and the user tools, as dpkg and rpm call them.
func TestMaintainerScripts(t *testing.T) {
	type tc struct {
		name      string
		script    string
		args      []string
		systemctl bool // systemctl installed
		running   bool // systemd is the running init
		userKnown bool // getent finds ohfp
		sdTools   bool // systemd-sysusers and systemd-tmpfiles installed
		want      []string
		never     []string
	}
	all := []string{"systemctl"}
	cases := []tc{
		{name: "deb first install", script: "postinstall.sh", args: []string{"configure", ""}, systemctl: true, running: true, sdTools: true,
			want:  []string{"systemd-sysusers /usr/lib/sysusers.d/ohfp.conf", "systemd-tmpfiles --create /usr/lib/tmpfiles.d/ohfp.conf", "systemctl daemon-reload", "systemctl enable ohfpd.socket ohfpd.service"},
			never: []string{"systemctl start", "systemctl try-restart", "systemctl restart"}},
		{name: "deb upgrade", script: "postinstall.sh", args: []string{"configure", "1.0.0"}, systemctl: true, running: true, sdTools: true,
			want:  []string{"systemctl daemon-reload", "systemctl try-restart ohfpd.service"},
			never: []string{"systemctl enable", "systemctl start"}},
		{name: "rpm first install", script: "postinstall.sh", args: []string{"1"}, systemctl: true, running: true, sdTools: true,
			want:  []string{"systemctl daemon-reload", "systemctl enable ohfpd.socket ohfpd.service"},
			never: []string{"systemctl start", "systemctl try-restart"}},
		{name: "rpm upgrade", script: "postinstall.sh", args: []string{"2"}, systemctl: true, running: true, sdTools: true,
			want:  []string{"systemctl try-restart ohfpd.service"},
			never: []string{"systemctl enable", "systemctl start"}},
		{name: "first install, systemd not running, image build", script: "postinstall.sh", args: []string{"configure", ""}, systemctl: true, sdTools: true,
			want:  []string{"systemctl enable ohfpd.socket ohfpd.service"},
			never: []string{"systemctl daemon-reload", "systemctl start"}},
		{name: "upgrade, systemd not running", script: "postinstall.sh", args: []string{"configure", "1.0.0"}, systemctl: true,
			want:  []string{"install -d -m 0750 -o root -g ohfp /etc/ohfp"},
			never: all},
		{name: "install without systemctl, container", script: "postinstall.sh", args: []string{"configure", ""}, sdTools: true,
			want: []string{"systemd-tmpfiles --create /usr/lib/tmpfiles.d/ohfp.conf"}, never: all},
		{name: "deb abort-upgrade", script: "postinstall.sh", args: []string{"abort-upgrade", "1.0.0"}, systemctl: true, running: true,
			never: []string{"systemctl enable", "systemctl try-restart", "systemctl start"}},

		{name: "deb remove", script: "preremove.sh", args: []string{"remove"}, systemctl: true, running: true,
			want: []string{"systemctl stop ohfpd.service ohfpd.socket", "systemctl disable ohfpd.service ohfpd.socket"}},
		{name: "deb upgrade, old prerm", script: "preremove.sh", args: []string{"upgrade", "1.3.0"}, systemctl: true, running: true, never: all},
		{name: "rpm erase", script: "preremove.sh", args: []string{"0"}, systemctl: true, running: true,
			want: []string{"systemctl stop ohfpd.service ohfpd.socket", "systemctl disable ohfpd.service ohfpd.socket"}},
		{name: "rpm upgrade, old preun", script: "preremove.sh", args: []string{"1"}, systemctl: true, running: true, never: all},
		{name: "remove, systemd not running", script: "preremove.sh", args: []string{"remove"}, systemctl: true,
			want: []string{"systemctl disable ohfpd.service ohfpd.socket"}, never: []string{"systemctl stop"}},
		{name: "remove without systemctl", script: "preremove.sh", args: []string{"remove"}, never: all},

		{name: "deb postrm remove", script: "postremove.sh", args: []string{"remove"}, systemctl: true, running: true,
			want: []string{"systemctl daemon-reload"}},
		{name: "postrm without systemctl", script: "postremove.sh", args: []string{"purge"}, never: all},

		{name: "new user with sysusers", script: "preinstall.sh", args: []string{"install"}, sdTools: true,
			want: []string{`systemd-sysusers --inline g ohfp - u ohfp - "Open Host Factory Plugin daemon" /var/lib/ohfp -`}, never: []string{"useradd", "groupadd"}},
		{name: "new user without sysusers", script: "preinstall.sh", args: []string{"1"},
			want: []string{"groupadd --system ohfp", "useradd --system --gid ohfp --home-dir /var/lib/ohfp --no-create-home --shell"}},
		{name: "user already there", script: "preinstall.sh", args: []string{"upgrade", "1.0.0"}, userKnown: true, sdTools: true,
			never: []string{"useradd", "groupadd", "systemd-sysusers"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			stubs := filepath.Join(dir, "bin")
			sdRun := filepath.Join(dir, "run-systemd-system")
			logFile := filepath.Join(dir, "calls.log")
			if err := os.MkdirAll(stubs, 0o755); err != nil {
				t.Fatal(err)
			}
			if c.running {
				if err := os.MkdirAll(sdRun, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			stub := func(name, body string) {
				s := "#!/bin/sh\necho \"" + name + " $*\" >>'" + logFile + "'\n" + body + "\n"
				if err := os.WriteFile(filepath.Join(stubs, name), []byte(s), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			getentRC := "2"
			if c.userKnown {
				getentRC = "0"
			}
			stub("getent", "exit "+getentRC)
			for _, n := range []string{"groupadd", "useradd", "install"} {
				stub(n, "exit 0")
			}
			if c.sdTools {
				stub("systemd-sysusers", "exit 0")
				stub("systemd-tmpfiles", "exit 0")
			}
			if c.systemctl {
				stub("systemctl", "exit 0")
			}
			src, err := os.ReadFile(filepath.Join(repoRoot, "packaging", "scripts", c.script))
			if err != nil {
				t.Fatal(err)
			}
			script := filepath.Join(dir, c.script)
			body := strings.ReplaceAll(string(src), "/run/systemd/system", sdRun)
			if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("/bin/sh", append([]string{script}, c.args...)...)
			cmd.Env = []string{"PATH=" + stubs}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s %q: %v\n%s", c.script, c.args, err, out)
			}
			logged, _ := os.ReadFile(logFile)
			calls := strings.Split(strings.TrimSpace(string(logged)), "\n")
			for _, w := range c.want {
				if !slices.ContainsFunc(calls, func(s string) bool { return strings.HasPrefix(s, w) }) {
					t.Errorf("%s %q did not run %q; it ran:\n%s", c.script, c.args, w, logged)
				}
			}
			for _, n := range c.never {
				if slices.ContainsFunc(calls, func(s string) bool { return strings.HasPrefix(s, n) }) {
					t.Errorf("%s %q ran %q, it must not; it ran:\n%s", c.script, c.args, n, logged)
				}
			}
		})
	}
}

// notifications collects what ohfpd sends to NOTIFY_SOCKET, line by line.
type notifications struct {
	ch   chan string
	seen []string
}

func listenNotify(t *testing.T, path string) *notifications {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	n := &notifications{ch: make(chan string, 1024)}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			k, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(n.ch)
				return
			}
			for _, line := range strings.Split(string(buf[:k]), "\n") {
				if line != "" {
					n.ch <- line
				}
			}
		}
	}()
	return n
}

// wait returns the first line with prefix, already received or to come.
func (n *notifications) wait(ctx context.Context, t *testing.T, prefix string) string {
	t.Helper()
	for _, l := range n.seen {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	for {
		select {
		case l, ok := <-n.ch:
			if !ok {
				t.Fatalf("NOTIFY_SOCKET closed before %q; received %q", prefix, n.seen)
			}
			n.seen = append(n.seen, l)
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-ctx.Done():
			t.Fatalf("no %q from ohfpd; received %q", prefix, n.seen)
		}
	}
}

// TestSocketActivation starts ohfpd the way systemd does: the socket bound
// beforehand and passed as fd 3 (LISTEN_FDS, LISTEN_PID), NOTIFY_SOCKET and
// WATCHDOG_USEC set.
func TestSocketActivation(t *testing.T) {
	dir := t.TempDir()
	sockPath := filepath.Join(dir, "ohfp.sock")
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`# ohfpd must use the passed socket, never create this one.
socket: %s
state_dir: %s
log_format: text
simulate:
  launch_delay: 0s
  terminate_delay: 0s
providers:
  - name: aws
    region: us-east-1
    templates_file: %s
`, filepath.Join(dir, "not-this.sock"), filepath.Join(dir, "state"), filepath.Join(filepath.Dir(filledSample(t, filepath.Join(repoRoot, "packaging"))), "awsprov_templates.json"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sockPath, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	sockFile, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // the child holds the only listening copy, as with systemd
	defer sockFile.Close()

	notifyPath := filepath.Join(dir, "notify.sock")
	notes := listenNotify(t, notifyPath)

	env := slices.DeleteFunc(os.Environ(), func(s string) bool {
		for _, p := range []string{"LISTEN_", "NOTIFY_SOCKET=", "WATCHDOG_", "JOURNAL_STREAM="} {
			if strings.HasPrefix(s, p) {
				return true
			}
		}
		return false
	})
	env = append(env, "LISTEN_FDS=1", "LISTEN_FDNAMES=ohfpd.socket", "NOTIFY_SOCKET="+notifyPath, "WATCHDOG_USEC=2000000")
	// LISTEN_PID must be ohfpd's own pid: the shell exports its pid, then
	// execs ohfpd in its place.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`,
		filepath.Join(binDir, "ohfpd"), "--config", cfgPath, "--simulate")
	cmd.Env = env
	cmd.ExtraFiles = []*os.File{sockFile} // fd 3
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	reaped := false
	defer func() {
		if !reaped {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("ohfpd's log:\n%s", stderr.String())
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	notes.wait(ctx, t, "READY=1")

	// A call over the passed socket.
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sockPath)
		},
	}}
	body := `{"jsonrpc":"2.0","id":1,"method":"getAvailableTemplates","params":{"input":{}}}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://ohfpd/v1/rpc", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("calling ohfpd on the passed socket: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var reply struct {
		ID     int `json:"id"`
		Result struct {
			Templates []struct {
				TemplateID string `json:"templateId"`
			} `json:"templates"`
		} `json:"result"`
		Error *struct{ Message string } `json:"error"`
	}
	if err := json.Unmarshal(raw, &reply); err != nil || reply.Error != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("getAvailableTemplates: HTTP %d, %v: %s", resp.StatusCode, err, raw)
	}
	var ids []string
	for _, tpl := range reply.Result.Templates {
		ids = append(ids, tpl.TemplateID)
	}
	if reply.ID != 1 || !slices.Equal(ids, []string{"OnDemand-c5-large", "Spot-m5-xlarge"}) {
		t.Errorf("getAvailableTemplates answered id %d with templates %v: %s", reply.ID, ids, raw)
	}
	if _, err := os.Stat(filepath.Join(dir, "not-this.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ohfpd created its own socket although systemd passed one (stat: %v)", err)
	}

	if status := notes.wait(ctx, t, "STATUS="); !strings.Contains(status, "requests in flight") {
		t.Errorf("STATUS line %q does not tell the requests in flight", status)
	}
	notes.wait(ctx, t, "WATCHDOG=1")

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	notes.wait(ctx, t, "STOPPING=1")
	select {
	case err := <-exited:
		reaped = true
		if err != nil {
			t.Errorf("ohfpd exited with %v after SIGTERM", err)
		}
	case <-ctx.Done():
		t.Fatal("ohfpd did not exit after SIGTERM")
	}
	if log := stderr.String(); !strings.Contains(log, "using the socket passed by systemd") {
		t.Errorf("ohfpd's log does not say it took the passed socket:\n%s", log)
	}
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine of exec.Cmd
// and the test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSysusersAndTmpfiles applies the shipped sysusers and tmpfiles entries
// to an empty root and checks the user, the group and the folders.
func TestSysusersAndTmpfiles(t *testing.T) {
	needTool(t, "systemd-sysusers", "", "systemd")
	needTool(t, "systemd-tmpfiles", "", "systemd")
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"passwd", "group"} {
		if err := os.WriteFile(filepath.Join(root, "etc", f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, "", nil, "systemd-sysusers", "--root="+root, filepath.Join(repoRoot, "systemd", "ohfp.sysusers"))
	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	group, _ := os.ReadFile(filepath.Join(root, "etc/group"))
	var uid, gid int
	for _, line := range strings.Split(string(passwd), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 7 && f[0] == "ohfp" {
			uid, _ = strconv.Atoi(f[2])
			gid, _ = strconv.Atoi(f[3])
			if f[5] != "/var/lib/ohfp" || !strings.HasSuffix(f[6], "nologin") {
				t.Errorf("user ohfp: home %s, shell %s; want /var/lib/ohfp and nologin", f[5], f[6])
			}
		}
	}
	if uid == 0 || !strings.Contains(string(group), fmt.Sprintf("ohfp:x:%d:", gid)) {
		t.Fatalf("sysusers made no system user and group ohfp:\n%s\n%s", passwd, group)
	}

	run(t, "", nil, "systemd-tmpfiles", "--root="+root, "--create", filepath.Join(repoRoot, "systemd", "ohfp.tmpfiles"))
	for _, d := range []struct {
		path     string
		uid, gid int
	}{{"/etc/ohfp", 0, gid}, {"/run/ohfp", uid, gid}, {"/var/lib/ohfp", uid, gid}} {
		fi, err := os.Stat(filepath.Join(root, d.path))
		if err != nil {
			t.Errorf("tmpfiles did not create %s: %v", d.path, err)
			continue
		}
		if fi.Mode().Perm() != 0o750 || !fi.IsDir() {
			t.Errorf("%s is %v, want a folder with mode 0750", d.path, fi.Mode())
		}
		st := fi.Sys().(*syscall.Stat_t)
		if os.Geteuid() == 0 && (int(st.Uid) != d.uid || int(st.Gid) != d.gid) {
			t.Errorf("%s is owned by %d:%d, want %d:%d", d.path, st.Uid, st.Gid, d.uid, d.gid)
		}
	}
}

// pkgVersion runs version.sh on a `git describe` result.
func pkgVersion(t *testing.T, describe string) string {
	t.Helper()
	return strings.TrimSpace(run(t, repoRoot, nil, "sh", "packaging/version.sh", describe))
}

// nativeVersion is how nfpm writes a semver version for dpkg and rpm:
// pre-release after "~", build metadata after "+".
func nativeVersion(v string) string {
	v, meta, _ := strings.Cut(v, "+")
	if base, pre, ok := strings.Cut(v, "-"); ok {
		v = base + "~" + pre
	}
	if meta != "" {
		v += "+" + meta
	}
	return v
}

func TestPackageVersions(t *testing.T) {
	for describe, want := range map[string]string{
		"v1.2.3":                  "1.2.3",
		"v1.2.3-rc.1":             "1.2.3-rc.1",
		"v1.2.3-4-gabc1234":       "1.2.3+4.gabc1234",
		"v1.2.3-4-gabc1234-dirty": "1.2.3+4.gabc1234.dirty",
		"v2.0.0-rc.1-3-g0123abc":  "2.0.0-rc.1+3.g0123abc",
	} {
		if got := pkgVersion(t, describe); got != want {
			t.Errorf("version.sh %s = %s, want %s", describe, got, want)
		}
	}
	if got := pkgVersion(t, "abc1234"); !regexpMatch(`^0\.0\.0\+git\.[0-9]+\.abc1234$`, got) {
		t.Errorf("version.sh abc1234 = %s, want 0.0.0+git.<commits>.abc1234", got)
	}

	// Each is older than the next, for dpkg and for rpm.
	order := []string{"v1.2.3-rc.1", "v1.2.3-rc.1-2-gbbbbbbb", "v1.2.3", "v1.2.3-1-gccccccc", "v1.2.3-10-gaaaaaaa", "v1.2.4-rc.1", "v1.2.4"}
	_, haveDpkg := exec.LookPath("dpkg")
	_, haveRpm := exec.LookPath("rpm")
	if haveDpkg != nil && haveRpm != nil {
		t.Skip("neither dpkg nor rpm is installed: version ordering NOT checked")
	}
	for i := 0; i+1 < len(order); i++ {
		a, b := nativeVersion(pkgVersion(t, order[i])), nativeVersion(pkgVersion(t, order[i+1]))
		if haveDpkg == nil {
			if err := exec.Command("dpkg", "--compare-versions", a, "lt", b).Run(); err != nil {
				t.Errorf("dpkg: %s (from %s) is not older than %s (from %s)", a, order[i], b, order[i+1])
			}
		}
		if haveRpm == nil {
			out := run(t, "", nil, "rpm", "--eval", fmt.Sprintf(`%%{lua: print(rpm.vercmp(%q, %q))}`, a, b))
			if strings.TrimSpace(out) != "-1" {
				t.Errorf("rpm: %s (from %s) is not older than %s (from %s): vercmp %s", a, order[i], b, order[i+1], out)
			}
		}
	}
}

func regexpMatch(pattern, s string) bool {
	return regexp.MustCompile(pattern).MatchString(s)
}

// TestRpmRequires: every command the maintainer scripts run that is not a
// shell builtin is required by the .rpm (by path, so that any distribution's
// package providing it will do), unless the script runs it only after
// `command -v` finds it. A command added to a script without its Requires
// fails here.
func TestRpmRequires(t *testing.T) {
	needTool(t, "rpm", "OHFP_REQUIRE_RPM", "rpm")
	rpm := onePackage(t, buildPackages(t), "*.rpm")
	requires := strings.Fields(run(t, "", nil, "rpm", "-qp", "--requires", rpm))

	builtins := map[string]bool{"set": true, "exit": true, "case": true, "esac": true, "if": true, "then": true,
		"else": true, "fi": true, "echo": true, "command": true, "[": true, "test": true, "true": true,
		"false": true, ":": true, "!": true, "for": true, "do": true, "done": true, "printf": true}
	// Where a command lives, for the paths the .rpm requires.
	paths := map[string]string{"getent": "/usr/bin/getent", "groupadd": "/usr/sbin/groupadd",
		"useradd": "/usr/sbin/useradd", "install": "/usr/bin/install"}
	scripts, _ := filepath.Glob(filepath.Join(repoRoot, "packaging", "scripts", "*.sh"))
	if len(scripts) != 4 {
		t.Fatalf("want 4 maintainer scripts, found %v", scripts)
	}
	want := map[string]bool{"/bin/sh": true}
	for _, s := range scripts {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), "#!/bin/sh\n") {
			t.Errorf("%s does not start with #!/bin/sh", s)
		}
		guarded := map[string]bool{}
		for _, m := range regexp.MustCompile(`command -v (\S+)`).FindAllStringSubmatch(string(b), -1) {
			guarded[m[1]] = true
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = regexp.MustCompile(`"[^"]*"|'[^']*'`).ReplaceAllString(line, `""`)
			line, _, _ = strings.Cut(line, "#")
			line = strings.TrimSuffix(strings.TrimSpace(line), "\\")
			for _, part := range regexp.MustCompile(`\|\||&&|;;|;|\||\$\(|\bthen\b|\belse\b|\bdo\b|^\s*[^\s()]+\)`).Split(line, -1) {
				f := strings.Fields(part)
				for len(f) > 0 && (f[0] == "if" || f[0] == "!" || f[0] == "then" || f[0] == "else" || strings.Contains(f[0], "=")) {
					f = f[1:]
				}
				if len(f) == 0 || builtins[f[0]] || guarded[f[0]] || strings.HasPrefix(f[0], "\"") ||
					strings.HasPrefix(f[0], "$") || strings.HasPrefix(f[0], ">") || strings.HasPrefix(f[0], "'") ||
					strings.HasPrefix(f[0], "-") || strings.HasSuffix(f[0], ")") || f[0] == "[" || f[0] == "]" {
					continue
				}
				p, ok := paths[f[0]]
				if !ok {
					t.Errorf("%s runs %q (in %q): say where it lives in this test and add it to the rpm's depends in nfpm.yaml", filepath.Base(s), f[0], strings.TrimSpace(line))
					continue
				}
				want[p] = true
			}
		}
	}
	for p := range want {
		if !slices.Contains(requires, p) {
			t.Errorf("the .rpm does not require %s, which its scripts run; it requires %v", p, requires)
		}
	}
	for _, p := range []string{"/usr/bin/getent", "/usr/sbin/groupadd", "/usr/sbin/useradd", "/usr/bin/install"} {
		if !want[p] {
			t.Errorf("the scanner found no use of %s in the scripts: it is broken, or nfpm.yaml requires too much", p)
		}
	}
}
