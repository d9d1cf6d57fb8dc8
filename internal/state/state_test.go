package state

import (
	"errors"
	"sync"
	"testing"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/store"
)

// flakyKV is a store whose writes fail while fail is set (a full or
// read-only disk); reads always work.
type flakyKV struct {
	KV
	mu     sync.Mutex
	fail   error
	writes int // failed and successful calls
}

func (f *flakyKV) Write(ops ...store.Op) error {
	f.mu.Lock()
	f.writes++
	err := f.fail
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.KV.Write(ops...)
}

func (f *flakyKV) setFail(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}

func openFlaky(t *testing.T) *flakyKV {
	t.Helper()
	st, err := store.OpenInMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &flakyKV{KV: st}
}

// retryUnsaved is the reconcile pass's retry of what the disk refused.
func retryUnsaved(s *State) {
	s.SaveUnsaved()
}

// reload is what a restart on the same store would see.
func reload(t *testing.T, kv KV) *State {
	t.Helper()
	s, err := newT(t, kv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Write-through: what Persist returned from is on disk, and a daemon
// starting on the store loads exactly those values (the in-memory mirror
// of AwaitingClaim rebuilt); a delete removes the record.
func TestPersistWritesThrough(t *testing.T) {
	kv := openFlaky(t)
	s := reload(t, kv)
	if err := s.Persist(fixtureRequests(), fixtureMachines()); err != nil {
		t.Fatal(err)
	}
	for _, ti := range fixtureTypes() {
		if err := s.CacheTypeInfo(ti); err != nil {
			t.Fatal(err)
		}
	}
	wantFixture(t, reload(t, kv))

	if err := s.Persist(nil, nil, KeyRequest+"req-00000003"); err != nil {
		t.Fatal(err)
	}
	if r := reload(t, kv).Requests["req-00000003"]; r != nil {
		t.Errorf("a deleted request loads again: %+v", r)
	}
	if s.Unsaved() != 0 {
		t.Errorf("%d records unsaved after writes that succeeded", s.Unsaved())
	}
}

// A write the disk refuses is reported to the caller and remembered; each
// retry while the disk still refuses keeps it; once the disk takes writes
// again, the retry writes each record as memory holds it then (not as it
// was when the write failed), deletes what memory no longer holds, and
// forgets them.
func TestUnsavedWrittenAgainAsInMemory(t *testing.T) {
	kv := openFlaky(t)
	s := reload(t, kv)
	reqs, ms := fixtureRequests(), fixtureMachines()
	if err := s.Persist(reqs[:1], ms[:2]); err != nil { // req-00000001, i-...a, i-...b
		t.Fatal(err)
	}
	for _, r := range reqs[:1] {
		s.Requests[r.ID] = r
	}
	for _, m := range ms[:2] {
		s.Machines[m.ID] = m
	}

	full := errors.New("no space left on device")
	kv.setFail(full)
	r, a, b := reqs[0], ms[0], ms[1]
	r.Message = "first"
	a.State = domain.StateRunning
	if err := s.Persist([]*domain.Request{r}, []*domain.Machine{a, b}); !errors.Is(err, full) {
		t.Fatalf("Persist on a full disk = %v, want the disk's error", err)
	}
	if s.Unsaved() != 3 {
		t.Fatalf("Unsaved = %d, want 3", s.Unsaved())
	}
	// Memory moves on while the disk is full: the request changes again,
	// and machine b leaves memory (purged).
	r.Message, r.Status = "later", hf.StatusComplete
	delete(s.Machines, b.ID)
	retryUnsaved(s)
	if s.Unsaved() != 3 {
		t.Fatalf("after a retry the disk refused, Unsaved = %d, want 3", s.Unsaved())
	}
	if got := reload(t, kv).Requests[r.ID]; got.Message == "later" || got.Message == "first" {
		t.Fatalf("the disk holds %q though every write was refused", got.Message)
	}

	kv.setFail(nil)
	retryUnsaved(s)
	if s.Unsaved() != 0 {
		t.Fatalf("after a retry the disk took, Unsaved = %d, want 0", s.Unsaved())
	}
	got := reload(t, kv)
	if gr := got.Requests[r.ID]; gr == nil || gr.Message != "later" || gr.Status != hf.StatusComplete {
		t.Errorf("request on disk %+v, want its latest memory (later, complete)", gr)
	}
	if gm := got.Machines[a.ID]; gm == nil || gm.State != domain.StateRunning {
		t.Errorf("machine %s on disk %+v, want running", a.ID, gm)
	}
	if gm := got.Machines[b.ID]; gm != nil {
		t.Errorf("machine %s, gone from memory, is still on disk", b.ID)
	}
	n := kv.writes
	retryUnsaved(s)
	if kv.writes != n {
		t.Error("a retry with nothing unsaved wrote")
	}
}

// HF's claim of a request is durable before HF sees its machines: while
// the disk refuses it, the request is in ClaimUnsaved (the service then
// withholds its machines) and memory holds it claimed; the next claim
// once the disk takes writes records it and clears the mark.
func TestClaimUnsaved(t *testing.T) {
	kv := openFlaky(t)
	s := reload(t, kv)
	reqs, ms := fixtureRequests(), fixtureMachines()
	if err := s.Persist(reqs[:1], ms[:2]); err != nil {
		t.Fatal(err)
	}
	s = reload(t, kv)
	id := reqs[0].ID
	if !s.Requests[id].AwaitingClaim || !s.Machines[ms[0].ID].AwaitingClaim {
		t.Fatal("fixture: request 1 should await HF's claim")
	}

	kv.setFail(errors.New("read-only file system"))
	s.Claim([]string{id})
	if err := s.ClaimUnsaved[id]; err == nil {
		t.Fatal("a claim the disk refused is not marked unsaved")
	}
	if s.Requests[id].AwaitingClaim || s.Machines[ms[0].ID].AwaitingClaim {
		t.Error("memory does not hold the claim")
	}
	if !reload(t, kv).Requests[id].AwaitingClaim {
		t.Fatal("the disk holds a claim it refused")
	}

	kv.setFail(nil)
	s.Claim([]string{id}) // HF asks again
	if _, still := s.ClaimUnsaved[id]; still {
		t.Error("the claim was written but is still marked unsaved")
	}
	if reload(t, kv).Requests[id].AwaitingClaim {
		t.Error("after the claim was written, a restart loads the request as awaiting HF's claim")
	}
	n := kv.writes
	s.Claim([]string{id})
	if kv.writes != n {
		t.Error("claiming a request already claimed on disk wrote again")
	}
}
