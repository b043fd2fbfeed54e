package tracer

import (
	"log/slog"
	"slices"
	"strings"

	"github.com/snagtrace/snag/internal/cgroup"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/procfs"
	"github.com/snagtrace/snag/internal/runtimes"
	"github.com/snagtrace/snag/internal/syscalls"
)

// This file gathers what the analyzer knows about a traced process besides
// its syscalls: its runtime, its open files, what its epoll instances
// watch (at the attach and at the end), and who serves the local peers it
// talks to. All of it is read from /proc outside the event path: at the
// attach, on exec, and once the programs are detached.

// maxLocalPeers bounds the distinct peers the trace remembers for the
// listener lookup at the end; a client of thousands of local ports is
// named by its first ones.
const maxLocalPeers = 256

// detectRuntime tells what runs pid's code; an unreadable process keeps
// an unknown runtime.
func (e *enricher) detectRuntime(pid int) model.Runtime {
	rt, err := runtimes.Detect(e.proc, pid)
	if err != nil {
		slog.Debug("no runtime", "pid", pid, "error", err)
	}
	return rt
}

// process returns the trace's entry for pid, nil if there is none.
func (e *enricher) process(pid int) *model.Process {
	for i := range e.trace.Processes {
		if p := &e.trace.Processes[i]; p.PID == pid {
			return p
		}
	}
	return nil
}

// fdFacts reads pid's open files and epoll interest lists, given its
// sockets. end marks the reading at the end of the trace, which records
// the epoll sets only: the files are those open at the attach.
func (e *enricher) fdFacts(pid int, socks []model.Socket, end bool) {
	p := e.proc
	fds, err := p.FDs(pid)
	if err != nil {
		slog.Debug("no fds", "pid", pid, "error", err)
		return
	}
	if !end {
		e.trace.Files = append(e.trace.Files, procfs.OpenFiles(pid, fds)...)
	}
	sets, err := p.EpollSets(pid, fds, socks, end)
	if err != nil {
		slog.Debug("epoll sets", "pid", pid, "error", err)
	}
	e.trace.Epoll = append(e.trace.Epoll, sets...)
}

// notePeer remembers a peer an event names for the listener lookup.
func (e *enricher) notePeer(a model.Addr) {
	if a.IsZero() || len(e.peers) >= maxLocalPeers {
		return
	}
	if a.Family == model.FamilyUnix && a.Path == "" {
		return
	}
	if e.peers == nil {
		e.peers = map[model.Addr]bool{}
	}
	e.peers[a] = true
}

// endFacts reads, once the programs are detached, what may have changed
// since the attach: the runtime (gevent and asyncio are often imported
// after start), the epoll interest lists, and the listeners serving the
// local peers the trace names.
func (e *enricher) endFacts() {
	t := e.trace
	netPID := 0
	for i := range t.Processes {
		proc := &t.Processes[i]
		if proc.Exited || !e.proc.Exists(proc.PID) {
			continue
		}
		if netPID == 0 || proc.PID == t.Target.PID {
			netPID = proc.PID
		}
		proc.Runtime = runtimes.Merge(proc.Runtime, e.detectRuntime(proc.PID))
		socks, err := e.proc.Sockets(proc.PID)
		if err != nil {
			slog.Debug("no sockets at the end", "pid", proc.PID, "error", err)
		}
		_ = e.proc.ResolveUnixPeers(proc.PID, socks) // best effort, as at the attach
		e.fdFacts(proc.PID, socks, true)
	}
	for _, sk := range t.Sockets {
		if sk.State != "LISTEN" {
			e.notePeer(sk.Peer)
		}
	}
	for _, set := range t.Epoll {
		for _, fd := range set.FDs {
			e.notePeer(fd.Peer)
		}
	}
	if netPID == 0 || len(e.peers) == 0 {
		return // nobody left whose network namespace names the peers
	}
	addrs := make([]model.Addr, 0, len(e.peers))
	for a := range e.peers {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, func(a, b model.Addr) int { return strings.Compare(a.String(), b.String()) })
	ls, err := e.proc.Listeners(netPID, addrs)
	if err != nil {
		slog.Debug("listeners", "pid", netPID, "error", err)
	}
	t.Listeners = ls
}

