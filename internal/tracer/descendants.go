package tracer

import (
	"log/slog"
	"slices"

	"github.com/snagtrace/snag/internal/procfs"
)

// withDescendants returns roots and every process below them, each once,
// roots first: under --follow-forks, `-p MASTER` means the master and the
// workers it already runs, as well as those it starts later.
func withDescendants(p procfs.FS, roots []int) []int {
	out := make([]int, 0, len(roots))
	seen := map[int]bool{}
	add := func(pid int) {
		if !seen[pid] {
			seen[pid] = true
			out = append(out, pid)
		}
	}
	for _, pid := range roots {
		add(pid)
	}
	for _, pid := range roots {
		kids, err := p.Descendants(pid)
		if err != nil {
			slog.Debug("no descendants", "pid", pid, "error", err)
		}
		for _, k := range kids {
			add(k)
		}
	}
	return out
}

// followLate traces the descendants that appeared between the walk before
// loading and the attach: a worker respawned then is neither in the walk
// nor seen forking. Those forked after the attach are already in the
// kernel's traced set (their fork event follows) and are left to it.
func (s *session) followLate(known []int) []int {
	var late []int
	for _, pid := range withDescendants(s.cfg.Proc, s.cfg.PIDs) {
		if slices.Contains(known, pid) || s.tr.Traced(pid) {
			continue
		}
		if err := s.tr.AddPID(pid); err != nil {
			slog.Debug("not traced", "pid", pid, "error", err)
			continue
		}
		s.enr.live[pid] = true
		s.enr.snapshot(pid)
		late = append(late, pid)
	}
	if len(late) > 0 {
		slog.Debug("traced processes started during the attach", "pids", late)
	}
	return late
}
