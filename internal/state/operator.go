package state

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ohfp/ohfp/internal/store"
)

// What the operator did (ohfp cancel, return, drain) is kept in records of
// its own, beside the requests and machines rather than inside them: a
// request's history is a list of notes under "n/<request id>/<time>", a
// drained template one record under "d/<provider>/<template>". Adding them
// changed no existing record, so the store schema is the same; an older
// ohfpd ignores both prefixes (it scans only r/, m/ and t/).
const (
	KeyNote  = "n/"
	KeyDrain = "d/"
)

// noteVersion and drainVersion are the versions of those two records.
const (
	noteVersion  = 1
	drainVersion = 1
)

// Note actions.
const (
	NoteCancel = "cancel"
	NoteReturn = "return"
	// NoteCap is ohfpd's outcome of a cancel: the fleet capped at what
	// came, or left because it had reached its target.
	NoteCap = "cap"
)

// WhoOhfpd is the Who of the notes ohfpd writes itself.
const WhoOhfpd = "ohfpd"

// Note is one operator action recorded in a request's history.
type Note struct {
	At     time.Time
	Who    string // the caller, e.g. "uid 0 (root)"
	Action string // NoteCancel, NoteReturn, NoteCap
	Text   string // what was done, for a person
}

// Drain marks a template drained: it offers no units until undrained.
type Drain struct {
	Provider, TemplateID string
	At                   time.Time
	Who                  string
}

// DrainKey is the key of a drained template in State.Drains.
func DrainKey(provider, templateID string) string { return provider + "/" + templateID }

type noteRecord struct {
	V       int       `json:"v"`
	Request string    `json:"request"`
	At      time.Time `json:"at"`
	Who     string    `json:"who"`
	Action  string    `json:"action"`
	Text    string    `json:"text"`
}

type drainRecord struct {
	V        int       `json:"v"`
	Provider string    `json:"provider"`
	Template string    `json:"template"`
	At       time.Time `json:"at"`
	Who      string    `json:"who"`
}

func noteKey(reqID string, at time.Time, n int) string {
	// Time-ordered within a request; n keeps two notes of the same
	// nanosecond apart.
	return fmt.Sprintf("%s%s/%020d-%d", KeyNote, reqID, at.UnixNano(), n)
}

// AddNoteLocked records n in request reqID's history, durably, and keeps
// it in memory. Called with Mu held.
func (s *State) AddNoteLocked(reqID string, n Note) error {
	b, err := json.Marshal(noteRecord{V: noteVersion, Request: reqID, At: n.At, Who: n.Who, Action: n.Action, Text: n.Text})
	if err != nil {
		return err
	}
	if err := s.store.Write(store.Op{Key: noteKey(reqID, n.At, len(s.Notes[reqID])), Value: b}); err != nil {
		return err
	}
	s.Notes[reqID] = append(s.Notes[reqID], n)
	return nil
}

// HasNoteLocked reports whether request reqID's history holds an action.
// Called with Mu held.
func (s *State) HasNoteLocked(reqID, action string) bool {
	for _, n := range s.Notes[reqID] {
		if n.Action == action {
			return true
		}
	}
	return false
}

// NoteKeysLocked returns the store keys of request reqID's notes and
// forgets them in memory: the request is being purged. Called with Mu
// held.
func (s *State) NoteKeysLocked(reqID string) []string {
	ns := s.Notes[reqID]
	if len(ns) == 0 {
		return nil
	}
	keys := make([]string, len(ns))
	for i, n := range ns {
		keys[i] = noteKey(reqID, n.At, i)
	}
	delete(s.Notes, reqID)
	return keys
}

// SetDrainLocked drains (d non-nil) or undrains a template, durably.
// Called with Mu held.
func (s *State) SetDrainLocked(provider, templateID string, d *Drain) error {
	key := KeyDrain + DrainKey(provider, templateID)
	if d == nil {
		if err := s.store.Write(store.Op{Key: key, Delete: true}); err != nil {
			return err
		}
		delete(s.Drains, DrainKey(provider, templateID))
		return nil
	}
	b, err := json.Marshal(drainRecord{V: drainVersion, Provider: provider, Template: templateID, At: d.At, Who: d.Who})
	if err != nil {
		return err
	}
	if err := s.store.Write(store.Op{Key: key, Value: b}); err != nil {
		return err
	}
	s.Drains[DrainKey(provider, templateID)] = *d
	return nil
}

// DrainsLocked lists the drained templates by provider and template.
// Called with Mu held.
func (s *State) DrainsLocked() []Drain {
	out := make([]Drain, 0, len(s.Drains))
	for _, d := range s.Drains {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		return DrainKey(out[i].Provider, out[i].TemplateID) < DrainKey(out[j].Provider, out[j].TemplateID)
	})
	return out
}

// loadOperator reads the notes and drains (load's last step).
func (s *State) loadOperator() error {
	// Keys sort by time within a request (noteKey), so notes load in order.
	err := s.store.Scan(KeyNote, func(k string, v []byte) error {
		var rec noteRecord
		if err := json.Unmarshal(v, &rec); err != nil || rec.V != noteVersion {
			return fmt.Errorf("record %s: not a version %d operator note: %v", k, noteVersion, err)
		}
		s.Notes[rec.Request] = append(s.Notes[rec.Request], Note{At: rec.At, Who: rec.Who, Action: rec.Action, Text: rec.Text})
		return nil
	})
	if err != nil {
		return fmt.Errorf("load operator notes: %w", err)
	}
	err = s.store.Scan(KeyDrain, func(k string, v []byte) error {
		var rec drainRecord
		if err := json.Unmarshal(v, &rec); err != nil || rec.V != drainVersion {
			return fmt.Errorf("record %s: not a version %d drain: %v", k, drainVersion, err)
		}
		if strings.TrimPrefix(k, KeyDrain) != DrainKey(rec.Provider, rec.Template) {
			return fmt.Errorf("record %s names template %s of provider %s", k, rec.Template, rec.Provider)
		}
		s.Drains[DrainKey(rec.Provider, rec.Template)] = Drain{Provider: rec.Provider, TemplateID: rec.Template, At: rec.At, Who: rec.Who}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load drains: %w", err)
	}
	return nil
}
