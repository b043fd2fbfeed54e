package tracer

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/snagtrace/snag/internal/cpython"
)

// detectPython finds a CPython whose frames can be read in pid.
func (e *enricher) detectPython(pid int) (*cpython.Process, error) {
	p, err := cpython.Detect(e.proc, pid)
	if err != nil {
		return nil, err
	}
	slog.Debug("python frames", "pid", pid, "version", p.Version, "patch", p.Patch, "runtime", p.Runtime)
	return p, nil
}

// notePython says once why a CPython's frames cannot be read; anything
// else is quietly not Python.
func (e *enricher) notePython(err error) {
	if errors.Is(err, cpython.ErrNotPython) {
		return
	}
	n := fmt.Sprintf("no Python frames: %v", err)
	if !e.pyNoted[n] {
		e.pyNoted[n] = true
		e.note(n)
	}
}

// pyPendingFor is how long a process may take to map its libpython.
const pyPendingFor = 5 * time.Second

// watchPython has the kernel side walk the Python frames of a process that
// appeared (fork) or changed (exec) while tracing.
func (e *enricher) watchPython(pid int) {
	if e.python == nil {
		return
	}
	p, err := e.detectPython(pid)
	if errors.Is(err, cpython.ErrNoRuntime) {
		// At exec the dynamic loader has yet to map libpython: try again.
		if first, ok := e.pyPending[pid]; !ok {
			e.pyPending[pid] = time.Now()
		} else if time.Since(first) > pyPendingFor {
			delete(e.pyPending, pid)
			e.notePython(err)
		}
		return
	}
	delete(e.pyPending, pid)
	if err != nil {
		e.notePython(err)
		return
	}
	if err := e.python.TracePython(pid, p.Runtime, p.Off); err != nil {
		slog.Debug("no python frames", "pid", pid, "error", err)
		return
	}
	e.stacks.addPython(p)
}

// retryPython looks again, every few milliseconds, at processes whose
// libpython was not mapped yet.
func (e *enricher) retryPython() {
	if len(e.pyPending) == 0 || time.Since(e.pyRetried) < pyRetryEvery {
		return
	}
	e.pyRetried = time.Now()
	for pid := range e.pyPending {
		if !e.proc.Exists(pid) {
			delete(e.pyPending, pid)
			continue
		}
		e.watchPython(pid)
	}
}

// pyRetryEvery spaces the retries: the loader maps libpython within a
// few milliseconds of the exec.
const pyRetryEvery = 5 * time.Millisecond
