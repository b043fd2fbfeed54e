//go:build linux

package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/recording"
	"github.com/snagtrace/snag/internal/tracer"
)

// recorder streams events into a recording as they arrive, flushing about
// once a second so a killed snag leaves a readable file. The file is
// written as PATH.partial, created only once tracing has started (a
// failed attach leaves nothing behind), and renamed to PATH when the
// recording is complete: a name without .partial is a finished recording.
// Recordings hold what the process read and wrote, so they are mode 0600.
type recorder struct {
	path, partial string
	force         bool
	f             *os.File
	w             *recording.Writer
	lastFlush     time.Time
	events        uint64
	closed        bool
}

const recordFlushEvery = time.Second

// partialSuffix marks a recording still being written, or one whose
// writer was killed: snag analyze reads it up to its last flush.
const partialSuffix = ".partial"

// newRecorder checks path before anything is traced: an existing file is
// kept unless force, and so is an unfinished PATH.partial.
func newRecorder(path string, force bool) (*recorder, error) {
	if err := checkOutput("recording", path, force); err != nil {
		return nil, err
	}
	partial := path + partialSuffix
	if err := checkOutput("recording", partial, force); err != nil {
		if !force {
			if _, serr := os.Lstat(partial); serr == nil {
				return nil, usagef("%s exists: a recording that did not finish? analyze it, move it away, or add --force", partial)
			}
		}
		return nil, err
	}
	return &recorder{path: path, partial: partial, force: force}, nil
}

// The recorder is a tracer.Sink.
var _ tracer.Sink = (*recorder)(nil)

// Start creates PATH.partial and writes the trace's header.
func (r *recorder) Start(t *model.Trace) error {
	if r.force {
		os.Remove(r.partial) // checked: a regular file, or nothing
	}
	f, err := createExclusive(r.partial, 0o600)
	if err != nil {
		return fmt.Errorf("create recording: %w", err)
	}
	r.f = f
	w, err := recording.NewWriter(r.f, t)
	if err != nil {
		return fmt.Errorf("write recording %s: %w", r.partial, err)
	}
	r.w, r.lastFlush = w, time.Now()
	return nil
}

// Event appends e, flushing about once a second.
func (r *recorder) Event(e *model.Event) error {
	r.events++
	if err := r.w.Event(e); err != nil {
		return fmt.Errorf("write recording %s: %w", r.partial, err)
	}
	if time.Since(r.lastFlush) >= recordFlushEvery {
		r.lastFlush = time.Now()
		return r.w.Flush()
	}
	return nil
}

// Finish writes the trace's end and publishes the recording as PATH.
func (r *recorder) Finish(t *model.Trace) error {
	r.closed = true
	if r.f == nil {
		return errors.New("finish recording: tracing never started")
	}
	err := r.w.Close(t)
	if err == nil {
		err = r.f.Sync()
	}
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = publish(r.partial, r.path, r.force)
	}
	if err != nil {
		return fmt.Errorf("finish recording %s: %w (what was flushed is in %s)", r.path, err, r.partial)
	}
	return nil
}

// abort closes the file when tracing failed; whatever was flushed stays
// readable in PATH.partial.
func (r *recorder) abort(env Env) {
	if r.closed || r.f == nil {
		return
	}
	if r.w != nil {
		r.w.Flush()
	}
	r.f.Close()
	fmt.Fprintf(env.Stderr, "snag: the recording so far is in %s\n", r.partial)
}
