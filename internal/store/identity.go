package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// IdentityFile is the name of the file, beside Badger's, that says what the
// store is: the cluster it belongs to, its schema, whether it was closed
// cleanly, and how far its writes had reached (the watermark). It is
// replaced atomically (temporary file, fsync, rename, fsync of the
// directory), never edited in place.
const IdentityFile = "ohfpd-store.json"

// identityFormat is the version of IdentityFile's layout.
const identityFormat = 1

// identity is IdentityFile's content.
type identity struct {
	Format    int      `json:"format"`
	ClusterID string   `json:"cluster_id,omitempty"`
	Providers []string `json:"providers,omitempty"`
	Schema    int      `json:"schema"`
	// Clean is true only between a clean Close and the next Open.
	Clean bool `json:"clean_shutdown"`
	// Seq is the write-sequence watermark: every Write up to Seq was
	// durable in Badger when the file was written. Badger's own record of
	// the sequence (_meta/seq) can be higher, never lower.
	Seq     uint64    `json:"write_seq"`
	Updated time.Time `json:"updated"`
}

// readIdentity reads dir's identity file; (nil, nil) when there is none.
func readIdentity(dir string) (*identity, error) {
	b, err := os.ReadFile(filepath.Join(dir, IdentityFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var id identity
	if err := json.Unmarshal(b, &id); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %w", IdentityFile, err)
	}
	if id.Format < 1 || id.Format > identityFormat {
		return nil, fmt.Errorf("%s has format %d, this ohfpd reads format %d", IdentityFile, id.Format, identityFormat)
	}
	return &id, nil
}

// writeIdentity replaces dir's identity file atomically and durably.
func writeIdentity(dir string, id identity) error {
	id.Format = identityFormat
	id.Updated = time.Now().UTC().Truncate(time.Millisecond)
	id.Providers = slices.Clone(id.Providers)
	b, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	tmp, err := os.CreateTemp(dir, "."+IdentityFile+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // a no-op after the rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o640); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, filepath.Join(dir, IdentityFile)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ClusterIDError is a store that belongs to another cluster_id than the
// configured one.
type ClusterIDError struct {
	Dir        string
	Stored     string // the cluster_id the store belongs to
	Configured string
}

func (e *ClusterIDError) Error() string {
	return fmt.Sprintf("state directory %s belongs to cluster_id %q, but the configuration says cluster_id %q: "+
		"ohfpd would take every host tagged ohfp:managed-by=%s as not its own. "+
		"Either put back `cluster_id: %s` in the configuration, "+
		"or start once with `ohfpd --adopt-cluster-id %s` to re-tag %s's instances with %s and keep them",
		e.Dir, e.Stored, e.Configured, e.Stored, e.Stored, e.Stored, e.Stored, e.Configured)
}

// ClusterID returns the cluster_id recorded in the store ("" when none
// was recorded yet, or in memory).
func (s *Store) ClusterID() string {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	return s.ident.ClusterID
}

// Claim checks that the store belongs to clusterID and records providers
// as its provider names. A store with no cluster recorded (new, or
// written by an ohfpd before identity files) is given clusterID. A store of
// another cluster gives a *ClusterIDError; use Adopt once the cloud's
// resources of the old id carry the new one.
func (s *Store) Claim(clusterID string, providers []string) error {
	if clusterID == "" {
		return errors.New("store: empty cluster_id")
	}
	s.idMu.Lock()
	defer s.idMu.Unlock()
	if s.ident.ClusterID != "" && s.ident.ClusterID != clusterID {
		return &ClusterIDError{Dir: s.dir, Stored: s.ident.ClusterID, Configured: clusterID}
	}
	return s.recordLocked(clusterID, providers)
}

// Adopt records clusterID for a store that belonged to old (or already
// belongs to clusterID, when an adoption is run again). Call it only
// after the cloud's resources tagged with old carry clusterID.
func (s *Store) Adopt(old, clusterID string, providers []string) error {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	switch s.ident.ClusterID {
	case old, clusterID, "":
	default:
		return fmt.Errorf("%s belongs to cluster_id %q, not %q: --adopt-cluster-id %s does not apply (the configuration says %q)",
			s.where(), s.ident.ClusterID, old, old, clusterID)
	}
	return s.recordLocked(clusterID, providers)
}

func (s *Store) recordLocked(clusterID string, providers []string) error {
	prev := s.ident
	s.ident.ClusterID = clusterID
	s.ident.Providers = slices.Clone(providers)
	if s.dir == "" {
		return nil
	}
	if err := writeIdentity(s.dir, s.ident); err != nil {
		s.ident = prev
		return fmt.Errorf("%s: recording cluster_id %s: %w", s.where(), clusterID, err)
	}
	return nil
}
