package hf

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// The mirrors of the wire types without their MarshalJSON: what
// encoding/json wrote before the appenders existed.
type (
	plainMachine       Machine
	plainRequestStatus struct {
		RequestID string         `json:"requestId"`
		Status    string         `json:"status"`
		Message   string         `json:"message"`
		Machines  []plainMachine `json:"machines"`
	}
	plainStatusReply struct {
		Requests []plainRequestStatus `json:"requests"`
	}
	plainReturnRequestsReply struct {
		Message  string          `json:"message"`
		Requests []ReturnRequest `json:"requests"`
	}
)

var awkward = []string{
	"", "plain", `quote " and \ backslash`, "<html> & co", "tab\tnew\nline\r\b\f", "\x00\x01\x1f\x7f",
	"é ü 日本", "\u2028\u2029", "bad \xff\xfe utf8", "half \xe2\x82", "emoji 😀", "i-0123456789abcdef0",
}

func randString(r *rand.Rand) string {
	s := awkward[r.IntN(len(awkward))]
	if r.IntN(3) == 0 {
		s += awkward[r.IntN(len(awkward))]
	}
	return s
}

func randPtr(r *rand.Rand) *string {
	if r.IntN(3) == 0 {
		return nil
	}
	s := randString(r)
	return &s
}

func marshalPlain(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		var sr StatusReply
		var plain plainStatusReply
		plain.Requests = []plainRequestStatus{}
		for range r.IntN(4) {
			q := RequestStatus{RequestID: randString(r), Status: Status(randString(r)), Message: randString(r)}
			pq := plainRequestStatus{RequestID: q.RequestID, Status: string(q.Status), Message: q.Message, Machines: []plainMachine{}}
			if r.IntN(4) == 0 {
				q.Machines = []Machine{} // empty, not nil: both write []
			}
			for range r.IntN(4) {
				m := Machine{MachineID: randString(r), Name: randString(r), Result: Result(randString(r)), Status: randString(r),
					PrivateIPAddress: randPtr(r), PublicIPAddress: randPtr(r), LaunchTime: r.Int64N(4e9) - 1e9,
					Message: randString(r), InstanceType: randString(r), PriceType: randString(r),
					InstanceTags: randString(r), CloudHostID: randPtr(r)}
				q.Machines = append(q.Machines, m)
				pq.Machines = append(pq.Machines, plainMachine(m))
			}
			sr.Requests = append(sr.Requests, q)
			plain.Requests = append(plain.Requests, pq)
		}
		want := marshalPlain(t, plain)
		if got := sr.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("StatusReply:\ngot  %s\nwant %s", got, want)
		}
		if got := marshalPlain(t, sr); !bytes.Equal(got, want) {
			t.Fatalf("json.Marshal(StatusReply):\ngot  %s\nwant %s", got, want)
		}

		rr := ReturnRequestsReply{Message: randString(r)}
		prr := plainReturnRequestsReply{Message: rr.Message, Requests: []ReturnRequest{}}
		for range r.IntN(4) {
			q := ReturnRequest{Machine: randString(r), GracePeriod: r.IntN(1000) - 10}
			rr.Requests = append(rr.Requests, q)
			prr.Requests = append(prr.Requests, q)
		}
		want = marshalPlain(t, prr)
		if got := rr.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("ReturnRequestsReply:\ngot  %s\nwant %s", got, want)
		}

		rq := RequestReply{RequestID: randString(r), Message: randString(r)}
		type plainRequestReply RequestReply
		want = marshalPlain(t, plainRequestReply(rq))
		if got := rq.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("RequestReply:\ngot  %s\nwant %s", got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range awkward {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, json.Marshal writes %s", s, got, want)
		}
	})
}
