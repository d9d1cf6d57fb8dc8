package packaging

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinariesAreStatic: both binaries, as `make build` makes them and the
// packages ship them, load no shared library and need no dynamic loader, so
// they run on any Linux of their architecture whatever its glibc (RHEL,
// Rocky and Alma 8 have 2.28; a cgo build on a current system needs 2.34).
// That is why neither package declares a libc dependency.
func TestBinariesAreStatic(t *testing.T) {
	for _, name := range []string{"ohfpd", "ohfp"} {
		path := filepath.Join(binDir, name)
		f, err := elf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s asks for a dynamic loader (PT_INTERP): it is not static", name)
			}
		}
		if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
			t.Errorf("%s needs shared libraries %v (%v): build it with CGO_ENABLED=0", name, libs, err)
		}
		if syms, _ := f.ImportedSymbols(); len(syms) > 0 {
			t.Errorf("%s imports %d dynamic symbols, e.g. %v@%s", name, len(syms), syms[0].Name, syms[0].Version)
		}
		f.Close()
	}
}

// TestBuildRefusesDynamicBinaries: build.sh will not package an ohfpd that
// is not a static, cgo-free Go build.
func TestBuildRefusesDynamicBinaries(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(sh) // any dynamically linked program will do
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(bin, "ohfpd"), b, 0o755)
	ohfp, _ := os.ReadFile(filepath.Join(binDir, "ohfp"))
	os.WriteFile(filepath.Join(bin, "ohfp"), ohfp, 0o755)
	cmd := exec.Command("./packaging/build.sh", "v"+testVersion)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "OHFP_BIN="+bin, "OHFP_DIST="+filepath.Join(dir, "dist"))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is not a static, cgo-free Go build") {
		t.Errorf("build.sh packaged a dynamically linked ohfpd: %v\n%s", err, out)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "dist", "*")); len(m) > 0 {
		t.Errorf("build.sh left %v", m)
	}
}
