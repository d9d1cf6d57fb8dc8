package rpcserver

import (
	"errors"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// peerCred reads the credentials of the process at the other end of a Unix
// socket connection: uid, gid and pid (SO_PEERCRED) and its supplementary
// groups (SO_PEERGROUPS, Linux 4.13 and later), as the kernel recorded them
// when the caller connected.
//
// The groups come from the kernel, not from a lookup of the user's name:
// ohfpd is a static, cgo-free binary whose os/user reads /etc/passwd and
// /etc/group only, never NSS (LDAP, SSSD, NIS), so a lookup would miss the
// groups of a directory user. Where SO_PEERGROUPS is refused (older
// kernels), Groups stays nil and the server falls back to the lookup.
func peerCred(c net.Conn) (Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, errors.New("not a Unix socket connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	var groups []uint32
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if cerr == nil {
			groups = peerGroups(int(fd))
		}
	}); err != nil {
		return Peer{}, err
	}
	if cerr != nil {
		return Peer{}, cerr
	}
	return Peer{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid, Groups: groups}, nil
}

// peerGroups returns the peer's supplementary groups (SO_PEERGROUPS), an
// empty non-nil slice for none, or nil when the kernel does not tell.
func peerGroups(fd int) []uint32 {
	buf := make([]uint32, 64)
	for {
		n := uint32(len(buf) * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch {
		case errno == 0:
			return buf[: n/4 : n/4]
		case errno == unix.ERANGE && int(n/4) > len(buf) && n/4 <= 65536:
			buf = make([]uint32, n/4) // the kernel said how many
		default:
			return nil
		}
	}
}
