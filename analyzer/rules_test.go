package analyzer

import (
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

func TestRoles(t *testing.T) {
	tests := []struct {
		name     string
		build    func(b *builder)
		role     model.Role
		loopWait string
	}{
		{"epoll loop", func(b *builder) {
			b.calls(1, 1, "epoll_wait", 500, 15*ms)
			b.calls(1, 1, "recvfrom", 500, 10*time.Microsecond)
		}, model.RoleEventLoop, "epoll_wait"},
		{"a loop that did nothing is idle: one long epoll_wait", func(b *builder) {
			b.slow(1, model.Event{PID: 1, TID: 1, Syscall: "epoll_wait", FD: 3, Duration: 5 * time.Second})
		}, model.RoleIdle, "epoll_wait"},
		{"poll over many fds", func(b *builder) {
			b.t.Threads[0].OnCPU = 200 * ms
			b.slow(50, model.Event{PID: 1, TID: 1, Syscall: "poll", PollNFDs: 8, PollTimeout: 1000, Duration: 100 * ms})
		}, model.RoleEventLoop, "poll"},
		{"io_uring loop", func(b *builder) {
			b.calls(1, 1, "io_uring_enter", 100, 50*ms)
		}, model.RoleEventLoop, "io_uring_enter"},
		{"single-fd polls only are a blocking client, not a loop", func(b *builder) {
			b.slow(200, model.Event{PID: 1, TID: 1, Syscall: "poll", PollNFDs: 1, PollTimeout: -1, Peer: inet("10.0.0.2:5432"), Duration: 20 * ms})
			b.calls(1, 1, "futex", 20, 100*ms)
		}, model.RoleOther, ""},
		{"loop stuck in mysql and the GIL is still the loop", func(b *builder) {
			b.calls(1, 1, "epoll_wait", 100, ms)
			b.calls(1, 1, "futex", 300, 5*ms)
			b.slow(300, model.Event{PID: 1, TID: 1, Syscall: "poll", PollNFDs: 1, PollTimeout: -1, Duration: 20 * ms})
		}, model.RoleEventLoop, "epoll_wait"},
		{"blocking accept", func(b *builder) {
			b.calls(1, 1, "accept4", 100, 80*ms)
			b.calls(1, 1, "recvfrom", 100, ms)
		}, model.RoleAcceptor, ""},
		{"pool worker in futex", func(b *builder) {
			b.calls(1, 1, "futex", 100, 90*ms)
			b.calls(1, 1, "write", 100, 10*time.Microsecond)
		}, model.RoleWorker, ""},
		{"idle: a few calls, no cpu", func(b *builder) {
			b.calls(1, 1, "futex", 2, 4*time.Second)
		}, model.RoleIdle, ""},
		{"blocked in epoll_wait since before attach, idle", func(b *builder) {
			b.t.Blocked = append(b.t.Blocked, model.BlockedState{PID: 1, TID: 1, Syscall: "epoll_wait", FD: 4})
		}, model.RoleIdle, "epoll_wait"},
		{"cpu bound", func(b *builder) {
			b.t.Threads[0].OnCPU = 9 * time.Second
			b.calls(1, 1, "write", 100, 10*time.Microsecond)
		}, model.RoleOther, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTrace(10*time.Second).thread(1, 1, "t", 0)
			tt.build(b)
			th := threadOf(t, Analyze(b.t, Config{}), 1)
			if th.Role != tt.role || th.LoopWait != tt.loopWait {
				t.Errorf("role = %s/%q, want %s/%q", th.Role, th.LoopWait, tt.role, tt.loopWait)
			}
		})
	}
}

// loopThread is an event loop thread (epoll fd 5) for stall cases to add to.
func loopThread() *builder {
	b := newTrace(10*time.Second).process(1, "python3", "app.py").runtime(1, geventRuntime).thread(1, 1, "python3", 100*ms)
	b.calls(1, 1, "epoll_wait", 400, 2*ms)
	return b
}

