package hf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ohfp/ohfp/internal/english"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits the parsers enforce.
const (
	// MaxInputBytes is the largest HF document ohfp accepts (4 MiB).
	MaxInputBytes = 4 << 20
	// MaxDepth is how deeply objects and arrays may nest.
	MaxDepth = 32
	// MaxMachineCount is the most units one requestMachines may ask for.
	MaxMachineCount = 100000
	// MaxIDLength is the longest requestId, machineId or name accepted.
	MaxIDLength = 256
	// MaxTemplateIDLength is the longest templateId (HF-CONTRACT.md).
	MaxTemplateIDLength = 64
)

// InputError is a document HF (or a person) sent that ohfp refuses. Its
// message names the operation, the field and what to do, for example
//
//	requestMachines: template.machineCount must be a positive whole number, got "abc"
type InputError struct {
	Op      string // the HF operation, e.g. "requestMachines"
	Field   string // the field's path, e.g. "template.machineCount"; "" for the whole document
	Problem string // what is wrong and what to do
}

// Error returns "op: field problem".
func (e *InputError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteByte(' ')
	}
	b.WriteString(e.Problem)
	return b.String()
}

// RequestMachines is the parsed input of requestMachines.
type RequestMachines struct {
	TemplateID   string `json:"templateId"`
	MachineCount int    `json:"machineCount"`
	// RcAccount is LSF's resource connector "rc_account" (the account the
	// hosts are for; IBM's plugins tag the instances RC_ACCOUNT with it and
	// export it to the host's user data). Empty: not given.
	RcAccount string `json:"rc_account,omitempty"`
	// ClusterName is the cluster LSF calls for (clusterName= in the
	// caller's SCRIPT_OPTIONS, not the document); set by the caller.
	ClusterName string `json:"-"`
}

// MaxRcAccount bounds rc_account: it becomes an EC2 tag value, at most
// 256 characters (EC2 User Guide, "Tag restrictions").
const MaxRcAccount = 256

// MachineRef names one machine HF holds: by machineId (the instance id),
// falling back to name (the host name). At least one is set.
type MachineRef struct {
	Name      string `json:"name,omitempty"`
	MachineID string `json:"machineId,omitempty"`
}

// examples shown when a document is empty or has the wrong shape.
var examples = map[string]string{
	OpGetAvailableTemplates: `{}`,
	OpRequestMachines:       `{"template": {"templateId": "OnDemand-c5", "machineCount": 3}}`,
	OpGetRequestStatus:      `{"requests": [{"requestId": "req-..."}]}`,
	OpRequestReturnMachines: `{"machines": [{"name": "ip-10-0-0-1.ec2.internal", "machineId": "i-0123456789abcdef0"}]}`,
	OpGetReturnRequests:     `{"machines": [{"name": "ip-10-0-0-1.ec2.internal", "machineId": "i-0123456789abcdef0"}]}`,
}

// Validate parses data as the input of operation op and returns the parse
// error, if any. An unknown op is an *InputError too.
func Validate(op string, data []byte) error {
	var err error
	switch op {
	case OpGetAvailableTemplates:
		err = ParseGetAvailableTemplates(data)
	case OpRequestMachines:
		_, err = ParseRequestMachines(data)
	case OpGetRequestStatus:
		_, err = ParseRequestStatus(data)
	case OpRequestReturnMachines:
		_, err = ParseReturnMachines(data)
	case OpGetReturnRequests:
		_, err = ParseGetReturnRequests(data)
	default:
		return &InputError{Op: op, Problem: "is not an HF operation; use one of " + strings.Join(Operations, ", ")}
	}
	return err
}

// ParseGetAvailableTemplates checks the input of getAvailableTemplates: any
// well-formed JSON object (HF sends {}); its fields are ignored.
func ParseGetAvailableTemplates(data []byte) error {
	_, err := decodeObject(OpGetAvailableTemplates, data)
	return err
}

