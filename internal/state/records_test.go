package state

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/domain"
	"github.com/ohfp/ohfp/internal/provider"
	"github.com/ohfp/ohfp/internal/store"
	"github.com/ohfp/ohfp/internal/store/storetest"
)

// noCloud satisfies New's check for a cloud; load never calls it.
type noCloud struct{ provider.Provider }

func newT(t *testing.T, kv KV) (*State, error) {
	t.Helper()
	return New(Options{Store: kv, Providers: []ProviderConfig{{Name: "aws", Cloud: noCloud{}}}})
}

// The records this build writes are, byte for byte, the current schema's
// fixture (storetest/testdata): a record field renamed, added or dropped
// shows here and needs a new schema and a migration.
func TestRecordsGolden(t *testing.T) {
	var got []storetest.Record
	for _, r := range fixtureRequests() {
		b, err := encodeRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, storetest.Record{Key: KeyRequest + r.ID, Value: b})
	}
	for _, m := range fixtureMachines() {
		b, err := encodeMachine(m)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, storetest.Record{Key: KeyMachine + m.ID, Value: b})
	}
	for _, ti := range fixtureTypes() {
		b, err := encodeType(ti)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, storetest.Record{Key: KeyTypeInfo + ti.Name, Value: b})
	}
	want := storetest.V2Records()
	if recordVersion != 2 || store.SchemaVersion != 2 {
		t.Fatalf("recordVersion %d, store schema %d: compare with that schema's fixture", recordVersion, store.SchemaVersion)
	}
	if len(got) != len(want) {
		t.Fatalf("%d records, the fixture has %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Key != want[i].Key || !bytes.Equal(got[i].Value, want[i].Value) {
			t.Errorf("%s encodes as\n  %s\nthe fixture says %s\n  %s", got[i].Key, got[i].Value, want[i].Key, want[i].Value)
		}
	}
}

// wantFixture checks that s holds the fixture's domain values, with the
// in-memory mirror of AwaitingClaim rebuilt from the requests.
func wantFixture(t *testing.T, s *State) {
	t.Helper()
	reqs, ms := fixtureRequests(), fixtureMachines()
	if len(s.Requests) != len(reqs) || len(s.Machines) != len(ms) {
		t.Fatalf("loaded %d requests, %d machines; want %d, %d", len(s.Requests), len(s.Machines), len(reqs), len(ms))
	}
	for _, want := range reqs {
		if got := s.Requests[want.ID]; !reflect.DeepEqual(got, want) {
			t.Errorf("request %s loaded as\n  %s\nwant\n  %s", want.ID, diff(got, want), diff(want, got))
		}
	}
	awaiting := map[string]bool{"i-000000000000000a": true, "i-000000000000000b": true, "i-000000000000000d": true}
	for _, want := range ms {
		want.AwaitingClaim = awaiting[want.ID]
		if got := s.Machines[want.ID]; !reflect.DeepEqual(got, want) {
			t.Errorf("machine %s loaded as\n  %s\nwant\n  %s", want.ID, diff(got, want), diff(want, got))
		}
		if want.Name != "" && s.ByName[want.Name] != s.Machines[want.ID] {
			t.Errorf("machine %s not indexed by its name %s", want.ID, want.Name)
		}
	}
	// The rule: a record without awaitingClaim is claimed.
	if s.Requests["req-00000002"].AwaitingClaim || s.Machines["i-000000000000000c"].AwaitingClaim {
		t.Error("a request record without awaitingClaim was taken as awaiting HF's claim")
	}
	for _, want := range fixtureTypes() {
		if got := s.TypeInfo[want.Name]; got != want {
			t.Errorf("instance type %s loaded as %+v, want %+v", want.Name, got, want)
		}
	}
}

// diff lists a's fields that differ from b's.
func diff(a, b any) string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.IsNil() || vb.IsNil() {
		return fmt.Sprint(a)
	}
	va, vb = va.Elem(), vb.Elem()
	var out []string
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, fmt.Sprintf("%s=%v", va.Type().Field(i).Name, va.Field(i).Interface()))
		}
	}
	return strings.Join(out, " ")
}

// The migration records-v2 end to end: a state directory as ohfpd left it
// at schema 1 opens migrated and loads into the domain values it was
// written from, the AwaitingClaim rule and mirror included; written back
// by this build it is byte for byte the same; and after a restart it loads
// the same again.
func TestLoadSchemaV1Store(t *testing.T) {
	dir := t.TempDir()
	if err := storetest.WriteV1(dir, "c1", storetest.V1Records()); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newT(t, st)
	if err != nil {
		t.Fatal(err)
	}
	wantFixture(t, s)

	before := map[string]string{}
	st.Scan("", func(k string, v []byte) error { before[k] = string(v); return nil })
	if err := s.Persist(Values(s.Requests), machinesOf(s)); err != nil {
		t.Fatal(err)
	}
	for _, ti := range s.TypeInfo {
		s.CacheTypeInfo(ti)
	}
	st.Scan("", func(k string, v []byte) error {
		if before[k] != string(v) {
			t.Errorf("%s written back as\n  %s\nmigrated as\n  %s", k, v, before[k])
		}
		return nil
	})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = store.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err = newT(t, st)
	if err != nil {
		t.Fatal(err)
	}
	wantFixture(t, s)
}

