package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func runMain(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = realMain(args, &o, &e)
	return code, o.String(), e.String()
}

// TestHelp: asked for help, ohfpd prints it on standard output and exits
// 0, however asked.
func TestHelp(t *testing.T) {
	var first string
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"-help"}, {"simulate", "--help"}, {"import-hf", "-h"}} {
		code, out, errOut := runMain(args...)
		if code != 0 || errOut != "" || !strings.HasPrefix(out, "ohfpd "+version+" - ") {
			t.Errorf("ohfpd %s: exit %d, stderr %q, stdout starts %.40q", strings.Join(args, " "), code, errOut, out)
		}
		if first == "" {
			first = out
		} else if out != first {
			t.Errorf("ohfpd %s prints another help", strings.Join(args, " "))
		}
	}
}

// TestHelpListsEverything: every subcommand is in the help and dispatched;
// every flag defined in ohfpd's source is in the help; every option the
// help names is accepted.
func TestHelpListsEverything(t *testing.T) {
	_, help, _ := runMain("--help")
	for _, sub := range subcommands {
		if !strings.Contains(help, "\n  ohfpd "+sub+" ") {
			t.Errorf("the help has no usage line for ohfpd %s", sub)
		}
		code, out, errOut := runMain(sub, "--help")
		if sub == "version" {
			code, out, errOut = runMain(sub)
		}
		if code != 0 || strings.Contains(errOut, "unexpected argument") || out == "" {
			t.Errorf("ohfpd %s is not dispatched: exit %d, %s", sub, code, errOut)
		}
	}

	// Flags defined in the source, by name.
	var defined []string
	files, _ := filepath.Glob("*.go")
	re := regexp.MustCompile(`fs\.(?:String|Bool|Duration|Int)\("([a-z-]+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			defined = append(defined, m[1])
		}
	}
	if len(defined) < 8 {
		t.Fatalf("found only flags %v in the source: is the pattern stale?", defined)
	}
	for _, f := range defined {
		dash := "--"
		if len(f) == 1 {
			dash = "-"
		}
		if !regexp.MustCompile(`(?m)^  ` + dash + regexp.QuoteMeta(f) + `\b`).MatchString(help) {
			t.Errorf("flag %s%s is not in the help", dash, f)
		}
	}

	// Options the help names, per section, are accepted there.
	section := ""
	for _, line := range strings.Split(help, "\n") {
		if line != "" && !strings.HasPrefix(line, " ") && strings.HasSuffix(line, ":") {
			section = line
			continue
		}
		m := regexp.MustCompile(`^  (--?[a-z-]+)( [A-Z]+)?\s`).FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var args []string
		switch section {
		case "simulate options:":
			args = []string{"simulate"}
		case "import-hf options:":
			args = []string{"import-hf"}
		case "Options:":
		default:
			continue
		}
		args = append(args, m[1])
		switch m[2] {
		case "":
		case " D":
			args = append(args, "1s")
		default:
			args = append(args, "x")
		}
		args = append(args, "--help")
		if code, _, errOut := runMain(args...); code != 0 {
			t.Errorf("ohfpd %s: exit %d, %s (the help names an option that is refused)", strings.Join(args, " "), code, errOut)
		}
	}
}

func TestVersionAndUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if code, out, _ := runMain(args...); code != 0 || out != "ohfpd "+version+"\n" {
			t.Errorf("ohfpd %s: exit %d, %q", args[0], code, out)
		}
	}
	for _, args := range [][]string{{"version", "x"}, {"--bogus"}, {"bogus"}, {"simulate", "x"}, {"import-hf"}, {"import-hf", "a", "b"}} {
		code, out, errOut := runMain(args...)
		if code != 2 || out != "" || !strings.HasPrefix(errOut, "ohfpd: ") || !strings.Contains(errOut, "(see ohfpd --help)") {
			t.Errorf("ohfpd %s: exit %d, stdout %q, stderr %q; want exit 2 and a short message on stderr", strings.Join(args, " "), code, out, errOut)
		}
	}
}

// TestImportHFCommand: the YAML on standard output, notes said once; with
// -o, the file, and the notes on standard error; exit 0 for a file that
// loads, 1 for one that does not.
func TestImportHFCommand(t *testing.T) {
	src := "../internal/config/testdata/hf/awsinst"
	code, out, errOut := runMain("import-hf", src)
	if code != 0 || errOut != "" || !strings.Contains(out, "placementGroupName") || strings.Count(out, "placementGroupName") != 1 {
		t.Errorf("to stdout: exit %d, stderr %q\n%s", code, errOut, out)
	}
	file := filepath.Join(t.TempDir(), "ohfp.yaml")
	code, out, errOut = runMain("import-hf", src, "-o", file)
	if code != 0 || out != "" || !strings.HasSuffix(errOut, "wrote "+file+"\n") {
		t.Errorf("to a file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if b, _ := os.ReadFile(file); strings.Count(string(b), "placementGroupName") != 1 {
		t.Errorf("the file does not carry placementGroupName once:\n%s", b)
	}
	if code, out, _ := runMain("--check-config", "--config", file); code != 0 || !strings.Contains(out, "OK (1 provider, 2 templates)") {
		t.Errorf("the imported file does not check: exit %d, %s", code, out)
	}

	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "awsprov_templates.json"), []byte(`{"templates": [{"templateId": "x", "maxNumber": 1, "vmType": "c5.large"}]}`), 0o600)
	code, out, errOut = runMain("import-hf", bad)
	if code != 1 || out == "" || !strings.Contains(errOut, "imageId: missing") || strings.Count(errOut, "does not load") != 1 {
		t.Errorf("invalid: exit %d, stderr %q", code, errOut)
	}
}

// TestReadmeListsEveryPackage: the README's code layout names every
// package of the module (a newcomer finds each concern by its name).
func TestReadmeListsEveryPackage(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	layout := string(readme)
	if i := strings.Index(layout, "Code layout:"); i >= 0 {
		layout = layout[i:]
	} else {
		t.Fatal(`README.md has no "Code layout:"`)
	}
	err = filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != ".." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		pkg := filepath.ToSlash(filepath.Dir(strings.TrimPrefix(path, "../")))
		if pkg == "." || strings.Contains(layout, "`"+pkg+"`") || strings.Contains(layout, "`"+pkg+"/`") {
			return nil
		}
		t.Errorf("README's code layout does not name package %s", pkg)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestImportHFPathsWhereSaved: an IBM provider folder whose templates set
// userData but which holds no user_data.sh (IBM keeps it in its scripts
// folder) imports with exit 0 when user_data.sh is beside the file
// written, as ohfpd --check-config then finds it: relative paths are
// checked where the file goes, not in the IBM folder. Without one anywhere,
// exit 1, the problem placed at the template's userData line. Two
// hostProviders.json entries sharing the folder are said, not silently
// picked from.
func TestImportHFPathsWhereSaved(t *testing.T) {
	hf := filepath.Join(t.TempDir(), "providers")
	src := filepath.Join(hf, "awsinst")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "awsprov_templates.json"), []byte(`{"templates": [{"templateId": "T1", "maxNumber": 2, "vmType": "c5.large",
		"imageId": "ami-0123456789abcdef0", "userData": "site=a"}]}`), 0o600)
	os.WriteFile(filepath.Join(hf, "hostProviders.json"), []byte(`{"version": 2, "providers": [
		{"name": "awsinst", "enabled": 1, "plugin": "aws", "confPath": "${HF_CONFDIR}/providers/awsinst/"},
		{"name": "prod-aws", "enabled": 1, "plugin": "aws", "confPath": "${HF_CONFDIR}/providers/awsinst/"}]}`), 0o644)
	script, err := os.ReadFile("../packaging/user_data.sh")
	if err != nil {
		t.Fatal(err)
	}

	outDir := t.TempDir()
	file := filepath.Join(outDir, "config.yaml")
	// No user_data.sh anywhere: exit 1, at the userData line.
	code, _, errOut := runMain("import-hf", "-o", file, src)
	b, _ := os.ReadFile(file)
	line := 0
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "userData: site=a") {
			line = i + 1
		}
	}
	if code != 1 || line == 0 || !strings.Contains(errOut, fmt.Sprintf("%s:%d:", file, line)) || !strings.Contains(errOut, "userData is variables") {
		t.Errorf("no user_data.sh: exit %d (want 1), the error should be at %s:%d (userData):\n%s\n%s", code, file, line, errOut, b)
	}
	if !strings.Contains(errOut, "names this folder for 2 providers (awsinst, prod-aws): the provider is named awsinst") {
		t.Errorf("two providers sharing the folder are not said:\n%s", errOut)
	}

	// user_data.sh beside the output: exit 0, and it checks.
	os.WriteFile(filepath.Join(outDir, "user_data.sh"), script, 0o644)
	code, _, errOut = runMain("import-hf", "-o", file, src)
	if code != 0 || strings.Contains(errOut, "user_data_template") {
		t.Errorf("user_data.sh beside %s: exit %d (want 0), stderr:\n%s", file, code, errOut)
	}
	if code, out, errOut := runMain("--check-config", "--config", file); code != 0 {
		t.Errorf("--check-config of the imported file: exit %d\n%s%s", code, out, errOut)
	}

	// To standard output: checked as if saved in the current folder.
	code, out, errOut := runMain("import-hf", src)
	if code != 1 || !strings.Contains(out, "userData: site=a") || !strings.Contains(errOut, "checked as if saved in the current folder") {
		t.Errorf("to stdout from a folder without user_data.sh: exit %d, stderr:\n%s", code, errOut)
	}
}
