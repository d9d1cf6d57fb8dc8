package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Badger writes its memtable log (.mem) and its value log (.vlog) through
// memory-mapped files it creates sparse, and builds its tables the same
// way: on a full filesystem the write into the mapping faults (SIGBUS) and
// the whole process dies, in a goroutine of Badger's where no recover can
// reach. So every Write first checks the free space of the state
// directory's filesystem and refuses, with an error, while there is less
// than Badger may need to take the write and everything it can set off: a
// fresh memtable file (twice the memtable size), the flush of the full one
// into a level-0 table, a compaction's output tables, and the write itself
// twice over (memtable log, then table). Open refuses to start below the
// same headroom (plus the memtable logs it has to replay), and Close does
// not let Badger flush its memtable when the flush could fault (see
// Close).

// SpaceError is a write, or a start, refused because the state directory's
// filesystem is full or read-only. Writes resume by themselves once it is
// not; a refused start needs ohfpd started again.
type SpaceError struct {
	Dir      string
	Free     uint64 // bytes available to ohfpd
	Need     uint64 // bytes it wants available
	ReadOnly bool
	Start    bool // refused at Open, not at a write
}

func (e *SpaceError) Error() string {
	then := "ohfpd resumes by itself"
	if e.Start {
		then = "then start ohfpd again"
	}
	if e.ReadOnly {
		return fmt.Sprintf("state directory read-only: the filesystem of %s is mounted read-only, ohfpd cannot record anything: remount it read-write, %s", e.Dir, then)
	}
	sep := "; "
	if e.Start {
		sep = ", "
	}
	return fmt.Sprintf("state directory full: %d MB free on %s, ohfpd needs %d MB: free space%s%s",
		e.Free>>20, e.Dir, mb(e.Need), sep, then)
}

// mb is n bytes in megabytes, rounded up.
func mb(n uint64) uint64 { return (n + 1<<20 - 1) >> 20 }

// headroom is the free space every write wants beyond its own bytes.
func headroom(memTable, baseTable int64) uint64 {
	return uint64(3*memTable + 2*baseTable)
}

// statfs is unix.Statfs; tests replace it to play a full or read-only
// filesystem.
var statfs = unix.Statfs

// space returns the bytes available to ohfpd on dir's filesystem and
// whether it is mounted read-only; ok is false when it cannot tell.
func space(dir string) (free uint64, readOnly, ok bool) {
	var st unix.Statfs_t
	if err := statfs(dir, &st); err != nil || st.Blocks == 0 {
		return 0, false, false // no block accounting (sysfs, procfs): cannot tell
	}
	return st.Bavail * uint64(st.Bsize), st.Flags&unix.ST_RDONLY != 0, true
}

// checkSpace refuses a write of n bytes when the filesystem of the store is
// read-only or has less than the headroom free.
func (s *Store) checkSpace(n int) error {
	if s.dir == "" {
		return nil
	}
	free, ro, ok := space(s.dir)
	if !ok {
		return nil // cannot tell: let Badger try
	}
	if ro {
		return &SpaceError{Dir: s.dir, ReadOnly: true}
	}
	need := s.headroom + 2*uint64(n)
	if free < need {
		return &SpaceError{Dir: s.dir, Free: free, Need: need}
	}
	return nil
}

// checkStartSpace refuses to open Badger in dir when its filesystem is
// read-only or has less free than need plus the memtable logs Badger
// replays (and flushes into tables) at Open: Badger creates its new
// memtable log and value log, and writes the replayed tables, through
// sparse memory maps, and dies with SIGBUS on a full filesystem.
func checkStartSpace(dir string, need uint64) error {
	free, ro, ok := space(dir)
	if !ok {
		return nil
	}
	if ro {
		return &SpaceError{Dir: dir, ReadOnly: true, Start: true}
	}
	mem, _ := diskUsage(dir, ".mem")
	need += uint64(mem)
	if free < need {
		return &SpaceError{Dir: dir, Free: free, Need: need, Start: true}
	}
	return nil
}

// diskUsage returns the bytes dir's files ending in one of exts take on
// disk (allocated blocks, as du counts them: Badger's memtable and value
// logs are sparse files far larger than their content).
func diskUsage(dir string, exts ...string) (int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range entries {
		if !hasSuffix(e.Name(), exts) {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, e.Name()), &st); err != nil {
			continue // removed by a compaction meanwhile
		}
		n += st.Blocks * 512
	}
	return n, nil
}

func hasSuffix(name string, exts []string) bool {
	for _, x := range exts {
		if strings.HasSuffix(name, x) {
			return true
		}
	}
	return false
}

// Size returns the bytes the store takes on disk: lsm is Badger's tables
// and memtable logs (.sst, .mem), vlog its value log (.vlog). Both are read
// from the directory at each call (Badger's own figures are kept only with
// its metrics on, and then refreshed once a minute), as allocated blocks.
// An in-memory store is 0, 0.
func (s *Store) Size() (lsm, vlog int64) {
	if s.dir == "" {
		return 0, 0
	}
	lsm, _ = diskUsage(s.dir, ".sst", ".mem")
	vlog, _ = diskUsage(s.dir, ".vlog")
	return lsm, vlog
}

// Health is the store's state as the daemon can show it.
type Health struct {
	Dir string `json:"dir,omitempty"`
	// FreeBytes is the space available on the state directory's
	// filesystem; NeedBytes what ohfpd wants free before a write.
	FreeBytes uint64 `json:"freeBytes"`
	NeedBytes uint64 `json:"needBytes"`
	// SpaceLow: writes are refused until space is freed (FreeBytes <
	// NeedBytes). ReadOnly: the filesystem is mounted read-only.
	SpaceLow bool `json:"spaceLow,omitempty"`
	ReadOnly bool `json:"readOnly,omitempty"`
	// LastWriteError is the last Write that failed, at LastWriteErrorAt;
	// FailedWrites counts the Writes that failed since the last one that
	// succeeded (0: the last Write was saved). Their callers hold what
	// they could not save.
	LastWriteError   string    `json:"lastWriteError,omitempty"`
	LastWriteErrorAt time.Time `json:"lastWriteErrorAt,omitzero"`
	FailedWrites     uint64    `json:"failedWrites,omitempty"`
	// WriteSeq is the sequence number of the last Write saved.
	WriteSeq uint64 `json:"writeSeq"`
	// LSMBytes and VlogBytes are Size's figures.
	LSMBytes  int64 `json:"lsmBytes"`
	VlogBytes int64 `json:"vlogBytes"`
}

// Health returns the store's health: free space against what writes
// need, the last write error and how many writes failed since the last
// success, and its size on disk.
func (s *Store) Health() Health {
	h := Health{Dir: s.dir, WriteSeq: s.committed.Load()}
	s.wmu.Lock()
	h.LastWriteError, h.LastWriteErrorAt, h.FailedWrites = s.lastErr, s.lastErrAt, s.failed
	s.wmu.Unlock()
	if s.dir == "" {
		return h
	}
	h.NeedBytes = s.headroom
	if free, ro, ok := space(s.dir); ok {
		h.FreeBytes, h.ReadOnly = free, ro
		h.SpaceLow = free < s.headroom
	}
	h.LSMBytes, h.VlogBytes = s.Size()
	return h
}

// noteWrite records the outcome of a Write for Health.
func (s *Store) noteWrite(err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err == nil {
		s.failed = 0
		return
	}
	s.failed++
	s.lastErr, s.lastErrAt = err.Error(), time.Now()
}
