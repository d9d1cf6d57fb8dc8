package main

import (
	"context"
	"fmt"
	"log/slog"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/english"
	"github.com/ohfp/ohfp/internal/health"
	"github.com/ohfp/ohfp/internal/rpc"
	"github.com/ohfp/ohfp/internal/rpcserver"
	"github.com/ohfp/ohfp/internal/template"
)

// caller says who is calling (for the request's history and the log) and
// whether they may act as the operator: root, or a member (primary or
// supplementary group, as the kernel reports it for the connection, else
// as /etc/group says) of one of admin_groups.
func (d *daemon) caller(ctx context.Context) (who string, admin bool) {
	p, ok := rpcserver.PeerFromContext(ctx)
	if !ok {
		return "a caller ohfpd cannot identify", false
	}
	who = "uid " + strconv.FormatUint(uint64(p.UID), 10)
	if u, err := user.LookupId(strconv.FormatUint(uint64(p.UID), 10)); err == nil {
		who += " (" + u.Username + ")"
	}
	if p.UID == 0 {
		return who, true
	}
	d.mu.Lock()
	admins := d.adminGIDs
	d.mu.Unlock()
	if len(admins) == 0 {
		return who, false
	}
	groups := append([]uint32{p.GID}, p.Groups...)
	if p.Groups == nil {
		if u, err := user.LookupId(strconv.FormatUint(uint64(p.UID), 10)); err == nil {
			if ids, err := u.GroupIds(); err == nil {
				for _, id := range ids {
					if n, err := strconv.ParseUint(id, 10, 32); err == nil {
						groups = append(groups, uint32(n))
					}
				}
			}
		}
	}
	for _, g := range groups {
		if slices.Contains(admins, g) {
			return who, true
		}
	}
	return who, false
}

// resolveGroups turns group names or ids into gids; what is unknown is
// logged and left out.
func resolveGroups(names []string, key string, log *slog.Logger) (gids []uint32, warnings []string) {
	for _, g := range names {
		if id, err := strconv.ParseUint(g, 10, 32); err == nil {
			gids = append(gids, uint32(id))
		} else if gg, err := user.LookupGroup(g); err == nil {
			id, _ := strconv.ParseUint(gg.Gid, 10, 32)
			gids = append(gids, uint32(id))
		} else {
			msg := key + ": no such group in /etc/group; ohfpd is static and does not ask LDAP or SSSD: give the gid (getent group NAME)"
			log.Warn(msg, "group", g)
			warnings = append(warnings, fmt.Sprintf("%s: no such group %q in /etc/group; ohfpd is static and does not ask LDAP or SSSD: give the gid (getent group %s)", key, g, g))
		}
	}
	return gids, warnings
}

// fullStatus is the status with every provider's cloud health and the
// health verdict: what ohfp status, the metrics, STATUS= and the watchdog
// read.
func (d *daemon) fullStatus() apitype.Status {
	var rep apitype.Status
	if eng := d.engine(); eng != nil {
		rep = eng.StatusReport()
	}
	d.statusExtra(&rep)
	return rep
}

// statusExtra adds AWS health per provider, the lease (ha:) and the
// verdict (package health) to the core's status; on a standby, which runs
// no engine, it fills what the daemon knows.
func (d *daemon) statusExtra(rep *apitype.Status) {
	rep.AWS = d.cloudStatus()
	d.mu.Lock()
	cfg := d.cfg
	acting := d.eng != nil
	d.mu.Unlock()
	bound := progressBound(cfg)
	if !acting {
		// A standby makes no reconcile passes: nothing to stall.
		bound = 0
		rep.Version, rep.ClusterID, rep.Started = version, cfg.ClusterID, d.started
		rep.UptimeSeconds = int64(time.Since(d.started).Seconds())
		rep.Providers = rep.Providers[:0]
		for _, p := range cfg.Providers {
			rep.Providers = append(rep.Providers, p.Name)
		}
	}
	if d.coord != nil {
		rep.HA = d.coord.Report()
		rep.HA.Table = cfg.HA.Table
		// The daemon's age, not the engine's (which starts at each
		// taking of the lease).
		rep.Started, rep.UptimeSeconds = d.started, int64(time.Since(d.started).Seconds())
	}
	h := health.Assess(*rep, time.Now(), bound)
	rep.Health = &h
}

// check dry-runs the templates (all, one provider's, or one) against
// their cloud, through the API each launches with: permissions, AMIs,
// subnets, security groups, instance types, vCPU quotas (ohfp check).
// Each provider's credentials come first, on one row: without valid ones
// its templates are not tried (every call would fail the same way). A
// template or provider the configuration does not have is NotFound,
// naming those it has.
func (d *daemon) check(ctx context.Context, a apitype.CheckArgs) ([]apitype.CheckRow, error) {
	d.mu.Lock()
	cfg, provs := d.cfg, d.provs
	d.mu.Unlock()
	var provNames, tplNames []string
	for _, p := range cfg.Providers {
		provNames = append(provNames, p.Name)
		if a.Provider != "" && p.Name != a.Provider {
			continue
		}
		for _, t := range p.Templates {
			if !slices.Contains(tplNames, t.TemplateID) {
				tplNames = append(tplNames, t.TemplateID)
			}
		}
	}
	switch {
	case a.Provider != "" && !slices.Contains(provNames, a.Provider):
		return nil, rpc.Errorf(rpc.NotFound, "no provider %s (known: %s)", a.Provider, strings.Join(provNames, ", "))
	case a.Template != "" && !slices.Contains(tplNames, a.Template):
		return nil, rpc.Errorf(rpc.NotFound, "no template %s%s (known: %s)", a.Template, ofProvider(a.Provider), strings.Join(tplNames, ", "))
	}
	var rows []apitype.CheckRow
	for _, p := range cfg.Providers {
		if a.Provider != "" && p.Name != a.Provider {
			continue
		}
		ap := provs[p.Name]
		if ap == nil {
			continue
		}
		var ts []template.Template
		for _, t := range p.Templates {
			if a.Template == "" || t.TemplateID == a.Template {
				ts = append(ts, t)
			}
		}
		if len(ts) == 0 {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		cr := ap.CheckCredentials(cctx)
		cancel()
		if !cr.OK {
			cr.Result += "; " + english.Plural(len(ts), "template") + " not checked until this is fixed"
		}
		rows = append(rows, apitype.CheckRow{Provider: p.Name, What: cr.What, OK: cr.OK, Result: cr.Result})
		if !cr.OK {
			continue
		}
		for _, t := range ts {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			for _, c := range ap.Check(cctx, t) {
				rows = append(rows, apitype.CheckRow{Provider: p.Name, TemplateID: t.TemplateID, What: c.What, OK: c.OK, Result: c.Result})
			}
			cancel()
		}
	}
	return rows, nil
}

func ofProvider(p string) string {
	if p == "" {
		return ""
	}
	return " of provider " + p
}
