package dynalite

import "syscall"

// procAttr puts node in its own process group, so that Stop kills it and
// anything it started. No Pdeathsig: Linux sends it when the thread that
// started the child exits, not the process, and the Go runtime may end
// that thread while the test still runs (a failover soak lost its
// DynamoDB mid-run: "connection refused"). Tests stop their server with
// t.Cleanup; a test binary killed outright leaves its in-memory node
// running until it is killed.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
