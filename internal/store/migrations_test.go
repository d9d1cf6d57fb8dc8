package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
)

// migrationTests holds the test of each migration, by name: every entry
// of migrations needs one (TestMigrations).
var migrationTests = map[string]func(t *testing.T){}

func TestMigrations(t *testing.T) {
	want := 2
	for _, m := range migrations {
		if m.version != want {
			t.Errorf("migration %s produces version %d, want %d (one step per version, in order)", m.name, m.version, want)
		}
		want = m.version + 1
		fn := migrationTests[m.name]
		if fn == nil {
			t.Errorf("migration %s has no test in migrationTests", m.name)
			continue
		}
		t.Run(m.name, fn)
	}
	if last := want - 1; last != SchemaVersion {
		t.Errorf("the last migration produces version %d, SchemaVersion is %d", last, SchemaVersion)
	}
}

// rawRecords returns every key of the store (reserved ones included) with
// its value and Badger version (the commit that wrote it).
type rawRecord struct {
	value   string
	version uint64
}

func rawRecords(t *testing.T, s *Store) map[string]rawRecord {
	t.Helper()
	out := map[string]rawRecord{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[string(it.Item().Key())] = rawRecord{string(v), it.Item().Version()}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readIdentityT(t *testing.T, dir string) identity {
	t.Helper()
	id, err := readIdentity(dir)
	if err != nil || id == nil {
		t.Fatalf("identity file: %v %v", id, err)
	}
	return *id
}

// A store at the current schema is not rewritten by Open: every key,
// reserved ones included, keeps its value and the commit that wrote it.
func TestCurrentSchemaNotRewritten(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	if err := s.Write(Op{Key: "r/req-1", Value: []byte(`{"v":2,"id":"req-1"}`)}, Op{Key: "m/i-1", Value: []byte(`{"v":2,"id":"i-1"}`)}); err != nil {
		t.Fatal(err)
	}
	before := rawRecords(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir)
	defer s.Close()
	after := rawRecords(t, s)
	if len(after) != len(before) || len(before) != 4 {
		t.Fatalf("keys before %v, after %v", before, after)
	}
	for k, r := range before {
		if after[k] != r {
			t.Errorf("%s rewritten by Open: %v, was %v", k, after[k], r)
		}
	}
	if v, _ := s.Schema(); v != SchemaVersion {
		t.Errorf("schema = %d", v)
	}
}

// A store whose identity file names a newer schema is refused before
// Badger opens it (an older Badger must not touch a newer ohfpd's files).
func TestNewerSchemaInIdentityRefused(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	s.Close()
	id := readIdentityT(t, dir)
	id.Schema = SchemaVersion + 1
	if err := writeIdentity(dir, id); err != nil {
		t.Fatal(err)
	}
	mf, _ := os.Stat(filepath.Join(dir, "MANIFEST"))
	_, err := Open(dir, nil)
	if err == nil {
		t.Fatal("Open accepted a newer schema")
	}
	want := fmt.Sprintf("state directory %s has schema version %d, newer than this ohfpd understands (%d): run the newer ohfpd", dir, SchemaVersion+1, SchemaVersion)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not mention %q", err, want)
	}
	if mf2, _ := os.Stat(filepath.Join(dir, "MANIFEST")); !mf2.ModTime().Equal(mf.ModTime()) || mf2.Size() != mf.Size() {
		t.Error("Badger's MANIFEST changed: Badger was opened")
	}
	if _, err := os.Stat(filepath.Join(dir, "LOCK")); err == nil {
		t.Error("Badger's LOCK file is there: Badger was opened")
	}
}
