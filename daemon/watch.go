package main

import (
	"context"
	"os"
	"time"

	"github.com/ohfp/ohfp/internal/config"
)

// templatesPollInterval is how often ohfpd looks at the files HF's GUI and
// REST API edit (each provider's templates_file and hf_config_file, and
// the ec2FleetConfig files its templates name).
const templatesPollInterval = 3 * time.Second

// watchedFiles lists the IBM files a configuration reads: HF edits them
// in place (HF_PROVIDER_CONFDIR), and a change must reach ohfpd without a
// manual reload. Besides each provider's templates and settings files,
// the ec2FleetConfig files its templates name (config.Config.Read).
func watchedFiles(c *config.Config) []string {
	var out []string
	for _, p := range c.Providers {
		for _, f := range []string{p.TemplatesFile, p.HFConfigFile} {
			if f != "" {
				out = append(out, f)
			}
		}
	}
	return append(out, c.Read...)
}

type fileSig struct {
	mod  time.Time
	size int64
	ok   bool
}

func sigOf(path string) fileSig {
	fi, err := os.Stat(path)
	if err != nil {
		return fileSig{}
	}
	return fileSig{mod: fi.ModTime(), size: fi.Size(), ok: true}
}

// watchTemplates polls the files files() names every interval, by
// modification time and size (a poll, not inotify: ohfp has no fsnotify
// dependency, HF's configuration folder is often on a shared file system
// where inotify sees no remote change, and a few stats every few seconds
// cost nothing). A change sends on changed (without blocking); the
// receiver reloads, and a change that does not validate is refused there
// with the old templates kept. Each change is signalled once.
func watchTemplates(ctx context.Context, files func() []string, interval time.Duration, changed chan<- struct{}) {
	seen := map[string]fileSig{}
	for _, f := range files() {
		seen[f] = sigOf(f)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	// pending: a change was seen at the last poll; it is signalled once the
	// files stand still for a poll, so that a file caught half-written (a
	// truncate, then the write) is read once, whole.
	pending := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		diff := false
		now := map[string]fileSig{}
		for _, f := range files() {
			s := sigOf(f)
			now[f] = s
			if old, ok := seen[f]; !ok || old != s {
				diff = true
			}
		}
		seen = now
		switch {
		case diff:
			pending = true
		case pending:
			pending = false
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}
}