func machinesOf(s *State) []*domain.Machine {
	var out []*domain.Machine
	for _, m := range s.Machines {
		out = append(out, m)
	}
	return out
}

// A request or machine record that no migration converted (no version, or
// another) stops the load with a message naming it; an instance type
// record is a cache and is dropped instead.
func TestUnmigratedRecordRefused(t *testing.T) {
	for _, tc := range []struct{ key, value, want string }{
		{"r/req-1", `{"id":"req-1","kind":"acquire"}`, "record r/req-1 has format version 0, this ohfpd reads version 2"},
		{"m/i-1", `{"v":3,"id":"i-1"}`, "record m/i-1 has format version 3, this ohfpd reads version 2"},
		{"m/i-2", `{"v":2,"id":`, "record m/i-2: unexpected end of JSON input"},
	} {
		st, err := store.OpenInMemory(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Write(store.Op{Key: tc.key, Value: []byte(tc.value)}, store.Op{Key: "t/x1", Value: []byte(`{"Name":"x1","VCPUs":2}`)}); err != nil {
			t.Fatal(err)
		}
		_, err = newT(t, st)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New with %s = %v, want an error mentioning %q", tc.value, err, tc.want)
		}
		st.Close()
	}
	st, _ := store.OpenInMemory(nil)
	defer st.Close()
	st.Write(store.Op{Key: "t/x1", Value: []byte(`{"Name":"x1","VCPUs":2}`)})
	s, err := newT(t, st)
	if err != nil || len(s.TypeInfo) != 0 {
		t.Errorf("an unmigrated instance type: New = %v, cache %v; want it dropped", err, s.TypeInfo)
	}
}

// fill sets every field of the struct v points to a distinct non-zero
// value.
func fill(t *testing.T, v any) {
	rv := reflect.ValueOf(v).Elem()
	for i := range rv.NumField() {
		f := rv.Field(i)
		name := rv.Type().Field(i).Name
		switch f.Kind() {
		case reflect.String:
			f.SetString(name + "-value")
		case reflect.Int:
			f.SetInt(int64(i + 1))
		case reflect.Uint64:
			f.SetUint(uint64(i + 1))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Slice:
			if f.Type().Elem().Kind() == reflect.Int {
				f.Set(reflect.ValueOf([]int{i + 1, i + 2}))
				break
			}
			f.Set(reflect.ValueOf([]string{name + "-1", name + "-2"}))
		case reflect.Struct:
			if f.Type() != reflect.TypeFor[time.Time]() {
				t.Fatalf("field %s: fill knows no %s", name, f.Type())
			}
			f.Set(reflect.ValueOf(time.Date(2026, 1, 1, 0, 0, i, i*1000, time.UTC)))
		default:
			t.Fatalf("field %s: fill knows no %s", name, f.Type())
		}
	}
}

// Every field of Request and Machine goes to disk and comes back, but for
// those that must not be persisted: a field added to the domain and not to
// its record fails here.
func TestRecordsKeepEveryField(t *testing.T) {
	var r domain.Request
	fill(t, &r)
	b, err := encodeRequest(&r)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := decodeRequest("r/x", b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*r2, r) {
		t.Errorf("request lost fields on disk: %s", diff(&r, r2))
	}

	var m domain.Machine
	fill(t, &m)
	b, err = encodeMachine(&m)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := decodeMachine("m/x", b)
	if err != nil {
		t.Fatal(err)
	}
	notPersisted := map[string]bool{"Seq": true, "AwaitingClaim": true, "AZ": true}
	for i := range reflect.TypeFor[domain.Machine]().NumField() {
		name := reflect.TypeFor[domain.Machine]().Field(i).Name
		got, want := reflect.ValueOf(*m2).Field(i), reflect.ValueOf(m).Field(i)
		switch {
		case notPersisted[name]:
			if !got.IsZero() {
				t.Errorf("machine field %s went to disk: it must not", name)
			}
		case !reflect.DeepEqual(got.Interface(), want.Interface()):
			t.Errorf("machine field %s came back as %v, was %v", name, got, want)
		}
	}

	var ti provider.InstanceTypeInfo
	fill(t, &ti)
	b, err = encodeType(ti)
	if err != nil {
		t.Fatal(err)
	}
	if ti2, err := decodeType("t/x", b); err != nil || ti2 != ti {
		t.Errorf("instance type came back as %+v %v, was %+v", ti2, err, ti)
	}
}
