// Package lowprio runs CPU-heavy background work at a low CPU priority, so
// that it yields the processor to the HF calls being served.
//
// ohfpd's full reconcile listing decodes ~10 MB of EC2 XML at 10,000
// instances (about a second of CPU); at normal priority it competed with
// the ohfp processes HF spawns and showed in their slowest calls. On Linux
// Do runs the work on an OS thread of its own whose nice value is Nice
// (setpriority on a thread id affects that thread only); elsewhere it runs
// it as is.
package lowprio

import "runtime"

// Nice is the nice value Do's thread runs at: about a tenth of the CPU a
// nice-0 task gets when they compete, so the work gives way without
// starving on a busy host (19 would leave it ~1.5%, a minute for a
// second's work).
const Nice = 10

// Do runs f on a thread of its own at nice Nice and returns when f does. A
// panic in f is raised again in the caller.
func Do(f func()) {
	var p any
	panicked := true
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if panicked {
				p = recover()
			}
		}()
		// Never unlocked: the thread ends with this goroutine, so its
		// priority cannot pass to other goroutines.
		runtime.LockOSThread()
		_ = setNice(Nice) // best effort: without it the work runs as before
		f()
		panicked = false
	}()
	<-done
	if panicked {
		panic(p)
	}
}
