package engine

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ohfp/ohfp/internal/apitype"
	"github.com/ohfp/ohfp/internal/domain"
)

// TestShowCarriesEveryRecordedField: `ohfp show` answers with apitype's
// own types, not the persisted records, yet says everything they record.
func TestShowCarriesEveryRecordedField(t *testing.T) {
	for _, pair := range [][2]any{{domain.Request{}, apitype.Request{}}, {domain.Machine{}, apitype.Machine{}}} {
		want, got := jsonNames(reflect.TypeOf(pair[0])), jsonNames(reflect.TypeOf(pair[1]))
		for n := range want {
			if !got[n] {
				t.Errorf("%T lacks %q of %T", pair[1], n, pair[0])
			}
		}
	}
}

func jsonNames(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range t.NumField() {
		n, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if n != "-" && n != "" {
			out[n] = true
		}
	}
	return out
}
