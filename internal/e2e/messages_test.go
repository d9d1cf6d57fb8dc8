package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMessagesSayWhatHappened (adversarial report of issue 15, #15),
// through the binaries: a template whose vmType AWS refuses
// (InvalidInstanceType) is withheld with that reason, not as a lookup
// still pending; a reload set off by an edited templates file is logged
// as such, not as SIGHUP.
func TestMessagesSayWhatHappened(t *testing.T) {
	t.Parallel()
	tpls := strings.Replace(templatesJSON, `"templates": [`, `"templates": [
  {"templateId": "NoSuch", "maxNumber": 2, "imageId": "ami-0123456789abcdef0", "vmType": "c5.nosuch"},`, 1)
	e := newEnvWith(t, tpls, "")
	e.start()
	var msg string
	e.until("the refused type named", 20*time.Second, func() bool {
		var tr struct {
			Message string `json:"message"`
		}
		e.call("getAvailableTemplates", map[string]any{}, &tr)
		msg = tr.Message
		return strings.Contains(msg, "AWS refused instance type c5.nosuch")
	})
	if !strings.Contains(msg, "InvalidInstanceType") || strings.Contains(msg, "not known yet") {
		t.Fatalf("message: %s", msg)
	}

	// HF's GUI edits the templates file: the reload says so.
	tplFile := filepath.Join(e.dir, "awsprov_templates.json")
	must(t, os.WriteFile(tplFile, []byte(strings.Replace(tpls, `"maxNumber": 12`, `"maxNumber": 13`, 1)), 0o600))
	e.until("the file reload logged", 20*time.Second, func() bool {
		return strings.Contains(e.logText(), `msg="configuration reloaded"`)
	})
	for _, l := range strings.Split(e.logText(), "\n") {
		if strings.Contains(l, `msg="configuration reloaded"`) && !strings.Contains(l, `by="templates or IBM settings file changed"`) {
			t.Fatalf("file reload logged as: %s", l)
		}
	}
}
