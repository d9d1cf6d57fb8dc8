package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ohfp/ohfp/internal/api"
	"github.com/ohfp/ohfp/internal/config"
	"github.com/ohfp/ohfp/internal/ha"
	awsprov "github.com/ohfp/ohfp/internal/provider/aws"
	"github.com/ohfp/ohfp/internal/sdklog"
	"github.com/ohfp/ohfp/internal/store"
	"github.com/ohfp/ohfp/internal/store/dynamo"
)

// openTable opens the ha: section's DynamoDB table for cfg's cluster.
// log receives what the table and the AWS SDK log (nil: slog's default).
func openTable(ctx context.Context, cfg *config.Config, simulate, create bool, log *slog.Logger) (*dynamo.Table, error) {
	if log == nil {
		log = slog.Default()
	}
	h := cfg.HA
	if h.Region == "" {
		return nil, fmt.Errorf("ha: no region for table %s: set ha.region (or the first provider's region)", h.Table)
	}
	o := dynamo.Options{Table: h.Table, Region: h.Region, Endpoint: h.EndpointURL, ClusterID: cfg.ClusterID, Create: create && h.CreateTable, Logger: log}
	switch {
	case simulate && h.EndpointURL != "":
		o.Credentials = credentials.NewStaticCredentialsProvider("SIMULATED", "SIMULATED", "")
	case h.Profile != "" || h.CredentialsFile != "":
		opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithLogger(sdklog.New(log))}
		if h.Profile != "" {
			opts = append(opts, awsconfig.WithSharedConfigProfile(h.Profile))
		}
		if h.CredentialsFile != "" {
			opts = append(opts, awsconfig.WithSharedCredentialsFiles([]string{h.CredentialsFile}))
		}
		ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("ha: credentials for table %s: %w", h.Table, err)
		}
		o.Credentials = ac.Credentials
	case h.CredentialScript != "" && !simulate:
		o.Credentials = awsprov.NewScriptCredentialsCache(awsprov.NewScriptCredentials(h.CredentialScript, h.CredentialRenewMargin))
	}
	return dynamo.Open(ctx, o)
}

// hostName is this candidate's name in the lease.
func hostName(cfg *config.Config) string {
	if cfg.HA.Host != "" {
		return cfg.HA.Host
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "unknown-host"
}

// openShared opens the shared table and the lease coordinator that runs
// the engine on it while this host holds the lease.
func (d *daemon) openShared(ctx context.Context, cfg *config.Config, opts api.Options) (*ha.Coordinator, func(), error) {
	octx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	tab, err := openTable(octx, cfg, d.simulate, true, d.log)
	if err != nil {
		return nil, nil, err
	}
	host := hostName(cfg)
	coord := ha.New(ha.Options{
		Host:          host,
		LeaseDuration: cfg.HA.LeaseDuration,
		Backend:       leaseTable{tab},
		Start:         d.startActing(opts),
		Logger:        d.log.With("component", "lease"),
		OnChange: func(st ha.Status) {
			d.log.Info("lease", "role", st.Role, "holder", st.Holder, "token", st.Token)
		},
	})
	return coord, func() { _ = tab.Close() }, nil
}

// leaseTable adapts the DynamoDB table to ha.Backend.
type leaseTable struct{ t *dynamo.Table }

func (l leaseTable) Write(ops ...store.Op) error {
	err := l.t.Write(ops...)
	if errors.Is(err, dynamo.ErrFenced) {
		return fmt.Errorf("%w: %w", ha.ErrFenced, err)
	}
	return err
}

func (l leaseTable) Scan(prefix string, fn func(key string, value []byte) error) error {
	return l.t.Scan(prefix, fn)
}

func (l leaseTable) SetFence(token uint64) { l.t.SetFence(token) }

func (l leaseTable) ReadLease(ctx context.Context) (ha.Lease, bool, error) {
	x, ok, err := l.t.ReadLease(ctx)
	return ha.Lease(x), ok, err
}

func (l leaseTable) AcquireLease(ctx context.Context, host string, prev *ha.Lease) (ha.Lease, error) {
	var p *dynamo.Lease
	if prev != nil {
		x := dynamo.Lease(*prev)
		p = &x
	}
	x, err := l.t.AcquireLease(ctx, host, p)
	return ha.Lease(x), leaseErr(err)
}

func (l leaseTable) RenewLease(ctx context.Context, cur ha.Lease) (ha.Lease, error) {
	x, err := l.t.RenewLease(ctx, dynamo.Lease(cur))
	return ha.Lease(x), leaseErr(err)
}

func (l leaseTable) ReleaseLease(ctx context.Context, cur ha.Lease) error {
	return leaseErr(l.t.ReleaseLease(ctx, dynamo.Lease(cur)))
}

func (l leaseTable) WantLease(ctx context.Context, host string) error {
	return l.t.WantLease(ctx, host)
}

// leaseErr maps the table's lease errors to package ha's.
func leaseErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, dynamo.ErrLeaseTaken):
		return fmt.Errorf("%w: %w", ha.ErrLeaseTaken, err)
	case errors.Is(err, dynamo.ErrLeaseLost):
		return fmt.Errorf("%w: %w", ha.ErrLeaseLost, err)
	}
	return err
}

// checkShared is --check-config's test of the ha: section: the table is
// reachable and has the right keys; says who holds the lease.
func checkShared(ctx context.Context, cfg *config.Config, simulate bool) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tab, err := openTable(ctx, cfg, simulate, false, nil)
	var nt *dynamo.NoTableError
	if errors.As(err, &nt) && cfg.HA.CreateTable {
		return fmt.Sprintf("ha: DynamoDB table %s in %s reachable, not created yet: ohfpd creates it at start (create_table: true)", cfg.HA.Table, cfg.HA.Region), nil
	}
	if err != nil {
		return "", err
	}
	defer tab.Close()
	l, ok, err := tab.ReadLease(ctx)
	if err != nil {
		return "", fmt.Errorf("ha: table %s reachable but the lease cannot be read: %w", cfg.HA.Table, err)
	}
	who := "nobody holds the lease yet"
	switch {
	case ok && l.Released:
		who = fmt.Sprintf("the lease is free (released by %s)", l.Holder)
	case ok:
		who = fmt.Sprintf("lease held by %s since %s (last renewed %s)", l.Holder, l.Since.UTC().Format(time.RFC3339), l.Renewed.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("ha: DynamoDB table %s in %s reachable; %s", cfg.HA.Table, cfg.HA.Region, who), nil
}