func TestLoopStalls(t *testing.T) {
	tests := []struct {
		name     string
		build    func(b *builder)
		recorded bool // every call is an event, as in a recording
		want     model.Severity
		syscall  string
		peer     string
		hint     string
	}{
		{name: "idle loop waiting 5s in epoll_wait is not a stall", build: func(b *builder) {
			b.slow(2, model.Event{PID: 1, TID: 1, Syscall: "epoll_wait", FD: 5, Duration: 4 * time.Second})
		}},
		{name: "futex on the loop is not a loop stall", build: func(b *builder) {
			b.slow(20, model.Event{PID: 1, TID: 1, Syscall: "futex", Duration: 200 * ms})
		}},
		{name: "non-blocking connect returning EINPROGRESS is not a stall", build: func(b *builder) {
			b.event(model.Event{Kind: model.EvConnect, PID: 1, TID: 1, Syscall: "connect", FD: 9, Ret: -115,
				Peer: inet("10.0.0.9:3306"), Duration: 30 * ms})
			b.calls(1, 1, "connect", 1, 30*ms)
		}},
		{name: "poll with timeout 0 is not a stall", build: func(b *builder) {
			b.slow(10, model.Event{PID: 1, TID: 1, Syscall: "poll", PollNFDs: 1, PollTimeout: 0, Duration: 12 * ms})
		}},
		{name: "recv on a non-blocking socket is not a stall", build: func(b *builder) {
			b.slow(10, model.Event{PID: 1, TID: 1, Syscall: "recvfrom", FD: 8, FDKnown: true, NonBlock: true,
				FDKind: model.FDSocket, Peer: inet("10.0.0.1:6379"), Duration: 15 * ms})
		}},
		{name: "fast reads of unknown blocking mode are not a stall", recorded: true, build: func(b *builder) {
			b.slow(6000, model.Event{PID: 1, TID: 1, Syscall: "read", FD: 8, Duration: 100 * time.Microsecond})
		}},
		{name: "blocking connect", want: model.SeverityMedium, syscall: "connect", peer: "10.0.0.9:3306", hint: "blocking connect",
			build: func(b *builder) {
				b.event(model.Event{Kind: model.EvConnect, PID: 1, TID: 1, Syscall: "connect", FD: 9, FDKnown: true,
					FDKind: model.FDSocket, Peer: inet("10.0.0.9:3306"), Duration: 150 * ms})
				b.calls(1, 1, "connect", 1, 150*ms)
			}},
		{name: "single slow call is low", want: model.SeverityLow, syscall: "fsync", hint: "fsync on the loop",
			build: func(b *builder) {
				b.slow(1, model.Event{PID: 1, TID: 1, Syscall: "fsync", FD: 4, FDKnown: true, FDKind: model.FDFile, Duration: 30 * ms})
			}},
		{name: "short blocking recvs adding up to 6% of the trace", recorded: true, want: model.SeverityMedium,
			syscall: "recvfrom", peer: "10.0.0.3:11211", hint: "pylibmc", build: func(b *builder) {
				b.slow(200, model.Event{PID: 1, TID: 1, Syscall: "recvfrom", FD: 8, FDKnown: true, FDKind: model.FDSocket,
					Peer: inet("10.0.0.3:11211"), Duration: 3 * ms})
			}},
		{name: "sleeps below the event threshold, from aggregates", want: model.SeverityMedium, syscall: "nanosleep",
			hint: "gevent.sleep", build: func(b *builder) {
				b.calls(1, 1, "nanosleep", 1000, ms)
			}},
		{name: "dns on the loop", want: model.SeverityHigh, syscall: "poll", peer: "127.0.0.53:53", hint: "ares",
			build: func(b *builder) {
				b.slow(40, model.Event{PID: 1, TID: 1, Syscall: "poll", PollNFDs: 1, PollTimeout: 5000,
					Peer: inet("127.0.0.53:53"), Duration: 60 * ms})
			}},
		{name: "file reads on the loop", want: model.SeverityHigh, syscall: "read", hint: "file I/O on the loop",
			build: func(b *builder) {
				b.slow(30, model.Event{PID: 1, TID: 1, Syscall: "read", FD: 12, FDKnown: true, FDKind: model.FDFile, Duration: 80 * ms})
			}},
		{name: "no stack: library unknown", want: model.SeverityHigh, syscall: "poll", peer: "10.0.0.2:3306",
			hint: "library is unknown because no user stack was captured", build: func(b *builder) {
				b.slow(100, model.Event{PID: 1, TID: 1, Syscall: "poll", PollNFDs: 1, PollTimeout: -1,
					Peer: inet("10.0.0.2:3306"), Duration: 25 * ms})
			}},
		{name: "a library's own epoll fd blocks the loop", want: model.SeverityHigh, syscall: "epoll_wait",
			build: func(b *builder) {
				b.slow(20, model.Event{PID: 1, TID: 1, Syscall: "epoll_wait", FD: 5, Duration: 50 * ms})
				b.slow(10, model.Event{PID: 1, TID: 1, Syscall: "epoll_wait", FD: 9, Duration: 300 * ms})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := loopThread()
			tt.build(b)
			if tt.recorded {
				b.t.Threshold = 0
			}
			a := Analyze(b.t, Config{})
			if th := threadOf(t, a, 1); th.Role != model.RoleEventLoop {
				t.Fatalf("role = %s, want event-loop", th.Role)
			}
			stalls := findingsOf(a, model.KindLoopStall)
			if tt.want == 0 {
				if len(stalls) != 0 {
					t.Fatalf("got stalls %+v, want none", stalls)
				}
				return
			}
			if len(stalls) != 1 {
				t.Fatalf("got %d stalls, want 1: %+v", len(stalls), stalls)
			}
			f := stalls[0]
			if f.Severity != tt.want || f.Syscall != tt.syscall || f.Peer != tt.peer {
				t.Errorf("stall = %s %s on %q, want %s %s on %q", f.Severity, f.Syscall, f.Peer, tt.want, tt.syscall, tt.peer)
			}
			if !strings.Contains(f.Hint, tt.hint) {
				t.Errorf("hint %q lacks %q", f.Hint, tt.hint)
			}
		})
	}
}

