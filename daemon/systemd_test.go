package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/apitype"
)

// systemctl status says who holds the lease of a shared-store cluster.
func TestStatusLineSaysWhoHoldsTheLease(t *testing.T) {
	rep := apitype.Status{LiveMachines: 3, InFlight: 1, LastReconcile: time.Now().Add(-2 * time.Second),
		Health: &apitype.Health{Level: "healthy"}}
	if line := statusLine(rep); strings.Contains(line, "lease") {
		t.Fatalf("single host: %q mentions a lease", line)
	}
	for _, c := range []struct {
		ha   apitype.HA
		want string
	}{
		{apitype.HA{Host: "m1", Role: "holder", Holder: "m1", Since: "2026-11-30T10:00:00Z"}, "lease held by this host (m1) since 2026-11-30T10:00:00Z"},
		{apitype.HA{Host: "m2", Role: "standby", Holder: "m1", Since: "2026-11-30T10:00:00Z"}, "standby (m2): lease held by m1 since 2026-11-30T10:00:00Z"},
		{apitype.HA{Host: "m2", Role: "standby", Holder: "m1", Since: "2026-11-30T10:00:00Z", Expired: true}, "lease of m1 (since 2026-11-30T10:00:00Z) expired"},
		{apitype.HA{Host: "m2", Role: "standby"}, "nobody holds the lease"},
	} {
		rep.HA = &c.ha
		if line := statusLine(rep); !strings.HasPrefix(line, "STATUS=healthy") || !strings.Contains(line, c.want) {
			t.Errorf("%+v: %q, want %q", c.ha, line, c.want)
		}
	}
}
