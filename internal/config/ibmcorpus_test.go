package config

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestIBMCorpus loads IBM-format provider folders written from IBM's field
// tables and samples (hostProviders/aws and hostProviders/awsv2 of IBM's
// cloud-provider-plugins for LSF, the Symphony Host Factory reference for
// Symphony's): every field and key, documented values and ranges, IBM's
// habits ("securityGroupIds": [""], empty proxy keys, Boolean and range
// attributes, lower-case strategies, a timeout above an hour, an EC2
// Fleet file with $LSF_ placeholders). Each loads; the golden file holds
// the provider as ohfp understood it and the warnings, which say what ohfp
// does differently.
func TestIBMCorpus(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/ibm/*/config.yaml")
	if len(dirs) < 3 {
		t.Fatalf("corpus has %d folders", len(dirs))
	}
	for _, f := range dirs {
		name := filepath.Base(filepath.Dir(f))
		t.Run(name, func(t *testing.T) {
			c, err := Load(f)
			if err != nil {
				t.Fatalf("IBM's files do not load:\n%v", err)
			}
			out, _ := json.MarshalIndent(struct {
				Warnings []string  `json:"warnings"`
				Provider *Provider `json:"provider"`
			}{c.Warnings, &c.Providers[0]}, "", "  ")
			golden(t, filepath.Join("testdata", "ibm", name+".golden.json"), normalise(t, string(out))+"\n")
			for _, w := range c.Warnings {
				if !strings.Contains(w, ":") {
					t.Errorf("warning not located: %q", w)
				}
			}
		})
	}
}
