package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Error is one configuration problem, located in its file. Load and Parse
// return every problem they find, joined with errors.Join; each one is an
// *Error when it can be located.
type Error struct {
	File   string // the file as given (config or templates file)
	Line   int    // 1-based; 0 when unknown
	Column int    // 1-based; 0 when unknown
	Key    string // dotted path of the key, e.g. providers[0].templates[web].imageId
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// sortErrors orders located errors by file (in order of first
// appearance), line and column, so a report reads top to bottom.
func sortErrors(errs []error) {
	fileRank := map[string]int{}
	for _, e := range errs {
		if le, ok := e.(*Error); ok {
			if _, seen := fileRank[le.File]; !seen {
				fileRank[le.File] = len(fileRank)
			}
		}
	}
	pos := func(e error) (int, int, int) {
		if le, ok := e.(*Error); ok {
			return fileRank[le.File], le.Line, le.Column
		}
		return len(fileRank), 0, 0
	}
	sort.SliceStable(errs, func(i, j int) bool {
		fi, li, ci := pos(errs[i])
		fj, lj, cj := pos(errs[j])
		if fi != fj {
			return fi < fj
		}
		if li != lj {
			return li < lj
		}
		return ci < cj
	})
}

// maxErrors bounds how many problems one load reports.
const maxErrors = 25

// doc is one parsed file being decoded: it collects located errors.
type doc struct {
	file  string
	dir   string // directory relative paths in this file are resolved against
	errs  *[]error
	warns *[]string // nil: warnings are dropped
	read  *[]string // nil: not recorded; else receives each file a field names that is read (ec2FleetConfig)
}

// warnf records a warning located like an error: something IBM documents
// as valid that ohfp accepts but handles differently, said in the message.
func (d *doc) warnf(n ast.Node, key, format string, a ...any) {
	if d.warns == nil {
		return
	}
	e := &Error{File: d.file, Key: key, Msg: fmt.Sprintf(format, a...)}
	if n != nil {
		if tk := n.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Column = tk.Position.Line, tk.Position.Column
		}
	}
	*d.warns = append(*d.warns, e.Error())
}

func (v value) warnf(format string, a ...any) { v.d.warnf(v.node, v.key, format, a...) }

func (d *doc) add(e *Error) {
	if len(*d.errs) < maxErrors {
		*d.errs = append(*d.errs, e)
	}
}

func (d *doc) errorf(n ast.Node, key, format string, a ...any) {
	e := &Error{File: d.file, Key: key, Msg: fmt.Sprintf(format, a...)}
	if n != nil {
		if tk := n.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Column = tk.Position.Line, tk.Position.Column
		}
	}
	d.add(e)
}

// parseFile parses YAML (or JSON, which goccy reads as YAML) and returns the
// body of its single document; nil body for an empty document.
func parseFile(data []byte, file string, errs *[]error) (body ast.Node, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			*errs = append(*errs, &Error{File: file, Msg: fmt.Sprintf("the YAML parser failed on this file (%v); check its syntax", r)})
			body, ok = nil, false
		}
	}()
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) {
			e := &Error{File: file, Msg: strings.TrimSpace(ye.GetMessage())}
			if tk := ye.GetToken(); tk != nil && tk.Position != nil {
				e.Line, e.Column = tk.Position.Line, tk.Position.Column
			}
			*errs = append(*errs, e)
		} else {
			*errs = append(*errs, &Error{File: file, Msg: err.Error()})
		}
		return nil, false
	}
	var bodies []ast.Node
	for _, d := range f.Docs {
		if d.Body != nil {
			if _, isComment := d.Body.(*ast.CommentGroupNode); isComment {
				continue
			}
			bodies = append(bodies, d.Body)
		}
	}
	if len(bodies) > 1 {
		(&doc{file: file, errs: errs}).errorf(bodies[1], "", "more than one YAML document; put everything in one")
		return nil, false
	}
	if len(bodies) == 0 {
		return nil, true
	}
	return bodies[0], true
}

// jsonSyntaxError checks that data is one JSON value and locates the first
// syntax error, if any, by line and column.
func jsonSyntaxError(data []byte, file string) *Error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var v any
	err := dec.Decode(&v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			off := dec.InputOffset()
			line, col := lineCol(data, off)
			return &Error{File: file, Line: line, Column: col, Msg: "invalid JSON: more after the end of the top-level object (a stray character or a second object)"}
		}
		return nil
	}
	var se *json.SyntaxError
	off := int64(len(data))
	msg := err.Error()
	switch {
	case errors.As(err, &se):
		off = se.Offset
		if off > 0 {
			off-- // Offset is just past the offending byte
		}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		msg = "the file ends before the JSON is complete (a missing } or ])"
	}
	if strings.TrimSpace(string(data)) == "" {
		return &Error{File: file, Msg: "the file is empty"}
	}
	line, col := lineCol(data, off)
	return &Error{File: file, Line: line, Column: col, Msg: "invalid JSON: " + msg}
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// unwrap strips anchors, tags and comments around a value node.
func unwrap(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.CommentGroupNode:
			return nil
		default:
			return n
		}
	}
}

