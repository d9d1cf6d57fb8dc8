// Package store keeps ohfpd's durable state in Badger behind a small
// key/value interface. Keys are strings, values are bytes: package state
// encodes its own records (JSON) and chooses its own key prefixes.
//
// Every write is synchronous (SyncWrites): when Write returns nil the data is
// on disk. The store carries a schema version under the reserved "_meta/"
// prefix; a store written by a newer ohfpd is refused instead of misread,
// an older one is brought up to date at Open by the migration list
// (migrations.go), which knows the key prefixes and record formats of each
// schema (those of package state's records.go today). Keys under "_meta/"
// are reserved: Write and Get refuse them and Scan skips them.
//
// The store knows what it is: beside Badger's files, IdentityFile records
// the cluster_id and provider names it belongs to, its schema, whether it
// was closed cleanly, and a write-sequence watermark. Every Write also
// stores its sequence number under "_meta/seq"; Open refuses a store whose
// sequence is behind the watermark, whose MANIFEST is missing, or whose
// tables are truncated or fail their checksums (*DamagedError), instead of
// letting Badger open it with data silently missing or panic. Writes are
// refused with *SpaceError while the filesystem is full or read-only, since
// Badger writes through sparse memory maps and a full disk would kill the
// process with SIGBUS.
package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/ohfp/ohfp/internal/english"
)

// SchemaVersion is the layout version this build writes and reads: the
// version the last of migrations produces.
const SchemaVersion = 2

// MetaPrefix is the reserved key prefix for the store's own records.
const MetaPrefix = "_meta/"

const (
	schemaKey = MetaPrefix + "schema"
	// seqKey holds the sequence number of the last Write, stored by that
	// Write in the same transaction (8 bytes, big-endian).
	seqKey = MetaPrefix + "seq"
)

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

	headroom uint64 // free bytes a write wants beyond its own (checkSpace)

	// Write sequence: seqMu orders the commits so that _meta/seq grows in
	// Badger's commit order; committed is the highest sequence known
	// durable; the watermark loop copies it into the identity file.
	seqMu     sync.Mutex
	seq       uint64
	committed atomic.Uint64

	idMu      sync.Mutex // guards ident, flushed and the identity file
	ident     identity
	flushed   uint64
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	wmu       sync.Mutex // guards the write outcome Health reports
	lastErr   string
	lastErrAt time.Time
	failed    uint64
}

// Open opens (or creates) the store in dir. It fails with a message naming
// dir when the directory cannot be created or written, when another process
// (or another Store in this process) holds it, when its files belong to
// another user in a way that would break the service (*OwnerError), when
// its schema version is newer than this build understands, and when it is
// damaged (*DamagedError): a table truncated or failing its checksums, its
// MANIFEST missing or unreadable, or writes missing that the identity
// file's watermark says were made. It never opens a damaged store with
// data silently missing.
func Open(dir string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if dir == "" {
		return nil, errors.New("store: no state directory given")
	}
	if err := checkOwner(dir, os.Geteuid()); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state directory %s cannot be created: %w", dir, err)
	}
	opts := options_(badger.DefaultOptions(dir), logger)
	if err := checkStartSpace(dir, headroom(opts.MemTableSize, opts.BaseTableSize)); err != nil {
		return nil, err
	}
	if err := checkWritable(dir); err != nil {
		return nil, err
	}
	id, err := readIdentity(dir)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("state directory %s is not readable by this user: %w", dir, err)
		}
		return nil, damaged(dir, "its identity file cannot be read (%v)", err)
	}
	if id != nil && id.Schema > SchemaVersion {
		// Refused before Badger touches the files of a newer ohfpd.
		return nil, newerSchema("state directory "+dir, id.Schema)
	}
	if id == nil {
		files, err := listFiles(dir)
		if err != nil {
			return nil, fmt.Errorf("state directory %s cannot be read: %w", dir, err)
		}
		if !files.manifest && len(files.data) == 0 {
			// A new store: its identity file comes first, so that a
			// Badger store without one is never one of this ohfpd's.
			id = &identity{Schema: SchemaVersion, Clean: true} // nothing to lose yet
			if err := writeIdentity(dir, *id); err != nil {
				return nil, fmt.Errorf("state directory %s: writing %s: %w", dir, IdentityFile, err)
			}
		}
	}
	// An identity file with no write and no cluster_id is that of a store
	// that never held anything (or a new one whose Badger never opened).
	known := id != nil && (id.Seq > 0 || id.ClusterID != "")
	if err := verifyBeforeOpen(dir, known, opts); err != nil {
		return nil, err
	}
	db, err := openBadger(opts)
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("state directory %s is in use by another ohfpd (or another program holds its lock): %w", dir, err)
		}
		if errors.Is(err, os.ErrPermission) {
			return nil, notWritable(dir, err)
		}
		return nil, damaged(dir, "Badger cannot open it (%v)", err)
	}
	s := &Store{db: db, dir: dir, logger: logger, headroom: headroom(opts.MemTableSize, opts.BaseTableSize), stop: make(chan struct{}), done: make(chan struct{})}
	schema, err := s.readSchema()
	if err != nil {
		db.Close()
		return nil, err
	}
	if id == nil {
		if err := s.checkWithoutIdentity(schema); err != nil {
			db.Close()
			return nil, err
		}
	}
	if err := s.checkSeq(id); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.upgrade(schema); err != nil {
		db.Close()
		return nil, err
	}
	if id == nil {
		id = &identity{}
	} else if !id.Clean {
		logger.Warn("the last shutdown of the store was not clean; its tables and its writes up to the watermark were verified", "dir", dir, "write_seq", id.Seq)
	}
	s.ident = *id
	s.ident.Schema = SchemaVersion // what upgrade left in Badger
	s.ident.Clean = false
	s.ident.Seq = s.seq
	if err := writeIdentity(dir, s.ident); err != nil {
		db.Close()
		return nil, fmt.Errorf("state directory %s: writing %s: %w", dir, IdentityFile, err)
	}
	s.flushed = s.seq
	s.committed.Store(s.seq)
	go s.runWatermark(time.Second)
	return s, nil
}

