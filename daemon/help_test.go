package main

import (
	"bytes"
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
