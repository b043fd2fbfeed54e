//go:build linux

package tracer

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/testutil"
)

func TestMain(m *testing.M) {
	MaybeExecShim() // first: the shim inherits the workload's environment
	testutil.MaybeRunWorkload()
	os.Exit(m.Run())
}

type sum struct {
	count, errors uint64
	p50           time.Duration
}

func stat(t *model.Trace, pid, tid int, name string) sum {
	var h model.Histogram
	var s sum
	var maxd time.Duration
	for _, st := range t.Syscalls {
		if st.Name == name && (tid == 0 || st.TID == tid) && (pid == 0 || st.PID == pid) {
			s.count += st.Count
			s.errors += st.Errors
			h.Merge(&st.Hist)
			maxd = max(maxd, st.Max)
		}
	}
	s.p50 = min(time.Duration(h.Quantile(0.5)), maxd)
	return s
}

const (
	nGetppid = 20000
	mClose   = 333
	kSleeps  = 5
)

var deterministic = testutil.Workload{Getppid: nGetppid, BadClose: mClose, Sleeps: kSleeps, SleepFor: 50 * time.Millisecond}

// checkDeterministic asserts the workload's counts. Under snag run the
// thread also did the Go runtime's start-up, which closes a few fds of its
// own, so there only the failing closes are exactly the workload's.
func checkDeterministic(t *testing.T, tr *model.Trace, pid, tid int, fromStart bool) {
	t.Helper()
	if s := stat(tr, pid, tid, "getppid"); s.count != nGetppid || s.errors != 0 {
		t.Errorf("getppid: %d calls, %d errors; want exactly %d and 0", s.count, s.errors, nGetppid)
	}
	if s := stat(tr, pid, tid, "close"); (s.count != mClose && !fromStart) || s.errors != mClose {
		t.Errorf("close(-1): %d calls, %d errors; want exactly %d failing", s.count, s.errors, mClose)
	}
	s := stat(tr, pid, tid, "nanosleep")
	if s.count != kSleeps {
		t.Errorf("nanosleep: %d calls, want %d", s.count, kSleeps)
	}
	if s.p50 < 45*time.Millisecond || s.p50 > 55*time.Millisecond {
		t.Errorf("nanosleep p50 %v, want 50ms ±10%%", s.p50)
	}
	var slow int
	for _, e := range tr.Events {
		if e.Kind == model.EvSyscall && e.Syscall == "nanosleep" && e.TID == tid {
			slow++
		}
	}
	if slow != kSleeps {
		t.Errorf("%d nanosleep events over the threshold, want %d", slow, kSleeps)
	}
	if tr.Drops.Total() != 0 {
		t.Errorf("dropped %+v, want nothing", tr.Drops)
	}
}

// attach runs a gated workload and releases it once the tracer is attached.
func attach(t *testing.T, w testutil.Workload, cfg Config) (*model.Trace, *testutil.Running) {
	t.Helper()
	return attachKeeping(t, w, cfg, 0)
}

// attachKeeping is attach keeping at most max events (0: all).
func attachKeeping(t *testing.T, w testutil.Workload, cfg Config, max int) (*model.Trace, *testutil.Running) {
	t.Helper()
	s, ctx, run := attachSession(t, w, cfg, KeepEvents(max))
	tr, err := s.run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return tr, run
}

