package ha

import (
	"context"
	"fmt"
	"time"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/rpc"
	"github.com/ohfp/ohfp/internal/rpcserver"
)

// Handler serves the socket of a daemon in a shared-store cluster: HF's
// calls and the operator's actions take the lease first (HF calling here
// means HF runs here), then go to the engine; the operator's reads go to
// the engine when this host holds the lease, and status is answered on a
// standby too.
type Handler struct {
	C *Coordinator
	// Inner is the current engine's handler; nil while not holding.
	Inner func() rpcserver.Handler
	// Status completes a standby's status answer with daemon-level facts.
	Status func(*apitype.Status)
}

// acting lists the methods that need the lease: HF's five operations and
// the operator's actions.
var acting = map[string]bool{
	hf.OpGetAvailableTemplates: true,
	hf.OpRequestMachines:       true,
	hf.OpGetRequestStatus:      true,
	hf.OpRequestReturnMachines: true,
	hf.OpGetReturnRequests:     true,
	apitype.MethodCancel:       true,
	apitype.MethodReturn:       true,
	apitype.MethodDrain:        true,
	apitype.MethodUndrain:      true,
}

// Call implements rpcserver.Handler.
func (h *Handler) Call(ctx context.Context, name string, p rpc.Params) (any, error) {
	if acting[name] {
		if err := h.C.Acquire(ctx); err != nil {
			return nil, rpc.Errorf(rpc.Unavailable, "%s", err)
		}
	}
	if in := h.Inner(); in != nil {
		return in.Call(ctx, name, p)
	}
	if name == apitype.MethodStatus {
		var st apitype.Status
		st.HA = h.C.Report()
		if h.Status != nil {
			h.Status(&st)
		}
		return st, nil
	}
	if acting[name] {
		// The lease was taken and lost again before the call got through.
		return nil, rpc.Errorf(rpc.Unavailable, "state store unavailable: this host lost the lease while serving the call; HF's next call retries")
	}
	return nil, rpc.Errorf(rpc.Unavailable, "%s", h.C.standbyMessage())
}

// standbyMessage says who acts instead of this host.
func (c *Coordinator) standbyMessage() string {
	st := c.Status()
	if st.Holder == "" {
		return fmt.Sprintf("this host (%s) is a standby and nobody holds the lease: HF's next call here takes it", c.o.Host)
	}
	return fmt.Sprintf("this host (%s) is a standby: %s holds the lease since %s; run this on %s (or HF's next call here takes the lease over)",
		c.o.Host, st.Holder, st.Since.Format(time.RFC3339), st.Holder)
}

// Report is the lease as the status answer carries it.
func (c *Coordinator) Report() *apitype.HA {
	st := c.Status()
	r := &apitype.HA{
		Host: st.Host, Role: string(st.Role), Holder: st.Holder, Token: st.Token,
		Released: st.Released, Expired: st.Expired, Want: st.Want, LastError: st.LastError,
		LeaseSeconds: st.LeaseDuration.Seconds(),
	}
	if !st.Since.IsZero() {
		r.Since = st.Since.UTC().Format(time.RFC3339)
	}
	if !st.Renewed.IsZero() {
		r.Renewed = st.Renewed.UTC().Format(time.RFC3339)
	}
	return r
}
