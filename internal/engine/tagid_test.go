package engine

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/provider"
)

// TagOwnID tags the instances it shows (hidden ones come back NotFound,
// as EC2 answers for an instance not visible yet) with InstanceID=<id>.
func (f *fakeCloud) TagOwnID(_ context.Context, ids []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trail = append(f.trail, "TagOwnID "+strings.Join(ids, ","))
	var missing []string
	for _, id := range ids {
		in, ok := f.insts[id]
		if !ok || f.hidden[id] {
			missing = append(missing, id)
			continue
		}
		in.Tags["InstanceID"] = id
	}
	if len(missing) > 0 {
		return &provider.Error{Op: "CreateTags", Kind: provider.NotFound, IDs: missing, Message: "unknown instances"}
	}
	return nil
}

func (f *fakeCloud) ownIDCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.trail {
		if strings.HasPrefix(c, "TagOwnID ") {
			out = append(out, strings.TrimPrefix(c, "TagOwnID "))
		}
	}
	return out
}

// tag_instance_id: each machine is tagged with its own id once it runs,
// once (the mark is durable: a restart does not tag again); one EC2 does
// not show yet is asked again after a backoff; without the setting
// nothing is tagged.
func TestTagInstanceID(t *testing.T) {
	h := newHarness(t)
	h.tagInstanceID = true
	h.restart()
	id := h.request("OnDemand-c5", 2)
	h.provision()
	h.provision()
	if calls := h.cloud.ownIDCalls(); len(calls) != 0 {
		t.Fatalf("tagged while pending: %v", calls)
	}
	st := h.status(id)
	a, b := st.Machines[0].MachineID, st.Machines[1].MachineID
	h.cloud.settle()
	h.reconcile()
	h.cloud.mu.Lock()
	h.cloud.hidden = map[string]bool{b: true} // EC2's tagging does not see it yet
	h.cloud.mu.Unlock()
	h.provision()
	calls := h.cloud.ownIDCalls()
	if len(calls) != 1 || calls[0] != strings.Join(slices.Sorted(slices.Values([]string{a, b})), ",") {
		t.Fatalf("calls %v", calls)
	}
	h.cloud.mu.Lock()
	tagA, tagB := h.cloud.insts[a].Tags["InstanceID"], h.cloud.insts[b].Tags["InstanceID"]
	h.cloud.hidden = nil
	h.cloud.mu.Unlock()
	if tagA != a || tagB != "" {
		t.Fatalf("tags %q %q", tagA, tagB)
	}
	h.provision()
	if calls := h.cloud.ownIDCalls(); len(calls) != 1 {
		t.Fatalf("asked again before its backoff: %v", calls)
	}
	h.clk.Advance(time.Minute)
	h.provision()
	calls = h.cloud.ownIDCalls()
	if len(calls) != 2 || calls[1] != b {
		t.Fatalf("the one EC2 did not show is asked again, alone: %v", calls)
	}
	h.restart() // the marks are durable
	h.clk.Advance(time.Hour)
	h.reconcile()
	h.provision()
	if calls := h.cloud.ownIDCalls(); len(calls) != 2 {
		t.Fatalf("tagged again: %v", calls)
	}

	off := newHarness(t)
	off.request("OnDemand-c5", 1)
	off.provision()
	off.cloud.settle()
	off.reconcile()
	off.provision()
	if calls := off.cloud.ownIDCalls(); len(calls) != 0 {
		t.Fatalf("tagged without tag_instance_id: %v", calls)
	}
}