// openBadger opens Badger, turning a panic of its opening goroutine into
// an error where it can (the table checks before catch the known ones).
func openBadger(opts badger.Options) (db *badger.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %s", firstLine(fmt.Sprint(r)))
		}
	}()
	return badger.Open(opts)
}

// checkSeq compares Badger's write sequence with the identity file's
// watermark: lower (or missing) means writes were lost.
func (s *Store) checkSeq(id *identity) error {
	v, ok, err := s.get(seqKey)
	if err != nil {
		return damaged(s.dir, "its write-sequence record cannot be read (%v)", err)
	}
	if ok {
		if len(v) != 8 {
			return damaged(s.dir, "its write-sequence record is %d bytes, not 8", len(v))
		}
		s.seq = binary.BigEndian.Uint64(v)
	}
	if id == nil || id.Seq == 0 {
		return nil
	}
	how := "after a crash"
	if id.Clean {
		how = "after a clean shutdown"
	}
	if !ok {
		return damaged(s.dir, "its write-sequence record is missing though %s counts %s made: Badger opened it without its data (%s)", IdentityFile, english.Plural(int(id.Seq), "write"), how)
	}
	if s.seq < id.Seq {
		return damaged(s.dir, "it holds writes up to #%d, but %s says writes up to #%d were durable: the last %s lost (%s; a damaged memtable or table)", s.seq, IdentityFile, id.Seq, english.Plural(int(id.Seq-s.seq), "write"), how)
	}
	return nil
}

