package rpc

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// sendFile writes size bytes of f from offset off to conn with sendfile(2),
// waiting for room in the socket as the runtime's poller allows. Where the
// kernel cannot (sendfile refuses that kind of file), it copies through a
// buffer instead. An error wrapping errInputFile means the file, not the
// connection, failed: it was shorter than size, say.
func sendFile(conn net.Conn, f *os.File, off, size int64) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return copyFile(conn, f, off, size)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return copyFile(conn, f, off, size)
	}
	src := int(f.Fd())
	sent, pos := int64(0), off
	var serr error
	werr := raw.Write(func(fd uintptr) bool {
		for sent < size {
			n, err := syscall.Sendfile(int(fd), src, &pos, int(min(size-sent, 1<<30)))
			if n > 0 {
				sent += int64(n)
			}
			switch {
			case err == syscall.EAGAIN:
				return false // wait until the socket takes more
			case err == syscall.EINTR:
			case err != nil:
				serr = err
				return true
			case n == 0:
				serr = fmt.Errorf("%w: %s ends %d bytes early (was it changed while ohfp read it?)", errInputFile, f.Name(), size-sent)
				return true
			}
		}
		return true
	})
	if serr != nil && sent == 0 && (errors.Is(serr, syscall.EINVAL) || errors.Is(serr, syscall.ENOSYS) || errors.Is(serr, syscall.EOPNOTSUPP)) {
		return copyFile(conn, f, off, size)
	}
	if serr == nil {
		serr = werr
	}
	return serr
}

// copyFile is sendFile through a buffer.
func copyFile(conn net.Conn, f *os.File, off, size int64) error {
	n, err := io.Copy(conn, io.NewSectionReader(f, off, size))
	if err == nil && n < size {
		err = fmt.Errorf("%w: %s ends %d bytes early (was it changed while ohfp read it?)", errInputFile, f.Name(), size-n)
	}
	return err
}
