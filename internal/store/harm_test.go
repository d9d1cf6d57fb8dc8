package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ohfp/ohfp/internal/store/storetest"
)

// Issue 12 ("Do no harm"): a full or read-only disk, a lost identity
// file, and a state directory of the wrong owner. What would kill the
// process (Badger faulting with SIGBUS on a full disk) runs in a child
// process: this test binary again, running TestStoreChild.

// runChild runs TestStoreChild in a new process doing mode on dir, and
// returns its exit code and output.
func runChild(t *testing.T, mode, dir string, cred *syscall.Credential) (int, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestStoreChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "OHFP_STORE_CHILD="+mode, "OHFP_STORE_DIR="+dir)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	out, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = -int(ws.Signal())
		}
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

// TestStoreChild is the child process of runChild (skipped otherwise).
func TestStoreChild(t *testing.T) {
	mode, dir := os.Getenv("OHFP_STORE_CHILD"), os.Getenv("OHFP_STORE_DIR")
	if mode == "" {
		t.Skip("the child process of other tests")
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	defer func() { fmt.Print(logs.String()) }()
	switch mode {
	case "fill-close", "lie-close", "fill-crash":
		// Writes 300 records, then the disk fills up (or statfs says so);
		// then Close, or a crash (exit without closing: as a SIGKILL, the
		// page cache keeps every synced write).
		s, err := Open(dir, logger)
		if err != nil {
			t.Fatal(err)
		}
		fill(t, s, "m/", 300)
		switch mode {
		case "lie-close":
			statfs = fullStatfs(1 << 20)
		default:
			fillDisk(t, dir)
		}
		if mode == "fill-crash" {
			fmt.Print(logs.String())
			fmt.Println("child: crashed")
			os.Exit(0)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		fmt.Println("child: closed")
	case "open":
		s, err := Open(dir, logger)
		if err != nil {
			fmt.Printf("child: Open: %v\n", err)
			return
		}
		fmt.Println("child: opened")
		s.Close()
	default:
		t.Fatalf("unknown mode %q", mode)
	}
}

// tmpfs mounts a small tmpfs for a test, or skips it (not root, no mount).
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0750", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s)", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk fills dir's filesystem to the last byte with dir/filler.
func fillDisk(t testing.TB, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	for n := 4096; n > 0; n /= 2 { // the last partial megabyte
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
}

// fullStatfs is a statfs reporting free bytes available, of 1 GB.
func fullStatfs(free uint64) func(string, *unix.Statfs_t) error {
	return func(dir string, st *unix.Statfs_t) error {
		if err := unix.Statfs(dir, st); err != nil {
			return err
		}
		st.Bsize, st.Blocks, st.Bavail, st.Bfree = 4096, 1<<18, free/4096, free/4096
		return nil
	}
}

// reopenAll opens dir and checks it holds the 300 records of the child
// and write sequence 30.
func reopenAll(t *testing.T, dir string) {
	t.Helper()
	var logs bytes.Buffer
	s, err := Open(dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("Open once space is back: %v", err)
	}
	defer s.Close()
	n := 0
	s.Scan("m/", func(string, []byte) error { n++; return nil })
	if n != 300 || s.seq != 30 {
		t.Fatalf("after the restart: %d records, write #%d; want 300, #30", n, s.seq)
	}
	if !strings.Contains(logs.String(), "the last shutdown of the store was not clean") {
		t.Errorf("the reopen does not say the last shutdown was not clean:\n%s", logs.String())
	}
}

// BUG A: SIGTERM with the state directory full. Closing Badger flushed
// its memtable into a table through a sparse memory map and died with
// SIGBUS, losing the unsaved state. Close now leaves the memtable log,
// which holds every write, for the next Open.
func TestCloseOnFullDiskKeepsWrites(t *testing.T) {
	dir := tmpfs(t, "24m")
	code, out := runChild(t, "fill-close", dir, nil)
	if code != 0 || strings.Contains(out, "fatal error") || !strings.Contains(out, "child: closed") {
		t.Fatalf("Close on a full disk: exit %d:\n%s", code, lastLines(out, 30))
	}
	for _, want := range []string{"state directory full at shutdown: 0 MB free on " + dir, "Badger's memtable log (.mem) is left as it is, holding every saved write, to be replayed at the next start", "free space before starting ohfpd again"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not say %q:\n%s", want, out)
		}
	}
	if id, err := readIdentity(dir); err != nil || id == nil || id.Clean {
		t.Errorf("identity after a close without flush = %+v, %v; want not clean", id, err)
	}
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	reopenAll(t, dir)
}

// BUG A without root: the filesystem only says it is full.
func TestCloseWithoutRoomLeavesMemtableLog(t *testing.T) {
	dir := t.TempDir()
	code, out := runChild(t, "lie-close", dir, nil)
	if code != 0 || !strings.Contains(out, "child: closed") || !strings.Contains(out, "state directory full at shutdown: 1 MB free on "+dir) {
		t.Fatalf("Close without room: exit %d:\n%s", code, lastLines(out, 30))
	}
	if ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst")); len(ssts) != 0 {
		t.Errorf("Badger flushed its memtable: %v", ssts)
	}
	if mems, _ := filepath.Glob(filepath.Join(dir, "*.mem")); len(mems) == 0 {
		t.Error("no memtable log left")
	}
	reopenAll(t, dir)
}

// BUG B: starting, or restarting after a crash, on a full disk died with
// SIGBUS in Badger's openMemTable, without a word. Open now refuses with
// the way out.
func TestOpenOnFullDiskRefused(t *testing.T) {
	dir := tmpfs(t, "24m")
	code, out := runChild(t, "fill-crash", dir, nil)
	if code != 0 || !strings.Contains(out, "child: crashed") {
		t.Fatalf("writing then filling the disk: exit %d:\n%s", code, lastLines(out, 30))
	}
	for range 2 {
		code, out = runChild(t, "open", dir, nil)
		if code != 0 || strings.Contains(out, "fatal error") {
			t.Fatalf("Open on a full disk: exit %d:\n%s", code, lastLines(out, 30))
		}
		want := fmt.Sprintf("child: Open: state directory full: 0 MB free on %s, ohfpd needs ", dir)
		if !strings.Contains(out, want) || !strings.Contains(out, " MB: free space, then start ohfpd again") {
			t.Fatalf("Open on a full disk:\n%s", lastLines(out, 30))
		}
	}
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	reopenAll(t, dir)
}

// BUG B without root, and a read-only filesystem: Open refuses before
// Badger touches the directory.
func TestOpenWithoutRoomRefused(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	fill(t, s, "m/", 10)
	s.Close()
	defer func() { statfs = unix.Statfs }()
	statfs = fullStatfs(3 << 20)
	_, err := Open(dir, nil)
	var se *SpaceError
	if !errors.As(err, &se) || !se.Start {
		t.Fatalf("Open on a full disk = %v", err)
	}
	want := fmt.Sprintf("state directory full: 3 MB free on %s, ohfpd needs 16 MB: free space, then start ohfpd again", dir)
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	statfs = func(dir string, st *unix.Statfs_t) error {
		err := fullStatfs(1<<30)(dir, st)
		st.Flags |= unix.ST_RDONLY
		return err
	}
	_, err = Open(dir, nil)
	want = "state directory read-only: the filesystem of " + dir + " is mounted read-only, ohfpd cannot record anything: remount it read-write, then start ohfpd again"
	if err == nil || err.Error() != want {
		t.Errorf("Open on a read-only filesystem = %v, want %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "LOCK")); err == nil {
		t.Error("Badger was opened")
	}
	statfs = unix.Statfs
	s = openT(t, dir)
	s.Close()
}

// BUG D: the identity file deleted was silently recreated; with the
// memtable log lost too, the store opened without its newest writes (and
// without its cluster_id, passing the cluster_id guard).
func TestIdentityFileDeletedRefused(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	if err := s.Claim("c1", []string{"aws"}); err != nil {
		t.Fatal(err)
	}
	fill(t, s, "m/", 50)
	s.Close()
	if err := os.Remove(filepath.Join(dir, IdentityFile)); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, nil)
	wantDamaged(t, err, dir, "its identity file "+IdentityFile+" is missing, but it was written by an ohfpd that keeps one (up to write #5)")
	if _, err := os.Stat(filepath.Join(dir, IdentityFile)); err == nil {
		t.Error("the refused Open wrote an identity file")
	}

	// The repro: a crash, then the memtable log and the identity file
	// lost. Here every write was in the memtable log: Badger is empty.
	dir = t.TempDir()
	s = openT(t, dir)
	defer s.Close()
	fill(t, s, "r/", 20)
	crashed := crashCopy(t, dir)
	mems, _ := filepath.Glob(filepath.Join(crashed, "*.mem"))
	for _, m := range append(mems, filepath.Join(crashed, IdentityFile)) {
		if err := os.Remove(m); err != nil {
			t.Fatal(err)
		}
	}
	_, err = Open(crashed, nil)
	wantDamaged(t, err, crashed, "its identity file "+IdentityFile+" is missing and Badger holds nothing")

	// The same after some writes reached a table, and later ones were
	// only in the lost memtable log.
	dir = t.TempDir()
	s2 := openT(t, dir)
	fill(t, s2, "r/", 20)
	s2.Close()
	s2 = openT(t, dir)
	defer s2.Close()
	fill(t, s2, "x/", 20)
	crashed = crashCopy(t, dir)
	mems, _ = filepath.Glob(filepath.Join(crashed, "*.mem"))
	for _, m := range append(mems, filepath.Join(crashed, IdentityFile)) {
		os.Remove(m)
	}
	_, err = Open(crashed, nil)
	wantDamaged(t, err, crashed, "its identity file "+IdentityFile+" is missing, but it was written by an ohfpd that keeps one (up to write #2)")
}

// A store of an ohfpd older than identity files (records, no write
// sequence) is given one, with a warning.
func TestStoreWithoutIdentityFromOlderOhfpd(t *testing.T) {
	dir := t.TempDir()
	if err := storetest.WriteV1(dir, "", storetest.V1Records()); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s, err := Open(dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if !strings.Contains(logs.String(), "level=WARN msg=\"state directory has no identity file: a store of an ohfpd older than identity files") {
		t.Errorf("no warning:\n%s", logs.String())
	}
	if id, err := readIdentity(dir); err != nil || id == nil || !id.Clean {
		t.Errorf("identity file = %+v, %v", id, err)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// asNobody runs the child doing mode on dir as uid and gid 65534 (the
// test binary copied where that user can run it).
func asNobody(t *testing.T, mode, dir string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.MkdirTemp("", "ohfp-store-child-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(bin)
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "store.test"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "store.test"), "-test.run=^TestStoreChild$", "-test.count=1")
	cmd.Dir = bin
	cmd.Env = append(os.Environ(), "OHFP_STORE_CHILD="+mode, "OHFP_STORE_DIR="+dir, "GOCOVERDIR=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// openDir makes a directory the other user can reach: dir under a
// world-searchable temporary directory.
func openDir(t *testing.T) string {
	t.Helper()
	base, err := os.MkdirTemp("", "ohfp-store-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	return base
}

// BUG E (1): the service user on a state directory root owns was told
// only "is not writable: permission denied".
func TestServiceUserOnRootDirTold(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := filepath.Join(openDir(t), "state")
	if err := os.Mkdir(dir, 0o750); err != nil { // root's, as root's --rebuild-from-cloud made it
		t.Fatal(err)
	}
	out := asNobody(t, "open", dir)
	name, group := userName(65534), groupName(65534)
	for _, want := range []string{"child: Open: ", "state directory " + dir + " belongs to root (uid 0)", "as root: chown -R " + name + ":" + group + " " + dir} {
		if !strings.Contains(out, want) {
			t.Errorf("Open as %s of root's directory does not say %q:\n%s", name, want, out)
		}
	}
	// The user's own directory without write permission: chmod.
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o500)
	out = asNobody(t, "open", dir)
	if want := "state directory " + dir + " is not writable by " + name + ", its owner (mode 0500): "; !strings.Contains(out, want) || !strings.Contains(out, "chmod u+rwx "+dir) {
		t.Errorf("Open of a mode 0500 directory does not say %q and chmod:\n%s", want, out)
	}
}

// BUG E (2): root starting ohfpd (--rebuild-from-cloud, as the damaged
// store message said) where the state directory was moved aside created
// a root-owned one the service could not open. Open refuses instead,
// before creating anything.
func TestRootDoesNotCreateServiceUserDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	name := userName(65534)
	// The parent is the service user's.
	parent := filepath.Join(openDir(t), "ohfp")
	os.Mkdir(parent, 0o750)
	os.Chown(parent, 65534, 65534)
	dir := filepath.Join(parent, "state")
	_, err := Open(dir, nil)
	var oe *OwnerError
	if !errors.As(err, &oe) {
		t.Fatalf("Open as root in the service user's directory = %v", err)
	}
	for _, want := range []string{"ohfpd runs as root, but state directory " + dir + " does not exist and its parent " + parent + " belongs to " + name + " (uid 65534)", "runuser -u " + name + " -- ohfpd"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("the refused Open created the directory")
	}
	// The parent is root's (/var/lib), the damaged store moved aside
	// beside it is the service user's.
	dir = filepath.Join(openDir(t), "ohfp")
	os.Mkdir(dir+".damaged", 0o750)
	os.Chown(dir+".damaged", 65534, 65534)
	_, err = Open(dir, nil)
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), "does not exist and "+dir+".damaged beside it belongs to "+name+" (uid 65534)") {
		t.Fatalf("Open as root beside the service user's moved-aside directory = %v", err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("the refused Open created the directory")
	}
	// Root's own layout: created.
	dir = filepath.Join(openDir(t), "rootstate")
	s := openT(t, dir)
	s.Close()
}

// BUG E (3): the damaged-store message says to rebuild as the service
// user.
func TestDamagedMessageNamesServiceUser(t *testing.T) {
	dir := t.TempDir()
	err := damaged(dir, "a test")
	me := userName(uint32(os.Geteuid()))
	want := "and start ohfpd --rebuild-from-cloud as the service user " + me + ", not as root (runuser -u " + me + " -- ohfpd --rebuild-from-cloud"
	if os.Geteuid() == 0 {
		want = "and start ohfpd --rebuild-from-cloud as the service user (not as root: runuser -u USER -- ohfpd --rebuild-from-cloud"
	}
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "or add --rebuild-from-cloud to the service's command for one start") {
		t.Errorf("error %q does not mention %q", err, want)
	}
	if os.Geteuid() != 0 {
		return
	}
	os.Chown(dir, 65534, 65534)
	name := userName(65534)
	err = damaged(dir, "a test")
	if want := "as the service user " + name + ", not as root (runuser -u " + name + " -- ohfpd --rebuild-from-cloud"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not mention %q", err, want)
	}
}

// The store-size metric read 0: Badger keeps its size figures only with
// its metrics on. Size reads the directory.
func TestSizeOnDisk(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	fill(t, s, "m/", 500)
	if lsm, _ := s.Size(); lsm < 50_000 {
		t.Errorf("Size of 500 records in the memtable log: lsm %d", lsm)
	}
	s.Close()
	s = openT(t, dir)
	defer s.Close()
	if lsm, vlog := s.Size(); lsm < 50_000 || vlog <= 0 {
		t.Errorf("Size of 500 records in a table: lsm %d vlog %d", lsm, vlog)
	}
	if h := s.Health(); h.LSMBytes <= 0 || h.FreeBytes == 0 || h.NeedBytes != s.headroom || h.SpaceLow || h.WriteSeq != 50 {
		t.Errorf("Health = %+v", h)
	}
}

func TestHealth(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	defer s.Close()
	defer func() { statfs = unix.Statfs }()
	statfs = fullStatfs(2 << 20)
	err := s.Write(Op{Key: "m/1", Value: []byte("x")})
	h := s.Health()
	if err == nil || !h.SpaceLow || h.FreeBytes != 2<<20 || h.FailedWrites != 1 || !strings.Contains(h.LastWriteError, "state directory full: 2 MB free") || h.LastWriteErrorAt.IsZero() {
		t.Fatalf("after a write refused for space: %v, %+v", err, h)
	}
	s.FailWrites(errors.New("lever"))
	s.Write(Op{Key: "m/1", Value: []byte("x")})
	if h := s.Health(); h.FailedWrites != 2 || !strings.Contains(h.LastWriteError, "lever") {
		t.Fatalf("after a second failed write: %+v", h)
	}
	s.FailWrites(nil)
	statfs = unix.Statfs
	if err := s.Write(Op{Key: "m/1", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if h := s.Health(); h.FailedWrites != 0 || h.SpaceLow || h.WriteSeq != 1 || h.LastWriteError == "" {
		t.Fatalf("after a write saved: %+v", h)
	}
}

// Found by an operator's test: a state directory on a file system of its
// own (a volume for /var/lib/ohfp after a full disk) has mkfs's root-owned
// lost+found, and the service user was refused as among root's files.
func TestLostAndFoundIsNotAForeignFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := filepath.Join(openDir(t), "state")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "lost+found"), 0o700); err != nil { // root's
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	out := asNobody(t, "open", dir)
	if strings.Contains(out, "owned by root") || strings.Contains(out, "chown") {
		t.Fatalf("lost+found made the service user's directory look foreign:\n%s", out)
	}
}