// ParseRequestMachines parses {"template": {"templateId": ID, "machineCount": N}}.
func ParseRequestMachines(data []byte) (RequestMachines, error) {
	const op = OpRequestMachines
	root, err := decodeObject(op, data)
	if err != nil {
		return RequestMachines{}, err
	}
	tv, ok := root["template"]
	if !ok {
		return RequestMachines{}, &InputError{op, "template", "is missing: expected " + examples[op]}
	}
	tm, ok := tv.(map[string]any)
	if !ok {
		return RequestMachines{}, &InputError{op, "template", "must be an object such as {\"templateId\": \"OnDemand-c5\", \"machineCount\": 3}, got " + describe(tv)}
	}
	id, err := templateID(op, "template.templateId", tm)
	if err != nil {
		return RequestMachines{}, err
	}
	n, err := machineCount(op, "template.machineCount", tm)
	if err != nil {
		return RequestMachines{}, err
	}
	acct, err := rcAccount(op, root)
	if err != nil {
		return RequestMachines{}, err
	}
	return RequestMachines{TemplateID: id, MachineCount: n, RcAccount: acct}, nil
}

// rcAccount reads LSF's optional top-level "rc_account": a string of at
// most MaxRcAccount characters without control characters (it is an EC2
// tag value and a shell variable of the host's user data).
func rcAccount(op string, root map[string]any) (string, error) {
	v, ok := root["rc_account"]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", &InputError{op, "rc_account", "must be a string such as \"default\" (LSF's account of the hosts), got " + describe(v)}
	}
	if utf8.RuneCountInString(s) > MaxRcAccount {
		return "", &InputError{op, "rc_account", fmt.Sprintf("is %s; an EC2 tag value holds at most %d", english.Plural(utf8.RuneCountInString(s), "character"), MaxRcAccount)}
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", &InputError{op, "rc_account", fmt.Sprintf("%q has a control character; give a plain account name", s)}
		}
	}
	return s, nil
}

// ParseRequestStatus parses {"requests": [{"requestId": ID}, ...]} (or a
// single object instead of the list) and returns the ids in order. An empty
// list is accepted and yields no ids.
func ParseRequestStatus(data []byte) ([]string, error) {
	if ids, ok := fastRequestIDs(data); ok {
		return ids, nil
	}
	return requestStatusTree(data)
}

// fastRequestIDs reads a plain list of good ids without building a tree;
// ok is false when requestStatusTree must read the document.
func fastRequestIDs(data []byte) ([]string, bool) {
	if len(data) > MaxInputBytes {
		return nil, false
	}
	ids := []string{}
	_, ok := fastList(data, "requests", requestFields, func(v []string) bool {
		ids = append(ids, v[0])
		return v[0] != "" && goodID(v[0])
	})
	if !ok {
		return nil, false
	}
	return ids, true
}

// requestStatusTree is ParseRequestStatus on the decoded tree.
func requestStatusTree(data []byte) ([]string, error) {
	const op = OpGetRequestStatus
	root, err := decodeObject(op, data)
	if err != nil {
		return nil, err
	}
	rv, ok := root["requests"]
	if !ok {
		return nil, &InputError{op, "requests", "is missing: expected " + examples[op]}
	}
	var items []any
	path := func(i int) string { return "requests[" + strconv.Itoa(i) + "]" } // built only for a message
	switch v := rv.(type) {
	case []any:
		items = v
	case map[string]any:
		items = []any{v}
		path = func(int) string { return "requests" }
	default:
		return nil, &InputError{op, "requests", "must be a list of {\"requestId\": \"req-...\"} objects, got " + describe(rv)}
	}
	ids := make([]string, 0, len(items))
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, &InputError{op, path(i), "must be an object such as {\"requestId\": \"req-...\"}, got " + describe(it)}
		}
		id, err := idString(op, func() string { return path(i) + ".requestId" }, m, "requestId", true)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// ParseReturnMachines parses the input of requestReturnMachines:
// {"machines": [{"name": ..., "machineId": ...}, ...]}, at least one machine.
func ParseReturnMachines(data []byte) ([]MachineRef, error) {
	return parseMachines(OpRequestReturnMachines, data, true)
}

// ParseGetReturnRequests parses the input of getReturnRequests: every host HF
// holds, {"machines": [{"name": ..., "machineId": ...}, ...]}. The list may
// be empty or missing (HF holds nothing).
func ParseGetReturnRequests(data []byte) ([]MachineRef, error) {
	return parseMachines(OpGetReturnRequests, data, false)
}

