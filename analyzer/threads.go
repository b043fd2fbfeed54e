package analyzer

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/syscalls"
)

// Role thresholds.
const (
	// minLoopCalls: a thread that returns from a multi-fd readiness wait this
	// often is running an event loop even if something else (a stall, the
	// GIL) takes more of its time.
	minLoopCalls = 3
	// minLoopShare: below this share of its life in the loop wait, a few
	// epoll calls (a Go runtime's non-blocking netpoll, say) do not make a
	// loop...
	minLoopShare = 0.01
	// ...unless the thread spends most of its syscall time outside futex:
	// a loop so stalled that events are always pending when it polls (a
	// gevent hub stuck in MySQLdb makes a handful of epoll_wait calls in
	// seconds, each returning at once) is still a loop, while an idle
	// runtime thread parks in futex.
	// idleMaxSyscalls and idleMaxCPU: a thread that made at most this many
	// calls and used under 1% CPU did nothing worth a role.
	idleMaxSyscalls = 10
	idleMaxCPU      = 0.01
	idleMaxRate     = 5.0  // calls a second
	idleMaxBusy     = 0.05 // share of its life in calls that are not waits
	// workerFutexShare: a thread whose syscall time is at least half futex
	// (or SysV queue) waits is a pool worker waiting for work.
	workerFutexShare = 0.5
	// workerCondShare: with the futex operation known, a quarter of its
	// call time in condition-variable or semaphore waits makes a thread a
	// pool worker whose jobs themselves block.
	workerCondShare = 0.25
)

// Budget categories.
const (
	catCPU         = "cpu"
	catIdle        = "idle"
	catFutex       = "futex"
	catSleep       = "sleep"
	catFile        = "file"
	catPipe        = "pipe"
	catNetwork     = "network"     // socket I/O whose peer is not known
	catIO          = "io"          // read/write below the event threshold: fd kind unknown
	catReadiness   = "readiness"   // poll/select outside the loop, peer unknown
	catChildWait   = "child wait"  // wait4/waitid
	catOther       = "other"       // any other syscall
	catUnaccounted = "unaccounted" // neither on CPU nor in a traced syscall: runnable, page faults
)

const einprogress = 115

// thread is everything known about one traced thread.
type thread struct {
	pid, tid int
	name     string
	onCPU    time.Duration
	life     time.Duration                 // wall time it existed during the trace
	stats    map[string]*model.SyscallStat // by name: every futex op summed in "futex"
	// futexOps splits the thread's futex calls by operation class, when the
	// source knew it (syscalls.FutexOp*).
	futexOps map[string]*model.SyscallStat
	calls    uint64         // syscalls made during the trace
	events   []*model.Event // its syscall, connect, accept and sendto events, in time order
	blocked  *model.BlockedState

	role     model.Role
	loopWait string
	loopFD   int // the loop's epoll fd when events show it, else -1

	svc  services
	proc *procFacts
	s    *session

	evidence  string // why the role: shown with it
	netpoller bool   // a Go runtime thread: its loop cannot be stalled by a call

	idle    time.Duration
	busyBlk time.Duration // syscall time that is not idle
	budget  []model.BudgetItem
}

// session holds the indexed trace while the rules run.
type session struct {
	t        *model.Trace
	cfg      Config
	wall     time.Duration
	threads  []*thread // by PID, then TID
	byTID    map[int]*thread
	svc      services
	runtimes map[int]model.Runtime
	celery   map[int]bool // PIDs that look like Celery workers
	procName map[int]string
	procs    map[int]*procFacts
	files    fileIndex
	// saturated: the busy share of each serving thread when all of them
	// were saturated, set by workerSaturation.
	saturated map[int]float64
	pools     []*pool
	byTime    []*model.Event // every event in time order (sortedEvents)
}

