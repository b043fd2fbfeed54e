package tracer

import (
	"log/slog"
	"time"

	"github.com/snagtrace/snag/bpf"
	"github.com/snagtrace/snag/internal/cgroup"
	"github.com/snagtrace/snag/internal/cpython"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/procfs"
)

// The enricher is the second stage of a live trace. It takes the decoded
// records in order and adds what the kernel side cannot know: symbolized
// stacks with their CPython and JavaScript frames, and the facts of the
// processes (threads and their names, forks, the runtime read on exec,
// exits). It owns the trace's header and facts; the events it hands on go
// to the sinks. It runs on the session's goroutine, so nothing in it is
// shared with the reader.
type enricher struct {
	proc    procfs.FS
	trace   *model.Trace
	threads map[int]*model.Thread
	cpu0    map[int]time.Duration // each thread's CPU time at the attach
	live    map[int]bool          // traced processes still alive
	stacks  frameResolver
	// python has the kernel side walk a process's CPython frames; nil
	// when stacks are off.
	python pythonTracer
	queues *queueSampler // nil when the namespace's sockets cannot be read
	// peers are the distinct peers events named, for the listener lookup
	// at the end (at most maxLocalPeers).
	peers map[model.Addr]bool
	notes []string // for Trace.Notes
	// pyPending are processes just exec'd whose interpreter library is
	// not mapped yet (python3.X over libpython3.X.so): pid → first try.
	pyPending map[int]time.Time
	pyRetried time.Time
	pyNoted   map[string]bool
}

// frameResolver turns a slow call's stack copy into frames (stackResolver).
type frameResolver interface {
	resolve(pid int, rec *bpf.Record) []model.Frame
	addPython(p *cpython.Process)
	exec(pid int)   // pid's address space was replaced
	forget(pid int) // pid exited
}

// pythonTracer is the kernel side's walk of CPython frames (bpf.Tracer).
type pythonTracer interface {
	TracePython(pid int, runtime uint64, off cpython.Offsets) error
}

func newEnricher(proc procfs.FS, trace *model.Trace) *enricher {
	e := &enricher{
		proc:      proc,
		trace:     trace,
		threads:   map[int]*model.Thread{},
		cpu0:      map[int]time.Duration{},
		live:      map[int]bool{},
		pyPending: map[int]time.Time{},
		pyNoted:   map[string]bool{},
	}
	e.stacks = newStackResolver(proc, e.note)
	return e
}

// maxNotes bounds the notes of one trace; the rest are counted.
const maxNotes = 20

// note records what could not be read or done, for the report.
func (e *enricher) note(n string) {
	slog.Debug("note", "note", n)
	switch {
	case len(e.notes) < maxNotes:
		e.notes = append(e.notes, n)
	case len(e.notes) == maxNotes:
		e.notes = append(e.notes, "more notes left out")
	}
}

func (e *enricher) thread(pid, tid int) *model.Thread {
	th, ok := e.threads[tid]
	if !ok {
		th = &model.Thread{PID: pid, TID: tid}
		e.threads[tid] = th
	}
	return th
}

// enrich adds to rec's event what it says about the processes and what
// its stack is, and returns the event for the sinks.
func (e *enricher) enrich(rec *bpf.Record) *model.Event {
	ev := &rec.Event
	switch ev.Kind {
	case model.EvFork:
		th := e.thread(ev.PID, ev.ChildPID)
		if !ev.Thread {
			th.PID = ev.ChildPID
		}
		// A child already live was found in /proc before its fork event
		// was read (adopted with its parent).
		if !ev.Thread && !e.live[ev.ChildPID] {
			e.live[ev.ChildPID] = true
			e.queues.add(ev.ChildPID)
			e.watchPython(ev.ChildPID)
			child := model.Process{PID: ev.ChildPID, PPID: ev.PID, Comm: ev.Comm}
			if parent := e.process(ev.PID); parent != nil {
				// A fork runs its parent's image until it execs, in its
				// parent's cgroup.
				child.Runtime = parent.Runtime
				cgroup.SetProcess(&child, parent.Cgroup)
			}
			e.trace.Processes = append(e.trace.Processes, child)
		}
		th.Name = ev.Comm
		th.Started = true
	case model.EvExec:
		e.watchPython(ev.PID)
		e.stacks.exec(ev.PID)
		e.thread(ev.PID, ev.TID).Name = ev.Comm
		// Read now: a short-lived command is gone by the end.
		rt := e.detectRuntime(ev.PID)
		for i := range e.trace.Processes {
			if p := &e.trace.Processes[i]; p.PID == ev.PID {
				p.Comm, p.Exe, p.Runtime = ev.Comm, ev.Filename, rt
			}
		}
		if ev.PID == e.trace.Target.PID {
			e.trace.Target.Comm, e.trace.Target.Exe = ev.Comm, ev.Filename
		}
	case model.EvExit:
		th := e.thread(ev.PID, ev.TID)
		th.Exited = true
		if th.Name == "" {
			th.Name = ev.Comm
		}
		if !ev.Thread {
			delete(e.live, ev.PID)
			delete(e.pyPending, ev.PID)
			e.stacks.forget(ev.PID)
			for i := range e.trace.Processes {
				if p := &e.trace.Processes[i]; p.PID == ev.PID {
					p.Exited, p.ExitCode, p.Signal = true, ev.ExitCode, ev.Signal
				}
			}
		}
	default:
		if len(rec.Stack) > 0 || len(rec.FPStack) > 0 {
			ev.Stack = e.stacks.resolve(ev.PID, rec)
		}
		if ev.Kind == model.EvConnect {
			// Connections open at the attach are in Sockets; the
			// calls on connections made since follow a connect.
			e.notePeer(ev.Peer)
		}
	}
	return ev
}
