// Package statetest holds test doubles for the state's store.
package statetest

import (
	"sync"

	"github.com/ohfp/ohfp/internal/store"
)

// KV is the part of a store the state uses (state.KV).
type KV interface {
	Write(ops ...store.Op) error
	Scan(prefix string, fn func(key string, value []byte) error) error
}

// FaultKV is a store for tests whose writes fail with an error while one
// is set (a full disk: SetErr), or wait while held (a slow disk or table:
// Hold, Release). Reads pass through.
type FaultKV struct {
	KV
	mu   sync.Mutex
	err  error
	gate chan struct{} // closed: writes pass
}

// NewFaultKV wraps kv; its writes pass until told otherwise.
func NewFaultKV(kv KV) *FaultKV {
	g := make(chan struct{})
	close(g)
	return &FaultKV{KV: kv, gate: g}
}

// SetErr makes every write fail with err (nil: writes succeed again).
func (f *FaultKV) SetErr(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// Hold makes writes wait until Release.
func (f *FaultKV) Hold() {
	f.mu.Lock()
	f.gate = make(chan struct{})
	f.mu.Unlock()
}

// Release lets held and later writes through.
func (f *FaultKV) Release() {
	f.mu.Lock()
	select {
	case <-f.gate:
	default:
		close(f.gate)
	}
	f.mu.Unlock()
}

func (f *FaultKV) Write(ops ...store.Op) error {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	<-gate
	f.mu.Lock()
	err := f.err
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.KV.Write(ops...)
}
