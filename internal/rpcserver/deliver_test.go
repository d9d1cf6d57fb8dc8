package rpcserver

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ohfp/ohfp/internal/rpc"
)

// hooked registers an AfterAnswer hook and reports what it was told. Its
// call blocks until release is closed, so a test can make the caller go
// away first.
type hooked struct {
	release chan struct{}
	ran     chan bool
	calls   chan string
}

func (h *hooked) Call(ctx context.Context, method string, _ rpc.Params) (any, error) {
	h.calls <- method
	<-h.release
	rpc.AfterAnswer(ctx, func(delivered bool) { h.ran <- delivered })
	return map[string]string{"requestId": "req-1"}, nil
}

func newHooked() *hooked {
	return &hooked{release: make(chan struct{}), ran: make(chan bool, 1), calls: make(chan string, 4)}
}

func rawCall(t *testing.T, path, extraHeader string) net.Conn {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"jsonrpc":"2.0","id":1,"method":"requestMachines","params":{"input":{}}}`
	head := "POST " + rpc.Path + " HTTP/1.0\r\nHost: ohfpd\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n" + extraHeader + "\r\n"
	if _, err := conn.Write([]byte(head + body)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// An answer written to a caller that is still there is delivered: the
// handler's hook hears true.
func TestAnswerDeliveredRunsHook(t *testing.T) {
	h := newHooked()
	close(h.release)
	_, path := start(t, h, ServerOptions{}, nil)
	var out map[string]string
	if err := rpc.NewClient(path, rpc.ClientOptions{}).Call(context.Background(), "requestMachines", rpc.Params{}, &out); err != nil {
		t.Fatal(err)
	}
	select {
	case ok := <-h.ran:
		if !ok {
			t.Fatal("a delivered answer was reported undelivered")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the hook never ran")
	}
}

// A caller that went away while the call was being handled (HF gave up,
// or killed the client) cannot be answered: the hook hears false, so the
// engine cancels what the call recorded.
func TestAnswerToAGoneCallerRunsHookFalse(t *testing.T) {
	h := newHooked()
	_, path := start(t, h, ServerOptions{}, nil)
	conn := rawCall(t, path, "")
	<-h.calls
	conn.Close() // the caller goes away before the answer
	time.Sleep(50 * time.Millisecond)
	close(h.release)
	select {
	case ok := <-h.ran:
		if ok {
			t.Fatal("an answer to a caller that went away was reported delivered")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the hook never ran")
	}
}

// A call that reaches ohfpd after its caller's deadline (ohfpd was
// stopped meanwhile) is not carried out.
func TestLateCallIsNotCarriedOut(t *testing.T) {
	h := newHooked()
	close(h.release)
	_, path := start(t, h, ServerOptions{}, nil)
	past := time.Now().Add(-3 * time.Second).UnixMilli()
	conn := rawCall(t, path, rpc.DeadlineHeader+": "+strconv.FormatInt(past, 10)+"\r\n")
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !strings.Contains(b.String(), "after its caller stopped waiting") || !strings.Contains(b.String(), "not carried out") {
		t.Fatalf("answer: %q", b.String())
	}
	select {
	case m := <-h.calls:
		t.Fatalf("the handler ran %s for a late call", m)
	default:
	}
	// A deadline still ahead is served.
	future := time.Now().Add(time.Minute).UnixMilli()
	conn2 := rawCall(t, path, rpc.DeadlineHeader+": "+strconv.FormatInt(future, 10)+"\r\n")
	defer conn2.Close()
	select {
	case <-h.calls:
	case <-time.After(5 * time.Second):
		t.Fatal("a call within its deadline was not served")
	}
}
