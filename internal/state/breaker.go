package state

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ohfp/ohfp/internal/english"
	"github.com/ohfp/ohfp/internal/store"
)

// The failure breaker (breaker_failures, breaker_cooldown): a template
// whose launches fail for reasons retrying cannot fix (an unknown AMI, a
// bad subnet or security group, a refused permission, an account limit,
// instances that die before they run) stops launching after that many
// failures in a row. Its availableNumber is 0, requestMachines on it is
// refused with why and how to re-arm, and requests already queued for it
// fail without a cloud call. It re-arms after the cooldown, on a
// configuration reload, or with ohfp rearm. A machine of the template
// that reaches running resets the count. Throttling, transient and
// capacity errors never count.
//
// A tripped breaker is kept in a record of its own under
// "b/<provider>/<template>" (like drains: an older ohfpd ignores the
// prefix), so a restart does not re-arm it silently; the count of
// failures before it trips is memory only (a restart starts it again).
const KeyBreaker = "b/"

const breakerVersion = 1

// Breaker is one template's failure breaker.
type Breaker struct {
	Provider, TemplateID string
	// Failures: launches in a row that failed for a reason retrying
	// cannot fix (one per request).
	Failures int
	Reason   string // the last failure's
	// Tripped: the template stopped launching at TrippedAt, until Until
	// (zero: until re-armed by a reload or the operator).
	Tripped   bool
	TrippedAt time.Time
	Until     time.Time
	lastReq   string // the request last counted: a request counts once
}

type breakerRecord struct {
	V         int       `json:"v"`
	Provider  string    `json:"provider"`
	Template  string    `json:"template"`
	Failures  int       `json:"failures"`
	Reason    string    `json:"reason"`
	TrippedAt time.Time `json:"trippedAt"`
	Until     time.Time `json:"until,omitzero"`
}

// BreakerFailureLocked counts a failure of a launch of request reqID of
// the template that retrying cannot fix, and trips the breaker at the
// provider's breaker_failures (durably). It returns the breaker when it
// tripped now. Called with Mu held.
func (s *State) BreakerFailureLocked(provider, templateID, reqID, reason string) *Breaker {
	p := s.Providers[provider]
	if p == nil || p.Cfg.BreakerFailures <= 0 {
		return nil
	}
	k := DrainKey(provider, templateID)
	b := s.Breakers[k]
	if b == nil {
		b = &Breaker{Provider: provider, TemplateID: templateID}
		s.Breakers[k] = b
	}
	if b.Tripped || reqID != "" && reqID == b.lastReq {
		return nil
	}
	b.Failures++
	b.Reason = reason
	b.lastReq = reqID
	if b.Failures < p.Cfg.BreakerFailures {
		s.Log.Info("template launch failed; counted toward its failure breaker", "template", templateID, "provider", provider, "failures", b.Failures, "of", p.Cfg.BreakerFailures, "reason", reason)
		return nil
	}
	now := s.Clock.Now()
	b.Tripped, b.TrippedAt, b.Until = true, now, time.Time{}
	if p.Cfg.BreakerCooldown > 0 {
		b.Until = now.Add(p.Cfg.BreakerCooldown)
	}
	rec, err := json.Marshal(breakerRecord{V: breakerVersion, Provider: provider, Template: templateID, Failures: b.Failures, Reason: reason, TrippedAt: b.TrippedAt, Until: b.Until})
	if err == nil {
		err = s.store.Write(store.Op{Key: KeyBreaker + k, Value: rec})
	}
	if err != nil {
		s.Log.Error("the tripped breaker could not be written; a restart would re-arm it", "template", templateID, "provider", provider, "err", err)
	}
	s.Log.Warn("template stopped launching: its failure breaker tripped", "template", templateID, "provider", provider, "failures", b.Failures, "reason", reason, "until", b.Until)
	return b
}

// BreakerSuccessLocked resets the template's count: a machine of it
// reached running. Called with Mu held.
func (s *State) BreakerSuccessLocked(provider, templateID string) {
	k := DrainKey(provider, templateID)
	if b := s.Breakers[k]; b != nil && !b.Tripped {
		delete(s.Breakers, k)
	}
}

