package packaging

import (
	"compress/gzip"
	"fmt"
	"io"
	"net"
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
)

// ensureTool makes sure tool is installed: if it is not, it installs pkgs
// from the distribution's packages (apt-get, as root). The test is skipped,
// saying so loudly, only when the tool is missing and cannot be installed;
// with requireVar set in the environment it fails instead.
func ensureTool(t *testing.T, tool, requireVar string, pkgs ...string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err == nil {
		return
	}
	if _, err := exec.LookPath("apt-get"); err == nil && os.Geteuid() == 0 {
		aptMu.Lock()
		cmd := exec.Command("apt-get", append([]string{"install", "-y", "-qq", "--no-install-recommends"}, pkgs...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		aptMu.Unlock()
		if err != nil {
			t.Logf("apt-get install %s: %v\n%s", strings.Join(pkgs, " "), err, out)
		}
		if _, err := exec.LookPath(tool); err == nil {
			return
		}
	}
	needTool(t, tool, requireVar, strings.Join(pkgs, " "))
}

var aptMu sync.Mutex

// TestLintian: the .deb is lintian-clean at every level, info (-I) and
// pedantic included, as an operator runs it; what is on purpose is
// overridden in packaging/lintian-overrides, each with its reason. (Without
// -I lintian shows no info tag, and --fail-on counts only what it shows.)
func TestLintian(t *testing.T) {
	ensureTool(t, "lintian", "OHFP_REQUIRE_LINT", "lintian")
	deb := onePackage(t, buildPackages(t), "*.deb")
	cmd := exec.Command("lintian", "-I", "--pedantic", "--fail-on", "error,warning,info,pedantic", deb)
	out, err := cmd.CombinedOutput()
	var findings []string
	// Two of Go's string constants read as one word ("withThe"): see
	// packaging/lintian-overrides.
	glued := regexp.MustCompile(`^I: ohfp: spelling-error-in-binary [a-z]+[A-Z][a-z]+ \S.* \[usr/bin/ohfpd?\]$`)
	for _, l := range strings.Split(string(out), "\n") {
		if glued.MatchString(l) {
			t.Logf("lintian, two Go strings read as one word: %s", l)
			continue
		}
		if regexp.MustCompile(`^[EWIPX]: `).MatchString(l) {
			findings = append(findings, l)
		}
	}
	if len(findings) > 0 || err != nil && !(len(findings) == 0 && strings.Contains(string(out), "spelling-error-in-binary")) {
		t.Errorf("lintian: %v\n%s", err, out)
	}
}

// TestRpmlint: the .rpm is rpmlint-clean as an operator runs it, with
// rpmlint's own defaults and no option: `rpmlint dist/ohfp-….rpm` reads the
// dist/ohfp.rpmlintrc that build.sh puts beside the package (the findings
// that are on purpose, each with its reason; a filter that matches nothing
// is an error of its own, unused-rpmlintrc-filter).
func TestRpmlint(t *testing.T) {
	ensureTool(t, "rpmlint", "OHFP_REQUIRE_LINT", "rpmlint", "python3-magic")
	dist := buildPackages(t)
	rpm := onePackage(t, dist, "*.rpm")
	onePackage(t, dist, "*.rpmlintrc")
	cmd := exec.Command("rpmlint", filepath.Join("dist", filepath.Base(rpm)))
	cmd.Dir = filepath.Dir(dist)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_DIRS="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), " 0 errors, 0 warnings") || !strings.Contains(string(out), "ohfp.rpmlintrc") {
		t.Errorf("rpmlint (want 0 errors, 0 warnings, with dist/ohfp.rpmlintrc read): %v\n%s", err, out)
	}
}

// extractDeb unpacks the .deb once and returns the folder.
func extractDeb(t *testing.T) string {
	t.Helper()
	needTool(t, "dpkg-deb", "", "dpkg")
	deb := onePackage(t, buildPackages(t), "*.deb")
	debOnce.Do(func() {
		debRoot = filepath.Join(tmpRoot, "deb-root")
		if out, err := exec.Command("dpkg-deb", "-x", deb, debRoot).CombinedOutput(); err != nil {
			debErr = fmt.Errorf("dpkg-deb -x: %v\n%s", err, out)
		}
	})
	if debErr != nil {
		t.Fatal(debErr)
	}
	return debRoot
}

var (
	debOnce sync.Once
	debRoot string
	debErr  error
)

func gunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// render formats a man page as man(1) would show it, failing on any
// warning of groff's.
func render(t *testing.T, page string) string {
	t.Helper()
	cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-rLL=200n")
	cmd.Stdin = strings.NewReader(page)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Errorf("groff: %v\n%s", err, stderr.String())
	}
	// Undo overstriking and the hyphens' Unicode forms.
	s := regexp.MustCompile(".\b").ReplaceAllString(string(out), "")
	return strings.NewReplacer("\u2010", "-", "\u2212", "-", "\u2019", "'", "\u2018", "'").Replace(s)
}

