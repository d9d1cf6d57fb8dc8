package store

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/ristretto/v2/z"

	"github.com/ohfp/ohfp/internal/english"
)

// DamagedError is a state directory ohfpd refuses to open because opening
// it would lose data, or could not be done at all.
type DamagedError struct {
	Dir     string
	Problem string
	// User is the service user, the owner of Dir ("" when root owns it
	// and ohfpd runs as root: then the service user is not known).
	User string
}

func (e *DamagedError) Error() string {
	// As root, --rebuild-from-cloud would create a state directory the
	// service user cannot open: say to run it as the service user.
	as := "as the service user (not as root: runuser -u USER -- ohfpd --rebuild-from-cloud, with the configuration the service uses), or add --rebuild-from-cloud to the service's command for one start"
	if e.User != "" {
		as = fmt.Sprintf("as the service user %s, not as root (runuser -u %s -- ohfpd --rebuild-from-cloud, with the configuration the service uses), or add --rebuild-from-cloud to the service's command for one start", e.User, e.User)
	}
	return fmt.Sprintf("state directory %s is damaged: %s. ohfpd refuses to open it rather than run with requests or machines missing. "+
		"Move it aside (mv %s %s.damaged) and start ohfpd --rebuild-from-cloud %s: it rebuilds requests, machines and return requests from the cloud's tags",
		e.Dir, e.Problem, e.Dir, e.Dir, as)
}

func damaged(dir, format string, a ...any) error {
	return &DamagedError{Dir: dir, Problem: fmt.Sprintf(format, a...), User: serviceUser(dir)}
}

// serviceUser is the user the service runs as, as far as dir tells: its
// owner when that is not root, else the user ohfpd runs as when that is
// not root; "" when both are root.
func serviceUser(dir string) string {
	if fi, err := os.Stat(dir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
			return userName(st.Uid)
		}
	}
	if euid := os.Geteuid(); euid != 0 {
		return userName(uint32(euid))
	}
	return ""
}

// OwnerError is a state directory, or a file in it, owned by another user
// than the one ohfpd runs as, in a way that breaks the service.
type OwnerError struct{ msg string }

func (e *OwnerError) Error() string { return e.msg }

// checkOwner refuses, for a process running as euid:
//   - root on a directory owned by another user (the service user): the
//     files root would create there would keep the service from opening
//     the store at its next start;
//   - another user on a directory holding files it does not own (left by a
//     run as root): Badger would fail on them with "permission denied".
//   - root on a state directory that does not exist yet, where the
//     service user's is expected: its parent, or a directory beside it
//     named after it (DIR.damaged, as the damaged-store message says to
//     make), belongs to another user. ohfpd refuses rather than create it
//     for that user: as root it would go on creating Badger's files in it
//     as root, which the service could not open either.
func checkOwner(dir string, euid int) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) && euid == 0 {
		return checkRootCreates(dir)
	}
	if err != nil {
		return nil // MkdirAll and checkWritable say what is wrong
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if euid == 0 {
		if st.Uid != 0 {
			name := userName(st.Uid)
			return &OwnerError{fmt.Sprintf("ohfpd runs as root, but state directory %s belongs to %s (uid %d): files root creates there would keep the service from opening it at its next start. "+
				"Run ohfpd as %s (systemctl start ohfpd, or runuser -u %s -- ohfpd ...)", dir, name, st.Uid, name, name)}
		}
		return nil
	}
	entries, _ := os.ReadDir(dir) // unreadable: the directory's owner says why
	var foreign []string
	var owner uint32
	for _, e := range entries {
		if e.Name() == "lost+found" {
			continue // a state directory on a file system of its own: mkfs's, root's, never written
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if fst, ok := info.Sys().(*syscall.Stat_t); ok && int(fst.Uid) != euid {
			if len(foreign) == 0 {
				owner = fst.Uid
			}
			foreign = append(foreign, e.Name())
		}
	}
	if len(foreign) == 0 && int(st.Uid) == euid {
		return nil
	}
	me, group := userName(uint32(euid)), groupName(os.Getegid())
	what := fmt.Sprintf("state directory %s belongs to %s (uid %d)", dir, userName(st.Uid), st.Uid)
	if len(foreign) > 0 {
		shown := foreign[:min(len(foreign), 3)]
		what = fmt.Sprintf("state directory %s holds %s owned by %s (uid %d), such as %s, probably left by a run as root", dir, english.Plural(len(foreign), "file"), userName(owner), owner, strings.Join(shown, ", "))
	}
	them := "it"
	if len(foreign) > 0 {
		them = "them"
	}
	return &OwnerError{fmt.Sprintf("ohfpd runs as %s (uid %d), but %s: give %s to the service user, as root: chown -R %s:%s %s", me, euid, what, them, me, group, dir)}
}

// checkRootCreates refuses root the creation of dir when its nearest
// existing parent, or a directory beside it named DIR.*, belongs to
// another user.
func checkRootCreates(dir string) error {
	refuse := func(what string, uid uint32) error {
		name := userName(uid)
		return &OwnerError{fmt.Sprintf("ohfpd runs as root, but state directory %s does not exist and %s belongs to %s (uid %d): "+
			"a state directory root creates would keep the service from opening it at its next start. "+
			"Run ohfpd as %s (systemctl start ohfpd, or runuser -u %s -- ohfpd ...)", dir, what, name, uid, name, name)}
	}
	others, _ := filepath.Glob(dir + ".*")
	for _, o := range others {
		if fi, err := os.Stat(o); err == nil && fi.IsDir() {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
				return refuse(o+" beside it", st.Uid)
			}
		}
	}
	for p := filepath.Dir(filepath.Clean(dir)); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
				return refuse("its parent "+p, st.Uid)
			}
			return nil
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// notWritable is the error for a state directory ohfpd cannot write in,
// with the remedy: its owner and chown -R, or chmod when ohfpd owns it.
func notWritable(dir string, err error) error {
	me := userName(uint32(os.Geteuid()))
	fi, serr := os.Stat(dir)
	if serr != nil || !errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("state directory %s is not writable by %s: %w", dir, me, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("state directory %s is not writable by %s: %w", dir, me, err)
	}
	if int(st.Uid) == os.Geteuid() {
		return fmt.Errorf("state directory %s is not writable by %s, its owner (mode %04o): %w: give it back its rights: chmod u+rwx %s", dir, me, fi.Mode().Perm(), err, dir)
	}
	return fmt.Errorf("state directory %s is not writable by %s (uid %d): %w: it belongs to %s:%s (uid %d, mode %04o); give it to the service user, as root: chown -R %s:%s %s",
		dir, me, os.Geteuid(), err, userName(st.Uid), groupName(int(st.Gid)), st.Uid, fi.Mode().Perm(), me, groupName(os.Getegid()), dir)
}