// value is one node at a key path, with typed accessors that report errors
// naming the file, line and key.
type value struct {
	d    *doc
	node ast.Node // unwrapped; never nil for a present value
	key  string   // full dotted path
	name string   // last key element, as written
}

func (v value) errorf(format string, a ...any) { v.d.errorf(v.node, v.key, format, a...) }

func (v value) isNull() bool { _, ok := v.node.(*ast.NullNode); return ok }

func kind(n ast.Node) string {
	switch v := n.(type) {
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode:
		return "the number " + v.GetToken().Value
	case *ast.FloatNode:
		return "the number " + v.GetToken().Value
	case *ast.BoolNode:
		return "the boolean " + v.GetToken().Value
	case *ast.NullNode:
		return "nothing (null)"
	case *ast.SequenceNode:
		return "a list"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.AliasNode:
		return "an alias"
	}
	return fmt.Sprintf("a %s", n.Type())
}

// scalarText returns the text of a scalar node (string, number, bool).
func scalarText(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		return v.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return v.GetToken().Value, true
	}
	return "", false
}

// placeholderRe matches the placeholders of the shipped sample files,
// such as <your-subnet-id>: a word in angle brackets, nothing else (an
// inline <powershell>...</powershell> user data script is not one).
var placeholderRe = regexp.MustCompile(`^<[A-Za-z][A-Za-z0-9 _.,-]*>$`)

// placeholder reports s, if it is a placeholder, as an error: the sample
// configuration must not run until its placeholders are replaced.
func (v value) placeholder(s string) bool {
	if !placeholderRe.MatchString(strings.TrimSpace(s)) {
		return false
	}
	v.errorf("%s is a placeholder of the sample configuration: replace it with your own value", strings.TrimSpace(s))
	return true
}

// str reads a string. Numbers are refused (quote them) unless loose.
// A placeholder is refused.
func (v value) str() (string, bool) {
	var s string
	switch n := v.node.(type) {
	case *ast.StringNode:
		s = n.Value
	case *ast.LiteralNode:
		s = n.Value.Value
	default:
		v.errorf("expected a string, got %s", kind(v.node))
		return "", false
	}
	if v.placeholder(s) {
		return "", false
	}
	return s, true
}

// text reads any scalar as text: strings, and numbers as written.
func (v value) text() (string, bool) {
	if s, ok := scalarText(v.node); ok {
		return s, true
	}
	v.errorf("expected a string or a number, got %s", kind(v.node))
	return "", false
}

// integer reads an integer, also from a quoted string ("10").
func (v value) integer() (int, bool) {
	s, ok := scalarText(v.node)
	if ok {
		if _, isBool := v.node.(*ast.BoolNode); !isBool {
			i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err == nil && i >= math.MinInt32 && i <= math.MaxInt32 {
				return int(i), true
			}
		}
	}
	v.errorf("expected an integer, got %s", describe(v.node))
	return 0, false
}

// number reads a decimal number, also from a quoted string.
func (v value) number() (float64, bool) {
	s, ok := scalarText(v.node)
	if ok {
		if _, isBool := v.node.(*ast.BoolNode); !isBool {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
				return f, true
			}
		}
	}
	v.errorf("expected a number, got %s", describe(v.node))
	return 0, false
}

// boolean reads true/false, also quoted.
func (v value) boolean() (bool, bool) {
	if s, ok := scalarText(v.node); ok {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "yes", "on":
			return true, true
		case "false", "no", "off":
			return false, true
		}
	}
	v.errorf("expected true or false, got %s", describe(v.node))
	return false, false
}

// duration reads a Go duration ("30s", "1m30s"). A bare number is refused:
// the unit must be explicit.
func (v value) duration() (time.Duration, bool) {
	s, ok := scalarText(v.node)
	if !ok {
		v.errorf("expected a duration such as 30s or 5m, got %s", kind(v.node))
		return 0, false
	}
	if _, isNum := v.node.(*ast.IntegerNode); isNum {
		v.errorf("%s has no unit: write it as a duration such as %ss or %sms", s, s, s)
		return 0, false
	}
	dur, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		v.errorf("%q is not a duration (examples: 500ms, 30s, 5m, 1h)", s)
		return 0, false
	}
	return dur, true
}