// TestManPages: the pages are made from the programs' help and the
// configuration reference, so each says all they say: every ohfpd
// subcommand and option, every ohfp command, every configuration key.
func TestManPages(t *testing.T) {
	ensureTool(t, "groff", "", "groff-base")
	root := extractDeb(t)
	pages := map[string]string{}
	for _, m := range manPages {
		pages[filepath.Base(m)] = render(t, gunzip(t, filepath.Join(root, m)))
	}

	helpOf := func(prog string) string { return run(t, "", nil, filepath.Join(binDir, prog), "help") }
	for prog, page := range map[string]string{"ohfpd": pages["ohfpd.8.gz"], "ohfp": pages["ohfp.1.gz"]} {
		help := helpOf(prog)
		// Every option and every command word of the help is on the page.
		for _, m := range regexp.MustCompile(`(?m)^  ((?:--?|ohfpd |)[a-z][a-z-]*)`).FindAllStringSubmatch(help, -1) {
			if !strings.Contains(page, m[1]) {
				t.Errorf("%s's man page lacks %q, which its help has", prog, m[1])
			}
		}
	}
	// ohfp(1)'s sections are the help's, each heading one line of the help
	// (a heading over two lines once became a section of its own), and
	// every entry has its description (an entry whose description runs on
	// beside the next entry's term once split into two).
	src := gunzip(t, filepath.Join(root, "usr/share/man/man1/ohfp.1.gz"))
	var heads []string
	for _, m := range regexp.MustCompile(`(?m)^\.SH "?([^"\n]*)"?$`).FindAllStringSubmatch(src, -1) {
		heads = append(heads, m[1])
	}
	if want := []string{"NAME", "SYNOPSIS", "SYSADMIN COMMANDS", "OPERATOR COMMANDS", "OPTIONS", "EXIT STATUS", "FILES", "SEE ALSO"}; !slices.Equal(heads, want) {
		t.Errorf("ohfp(1) has the sections %q, want %q", heads, want)
	}
	lines := strings.Split(src, "\n")
	for i, l := range lines {
		if l != ".TP" {
			continue
		}
		j := i + 1
		for j+1 < len(lines) && lines[j+1] == ".TQ" {
			j += 2
		}
		if j+1 >= len(lines) || strings.HasPrefix(lines[j+1], ".") {
			t.Errorf("ohfp(1): the entry %q has no description", lines[j])
		}
	}
	for _, w := range []string{"return --request REQ", "undrain TEMPLATE", "2 down"} {
		if !strings.Contains(pages["ohfp.1.gz"], w) {
			t.Errorf("ohfp(1) lacks %q", w)
		}
	}
	exit := pages["ohfp.1.gz"][strings.Index(pages["ohfp.1.gz"], "EXIT STATUS"):]
	exit = exit[:strings.Index(exit, "FILES")]
	exit = strings.Join(strings.Fields(regexp.MustCompile(`-\n\s*`).ReplaceAllString(exit, "")), " ")
	for _, w := range []string{"status: healthy", "status: degraded", "2 status: down"} {
		if !strings.Contains(exit, w) {
			t.Errorf("ohfp(1)'s EXIT STATUS lacks %q (ohfp status's exit codes):\n%s", w, exit)
		}
	}
	for _, sub := range []string{"ohfpd simulate", "ohfpd import-hf", "ohfpd version", "ohfpd help", "--check-config", "--rebuild-from-cloud"} {
		if !strings.Contains(pages["ohfpd.8.gz"], sub) {
			t.Errorf("ohfpd(8) lacks %s", sub)
		}
	}

	// ohfp.yaml(5): every key of the reference (which a test of
	// internal/config holds to the keys the configuration accepts).
	ref, err := os.ReadFile(filepath.Join(repoRoot, "internal", "config", "reference.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(ref), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		key := strings.Trim(strings.TrimSpace(strings.Split(line, "|")[1]), "`")
		key, _, _ = strings.Cut(key, "`")
		n++
		if !strings.Contains(pages["ohfp.yaml.5.gz"], key) {
			t.Errorf("ohfp.yaml(5) lacks the key %s", key)
		}
	}
	if n < 60 {
		t.Errorf("only %d keys found in reference.md", n)
	}
	// The installed reference is the source's.
	if b, _ := os.ReadFile(filepath.Join(root, "usr/share/doc/ohfp/reference.md")); string(b) != string(ref) {
		t.Error("/usr/share/doc/ohfp/reference.md is not internal/config/reference.md")
	}
	// The sample config points at the reference where it is installed.
	if b, _ := os.ReadFile(filepath.Join(root, "etc/ohfp/config.yaml")); !strings.Contains(string(b), "/usr/share/doc/ohfp/reference.md") || !strings.Contains(string(b), "ohfp.yaml(5)") {
		t.Error("/etc/ohfp/config.yaml does not point at ohfp.yaml(5) and /usr/share/doc/ohfp/reference.md")
	}
}

// complete runs the installed bash completion for a command line whose
// last word is being completed, and returns the candidates.
func complete(t *testing.T, script string, words ...string) []string {
	t.Helper()
	fn := map[string]string{"ohfp": "_ohfp", "ohfpd": "_ohfpd"}[words[0]]
	var q []string
	for _, w := range words {
		q = append(q, "'"+w+"'")
	}
	sh := ". '" + script + "'\nCOMP_WORDS=(" + strings.Join(q, " ") + ")\nCOMP_CWORD=" +
		itoa(len(words)-1) + "\n" + fn + "\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
	cmd := exec.Command("bash", "--norc", "--noprofile", "-c", sh)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash completion of %q: %v\n%s", words, err, out)
	}
	return strings.Fields(string(out))
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestCompletions: the installed bash completion offers what the programs'
// help lists; the zsh one parses and lists the same commands.
func TestCompletions(t *testing.T) {
	ensureTool(t, "bash", "", "bash")
	root := extractDeb(t)
	script := filepath.Join(root, "usr/share/bash-completion/completions/ohfp")
	if l, err := os.Readlink(filepath.Join(root, "usr/share/bash-completion/completions/ohfpd")); err != nil || l != "ohfp" {
		t.Errorf("bash-completion/completions/ohfpd: %q %v, want a link to ohfp (bash-completion loads by name)", l, err)
	}
	has := func(got []string, want ...string) {
		t.Helper()
		for _, w := range want {
			found := false
			for _, g := range got {
				found = found || g == w
			}
			if !found {
				t.Errorf("completion offers %q, lacking %q", got, w)
			}
		}
	}
	top := append(append([]string{}, hfOperations...), "status", "requests", "machines", "templates", "show", "config", "help",
		"cancel", "return", "drain", "undrain", "rearm", "check")
	has(complete(t, script, "ohfp", ""), top...)
	has(complete(t, script, "ohfp", "cancel", "ret-1", "--"), "--return")
	has(complete(t, script, "ohfp", "return", "--"), "--request")
	has(complete(t, script, "ohfp", "check", "--"), "--provider")

	// Every command, subcommand and option ohfp's help lists is offered:
	// read from the help itself, entry by entry ("  WORD [WORD] ... options").
	help := run(t, "", nil, filepath.Join(binDir, "ohfp"), "help")
	n := 0
	for _, line := range strings.Split(help, "\n") {
		if !regexp.MustCompile(`^  [a-z-]`).MatchString(line) {
			continue
		}
		term := strings.TrimSpace(line)
		if loc := regexp.MustCompile(`\S {2,}\S`).FindStringIndex(term); loc != nil {
			term = term[:loc[0]+1]
		}
		f := strings.Fields(term)
		if f[0] == "ohfp" { // Usage: ohfp <operation>, ohfp <command>
			continue
		}
		opts := regexp.MustCompile(`(?:^|[\s\[,])(--?[a-z][a-z-]*)`).FindAllStringSubmatch(term, -1)
		if strings.HasPrefix(f[0], "-") { // an entry of Options
			for _, o := range opts {
				has(complete(t, script, "ohfp", "-"), o[1])
				n++
			}
			continue
		}
		has(complete(t, script, "ohfp", ""), f[0])
		n++
		if len(f) > 1 && regexp.MustCompile(`^[a-z][a-z-]*$`).MatchString(f[1]) {
			has(complete(t, script, "ohfp", f[0], ""), f[1])
		}
		for _, o := range opts {
			has(complete(t, script, "ohfp", f[0], "-"), o[1])
		}
	}
	if n < 20 {
		t.Errorf("only %d commands and options read from ohfp's help:\n%s", n, help)
	}
	has(complete(t, script, "ohfp", "config", ""), "reload", "validate", "import-hf")
	has(complete(t, script, "ohfp", "requests", ""), "watch")
	has(complete(t, script, "ohfp", "--socket", "/x", "con"), "config")
	has(complete(t, script, "ohfp", "machines", "--"), "--request", "--all", "--json")
	has(complete(t, script, "ohfpd", ""), "simulate", "import-hf", "version", "help")
	has(complete(t, script, "ohfpd", "--"), "--config", "--check-config", "--simulate", "--rebuild-from-cloud", "--version", "--help")
	has(complete(t, script, "ohfpd", "simulate", "--"), "--listen", "--region", "--launch-delay", "--terminate-delay")
	has(complete(t, script, "ohfpd", "import-hf", "-"), "-o", "--name")

	zsh := filepath.Join(root, "usr/share/zsh/vendor-completions/_ohfp")
	b, err := os.ReadFile(zsh)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "#compdef ohfp ohfpd\n") {
		t.Error("_ohfp does not start with #compdef ohfp ohfpd")
	}
	for _, w := range append(top, "simulate", "import-hf", "reload", "validate", "watch", "--check-config", "--return", "--request", "--provider") {
		if !strings.Contains(string(b), w) {
			t.Errorf("the zsh completion lacks %s", w)
		}
	}
	if _, err := exec.LookPath("zsh"); err == nil {
		if out, err := exec.Command("zsh", "-n", zsh).CombinedOutput(); err != nil {
			t.Errorf("zsh -n _ohfp: %v\n%s", err, out)
		}
	} else {
		t.Log("zsh is not installed: the zsh completion's syntax was NOT checked")
	}
}

