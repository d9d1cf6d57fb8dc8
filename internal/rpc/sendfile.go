package rpc

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// fileBody is a call whose input stays in its file: head, then size bytes
// of f from off, then tail. It reads the file with ReadAt, so each attempt
// of go-retryablehttp gets a fresh one that starts over.
type fileBody struct {
	head      []byte
	f         *os.File
	off, size int64
	tail      []byte
	pos       int64 // bytes of the whole body already given
}

// Close does nothing: the caller closes the file. Being an io.ReadCloser
// keeps go-retryablehttp from wrapping b in an io.NopCloser, which would
// hide it from fileConn.
func (b *fileBody) Close() error { return nil }

// Len is what remains; go-retryablehttp takes it as the Content-Length.
func (b *fileBody) Len() int { return int(int64(len(b.head)) + b.size + int64(len(b.tail)) - b.pos) }

func (b *fileBody) Read(p []byte) (int, error) {
	h := int64(len(b.head))
	switch {
	case b.pos < h:
		n := copy(p, b.head[b.pos:])
		b.pos += int64(n)
		return n, nil
	case b.pos < h+b.size:
		at := b.pos - h
		n, err := b.f.ReadAt(p[:min(int64(len(p)), b.size-at)], b.off+at)
		b.pos += int64(n)
		if n > 0 {
			return n, nil
		}
		if err == nil || err == io.EOF {
			err = b.short(b.size - at)
		}
		return 0, err
	}
	t := b.pos - h - b.size
	if t >= int64(len(b.tail)) {
		return 0, io.EOF
	}
	n := copy(p, b.tail[t:])
	b.pos += int64(n)
	return n, nil
}

func (b *fileBody) short(missing int64) error {
	return fmt.Errorf("%w: %s ends %d bytes early (was it changed while ohfp read it?)", errInputFile, b.f.Name(), missing)
}

// writeTo writes at most n bytes of what remains of b to conn, the file's
// part by sendfile(2).
func (b *fileBody) writeTo(conn *net.UnixConn, n int64) (int64, error) {
	start := b.pos
	end := b.pos + n
	h := int64(len(b.head))
	if b.pos < h {
		k, err := conn.Write(b.head[b.pos:min(h, end)])
		b.pos += int64(k)
		if err != nil {
			return b.pos - start, err
		}
	}
	if b.pos < min(h+b.size, end) {
		at := b.pos - h
		k, err := sendFile(conn, b.f, b.off+at, min(h+b.size, end)-b.pos)
		b.pos += k
		if err != nil {
			return b.pos - start, err
		}
	}
	if b.pos < end {
		t := b.pos - h - b.size
		k, err := conn.Write(b.tail[t:min(int64(len(b.tail)), end-h-b.size)])
		b.pos += int64(k)
		if err != nil {
			return b.pos - start, err
		}
	}
	return b.pos - start, nil
}

// fileConn is the client's connection. net/http's transport writes a body
// of known length by io.Copy to the connection of an io.LimitedReader over
// it, once its buffer is full; fileConn takes a fileBody there and sends
// the file's part with sendfile(2), which a *net.UnixConn does not do
// itself. Anything else is copied as usual.
type fileConn struct{ *net.UnixConn }

func (c fileConn) ReadFrom(r io.Reader) (int64, error) {
	if lr, ok := r.(*io.LimitedReader); ok {
		if b, ok := lr.R.(*fileBody); ok {
			n, err := b.writeTo(c.UnixConn, lr.N)
			lr.N -= n
			return n, err
		}
	}
	return io.Copy(struct{ io.Writer }{c.UnixConn}, r)
}

// sendFile writes size bytes of f from offset off to conn with sendfile(2),
// waiting for room in the socket as the runtime's poller allows, and
// returns how many it wrote. Where the kernel cannot (sendfile refuses
// that kind of file), it copies through a buffer instead. An error
// wrapping errInputFile means the file, not the connection, failed: it was
// shorter than size, say.
func sendFile(conn *net.UnixConn, f *os.File, off, size int64) (int64, error) {
	raw, err := conn.SyscallConn()
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
	return sent, serr
}

// copyFile is sendFile through a buffer.
func copyFile(conn *net.UnixConn, f *os.File, off, size int64) (int64, error) {
	n, err := io.Copy(struct{ io.Writer }{conn}, io.NewSectionReader(f, off, size))
	if err == nil && n < size {
		err = fmt.Errorf("%w: %s ends %d bytes early (was it changed while ohfp read it?)", errInputFile, f.Name(), size-n)
	}
	return n, err
}
