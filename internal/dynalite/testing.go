package dynalite

import (
	"context"
	"testing"
	"time"
)

// StartT installs dynalite if need be, starts a server for tb, stops it
// when tb ends, and returns its endpoint. It fails tb (it does not skip)
// when node or npm is missing or the install fails: the developers'
// machines and CI have them, so a missing one is a broken machine.
func StartT(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cli, err := Install(ctx)
	if err != nil {
		tb.Fatalf("installing dynalite %s for this test: %v", Version, err)
	}
	s, err := Start(ctx, cli)
	if err != nil {
		tb.Fatalf("starting dynalite for this test: %v", err)
	}
	tb.Cleanup(func() {
		// A test whose table stopped answering says whether dynalite
		// died under it, and how.
		if why := s.Died(); why != "" {
			tb.Logf("dynalite (%s) had exited before the test ended: %s", s.Endpoint, why)
		}
		s.Stop()
	})
	return s.Endpoint
}
