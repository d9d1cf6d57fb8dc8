package store

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Badger writes its memtable log (.mem) and its value log (.vlog) through
// memory-mapped files it creates sparse: on a full filesystem the write
// into the mapping faults (SIGBUS) and the whole process dies. So every
// Write first checks the free space of the state directory's filesystem
// and refuses, with an error, while there is less than Badger may need to
// take the write and everything it can set off: a fresh memtable file
// (twice the memtable size), the flush of the full one into a level-0
// table, a compaction's output tables, and the write itself twice over
// (memtable log, then table).

// SpaceError is a write refused because the state directory's filesystem
// is full or read-only. Writes resume by themselves once it is not.
type SpaceError struct {
	Dir      string
	Free     uint64 // bytes available to ohfpd
	Need     uint64 // bytes it wants available before a write
	ReadOnly bool
}

func (e *SpaceError) Error() string {
	if e.ReadOnly {
		return fmt.Sprintf("state directory read-only: the filesystem of %s is mounted read-only, ohfpd cannot record anything: remount it read-write; ohfpd resumes by itself", e.Dir)
	}
	return fmt.Sprintf("state directory full: %d MB free on %s, ohfpd needs %d MB: free space; ohfpd resumes by itself",
		e.Free>>20, e.Dir, (e.Need+1<<20-1)>>20)
}

// headroom is the free space every write wants beyond its own bytes.
func headroom(memTable, baseTable int64) uint64 {
	return uint64(3*memTable + 2*baseTable)
}

// checkSpace refuses a write of n bytes when the filesystem of the store is
// read-only or has less than the headroom free.
func (s *Store) checkSpace(n int) error {
	if s.dir == "" {
		return nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(s.dir, &st); err != nil {
		return nil // cannot tell: let Badger try
	}
	if st.Flags&unix.ST_RDONLY != 0 {
		return &SpaceError{Dir: s.dir, ReadOnly: true}
	}
	free := st.Bavail * uint64(st.Bsize)
	need := s.headroom + 2*uint64(n)
	if free < need {
		return &SpaceError{Dir: s.dir, Free: free, Need: need}
	}
	return nil
}
