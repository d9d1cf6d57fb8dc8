// Package storetest builds state directories as earlier ohfpd versions
// left them, for the tests of the store's migrations and of the decoding
// of its records. What it writes is frozen history: the key names and
// formats below are those of the schema they name, and must not follow
// later changes of the store.
package storetest

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	badger "github.com/dgraph-io/badger/v4"
)

var (
	//go:embed testdata/schema-v1.records
	v1Records []byte
	//go:embed testdata/schema-v2.records
	v2Records []byte
)

// Record is one key and its value.
type Record struct {
	Key   string
	Value []byte
}

// V1Records returns the records of the schema-1 fixture, in file order
// (see testdata/README.md).
func V1Records() []Record { return parse(v1Records) }

// V2Records returns the same records as schema 2 holds them: what
// records-v2 makes of V1Records, and what ohfpd writes at schema 2.
func V2Records() []Record { return parse(v2Records) }

func parse(b []byte) []Record {
	var out []Record
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(" "))
		if !ok {
			panic(fmt.Sprintf("storetest: fixture line without a value: %q", line))
		}
		out = append(out, Record{Key: string(k), Value: bytes.Clone(v)})
	}
	return out
}

// WriteV1 makes dir (new or empty) a state directory as ohfpd left it at
// schema 1 after a clean shutdown: recs in Badger with "_meta/schema" = "1"
// and "_meta/seq" = 1 (all written as one Write), and ohfpd-store.json
// (format 1) saying schema 1, cluster_id clusterID, a clean shutdown and a
// watermark of 1. With clusterID "", neither the identity file nor
// "_meta/seq" is written, as by an ohfpd older than identity files (they
// came with the write sequence).
func WriteV1(dir, clusterID string, recs []Record) error {
	opts := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithLogger(nil).
		WithMemTableSize(4 << 20).
		WithBaseTableSize(2 << 20).
		WithValueLogFileSize(16 << 20).
		WithValueThreshold(64 << 10).
		WithNumCompactors(2).
		WithCompactL0OnClose(true)
	db, err := badger.Open(opts)
	if err != nil {
		return err
	}
	wb := db.NewWriteBatch()
	for _, r := range recs {
		if err := wb.Set([]byte(r.Key), r.Value); err != nil {
			wb.Cancel()
			db.Close()
			return err
		}
	}
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], 1)
	wb.Set([]byte("_meta/schema"), []byte("1"))
	if clusterID != "" { // an ohfpd before identity files had no write sequence either
		if err := wb.Set([]byte("_meta/seq"), seq[:]); err != nil {
			wb.Cancel()
			db.Close()
			return err
		}
	}
	if err := wb.Flush(); err != nil {
		db.Close()
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	if clusterID == "" {
		return nil
	}
	id, err := json.MarshalIndent(map[string]any{
		"format":         1,
		"cluster_id":     clusterID,
		"providers":      []string{"aws"},
		"schema":         1,
		"clean_shutdown": true,
		"write_seq":      1,
		"updated":        "2026-11-30T12:00:00Z",
	}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "ohfpd-store.json"), append(id, '\n'), 0o640)
}
