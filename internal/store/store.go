// Package store keeps ohfpd's durable state in Badger behind a small
// key/value interface. Keys are strings, values are bytes: the engine encodes
// its own records (JSON) and chooses its own key prefixes.
//
// Every write is synchronous (SyncWrites): when Write returns nil the data is
// on disk. The store carries a schema version under the reserved "_meta/"
// prefix; a store written by a newer ohfpd is refused instead of misread.
// Keys under "_meta/" are reserved: Write and Get refuse them and Scan skips
// them.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// SchemaVersion is the layout version this build writes and reads.
const SchemaVersion = 1

// MetaPrefix is the reserved key prefix for the store's own records.
const MetaPrefix = "_meta/"

const schemaKey = MetaPrefix + "schema"

// ErrReservedKey is returned for keys under MetaPrefix, or empty keys.
var ErrReservedKey = errors.New("store: empty key or key under the reserved prefix " + MetaPrefix)

// Op is one change in a Write: set Key to Value, or delete Key when Delete
// is true (Value is then ignored).
type Op struct {
	Key    string
	Value  []byte
	Delete bool
}

// Store is an open Badger database. It is safe for concurrent use.
type Store struct {
	db     *badger.DB
	dir    string // "" in memory
	logger *slog.Logger
	fail   atomic.Pointer[error]
}

