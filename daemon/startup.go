package main

import (
	"context"
	"fmt"
	"github.com/ohfp/ohfp/internal/english"
	"time"

	"github.com/ohfp/ohfp/internal/config"
	awsprov "github.com/ohfp/ohfp/internal/provider/aws"
	"github.com/ohfp/ohfp/internal/store"
)

// adoptTimeout bounds the re-tagging of --adopt-cluster-id.
const adoptTimeout = 5 * time.Minute

// claimStore checks that the state directory belongs to the configured
// cluster_id (recording it in a new store), or, with --adopt-cluster-id
// OLD, re-tags OLD's instances with the configured id in every provider
// and then records the new id. A store of another cluster_id is refused:
// ohfpd would otherwise take all its hosts as taken back.
func (d *daemon) claimStore(ctx context.Context, st *store.Store, cfg *config.Config, provs map[string]*awsprov.Provider) error {
	names := make([]string, 0, len(cfg.Providers))
	for _, p := range cfg.Providers {
		names = append(names, p.Name)
	}
	old := d.adopt
	if old == "" {
		return st.Claim(cfg.ClusterID, names)
	}
	if old == cfg.ClusterID {
		return fmt.Errorf("--adopt-cluster-id %s names the configured cluster_id; give the old one", old)
	}
	if stored := st.ClusterID(); stored != "" && stored != old && stored != cfg.ClusterID {
		return fmt.Errorf("state directory %s belongs to cluster_id %q, not %q: --adopt-cluster-id %s does not apply", st.Dir(), stored, old, old)
	}
	actx, cancel := context.WithTimeout(ctx, adoptTimeout)
	defer cancel()
	for _, p := range cfg.Providers {
		n, err := provs[p.Name].Retag(actx, old, cfg.ClusterID)
		if err != nil {
			return fmt.Errorf("adopting cluster_id %s as %s: provider %s: %s re-tagged, then: %w; the state directory still says %s: run the same command again", old, cfg.ClusterID, p.Name, english.Plural(n, "instance"), err, old)
		}
		d.log.Info("hosts adopted", "provider", p.Name, "from", old, "to", cfg.ClusterID, "instances", n)
	}
	if err := st.Adopt(old, cfg.ClusterID, names); err != nil {
		return err
	}
	d.log.Info("cluster_id adopted: the state directory now belongs to the configured cluster_id; start without --adopt-cluster-id from now on", "from", old, "to", cfg.ClusterID)
	return nil
}
