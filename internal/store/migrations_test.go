package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/ohfp/ohfp/internal/store/storetest"
)

// migrationTests holds the test of each migration, by name: every entry
// of migrations needs one (TestMigrations).
var migrationTests = map[string]func(t *testing.T){
	"records-v2": testRecordsV2,
}

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

// v2Records is the schema-2 fixture by key.
func v2Records() map[string]string {
	out := map[string]string{}
	for _, r := range storetest.V2Records() {
		out[r.Key] = string(r.Value)
	}
	return out
}

// wantV2 checks that s holds the schema-2 fixture: the schema-1 fixture as
// records-v2 leaves it.
func wantV2(t *testing.T, s *Store) {
	t.Helper()
	got := rawRecords(t, s)
	v2 := v2Records()
	for _, r := range storetest.V1Records() {
		if want := v2[r.Key]; got[r.Key].value != want {
			t.Errorf("%s migrated to\n  %s\nwant\n  %s", r.Key, got[r.Key].value, want)
		}
		delete(got, r.Key)
	}
	if got[schemaKey].value != "2" {
		t.Errorf("schema after migration = %q", got[schemaKey].value)
	}
	delete(got, schemaKey)
	delete(got, seqKey)
	for k := range got {
		t.Errorf("unexpected key %q after migration", k)
	}
}

// testRecordsV2: the schema-1 fixture, as ohfpd wrote it, opens migrated
// to schema 2, byte for byte the schema-2 fixture (requests and machines
// keep their JSON with "v":2 in front, instance types get JSON names); the migration counts as a write
// (the sequence and the identity file's watermark move on) and the
// identity file records schema 2; the next Open rewrites nothing.
func testRecordsV2(t *testing.T) {
	dir := t.TempDir()
	if err := storetest.WriteV1(dir, "c1", storetest.V1Records()); err != nil {
		t.Fatal(err)
	}
	s := openT(t, dir)
	wantV2(t, s)
	if s.seq != 2 {
		t.Errorf("write sequence after the migration = %d, want 2", s.seq)
	}
	if id := readIdentityT(t, dir); id.Schema != 2 || id.ClusterID != "c1" || id.Seq != 2 {
		t.Errorf("identity file after the migration: schema %d, cluster_id %q, write_seq %d; want 2, c1, 2", id.Schema, id.ClusterID, id.Seq)
	}
	before := rawRecords(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir)
	defer s.Close()
	after := rawRecords(t, s)
	for k, r := range before {
		if after[k] != r {
			t.Errorf("%s changed at the Open after the migration: %v, was %v", k, after[k], r)
		}
	}
}

// A migration interrupted after some of its transactions (the others, and
// the schema version, lost with a crash) runs again at the next Open and
// leaves what it had converted alone.
func TestRecordsV2Interrupted(t *testing.T) {
	dir := t.TempDir()
	recs := storetest.V1Records()
	v2 := v2Records()
	for i, r := range recs {
		if i%2 == 0 {
			recs[i].Value = []byte(v2[r.Key])
		}
	}
	if err := storetest.WriteV1(dir, "c1", recs); err != nil {
		t.Fatal(err)
	}
	s := openT(t, dir)
	defer s.Close()
	wantV2(t, s)
}

// A store older than identity files (no ohfpd-store.json) is migrated too,
// and gets one.
func TestRecordsV2WithoutIdentity(t *testing.T) {
	dir := t.TempDir()
	if err := storetest.WriteV1(dir, "", storetest.V1Records()); err != nil {
		t.Fatal(err)
	}
	s := openT(t, dir)
	wantV2(t, s)
	s.Close()
	if id := readIdentityT(t, dir); id.Schema != 2 || id.Seq != 1 || !id.Clean {
		t.Errorf("identity file: %+v", id)
	}
}

// A request or machine record that is not a JSON object stops the
// migration: the store is refused as damaged, naming the record, and left
// at schema 1 with nothing changed; an unreadable instance type (a cache)
// is dropped instead.
func TestRecordsV2Damaged(t *testing.T) {
	dir := t.TempDir()
	recs := append(storetest.V1Records(),
		storetest.Record{Key: "m/i-0000000000000bad", Value: []byte(`{"id":"i-0000000000000bad","state":`)})
	if err := storetest.WriteV1(dir, "c1", recs); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, nil)
	var de *DamagedError
	if !errors.As(err, &de) {
		t.Fatalf("Open = %v, want a *DamagedError", err)
	}
	for _, want := range []string{dir, "migrating its schema 1 to 2 (records-v2) failed", `"m/i-0000000000000bad"`, "left at schema 1", "--rebuild-from-cloud"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if id := readIdentityT(t, dir); id.Schema != 1 || id.Seq != 1 {
		t.Errorf("identity file after a failed migration: %+v", id)
	}

	// The same store with the bad record an instance type: dropped.
	dir = t.TempDir()
	recs[len(recs)-1] = storetest.Record{Key: "t/x1.bad", Value: []byte(`[1,2]`)}
	if err := storetest.WriteV1(dir, "c1", recs); err != nil {
		t.Fatal(err)
	}
	s := openT(t, dir)
	defer s.Close()
	wantV2(t, s)
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

// bigV1 is a schema-1 store of n machines and n/4 requests, in the
// fixture's format.
func bigV1(tb testing.TB, dir string, n int) {
	tb.Helper()
	var mv, rv []byte
	for _, r := range storetest.V1Records() {
		switch r.Key {
		case "m/i-000000000000000b":
			mv = r.Value
		case "r/req-00000002":
			rv = r.Value
		}
	}
	recs := make([]storetest.Record, 0, n+n/4)
	for i := range n {
		id := fmt.Sprintf("i-%017x", i)
		recs = append(recs, storetest.Record{Key: "m/" + id, Value: bytes.Replace(mv, []byte("i-000000000000000b"), []byte(id), 1)})
		if i%4 == 0 {
			id := fmt.Sprintf("req-%08d", i/4)
			recs = append(recs, storetest.Record{Key: "r/" + id, Value: bytes.Replace(rv, []byte("req-00000002"), []byte(id), 1)})
		}
	}
	if err := storetest.WriteV1(dir, "c1", recs); err != nil {
		tb.Fatal(err)
	}
}

// A migration bigger than one Badger transaction (11,600 machines and
// their requests) is committed in several and converts every record.
func TestRecordsV2Big(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 14,500 records")
	}
	dir := t.TempDir()
	bigV1(t, dir, 11600)
	var logs bytes.Buffer
	start := time.Now()
	s, err := Open(dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t.Logf("Open with the migration of 14,500 records: %v", time.Since(start))
	if !strings.Contains(logs.String(), "committing it in several") {
		t.Errorf("the migration fit in one transaction; the test wants several. Logs:\n%s", logs.String())
	}
	n := 0
	err = s.Scan("", func(k string, v []byte) error {
		var probe struct {
			V int `json:"v"`
		}
		if err := json.Unmarshal(v, &probe); err != nil || probe.V != 2 {
			return fmt.Errorf("%s: version %d, %v", k, probe.V, err)
		}
		n++
		return nil
	})
	if err != nil || n != 11600+2900 {
		t.Fatalf("after the migration: %d records, %v", n, err)
	}
}

// BenchmarkOpenMigrate12k is the one start-up that migrates 11,600
// machines and their requests from schema 1.
func BenchmarkOpenMigrate12k(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		bigV1(b, dir, 11600)
		b.StartTimer()
		s := openT(b, dir)
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}