// Open opens (or creates) the store in dir. It fails with a message naming
// dir when the directory cannot be created or written, when another process
// (or another Store in this process) holds it, or when its schema version is
// newer than this build understands.
func Open(dir string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if dir == "" {
		return nil, errors.New("store: no state directory given")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state directory %s cannot be created: %w", dir, err)
	}
	if err := checkWritable(dir); err != nil {
		return nil, err
	}
	opts := options_(badger.DefaultOptions(dir), logger)
	db, err := badger.Open(opts)
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("state directory %s is in use by another ohfpd (or another program holds its lock): %w", dir, err)
		}
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("state directory %s is not writable by this user: %w", dir, err)
		}
		return nil, fmt.Errorf("state directory %s cannot be opened: %w", dir, err)
	}
	s := &Store{db: db, dir: dir, logger: logger}
	if err := s.checkSchema(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// OpenInMemory opens a store that lives in memory only, for tests.
func OpenInMemory(logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := options_(badger.DefaultOptions("").WithInMemory(true), logger)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("in-memory store: %w", err)
	}
	s := &Store{db: db, logger: logger}
	if err := s.checkSchema(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// options_ tunes Badger for a small database (tens of thousands of small
// records): synchronous writes, small memtables and caches, few compactors,
// small value-log files, and Badger's own logging reduced to warnings.
func options_(o badger.Options, logger *slog.Logger) badger.Options {
	return o.
		WithSyncWrites(true).
		WithLogger(slogLogger{logger}).
		WithMetricsEnabled(false).
		WithMemTableSize(4 << 20).
		WithNumMemtables(2).
		WithBaseTableSize(2 << 20).
		WithBaseLevelSize(8 << 20).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithNumCompactors(2).
		WithBlockCacheSize(2 << 20).
		WithIndexCacheSize(4 << 20).
		WithValueLogFileSize(32 << 20).
		WithValueThreshold(64 << 10).
		WithNumGoroutines(2).
		WithCompression(options.None).
		WithCompactL0OnClose(true)
}

// checkWritable proves the directory accepts a new file, so that a
// read-only directory fails with a clear message instead of a Badger
// internal error.
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".ohfpd-write-test-*")
	if err != nil {
		return fmt.Errorf("state directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

func (s *Store) where() string {
	if s.dir == "" {
		return "in-memory store"
	}
	return "state directory " + s.dir
}

func (s *Store) checkSchema() error {
	v, ok, err := s.get(schemaKey)
	if err != nil {
		return fmt.Errorf("%s: reading schema version: %w", s.where(), err)
	}
	if !ok {
		return s.db.Update(func(txn *badger.Txn) error {
			return txn.Set([]byte(schemaKey), []byte(strconv.Itoa(SchemaVersion)))
		})
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return fmt.Errorf("%s: schema version %q is not a number; the directory does not hold ohfpd state", s.where(), v)
	}
	if n > SchemaVersion {
		return fmt.Errorf("%s has schema version %d, newer than this ohfpd understands (%d): run the newer ohfpd, or move the directory aside to start empty", s.where(), n, SchemaVersion)
	}
	// Older versions would be migrated here, in one transaction.
	return nil
}

// Schema returns the schema version recorded in the store.
func (s *Store) Schema() (int, error) {
	v, ok, err := s.get(schemaKey)
	if err != nil || !ok {
		return 0, err
	}
	return strconv.Atoi(string(v))
}

func validKey(k string) bool { return k != "" && !strings.HasPrefix(k, MetaPrefix) }

// Write applies ops in one transaction: all of them are durable when it
// returns nil, none when it returns an error. Only when the ops do not fit in
// one Badger transaction (several megabytes) are they split into several
// consecutive transactions; then a crash in the middle can leave a prefix of
// them applied (a warning is logged). Later ops win over earlier ones for
// the same key.
func (s *Store) Write(ops ...Op) error {
	if p := s.fail.Load(); p != nil {
		return fmt.Errorf("%s: write refused: %w", s.where(), *p)
	}
	for _, op := range ops {
		if !validKey(op.Key) {
			return fmt.Errorf("%w: %q", ErrReservedKey, op.Key)
		}
	}
	if len(ops) == 0 {
		return nil
	}
	txn := s.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	split := false
	for _, op := range ops {
		err := apply(txn, op)
		if errors.Is(err, badger.ErrTxnTooBig) {
			if !split {
				s.logger.Warn("store write too big for one transaction; splitting it (not atomic)", "ops", len(ops))
				split = true
			}
			if err := txn.Commit(); err != nil {
				return fmt.Errorf("%s: write: %w", s.where(), err)
			}
			txn = s.db.NewTransaction(true)
			err = apply(txn, op)
		}
		if err != nil {
			return fmt.Errorf("%s: write %q: %w", s.where(), op.Key, err)
		}
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("%s: write: %w", s.where(), err)
	}
	return nil
}

func apply(txn *badger.Txn, op Op) error {
	if op.Delete {
		return txn.Delete([]byte(op.Key))
	}
	v := op.Value
	if v == nil {
		v = []byte{}
	}
	return txn.Set([]byte(op.Key), v)
}

// Get returns a copy of the value stored under key, and whether it exists.
func (s *Store) Get(key string) ([]byte, bool, error) {
	if !validKey(key) {
		return nil, false, fmt.Errorf("%w: %q", ErrReservedKey, key)
	}
	return s.get(key)
}

func (s *Store) get(key string) ([]byte, bool, error) {
	var out []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(key))
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: read %q: %w", s.where(), key, err)
	}
	return out, true, nil
}

// Scan calls fn for every key starting with prefix, in key order, from one
// consistent snapshot. key and value are copies fn may keep. An error from fn
// stops the scan and is returned as is. Reserved keys are skipped.
func (s *Store) Scan(prefix string, fn func(key string, value []byte) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte(prefix)
		opts.PrefetchSize = 64
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			k := string(item.Key())
			if strings.HasPrefix(k, MetaPrefix) {
				continue
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return fmt.Errorf("%s: scan %q: %w", s.where(), k, err)
			}
			if err := fn(k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// FailWrites makes every following Write fail with err (wrapped), without
// touching the database; nil restores normal writes. It is a fault lever for
// tests of the callers.
func (s *Store) FailWrites(err error) {
	if err == nil {
		s.fail.Store(nil)
		return
	}
	s.fail.Store(&err)
}

// RunGC runs Badger's value-log garbage collection every interval until ctx
// is done. Each round rewrites value-log files while at least half of one is
// garbage.
func (s *Store) RunGC(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 10 * time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for i := 0; i < 16 && ctx.Err() == nil; i++ {
			err := s.db.RunValueLogGC(0.5)
			if err != nil {
				if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
					s.logger.Warn("store value-log GC failed", "err", err)
				}
				break
			}
		}
	}
}

// Size returns the bytes used by the LSM tree and by the value log.
func (s *Store) Size() (lsm, vlog int64) { return s.db.Size() }

// Dir returns the state directory, or "" for an in-memory store.
func (s *Store) Dir() string { return s.dir }

// Close syncs and closes the database. The Store must not be used after.
func (s *Store) Close() error {
	if s.dir != "" {
		if err := s.db.Sync(); err != nil {
			s.db.Close()
			return fmt.Errorf("%s: sync on close: %w", s.where(), err)
		}
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("%s: close: %w", s.where(), err)
	}
	return nil
}

// slogLogger routes Badger's log lines to slog, keeping only warnings and
// errors (Badger logs a lot at info level).
type slogLogger struct{ l *slog.Logger }

func (b slogLogger) Errorf(f string, a ...any) {
	b.l.Error(strings.TrimSpace(fmt.Sprintf(f, a...)), "component", "badger")
}
func (b slogLogger) Warningf(f string, a ...any) {
	b.l.Warn(strings.TrimSpace(fmt.Sprintf(f, a...)), "component", "badger")
}
func (slogLogger) Infof(string, ...any)  {}
func (slogLogger) Debugf(string, ...any) {}