// list reads a list of scalars, a single scalar, or a comma-separated
// string, trimming items and refusing empty ones.
func (v value) list() ([]string, bool) {
	var out []string
	switch n := v.node.(type) {
	case *ast.SequenceNode:
		ok := true
		for i, item := range n.Values {
			iv := value{d: v.d, node: unwrap(item), key: fmt.Sprintf("%s[%d]", v.key, i)}
			s, good := scalarText(iv.node)
			if !good {
				iv.errorf("expected a string, got %s", kind(iv.node))
				ok = false
				continue
			}
			s = strings.TrimSpace(s)
			if s == "" {
				iv.errorf("empty item")
				ok = false
				continue
			}
			if iv.placeholder(s) {
				ok = false
				continue
			}
			out = append(out, s)
		}
		return out, ok
	default:
		s, good := scalarText(v.node)
		if !good {
			v.errorf("expected a list or a comma-separated string, got %s", kind(v.node))
			return nil, false
		}
		ok := true
		for _, item := range strings.Split(s, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				v.errorf("empty item in the comma-separated list %q", s)
				return nil, false
			}
			if v.placeholder(item) {
				ok = false
				continue
			}
			out = append(out, item)
		}
		return out, ok
	}
}

func describe(n ast.Node) string {
	if s, ok := scalarText(n); ok {
		if _, isStr := n.(*ast.StringNode); isStr {
			return strconv.Quote(s)
		}
		return s
	}
	return kind(n)
}

// entry is one key of a mapping.
type entry struct {
	name string
	key  ast.Node
	val  value
}

// mapping returns the entries of a mapping value in file order, reporting
// duplicate keys and non-string keys. ok is false when v is not a mapping.
func (v value) mapping() ([]entry, bool) {
	var pairs []*ast.MappingValueNode
	switch n := v.node.(type) {
	case *ast.MappingNode:
		pairs = n.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{n}
	default:
		v.errorf("expected a mapping (key: value), got %s", kind(v.node))
		return nil, false
	}
	seen := map[string]ast.Node{}
	var out []entry
	for _, p := range pairs {
		kn := unwrap(p.Key)
		if _, isMerge := p.Key.(*ast.MergeKeyNode); isMerge {
			v.d.errorf(p.Key, v.key, "YAML merge keys (<<) are not supported")
			continue
		}
		name, ok := scalarText(kn)
		if !ok {
			v.d.errorf(p.Key, v.key, "a key must be a plain string, got %s", kind(kn))
			continue
		}
		path := name
		if v.key != "" {
			path = v.key + "." + name
		}
		if first, dup := seen[name]; dup {
			v.d.errorf(p.Key, path, "duplicate key (first set on line %d)", first.GetToken().Position.Line)
			continue
		}
		seen[name] = kn
		val := unwrap(p.Value)
		if val == nil {
			val = &ast.NullNode{BaseNode: &ast.BaseNode{}, Token: p.Key.GetToken()}
		}
		if _, isAlias := val.(*ast.AliasNode); isAlias {
			v.d.errorf(val, path, "YAML aliases (*name) are not supported; write the value out")
			continue
		}
		out = append(out, entry{name: name, key: kn, val: value{d: v.d, node: val, key: path, name: name}})
	}
	return out, true
}

// field is one known key of a mapping and what to do with its value.
type field struct {
	name string
	set  func(v value)
}

// decode walks a mapping, calling the matching field's setter for every
// non-null value and reporting unknown keys with close matches. It returns
// the set of keys present (null values included).
func (v value) decode(fields []field, hint func(name string) string) map[string]bool {
	entries, ok := v.mapping()
	if !ok {
		return nil
	}
	present := map[string]bool{}
	for _, e := range entries {
		var f *field
		for i := range fields {
			if fields[i].name == e.name {
				f = &fields[i]
				break
			}
		}
		if f == nil {
			msg := "unknown key"
			if hint != nil {
				if h := hint(e.name); h != "" {
					msg += "; " + h
				}
			}
			names := make([]string, len(fields))
			for i := range fields {
				names[i] = fields[i].name
			}
			if s := suggest(e.name, names); s != "" && !strings.Contains(msg, "did you mean") {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			v.d.errorf(e.key, e.val.key, "%s", msg)
			continue
		}
		present[e.name] = true
		if e.val.isNull() {
			continue
		}
		f.set(e.val)
	}
	return present
}

// suggest returns the known name closest to name, if close enough.
func suggest(name string, known []string) string {
	best, bestD := "", 1<<30
	ln := strings.ToLower(name)
	for _, k := range known {
		lk := strings.ToLower(k)
		d := levenshtein(ln, lk)
		if strings.ReplaceAll(ln, "_", "") == strings.ReplaceAll(lk, "_", "") {
			d = 0
		} else if len(lk) >= 4 && len(ln) >= 4 && (strings.HasPrefix(ln, lk) || strings.HasPrefix(lk, ln)) {
			d = min(d, 2)
		}
		if d < bestD {
			best, bestD = k, d
		}
	}
	limit := 2
	if len(name) > 8 {
		limit = 3
	}
	if bestD <= limit {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// sortedKeys is a small helper for deterministic messages.
func sortedKeys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
