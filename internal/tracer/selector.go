package tracer

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/snagtrace/snag/internal/cgroup"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/procfs"
)

// A Selector names the processes a continuous trace follows: a process is
// traced when any of the criteria given matches it. Regular expressions
// match anywhere in their string unless anchored.
//
// Processes that match when the trace starts are traced from then on;
// those that come to match later from their exec (Comm, Exe, Cmdline),
// from their first call in a selected cgroup, or from their fork by a
// traced process: a process started by a selected one is traced too. A
// traced process stays traced until it exits, whatever it execs or
// wherever it moves. Between a process's exec and the moment snag reads
// it, a few milliseconds, its calls are not counted.
type Selector struct {
	PIDs    []int
	Comm    *regexp.Regexp // /proc/PID/comm
	Exe     *regexp.Regexp // the executable's path
	Cmdline *regexp.Regexp // the arguments joined by spaces
	// Cgroups are cgroup v2 directories (a container, a systemd unit, a
	// pod), absolute or relative to the cgroup2 mount; every process in
	// them or below them is traced. The cgroups below are looked for
	// every second: a cgroup made since is traced within a second.
	Cgroups []string
}

// byName tells whether the selector matches processes by what they run,
// which an exec can change.
func (s *Selector) byName() bool { return s.Comm != nil || s.Exe != nil || s.Cmdline != nil }

// matches tells whether the selector names pid or matches what it runs.
// snag itself never matches. Cgroups are not checked here: their
// processes are found by cgroupWatch.
func (s *Selector) matches(p procfs.FS, pid int) bool {
	if pid == os.Getpid() {
		return false
	}
	if slices.Contains(s.PIDs, pid) {
		return true
	}
	if s.Comm != nil {
		if c, err := p.Comm(pid); err == nil && s.Comm.MatchString(c) {
			return true
		}
	}
	if s.Exe != nil {
		if e, err := p.Exe(pid); err == nil && s.Exe.MatchString(e) {
			return true
		}
	}
	if s.Cmdline != nil {
		if args, err := p.Cmdline(pid); err == nil && len(args) > 0 && s.Cmdline.MatchString(strings.Join(args, " ")) {
			return true
		}
	}
	return false
}

// check rejects a selector that can match nothing, and pids that do not
// exist.
func (s *Selector) check(p procfs.FS) error {
	if len(s.PIDs) == 0 && !s.byName() && len(s.Cgroups) == 0 {
		return errors.New("the selector names no process: give pids, a comm, exe or command-line pattern, or a cgroup")
	}
	for _, pid := range s.PIDs {
		if pid <= 0 || !p.Exists(pid) {
			return fmt.Errorf("select pid %d: %w", pid, ErrNoProcess)
		}
	}
	return nil
}

// cgroupWatch follows the selected cgroups and the cgroups below them,
// which come and go: the kernel side traces the tasks of every cgroup
// whose id it holds.
type cgroupWatch struct {
	dirs []string          // the selected cgroups' directories
	ids  map[uint64]string // the ids handed to the kernel side → directory
}

// newCgroupWatch resolves the selected cgroups to their directories.
func newCgroupWatch(paths []string) (*cgroupWatch, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	mount, err := cgroup.Mount()
	if err != nil {
		return nil, err
	}
	w := &cgroupWatch{ids: map[uint64]string{}}
	for _, p := range paths {
		dir, err := cgroup.Resolve(mount, p)
		if err != nil {
			return nil, err
		}
		w.dirs = append(w.dirs, dir)
	}
	return w, nil
}

