package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// A migration turns a store at schema version-1 into one at version.
// (containerd core/metadata/migrations.go)
type migration struct {
	version int    // the schema version it produces
	name    string // for logs and errors
	migrate func(tx *migrationTx) error
}

// migrations is the store's schema history. It MUST be ordered by version,
// one step per version from 2 on; the last produces SchemaVersion. A
// migration reads the store exactly as the previous version left it, so it
// depends on no type that may change later: it works on the bytes, with
// the key prefixes and formats of its time written out. Each has its test,
// registered in migrationTests (migrations_test.go); TestMigrationsAreTested
// fails for one without.
//
// Open runs the steps a store lacks, in order. Each step's writes are
// committed together with the step's schema version, in one transaction
// when they fit (Badger's limit is 15% of the memtable, about 600 KB here),
// otherwise in consecutive transactions with the version in the last: a
// crash in between leaves the store at the previous version, with some of
// its records already converted, and the next Open runs the step again.
// So every step must accept its own output as input (recordsV2 leaves a
// converted record alone).
var migrations = []migration{
	{version: 2, name: "records-v2", migrate: recordsV2},
}

// migrationTx is a migration's view of the store: Scan reads one snapshot
// of it as the previous version left it (reserved keys included); Set and
// Delete record writes, applied after migrate returns (Scan does not see
// them).
type migrationTx struct {
	s   *Store
	txn *badger.Txn
	ops []Op
}

func (t *migrationTx) Scan(prefix string, fn func(key string, value []byte) error) error {
	return t.s.scan(t.txn, prefix, false, fn)
}

func (t *migrationTx) Set(key string, value []byte) {
	t.ops = append(t.ops, Op{Key: key, Value: value})
}

func (t *migrationTx) Delete(key string) { t.ops = append(t.ops, Op{Key: key, Delete: true}) }

// migrate runs the migrations a store at schema version from lacks.
func (s *Store) migrate(from int) error {
	for _, m := range migrations {
		if m.version <= from {
			continue
		}
		start := time.Now()
		tx := &migrationTx{s: s}
		err := s.db.View(func(txn *badger.Txn) error {
			tx.txn = txn
			return m.migrate(tx)
		})
		if err != nil {
			if s.dir == "" {
				return fmt.Errorf("%s: migrating schema %d to %d (%s): %w", s.where(), from, m.version, m.name, err)
			}
			return damaged(s.dir, "migrating its schema %d to %d (%s) failed: %v; it was left at schema %d", from, m.version, m.name, err, from)
		}
		ops := append(tx.ops, Op{Key: schemaKey, Value: []byte(strconv.Itoa(m.version))})
		err = s.write(ops, func() {
			s.logger.Info("store migration too big for one transaction; committing it in several (a crash in between runs it again)", "migration", m.name, "writes", len(ops))
		})
		if err != nil {
			return fmt.Errorf("%s: migrating schema %d to %d (%s): %w", s.where(), from, m.version, m.name, err)
		}
		s.logger.Info("store schema migrated", "dir", s.dir, "from", from, "to", m.version, "migration", m.name, "writes", len(tx.ops), "took", time.Since(start).Round(time.Millisecond))
		from = m.version
	}
	if from != SchemaVersion {
		return fmt.Errorf("%s: schema version %d has no migration to %d", s.where(), from, SchemaVersion)
	}
	return nil
}

// recordsV2 (schema 1 to 2) gives every record its own, versioned disk
// format. At schema 1, requests ("r/<id>") and machines ("m/<id>") were
// the JSON of ohfpd's domain structs; schema 2 keeps their field names and
// adds "v":2 in front, so that the records no longer depend on those
// structs. Instance types ("t/<type>", a cache) had Go's field names
// (no JSON tags); schema 2 names them: name, vcpus, cores, memoryMiB,
// arch. A request or machine that is not a JSON object fails the
// migration; an unreadable instance type is deleted (a cache, refetched
// when needed, as schema 1 treated it).
func recordsV2(tx *migrationTx) error {
	const (
		request  = "r/" // schema 1's prefixes
		machine  = "m/"
		typeInfo = "t/"
	)
	version := func(key string, v []byte) ([]byte, error) {
		var probe struct {
			V json.RawMessage `json:"v"`
		}
		v = bytes.TrimSpace(v)
		if len(v) == 0 || v[0] != '{' {
			return nil, fmt.Errorf("record %q is not a JSON object", key)
		}
		if err := json.Unmarshal(v, &probe); err != nil {
			return nil, fmt.Errorf("record %q: %w", key, err)
		}
		if probe.V != nil {
			if string(probe.V) != "2" {
				return nil, fmt.Errorf("record %q already has version %s", key, probe.V)
			}
			return nil, nil // converted by an interrupted run
		}
		rest := bytes.TrimSpace(v[1:])
		out := make([]byte, 0, len(v)+6)
		out = append(out, `{"v":2`...)
		if rest[0] != '}' {
			out = append(out, ',')
		}
		return append(out, rest...), nil
	}
	for _, prefix := range []string{request, machine} {
		err := tx.Scan(prefix, func(k string, v []byte) error {
			out, err := version(k, v)
			if out != nil {
				tx.Set(k, out)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return tx.Scan(typeInfo, func(k string, v []byte) error {
		var v1 struct {
			V         *int `json:"v"`
			Name      string
			VCPUs     int
			Cores     int
			MemoryMiB int
			Arch      string
		}
		err := json.Unmarshal(v, &v1) // field names match in any case
		if err == nil && v1.V != nil {
			return nil // converted by an interrupted run
		}
		if err != nil || v1.Name == "" {
			tx.Delete(k)
			return nil
		}
		out, err := json.Marshal(struct {
			V         int    `json:"v"`
			Name      string `json:"name"`
			VCPUs     int    `json:"vcpus"`
			Cores     int    `json:"cores"`
			MemoryMiB int    `json:"memoryMiB"`
			Arch      string `json:"arch"`
		}{2, v1.Name, v1.VCPUs, v1.Cores, v1.MemoryMiB, v1.Arch})
		if err != nil {
			return err
		}
		tx.Set(k, out)
		return nil
	})
}
