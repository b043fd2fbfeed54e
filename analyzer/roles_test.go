package analyzer

import (
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/syscalls"
)

// preforkWorker is a uWSGI-style sync worker: its epoll fd 5 watches the
// shared listening socket (fd 3) and the master's control socketpair
// (fd 4); each request blocks in recvfrom on the database for ~50ms.
func preforkWorker(b *builder, pid int, requests int, db time.Duration) {
	b.process(pid, "uwsgi", "--ini", "app.ini").runtime(pid, model.Runtime{Name: model.RuntimeCPython, Version: "3.11.2"})
	b.thread(pid, pid, "uwsgi", time.Duration(requests)*2*ms)
	b.t.Sockets = append(b.t.Sockets, model.Socket{PID: pid, FD: 3, Proto: "tcp", State: "LISTEN", Local: inet("127.0.0.1:8000")})
	b.t.Epoll = append(b.t.Epoll, model.EpollSet{PID: pid, EPFD: 5, FDs: []model.EpollFD{
		{FD: 3, Kind: model.FDSocket, Listening: true, Local: inet("127.0.0.1:8000")},
		{FD: 4, Kind: model.FDSocket, Peer: model.Addr{Family: model.FamilyUnix}},
	}})
	for range requests {
		b.slow(1, model.Event{PID: pid, TID: pid, Syscall: "epoll_wait", FD: 5, FDKnown: true, FDKind: model.FDOther, Duration: 20 * ms})
		b.event(model.Event{Kind: model.EvAccept, PID: pid, TID: pid, Syscall: "accept4", FD: 3, Ret: 6, Peer: inet("127.0.0.1:40000")})
		b.calls(pid, pid, "accept4", 1, 10*time.Microsecond)
		b.slow(1, model.Event{PID: pid, TID: pid, Syscall: "recvfrom", FD: 7, FDKnown: true, FDKind: model.FDSocket,
			Peer: inet("127.0.0.1:3306"), Duration: db, Ret: 100})
		b.calls(pid, pid, "close", 1, 5*time.Microsecond)
	}
}

func TestSyncWorkerBlockedOnItsDatabaseIsNoStall(t *testing.T) {
	b := newTrace(5 * time.Second)
	preforkWorker(b, 10, 60, 50*ms)
	a := Analyze(b.t, Config{})
	th := threadOf(t, a, 10)
	if th.Role != model.RoleSyncWorker || th.LoopWait != "epoll_wait" {
		t.Fatalf("role = %s/%q (%s), want sync-worker/epoll_wait", th.Role, th.LoopWait, th.Evidence)
	}
	if fs := findingsOf(a, model.KindLoopStall); len(fs) != 0 {
		t.Errorf("stalls = %+v, want none: a sync worker blocks inside its request by design", fs)
	}
	if MaxSeverity(a) >= model.SeverityMedium {
		t.Errorf("findings = %+v, want none medium or high", a.Findings)
	}
	if got := budgetOf(th, "peer 127.0.0.1:3306 (mysql)"); got != 3*time.Second {
		t.Errorf("db budget = %v, want 3s", got)
	}
}

func TestSyncWorkersAllBusyAreSaturated(t *testing.T) {
	b := newTrace(5 * time.Second)
	preforkWorker(b, 10, 90, 52*ms)
	preforkWorker(b, 11, 90, 52*ms)
	// Busy: the epoll waits return at once, requests are always queued.
	for i := range b.t.Events {
		if b.t.Events[i].Syscall == "epoll_wait" {
			b.t.Events[i].Duration = 0
		}
	}
	for i := range b.t.Syscalls {
		if b.t.Syscalls[i].Name == "epoll_wait" {
			b.t.Syscalls[i].Total = 90 * 50 * time.Microsecond
		}
	}
	a := Analyze(b.t, Config{})
	sat := findingsOf(a, model.KindWorkerSaturation)
	if len(sat) != 1 || sat[0].Count != 2 || !strings.Contains(sat[0].Hint, "async") {
		t.Fatalf("saturation = %+v, want one finding over both workers", sat)
	}
	if fs := findingsOf(a, model.KindLoopStall); len(fs) != 0 {
		t.Errorf("stalls = %+v, want none", fs)
	}
}

