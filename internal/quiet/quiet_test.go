package quiet

import (
	"context"
	"testing"
	"time"
)

func TestNilAndFreshGatesAreQuiet(t *testing.T) {
	var g *Gate
	g.Begin()
	g.End()
	if !g.Wait(context.Background(), time.Hour, time.Now()) {
		t.Fatal("a nil gate is not quiet")
	}
	if !new(Gate).Wait(context.Background(), time.Hour, time.Now()) {
		t.Fatal("a gate that never saw a call is not quiet")
	}
}

func TestWaitForThePause(t *testing.T) {
	g := new(Gate)
	const gap = 40 * time.Millisecond
	g.Begin()
	ended := make(chan time.Time, 1)
	go func() {
		time.Sleep(60 * time.Millisecond)
		ended <- time.Now()
		g.End()
	}()
	start := time.Now()
	if !g.Wait(context.Background(), gap, start.Add(10*time.Second)) {
		t.Fatal("Wait gave up with time to spare")
	}
	end := <-ended
	if since := time.Since(end); since < gap {
		t.Fatalf("Wait returned %v after the call ended, before the %v gap", since, gap)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("Wait took %v", time.Since(start))
	}
}

func TestWaitGivesUpAtItsDeadline(t *testing.T) {
	g := new(Gate)
	g.Begin() // a call that never ends
	start := time.Now()
	if g.Wait(context.Background(), Gap, start.Add(80*time.Millisecond)) {
		t.Fatal("Wait found a pause during a call")
	}
	if d := time.Since(start); d < 80*time.Millisecond || d > 5*time.Second {
		t.Fatalf("Wait gave up after %v, want about 80ms", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if g.Wait(ctx, Gap, time.Now().Add(time.Hour)) {
		t.Fatal("Wait found a pause with its context done")
	}
}

func TestBackToBackCallsAreNotAPause(t *testing.T) {
	g := new(Gate)
	g.Begin() // a first call, so the gate is not fresh when Wait starts
	g.End()
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			g.Begin()
			time.Sleep(2 * time.Millisecond)
			g.End()
			time.Sleep(time.Millisecond)
		}
	}()
	defer close(stop)
	if g.Wait(context.Background(), 30*time.Millisecond, time.Now().Add(150*time.Millisecond)) {
		t.Fatal("calls 1 ms apart were taken for a pause")
	}
}

func TestQuiet(t *testing.T) {
	g := new(Gate)
	if !g.Quiet(Gap) {
		t.Fatal("a fresh gate is not quiet")
	}
	g.Begin()
	if g.Quiet(0) {
		t.Fatal("quiet during a call")
	}
	g.End()
	if g.Quiet(time.Hour) {
		t.Fatal("quiet for an hour just after a call")
	}
	time.Sleep(20 * time.Millisecond)
	if !g.Quiet(10 * time.Millisecond) {
		t.Fatal("not quiet 20 ms after the last call, for a 10 ms gap")
	}
}
