package state

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/store"
)

// hookKV is an in-memory store whose Write first runs hook (which may
// block, or refuse the write).
type hookKV struct {
	*store.Store
	mu   sync.Mutex
	hook func(ops []store.Op) error
}

func (k *hookKV) Write(ops ...store.Op) error {
	k.mu.Lock()
	hook := k.hook
	k.mu.Unlock()
	if hook != nil {
		if err := hook(ops); err != nil {
			return err
		}
	}
	return k.Store.Write(ops...)
}

func (k *hookKV) setHook(h func(ops []store.Op) error) {
	k.mu.Lock()
	k.hook = h
	k.mu.Unlock()
}

func newHookState(t *testing.T) (*State, *hookKV) {
	t.Helper()
	st, err := store.OpenInMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kv := &hookKV{Store: st}
	s, err := newT(t, kv)
	if err != nil {
		t.Fatal(err)
	}
	return s, kv
}

func (s *State) addRequest(id string) *domain.Request {
	r := &domain.Request{ID: id, Kind: domain.KindAcquire, Provider: "aws", TemplateID: "t", Units: 1, ClientToken: id, Phase: domain.PhaseQueued}
	s.Mu.Lock()
	s.Requests[id] = r
	s.Mu.Unlock()
	return r
}

// stored reads request id back from the store.
func stored(t *testing.T, kv *hookKV, id string) *domain.Request {
	t.Helper()
	var got *domain.Request
	err := kv.Scan(KeyRequest+id, func(k string, v []byte) error {
		r, err := decodeRequest(k, v)
		got = r
		return err
	})
	if err != nil || got == nil {
		t.Fatalf("request %s not in the store: %v", id, err)
	}
	return got
}

// Writes staged one after the other reach the store in that order, even
// when the later ones are waited for first, and none holds Mu while it
// waits on the store.
func TestWritesReachStoreInChangeOrder(t *testing.T) {
	s, kv := newHookState(t)
	r := s.addRequest("req-1")
	release := make(chan struct{})
	var mu sync.Mutex
	var seen []string
	kv.setHook(func(ops []store.Op) error {
		rec, _ := decodeRequest(ops[0].Key, ops[0].Value)
		mu.Lock()
		seen = append(seen, rec.RetryNote)
		first := len(seen) == 1
		mu.Unlock()
		if first {
			<-release
		}
		return nil
	})
	var ws []*Write
	for i := 1; i <= 3; i++ {
		s.Mu.Lock()
		r.RetryNote = fmt.Sprintf("v%d", i)
		ws = append(ws, s.Stage([]*domain.Request{r}, nil))
		s.Mu.Unlock()
	}
	var wg sync.WaitGroup
	for i := len(ws) - 1; i >= 0; i-- {
		wg.Add(1)
		go func(w *Write) {
			defer wg.Done()
			if err := w.Wait(); err != nil {
				t.Error(err)
			}
		}(ws[i])
		time.Sleep(20 * time.Millisecond)
	}
	if !s.Mu.TryLock() {
		t.Fatal("Mu is held while a write waits on the store")
	}
	s.Mu.Unlock()
	if m := s.UnwrittenMark(KeyRequest + r.ID); m != 3 {
		t.Fatalf("unwritten mark %d, want 3 (the last of three places)", m)
	}
	close(release)
	wg.Wait()
	if fmt.Sprint(seen) != "[v1 v2 v3]" {
		t.Fatalf("writes reached the store as %v", seen)
	}
	if got := stored(t, kv, r.ID).RetryNote; got != "v3" {
		t.Fatalf("the store holds %q, memory v3", got)
	}
	if m := s.UnwrittenMark(KeyRequest + r.ID); m != 0 {
		t.Fatalf("unwritten mark %d after every write", m)
	}
}

// A write that fails before SaveUnsaved's own is written (it was staged
// earlier, and failed while SaveUnsaved waited for its turn) stays to be
// written again: SaveUnsaved forgets only the keys it carried.
func TestSaveUnsavedKeepsAnEarlierWritesLateFailure(t *testing.T) {
	s, kv := newHookState(t)
	a, b := s.addRequest("req-a"), s.addRequest("req-b")
	full := errors.New("no space left on device")
	kv.setHook(func([]store.Op) error { return full })
	if err := s.Persist([]*domain.Request{a}, nil); !errors.Is(err, full) {
		t.Fatalf("write: %v", err)
	}
	if s.Unsaved() != 1 {
		t.Fatalf("unsaved %d", s.Unsaved())
	}
	held, fail := make(chan struct{}), make(chan error)
	kv.setHook(func(ops []store.Op) error {
		if ops[0].Key == KeyRequest+b.ID {
			close(held)
			return <-fail
		}
		return nil
	})
	s.Mu.Lock()
	wb := s.Stage([]*domain.Request{b}, nil)
	s.Mu.Unlock()
	bDone := make(chan error)
	go func() { bDone <- wb.Wait() }()
	<-held
	saved := make(chan struct{})
	go func() {
		s.SaveUnsaved()
		close(saved)
	}()
	for s.UnwrittenMark(KeyRequest+a.ID) == 0 { // SaveUnsaved staged a, behind b
		time.Sleep(time.Millisecond)
	}
	fail <- full
	if err := <-bDone; !errors.Is(err, full) {
		t.Fatalf("b's write: %v", err)
	}
	<-saved
	if n := s.Unsaved(); n != 1 {
		t.Fatalf("after SaveUnsaved wrote a, %d records unsaved, want b's 1", n)
	}
	stored(t, kv, a.ID)
	kv.setHook(nil)
	s.SaveUnsaved()
	if n := s.Unsaved(); n != 0 {
		t.Fatalf("unsaved %d once the disk takes b", n)
	}
	stored(t, kv, b.ID)
}

// Writers changing and writing the same records concurrently, with
// readers beside them (run with -race): the store ends as memory, and
// readers never wait for the store.
func TestConcurrentWritersEndAsMemory(t *testing.T) {
	t.Parallel()
	s, kv := newHookState(t)
	kv.setHook(func([]store.Op) error { time.Sleep(100 * time.Microsecond); return nil })
	reqs := []*domain.Request{s.addRequest("req-1"), s.addRequest("req-2"), s.addRequest("req-3")}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s.Mu.RLock()
				for _, r := range reqs {
					_ = r.Attempts
				}
				s.Mu.RUnlock()
			}
		}()
	}
	var writers sync.WaitGroup
	for w := range 6 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range 15 {
				s.Mu.Lock()
				r := reqs[(w+i)%len(reqs)]
				r.Attempts++
				wr := s.Stage([]*domain.Request{r}, nil)
				s.Mu.Unlock()
				if err := wr.Wait(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	total := 0
	for _, r := range reqs {
		got := stored(t, kv, r.ID)
		if got.Attempts != r.Attempts {
			t.Fatalf("%s: the store holds %d attempts, memory %d", r.ID, got.Attempts, r.Attempts)
		}
		total += got.Attempts
	}
	if total != 90 {
		t.Fatalf("%d attempts in all, want 90", total)
	}
}