func newSession(t *model.Trace, cfg Config) *session {
	s := &session{t: t, cfg: cfg, wall: t.Duration, byTID: map[int]*thread{},
		celery: map[int]bool{}, procName: map[int]string{}, svc: spoken(t)}
	if s.wall <= 0 {
		s.wall = s.wallFromEvents()
	}
	s.indexProcesses()
	s.indexRuntimes()
	s.indexProcFacts()
	s.markForkedServers()
	s.indexFiles()
	get := func(pid, tid int) *thread {
		th := s.byTID[tid]
		if th == nil {
			th = &thread{pid: pid, tid: tid, life: s.wall, stats: map[string]*model.SyscallStat{}, loopFD: -1, svc: s.svc}
			s.byTID[tid] = th
		}
		return th
	}
	forks, exits := s.lifecycle()
	for i := range t.Threads {
		tt := &t.Threads[i]
		th := get(tt.PID, tt.TID)
		th.name = tt.Name
		th.onCPU += tt.OnCPU
		th.life = s.lifetime(tt, forks, exits)
	}
	// The thread's entries point into the trace's aggregates until two
	// must be summed: only then is one copied, its histogram too (a copy
	// would share its counts), so the trace is never written to and the
	// aggregates of 2,000 threads are not held twice. A by-name entry of
	// one futex operation is that operation's aggregate, Op and all;
	// summing several clears Op.
	sums := map[*model.SyscallStat]bool{}
	sum := func(cur, st *model.SyscallStat) *model.SyscallStat {
		if !sums[cur] {
			c := *cur
			c.Hist = cur.Hist.Clone()
			cur = &c
			sums[cur] = true
		}
		if cur.Op != st.Op {
			cur.Op = ""
		}
		cur.Add(st)
		return cur
	}
	for i := range t.Syscalls {
		st := &t.Syscalls[i]
		th := get(st.PID, st.TID)
		th.calls += st.Count
		if st.Op != "" {
			if th.futexOps == nil {
				th.futexOps = map[string]*model.SyscallStat{}
			}
			if cur := th.futexOps[st.Op]; cur != nil {
				th.futexOps[st.Op] = sum(cur, st)
			} else {
				th.futexOps[st.Op] = st
			}
		}
		if cur := th.stats[st.Name]; cur != nil {
			th.stats[st.Name] = sum(cur, st)
		} else {
			th.stats[st.Name] = st
		}
	}
	for _, ev := range s.callEvents() {
		th := get(ev.PID, ev.TID)
		th.events = append(th.events, ev)
	}
	for i := range t.Blocked {
		b := &t.Blocked[i]
		if th := s.byTID[b.TID]; th != nil || !b.Running {
			get(b.PID, b.TID).blocked = b
		}
	}
	for _, th := range s.byTID {
		if th.name == "" {
			th.name = s.procName[th.pid]
		}
		s.threads = append(s.threads, th)
	}
	slices.SortFunc(s.threads, func(x, y *thread) int {
		if c := cmp.Compare(x.pid, y.pid); c != 0 {
			return c
		}
		return cmp.Compare(x.tid, y.tid)
	})
	for _, th := range s.threads {
		th.s = s
		th.proc = s.procOf(th.pid)
		for name := range th.stats {
			if syscalls.Multiplexer(name) {
				th.proc.readinessThreads++
				break
			}
		}
	}
	for _, th := range s.threads {
		th.classify()
		th.computeBudget()
	}
	return s
}

func (s *session) wallFromEvents() time.Duration {
	var last uint64
	for i := range s.t.Events {
		last = max(last, s.t.Events[i].Time)
	}
	if last > s.t.StartNS {
		return time.Duration(last - s.t.StartNS)
	}
	return 0
}

func (s *session) indexProcesses() {
	look := func(pid int, comm string, cmdline []string, exe string) {
		if s.procName[pid] == "" {
			s.procName[pid] = comm
		}
		all := strings.ToLower(comm + " " + exe + " " + strings.Join(cmdline, " "))
		if strings.Contains(all, "celery") {
			s.celery[pid] = true
		}
	}
	look(s.t.Target.PID, s.t.Target.Comm, s.t.Target.Cmdline, s.t.Target.Exe)
	for _, p := range s.t.Processes {
		look(p.PID, p.Comm, p.Cmdline, p.Exe)
	}
}

// lifetime narrows a thread's wall time to the part of the trace it lived,
// when fork and exit events show it.
func (s *session) lifetime(tt *model.Thread, forks, exits map[int]uint64) time.Duration {
	start, end := s.t.StartNS, s.t.StartNS+uint64(s.wall)
	if at, ok := forks[tt.TID]; ok && tt.Started {
		start = max(start, at)
	}
	if at, ok := exits[tt.TID]; ok && tt.Exited {
		end = min(end, at)
	}
	if end <= start {
		return s.wall
	}
	return time.Duration(end - start)
}

// lifecycle indexes when each thread was created and ended.
func (s *session) lifecycle() (forks, exits map[int]uint64) {
	forks, exits = map[int]uint64{}, map[int]uint64{}
	for i := range s.t.Events {
		switch ev := &s.t.Events[i]; ev.Kind {
		case model.EvFork:
			forks[ev.ChildPID] = ev.Time
		case model.EvExit:
			exits[ev.TID] = ev.Time
		}
	}
	return forks, exits
}

