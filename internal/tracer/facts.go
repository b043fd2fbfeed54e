package tracer

import (
	"log/slog"
	"slices"
	"strings"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/procfs"
	"github.com/snagtrace/snag/internal/runtimes"
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
func (s *session) detectRuntime(pid int) model.Runtime {
	rt, err := runtimes.Detect(s.cfg.Proc, pid)
	if err != nil {
		slog.Debug("no runtime", "pid", pid, "error", err)
	}
	return rt
}

// process returns the trace's entry for pid, nil if there is none.
func (s *session) process(pid int) *model.Process {
	for i := range s.trace.Processes {
		if p := &s.trace.Processes[i]; p.PID == pid {
			return p
		}
	}
	return nil
}

// fdFacts reads pid's open files and epoll interest lists, given its
// sockets. end marks the reading at the end of the trace, which records
// the epoll sets only: the files are those open at the attach.
func (s *session) fdFacts(pid int, socks []model.Socket, end bool) {
	p := s.cfg.Proc
	fds, err := p.FDs(pid)
	if err != nil {
		slog.Debug("no fds", "pid", pid, "error", err)
		return
	}
	if !end {
		s.trace.Files = append(s.trace.Files, procfs.OpenFiles(pid, fds)...)
	}
	sets, err := p.EpollSets(pid, fds, socks, end)
	if err != nil {
		slog.Debug("epoll sets", "pid", pid, "error", err)
	}
	s.trace.Epoll = append(s.trace.Epoll, sets...)
}

// notePeer remembers a peer an event names for the listener lookup.
func (s *session) notePeer(a model.Addr) {
	if a.IsZero() || len(s.peers) >= maxLocalPeers {
		return
	}
	if a.Family == model.FamilyUnix && a.Path == "" {
		return
	}
	if s.peers == nil {
		s.peers = map[model.Addr]bool{}
	}
	s.peers[a] = true
}

// endFacts reads, once the programs are detached, what may have changed
// since the attach: the runtime (gevent and asyncio are often imported
// after start), the epoll interest lists, and the listeners serving the
// local peers the trace names.
func (s *session) endFacts() {
	t := s.trace
	netPID := 0
	for i := range t.Processes {
		proc := &t.Processes[i]
		if proc.Exited || !s.cfg.Proc.Exists(proc.PID) {
			continue
		}
		if netPID == 0 || proc.PID == t.Target.PID {
			netPID = proc.PID
		}
		proc.Runtime = runtimes.Merge(proc.Runtime, s.detectRuntime(proc.PID))
		socks, err := s.cfg.Proc.Sockets(proc.PID)
		if err != nil {
			slog.Debug("no sockets at the end", "pid", proc.PID, "error", err)
		}
		_ = s.cfg.Proc.ResolveUnixPeers(proc.PID, socks) // best effort, as at the attach
		s.fdFacts(proc.PID, socks, true)
	}
	for _, sk := range t.Sockets {
		if sk.State != "LISTEN" {
			s.notePeer(sk.Peer)
		}
	}
	for _, set := range t.Epoll {
		for _, fd := range set.FDs {
			s.notePeer(fd.Peer)
		}
	}
	if netPID == 0 || len(s.peers) == 0 {
		return // nobody left whose network namespace names the peers
	}
	addrs := make([]model.Addr, 0, len(s.peers))
	for a := range s.peers {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, func(a, b model.Addr) int { return strings.Compare(a.String(), b.String()) })
	ls, err := s.cfg.Proc.Listeners(netPID, addrs)
	if err != nil {
		slog.Debug("listeners", "pid", netPID, "error", err)
	}
	t.Listeners = ls
}
