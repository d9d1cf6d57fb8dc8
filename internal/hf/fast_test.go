package hf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The fast path must build exactly the reference path's tree for every
// document it accepts, and accept nothing the reference path refuses.
func checkFastAgrees(t *testing.T, data []byte) {
	t.Helper()
	fast, ok := fastObject(data)
	if !ok {
		return
	}
	ref, err := referenceObject("test", data)
	if err != nil {
		t.Fatalf("fast path accepted %q, the reference path refuses it: %v", clipBytes(data), err)
	}
	if !reflect.DeepEqual(fast, ref) {
		t.Fatalf("fast and reference trees differ for %q:\nfast %#v\nref  %#v", clipBytes(data), fast, ref)
	}
}

func clipBytes(b []byte) []byte {
	if len(b) > 300 {
		return b[:300]
	}
	return b
}

func FuzzFastObject(f *testing.F) {
	// Every seed of the parsers' fuzz targets, and the golden inputs.
	for _, dir := range []string{"testdata/fuzz/*/*", "testdata/golden/*.json"} {
		files, _ := filepath.Glob(dir)
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(seedBytes(b))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkFastAgrees(t, data) })
}

// seedBytes takes the value out of a "go test fuzz v1" corpus file, or
// returns b as is.
func seedBytes(b []byte) []byte {
	s := string(b)
	if !strings.HasPrefix(s, "go test fuzz v1\n") {
		return b
	}
	line := strings.TrimSpace(strings.TrimPrefix(s, "go test fuzz v1\n"))
	var v []byte
	if _, err := fmt.Sscanf(strings.TrimSuffix(strings.TrimPrefix(line, "[]byte("), ")"), "%q", &v); err != nil {
		return b
	}
	return v
}

// The cases where the two paths must part: the fast one refuses, so that
// the reference one names the problem.
func TestFastObjectRefusesWhatNeedsAMessage(t *testing.T) {
	deep := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	for _, doc := range []string{
		`{"a":1,"a":2}`,          // duplicate key
		`{"a":1,"\u0061":2}`,     // duplicate once unescaped
		`{"a":"x\u0000y"}`,       // NUL in a string
		`{"a\u0000":1}`,          // NUL in a key
		`{"a":` + deep + `}`,     // nesting deeper than MaxDepth
		`{"a":1} {}`,             // trailing data
		`{"a":1}]`,               // trailing garbage
		`[]`, `"x"`, `1`, `null`, // not an object
		`{"a":01}`, `{"a":1.}`, `{a:1}`, // syntax
		`{"a":"\ud800"}`,  // a lone surrogate (encoding/json makes it U+FFFD)
		`{"a":1`, ``, ` `, // truncated, empty
	} {
		if _, ok := fastObject([]byte(doc)); ok {
			t.Errorf("fast path accepted %q", doc)
		}
		checkFastAgrees(t, []byte(doc))
	}
	// The limit itself is fine.
	ok := `{"a":` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `}`
	if _, good := fastObject([]byte(ok)); !good {
		t.Errorf("fast path refused nesting of exactly MaxDepth")
	}
	checkFastAgrees(t, []byte(ok))
}

func TestFastObjectMatchesReference(t *testing.T) {
	var big bytes.Buffer
	big.WriteString(`{"machines":[`)
	for i := range 2000 {
		if i > 0 {
			big.WriteString(",\n ")
		}
		fmt.Fprintf(&big, `{"name":"ip-10-0-%d-%d.ec2.internal","machineId":"i-%017x","extra":[1,-2.5e3,true,false,null,{"k":"\u00e9\t\"\\/"}]}`, i/256, i%256, i)
	}
	big.WriteString("]}")
	for _, doc := range []string{
		`{}`, ` { } `, `{"template":{"templateId":"OnDemand-c5","machineCount":3}}`,
		`{"requests":[{"requestId":"req-1"},{"requestId":"req-2"}]}`,
		`{"x":"\ud83d\ude00","y":-0,"z":1E+2,"w":[[]],"v":{"":""}}`,
		big.String(),
	} {
		if _, ok := fastObject([]byte(doc)); !ok {
			t.Errorf("fast path refused the well-formed %q", clipBytes([]byte(doc)))
		}
		checkFastAgrees(t, []byte(doc))
	}
}

// checkFastList: what the map-free readers accept, the tree readers read
// the same way.
func checkFastList(t *testing.T, data []byte) {
	t.Helper()
	if ids, ok := fastRequestIDs(data); ok {
		ref, err := requestStatusTree(data)
		if err != nil || !reflect.DeepEqual(ids, ref) {
			t.Fatalf("%q: fast ids %q, tree %q (%v)", clipBytes(data), ids, ref, err)
		}
	}
	var scanned []MachineRef
	_, okScan := ScanGetReturnRequests(data, func(id, name []byte) {
		scanned = append(scanned, MachineRef{Name: string(name), MachineID: string(id)})
	})
	if refs, ok := fastMachines(data, false); ok != okScan || ok && len(refs) != len(scanned) {
		t.Fatalf("%q: ScanGetReturnRequests %v with %d, fastMachines %v with %d", clipBytes(data), okScan, len(scanned), ok, len(refs))
	} else if ok && len(refs) > 0 && !reflect.DeepEqual(refs, scanned) {
		t.Fatalf("%q: ScanGetReturnRequests %q, fastMachines %q", clipBytes(data), scanned, refs)
	}
	for _, req := range []bool{false, true} {
		if refs, ok := fastMachines(data, req); ok {
			ref, err := machinesTree(OpGetReturnRequests, data, req)
			if err != nil || !reflect.DeepEqual(refs, ref) {
				t.Fatalf("%q (required %v): fast %q, tree %q (%v)", clipBytes(data), req, refs, ref, err)
			}
		}
	}
}

