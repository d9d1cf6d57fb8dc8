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
	for _, want := range []string{dir, "schema version 2", "newer than this ohfpd understands (1)"} {
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