func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}

func userName(uid uint32) string {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		return u.Username
	}
	return strconv.FormatUint(uint64(uid), 10)
}

// dirFiles is what a state directory holds of Badger's files.
type dirFiles struct {
	manifest bool
	data     []string // .sst, .vlog and .mem files
}

func listFiles(dir string) (dirFiles, error) {
	var out dirFiles
	entries, err := os.ReadDir(dir)
	if err != nil {
		return out, err
	}
	for _, e := range entries {
		n := e.Name()
		switch {
		case n == "MANIFEST":
			out.manifest = true
		case strings.HasSuffix(n, ".sst"), strings.HasSuffix(n, ".vlog"), strings.HasSuffix(n, ".mem"):
			out.data = append(out.data, n)
		}
	}
	return out, nil
}

// verifyBeforeOpen checks what Badger would otherwise get wrong silently
// or with a panic, before it touches the directory: a missing MANIFEST
// (Badger would start empty and delete every table), an unreadable
// MANIFEST, a table the MANIFEST names that is missing, truncated or fails
// its checksums (Badger panics in a goroutine on a truncated table, and
// skips a table whose checksum fails).
func verifyBeforeOpen(dir string, known bool, opts badger.Options) error {
	files, err := listFiles(dir)
	if err != nil {
		return fmt.Errorf("state directory %s cannot be read: %w", dir, err)
	}
	if !files.manifest {
		if known {
			return damaged(dir, "its MANIFEST file is missing (%s says a store was here), so Badger would start it empty", IdentityFile)
		}
		if len(files.data) > 0 {
			return damaged(dir, "its MANIFEST file is missing but it holds Badger files (%s), so Badger would start it empty", strings.Join(files.data[:min(3, len(files.data))], ", "))
		}
		return nil
	}
	f, err := os.Open(filepath.Join(dir, "MANIFEST"))
	if err != nil {
		return fmt.Errorf("state directory %s: MANIFEST cannot be read: %w", dir, err)
	}
	mf, _, err := badger.ReplayManifestFile(f, opts.ExternalMagicVersion, opts)
	f.Close()
	if err != nil {
		return damaged(dir, "its MANIFEST file cannot be read (%v)", err)
	}
	for id, tm := range mf.Tables {
		if tm.KeyID != 0 {
			continue // encrypted tables: ohfpd does not write them
		}
		name := table.NewFilename(id, dir)
		if err := verifyTable(name, tm.Compression); err != nil {
			return damaged(dir, "table %s %v", filepath.Base(name), err)
		}
	}
	return nil
}

// verifyTable opens one table read-only and checks every block's checksum,
// turning a panic (Badger's answer to a truncated table) into an error.
func verifyTable(name string, c options.CompressionType) (err error) {
	mf, err := z.OpenMmapFile(name, os.O_RDONLY, 0)
	if err != nil {
		if os.IsNotExist(err) {
			return fmt.Errorf("is missing")
		}
		return fmt.Errorf("cannot be opened (%v)", err)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("is truncated or corrupt (%d bytes; its index cannot be read)", len(mf.Data))
		}
		_ = mf.Close(-1)
	}()
	t, err := table.OpenTable(mf, table.Options{
		ReadOnly:    true,
		ChkMode:     options.OnTableRead,
		Compression: c,
		BlockSize:   4 << 10,
	})
	if err != nil {
		return fmt.Errorf("is truncated or corrupt (%v)", err)
	}
	_ = t // closed with mf: DecrRef would delete the file
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