// callEvents returns the syscall-like events in time order. A source may
// report a slow connect both as EvConnect and as EvSyscall; the copy is
// dropped so its time counts once.
func (s *session) callEvents() []*model.Event {
	type key struct {
		tid  int
		time uint64
		name string
	}
	typed := map[key]bool{}
	for i := range s.t.Events {
		ev := &s.t.Events[i]
		switch ev.Kind {
		case model.EvConnect, model.EvAccept, model.EvSendTo:
			typed[key{ev.TID, ev.Time, ev.Syscall}] = true
		}
	}
	var out []*model.Event
	for i := range s.t.Events {
		ev := &s.t.Events[i]
		switch ev.Kind {
		case model.EvSyscall:
			if typed[key{ev.TID, ev.Time, ev.Syscall}] {
				continue
			}
		case model.EvConnect, model.EvAccept, model.EvSendTo:
		default:
			continue
		}
		out = append(out, ev)
	}
	slices.SortStableFunc(out, func(x, y *model.Event) int { return cmp.Compare(x.Time, y.Time) })
	return out
}

// isQueueWait: where a pool worker waits for work.
func isQueueWait(name string) bool {
	return syscalls.ClassOf(name) == syscalls.ClassFutex || syscalls.SysVIPC(name)
}

// loopCandidate measures how much of one readiness syscall's time looks like
// an event loop's wait rather than a client library's wait on one fd.
type loopCandidate struct {
	name  string
	fd    int
	time  time.Duration
	calls uint64
}