func parseMachines(op string, data []byte, required bool) ([]MachineRef, error) {
	if refs, ok := fastMachines(data, required); ok {
		return refs, nil
	}
	return machinesTree(op, data, required)
}

// The members fastRequestIDs and fastMachines read, in their value order.
var (
	requestFields = []string{"requestId"}
	machineFields = []string{"machineId", "name"}
)

// fastMachines reads a plain list of good machine references without
// building a tree (getReturnRequests sends every host HF holds); ok is false
// when machinesTree must read the document.
func fastMachines(data []byte, required bool) ([]MachineRef, bool) {
	if len(data) > MaxInputBytes {
		return nil, false
	}
	out := make([]MachineRef, 0, bytes.Count(data, []byte{'{'})) // one '{' per machine, and the document's
	n, ok := fastList(data, "machines", machineFields, func(v []string) bool {
		id, name := v[0], v[1]
		out = append(out, MachineRef{Name: name, MachineID: id})
		return goodRef(id, name)
	})
	if !ok || required && n == 0 {
		return nil, false
	}
	return out, true
}

// goodRef is what fastMachines and ScanGetReturnRequests accept of a
// machine reference; machinesTree refuses the others, with its message.
func goodRef[S string | []byte](id, name S) bool {
	return (len(id) > 0 || len(name) > 0) && len(id) <= MaxIDLength && len(name) <= MaxIDLength
}

// ScanGetReturnRequests reads the input of getReturnRequests as
// ParseGetReturnRequests does, without a copy: it hands each machine's id
// and name to each as they stand in data, valid only during the call
// (empty when absent or null). ok is false when it cannot read the
// document (each may have been called for some machines by then): the
// caller then has ParseGetReturnRequests read it, or say what is wrong.
// getReturnRequests brings every host HF holds; copying them all (720 KB
// at 10,000 hosts) only to look each up once was half the parse.
func ScanGetReturnRequests(data []byte, each func(machineID, name []byte)) (n int, ok bool) {
	if len(data) > MaxInputBytes {
		return 0, false
	}
	return scanList(data, "machines", machineFields, func(v [][]byte) bool {
		if !goodRef(v[0], v[1]) {
			return false
		}
		each(v[0], v[1])
		return true
	})
}

// machinesTree is parseMachines on the decoded tree.
func machinesTree(op string, data []byte, required bool) ([]MachineRef, error) {
	root, err := decodeObject(op, data)
	if err != nil {
		return nil, err
	}
	mv, ok := root["machines"]
	if !ok || mv == nil {
		if required {
			return nil, &InputError{op, "machines", "is missing: expected " + examples[op]}
		}
		return []MachineRef{}, nil
	}
	var items []any
	path := func(i int) string { return "machines[" + strconv.Itoa(i) + "]" } // built only for a message
	switch v := mv.(type) {
	case []any:
		items = v
	case map[string]any:
		items = []any{v}
		path = func(int) string { return "machines" }
	default:
		return nil, &InputError{op, "machines", "must be a list of {\"name\": \"...\", \"machineId\": \"...\"} objects, got " + describe(mv)}
	}
	if required && len(items) == 0 {
		return nil, &InputError{op, "machines", "is empty: list at least one machine to return, e.g. " + examples[op]}
	}
	out := make([]MachineRef, 0, len(items))
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, &InputError{op, path(i), "must be an object such as {\"name\": \"ip-10-0-0-1.ec2.internal\", \"machineId\": \"i-0123456789abcdef0\"}, got " + describe(it)}
		}
		id, err := idString(op, func() string { return path(i) + ".machineId" }, m, "machineId", false)
		if err != nil {
			return nil, err
		}
		name, err := idString(op, func() string { return path(i) + ".name" }, m, "name", false)
		if err != nil {
			return nil, err
		}
		if id == "" && name == "" {
			return nil, &InputError{op, path(i), "needs a machineId or a name, e.g. {\"name\": \"ip-10-0-0-1.ec2.internal\", \"machineId\": \"i-0123456789abcdef0\"}"}
		}
		out = append(out, MachineRef{Name: name, MachineID: id})
	}
	return out, nil
}

