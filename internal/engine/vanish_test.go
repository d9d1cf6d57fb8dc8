package engine

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/provider"
)

// Issue 12, case 5 (defence in depth): a machine a full listing by ohfp's
// tag misses is looked up by id before it is taken as gone. With its tag
// changed (another cluster_id, a tag removed by hand) it is still running:
// HF is not told the cloud took it back, and a return of it terminates it.
// Only a machine the cloud does not know at all is gone.
func TestMissingFromListingIsConfirmedByID(t *testing.T) {
	h := newHarness(t)
	id := h.launched("OnDemand-c5", 2)
	st := h.status(id)
	if st.Status != hf.StatusComplete {
		t.Fatalf("%+v", st)
	}
	retagged, deleted := st.Machines[0], st.Machines[1]
	h.cloud.mu.Lock()
	h.cloud.insts[retagged.MachineID].Tags[provider.TagManagedBy] = "another-cluster"
	delete(h.cloud.insts, deleted.MachineID)
	h.cloud.mu.Unlock()

	h.clk.Advance(31 * time.Second)
	h.reconcile() // a full listing misses both
	if n := h.holds(id); n != 1 {
		t.Fatalf("getReturnRequests reports %d hosts taken back, want only the one the cloud no longer knows", n)
	}
	h.e.st.Mu.RLock()
	kept, gone := h.e.st.Machines[retagged.MachineID].State, h.e.st.Machines[deleted.MachineID].State
	h.e.st.Mu.RUnlock()
	if kept != "running" || gone != "gone" {
		t.Fatalf("retagged %s (want running), deleted %s (want gone)", kept, gone)
	}
	in := []byte(`{"machines":[{"name":"` + retagged.Name + `","machineId":"` + retagged.MachineID + `"}]}`)
	if _, err := hfraw(h.e).RequestReturnMachines(nil, in); err != nil {
		t.Fatal(err)
	}
	h.provision()
	if h.terminated() != 1 {
		t.Fatalf("the returned machine was not terminated: %v", h.cloud.terms)
	}
}

// A change a reconcile pass could not write (full disk) is written by a
// later pass once the disk takes writes again, even if nothing changes it
// meanwhile: after a restart it is still there.
func TestUnwrittenChangesAreWrittenLater(t *testing.T) {
	h := newHarness(t)
	id := h.launched("OnDemand-c5", 1)
	h.status(id)
	h.st.FailWrites(errors.New("state directory full"))
	h.cloud.mu.Lock()
	for _, in := range h.cloud.insts {
		in.State = "terminated" // from the console
	}
	h.cloud.mu.Unlock()
	h.clk.Advance(31 * time.Second)
	h.reconcile()
	if h.e.Unsaved() == 0 {
		t.Fatal("a failed write left nothing to write again")
	}
	h.st.FailWrites(nil)
	h.reconcile()
	if n := h.e.Unsaved(); n != 0 {
		t.Fatalf("%d records still unwritten", n)
	}
	h.restart()
	h.e.st.Mu.RLock()
	defer h.e.st.Mu.RUnlock()
	for _, m := range h.e.st.Machines {
		if m.State != "terminated" {
			t.Fatalf("after a restart the machine is %s: the change was lost", m.State)
		}
	}
}

// Found by an operator's test of issue 12: removing (or renaming) a
// provider that still holds machines was accepted; its machines were never
// reconciled again and HF's returns of them waited for ever. Now the
// reload is refused, and so is a start without it; with the provider back,
// or once its machines are gone, all is as before.
func TestRemovingAProviderInUseIsRefused(t *testing.T) {
	h := newHarness(t)
	h.restartWith2(h.cloud)
	if _, err := hfraw(h.e).RequestMachines(Env{"HF_PROVIDER_NAME": "aws-eu"}, []byte(`{"template":{"templateId":"OnDemand-c5","machineCount":2}}`)); err != nil {
		t.Fatal(err)
	}
	h.provision()
	h.cloud.settle()
	h.reconcile()
	only := []ProviderConfig{{Name: "aws", Templates: h.tpls, Cloud: h.cloud}}
	err := h.e.Reload(only)
	if err == nil || !strings.Contains(err.Error(), "aws-eu (2 live machines") {
		t.Fatalf("reload without the provider in use: %v", err)
	}
	// The refused reload changed nothing: the provider still serves.
	if _, err := hfraw(h.e).GetAvailableTemplates(Env{"HF_PROVIDER_NAME": "aws-eu"}, []byte(`{}`)); err != nil {
		t.Fatalf("after the refused reload: %v", err)
	}
	_, err = New(Options{ClusterID: "test", Store: h.st, Clock: h.clk, Providers: only})
	if err == nil || !strings.Contains(err.Error(), "no longer has provider aws-eu") {
		t.Fatalf("start without the provider in use: %v", err)
	}
}
