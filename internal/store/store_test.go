package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

func openT(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func TestWriteGetScanDelete(t *testing.T) {
	s, err := OpenInMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	if err := s.Write(
		Op{Key: "req/2", Value: []byte("b")},
		Op{Key: "req/1", Value: []byte("a")},
		Op{Key: "mach/1", Value: []byte("m")},
		Op{Key: "req/3", Value: nil},
	); err != nil {
		t.Fatal(err)
	}
	v, ok, err := s.Get("req/1")
	if err != nil || !ok || string(v) != "a" {
		t.Fatalf("Get req/1 = %q %v %v", v, ok, err)
	}
	v, ok, err = s.Get("req/3")
	if err != nil || !ok || len(v) != 0 {
		t.Fatalf("Get req/3 (empty value) = %q %v %v", v, ok, err)
	}
	if _, ok, err := s.Get("nope"); ok || err != nil {
		t.Fatalf("Get nope = %v %v", ok, err)
	}

	var got []string
	err = s.Scan("req/", func(k string, v []byte) error {
		got = append(got, k+"="+string(v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "req/1=a,req/2=b,req/3="; strings.Join(got, ",") != want {
		t.Fatalf("Scan = %v, want %s", got, want)
	}

	// Delete and set in one write; later ops win.
	if err := s.Write(Op{Key: "req/1", Delete: true}, Op{Key: "req/2", Value: []byte("x")}, Op{Key: "req/2", Value: []byte("y")}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get("req/1"); ok {
		t.Fatal("req/1 still there after delete")
	}
	if v, _, _ := s.Get("req/2"); string(v) != "y" {
		t.Fatalf("req/2 = %q, want y", v)
	}

	// Scan of everything skips the reserved schema key.
	n := 0
	s.Scan("", func(k string, v []byte) error {
		if strings.HasPrefix(k, MetaPrefix) {
			t.Errorf("Scan returned reserved key %q", k)
		}
		n++
		return nil
	})
	if n != 3 {
		t.Fatalf("Scan(\"\") saw %d keys, want 3", n)
	}

	// An error from fn stops the scan and comes back unchanged.
	stop := errors.New("stop")
	calls := 0
	if err := s.Scan("", func(string, []byte) error { calls++; return stop }); err != stop || calls != 1 {
		t.Fatalf("Scan with failing fn = %v after %d calls", err, calls)
	}
}

func TestScanValuesAreCopies(t *testing.T) {
	s, _ := OpenInMemory(nil)
	defer s.Close()
	for i := range 100 {
		s.Write(Op{Key: fmt.Sprintf("k/%03d", i), Value: bytes.Repeat([]byte{byte(i)}, 10)})
	}
	var kept [][]byte
	s.Scan("k/", func(k string, v []byte) error { kept = append(kept, v); return nil })
	for i, v := range kept {
		if !bytes.Equal(v, bytes.Repeat([]byte{byte(i)}, 10)) {
			t.Fatalf("value %d changed after scan: %v", i, v)
		}
	}
}

func TestReservedKeysRefused(t *testing.T) {
	s, _ := OpenInMemory(nil)
	defer s.Close()
	for _, k := range []string{"", MetaPrefix + "schema", MetaPrefix + "x"} {
		if err := s.Write(Op{Key: k, Value: []byte("9")}); !errors.Is(err, ErrReservedKey) {
			t.Errorf("Write(%q) = %v, want ErrReservedKey", k, err)
		}
		if _, _, err := s.Get(k); !errors.Is(err, ErrReservedKey) {
			t.Errorf("Get(%q) = %v, want ErrReservedKey", k, err)
		}
	}
	if v, err := s.Schema(); err != nil || v != SchemaVersion {
		t.Fatalf("Schema() = %d %v", v, err)
	}
}

func TestDurableAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	if err := s.Write(Op{Key: "req/1", Value: []byte(`{"id":"req-1"}`)}, Op{Key: "req/2", Value: []byte("two")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(Op{Key: "req/2", Delete: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir)
	defer s.Close()
	v, ok, err := s.Get("req/1")
	if err != nil || !ok || string(v) != `{"id":"req-1"}` {
		t.Fatalf("after reopen Get = %q %v %v", v, ok, err)
	}
	if _, ok, _ := s.Get("req/2"); ok {
		t.Fatal("deleted key came back after reopen")
	}
	if v, _ := s.Schema(); v != SchemaVersion {
		t.Fatalf("schema after reopen = %d", v)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	// Write a newer version behind the store's back.
	err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte(schemaKey), []byte(fmt.Sprint(SchemaVersion+1)))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(dir, nil)
	if err == nil {
		t.Fatal("Open accepted a newer schema")
	}
	for _, want := range []string{dir, fmt.Sprintf("schema version %d, newer than this ohfpd understands (%d)", SchemaVersion+1, SchemaVersion), "run the newer ohfpd"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestLockedDir(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	defer s.Close()
	_, err := Open(dir, nil)
	if err == nil {
		t.Fatal("second Open of the same directory succeeded")
	}
	want := "state directory " + dir + " is in use by another ohfpd"
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
	// The first store still works.
	if err := s.Write(Op{Key: "a", Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
}

func TestReadOnlyDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ro")
	os.Mkdir(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if os.Geteuid() == 0 {
		// Root ignores permission bits; sysfs refuses new files even to root.
		dir = "/sys"
		if _, err := os.Stat(dir); err != nil {
			t.Skip("running as root without /sys")
		}
	}
	_, err := Open(dir, nil)
	if err == nil || !strings.Contains(err.Error(), "state directory "+dir+" is not writable") {
		t.Fatalf("Open(read-only dir) = %v", err)
	}
}

func TestDirIsAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, []byte("x"), 0o600)
	_, err := Open(f, nil)
	if err == nil || !strings.Contains(err.Error(), "state directory "+f+" cannot be created") {
		t.Fatalf("Open(file) = %v", err)
	}
	_, err = Open(filepath.Join(f, "sub"), nil)
	if err == nil || !strings.Contains(err.Error(), "cannot be created") {
		t.Fatalf("Open(file/sub) = %v", err)
	}
}

func TestFailWrites(t *testing.T) {
	s, _ := OpenInMemory(nil)
	defer s.Close()
	boom := errors.New("disk on fire")
	s.FailWrites(boom)
	err := s.Write(Op{Key: "req/1", Value: []byte("x")})
	if !errors.Is(err, boom) {
		t.Fatalf("Write with FailWrites = %v, want %v", err, boom)
	}
	if _, ok, _ := s.Get("req/1"); ok {
		t.Fatal("a refused write was stored")
	}
	s.FailWrites(nil)
	if err := s.Write(Op{Key: "req/1", Value: []byte("x")}); err != nil {
		t.Fatalf("Write after clearing = %v", err)
	}
	if _, ok, _ := s.Get("req/1"); !ok {
		t.Fatal("write after clearing not stored")
	}
}

func TestBigWriteIsSplit(t *testing.T) {
	var logs bytes.Buffer
	s, _ := OpenInMemory(slog.New(slog.NewTextHandler(&logs, nil)))
	defer s.Close()
	// 8 MiB memtable allows about 1.2 MiB per transaction: write 4 MiB.
	val := bytes.Repeat([]byte("v"), 4096)
	var ops []Op
	for i := range 1024 {
		ops = append(ops, Op{Key: fmt.Sprintf("big/%04d", i), Value: val})
	}
	if err := s.Write(ops...); err != nil {
		t.Fatal(err)
	}
	n := 0
	s.Scan("big/", func(k string, v []byte) error {
		if !bytes.Equal(v, val) {
			t.Fatalf("%s has wrong value", k)
		}
		n++
		return nil
	})
	if n != 1024 {
		t.Fatalf("stored %d of 1024", n)
	}
	if !strings.Contains(logs.String(), "splitting it (not atomic)") {
		t.Fatalf("a 4 MiB write was not split (log: %q)", logs.String())
	}
}

func TestRunGCStopsWithContext(t *testing.T) {
	s := openT(t, t.TempDir())
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.RunGC(ctx, time.Millisecond); close(done) }()
	for i := range 50 {
		s.Write(Op{Key: "k", Value: []byte(fmt.Sprint(i))})
	}
	cancel()
	<-done
	if lsm, vlog := s.Size(); lsm < 0 || vlog < 0 {
		t.Fatalf("Size = %d %d", lsm, vlog)
	}
}

func BenchmarkWrite(b *testing.B) {
	s := openT(b, b.TempDir())
	defer s.Close()
	val := []byte(`{"requestId":"req-0b6c0f4e","state":"running","machines":3}`)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := s.Write(Op{Key: fmt.Sprintf("req/%08d", i), Value: val}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScan10k(b *testing.B) {
	s := openT(b, b.TempDir())
	defer s.Close()
	val := bytes.Repeat([]byte("m"), 300)
	var ops []Op
	for i := range 10000 {
		ops = append(ops, Op{Key: fmt.Sprintf("mach/%08d", i), Value: val})
		if len(ops) == 1000 {
			if err := s.Write(ops...); err != nil {
				b.Fatal(err)
			}
			ops = ops[:0]
		}
	}
	b.ResetTimer()
	for b.Loop() {
		n := 0
		s.Scan("mach/", func(string, []byte) error { n++; return nil })
		if n != 10000 {
			b.Fatalf("scanned %d", n)
		}
	}
}

// fill writes n small records in batches of 10.
func fill(t testing.TB, s *Store, prefix string, n int) {
	t.Helper()
	var ops []Op
	for i := range n {
		ops = append(ops, Op{Key: fmt.Sprintf("%s%06d", prefix, i), Value: bytes.Repeat([]byte("v"), 100)})
		if len(ops) == 10 || i == n-1 {
			if err := s.Write(ops...); err != nil {
				t.Fatal(err)
			}
			ops = ops[:0]
		}
	}
}

// crashCopy copies dir's files while the store is open, as a SIGKILL
// would leave them (the page cache holds every synced write), without
// Badger's lock file.
func crashCopy(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "crashed")
	if err := os.Mkdir(out, 0o750); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "LOCK" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, e.Name()), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// wantDamaged checks that err is a *DamagedError naming dir, what, and
// the way out.
func wantDamaged(t *testing.T, err error, dir, what string) {
	t.Helper()
	var de *DamagedError
	if !errors.As(err, &de) {
		t.Fatalf("Open = %v, want a *DamagedError", err)
	}
	for _, want := range []string{"state directory " + dir + " is damaged", what,
		"mv " + dir + " " + dir + ".damaged", "ohfpd --rebuild-from-cloud"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestTruncatedTableRefused(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	fill(t, s, "m/", 2000)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no table after Close")
	}
	fi, _ := os.Stat(ssts[0])
	if err := os.Truncate(ssts[0], fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, nil)
	wantDamaged(t, err, dir, "table "+filepath.Base(ssts[0])+" is truncated or corrupt")
}

func TestCorruptTableRefused(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	fill(t, s, "m/", 2000)
	s.Close()
	ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	f, err := os.OpenFile(ssts[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(bytes.Repeat([]byte{0xff}, 64), 1000) // inside the first blocks
	f.Close()
	_, err = Open(dir, nil)
	wantDamaged(t, err, dir, "is truncated or corrupt")
}

func TestManifestDeletedRefused(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	fill(t, s, "m/", 500)
	s.Close()
	if err := os.Remove(filepath.Join(dir, "MANIFEST")); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, nil)
	wantDamaged(t, err, dir, "its MANIFEST file is missing")
	// Nothing was deleted: the operator can still save the tables.
	if ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst")); len(ssts) == 0 {
		t.Fatal("the refused open deleted the tables")
	}
}

func TestManifestDeletedWithoutIdentityRefused(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	fill(t, s, "m/", 500)
	s.Close()
	os.Remove(filepath.Join(dir, "MANIFEST"))
	os.Remove(filepath.Join(dir, IdentityFile)) // a store of an older ohfpd
	_, err := Open(dir, nil)
	wantDamaged(t, err, dir, "its MANIFEST file is missing but it holds Badger files")
}

func TestDamagedMemtableRefused(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	defer s.Close()
	fill(t, s, "m/", 2000)
	if err := s.flushWatermark(false); err != nil {
		t.Fatal(err)
	}
	crashed := crashCopy(t, dir)
	mems, _ := filepath.Glob(filepath.Join(crashed, "*.mem"))
	if len(mems) != 1 {
		t.Fatalf("memtable files: %v", mems)
	}
	f, err := os.OpenFile(mems[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(bytes.Repeat([]byte{0x5a}, 32), 100<<10) // in the middle of the writes
	f.Close()
	_, err = Open(crashed, nil)
	wantDamaged(t, err, crashed, "writes lost (")
}

func TestCrashWithoutDamageOpens(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	defer s.Close()
	fill(t, s, "m/", 300)
	if err := s.flushWatermark(false); err != nil {
		t.Fatal(err)
	}
	fill(t, s, "n/", 300) // after the watermark: the crash keeps them too
	crashed := crashCopy(t, dir)
	id, err := readIdentity(crashed)
	if err != nil || id.Clean || id.Seq < 30 || id.Seq > 60 {
		t.Fatalf("identity after a crash = %+v, %v; want not clean, write_seq 30 to 60", id, err)
	}
	s2 := openT(t, crashed)
	defer s2.Close()
	n := 0
	s2.Scan("", func(string, []byte) error { n++; return nil })
	if n != 600 {
		t.Fatalf("after the crash %d records, want 600", n)
	}
	if s2.seq != 60 {
		t.Fatalf("write sequence after the crash = %d, want 60", s2.seq)
	}
}

func TestWatermarkAndCleanFlag(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	id, _ := readIdentity(dir)
	if id == nil || id.Clean || id.Schema != SchemaVersion {
		t.Fatalf("identity of an open store = %+v", id)
	}
	fill(t, s, "m/", 50)
	s.Close()
	id, _ = readIdentity(dir)
	if !id.Clean || id.Seq != 5 {
		t.Fatalf("identity after Close = %+v, want clean, write_seq 5", id)
	}
	// A watermark ahead of Badger (writes lost) is refused.
	id.Seq = 9
	if err := writeIdentity(dir, *id); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, nil)
	wantDamaged(t, err, dir, "it holds writes up to #5, but "+IdentityFile+" says writes up to #9 were durable")
}

func TestConcurrentWritesKeepSequenceOrder(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			fill(t, s, fmt.Sprintf("g%d/", g), 200)
		}()
	}
	for range 8 {
		<-done
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir) // would refuse if Badger's sequence were behind the watermark
	defer s.Close()
	if s.seq != 160 {
		t.Fatalf("write sequence = %d, want 160", s.seq)
	}
}

func TestClusterIDClaimAndAdopt(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	if err := s.Claim("blue", []string{"aws"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openT(t, dir)
	if got := s.ClusterID(); got != "blue" {
		t.Fatalf("ClusterID after reopen = %q", got)
	}
	err := s.Claim("green", []string{"aws"})
	var ce *ClusterIDError
	if !errors.As(err, &ce) || ce.Stored != "blue" || ce.Configured != "green" {
		t.Fatalf("Claim(green) = %v", err)
	}
	for _, want := range []string{`belongs to cluster_id "blue"`, `says cluster_id "green"`, "`cluster_id: blue`", "ohfpd --adopt-cluster-id blue"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if err := s.Adopt("red", "green", nil); err == nil {
		t.Fatal("Adopt from a cluster_id the store does not belong to succeeded")
	}
	if err := s.Adopt("blue", "green", []string{"aws"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openT(t, dir)
	defer s.Close()
	if err := s.Claim("green", []string{"aws"}); err != nil {
		t.Fatalf("Claim after Adopt = %v", err)
	}
}

func TestFullDiskRefusesWrites(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	defer s.Close()
	fill(t, s, "m/", 10)
	s.headroom = 1 << 62 // as if the disk were full
	err := s.Write(Op{Key: "m/x", Value: []byte("x")})
	var se *SpaceError
	if !errors.As(err, &se) {
		t.Fatalf("Write on a full disk = %v", err)
	}
	for _, want := range []string{"state directory full: ", " MB free on " + dir + ", ohfpd needs ", "free space; ohfpd resumes by itself"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, ok, _ := s.Get("m/x"); ok {
		t.Fatal("a refused write was stored")
	}
	if _, ok, err := s.Get("m/000001"); !ok || err != nil {
		t.Fatalf("reads on a full disk: %v %v", ok, err)
	}
	s.headroom = headroom(4<<20, 2<<20) // space came back
	if err := s.Write(Op{Key: "m/x", Value: []byte("x")}); err != nil {
		t.Fatalf("Write after space came back = %v", err)
	}
}

func TestRootOnServiceUserDirRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	s := openT(t, dir)
	fill(t, s, "m/", 10)
	s.Close()
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, nil)
	var oe *OwnerError
	if !errors.As(err, &oe) {
		t.Fatalf("Open as root of a directory owned by uid 65534 = %v", err)
	}
	name := userName(65534)
	for _, want := range []string{"ohfpd runs as root, but state directory " + dir + " belongs to " + name + " (uid 65534)", "Run ohfpd as " + name} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// The service user finds root's files and is told how to give them back.
	err = checkOwner(dir, 65534)
	if err == nil || !strings.Contains(err.Error(), "chown -R "+name+":") || !strings.Contains(err.Error(), " "+dir) || !strings.Contains(err.Error(), "owned by root (uid 0)") {
		t.Fatalf("checkOwner as uid 65534 among root's files = %v", err)
	}
}