// snapshot records what an already running process looks like at attach:
// its runtime, its threads, their CPU time so far, the syscall each is
// blocked in, its open sockets and files, and what its epoll fds watch.
func (e *enricher) snapshot(pid int) {
	p := e.proc
	proc := model.Process{PID: pid}
	proc.PPID, _ = p.PPID(pid)
	proc.Comm, _ = p.Comm(pid)
	proc.Cmdline, _ = p.Cmdline(pid)
	proc.Exe, _ = p.Exe(pid)
	if path, err := p.Cgroup(pid); err == nil {
		cgroup.SetProcess(&proc, path)
	}
	proc.Runtime = e.detectRuntime(pid)
	e.trace.Processes = append(e.trace.Processes, proc)

	tids, _ := p.Tasks(pid)
	for _, tid := range tids {
		th := e.thread(pid, tid)
		if name, err := p.ThreadName(pid, tid); err == nil {
			th.Name = name
		}
		if cpu, err := p.TaskCPU(pid, tid); err == nil {
			e.cpu0[tid] = cpu
		}
		if b, err := p.Blocked(pid, tid); err == nil && !b.Running && b.Nr >= 0 {
			if syscalls.Is(b.Syscall, syscalls.ArgPollFDs) && b.Args[1] > 0 {
				if fd, err := p.PollFD(pid, b.Args[0]); err == nil {
					b.FD = fd
				}
			}
			e.trace.Blocked = append(e.trace.Blocked, b)
		}
	}
	socks, _ := p.Sockets(pid)
	_ = p.ResolveUnixPeers(pid, socks) // best effort: unix peers need netlink in our namespace
	e.trace.Sockets = append(e.trace.Sockets, socks...)
	procfs.JoinPeers(e.trace.Blocked, socks)
	e.fdFacts(pid, socks, false)
}

// windowThreads lists the threads of a window (windows): those alive in
// it, with the CPU time they used in it, and those that exited in it,
// whose last CPU time is unknown (0). The threads the window's aggregates
// name are added first.
func (e *enricher) windowThreads(stats []model.SyscallStat, out []model.Thread) []model.Thread {
	for _, st := range stats {
		e.thread(st.PID, st.TID)
	}
	for tid, th := range e.threads {
		th.OnCPU = 0
		if !th.Exited {
			if th.Name == "" {
				th.Name, _ = e.proc.ThreadName(th.PID, tid)
			}
			if cpu, err := e.proc.TaskCPU(th.PID, tid); err == nil {
				th.OnCPU = cpu - e.cpu0[tid]
				e.cpu0[tid] = cpu
			}
		}
		out = append(out, *th)
	}
	slices.SortFunc(out, func(a, b model.Thread) int { return a.TID - b.TID })
	return out
}

// forgetExited drops, once their last window was cut, the processes and
// threads that exited and every fact the trace kept about them, so that a
// trace of days holds only what is alive.
func (e *enricher) forgetExited() {
	t := e.trace
	gone := map[int]bool{}
	t.Processes = slices.DeleteFunc(t.Processes, func(p model.Process) bool {
		if p.Exited {
			gone[p.PID] = true
		}
		return p.Exited
	})
	for tid, th := range e.threads {
		if th.Exited || gone[th.PID] || !e.live[th.PID] {
			delete(e.threads, tid)
			delete(e.cpu0, tid)
		}
	}
	if len(gone) == 0 {
		return
	}
	t.Sockets = slices.DeleteFunc(t.Sockets, func(x model.Socket) bool { return gone[x.PID] })
	t.Blocked = slices.DeleteFunc(t.Blocked, func(x model.BlockedState) bool { return gone[x.PID] })
	t.Files = slices.DeleteFunc(t.Files, func(x model.OpenFile) bool { return gone[x.PID] })
	t.Epoll = slices.DeleteFunc(t.Epoll, func(x model.EpollSet) bool { return gone[x.PID] })
}

// markExited records that pid is gone though its exit event was not seen
// (lost when the ring buffer was full), so that it is forgotten.
func (e *enricher) markExited(pid int) {
	delete(e.live, pid)
	delete(e.pyPending, pid)
	e.stacks.forget(pid)
	if p := e.process(pid); p != nil {
		p.Exited = true
	}
	for _, th := range e.threads {
		if th.PID == pid {
			th.Exited = true
		}
	}
}

// endThreads fills in, once the programs are detached, the threads the
// aggregates name and each live thread's name and CPU time over the trace.
func (e *enricher) endThreads(stats []model.SyscallStat) []model.Thread {
	for _, st := range stats {
		e.thread(st.PID, st.TID)
	}
	out := make([]model.Thread, 0, len(e.threads))
	for tid, th := range e.threads {
		if !th.Exited {
			if th.Name == "" {
				th.Name, _ = e.proc.ThreadName(th.PID, tid)
			}
			if cpu, err := e.proc.TaskCPU(th.PID, tid); err == nil {
				th.OnCPU = cpu - e.cpu0[tid]
			}
		}
		out = append(out, *th)
	}
	slices.SortFunc(out, func(a, b model.Thread) int { return a.TID - b.TID })
	return out
}
