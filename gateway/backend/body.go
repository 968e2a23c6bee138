package backend

import (
	"context"
	"fmt"
	"io"
)

// exactReader delivers exactly size bytes of r and fails otherwise. It is
// what makes "a wrong body length commits nothing" hold for both backends:
// a short body ends with ErrIncompleteBody instead of io.EOF, and before the
// last byte is handed over it checks that r has nothing more, because a
// receiver holding size bytes (a file about to be renamed, an S3 server
// that has read Content-Length bytes) may commit at once. Withholding the
// final bytes on error keeps the receiver short of size, so it never does.
type exactReader struct {
	r    io.Reader
	left int64
	err  error // sticky
}

func newExactReader(r io.Reader, size int64) *exactReader {
	return &exactReader{r: r, left: size}
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.left == 0 {
		if err := probeEnd(e.r, nil); err != nil {
			e.err = err
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case e.left == 0:
		if perr := probeEnd(e.r, err); perr != nil {
			e.err = perr
			return 0, perr // withhold the last bytes: the receiver stays short
		}
		e.err = io.EOF
		return n, nil
	case err == io.EOF:
		e.err = fmt.Errorf("%w: body ended %d bytes short", ErrIncompleteBody, e.left)
		return n, e.err
	case err != nil:
		e.err = err
		return n, err
	}
	return n, nil
}

// probeEnd reports nil if r is exhausted. last is the error of the read
// that delivered the final declared byte.
func probeEnd(r io.Reader, last error) error {
	if last == io.EOF {
		return nil
	}
	if last != nil {
		return last
	}
	var b [1]byte
	for range 100 {
		n, err := r.Read(b[:])
		if n > 0 {
			return fmt.Errorf("%w: body longer than declared size", ErrIncompleteBody)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// ctxReader fails reads once ctx is done, so a long copy stops promptly
// when the caller gives up.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// readCloser joins a reader with the closer of what it reads from.
type readCloser struct {
	io.Reader
	io.Closer
}
