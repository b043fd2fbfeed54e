package tracer

import (
	"runtime"

	"github.com/snagtrace/snag/internal/model"
)

// A Sink is where a live trace goes: the in-memory trace a report is made
// from, a recording file, a continuous aggregator. attach, run, record and
// serve differ only in the sinks they hand to Run.
//
// Run calls a sink from one goroutine, in this order: Start once the
// programs are attached, with the trace's header (target, processes, and
// the sockets and blocked calls seen at the attach); Event for every event,
// enriched, which is valid only during the call (copy what is kept); and
// Finish once, with the trace complete but for what earlier sinks add to
// it. An error from any of them ends the trace with that error.
type Sink interface {
	Start(*model.Trace) error
	Event(*model.Event) error
	Finish(*model.Trace) error
}

// An EventsCloser is a sink with work to do once the last event is in,
// before the trace is complete: Run calls CloseEvents then, before it
// reads the aggregates and calls Finish. The in-memory events join their
// chunks there, so that the memory the chunks held is collected before
// the aggregates (2.5 KiB each) are allocated.
type EventsCloser interface {
	CloseEvents(*model.Trace) error
}

// Events is the in-memory sink for a report: it keeps the events, at most
// Max of them (0: no limit), and counts the rest as dropped over the limit.
// Finish puts them in the trace.
type Events struct {
	Max int
	// chunks hold the events, eventChunk each, joined once by Finish.
	chunks    [][]model.Event
	kept      int
	overLimit uint64
}

// eventChunk is how many events a chunk holds: some 1.7 MiB.
const eventChunk = 4096

// KeepEvents returns a sink that keeps at most max events (0: no limit).
func KeepEvents(max int) *Events { return &Events{Max: max} }

func (k *Events) Start(*model.Trace) error { return nil }

func (k *Events) Event(ev *model.Event) error {
	if k.Max > 0 && k.kept >= k.Max {
		k.overLimit++
		return nil
	}
	// One growing slice would copy every event kept so far each time it
	// grew, five times the events' size in all, and hold the old and the
	// new copy at once; chunks are written once and joined once.
	if n := len(k.chunks); n == 0 || len(k.chunks[n-1]) == eventChunk {
		k.chunks = append(k.chunks, make([]model.Event, 0, eventChunk))
	}
	last := &k.chunks[len(k.chunks)-1]
	*last = append(*last, *ev)
	k.kept++
	return nil
}

// CloseEvents moves the kept events into the trace, letting each chunk
// go as soon as it is copied. The chunks are garbage then, as big as the
// events: collected before the aggregates and the analysis allocate,
// their pages are reused instead of new ones taken (2,000 threads: some
// 25 MiB).
func (k *Events) CloseEvents(t *model.Trace) error {
	if k.kept == 0 {
		return nil
	}
	evs := make([]model.Event, 0, len(t.Events)+k.kept)
	evs = append(evs, t.Events...)
	for i := range k.chunks {
		evs = append(evs, k.chunks[i]...)
		k.chunks[i] = nil
	}
	k.chunks, k.kept = nil, 0
	t.Events = evs
	runtime.GC()
	return nil
}

// Finish counts the events left out over the limit with the trace's drops.
func (k *Events) Finish(t *model.Trace) error {
	if err := k.CloseEvents(t); err != nil { // when Run did not
		return err
	}
	t.Drops.OverLimit += k.overLimit
	k.overLimit = 0
	return nil
}

// A WindowSink is a sink of a continuous trace (Config.Interval > 0).
// Every Interval, after the window's events went to Event, Run calls
// Window with that window alone: Start and Duration are its span; the
// processes and threads are those alive or seen in it; Syscalls, Drops
// and Cost count only what happened in it, a call in the window where it
// returned, so that the windows of a trace sum to its whole, exactly.
// Events is empty: the sink saw them one by one. The trace is valid only
// during the call.
//
// Each aggregate's Max is exact when the window holds the thread's
// slowest call of that syscall so far; otherwise it is the top of the
// slowest histogram bucket the window's calls fell in (at most 1/8 over).
// A thread's OnCPU is its CPU time in the window, 0 in the window it
// exited in. Sockets, Files and Epoll are what each live process held when
// the trace first saw it; Blocked, the calls it was in then, only in that
// window. The last window is cut when the trace ends; Finish then gets
// that same window: a trace of days is its windows, and what exited in a
// window is forgotten once it is cut.
type WindowSink interface {
	Sink
	Window(*model.Trace) error
}
