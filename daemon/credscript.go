package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ohfp/ohfp/internal/config"
	awsprov "github.com/ohfp/ohfp/internal/provider/aws"
)

// checkCredentialScripts is --check-config's run of each provider's
// credential script (IBM's AWS_CREDENTIAL_SCRIPT): once, as ohfpd would,
// one line each; the first that fails or prints something else than
// credentials is the error. "" when no provider has one.
func checkCredentialScripts(ctx context.Context, cfg *config.Config) (string, error) {
	var lines []string
	for _, p := range cfg.Providers {
		if p.CredentialScript == "" {
			continue
		}
		sc := awsprov.NewScriptCredentials(p.CredentialScript, p.CredentialRenewMargin)
		c, err := sc.Retrieve(ctx)
		if err != nil {
			return "", fmt.Errorf("provider %s: %w", p.Name, err)
		}
		line := fmt.Sprintf("provider %s: credential script %s gave credentials for access key %s", p.Name, p.CredentialScript, maskKey(c.AccessKeyID))
		if st := sc.Status(); !st.GoodUntil.IsZero() {
			line += ", expiring at " + st.GoodUntil.UTC().Format(time.RFC3339)
		} else {
			line += ", without an expiry"
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n"), nil
}

// maskKey shows an access key id's last four characters only.
func maskKey(id string) string {
	if len(id) <= 4 {
		return "****"
	}
	return strings.Repeat("*", len(id)-4) + id[len(id)-4:]
}

// primeCredentials runs each provider's credential script once at start,
// in the background, so that one failing is in the log at once (and in
// `ohfp status` from then on) rather than at the first AWS call.
func (d *daemon) primeCredentials(ctx context.Context, provs map[string]*awsprov.Provider) {
	for name, ap := range provs {
		go func() {
			if err := ap.PrimeCredentials(ctx); err != nil {
				d.log.Error("credential script failed: no AWS call can be made until it gives credentials; fix it (ohfpd --check-config runs it) and ohfpd tries again within 30 seconds of the next call", "provider", name, "err", err)
			}
		}()
	}
}
