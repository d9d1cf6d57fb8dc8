package english

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestPlural(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{{0, "0 machines"}, {1, "1 machine"}, {2, "2 machines"}, {-1, "-1 machines"}} {
		if got := Plural(c.n, "machine"); got != c.want {
			t.Errorf("Plural(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

func TestPlurals(t *testing.T) {
	if got := Plurals(1, "pass", "passes"); got != "1 pass" {
		t.Errorf("Plurals(1) = %q", got)
	}
	if got := Plurals(3, "pass", "passes"); got != "3 passes" {
		t.Errorf("Plurals(3) = %q", got)
	}
}

// TestNoHandMadePlurals: a count people read is written with Plural or
// Plurals, not as "%d machines" (which says "1 machines"). It reads every
// Go source of the module except tests, the simulated region (AWS's own
// messages, verbatim) and the benchmark's report. A count that can never
// be 1 (a byte size, a limit) is listed in never1, with why.
func TestNoHandMadePlurals(t *testing.T) {
	never1 := []string{
		"bytes",                                                       // sizes: a limit or a file's length, never read as a count of things
		"units asked: must",                                           // the message of a count below 1
		"Itoa(MaxMachineCount", "Itoa(MaxInputBytes", "Itoa(MaxDepth", // constants
		"%d providers (%s, %s)", // two names or more
		"more of %d writes",     // more than one failed
	}
	bad := regexp.MustCompile(`(?:%d|Itoa\([^)]*\)\s*\+\s*") (?:(?:more|live|unfinished|failed|full|other) )?([a-z]+s)\b`)
	verbs := map[string]bool{"is": true, "has": true, "was": true, "does": true, "refuses": true}
	root := "../.."
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "awssim", "bench", "testdata", ".git":
				return filepath.SkipDir
			}
			if strings.HasPrefix(d.Name(), ".") && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		n++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
	line:
		for i, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "//") {
				continue
			}
			found := false
			for _, m := range bad.FindAllStringSubmatch(l, -1) {
				found = found || !verbs[m[1]]
			}
			if !found {
				continue
			}
			for _, ok := range never1 {
				if strings.Contains(l, ok) {
					continue line
				}
			}
			t.Errorf("%s:%d: a count written by hand (says \"1 ...s\"): use english.Plural: %s", path, i+1, strings.TrimSpace(l))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Errorf("only %d Go files read", n)
	}
}
