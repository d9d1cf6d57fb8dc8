package rpcserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// DefaultSocketMode is the socket's mode when Listen is given 0.
const DefaultSocketMode os.FileMode = 0o660

// ErrInUse is returned (wrapped) by Listen when a live daemon already
// answers on the socket.
var ErrInUse = errors.New("socket in use")

// GroupError reports that the socket's group could not be set because the
// group does not exist. Listen returns it together with a working listener:
// the caller may log it as a warning and serve, or close the listener.
type GroupError struct {
	Path  string
	Group string
	Err   error
}

// Error says what happened and what to do.
func (e *GroupError) Error() string {
	return fmt.Sprintf("socket %s: group %q does not exist, so only its owner and the owner's group may connect (create it: groupadd --system %s): %v",
		e.Path, e.Group, e.Group, e.Err)
}

// Unwrap returns the lookup error.
func (e *GroupError) Unwrap() error { return e.Err }

// Listen creates the Unix socket at path for ohfpd: it creates the parent
// directory if missing (mode 0755), refuses when a live daemon answers on
// path, removes a stale socket file, binds, sets mode (0 means 0660) and,
// when group is not empty, the socket's group.
//
// When the group does not exist Listen returns the listener AND a
// *GroupError; any other error comes with a nil listener. The socket file
// is removed when the listener is closed.
func Listen(path string, mode os.FileMode, group string) (net.Listener, error) {
	if mode == 0 {
		mode = DefaultSocketMode
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the socket's directory: %w", err)
	}
	if err := clearStale(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("cannot set the mode of %s: %w", path, err)
	}
	if group == "" {
		return ln, nil
	}
	gid, err := lookupGID(group)
	if err != nil {
		return ln, &GroupError{Path: path, Group: group, Err: err}
	}
	if err := os.Chown(path, -1, gid); err != nil {
		ln.Close()
		return nil, fmt.Errorf("cannot give socket %s to group %s (ohfpd must run as root or be a member of %s): %w", path, group, group, err)
	}
	return ln, nil
}

// clearStale makes path free for a new socket: nothing there, or a socket
// nobody answers on (removed). A live socket or another kind of file is an
// error.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot check %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket: remove it or choose another socket path", path)
	}
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("another ohfpd is already serving on %s: %w", path, ErrInUse)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("cannot tell whether another ohfpd serves on %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot remove the stale socket %s: %w", path, err)
	}
	return nil
}

func lookupGID(group string) (int, error) {
	g, err := user.LookupGroup(group)
	if err != nil {
		// A numeric group is accepted too.
		if n, perr := strconv.Atoi(group); perr == nil && n >= 0 {
			return n, nil
		}
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}
