package analyzer

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/syscalls"
)

// procFacts is what the rules need to know about one process beyond its
// threads' calls: its runtime, its listening sockets, what its epoll fds
// watch, and how its threads took connections.
type procFacts struct {
	runtime   model.Runtime
	listenFDs map[int]bool
	epoll     []model.EpollSet
	accepts   map[int]*acceptPattern // by tid
	// epollWaiters: for each epoll fd the events show waited on, the
	// threads that waited on it.
	epollWaiters map[int]map[int]bool
	// forkedFor says which connection the process was forked to serve:
	// its parent accepted it just before forking it (a PostgreSQL
	// backend, a forking server). "" when it was not.
	forkedFor string
	// forkedServers counts the children it forked that way.
	forkedServers int
	// readinessThreads counts its threads that wait in epoll.
	readinessThreads int
}

// acceptPattern says whether a thread took connections one at a time.
// A prefork worker accepts, serves the connection to its end and closes it
// before the next accept, so the kernel hands it the same lowest free fd
// each time; a loop accepts while earlier connections are still open.
type acceptPattern struct {
	accepts     int
	concurrent  int // accepts made while another connection it accepted was still open
	nonblocking int // accepts asking for a non-blocking socket (accept4 SOCK_NONBLOCK)
}

// sockNonblock is accept4's SOCK_NONBLOCK flag (O_NONBLOCK).
const sockNonblock = 0x800

// procOf is the facts of process pid, made on first use.
func (s *session) procOf(pid int) *procFacts {
	p := s.procs[pid]
	if p == nil {
		p = &procFacts{runtime: s.runtimeOf(pid), listenFDs: map[int]bool{}, accepts: map[int]*acceptPattern{}}
		s.procs[pid] = p
	}
	return p
}

func (s *session) indexProcFacts() {
	s.procs = map[int]*procFacts{}
	get := s.procOf
	for pid := range s.runtimes {
		get(pid)
	}
	for i := range s.t.Sockets {
		if sk := &s.t.Sockets[i]; sk.State == "LISTEN" {
			get(sk.PID).listenFDs[sk.FD] = true
		}
	}
	for _, set := range s.t.Epoll {
		p := get(set.PID)
		p.epoll = append(p.epoll, set)
		for _, w := range set.FDs {
			if w.Listening {
				p.listenFDs[w.FD] = true
			}
		}
	}
	// Accepted fds still open, per process: fd -> accepting tid. A close
	// seen (an event, or a slow close call) ends one; an accept returning
	// an fd already in the set proves the earlier one was closed unseen.
	open := map[int]map[int]int{}
	for _, ev := range s.sortedEvents() {
		if ev.Kind == model.EvSyscall && syscalls.Multiplexer(ev.Syscall) && ev.FD >= 0 {
			p := get(ev.PID)
			if p.epollWaiters == nil {
				p.epollWaiters = map[int]map[int]bool{}
			}
			if p.epollWaiters[ev.FD] == nil {
				p.epollWaiters[ev.FD] = map[int]bool{}
			}
			p.epollWaiters[ev.FD][ev.TID] = true
		}
		switch {
		case ev.Kind == model.EvAccept && ev.Ret >= 0:
			fds := open[ev.PID]
			if fds == nil {
				fds = map[int]int{}
				open[ev.PID] = fds
			}
			fd := int(ev.Ret)
			delete(fds, fd)
			ap := get(ev.PID).accepts[ev.TID]
			if ap == nil {
				ap = &acceptPattern{}
				get(ev.PID).accepts[ev.TID] = ap
			}
			ap.accepts++
			if ev.Syscall == "accept4" && ev.Args[3]&sockNonblock != 0 {
				ap.nonblocking++
			}
			for _, tid := range fds {
				if tid == ev.TID {
					ap.concurrent++
					break
				}
			}
			fds[fd] = ev.TID
		case isClose(ev):
			fd := ev.FD
			if fd < 0 {
				fd = int(int32(ev.Args[0]))
			}
			delete(open[ev.PID], fd)
		}
	}
}

// forkAfterAccept: a process forked this soon after its parent accepted a
// connection, with no other fork between, was forked to serve it.
const forkAfterAccept = 500 * time.Millisecond

