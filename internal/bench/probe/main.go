// Command probe is the floor of ohfp's design, used by internal/bench: a
// minimal static net/http client that makes the same round trip as ohfp
// and nothing else. It takes the operation from its name (as HF runs it,
// through <operation>.sh), reads the -f FILE document, sends one JSON-RPC
// POST with net/http over the Unix socket named by OHFP_SOCKET with
// HF_PROVIDER_NAME (the document read from its file as the body goes out,
// net/http's own way), and copies the daemon's answer to stdout. No
// validation, no retries, no re-indenting: what remains is process start,
// net/http's initialisation, one connection and the daemon's own work.
package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	op := strings.TrimSuffix(filepath.Base(os.Args[0]), ".sh")
	file := ""
	for i := 1; i+1 < len(os.Args); i++ {
		if os.Args[i] == "-f" {
			file = os.Args[i+1]
		}
	}
	f, err := os.Open(file)
	if err != nil {
		die(err.Error())
	}
	fi, err := f.Stat()
	if err != nil {
		die(err.Error())
	}
	// The envelope ohfp writes, the document last, after its length
	// (white space around it included: the daemon's HF parser takes it).
	prefix := `{"jsonrpc":"2.0","id":1,"method":"` + op + `","params":{"env":{"HF_PROVIDER_NAME":"` +
		os.Getenv("HF_PROVIDER_NAME") + `"},"inputBytes":` + strconv.FormatInt(fi.Size(), 10) + `,"input":`
	const suffix = `}}`

	sock := os.Getenv("OHFP_SOCKET")
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequest(http.MethodPost, "http://ohfpd/v1/rpc",
		io.MultiReader(strings.NewReader(prefix), f, strings.NewReader(suffix)))
	if err != nil {
		die(err.Error())
	}
	req.ContentLength = int64(len(prefix)) + fi.Size() + int64(len(suffix))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		die(err.Error())
	}
	ans, err := io.ReadAll(resp.Body)
	if err != nil {
		die(err.Error())
	}
	if resp.StatusCode != http.StatusOK {
		die("bad answer: " + resp.Status + ": " + string(ans[:min(len(ans), 200)]))
	}
	os.Stdout.Write(ans)
	if !bytes.Contains(ans, []byte(`"result"`)) {
		os.Exit(1)
	}
}

func die(msg string) {
	os.Stdout.WriteString(`{"message":` + strconv.Quote(msg) + "}\n")
	os.Exit(1)
}