var fastListCases = []string{
	`{"requests":[{"requestId":"req-1"},{"requestId":"ret-2"}]}`,
	`{"requests":[]}`,
	`{"machines":[]}`,
	`{"machines":[{"name":"h1","machineId":"i-1"},{"machineId":"i-2"},{"name":"h3","machineId":null},{"name":"é h4"}]}`,
	` {"machines" : [ {"name": "h1"} ] } `,
	`{"requests":{"requestId":"req-1"}}`,           // a single object: the tree path
	`{"requests":[{"requestId":""}]}`,              // empty id
	`{"requests":[{"requestId":null}]}`,            // null id
	`{"requests":[{}]}`,                            // missing id
	`{"requests":[{"requestId":"a\tb"}]}`,          // control character
	`{"requests":[{"requestId":"req-1","x":1}]}`,   // unknown member
	`{"machines":[{"name":"h","name":"g"}]}`,       // duplicate member
	`{"machines":[{"name":"h","\u006eame":"g"}]}`,  // duplicate once unescaped
	`{"machines":[{"name":"\u0068"}]}`,             // an escape: the tree path reads it
	`{"machines":[{"name":"h\u007f"}]}`,            // DEL, escaped
	"{\"machines\":[{\"name\":\"h\x7f\"}]}",        // DEL, raw
	"{\"machines\":[{\"name\":\"h\xff\"}]}",        // not UTF-8
	`{"machines":[{}]}`,                            // neither id nor name
	`{"machines":[{"name":1}]}`,                    // not a string
	`{"machines":[{"name":"a\u0000b"}]}`,           // NUL
	`{"machines":[{"name":"h"}],"x":1}`,            // another member
	`{"machines":null}`, `{}`, `{"machines":[]} x`, // the tree path decides
	`{"machines":[{"name":"` + strings.Repeat("h", MaxIDLength+1) + `"}]}`,
}

func FuzzFastList(f *testing.F) {
	for _, s := range fastListCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkFastList(t, data) })
}

func TestFastList(t *testing.T) {
	for i, s := range fastListCases {
		checkFastList(t, []byte(s))
		_, okIDs := fastRequestIDs([]byte(s))
		_, okRefs := fastMachines([]byte(s), false)
		if want := i < 5; (okIDs || okRefs) != want {
			t.Errorf("%s: fast path took it: %v, want %v", s, okIDs || okRefs, want)
		}
	}
	if _, ok := fastMachines([]byte(`{"machines":[]}`), true); ok {
		t.Error("fast path took an empty list that must be refused")
	}
	// A document over the limit is never read by the fast path.
	big := `{"requests":[` + strings.Repeat(`{"requestId":"req-1"},`, MaxInputBytes/20) + `{"requestId":"req-1"}]}`
	if _, ok := fastRequestIDs([]byte(big)); ok {
		t.Error("fast path read a document over MaxInputBytes")
	}
}

// stopMask must find the first of stops in a word, whatever follows it:
// every byte value at every position, then random words rich in stops.
func TestStopMask(t *testing.T) {
	first := func(w [8]byte) int {
		for i, c := range w {
			if stops[c] {
				return i
			}
		}
		return 8
	}
	check := func(w [8]byte) {
		m := stopMask(binary.LittleEndian.Uint64(w[:]))
		got := 8
		if m != 0 {
			got = bits.TrailingZeros64(m) >> 3
		}
		if want := first(w); got != want {
			t.Fatalf("stopMask(%q) finds byte %d, want %d", w[:], got, want)
		}
	}
	for p := range 8 {
		for c := range 256 {
			for _, fill := range []byte{'a', 0xff, 0x80, 0x20, 0x00, '"'} {
				var w [8]byte
				for i := range w {
					w[i] = 'a'
					if i > p {
						w[i] = fill
					}
				}
				w[p] = byte(c)
				check(w)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	pick := []byte{'"', '\\', 0x7f, 0x00, 0x01, 0x1f, 0x20, 0x21, 0x7e, 0x80, 0xff, '!', '#', '[', ']', 'a'}
	for range 1 << 20 {
		var w [8]byte
		for i := range w {
			if r.IntN(2) == 0 {
				w[i] = pick[r.IntN(len(pick))]
			} else {
				w[i] = byte(r.IntN(256))
			}
		}
		check(w)
	}
}
