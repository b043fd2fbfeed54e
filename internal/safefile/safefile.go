// Package safefile opens files that a traced process can influence: the
// files its mappings name, looked up under its /proc/PID/root, and the
// inputs a user hands snag. snag runs as root and the target may be hostile
// (or merely strange), so every open here
//
//   - resolves the path inside the target's root, never following a symlink
//     or a /proc magic link out of it (openat2 RESOLVE_IN_ROOT, or a
//     component-by-component walk on kernels without openat2);
//   - first opens an O_PATH handle, which has no side effects on FIFOs,
//     devices or FUSE files, and checks it: a regular file, of sane size,
//     not on FUSE (whose server, possibly the target, could stall every
//     read); only then reopens it for reading, O_NONBLOCK|O_NOCTTY;
//   - gives up after a deadline, so a lookup stuck on a hung filesystem
//     costs the trace a note, not the trace.
//
// Reads then go through Reader, which bounds how many bytes one file may
// cost and how long reading it may take.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// MaxSize is the largest file Open and InRoot accept by default. The
// largest shared objects in practice (a browser's libxul, a static binary
// with its debug info) are a few hundred MiB; a bigger "ELF" is a sparse
// file or a device pretending, and parsing it would cost memory for
// nothing.
const MaxSize = 2 << 30

// OpenTimeout bounds one open, path lookup included. A local lookup takes
// microseconds, a cold one on a slow disk some milliseconds; one that takes
// longer is stuck on a filesystem that does not answer, and snag moves on
// (well inside the second in which Ctrl-C must end a trace).
var OpenTimeout = 500 * time.Millisecond

var (
	// ErrNotRegular marks a FIFO, device, socket or directory.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge marks a file or a read over its bound.
	ErrTooLarge = errors.New("too large")
	// ErrTimeout marks an open or read that took longer than allowed.
	ErrTimeout = errors.New("timed out")
	// ErrFUSE marks a file on a FUSE filesystem, whose reads a user-space
	// server (possibly the target) could stall forever.
	ErrFUSE = errors.New("on a FUSE filesystem")
	// ErrNotSupported marks an open that needs Linux: a lookup inside a
	// traced process's root.
	ErrNotSupported = errors.New("needs Linux")
)

// Options tune an open. The zero value takes MaxSize and OpenTimeout.
type Options struct {
	MaxSize int64         // 0: MaxSize; <0: no limit
	Timeout time.Duration // 0: OpenTimeout
	// AllowFUSE accepts files on FUSE filesystems (a user's own input).
	AllowFUSE bool
}

func (o Options) maxSize() int64 {
	switch {
	case o.MaxSize == 0:
		return MaxSize
	case o.MaxSize < 0:
		return 1<<63 - 1
	}
	return o.MaxSize
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return OpenTimeout
}

// withTimeout runs open on its own goroutine and gives up waiting after d.
// An open that finishes later has its file closed; one that never finishes
// costs a parked thread, which beats a parked trace.
func withTimeout(d time.Duration, name string, open func() (*os.File, error)) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		f, err := open()
		ch <- result{f, err}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.f, r.err
	case <-t.C:
		go func() {
			if r := <-ch; r.f != nil {
				r.f.Close()
			}
		}()
		return nil, &os.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w after %s", ErrTimeout, d)}
	}
}

// Reader reads a file opened here within a budget of bytes and of time, for
// parsers (debug/elf) that trust the sizes a file declares. Reads past the
// size the file had when opened see EOF, so a file growing under snag does
// not grow what it reads.
type Reader struct {
	f        *os.File
	size     int64
	budget   int64
	left     int64
	deadline time.Time
}

// NewReader reads f, at most budget bytes in total, until d has passed.
func NewReader(f *os.File, budget int64, d time.Duration) (*Reader, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return &Reader{f: f, size: fi.Size(), budget: budget, left: budget, deadline: time.Now().Add(d)}, nil
}

// Size is the file's size when the reader was made.
func (r *Reader) Size() int64 { return r.size }

// SetBudget sets how many more bytes may be read.
func (r *Reader) SetBudget(n int64) { r.budget, r.left = n, n }

// ReadAt implements io.ReaderAt.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if time.Now().After(r.deadline) {
		return 0, fmt.Errorf("read %s: %w", r.f.Name(), ErrTimeout)
	}
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset", r.f.Name())
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := int64(len(p))
	short := false
	if want > r.size-off {
		want, short = r.size-off, true
	}
	if want > r.left {
		return 0, fmt.Errorf("read %s: %w: more than the %d bytes snag reads of it", r.f.Name(), ErrTooLarge, r.budget)
	}
	n, err := r.f.ReadAt(p[:want], off)
	r.left -= int64(n)
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}