// TrippedLocked returns the template's breaker when it is tripped now.
// Called with Mu held (read).
func (s *State) TrippedLocked(provider, templateID string, now time.Time) (Breaker, bool) {
	b := s.Breakers[DrainKey(provider, templateID)]
	if b == nil || !b.Tripped || !b.Until.IsZero() && !now.Before(b.Until) {
		return Breaker{}, false
	}
	return *b, true
}

// Message says why a tripped template does not launch and how to re-arm
// it, for HF and the operator.
func (b Breaker) Message() string {
	until := "until re-armed"
	if !b.Until.IsZero() {
		until = "until " + b.Until.UTC().Format(time.RFC3339) + " (breaker_cooldown)"
	}
	return fmt.Sprintf("template %s stopped launching after %s in a row that retrying cannot fix (last: %s) %s; fix the cause, then sudo ohfp rearm %s (or reload the configuration)",
		b.TemplateID, english.Plural(b.Failures, "failure"), b.Reason, until, b.TemplateID)
}

// RearmLocked re-arms a template's breaker (durably) and reports whether
// it was tripped. Called with Mu held.
func (s *State) RearmLocked(provider, templateID string) (bool, error) {
	k := DrainKey(provider, templateID)
	b := s.Breakers[k]
	if b == nil {
		return false, nil
	}
	if b.Tripped {
		if err := s.store.Write(store.Op{Key: KeyBreaker + k, Delete: true}); err != nil {
			return false, err
		}
	}
	delete(s.Breakers, k)
	return b.Tripped, nil
}

// RearmExpiredLocked re-arms the breakers whose cooldown has passed, and
// the breakers of providers configured with no breaker (or no longer
// configured). Called with Mu held.
func (s *State) RearmExpiredLocked(now time.Time) {
	for _, b := range s.Breakers {
		p := s.Providers[b.Provider]
		off := p == nil || p.Cfg.BreakerFailures <= 0
		if !off && (!b.Tripped || b.Until.IsZero() || now.Before(b.Until)) {
			continue
		}
		if _, err := s.RearmLocked(b.Provider, b.TemplateID); err != nil {
			s.Log.Error("re-arming a template's breaker failed; retried at the next pass", "template", b.TemplateID, "provider", b.Provider, "err", err)
			continue
		}
		if b.Tripped {
			s.Log.Warn("template re-armed: its breaker's cooldown has passed", "template", b.TemplateID, "provider", b.Provider)
		}
	}
}

// BreakersLocked lists the breakers with a count or tripped, by provider
// and template. Called with Mu held (read).
func (s *State) BreakersLocked() []Breaker {
	out := make([]Breaker, 0, len(s.Breakers))
	for _, b := range s.Breakers {
		out = append(out, *b)
	}
	sort.Slice(out, func(i, j int) bool {
		return DrainKey(out[i].Provider, out[i].TemplateID) < DrainKey(out[j].Provider, out[j].TemplateID)
	})
	return out
}

// loadBreakers reads the tripped breakers (load's last step).
func (s *State) loadBreakers() error {
	err := s.store.Scan(KeyBreaker, func(k string, v []byte) error {
		var rec breakerRecord
		if err := json.Unmarshal(v, &rec); err != nil || rec.V != breakerVersion {
			return fmt.Errorf("record %s: not a version %d breaker: %v", k, breakerVersion, err)
		}
		if strings.TrimPrefix(k, KeyBreaker) != DrainKey(rec.Provider, rec.Template) {
			return fmt.Errorf("record %s names template %s of provider %s", k, rec.Template, rec.Provider)
		}
		s.Breakers[DrainKey(rec.Provider, rec.Template)] = &Breaker{Provider: rec.Provider, TemplateID: rec.Template, Failures: rec.Failures,
			Reason: rec.Reason, Tripped: true, TrippedAt: rec.TrippedAt, Until: rec.Until}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load breakers: %w", err)
	}
	return nil
}
