//go:build !linux

package dynalite

import "syscall"

// procAttr puts node in its own process group, so that Stop kills it and
// anything it started.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