func TestStallThresholdFromConfig(t *testing.T) {
	b := loopThread()
	b.slow(1, model.Event{PID: 1, TID: 1, Syscall: "fsync", FD: 4, FDKnown: true, FDKind: model.FDFile, Duration: 30 * ms})
	if n := len(findingsOf(Analyze(b.t, Config{Threshold: 50 * ms}), model.KindLoopStall)); n != 0 {
		t.Errorf("a 30ms call under a 50ms threshold made %d stalls", n)
	}
	if n := len(findingsOf(Analyze(b.t, Config{Threshold: 20 * ms}), model.KindLoopStall)); n != 1 {
		t.Errorf("a 30ms call over a 20ms threshold made %d stalls, want 1", n)
	}
}

func TestWorkerNotLoopStall(t *testing.T) {
	b := newTrace(10*time.Second).thread(1, 1, "pool", 0).thread(1, 2, "pool", 0)
	for _, tid := range []int{1, 2} {
		b.slow(4, model.Event{PID: 1, TID: tid, Syscall: "futex", Duration: 2 * time.Second})
		b.calls(1, tid, "recvfrom", 50, 20*ms)
	}
	a := Analyze(b.t, Config{})
	if n := len(a.Findings); n != 0 {
		t.Errorf("pool workers waiting for work made findings: %+v", a.Findings)
	}
	if th := threadOf(t, a, 1); th.Role != model.RoleWorker || th.Idle != 8*time.Second {
		t.Errorf("worker = %+v", th)
	}
}

// A thread stuck since before the attach in a poll on one socket is a hung
// client, not an event loop idling in its wait.
func TestBlockedSingleFDPollIsNotALoop(t *testing.T) {
	b := newTrace(time.Second).process(300, "python3 client.py").thread(300, 300, "python3", 0)
	b.t.Blocked = append(b.t.Blocked, model.BlockedState{PID: 300, TID: 300, Nr: 7, Syscall: "poll",
		Args: [6]uint64{0x7ffc0000, 1, 60000}, FD: 4, Peer: inet("127.0.0.1:3306")})
	a := Analyze(b.t, Config{})
	if th := threadOf(t, a, 300); th.Role == model.RoleEventLoop {
		t.Errorf("role %s/%q for a thread stuck in a one-fd poll, want no event loop", th.Role, th.LoopWait)
	}
}

// A Celery prefork child: quick polls (never recorded one by one) and long
// blocking reads of the pipe its parent hands tasks through. Without a poll
// seen over several fds it is no event loop, and its pipe reads are no stall.
func TestPreforkChildIsNotALoop(t *testing.T) {
	b := newTrace(3*time.Second).process(400, "celery worker").thread(400, 401, "python3", 50*ms)
	b.calls(400, 401, "poll", 297, 280*time.Microsecond)
	b.slow(120, model.Event{PID: 400, TID: 401, Syscall: "read", FD: 11, FDKnown: true, FDKind: model.FDPipe, Duration: 21 * ms, Ret: 4})
	a := Analyze(b.t, Config{})
	if th := threadOf(t, a, 401); th.Role == model.RoleEventLoop {
		t.Errorf("role %s/%q, want no event loop", th.Role, th.LoopWait)
	}
	if stalls := findingsOf(a, model.KindLoopStall); len(stalls) != 0 {
		t.Errorf("loop stalls %+v, want none", stalls)
	}
}
