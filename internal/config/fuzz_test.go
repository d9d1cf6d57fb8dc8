package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, and must
// return either a config with at least one provider or an error, never both.
// Seeds: testdata/fuzz/*.yaml plus the good and bad configs.
func FuzzParse(f *testing.F) {
	for _, pat := range []string{"testdata/fuzz/*.yaml", "testdata/good/*.yaml", "testdata/bad/*.yaml"} {
		files, _ := filepath.Glob(pat)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	// Parse resolves relative references against testdata/fuzz, so seeds
	// may name files there.
	name := filepath.Join("testdata", "fuzz", "config.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, name)
		if err != nil {
			if c != nil {
				t.Fatal("config and error both returned")
			}
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error message")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error is not a located *Error: %v", err)
			}
			return
		}
		if len(c.Providers) == 0 {
			t.Fatal("config without providers accepted")
		}
		for _, p := range c.Providers {
			seen := map[string]bool{}
			for _, tp := range p.Templates {
				if seen[tp.TemplateID] || !templateIDRe.MatchString(tp.TemplateID) {
					t.Fatalf("bad or duplicate templateId %q accepted", tp.TemplateID)
				}
				seen[tp.TemplateID] = true
				if tp.MaxNumber < -1 {
					t.Fatalf("maxNumber %d accepted", tp.MaxNumber)
				}
			}
		}
	})
}