// templateID reads and checks m["templateId"]: 1-64 of [A-Za-z0-9_-].
func templateID(op, path string, m map[string]any) (string, error) {
	v, ok := m["templateId"]
	if !ok {
		return "", &InputError{op, path, "is missing: name one of the templates getAvailableTemplates lists"}
	}
	s, ok := v.(string)
	if !ok {
		return "", &InputError{op, path, "must be a string naming a template, got " + describe(v)}
	}
	if !ValidTemplateID(s) {
		return "", &InputError{op, path, "must be 1 to 64 letters, digits, '_' or '-', got " + quote(s)}
	}
	return s, nil
}

// ValidTemplateID reports whether s is 1-64 of [A-Za-z0-9_-].
func ValidTemplateID(s string) bool {
	if len(s) == 0 || len(s) > MaxTemplateIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// machineCount reads and checks m["machineCount"]: a whole number in
// 1..MaxMachineCount, written as a JSON number.
func machineCount(op, path string, m map[string]any) (int, error) {
	v, ok := m["machineCount"]
	if !ok {
		return 0, &InputError{op, path, "is missing: say how many machines (units) to add, e.g. 3"}
	}
	num, ok := v.(json.Number)
	if !ok {
		return 0, &InputError{op, path, "must be a positive whole number, got " + describe(v)}
	}
	s := string(num)
	if strings.ContainsAny(s, ".eE") || strings.HasPrefix(s, "-") {
		return 0, &InputError{op, path, "must be a positive whole number, got " + clip(s)}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > MaxMachineCount {
		return 0, &InputError{op, path, "is " + clip(s) + ", more than the " + strconv.Itoa(MaxMachineCount) + " units ohfp accepts in one request; split it into smaller requests"}
	}
	if n <= 0 {
		return 0, &InputError{op, path, "must be a positive whole number, got " + s}
	}
	return int(n), nil
}

// idString reads m[key] as an identifier: a string of at most MaxIDLength
// bytes without control characters. Absent or null gives "" unless
// required; required ids must also be non-empty. path gives the field's
// path for a message.
func idString(op string, path func() string, m map[string]any, key string, required bool) (string, error) {
	v, ok := m[key]
	if !ok || v == nil {
		if required {
			return "", &InputError{op, path(), "is missing: give the id requestMachines or requestReturnMachines answered, e.g. \"req-...\""}
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", &InputError{op, path(), "must be a string, got " + describe(v)}
	}
	if s == "" && required {
		return "", &InputError{op, path(), "is empty: give the id requestMachines or requestReturnMachines answered"}
	}
	if len(s) > MaxIDLength {
		return "", &InputError{op, path(), "is " + strconv.Itoa(len(s)) + " bytes long, more than the " + strconv.Itoa(MaxIDLength) + " ohfp accepts"}
	}
	if hasControl(s) {
		return "", &InputError{op, path(), "contains a control character, got " + quote(s)}
	}
	return s, nil
}

// goodID reports whether idString takes s as it is, given that fastList
// has ruled out control characters: at most MaxIDLength bytes.
func goodID(s string) bool { return len(s) <= MaxIDLength }

// hasControl reports whether s holds a control character (ASCII, so bytes
// will do).
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

// decodeObject checks data against the rules every HF document obeys and
// returns its top-level object. Values are map[string]any, []any, string,
// json.Number, bool or nil.
func decodeObject(op string, data []byte) (map[string]any, error) {
	if len(data) > MaxInputBytes {
		return nil, &InputError{op, "", "input is " + strconv.Itoa(len(data)) + " bytes, more than the " + strconv.Itoa(MaxInputBytes) + " bytes (4 MiB) ohfp accepts"}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &InputError{op, "", "input is empty: expected a JSON document such as " + examples[op]}
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, &InputError{op, "", "input contains a NUL byte at " + where(data, int64(i)) + ": send a plain JSON text document"}
	}
	if !utf8.Valid(data) {
		i := firstInvalidUTF8(data)
		return nil, &InputError{op, "", "input is not valid UTF-8 at " + where(data, int64(i)) + ": send the document encoded in UTF-8"}
	}
	if m, ok := fastObject(data); ok {
		return m, nil
	}
	return referenceObject(op, data)
}

// referenceObject is the reference path, for documents fastObject refuses:
// encoding/json's full scan first, as its syntax errors carry exact
// offsets, then the walker. It finds what is wrong and says where.
func referenceObject(op string, data []byte) (map[string]any, error) {
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) && se.Error() == "unexpected end of JSON input" {
			return nil, &InputError{op, "", "input is not valid JSON: it ends early at " + where(data, int64(len(data))) + " (truncated document?)"}
		}
		if errors.As(err, &se) {
			return nil, &InputError{op, "", "input is not valid JSON at " + where(data, se.Offset-1) + ": " + se.Error()}
		}
		return nil, &InputError{op, "", "input is not valid JSON: " + err.Error()}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	w := walker{op: op, dec: dec, data: data}
	v, err := w.value(0, "")
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &InputError{op, "", "input has more data after the JSON document at " + where(data, dec.InputOffset()) + ": send exactly one JSON object"}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &InputError{op, "", "input must be a JSON object such as " + examples[op] + ", got " + describe(v)}
	}
	return m, nil
}

type walker struct {
	op   string
	dec  *json.Decoder
	data []byte
}

// syntax turns a decoder error into an InputError that says where.
func (w *walker) syntax(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &InputError{w.op, "", "input is not valid JSON at " + where(w.data, se.Offset-1) + ": " + se.Error()}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &InputError{w.op, "", "input is not valid JSON: it ends early at " + where(w.data, int64(len(w.data))) + " (truncated document?)"}
	}
	return &InputError{w.op, "", "input is not valid JSON at " + where(w.data, w.dec.InputOffset()) + ": " + err.Error()}
}

