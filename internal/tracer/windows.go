package tracer

import (
	"slices"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// windows cuts a continuous trace into windows (Config.Interval). The
// kernel side's aggregates stay cumulative, as for one trace; each cut
// reads them all and hands on the difference from the reading before, per
// aggregate row and syscall. A call is counted where it returned, so it
// falls in the one window whose cut read it first: none is lost or counted
// twice, calls in flight at a cut included. A thread that exited has its
// row's final reading handed over once (bpf.Tracer.Cut), in the window it
// exited in, and its last reading is forgotten with it. The drops and
// costs are cumulative counters cut the same way.
//
// The readings kept are one per (row, syscall) in use: as many as the
// kernel side's aggregates, 2.5 KiB each with their histogram.
type windows struct {
	start time.Time // of the window in progress
	prev  map[aggKey]*model.SyscallStat
	drops model.Drops
	cost  model.Cost
	// stats and threads are reused from window to window: a window's
	// trace is valid only during the Window call.
	stats   []model.SyscallStat
	threads []model.Thread
}

// aggKey names one aggregate of the kernel side: a row is one thread's
// while it lives, and is reused only after its final reading was cut.
type aggKey struct {
	row uint32
	nr  int
	op  string
}

func newWindows(start time.Time) *windows {
	return &windows{start: start, prev: map[aggKey]*model.SyscallStat{}}
}

// diff turns st, a row's cumulative reading, into the window's calls,
// appended to w.stats when there are any, and keeps the reading for the
// next window unless it was the row's last.
func (w *windows) diff(row uint32, exited bool, st *model.SyscallStat) {
	k := aggKey{row, st.Nr, st.Op}
	p := w.prev[k]
	d := *st
	if p != nil && p.TID == st.TID && p.Count <= st.Count {
		d.Since(p)
	}
	if d.Count > 0 {
		w.stats = append(w.stats, d)
	}
	switch {
	case exited:
		delete(w.prev, k)
	case p == nil:
		p = new(model.SyscallStat)
		*p = *st
		w.prev[k] = p
	default:
		*p = *st
	}
}

// window cuts the window ending at end: the syscalls of its calls, its
// threads, drops and cost, with the header of the trace as it stands.
func (s *session) window(end time.Time) (*model.Trace, error) {
	w := s.win
	w.stats = w.stats[:0]
	if err := s.tr.Cut(w.diff); err != nil {
		return nil, err
	}
	slices.SortFunc(w.stats, compareStats)
	h := s.trace
	t := &model.Trace{
		Source: h.Source, Arch: h.Arch, Target: h.Target, Processes: h.Processes,
		Start: w.start, StartNS: h.StartNS + uint64(w.start.Sub(h.Start)), Duration: end.Sub(w.start),
		Threshold: h.Threshold, Syscalls: w.stats,
		Sockets: h.Sockets, Blocked: h.Blocked, Files: h.Files, Epoll: h.Epoll,
		Notes: s.enr.notes,
	}
	drops, err := s.tr.Drops()
	if err != nil {
		return nil, err
	}
	drops.Backlog = s.rd.full.Load()
	t.Drops, w.drops = drops.Since(w.drops), drops
	cost := s.cost(nil)
	cost.Syscalls = w.cost.Syscalls
	for i := range w.stats {
		cost.Syscalls += w.stats[i].Count
	}
	t.Cost, w.cost = cost.Since(w.cost).Scaled(), cost
	w.threads = s.enr.windowThreads(w.stats, w.threads[:0])
	t.Threads = w.threads
	w.start = end
	return t, nil
}

// cutWindow hands the window ending at end to the window sinks.
func (s *session) cutWindow(end time.Time) (*model.Trace, error) {
	t, err := s.window(end)
	if err != nil {
		return nil, err
	}
	for _, k := range s.sinks {
		if ws, ok := k.(WindowSink); ok {
			if err := ws.Window(t); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}
