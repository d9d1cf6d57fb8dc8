package rpcserver

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestPeerGroupsFromKernel: the caller's supplementary groups are what the
// kernel reports for the connection (SO_PEERGROUPS), here this process's.
func TestPeerGroupsFromKernel(t *testing.T) {
	path := sockPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	p, err := peerCred(sc)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, g := range p.Groups {
		got = append(got, int(g))
	}
	slices.Sort(got)
	slices.Sort(want)
	if p.Groups == nil || !slices.Equal(got, want) {
		t.Errorf("peer groups %v (nil: %v), want this process's %v", got, p.Groups == nil, want)
	}
}

// peerHelperEnv makes the test binary act as a caller: connect to the
// socket it names, wait for one byte, exit.
const peerHelperEnv = "OHFP_TEST_PEER_SOCKET"

func TestMain(m *testing.M) {
	if path := os.Getenv(peerHelperEnv); path != "" {
		c, err := net.Dial("unix", path)
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(3)
		}
		io.ReadFull(bufio.NewReader(c), make([]byte, 1))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestDirectoryUserAllowedByGroup is the case of a site whose HF user and
// groups live in LDAP or SSSD: neither the uid nor the group is in
// /etc/passwd or /etc/group, which is all a static (cgo-free) ohfpd can
// read. The caller is let in by its group all the same, because the kernel
// tells ohfpd the caller's groups. Without the kernel's list, the lookup
// finds nothing and the caller is refused. Needs root to start a process
// under a uid and groups of its choice.
func TestDirectoryUserAllowedByGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a caller as an unknown uid with an unknown group: NOT checked")
	}
	const uid, gid, group = 64211, 64211, 64233
	for _, id := range []string{strconv.Itoa(uid)} {
		if _, err := user.LookupId(id); err == nil {
			t.Skipf("uid %s exists on this machine; the test needs an unknown one", id)
		}
	}
	if _, err := user.LookupGroupId(strconv.Itoa(group)); err == nil {
		t.Skipf("gid %d exists on this machine; the test needs an unknown one", group)
	}

	// The caller must be able to reach the socket and run the test binary.
	dir, err := os.MkdirTemp("", "ohfp-peer-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "caller")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	os.Chmod(path, 0o777)

	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = []string{peerHelperEnv + "=" + path}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{group}}}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start a process as uid %d here: %v", uid, err)
	}
	defer cmd.Wait()
	ln.(*net.UnixListener).SetDeadline(time.Now().Add(20 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	defer func() { c.Write([]byte{1}); c.Close() }()

	p, err := peerCred(c)
	if err != nil {
		t.Fatal(err)
	}
	if p.UID != uid || p.GID != gid || !slices.Equal(p.Groups, []uint32{group}) {
		t.Fatalf("peer %+v, want uid %d gid %d groups [%d]", p, uid, gid, group)
	}
	s := NewServer(&echo{}, ServerOptions{AllowedGIDs: []uint32{group}})
	s.selfUID = 1
	if e := s.authorize(p, true); e != nil {
		t.Errorf("a caller in allowed group %d was refused: %v", group, e)
	}
	// What a lookup by name gives for this caller: nothing, hence refusal.
	if e := s.authorize(Peer{UID: p.UID, GID: p.GID, PID: p.PID}, true); e == nil {
		t.Errorf("without the kernel's groups the caller was let in: the test proves nothing")
	}
}
