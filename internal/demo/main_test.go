package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs the demo as `make demo` does, its output not a terminal:
// it explains before it shows, prints no terminal escape codes, and leaves
// ohfpd's log where it says it is.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and runs a whole HF cycle")
	}
	bin := t.TempDir()
	for _, b := range []struct{ out, pkg string }{{"ohfpd", "../../daemon"}, {"ohfp", "../../client"}} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, b.out), b.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	dir := filepath.Join(t.TempDir(), "demo")
	var out bytes.Buffer
	if err := run(&out, bin, dir, false); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	if strings.Contains(text, "\x1b") {
		t.Error("escape codes in the demo's output, which is not a terminal")
	}
	if !strings.HasPrefix(text, "IBM Spectrum Symphony's Host Factory (HF) ") {
		t.Errorf("the demo does not start by saying what HF is:\n%.300s", text)
	}
	for _, want := range []string{"0. Start ohfpd", "1. getAvailableTemplates\n   HF asks", "2. requestMachines", "3. getRequestStatus", "4. getReturnRequests\n   HF asks whether", "5. requestReturnMachines", "6. getRequestStatus on the return", "7. A mistake in the input", "exit 1:", "Done: 3 machines"} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	if n := strings.Count(text, "\n"); n > 400 {
		t.Errorf("the demo prints %d lines", n)
	}
	logPath := filepath.Join(dir, "ohfpd.log")
	if !strings.Contains(text, "ohfpd's log: "+logPath) {
		t.Errorf("the demo does not say where ohfpd's log is (%s)", logPath)
	}
	log, err := os.ReadFile(logPath)
	if err != nil || !bytes.Contains(log, []byte("simulated AWS region")) {
		t.Errorf("ohfpd's log is not kept at %s: %v\n%.500s", logPath, err, log)
	}
	if strings.Contains(string(log), "\x1b") {
		t.Error("escape codes in ohfpd's log file")
	}
}