// markForkedServers finds processes forked to serve one accepted
// connection each.
func (s *session) markForkedServers() {
	lastAccept := map[int]*model.Event{} // parent pid -> its latest accept not yet followed by a fork
	for _, ev := range s.sortedEvents() {
		switch {
		case ev.Kind == model.EvAccept && ev.Ret >= 0:
			lastAccept[ev.PID] = ev
		case ev.Kind == model.EvFork && !ev.Thread:
			a := lastAccept[ev.PID]
			if a == nil || ev.Time < a.Time || time.Duration(ev.Time-a.Time) > forkAfterAccept {
				continue
			}
			delete(lastAccept, ev.PID)
			s.procOf(ev.PID).forkedServers++
			child := s.procOf(ev.ChildPID)
			child.forkedFor = "accepted from " + a.Peer.String()
			if a.Peer.IsZero() || a.Peer.Family == model.FamilyUnix && a.Peer.Path == "" {
				child.forkedFor = "accepted"
			}
		}
	}
}

// sortedEvents is every event in time order, sorted once per analysis:
// several rules walk the trace in order.
func (s *session) sortedEvents() []*model.Event {
	if s.byTime == nil {
		s.byTime = make([]*model.Event, len(s.t.Events))
		for i := range s.t.Events {
			s.byTime[i] = &s.t.Events[i]
		}
		slices.SortStableFunc(s.byTime, func(x, y *model.Event) int { return cmp.Compare(x.Time, y.Time) })
	}
	return s.byTime
}

// workConn reports whether a watched fd carries work: a connection to or
// from somebody. Listening sockets, pipes, eventfds, timers and unnamed
// socketpairs (a master's control channel) are not: every server, loop or
// not, watches those.
func workConn(w model.EpollFD) bool {
	if w.Kind != model.FDSocket || w.Listening {
		return false
	}
	switch w.Peer.Family {
	case model.FamilyInet, model.FamilyInet6:
		return true
	case model.FamilyUnix:
		return w.Peer.Path != "" || w.Local.Path != ""
	}
	return w.Local.Family == model.FamilyUnix && w.Local.Path != ""
}

// servingRole decides, for a thread that waits in a readiness call, whether
// it multiplexes (an event loop) or serves one connection at a time (a sync
// worker), and says why. Without evidence either way it stays a loop.
func (th *thread) servingRole() (model.Role, string) {
	p := th.proc
	if p.runtime.Name == model.RuntimeGo && th.goNetpoller() {
		// A loop, but one no call can stall: a goroutine blocked in a
		// syscall holds only its own thread while the scheduler runs the
		// others elsewhere.
		th.netpoller = true
		return model.RoleEventLoop, "a Go runtime thread polling the netpoller; a goroutine blocked in a call holds only its own thread"
	}
	ap := p.accepts[th.tid]
	if p.forkedServers > 0 {
		return model.RoleAcceptor, fmt.Sprintf("accepts connections and forks a process to serve each (%d during the trace)", p.forkedServers)
	}
	var sets []model.EpollSet
	if syscalls.Multiplexer(th.loopWait) {
		// Without an event naming its epoll fd, a thread is matched to
		// the process's interest lists only when there is one epoll fd:
		// memcached's listener and its worker loops each have their own.
		fds := map[int]bool{}
		for _, set := range p.epoll {
			fds[set.EPFD] = true
		}
		for _, set := range p.epoll {
			if set.EPFD == th.loopFD || th.loopFD < 0 && len(fds) == 1 {
				sets = append(sets, set)
			}
		}
	}
	syncSets, quietSets := 0, 0
	for _, set := range sets {
		listeners, conns, inbound := 0, 0, 0
		for _, w := range set.FDs {
			switch {
			case w.Listening || p.listenFDs[w.FD] && w.Kind == model.FDSocket:
				listeners++
			case workConn(w):
				conns++
				if th.s.isInbound(w.Local) {
					inbound++
				}
			}
		}
		switch {
		case conns >= 2 || listeners >= 1 && conns >= 1:
			return model.RoleEventLoop, fmt.Sprintf("epoll fd %d watches %d connections and %d listening sockets", set.EPFD, conns, listeners)
		case listeners >= 1 || inbound == 1 && p.readinessThreads <= 1:
			// One client connection makes a per-connection server only
			// where this is the process's one waiting thread (a
			// PostgreSQL backend); memcached's worker loops each hold one
			// client too when the clients are few.
			syncSets++
		case conns == 0:
			quietSets++
		}
	}
	if ap != nil && ap.accepts > 0 && th.dispatches(ap.accepts) {
		return model.RoleAcceptor, fmt.Sprintf("accepted %d connections and served none itself: it hands them to other threads", ap.accepts)
	}
	if ap != nil && ap.concurrent > 0 {
		return model.RoleEventLoop, fmt.Sprintf("accepted %d connections while earlier ones were open", ap.concurrent)
	}
	if strongLoop(p.runtime) {
		return model.RoleEventLoop, "runs " + p.runtime.LoopWords()
	}
	if len(sets) > 0 && syncSets+quietSets == len(sets) && syncSets > 0 {
		return model.RoleSyncWorker, "its readiness wait watches one listening socket or one client connection at a time, then serves it to the end"
	}
	if p.forkedFor != "" {
		return model.RoleSyncWorker, "forked to serve one connection its parent " + p.forkedFor
	}
	if len(sets) > 0 && quietSets == len(sets) {
		return model.RoleOther, "its readiness wait watches no connection: it waits for signals, timers or a wake-up (a supervisor, a background task)"
	}
	if ap != nil && ap.nonblocking > 0 {
		return model.RoleEventLoop, "accepts connections non-blocking, to multiplex them"
	}
	if ap != nil && ap.accepts >= 2 {
		return model.RoleSyncWorker, fmt.Sprintf("accepted %d connections one at a time", ap.accepts)
	}
	return model.RoleEventLoop, "waits in " + th.loopWait + " over several fds"
}

