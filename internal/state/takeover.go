package state

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ohfp/ohfp/internal/store"
)

// A takeover from IBM's plugin (ohfpd --take-over-ibm) is recorded once
// per provider under "o/<provider>": from then on a host HF returns that
// ohfpd does not hold is looked up in AWS by its instance id, and taken
// as IBM's if it was launched before the takeover (see package
// reconcile, LookUpHosts). Adding it changed no existing record; an
// older ohfpd ignores the prefix.
const KeyTakeOver = "o/"

const takeOverVersion = 1

type takeOverRecord struct {
	V        int       `json:"v"`
	Provider string    `json:"provider"`
	From     string    `json:"from"` // "ibm"
	At       time.Time `json:"at"`
}

// TakeOver is a provider's recorded takeover.
type TakeOver struct {
	From string
	At   time.Time
}

// RecordTakeOverLocked records, durably, that provider's hosts were taken
// over from plugin from at at. The first record stays (a run again does
// not move the time on). Called with Mu held.
func (s *State) RecordTakeOverLocked(provider, from string, at time.Time) error {
	if _, ok := s.TakeOvers[provider]; ok {
		return nil
	}
	b, err := json.Marshal(takeOverRecord{V: takeOverVersion, Provider: provider, From: from, At: at})
	if err != nil {
		return err
	}
	if err := s.store.Write(store.Op{Key: KeyTakeOver + provider, Value: b}); err != nil {
		return err
	}
	s.TakeOvers[provider] = TakeOver{From: from, At: at}
	return nil
}

// loadTakeOvers reads the takeover records.
func (s *State) loadTakeOvers() error {
	err := s.store.Scan(KeyTakeOver, func(k string, v []byte) error {
		var rec takeOverRecord
		if err := json.Unmarshal(v, &rec); err != nil || rec.V != takeOverVersion {
			return fmt.Errorf("record %s: not a version %d takeover: %v", k, takeOverVersion, err)
		}
		if strings.TrimPrefix(k, KeyTakeOver) != rec.Provider {
			return fmt.Errorf("record %s names provider %s", k, rec.Provider)
		}
		s.TakeOvers[rec.Provider] = TakeOver{From: rec.From, At: rec.At}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load takeovers: %w", err)
	}
	return nil
}
