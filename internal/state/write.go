package state

import (
	"strings"
	"sync"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/store"
)

// Writes reach the store outside Mu, in the order of the changes they
// record.
//
// A writer changes the aggregates and encodes the records it changed with
// Mu held for writing (the bytes are a snapshot: later changes are not in
// them), and takes its place in the write order then, under Mu (Stage).
// It releases Mu, writes, and only then acts on the write's result
// (answers HF, makes a cloud call). Places are taken under Mu, so a later
// place never holds an older version of a record than an earlier one; a
// write waits for the places before its own to be written, without Mu, so
// no one waits on the disk while holding the lock HF's reads take.
//
// What a reader may see before it is durable, and why that is safe, is
// written on Persist.

// writeOrder hands out places in the write order and tracks the records
// with a write under way. Its mutex is never held across a store call.
type writeOrder struct {
	mu     sync.Mutex
	turn   *sync.Cond
	next   uint64            // the place the next Stage takes
	served uint64            // places below it are written (or failed)
	keys   map[string]uint64 // record key -> the last place writing it, until written
}

func (o *writeOrder) init() {
	o.turn = sync.NewCond(&o.mu)
	o.keys = map[string]uint64{}
}

// Write is a batch of records encoded by Stage, waiting for its place in
// the write order. Wait must be called exactly once: until it is, every
// later write waits. A nil *Write (nothing to write) waits for nothing.
type Write struct {
	s      *State
	place  uint64
	ops    []store.Op
	keys   []string
	err    error           // encoding failed: nothing is written
	inTurn func(err error) // run in this write's turn, after it
}

// Stage encodes the records as they stand now, with deletes, and takes
// the next place in the write order. Call it with Mu held for writing
// when the records are in memory (their version and their place then
// follow the order of the changes); a record not yet in memory (one being
// created, which no one else can write) may be staged without it.
func (s *State) Stage(reqs []*domain.Request, ms []*domain.Machine, deletes ...string) *Write {
	if len(reqs) == 0 && len(ms) == 0 && len(deletes) == 0 {
		return nil
	}
	w := &Write{s: s}
	w.ops = make([]store.Op, 0, len(reqs)+len(ms)+len(deletes))
	for _, r := range reqs {
		w.keys = append(w.keys, KeyRequest+r.ID)
		b, err := encodeRequest(r)
		if err != nil && w.err == nil {
			w.err = err
		}
		w.ops = append(w.ops, store.Op{Key: KeyRequest + r.ID, Value: b})
	}
	for _, m := range ms {
		w.keys = append(w.keys, KeyMachine+m.ID)
		b, err := encodeMachine(m)
		if err != nil && w.err == nil {
			w.err = err
		}
		w.ops = append(w.ops, store.Op{Key: KeyMachine + m.ID, Value: b})
	}
	for _, k := range deletes {
		w.keys = append(w.keys, k)
		w.ops = append(w.ops, store.Op{Key: k, Delete: true})
	}
	o := &s.order
	o.mu.Lock()
	w.place = o.next
	o.next++
	for _, k := range w.keys {
		o.keys[k] = w.place
	}
	o.mu.Unlock()
	return w
}

// Wait waits for the writes staged before w, writes w in one synchronous
// batch and returns its error. When the write fails (a full or read-only
// disk), its keys are remembered and written again by later reconcile
// passes (SaveUnsaved). Call it without Mu, except where a site keeps its
// write under the lock (see Persist).
func (w *Write) Wait() error {
	if w == nil {
		return nil
	}
	o := &w.s.order
	o.mu.Lock()
	for o.served != w.place {
		o.turn.Wait()
	}
	o.mu.Unlock()
	err := w.err
	defer func() {
		// In this write's turn still: a later write that fails marks its
		// keys after this one's outcome, never before.
		if err != nil {
			w.s.markUnsaved(w.keys)
		}
		if w.inTurn != nil {
			w.inTurn(err)
		}
		o.mu.Lock()
		o.served++
		for _, k := range w.keys {
			if o.keys[k] == w.place {
				delete(o.keys, k)
			}
		}
		o.turn.Broadcast()
		o.mu.Unlock()
	}()
	if err == nil {
		err = w.s.store.Write(w.ops...)
	}
	return err
}

