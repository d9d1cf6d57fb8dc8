package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// codeKeys returns every key the decoder accepts, read from its field
// tables in this package's source: the first element of each field{...}
// and the name: and ibm: of each setting spec.
func codeKeys(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	var keys []string
	for _, f := range []string{"config.go", "provider.go", "templates.go"} {
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			cl, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			isField := func(e ast.Expr) bool { id, ok := e.(*ast.Ident); return ok && id.Name == "field" }
			lit := func(e ast.Expr) {
				if bl, ok := e.(*ast.BasicLit); ok && bl.Kind == token.STRING {
					if s, _ := strconv.Unquote(bl.Value); s != "" {
						keys = append(keys, s)
					}
				}
			}
			if at, ok := cl.Type.(*ast.ArrayType); ok && isField(at.Elt) {
				for _, el := range cl.Elts {
					if inner, ok := el.(*ast.CompositeLit); ok && len(inner.Elts) > 0 {
						lit(inner.Elts[0])
					}
				}
			}
			if isField(cl.Type) && len(cl.Elts) > 0 {
				lit(cl.Elts[0])
			}
			return true
		})
	}
	for _, s := range settingSpecs {
		if s.name != "" {
			keys = append(keys, s.name)
		}
		if s.ibm != "" {
			keys = append(keys, s.ibm)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// referenceKeys returns the keys reference.md documents: the backquoted
// names in the first column of its tables (and the IBM names in the
// providers table's second), with nested keys' last element too.
func referenceKeys(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("reference.md")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	tick := regexp.MustCompile("`([A-Za-z_][A-Za-z0-9_.]*)`")
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| `") && !strings.HasPrefix(line, "| | `") {
			continue
		}
		cells := strings.Split(line, "|")
		cols := cells[1:2]
		if len(cells) > 5 { // the providers table: key | IBM key | default | meaning
			cols = cells[1:3]
		}
		for _, c := range cols {
			for _, m := range tick.FindAllStringSubmatch(c, -1) {
				keys[m[1]] = true
				if sect, last, ok := strings.Cut(m[1], "."); ok {
					keys[sect], keys[last] = true, true
				}
			}
		}
	}
	return keys
}

// TestReferenceCoversEveryKey: reference.md (installed, and the source of
// ohfp.yaml(5)) documents every key the configuration accepts, and no key
// it does not.
func TestReferenceCoversEveryKey(t *testing.T) {
	code := codeKeys(t)
	if len(code) < 60 {
		t.Fatalf("found only %d keys in the source (%v): is the walk stale?", len(code), code)
	}
	ref := referenceKeys(t)
	for _, k := range code {
		if !ref[k] {
			t.Errorf("key %s is not in reference.md", k)
		}
	}
	for k := range ref {
		if strings.Contains(k, ".") {
			continue // reconcile.idle_interval: its last element is checked
		}
		if !slices.Contains(code, k) {
			t.Errorf("reference.md documents %s, which the configuration does not accept", k)
		}
	}
}
