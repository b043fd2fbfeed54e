package analyzer

import (
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// BenchmarkAnalyze runs every rule over a recording-sized trace: 64 threads,
// 100k slow calls and 3k connects.
func BenchmarkAnalyze(b *testing.B) {
	tb := newTrace(60*time.Second).process(1, "python3")
	for tid := 1; tid <= 64; tid++ {
		tb.thread(1, tid, "t", time.Second)
		tb.calls(1, tid, "epoll_wait", 1000, ms)
		tb.calls(1, tid, "futex", 2000, 2*ms)
		tb.slow(1500, model.Event{PID: 1, TID: tid, Syscall: "poll", PollNFDs: 1, PollTimeout: -1,
			Peer: inet("10.0.0.2:3306"), Duration: 12 * ms, Stack: mariadbStack})
		for range 50 {
			tb.event(model.Event{Kind: model.EvConnect, PID: 1, TID: tid, Syscall: "connect", FD: 9, Peer: inet("10.0.0.3:6379"), Duration: ms})
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		Analyze(tb.t, Config{Expect: []Endpoint{{"10.0.0.2", 3306}}})
	}
}

// TestThreadLifetime checks a thread started and ended during the trace is
// judged over the time it lived.
func TestThreadLifetime(t *testing.T) {
	b := newTrace(10 * time.Second)
	b.t.Threads = append(b.t.Threads, model.Thread{PID: 1, TID: 2, Started: true, Exited: true})
	b.event(model.Event{Kind: model.EvFork, PID: 1, TID: 1, ChildPID: 2, Thread: true, Time: b.t.StartNS + uint64(time.Second)})
	b.event(model.Event{Kind: model.EvExit, PID: 1, TID: 2, Thread: true, Time: b.t.StartNS + uint64(3*time.Second)})
	b.calls(1, 2, "epoll_wait", 100, 19*ms)
	th := threadOf(t, Analyze(b.t, Config{}), 2)
	if got := budgetOf(th, catUnaccounted); got != 100*ms {
		t.Errorf("unaccounted = %v, want 100ms of a 2s life", got)
	}
}