// attachSession prepares a session on a gated workload that is released
// once the tracer is attached; ctx ends once the workload is done.
func attachSession(t *testing.T, w testutil.Workload, cfg Config, sinks ...Sink) (s *session, ctx context.Context, run *testutil.Running) {
	t.Helper()
	w.GateOnStdin = true
	run = testutil.StartWorkload(t, w)
	cfg.PIDs = []int{run.Cmd.Process.Pid}
	if cfg.Threshold == 0 {
		cfg.Threshold = 10 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	release := started(func() {
		go func() {
			if err := run.Go(); err != nil {
				t.Error(err)
			}
			if err := run.WaitDone(); err != nil {
				t.Error(err)
			}
			time.Sleep(300 * time.Millisecond) // let the child's last events arrive
			cancel()
		}()
	})
	s, err := newSession(cfg, append([]Sink{release}, sinks...))
	if err != nil {
		t.Fatal(err)
	}
	return s, ctx, run
}

func TestAttachCountsExactly(t *testing.T) {
	testutil.RequireBPF(t)
	tr, run := attach(t, deterministic, Config{})
	checkDeterministic(t, tr, run.Cmd.Process.Pid, run.TID, false)
	if tr.Target.PID != run.Cmd.Process.Pid || tr.Target.Comm == "" {
		t.Errorf("target %+v, want pid %d with its comm", tr.Target, run.Cmd.Process.Pid)
	}
}

func TestRunCountsExactlyFromExec(t *testing.T) {
	testutil.RequireBPF(t)
	w := deterministic
	os.Setenv(testutil.EnvWorkload, testutil.Spec(w))
	defer os.Unsetenv(testutil.EnvWorkload)
	tr, err := Run(context.Background(), Config{
		Command:   []string{os.Args[0], "-test.run=^$"},
		Threshold: 10 * time.Millisecond,
	}, KeepEvents(0))
	if err != nil {
		t.Fatal(err)
	}
	// The workload's locked thread is whichever thread made the getppid calls.
	tid := 0
	for _, st := range tr.Syscalls {
		if st.Name == "getppid" {
			tid = st.TID
		}
	}
	checkDeterministic(t, tr, tr.Target.PID, tid, true)
	// snag's shim reads its release byte from fd 3 before exec: that read
	// must not be in the trace, only the command's own syscalls.
	var sawExec bool
	for _, e := range tr.Events {
		if e.Kind == model.EvExec {
			sawExec = true
		}
	}
	if !sawExec {
		t.Error("no exec event: the command was not traced from its exec")
	}
	if s := stat(tr, 0, 0, "execve"); s.count != 0 {
		t.Errorf("execve counted %d times: the shim's own exec leaked into the trace", s.count)
	}
}

func TestThreadsStartedAfterAttachAreTraced(t *testing.T) {
	testutil.RequireBPF(t)
	w := testutil.Workload{Getppid: 5000, Threads: 3}
	tr, run := attach(t, w, Config{})
	if len(run.Threads) != 3 {
		t.Fatalf("workload reported threads %v", run.Threads)
	}
	for _, tid := range run.Threads {
		if s := stat(tr, 0, tid, "getppid"); s.count != 5000 {
			t.Errorf("thread %d: %d getppid calls, want 5000", tid, s.count)
		}
	}
	// A new thread's first return is from clone, never entered: that is no
	// call begun before the attach. (Threads already waiting when tracing
	// began, the gate's read and the runtime's parked futexes, rightly are.)
	for _, e := range tr.Events {
		if e.Partial && (e.Syscall == "clone" || e.Syscall == "clone3") {
			t.Errorf("partial %s on tid %d: a new thread's first return taken for a call begun before the attach", e.Syscall, e.TID)
		}
	}
}

func TestFollowForks(t *testing.T) {
	testutil.RequireBPF(t)
	w := testutil.Workload{Getppid: 4000, Fork: true}
	for _, follow := range []bool{true, false} {
		t.Run(fmt.Sprintf("follow=%v", follow), func(t *testing.T) {
			tr, run := attach(t, w, Config{FollowForks: follow})
			if run.Child <= 0 {
				t.Fatalf("workload reported child %d", run.Child)
			}
			got := stat(tr, run.Child, 0, "getppid").count
			switch {
			case follow && got != 4000:
				t.Errorf("child %d: %d getppid calls with --follow-forks, want 4000", run.Child, got)
			case !follow && got != 0:
				t.Errorf("child %d: %d getppid calls without --follow-forks, want none", run.Child, got)
			}
		})
	}
}

func TestDropsAreCountedAndCountsStayExact(t *testing.T) {
	testutil.RequireBPF(t)
	// Every syscall an event, into a one-page ring: most must be dropped.
	tr, run := attach(t, testutil.Workload{Getppid: nGetppid}, Config{AllEvents: true, RingBytes: 4096})
	if tr.Drops.RingBuffer == 0 {
		t.Errorf("no ring buffer drops with %d events into 4 KiB", nGetppid)
	}
	if s := stat(tr, 0, run.TID, "getppid"); s.count != nGetppid {
		t.Errorf("getppid: %d calls with drops, want exactly %d", s.count, nGetppid)
	}
}

func TestMaxEventsBoundsMemoryAndCounts(t *testing.T) {
	testutil.RequireBPF(t)
	tr, run := attachKeeping(t, testutil.Workload{Getppid: 5000}, Config{AllEvents: true}, 100)
	if len(tr.Events) != 100 {
		t.Errorf("kept %d events, want the limit of 100", len(tr.Events))
	}
	if tr.Drops.OverLimit < 4900 {
		t.Errorf("over-limit drops %d, want at least the 4900 getppid events past the limit", tr.Drops.OverLimit)
	}
	if s := stat(tr, 0, run.TID, "getppid"); s.count != 5000 {
		t.Errorf("getppid: %d calls past the event limit, want exactly 5000", s.count)
	}
}

// A call already blocked when tracing begins is reported when it returns,
// marked partial with the time since the attach, and left out of the
// aggregates, which hold whole calls only.
func TestCallThatBeganBeforeTheAttach(t *testing.T) {
	testutil.RequireBPF(t)
	w := testutil.StartWorkload(t, testutil.Workload{Sleeps: 1, SleepFor: 1500 * time.Millisecond})
	time.Sleep(300 * time.Millisecond) // the workload is inside its nanosleep
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		if err := w.WaitDone(); err != nil {
			t.Error(err)
		}
		time.Sleep(200 * time.Millisecond)
		cancel()
	}()
	tr, err := Run(ctx, Config{PIDs: []int{w.Cmd.Process.Pid}, Threshold: 10 * time.Millisecond}, KeepEvents(0))
	if err != nil {
		t.Fatal(err)
	}
	var partial []model.Event
	for _, e := range tr.Events {
		if e.Partial {
			partial = append(partial, e)
		}
	}
	if len(partial) == 0 {
		t.Fatal("no partial event for the sleep that began before the attach")
	}
	var sleep *model.Event
	for i := range partial {
		if partial[i].TID == w.TID && partial[i].Syscall == "nanosleep" {
			sleep = &partial[i]
		}
	}
	if sleep == nil {
		t.Fatalf("partial events %+v, none the workload's nanosleep", partial)
	}
	// Since the attach only: less than the whole 1.5 s sleep, more than the
	// threshold (how much less depends on how long loading took).
	if sleep.Duration < 10*time.Millisecond || sleep.Duration >= 1500*time.Millisecond {
		t.Errorf("partial sleep lasted %v since the attach, want between the threshold and the whole 1.5s", sleep.Duration)
	}
	if s := stat(tr, 0, w.TID, "nanosleep"); s.count != 0 {
		t.Errorf("the partial sleep is in the aggregates (%d calls)", s.count)
	}
}