func TestAcceptPatternDecidesTheRole(t *testing.T) {
	tests := []struct {
		name string
		fds  []int64 // what each accept returned
		want model.Role
	}{
		{"one connection at a time reuses the lowest fd", []int64{6, 6, 6, 6}, model.RoleSyncWorker},
		{"connections accepted while others are open", []int64{6, 7, 8, 9}, model.RoleEventLoop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTrace(2*time.Second).process(1, "server").thread(1, 1, "server", 10*ms)
			b.calls(1, 1, "select", 10, 50*ms)
			for _, fd := range tt.fds {
				b.slow(1, model.Event{PID: 1, TID: 1, Syscall: "select", PollNFDs: 2, PollTimeout: -1, Duration: 40 * ms})
				b.event(model.Event{Kind: model.EvAccept, PID: 1, TID: 1, Syscall: "accept4", FD: 3, Ret: fd})
				b.calls(1, 1, "accept4", 1, 10*time.Microsecond)
				b.calls(1, 1, "recvfrom", 2, 10*time.Microsecond)
			}
			th := threadOf(t, Analyze(b.t, Config{}), 1)
			if th.Role != tt.want {
				t.Errorf("role = %s (%s), want %s", th.Role, th.Evidence, tt.want)
			}
		})
	}
}

func TestLoopWatchingConnectionsStaysALoop(t *testing.T) {
	b := newTrace(5 * time.Second)
	preforkWorker(b, 10, 60, 50*ms)
	b.t.Epoll = append(b.t.Epoll, model.EpollSet{PID: 10, EPFD: 5, End: true, FDs: []model.EpollFD{
		{FD: 3, Kind: model.FDSocket, Listening: true},
		{FD: 8, Kind: model.FDSocket, Peer: inet("127.0.0.1:40001")},
	}})
	a := Analyze(b.t, Config{})
	if th := threadOf(t, a, 10); th.Role != model.RoleEventLoop {
		t.Fatalf("role = %s (%s), want event-loop: it watches a client connection next to its listener", th.Role, th.Evidence)
	}
	if fs := findingsOf(a, model.KindLoopStall); len(fs) != 1 || fs[0].Severity != model.SeverityHigh {
		t.Errorf("stalls = %+v, want the database stall", fs)
	}
}

func TestPoolWaitingForWorkIsNotContention(t *testing.T) {
	for _, rt := range []model.Runtime{{Name: model.RuntimeNode, Loop: model.LoopLibuv}, {Name: model.RuntimeJVM}} {
		t.Run(rt.String(), func(t *testing.T) {
			b := newTrace(5*time.Second).process(1, "server").runtime(1, rt)
			for tid := 2; tid <= 5; tid++ {
				// 40% in short futex waits, 30% reading files between them.
				b.thread(1, tid, "worker", 500*ms)
				b.calls(1, tid, "futex", 1000, 2*ms)
				b.calls(1, tid, "read", 1000, 1500*time.Microsecond)
			}
			a := Analyze(b.t, Config{})
			if fs := findingsOf(a, model.KindLockContention); len(fs) != 0 {
				t.Errorf("contention = %+v, want none for a pool waiting for work", fs)
			}
			if th := threadOf(t, a, 2); th.Role != model.RoleWorker {
				t.Errorf("role = %s, want worker", th.Role)
			}
		})
	}
}

func TestCallsThatDoNotWaitAreNoStall(t *testing.T) {
	for _, name := range []string{"restart_syscall", "getsockopt", "epoll_ctl"} {
		t.Run(name, func(t *testing.T) {
			b := loopThread()
			b.slow(1, model.Event{PID: 1, TID: 1, Syscall: name, Duration: 15 * ms})
			if fs := findingsOf(Analyze(b.t, Config{}), model.KindLoopStall); len(fs) != 0 {
				t.Errorf("stalls = %+v, want none", fs)
			}
		})
	}
}

func TestNodeFileStallNamesTheFileAndTheRuntime(t *testing.T) {
	b := newTrace(5*time.Second).process(1, "node", "server.js").runtime(1, model.Runtime{Name: model.RuntimeNode, Version: "v18.19.0", Loop: model.LoopLibuv})
	b.thread(1, 1, "node", 200*ms)
	b.calls(1, 1, "epoll_wait", 400, 2*ms)
	b.event(model.Event{Kind: model.EvOpen, PID: 1, TID: 1, Syscall: "openat", Ret: 21, Filename: "/srv/data/big.json"})
	b.slow(40, model.Event{PID: 1, TID: 1, Syscall: "read", FD: 21, FDKnown: true, FDKind: model.FDFile, Duration: 30 * ms})
	fs := findingsOf(Analyze(b.t, Config{}), model.KindLoopStall)
	if len(fs) != 1 {
		t.Fatalf("stalls = %+v, want one", fs)
	}
	f := fs[0]
	if f.Path != "/srv/data/big.json" || !strings.HasPrefix(f.Title, "Node.js event loop blocked in read on /srv/data/big.json") ||
		f.Runtime != "Node.js v18.19.0" {
		t.Errorf("stall = %q path %q runtime %q", f.Title, f.Path, f.Runtime)
	}
	if !strings.Contains(f.Hint, "fs.promises") || strings.Contains(f.Hint, "gevent") || strings.Contains(f.Hint, "asyncio") {
		t.Errorf("hint = %q, want Node.js advice only", f.Hint)
	}
}