// PersistReleasing writes the records as Persist does, but with Mu
// released during the write: the caller holds Mu for writing, and holds
// it again when PersistReleasing returns. Anything the caller read before
// may have changed meanwhile.
func (s *State) PersistReleasing(reqs []*domain.Request, ms []*domain.Machine, deletes ...string) error {
	w := s.Stage(reqs, ms, deletes...)
	if w == nil {
		return nil
	}
	s.Mu.Unlock()
	err := w.Wait()
	s.Mu.Lock()
	return err
}

// WriteMark is the place the next Stage will take: AwaitWrites(mark)
// waits for every write staged before it.
func (s *State) WriteMark() uint64 {
	s.order.mu.Lock()
	defer s.order.mu.Unlock()
	return s.order.next
}

// AwaitWrites waits until every write staged before mark is written (or
// has failed). Call it without Mu. The provisioner calls it before a
// cloud call decided from memory, so that no decision is acted on before
// the write recording it has finished, as when writes were made under Mu.
func (s *State) AwaitWrites(mark uint64) {
	o := &s.order
	o.mu.Lock()
	for o.served < mark {
		o.turn.Wait()
	}
	o.mu.Unlock()
}

// UnwrittenMark returns the mark after the last write under way of any
// of keys, or 0 when none of them has a write under way. It does not take
// Mu (callers may hold it, for reading or writing).
func (s *State) UnwrittenMark(keys ...string) uint64 {
	o := &s.order
	o.mu.Lock()
	defer o.mu.Unlock()
	var mark uint64
	for _, k := range keys {
		if p, ok := o.keys[k]; ok && p+1 > mark {
			mark = p + 1
		}
	}
	return mark
}

func (s *State) markUnsaved(keys []string) {
	s.unsavedMu.Lock()
	for _, k := range keys {
		s.unsaved[k] = true
	}
	s.unsavedMu.Unlock()
}

// SaveUnsaved writes again what earlier writes could not write, as it
// now stands in memory (a record gone from memory is deleted): encoded
// under Mu, written outside it. Call it without Mu.
func (s *State) SaveUnsaved() {
	s.Mu.Lock()
	s.unsavedMu.Lock()
	if len(s.unsaved) == 0 {
		s.unsavedMu.Unlock()
		s.Mu.Unlock()
		return
	}
	keys := make([]string, 0, len(s.unsaved))
	var reqs []*domain.Request
	var ms []*domain.Machine
	var deletes []string
	for k := range s.unsaved {
		keys = append(keys, k)
		switch {
		case strings.HasPrefix(k, KeyRequest):
			if r := s.Requests[k[len(KeyRequest):]]; r != nil {
				reqs = append(reqs, r)
				continue
			}
		case strings.HasPrefix(k, KeyMachine):
			if m := s.Machines[k[len(KeyMachine):]]; m != nil {
				ms = append(ms, m)
				continue
			}
		}
		deletes = append(deletes, k)
	}
	s.unsavedMu.Unlock()
	w := s.Stage(reqs, ms, deletes...)
	s.Mu.Unlock()
	w.inTurn = func(err error) {
		if err != nil {
			s.Log.Warn("state still not written to disk; retrying at the next pass", "records", len(keys), "err", err)
			return
		}
		// Only what this write carried: a key a write failed on after it
		// was staged stays, with the change that write held. (In the
		// turn: a later failure marks its keys after this.)
		s.unsavedMu.Lock()
		for _, k := range keys {
			delete(s.unsaved, k)
		}
		s.unsavedMu.Unlock()
		s.Log.Info("state written to disk again after earlier failures", "records", len(keys))
	}
	w.Wait()
}