var hfOperations = []string{"getAvailableTemplates", "requestMachines", "getRequestStatus", "requestReturnMachines", "getReturnRequests"}

// TestDocsAgree: the README and the operator's guide agree with each other,
// with IBM's layout, with the packages make package builds and with the
// programs' help.
func TestDocsAgree(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(repoRoot, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	docs := map[string]string{"README.md": read("README.md"), "packaging/README-ops.md": read("packaging/README-ops.md")}

	ohfpdHelp := run(t, "", nil, filepath.Join(binDir, "ohfpd"), "help")
	ohfpHelp := run(t, "", nil, filepath.Join(binDir, "ohfp"), "help")
	dist := buildPackages(t)
	native := strings.Replace(testVersion, "-", "~", 1)
	for name, doc := range docs {
		// Where HF keeps its two registration files (IBM: plugins in
		// conf/providerplugins/, instances in conf/providers/).
		if !strings.Contains(doc, "$HF_TOP/conf/providerplugins/hostProviderPlugins.json") {
			t.Errorf("%s does not place hostProviderPlugins.json in $HF_TOP/conf/providerplugins/", name)
		}
		if regexp.MustCompile(`conf/providers/\S*hostProviderPlugins`).MatchString(doc) || strings.Contains(doc, "both in\n`$HF_TOP/conf/providers/`") {
			t.Errorf("%s places hostProviderPlugins.json in conf/providers/", name)
		}
		// The package files it names are those make package builds.
		for _, m := range regexp.MustCompile("`(?:dist/)?(ohfp[_-]<version>[^`]*)`").FindAllStringSubmatch(doc, -1) {
			file := strings.Replace(m[1], "<version>", native, 1)
			if runtime.GOARCH != "amd64" {
				continue
			}
			if _, err := os.Stat(filepath.Join(dist, file)); err != nil {
				got, _ := filepath.Glob(filepath.Join(dist, "ohfp*"))
				t.Errorf("%s names the package %s; make package builds %v", name, m[1], got)
			}
		}
		// Links resolve in a clone.
		for _, m := range regexp.MustCompile(`\]\(([^)#:]+)\)`).FindAllStringSubmatch(doc, -1) {
			if _, err := os.Stat(filepath.Join(repoRoot, filepath.Dir(name), m[1])); err != nil {
				t.Errorf("%s links %s, which a clone does not have", name, m[1])
			}
		}
		// ohfpd's subcommands and options it names exist.
		for _, m := range regexp.MustCompile("ohfpd ((?:--?)?[a-z][a-z-]+)").FindAllStringSubmatch(doc, -1) {
			w := m[1]
			if strings.HasPrefix(w, "-") || slices.Contains([]string{"simulate", "import-hf", "version", "help"}, w) {
				if !strings.Contains(ohfpdHelp, w) {
					t.Errorf("%s names ohfpd %s, which ohfpd's help does not have", name, w)
				}
			}
		}
		for _, m := range regexp.MustCompile("`ohfp ([a-z][a-z-]+)").FindAllStringSubmatch(doc, -1) {
			if !strings.Contains(ohfpHelp, "\n  "+m[1]) && m[1] != "help" {
				t.Errorf("%s names ohfp %s, which ohfp's help does not have", name, m[1])
			}
		}
	}
}

// TestReadmeMessagesAreTheBinaries: the messages the README's Troubleshoot
// table quotes are those the binaries print, and its command lines run as
// written on a host with no AWS credentials.
func TestReadmeMessagesAreTheBinaries(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)

	t.Run("permission denied", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("runs ohfp as another user: needs root")
		}
		// A socket in a folder the caller may not enter (as /run/ohfp is
		// 0750 root:ohfp), called by a user outside the group.
		top, err := os.MkdirTemp("", "ohfp-perm-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(top)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(os.Chmod(top, 0o755))
		must(os.MkdirAll(filepath.Join(top, "bin"), 0o755))
		must(os.MkdirAll(filepath.Join(top, "run"), 0o750))
		bin, err := os.ReadFile(filepath.Join(binDir, "ohfp"))
		must(err)
		must(os.WriteFile(filepath.Join(top, "bin", "ohfp"), bin, 0o755))
		sock := filepath.Join(top, "run", "ohfp.sock")
		ln, err := net.Listen("unix", sock)
		must(err)
		defer ln.Close()
		cmd := exec.Command(filepath.Join(top, "bin", "ohfp"), "status")
		cmd.Env = []string{"OHFP_SOCKET=" + sock, "OHFP_WAIT=0", "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, _ := cmd.CombinedOutput()
		msg := strings.TrimSpace(string(out))
		_, msg, _ = strings.Cut(msg, "permission denied on ")
		if msg == "" {
			t.Fatalf("ohfp status as a user outside the socket's group printed %q, no permission denied", out)
		}
		msg = "permission denied on " + strings.Replace(msg, sock, "/run/ohfp/ohfp.sock", 1)
		if !strings.Contains(readme, "`"+msg+"`") {
			t.Errorf("README's Troubleshoot does not quote what ohfp prints to a user outside the socket's group:\n%s", msg)
		}
	})

	t.Run("aws against the simulated region", func(t *testing.T) {
		if _, err := exec.LookPath("aws"); err != nil {
			t.Skip("the AWS CLI is not installed: the README's aws line was NOT run")
		}
		m := regexp.MustCompile(`(?m)^AWS_ACCESS_KEY_ID=\S+ AWS_SECRET_ACCESS_KEY=\S+ \\\n\s+aws --endpoint-url http://127\.0\.0\.1:4566 .*$`).FindString(readme)
		if m == "" {
			t.Fatal("README has no aws command line with keys against the simulated region")
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		sim := exec.Command(filepath.Join(binDir, "ohfpd"), "simulate", "--listen", addr)
		if err := sim.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { sim.Process.Kill(); sim.Wait() }()
		for i := 0; ; i++ {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				break
			}
			if i > 200 {
				t.Fatal("ohfpd simulate did not listen")
			}
			time.Sleep(50 * time.Millisecond)
		}
		home := t.TempDir() // no ~/.aws: a host with no credentials
		cmd := exec.Command("sh", "-c", strings.Replace(m, "127.0.0.1:4566", addr, 1))
		cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "AWS_EC2_METADATA_DISABLED=true",
			"AWS_CONFIG_FILE=" + filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials")}
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Reservations") {
			t.Errorf("the README's line %q: %v\n%s", m, err, out)
		}
	})
}
