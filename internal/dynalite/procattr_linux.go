package dynalite

import "syscall"

// procAttr puts node in its own process group, so that Stop kills it and
// anything it started, and has the kernel kill it if the test binary dies
// without calling Stop.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