// checkWithoutIdentity decides on a Badger store that has no identity
// file. Only an ohfpd older than identity files made such stores: they
// have records but no write sequence, and a schema of at most 1. A store
// with a write sequence, or a later schema, or nothing at all, lost its
// identity file (deleted, or with its directory's other files): without
// it the watermark is gone, so writes lost with a memtable log could not
// be noticed, and so is the cluster_id, so the cluster_id guard would
// pass. Such a store is refused as damaged.
func (s *Store) checkWithoutIdentity(schema int) error {
	v, ok, err := s.get(seqKey)
	if err != nil {
		return damaged(s.dir, "its write-sequence record cannot be read (%v)", err)
	}
	const lost = "without it, writes lost since (with a memtable log) cannot be detected, nor the cluster_id it belongs to checked"
	if ok {
		n := uint64(0)
		if len(v) == 8 {
			n = binary.BigEndian.Uint64(v)
		}
		return damaged(s.dir, "its identity file %s is missing, but it was written by an ohfpd that keeps one (up to write #%d): %s", IdentityFile, n, lost)
	}
	if schema >= 2 {
		return damaged(s.dir, "its identity file %s is missing, but it has schema %d, which only an ohfpd that keeps one writes: %s", IdentityFile, schema, lost)
	}
	empty := true
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		it.Rewind()
		empty = !it.Valid()
		return nil
	})
	if err != nil {
		return damaged(s.dir, "it cannot be read (%v)", err)
	}
	if empty {
		return damaged(s.dir, "its identity file %s is missing and Badger holds nothing, not even a schema version: its files were lost", IdentityFile)
	}
	s.logger.Warn("state directory has no identity file: a store of an ohfpd older than identity files (records, no write sequence); it is given one", "dir", s.dir, "schema", schema, "file", IdentityFile)
	return nil
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
	if err := s.upgrade(0); err != nil {
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
		WithValueLogFileSize(16 << 20).
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
		return notWritable(dir, err)
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

// readSchema returns the schema version recorded in Badger, 0 for a new
// store.
func (s *Store) readSchema() (int, error) {
	v, ok, err := s.get(schemaKey)
	if err != nil {
		return 0, fmt.Errorf("%s: reading schema version: %w", s.where(), err)
	}
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s: schema version %q is not a version number; the directory does not hold ohfpd state", s.where(), v)
	}
	if n > SchemaVersion {
		return 0, newerSchema(s.where(), n)
	}
	return n, nil
}

func newerSchema(where string, n int) error {
	return fmt.Errorf("%s has schema version %d, newer than this ohfpd understands (%d): run the newer ohfpd, or move the directory aside to start empty", where, n, SchemaVersion)
}

// upgrade brings a store at schema version from (0: new) to SchemaVersion:
// a new store is given it, an older one is migrated (see migrations).
func (s *Store) upgrade(from int) error {
	if from == 0 {
		err := s.db.Update(func(txn *badger.Txn) error {
			return txn.Set([]byte(schemaKey), []byte(strconv.Itoa(SchemaVersion)))
		})
		if err != nil {
			return fmt.Errorf("%s: recording schema version: %w", s.where(), err)
		}
		return nil
	}
	return s.migrate(from)
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
		err := fmt.Errorf("%s: write refused: %w", s.where(), *p)
		s.noteWrite(err)
		return err
	}
	for _, op := range ops {
		if !validKey(op.Key) {
			return fmt.Errorf("%w: %q", ErrReservedKey, op.Key)
		}
	}
	err := s.write(ops, func() {
		s.logger.Warn("store write too big for one transaction; splitting it (not atomic)", "ops", len(ops))
	})
	s.noteWrite(err)
	return err
}

// write applies ops, reserved keys included, in as few consecutive
// transactions as they fit in, in order, calling onSplit before the first
// split; the last transaction also stores the write sequence.
func (s *Store) write(ops []Op, onSplit func()) error {
	if len(ops) == 0 {
		return nil
	}
	size := 0
	for _, op := range ops {
		size += len(op.Key) + len(op.Value)
	}
	if err := s.checkSpace(size); err != nil {
		return err
	}
	txn := s.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	split := false
	next := func() error {
		if !split {
			onSplit()
			split = true
		}
		if err := txn.Commit(); err != nil {
			return fmt.Errorf("%s: write: %w", s.where(), err)
		}
		txn = s.db.NewTransaction(true)
		return nil
	}
	for _, op := range ops {
		err := apply(txn, op)
		if errors.Is(err, badger.ErrTxnTooBig) {
			if err := next(); err != nil {
				return err
			}
			err = apply(txn, op)
		}
		if err != nil {
			return fmt.Errorf("%s: write %q: %w", s.where(), op.Key, err)
		}
	}
	return s.commitSeq(txn, next)
}

