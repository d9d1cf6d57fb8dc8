package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWatchTemplates: a change of a watched file (HF's GUI saving the
// templates) is signalled once, without a manual reload; no change, no
// signal.
func TestWatchTemplates(t *testing.T) {
	f := filepath.Join(t.TempDir(), "awsinstprov_templates.json")
	os.WriteFile(f, []byte(`{"templates": []}`), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := make(chan struct{}, 1)
	go watchTemplates(ctx, func() []string { return []string{f} }, 10*time.Millisecond, changed)
	select {
	case <-changed:
		t.Fatal("signalled without a change")
	case <-time.After(60 * time.Millisecond):
	}
	os.WriteFile(f, []byte(`{"templates": [ ]}`), 0o600) // one byte more
	select {
	case <-changed:
	case <-time.After(2 * time.Second):
		t.Fatal("change not signalled")
	}
	select {
	case <-changed:
		t.Fatal("one change signalled twice")
	case <-time.After(60 * time.Millisecond):
	}
}
