// Command probe is the floor of ohfp's design, used by internal/bench: a
// minimal static client that makes the same round trip as ohfp and
// nothing else. It takes the operation from its name (as HF runs it,
// through <operation>.sh), reads the -f FILE document, sends one JSON-RPC
// POST over the Unix socket named by OHFP_SOCKET with HF_PROVIDER_NAME (the
// document sent from its file by sendfile), and copies the daemon's answer
// to stdout. No validation, no retries, no re-indenting: what remains is
// process start, one connection and the daemon's own work.
package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
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
	// The document goes from its file to the socket by sendfile(2), as
	// ohfp sends large ones: the envelope ohfp writes, the document last,
	// after its length (white space around it included: the daemon's HF
	// parser takes it).
	f, err := os.Open(file)
	if err != nil {
		die(err.Error())
	}
	fi, err := f.Stat()
	if err != nil {
		die(err.Error())
	}
	prefix := `{"jsonrpc":"2.0","id":1,"method":"` + op + `","params":{"env":{"HF_PROVIDER_NAME":"` +
		os.Getenv("HF_PROVIDER_NAME") + `"},"inputBytes":` + strconv.FormatInt(fi.Size(), 10) + `,"input":`
	const suffix = `}}`

	c, err := net.Dial("unix", os.Getenv("OHFP_SOCKET"))
	if err != nil {
		die(err.Error())
	}
	defer c.Close()
	// HTTP/1.0: the server answers without chunking and closes when done.
	head := "POST /v1/rpc HTTP/1.0\r\nHost: ohfpd\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.FormatInt(int64(len(prefix))+fi.Size()+int64(len(suffix)), 10) + "\r\n\r\n"
	if _, err := io.WriteString(c, head+prefix); err != nil {
		die(err.Error())
	}
	if n, err := io.Copy(c, f); err != nil || n != fi.Size() { // *os.File to a Unix socket: sendfile
		die(fmt.Sprintf("sent %d of %d bytes: %v", n, fi.Size(), err))
	}
	if _, err := io.WriteString(c, suffix); err != nil {
		die(err.Error())
	}
	resp, err := io.ReadAll(c)
	if err != nil {
		die(err.Error())
	}
	i := bytes.Index(resp, []byte("\r\n\r\n"))
	if i < 0 || !bytes.HasPrefix(resp, []byte("HTTP/1.0 200")) && !bytes.HasPrefix(resp, []byte("HTTP/1.1 200")) {
		die("bad answer: " + string(resp[:min(len(resp), 200)]))
	}
	ans := resp[i+4:]
	os.Stdout.Write(ans)
	if !bytes.Contains(ans, []byte(`"result"`)) {
		os.Exit(1)
	}
}

func die(msg string) {
	os.Stdout.WriteString(`{"message":` + strconv.Quote(msg) + "}\n")
	os.Exit(1)
}