// commitSeq stores the next write sequence in txn and commits it. The
// sequence is taken and the commit handed to Badger under seqMu, so that
// the sequences reach Badger in order; the wait for the disk is outside
// it, so that concurrent writes still share one sync.
func (s *Store) commitSeq(txn *badger.Txn, next func() error) error {
	var seqVal [8]byte
	s.seqMu.Lock()
	seq := s.seq + 1
	binary.BigEndian.PutUint64(seqVal[:], seq)
	err := txn.Set([]byte(seqKey), seqVal[:])
	if errors.Is(err, badger.ErrTxnTooBig) {
		if err = next(); err == nil {
			err = txn.Set([]byte(seqKey), seqVal[:])
		}
	}
	if err != nil {
		s.seqMu.Unlock()
		return fmt.Errorf("%s: write: %w", s.where(), err)
	}
	s.seq = seq
	done := make(chan error, 1)
	txn.CommitWith(func(err error) { done <- err })
	s.seqMu.Unlock()
	if err := <-done; err != nil {
		return fmt.Errorf("%s: write: %w", s.where(), err)
	}
	for {
		c := s.committed.Load()
		if c >= seq || s.committed.CompareAndSwap(c, seq) {
			return nil
		}
	}
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
		return s.scan(txn, prefix, true, fn)
	})
}

func (s *Store) scan(txn *badger.Txn, prefix string, skipMeta bool, fn func(key string, value []byte) error) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte(prefix)
	opts.PrefetchSize = 64
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		k := string(item.Key())
		if skipMeta && strings.HasPrefix(k, MetaPrefix) {
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

// Dir returns the state directory, or "" for an in-memory store.
func (s *Store) Dir() string { return s.dir }

// runWatermark copies the highest durable write sequence into the
// identity file every interval while it changes, until Close.
func (s *Store) runWatermark(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if err := s.flushWatermark(false); err != nil {
			s.logger.Warn("store: writing the write-sequence watermark failed", "err", err)
		}
	}
}

// flushWatermark writes the identity file with the highest durable write
// sequence when it moved on (or always with clean set, at Close).
func (s *Store) flushWatermark(clean bool) error {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	c := s.committed.Load()
	if c == s.flushed && !clean {
		return nil
	}
	if err := s.checkSpace(0); err != nil && !clean {
		return nil // no room; the next round tries again
	}
	id := s.ident
	id.Seq, id.Clean = c, clean
	if err := writeIdentity(s.dir, id); err != nil {
		return fmt.Errorf("%s: %s: %w", s.where(), IdentityFile, err)
	}
	s.ident, s.flushed = id, c
	return nil
}

// Close syncs and closes the database, then marks the store as closed
// cleanly. The Store must not be used after.
//
// Closing Badger flushes its memtable into a level-0 table and compacts
// level 0, writing through sparse memory maps: on a full filesystem that
// kills the process with SIGBUS (and on a read-only one the flush retries
// for ever). So when the filesystem has less free than that may take, or
// is read-only, Close does not close Badger: every Write it acknowledged is
// already in Badger's memtable log (.mem, synced by SyncWrites), which the
// next Open replays. Close logs why, leaves the identity file saying the
// shutdown was not clean, and returns nil; Badger's files stay open and
// locked until the process exits, which it must do next.
func (s *Store) Close() error {
	if s.dir == "" {
		if err := s.db.Close(); err != nil {
			return fmt.Errorf("%s: close: %w", s.where(), err)
		}
		return nil
	}
	s.closeOnce.Do(func() { close(s.stop) })
	<-s.done
	if err := s.db.Sync(); err != nil {
		s.db.Close()
		return fmt.Errorf("%s: sync on close: %w", s.where(), err)
	}
	if why := s.noRoomToClose(); why != "" {
		s.logger.Warn(why, "dir", s.dir, "write_seq", s.committed.Load())
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("%s: close: %w", s.where(), err)
	}
	return s.flushWatermark(true)
}

// noRoomToClose says why Badger must not be closed ("" when it may): its
// close may write its memtable and the tables of a level-0 compaction,
// so it wants the write headroom free plus the size of the tables.
func (s *Store) noRoomToClose() string {
	free, ro, ok := space(s.dir)
	if !ok {
		return ""
	}
	const kept = "Badger's memtable log (.mem) is left as it is, holding every saved write, to be replayed at the next start"
	if ro {
		return "state directory read-only at shutdown: the filesystem of " + s.dir + " is mounted read-only, so Badger cannot flush its memtable into a table: " + kept + "; remount it read-write before starting ohfpd again"
	}
	sst, _ := diskUsage(s.dir, ".sst")
	need := s.headroom + uint64(sst)
	if free >= need {
		return ""
	}
	return fmt.Sprintf("state directory full at shutdown: %d MB free on %s, flushing Badger's memtable into a table needs %d MB (on a full disk it would kill ohfpd with SIGBUS): %s; free space before starting ohfpd again",
		free>>20, s.dir, mb(need), kept)
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