// scan walks the selected cgroups: it returns the ids of cgroups that
// appeared and disappeared since the last scan, and calls proc for every
// process in them.
func (w *cgroupWatch) scan(proc func(pid int)) (added, removed []uint64) {
	seen := map[uint64]bool{}
	for _, dir := range w.dirs {
		err := cgroup.Walk(dir, func(d string, id uint64) {
			seen[id] = true
			if _, ok := w.ids[id]; !ok {
				w.ids[id] = d
				added = append(added, id)
			}
			pids, err := cgroup.Procs(d)
			if err != nil {
				slog.Debug("cgroup processes", "cgroup", d, "error", err)
			}
			for _, pid := range pids {
				proc(pid)
			}
		})
		if err != nil {
			slog.Debug("walk cgroup", "cgroup", dir, "error", err)
		}
	}
	for id := range w.ids {
		if !seen[id] {
			delete(w.ids, id)
			removed = append(removed, id)
		}
	}
	return added, removed
}

// selected lists the processes a selector matches as the trace starts,
// with the processes they started, and the ids of the selected cgroups.
func (s *session) selected() (pids []int, cgroups []uint64) {
	if s.cg != nil {
		cgroups, _ = s.cg.scan(func(pid int) { pids = append(pids, pid) })
	}
	if sel := s.cfg.Select; sel.byName() || len(sel.PIDs) > 0 {
		all, err := s.cfg.Proc.PIDs()
		if err != nil {
			slog.Debug("select processes", "error", err)
		}
		for _, pid := range all {
			if sel.matches(s.cfg.Proc, pid) {
				pids = append(pids, pid)
			}
		}
	}
	self := os.Getpid()
	return slices.DeleteFunc(withDescendants(s.cfg.Proc, pids), func(pid int) bool { return pid == self }), cgroups
}

// adoptMatching traces the processes that match and are not traced yet.
func (s *session) adoptMatching() {
	pids, _ := s.selected()
	for _, pid := range pids {
		s.adopt(pid)
	}
}

// adopt starts following a process that came to match, and the processes
// it started before snag saw it. A process that is exiting (its last calls
// returning after its exit was read) is not adopted again.
func (s *session) adopt(pid int) {
	self := os.Getpid()
	for _, p := range withDescendants(s.cfg.Proc, []int{pid}) {
		if s.enr.live[p] || p == self || !s.cfg.Proc.Exists(p) || s.tr.Exiting(p) {
			continue
		}
		if err := s.tr.AddPID(p); err != nil {
			s.enr.note(fmt.Sprintf("pid %d not traced: %v", p, err))
			continue
		}
		s.enr.live[p] = true
		s.enr.snapshot(p)
		s.enr.watchPython(p)
	}
}

// selectEvent tells whether a continuous trace keeps an event: those of
// traced processes, and those of processes that come to match, adopted
// then. Every exec on the host is reported; the exits of processes never
// adopted (of a traced cgroup, between two scans) are left out.
func (s *session) selectEvent(ev *model.Event) bool {
	if s.enr.live[ev.PID] {
		return true
	}
	switch {
	case ev.Kind == model.EvExit:
		return false
	case ev.Kind == model.EvExec && !s.cfg.Select.matches(s.cfg.Proc, ev.PID):
		return false
	}
	s.adopt(ev.PID)
	return s.enr.live[ev.PID]
}

// untrace removes a process that exited from the kernel side's tables.
func (s *session) untrace(pid int) {
	if err := s.tr.RemovePID(pid); err != nil {
		slog.Debug("untrace", "pid", pid, "error", err)
	}
}

// scanCgroups follows the cgroups that appeared below the selected ones
// and adopts the processes in them that snag has not seen yet.
func (s *session) scanCgroups() {
	added, removed := s.cg.scan(func(pid int) {
		if !s.enr.live[pid] {
			s.adopt(pid)
		}
	})
	for _, id := range added {
		if err := s.tr.AddCgroup(id); err != nil {
			s.enr.note(fmt.Sprintf("cgroup %s not traced: %v", s.cg.ids[id], err))
		}
	}
	for _, id := range removed {
		if err := s.tr.RemoveCgroup(id); err != nil {
			slog.Debug("forget cgroup", "id", id, "error", err)
		}
	}
}
