package ha

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/hf"
	"github.com/ohfp/ohfp/internal/rpc"
	"github.com/ohfp/ohfp/internal/rpcserver"
)

// Handler serves the socket of a daemon in a shared-store cluster: HF's
// calls take the lease first (HF calling here means HF runs here), then go
// to the engine; the operator's commands go to the engine when this host
// holds the lease, and on a standby say which host does (they never move
// the lease: only HF does); status and reload are this daemon's own and
// are answered on a standby too.
type Handler struct {
	C *Coordinator
	// Inner is the current engine's handler; nil while not holding.
	Inner func() rpcserver.Handler
	// Local serves status and reload on a standby (the daemon's own
	// handler, with its caller checks).
	Local rpcserver.Handler
}

// hfOps are HF's five operations: they take the lease.
var hfOps = map[string]bool{
	hf.OpGetAvailableTemplates: true,
	hf.OpRequestMachines:       true,
	hf.OpGetRequestStatus:      true,
	hf.OpRequestReturnMachines: true,
	hf.OpGetReturnRequests:     true,
}

// Call implements rpcserver.Handler.
func (h *Handler) Call(ctx context.Context, name string, p rpc.Params) (any, error) {
	takes := hfOps[name]
	if takes && len(p.Args) > 0 {
		var v apitype.ViewArgs
		if json.Unmarshal(p.Args, &v) == nil && v.View {
			takes = false // the operator's view of an HF answer
		}
	}
	if takes {
		if err := h.C.Acquire(ctx); err != nil {
			return nil, rpc.Errorf(rpc.Unavailable, "%s", err)
		}
	}
	if in := h.Inner(); in != nil {
		return in.Call(ctx, name, p)
	}
	if name == apitype.MethodStatus || name == apitype.MethodReload {
		return h.Local.Call(ctx, name, p)
	}
	if takes {
		// The lease was taken and lost again before the call got through.
		return nil, rpc.Errorf(rpc.Unavailable, "state store unavailable: this host lost the lease while serving the call; HF's next call retries")
	}
	return nil, rpc.Errorf(rpc.Unavailable, "%s", h.C.standbyMessage(ctx))
}

// standbyMessage says who acts instead of this host.
func (c *Coordinator) standbyMessage(ctx context.Context) string {
	c.observe(ctx) // the lease as it is now, not as last polled
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