// value reads one JSON value, checking depth, duplicate keys and NULs.
func (w *walker) value(depth int, path string) (any, error) {
	tok, err := w.dec.Token()
	if err != nil {
		return nil, w.syntax(err)
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth+1 > MaxDepth {
			return nil, &InputError{w.op, "", "input nests objects and arrays deeper than " + strconv.Itoa(MaxDepth) + " levels at " + where(w.data, w.dec.InputOffset()-1) + ": HF documents are shallow"}
		}
		if t == '{' {
			m := map[string]any{}
			for w.dec.More() {
				kt, err := w.dec.Token()
				if err != nil {
					return nil, w.syntax(err)
				}
				k, ok := kt.(string)
				if !ok { // unreachable: the decoder only yields string keys
					return nil, &InputError{w.op, "", "input has a non-string key at " + where(w.data, w.dec.InputOffset())}
				}
				kp := join(path, k)
				if strings.IndexByte(k, 0) >= 0 {
					return nil, &InputError{w.op, kp, "is a key containing a NUL character (\\u0000); remove it"}
				}
				if _, dup := m[k]; dup {
					return nil, &InputError{w.op, kp, "appears twice (duplicate key at " + where(w.data, w.dec.InputOffset()) + "); keep only one"}
				}
				v, err := w.value(depth+1, kp)
				if err != nil {
					return nil, err
				}
				m[k] = v
			}
			if _, err := w.dec.Token(); err != nil {
				return nil, w.syntax(err)
			}
			return m, nil
		}
		a := []any{}
		for i := 0; w.dec.More(); i++ {
			v, err := w.value(depth+1, path+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		if _, err := w.dec.Token(); err != nil {
			return nil, w.syntax(err)
		}
		return a, nil
	case string:
		if strings.IndexByte(t, 0) >= 0 {
			field := path
			if field == "" {
				field = "input"
			}
			return nil, &InputError{w.op, field, "contains a NUL character (\\u0000); remove it"}
		}
		return t, nil
	default: // json.Number, bool, nil
		return t, nil
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// where describes a byte offset as "line L, column C" (columns count bytes).
func where(data []byte, off int64) string {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line, col := 1, 1
	for _, c := range data[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return "line " + strconv.Itoa(line) + ", column " + strconv.Itoa(col)
}

func firstInvalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(data)
}

// describe names a decoded value's type and, for scalars, its value.
func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case bool:
		if t {
			return "true"
		}
		return "false"
	case string:
		return quote(t)
	case json.Number:
		return "the number " + clip(string(t))
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return "an unexpected value"
}

// quote quotes s for a message, shortening long values.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "... (" + strconv.Itoa(len(s)) + " bytes)"
	}
	return strconv.Quote(s)
}

// clip shortens a long number literal for a message.
func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "... (" + strconv.Itoa(len(s)) + " digits)"
	}
	return s
}