func TestGoRuntimeThreadsAreNoLoops(t *testing.T) {
	netpoll := frames("runtime/internal/syscall.Syscall6@server", "runtime.netpoll@server", "runtime.findRunnable@server")
	b := newTrace(5*time.Second).process(1, "server").runtime(1, model.Runtime{Name: model.RuntimeGo, Version: "go1.22.1"})
	b.thread(1, 1, "server", 300*ms)
	b.slow(50, model.Event{PID: 1, TID: 1, Syscall: "epoll_pwait", FD: 4, FDKnown: true, FDKind: model.FDOther, Duration: 50 * ms, Stack: netpoll})
	// A goroutine reading a slow file on this thread blocks only its M.
	b.slow(20, model.Event{PID: 1, TID: 1, Syscall: "pread64", FD: 9, FDKnown: true, FDKind: model.FDFile, Duration: 40 * ms})
	b.thread(1, 2, "iou-wrk-1", 0)
	b.t.Blocked = append(b.t.Blocked, model.BlockedState{PID: 1, TID: 2, Nr: 426, Syscall: "io_uring_enter", FD: -1})
	a := Analyze(b.t, Config{})
	if th := threadOf(t, a, 1); th.Role != model.RoleEventLoop || !strings.Contains(th.Evidence, "netpoller") {
		t.Errorf("role = %s (%s), want the netpoller's loop", th.Role, th.Evidence)
	}
	if th := threadOf(t, a, 2); th.Role == model.RoleEventLoop {
		t.Errorf("io_uring worker role = %s, want no loop", th.Role)
	}
	if len(a.Findings) != 0 {
		t.Errorf("findings = %+v, want none", a.Findings)
	}
}

func TestForkedPerConnectionBackendIsASyncWorker(t *testing.T) {
	// A PostgreSQL postmaster (pid 1) accepts, then forks backend 2 for
	// the connection; the backend waits in epoll_wait for its client's
	// next query and reads its data files in between.
	b := newTrace(4*time.Second).process(1, "postgres").thread(1, 1, "postgres", 10*ms)
	b.calls(1, 1, "pselect6", 5, 500*ms)
	b.event(model.Event{Kind: model.EvAccept, PID: 1, TID: 1, Syscall: "accept", FD: 5, Ret: 9, Peer: inet("127.0.0.1:40000")})
	b.event(model.Event{Kind: model.EvFork, PID: 1, TID: 1, ChildPID: 2})
	b.t.Processes = append(b.t.Processes, model.Process{PID: 2, PPID: 1, Comm: "postgres"})
	b.thread(2, 2, "postgres", 300*ms)
	b.slow(40, model.Event{PID: 2, TID: 2, Syscall: "epoll_wait", FD: 4, FDKnown: true, FDKind: model.FDOther, Duration: 60 * ms})
	b.slow(30, model.Event{PID: 2, TID: 2, Syscall: "pread64", FD: 12, FDKnown: true, FDKind: model.FDFile, Duration: 20 * ms})
	a := Analyze(b.t, Config{})
	if th := threadOf(t, a, 2); th.Role != model.RoleSyncWorker {
		t.Errorf("backend role = %s (%s), want sync-worker", th.Role, th.Evidence)
	}
	if fs := findingsOf(a, model.KindLoopStall); len(fs) != 0 {
		t.Errorf("stalls = %+v, want none", fs)
	}
}

