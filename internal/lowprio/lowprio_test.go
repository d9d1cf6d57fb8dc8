package lowprio

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// threadNice reads the calling thread's nice value from /proc.
func threadNice(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/stat")
	if err != nil {
		t.Skipf("no /proc/thread-self: %v", err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	n, err := strconv.Atoi(f[16]) // field 19 of stat: nice
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDoRunsAtLowPriority(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("thread priorities are Linux's")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := threadNice(t)
	var inside int
	ran := false
	Do(func() {
		ran = true
		inside = threadNice(t)
	})
	if !ran || inside != Nice {
		t.Fatalf("f ran %v at nice %d, want %d", ran, inside, Nice)
	}
	if after := threadNice(t); after != before {
		t.Fatalf("the caller's thread went from nice %d to %d", before, after)
	}
	// Later goroutines do not inherit the priority: the thread is gone.
	for range 20 {
		done := make(chan int)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			done <- threadNice(t)
		}()
		if n := <-done; n == Nice && before != Nice {
			t.Fatalf("a later goroutine ran at nice %d", n)
		}
	}
}

func TestDoPassesPanicsOn(t *testing.T) {
	defer func() {
		if p := recover(); p != "boom" {
			t.Fatalf("recovered %v, want boom", p)
		}
	}()
	Do(func() { panic("boom") })
	t.Fatal("Do returned after a panic")
}
