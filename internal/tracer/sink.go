package tracer

import (
	"fmt"
	"slices"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/recording"
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
// before the trace is complete: Run calls CloseEvents then, once the
// ring buffer is unmapped and the aggregates and the threads' ends are
// read, before it calls Finish. The in-memory events are decoded there,
// so that their full size is taken after everything else a trace reads.
type EventsCloser interface {
	CloseEvents(*model.Trace) error
}

// Events is the in-memory sink for a report: it keeps the events, at most
// Max of them (0: no limit), and counts the rest as dropped over the limit.
// Finish puts them in the trace.
type Events struct {
	Max int
	// log holds the events encoded, a tenth of their size as
	// model.Events (2,000 threads: some 2 MiB where they take 20),
	// until CloseEvents decodes them into the trace in one slice.
	log       recording.EventLog
	overLimit uint64
}

// KeepEvents returns a sink that keeps at most max events (0: no limit).
func KeepEvents(max int) *Events { return &Events{Max: max} }

func (k *Events) Start(*model.Trace) error { return nil }

func (k *Events) Event(ev *model.Event) error {
	if k.Max > 0 && k.log.Len() >= k.Max {
		k.overLimit++
		return nil
	}
	k.log.Add(ev)
	return nil
}

// CloseEvents moves the kept events into the trace.
func (k *Events) CloseEvents(t *model.Trace) error {
	if k.log.Len() == 0 {
		return nil
	}
	evs, err := k.log.Events()
	if err != nil {
		return fmt.Errorf("keep events for the report: %w", err)
	}
	if len(t.Events) > 0 {
		evs = append(slices.Clip(t.Events), evs...)
	}
	t.Events = evs
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