func TestReadinessWaitWatchingNoConnectionIsNoLoop(t *testing.T) {
	b := newTrace(4*time.Second).process(1, "postgres").thread(1, 1, "postgres", 10*ms)
	b.slow(20, model.Event{PID: 1, TID: 1, Syscall: "epoll_wait", FD: 4, FDKnown: true, FDKind: model.FDOther, Duration: 190 * ms})
	b.slow(2, model.Event{PID: 1, TID: 1, Syscall: "pwrite64", FD: 12, FDKnown: true, FDKind: model.FDFile, Duration: 30 * ms})
	b.t.Epoll = []model.EpollSet{{PID: 1, EPFD: 4, FDs: []model.EpollFD{
		{FD: 6, Kind: model.FDPipe, Path: "pipe:[1]"}, {FD: 7, Kind: model.FDOther, Path: "anon_inode:[signalfd]"}}}}
	a := Analyze(b.t, Config{})
	if th := threadOf(t, a, 1); th.Role != model.RoleOther || th.Idle < 3*time.Second {
		t.Errorf("role = %s (%s), idle %v, want other, its wait idle", th.Role, th.Evidence, th.Idle)
	}
	if len(a.Findings) != 0 {
		t.Errorf("findings = %+v", a.Findings)
	}
}

func TestOneSlowCallOfUnknownModeIsNoStall(t *testing.T) {
	b := loopThread()
	// From a log: no O_NONBLOCK known; one send took 17ms (preempted).
	b.slow(1, model.Event{PID: 1, TID: 1, Syscall: "sendto", FD: 9, Peer: inet("127.0.0.1:43836"), Duration: 17 * ms})
	if fs := findingsOf(Analyze(b.t, Config{}), model.KindLoopStall); len(fs) != 0 {
		t.Errorf("stalls = %+v, want none", fs)
	}
	b.slow(1, model.Event{PID: 1, TID: 1, Syscall: "sendto", FD: 9, Peer: inet("127.0.0.1:43836"), Duration: 30 * ms})
	if fs := findingsOf(Analyze(b.t, Config{}), model.KindLoopStall); len(fs) != 1 {
		t.Errorf("stalls = %+v, want one once it repeats", fs)
	}
}

func TestNonBlockingAcceptsMakeALoop(t *testing.T) {
	b := newTrace(2*time.Second).process(1, "server").thread(1, 1, "server", 10*ms)
	b.calls(1, 1, "epoll_wait", 10, 50*ms)
	for range 5 {
		b.slow(1, model.Event{PID: 1, TID: 1, Syscall: "epoll_wait", FD: 4, Duration: 40 * ms})
		b.event(model.Event{Kind: model.EvAccept, PID: 1, TID: 1, Syscall: "accept4", FD: 3, Ret: 6, Args: [6]uint64{3, 0, 0, 0x80800}})
		b.calls(1, 1, "recvfrom", 2, 10*time.Microsecond)
	}
	if th := threadOf(t, Analyze(b.t, Config{}), 1); th.Role != model.RoleEventLoop {
		t.Errorf("role = %s (%s), want event-loop", th.Role, th.Evidence)
	}
}

func TestDispatcherIsAnAcceptor(t *testing.T) {
	// memcached's listener: accepts, writes a byte to a worker's pipe,
	// and never reads a connection itself.
	b := newTrace(2*time.Second).process(1, "memcached").thread(1, 1, "memcached", 10*ms)
	b.calls(1, 1, "epoll_wait", 40, 40*ms)
	for fd := int64(30); fd < 70; fd++ {
		b.event(model.Event{Kind: model.EvAccept, PID: 1, TID: 1, Syscall: "accept4", FD: 3, Ret: fd, Args: [6]uint64{3, 0, 0, 0x800}})
		b.calls(1, 1, "accept4", 1, 10*time.Microsecond)
		b.calls(1, 1, "write", 1, 5*time.Microsecond)
	}
	if th := threadOf(t, Analyze(b.t, Config{}), 1); th.Role != model.RoleAcceptor {
		t.Errorf("role = %s (%s), want acceptor", th.Role, th.Evidence)
	}
}

func TestPoolThreadWhoseJobsBlockIsAWorker(t *testing.T) {
	// gunicorn gthread's pool: half its call time waiting for a request
	// on a semaphore, half in its database.
	b := newTrace(4*time.Second).process(1, "gunicorn").thread(1, 2, "gunicorn", 70*ms)
	b.t.Syscalls = append(b.t.Syscalls, opStat(1, 2, syscalls.FutexOpWaitBitset, 200, 9*ms), opStat(1, 2, syscalls.FutexOpWake, 60, 100*time.Microsecond))
	b.calls(1, 2, "recvfrom", 200, 10*ms)
	if th := threadOf(t, Analyze(b.t, Config{}), 2); th.Role != model.RoleWorker {
		t.Errorf("role = %s (%s), want worker", th.Role, th.Evidence)
	}
}