// dispatches reports whether a thread that accepted connections did no
// socket I/O of its own beyond a wake-up write or two per connection: it
// hands them to worker threads (memcached's listener, a Java acceptor).
func (th *thread) dispatches(accepts int) bool {
	var rw uint64
	for name, st := range th.stats {
		switch syscalls.ClassOf(name) {
		case syscalls.ClassSocketRecv, syscalls.ClassSocketSend:
			return false
		case syscalls.ClassFileIO:
			rw += st.Count
		}
	}
	return rw <= uint64(2*accepts+4)
}

// isInbound reports whether a socket's local address is one a traced
// process listens on: the connection was accepted, a client of ours.
func (s *session) isInbound(local model.Addr) bool {
	for i := range s.t.Sockets {
		l := &s.t.Sockets[i]
		if l.State != "LISTEN" || l.Local.Family != local.Family {
			continue
		}
		switch local.Family {
		case model.FamilyUnix:
			if l.Local.Path != "" && l.Local.Path == local.Path {
				return true
			}
		case model.FamilyInet, model.FamilyInet6:
			if l.Local.Port == local.Port && (l.Local.IP == local.IP || l.Local.IP.IsUnspecified()) {
				return true
			}
		}
	}
	return false
}

// goNetpoller reports whether the thread's readiness wait is the Go
// runtime's netpoller rather than an epoll loop the program wrote itself:
// the stacks say so when captured (runtime.netpoll); without them, the
// runtime polls with epoll_pwait where a hand-written loop on amd64
// usually calls epoll_wait.
func (th *thread) goNetpoller() bool {
	stacks := false
	for _, ev := range th.events {
		if ev.Syscall != th.loopWait || len(ev.Stack) == 0 {
			continue
		}
		stacks = true
		for _, f := range ev.Stack {
			if strings.HasPrefix(f.Function, "runtime.netpoll") {
				return true
			}
		}
	}
	if stacks {
		return false
	}
	// Go's runtime puts every socket it manages in non-blocking mode: a
	// thread doing I/O on a blocking socket drives fds of its own (a
	// LockOSThread loop), not the netpoller.
	for _, ev := range th.events {
		if ev.FDKnown && ev.FDKind == model.FDSocket && !ev.NonBlock {
			return false
		}
	}
	// The runtime's netpoller is one epoll fd any M may wait on; a loop
	// the program wrote (LockOSThread, its own epoll fd) is waited on by
	// its one thread. So a thread waiting on an epoll fd other than the
	// one most threads share is the program's own loop.
	if th.loopFD >= 0 {
		shared, most := -1, 0
		for fd, tids := range th.proc.epollWaiters {
			if len(tids) > most || len(tids) == most && fd < shared {
				shared, most = fd, len(tids)
			}
		}
		if most >= 2 && shared != th.loopFD {
			return false
		}
	}
	return th.loopWait == "epoll_pwait"
}

// waitsForWork reports whether the role has an idle wait that is its
// readiness call: an event loop or a sync worker.
func waitsInReadiness(r model.Role) bool {
	return r == model.RoleEventLoop || r == model.RoleSyncWorker
}

// neverWaits reports whether a call cannot block: when one is slow the time
// went to the CPU or to preemption, not to waiting on something.
func neverWaits(name string) bool {
	return syscalls.ClassOf(name) == syscalls.ClassNoWait
}