func (th *thread) loopCandidates() []loopCandidate {
	var out []loopCandidate
	for name, st := range th.stats {
		if syscalls.ClassOf(name) != syscalls.ClassReadiness {
			continue
		}
		c := loopCandidate{name: name, fd: -1, time: st.Total, calls: st.Count}
		var evs []*model.Event
		for _, ev := range th.events {
			if ev.Syscall == name {
				evs = append(evs, ev)
			}
		}
		switch {
		case syscalls.Multiplexer(name):
			// The loop is the epoll fd waited on longest; waits on another
			// epoll fd (a library's private one) are not the loop.
			byFD := map[int]time.Duration{}
			for _, ev := range evs {
				byFD[ev.FD] += ev.Duration
			}
			best := -1
			for fd, d := range byFD {
				if best == -1 || d > byFD[best] || d == byFD[best] && fd < best {
					best = fd
				}
			}
			if len(byFD) > 0 {
				c.fd = best
			}
			if len(byFD) > 1 {
				for _, ev := range evs {
					if ev.FD != best {
						c.time -= ev.Duration
						c.calls--
					}
				}
			}
		case syscalls.PollSet(name):
			// Single-fd polls with a timeout are a blocking client (libmariadb,
			// libmemcached, libpq waiting for its server); poll over no fds is
			// a sleep. Only polls over several fds are evidence of a loop.
			multi := false
			for _, ev := range evs {
				if ev.PollNFDs > 1 {
					multi = true
					continue
				}
				c.time -= ev.Duration
				c.calls--
			}
			if b := th.blocked; b != nil && b.Syscall == name && syscalls.Is(name, syscalls.ArgPollFDs) && b.Args[1] > 1 {
				multi = true // blocked since before the attach in a poll over several fds
			}
			if !multi {
				// No poll over several fds seen (none, or all quick and so
				// not recorded one by one): no evidence of a loop. A
				// prefork worker polls its pipe and a client its socket.
				continue
			}
		}
		if c.time > 0 || c.calls > 0 {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(x, y loopCandidate) int {
		if c := cmp.Compare(y.time, x.time); c != 0 {
			return c
		}
		return cmp.Compare(x.name, y.name)
	})
	return out
}

// classify sets the thread's role from where it waits when it has nothing
// to do: a loop's readiness wait, accept, or a futex. Stalls (a driver's
// poll, a blocking recv) are not idle waits and never decide the role, so a
// hub stuck 90% in MySQL is still recognised as the loop it is.
func (th *thread) classify() {
	if len(th.stats) == 0 && th.blocked != nil && !th.blocked.Running && th.blocked.Syscall != "" {
		// Blocked since before attach and never returned: its whole life
		// went to that call.
		th.stats[th.blocked.Syscall] = &model.SyscallStat{PID: th.pid, TID: th.tid, Name: th.blocked.Syscall,
			Total: max(th.life-th.onCPU, 0)}
	}
	var futexTime, acceptTime, sleepTime, total time.Duration
	for name, st := range th.stats {
		total += st.Total
		if syscalls.ClassOf(name) == syscalls.ClassSleep {
			sleepTime += st.Total
		}
		if isQueueWait(name) {
			futexTime += st.Total
		}
		if syscalls.ClassOf(name) == syscalls.ClassAccept {
			acceptTime += st.Total
		}
	}
	if strings.HasPrefix(th.name, "iou-wrk-") || strings.HasPrefix(th.name, "iou-sqp-") {
		// io_uring's kernel workers live in the process but run no user
		// code: whatever /proc says they wait in is not a loop.
		th.role, th.evidence = model.RoleOther, "an io_uring kernel worker"
		return
	}
	var loop loopCandidate
	if cs := th.loopCandidates(); len(cs) > 0 {
		loop = cs[0]
	}
	hasLoop := loop.name != "" && loop.time > 0
	switch {
	case th.didNothing(total-loop.time-futexTime-sleepTime) && (hasLoop || th.blocked == nil || futexTime > 0):
		// It did nothing worth a role: waiting in its loop, on a futex or
		// not at all. (A thread hung since the attach in anything else,
		// a driver's poll, say, is judged by that call below.)
		th.role, th.evidence = model.RoleIdle, "made at most a few calls and used no CPU"
		if hasLoop {
			th.loopWait = loop.name
		}
	case acceptTime > 0 && acceptTime >= loop.time && acceptTime >= futexTime:
		th.role, th.evidence = model.RoleAcceptor, "waits in accept"
	case !hasLoop && th.proc.forkedFor != "" && th.tid == th.pid:
		// Forked for one connection and gone (or busy) before it waited
		// for a second request: it served that connection.
		th.role, th.evidence = model.RoleSyncWorker, "forked to serve one connection its parent "+th.proc.forkedFor
	case hasLoop && (loop.time >= futexTime ||
		loop.calls >= minLoopCalls && share(loop.time, th.life) >= minLoopShare ||
		loop.calls >= minLoopCalls && share(futexTime, total) < workerFutexShare):
		th.loopWait = loop.name
		th.loopFD = loop.fd
		th.role, th.evidence = th.servingRole()
	case th.calls <= idleMaxSyscalls && share(th.onCPU, th.life) < idleMaxCPU:
		th.role, th.evidence = model.RoleIdle, "made at most a few calls and used no CPU"
	case futexTime > 0 && share(futexTime, total) >= workerFutexShare:
		th.role, th.evidence = model.RoleWorker, "waits for work in futex"
	case share(th.condWait(), total) >= workerCondShare:
		// A pool thread whose jobs block (on a database, say) spends less
		// than half its call time waiting for work, but waits for it on a
		// condition variable or semaphore, never on a lock.
		th.role, th.evidence = model.RoleWorker, "waits for work on a condition variable or semaphore (FUTEX_WAIT_BITSET) between jobs"
	case futexTime > 0 && poolRuntime(th.proc.runtime):
		// libuv's threadpool, the JVM's and Go's park idle threads on a
		// condition variable: between jobs they wait for work.
		th.role, th.evidence = model.RoleWorker, "a "+th.proc.runtime.String()+" pool thread: waits for work in futex"
	default:
		th.role = model.RoleOther
	}
}

// condWait is the thread's time in condition-variable and semaphore
// waits (FUTEX_WAIT_BITSET), 0 when the source did not split futex by
// operation.
func (th *thread) condWait() time.Duration {
	if st := th.futexOps[syscalls.FutexOpWaitBitset]; st != nil {
		return st.Total
	}
	return 0
}

// didNothing reports whether a thread did nothing worth a role: under 1%
// CPU, few calls (at most idleMaxSyscalls, or idleMaxRate a second: a
// supervisor waking once a second to look around), and hardly any time in
// calls other than its waits (busy is that time). A loop hung in a slow
// lookup makes few calls too, but spends its time in them.
func (th *thread) didNothing(busy time.Duration) bool {
	if share(th.onCPU, th.life) >= idleMaxCPU || share(busy, th.life) >= idleMaxBusy {
		return false
	}
	return th.calls <= idleMaxSyscalls || th.life > 0 && float64(th.calls)/th.life.Seconds() <= idleMaxRate
}

// isLoopEvent reports whether ev is the loop's own wait.
func (th *thread) isLoopEvent(ev *model.Event) bool {
	if !waitsInReadiness(th.role) || ev.Syscall != th.loopWait {
		return false
	}
	if syscalls.Multiplexer(ev.Syscall) {
		return th.loopFD < 0 || ev.FD == th.loopFD
	}
	if syscalls.PollSet(ev.Syscall) {
		return ev.PollNFDs > 1
	}
	return true
}

// isIdleSyscall reports whether all of a syscall's time is this thread
// waiting for work (the loop wait's time is split by event instead).
func (th *thread) isIdleSyscall(name string) bool {
	switch th.role {
	case model.RoleAcceptor:
		// A forking server's readiness wait (the postmaster's select) is
		// its wait for connections too.
		return syscalls.ClassOf(name) == syscalls.ClassAccept || th.loopWait != "" && name == th.loopWait
	case model.RoleWorker:
		return isQueueWait(name)
	case model.RoleIdle:
		return true // it waited, whatever in
	case model.RoleEventLoop:
		// A Go M parks in futex between goroutines as idly as it polls.
		return th.netpoller && isQueueWait(name)
	case model.RoleOther:
		// A readiness wait watching no connection waits for signals,
		// timers or a wake-up: idle too.
		return th.loopWait != "" && name == th.loopWait
	}
	return false
}

// category names the budget slice a call belongs to.
func category(ev *model.Event, svc services) string {
	if !ev.Peer.IsZero() && !(ev.Peer.Family == model.FamilyUnix && ev.Peer.Path == "") {
		return "peer " + svc.label(ev.Peer)
	}
	if ev.FDKnown {
		switch ev.FDKind {
		case model.FDFile:
			return catFile
		case model.FDPipe:
			return catPipe
		case model.FDSocket:
			return catNetwork
		}
	}
	return classCategory(ev.Syscall)
}

func classCategory(name string) string {
	switch syscalls.ClassOf(name) {
	case syscalls.ClassReadiness:
		return catReadiness
	case syscalls.ClassSocketRecv, syscalls.ClassSocketSend, syscalls.ClassConnect, syscalls.ClassAccept:
		return catNetwork
	case syscalls.ClassFileIO:
		return catIO
	case syscalls.ClassSync:
		return catFile
	case syscalls.ClassSleep:
		return catSleep
	case syscalls.ClassFutex:
		return catFutex
	case syscalls.ClassProcWait:
		return catChildWait
	}
	return catOther
}

// computeBudget splits the thread's life: CPU, idle waits, and blocked time
// per peer where slow events name one, else per kind of call.
func (th *thread) computeBudget() {
	cats := map[string]time.Duration{}
	if th.onCPU > 0 {
		cats[catCPU] = th.onCPU
	}
	evTime := map[string]time.Duration{}
	for _, ev := range th.events {
		if _, ok := th.stats[ev.Syscall]; !ok {
			continue // an event without its aggregate: the aggregate is authoritative
		}
		if th.isIdleSyscall(ev.Syscall) {
			continue
		}
		evTime[ev.Syscall] += ev.Duration
		if th.isLoopEvent(ev) {
			cats[catIdle] += ev.Duration
			continue
		}
		cats[category(ev, th.svc)] += ev.Duration
	}
	for name, st := range th.stats {
		if th.isIdleSyscall(name) {
			cats[catIdle] += st.Total
			continue
		}
		rest := st.Total - evTime[name]
		if rest <= 0 {
			continue
		}
		// Calls below the event threshold: the loop wait's remainder is
		// idle, the rest goes by kind of call.
		if waitsInReadiness(th.role) && name == th.loopWait {
			cats[catIdle] += rest
		} else {
			cats[classCategory(name)] += rest
		}
	}
	var sum time.Duration
	for name, d := range cats {
		sum += d
		if name == catIdle {
			th.idle = d
		} else if name != catCPU {
			th.busyBlk += d
		}
	}
	if rest := th.life - sum; rest > 0 {
		cats[catUnaccounted] = rest
	}
	th.budget = th.budget[:0]
	for name, d := range cats {
		if d > 0 {
			th.budget = append(th.budget, model.BudgetItem{Category: name, Time: d})
		}
	}
	slices.SortFunc(th.budget, func(x, y model.BudgetItem) int {
		if c := cmp.Compare(y.Time, x.Time); c != 0 {
			return c
		}
		return cmp.Compare(x.Category, y.Category)
	})
}

func (th *thread) summary() model.ThreadSummary {
	return model.ThreadSummary{
		PID: th.pid, TID: th.tid, Name: th.name, Role: th.role, LoopWait: th.loopWait, Evidence: th.evidence,
		OnCPU: th.onCPU, Blocked: th.busyBlk, Idle: th.idle, Syscalls: th.calls,
		Budget: slices.Clone(th.budget),
	}
}

// busy is the thread's life minus its idle waits.
func (th *thread) busy() time.Duration { return max(th.life-th.idle, 0) }

// syscallTime is the thread's total time in syscalls.
func (th *thread) syscallTime() time.Duration {
	var d time.Duration
	for _, st := range th.stats {
		d += st.Total
	}
	return d
}
