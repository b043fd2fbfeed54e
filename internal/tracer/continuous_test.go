//go:build linux

package tracer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/cgroup"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/testutil"
)

// seen is what the tests look at of one window, copied during the call.
type seen struct {
	start    time.Time
	duration time.Duration
	calls    map[int]uint64 // getppid calls per thread
	procs    map[int]model.Process
	threads  map[int]bool
	// The session's tables as the window was cut, before it forgot what
	// exited in it.
	enrThreads, live, prev int
}

// windowLog is a WindowSink handing each window to the test.
type windowLog struct {
	s       *session
	started chan struct{}
	windows chan seen
	final   *model.Trace
}

func newWindowLog() *windowLog {
	return &windowLog{started: make(chan struct{}), windows: make(chan seen, 1000)}
}

func (l *windowLog) Start(*model.Trace) error    { close(l.started); return nil }
func (l *windowLog) Event(*model.Event) error    { return nil }
func (l *windowLog) Finish(t *model.Trace) error { l.final = t; return nil }

func (l *windowLog) Window(t *model.Trace) error {
	w := seen{start: t.Start, duration: t.Duration, calls: map[int]uint64{}, procs: map[int]model.Process{}, threads: map[int]bool{},
		enrThreads: len(l.s.enr.threads), live: len(l.s.enr.live), prev: len(l.s.win.prev)}
	for _, st := range t.Syscalls {
		if st.Name == "getppid" {
			w.calls[st.TID] += st.Count
		}
	}
	for _, p := range t.Processes {
		w.procs[p.PID] = p
	}
	for _, th := range t.Threads {
		w.threads[th.TID] = true
	}
	l.windows <- w
	return nil
}

// runWindows starts a continuous trace with the log as its sink and
// returns once it is attached; the trace ends with the test.
func runWindows(t *testing.T, cfg Config) (*windowLog, <-chan error) {
	t.Helper()
	testutil.RequireBPF(t)
	log := newWindowLog()
	s, err := newSession(cfg, []Sink{log})
	if err != nil {
		t.Fatal(err)
	}
	log.s = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ended := make(chan struct{})
	go func() {
		_, err := s.run(ctx)
		done <- err
		close(ended)
	}()
	t.Cleanup(func() {
		cancel()
		<-ended
	})
	select {
	case <-log.started:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the trace did not start")
	}
	return log, done
}

// next waits for the next window.
func (l *windowLog) next(t *testing.T) seen {
	t.Helper()
	select {
	case w := <-l.windows:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("no window for 10s")
		return seen{}
	}
}

// until waits for a window satisfying ok, summing the getppid calls of
// tid in every window up to it.
func (l *windowLog) until(t *testing.T, tid int, sum *uint64, what string, ok func(seen) bool) seen {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var w seen
	for time.Now().Before(deadline) {
		w = l.next(t)
		*sum += w.calls[tid]
		if ok(w) {
			return w
		}
	}
	t.Fatalf("no window where %s; the last: processes %+v, %d live, %d threads, %d readings", what, w.procs, w.live, w.enrThreads, w.prev)
	return seen{}
}

const windowInterval = 300 * time.Millisecond

// A thread's calls spread over several windows sum to exactly what it
// made: none lost or counted twice at a cut, the last window's included.
func TestWindowsSumExactly(t *testing.T) {
	const n = 30000
	w := testutil.StartWorkload(t, testutil.Workload{Getppid: n, GateOnStdin: true, Spread: 3 * windowInterval})
	log, done := runWindows(t, Config{PIDs: []int{w.Cmd.Process.Pid}, Interval: windowInterval, Threshold: 10 * time.Millisecond})
	if err := w.Go(); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitDone(); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done: // every target exited
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the trace did not end when its target exited")
	}
	close(log.windows)
	var sum uint64
	var with, windows int
	var end time.Time
	for s := range log.windows {
		if !end.IsZero() && !s.start.Equal(end) {
			t.Errorf("window starts at %v, the one before ended at %v", s.start, end)
		}
		end = s.start.Add(s.duration)
		sum += s.calls[w.TID]
		if s.calls[w.TID] > 0 {
			with++
		}
		windows++
	}
	if sum != n {
		t.Errorf("the windows count %d getppid calls of thread %d, want exactly %d", sum, w.TID, n)
	}
	if with < 2 {
		t.Errorf("the calls fell in %d of %d windows, want them spread over several", with, windows)
	}
	if log.final == nil || !log.final.Start.Add(log.final.Duration).Equal(end) {
		t.Fatalf("Finish did not get the last window")
	}
	// The last window keeps what exited in it.
	if len(log.final.Processes) != 1 || log.final.Processes[0].PID != w.Cmd.Process.Pid || !log.final.Processes[0].Exited {
		t.Errorf("the last window's processes %+v, want pid %d, exited", log.final.Processes, w.Cmd.Process.Pid)
	}
	t.Logf("%d getppid calls in %d of %d windows", sum, with, windows)
}

// A process that starts to match the selector after the trace began is
// traced from its next window; once it exited it leaves the windows and
// the session's tables.
func TestSelectorFollowsProcesses(t *testing.T) {
	tag := "snag-select-" + strconv.Itoa(os.Getpid())
	log, _ := runWindows(t, Config{
		Select:    &Selector{Cmdline: regexp.MustCompile(regexp.QuoteMeta(tag))},
		Interval:  windowInterval,
		Threshold: 10 * time.Millisecond,
	})
	before := log.next(t)
	if len(before.procs) != 0 {
		t.Fatalf("processes %v traced before any matched", before.procs)
	}
	const n = 5000
	w := testutil.StartWorkload(t, testutil.Workload{Getppid: n, GateOnStdin: true, Tag: tag})
	pid := w.Cmd.Process.Pid
	var sum uint64
	log.until(t, w.TID, &sum, fmt.Sprintf("pid %d is traced", pid), func(s seen) bool { _, ok := s.procs[pid]; return ok })
	if err := w.Go(); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitDone(); err != nil {
		t.Fatal(err)
	}
	during := log.until(t, w.TID, &sum, "its calls are counted", func(s seen) bool { return sum >= n })
	if sum != n {
		t.Errorf("%d getppid calls counted, want exactly %d", sum, n)
	}
	if !during.threads[w.TID] {
		t.Errorf("thread %d not in the window of its calls", w.TID)
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	log.until(t, w.TID, &sum, "it exited", func(s seen) bool { return s.procs[pid].Exited })
	after := log.next(t)
	if _, ok := after.procs[pid]; ok || after.threads[w.TID] {
		t.Errorf("pid %d still in the window after it exited", pid)
	}
	if after.enrThreads >= during.enrThreads || after.live >= during.live || after.prev >= during.prev {
		t.Errorf("tables did not shrink once it exited: threads %d → %d, live %d → %d, readings %d → %d",
			during.enrThreads, after.enrThreads, during.live, after.live, during.prev, after.prev)
	}
	if after.enrThreads != before.enrThreads || after.live != before.live {
		t.Errorf("tables after its exit: threads %d, live %d; before it: %d, %d", after.enrThreads, after.live, before.enrThreads, before.live)
	}
}

// Processes that come and go leave nothing behind once they exited: not
// in the session's tables, its readings, nor the kernel side's traced set.
func TestSelectorChurnIsBounded(t *testing.T) {
	tag := "snag-churn-" + strconv.Itoa(os.Getpid())
	log, _ := runWindows(t, Config{
		Select:    &Selector{Cmdline: regexp.MustCompile(regexp.QuoteMeta(tag))},
		Interval:  windowInterval,
		Threshold: 10 * time.Millisecond,
	})
	const procs = 20
	var pids []int
	for range procs {
		w := testutil.StartWorkload(t, testutil.Workload{Getppid: 1000, Threads: 3, GateOnStdin: true, Tag: tag})
		pids = append(pids, w.Cmd.Process.Pid)
		var sum uint64
		log.until(t, 0, &sum, fmt.Sprintf("pid %d is traced", w.Cmd.Process.Pid), func(s seen) bool { _, ok := s.procs[w.Cmd.Process.Pid]; return ok })
		if err := w.Go(); err != nil {
			t.Fatal(err)
		}
		if err := w.WaitDone(); err != nil {
			t.Fatal(err)
		}
		if err := w.Finish(); err != nil {
			t.Fatal(err)
		}
	}
	var sum uint64
	log.until(t, 0, &sum, "every process is forgotten", func(s seen) bool { return len(s.procs) == 0 && s.live == 0 })
	w := log.next(t)
	if w.enrThreads != 0 || w.live != 0 || w.prev != 0 || len(w.procs) != 0 {
		t.Errorf("after %d processes came and went: %d threads, %d live, %d readings, %d processes kept; want none",
			procs, w.enrThreads, w.live, w.prev, len(w.procs))
	}
	for _, pid := range pids {
		if log.s.tr.Traced(pid) {
			t.Errorf("pid %d still traced by the kernel side after it exited", pid)
		}
	}
	// The session sweeps the exited processes every second.
	time.Sleep(1500 * time.Millisecond)
	if n, err := log.s.tr.SweepExited(func(int) bool { return true }); n != 0 || err != nil {
		t.Errorf("%d exited processes left in the kernel's traced set (%v)", n, err)
	}
}

// A process moved into a selected cgroup is traced from its next call,
// before snag has read it, and named by its cgroup; its sibling outside
// is not traced.
func TestSelectorCgroup(t *testing.T) {
	testutil.RequireBPF(t)
	mount, err := cgroup.Mount()
	if err != nil {
		t.Skip(err)
	}
	name := "snag-test-" + strconv.Itoa(os.Getpid())
	dir := filepath.Join(mount, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a cgroup: %v", err)
	}
	t.Cleanup(func() {
		// Its processes were killed by the workloads' cleanups, run first.
		for i := 0; i < 50 && os.Remove(dir) != nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	})
	const n = 5000
	wl := testutil.Workload{Getppid: n, GateOnStdin: true}
	in, out := testutil.StartWorkload(t, wl), testutil.StartWorkload(t, wl)
	log, _ := runWindows(t, Config{Select: &Selector{Cgroups: []string{name}}, Interval: windowInterval, Threshold: 10 * time.Millisecond})
	pid := in.Cmd.Process.Pid
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		t.Fatalf("move pid %d into %s: %v", pid, dir, err)
	}
	for _, w := range []*testutil.Running{in, out} {
		if err := w.Go(); err != nil {
			t.Fatal(err)
		}
		if err := w.WaitDone(); err != nil {
			t.Fatal(err)
		}
	}
	var sum, outside uint64
	w := log.until(t, in.TID, &sum, "the moved process is named", func(s seen) bool {
		outside += s.calls[out.TID]
		_, ok := s.procs[pid]
		return ok && sum >= n
	})
	if sum != n {
		t.Errorf("%d getppid calls counted in the cgroup, want exactly %d", sum, n)
	}
	if outside != 0 {
		t.Errorf("%d getppid calls of the process outside the cgroup counted, want none", outside)
	}
	if p := w.procs[pid]; p.Cgroup != "/"+name {
		t.Errorf("pid %d's cgroup %q, want /%s", pid, p.Cgroup, name)
	}
	if _, ok := w.procs[out.Cmd.Process.Pid]; ok {
		t.Errorf("the process outside the cgroup is traced")
	}
}

// BenchmarkWindowCut measures one cut of a window over a process of 2,000
// live threads, each with a few aggregates: what every Interval costs
// snag, and the readings it keeps between windows.
func BenchmarkWindowCut(b *testing.B) {
	testutil.RequireBPF(b)
	const threads = 2000
	w := testutil.StartWorkload(b, testutil.Workload{Getppid: 10, Threads: threads, Hold: true, GateOnStdin: true})
	s, err := newSession(Config{PIDs: []int{w.Cmd.Process.Pid}, Interval: time.Hour, Threshold: 10 * time.Millisecond}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer s.close()
	// The threads start, make their calls while traced, and stay.
	if err := w.Go(); err != nil {
		b.Fatal(err)
	}
	if err := w.WaitDone(); err != nil {
		b.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := s.window(time.Now()); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	readings, kept := len(s.win.prev), float64(after.HeapInuse-before.HeapInuse)/(1<<20)
	b.ResetTimer()
	for range b.N {
		if _, err := s.window(time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(readings), "readings")
	b.ReportMetric(kept, "MiB-kept")
}

// BenchmarkUntracedCost measures what a process snag does not trace pays
// per getppid while snag traces one other process (a compare), processes
// by pid (the traced-TGID map) or a cgroup (that map, then the
// traced-cgroup map).
func BenchmarkUntracedCost(b *testing.B) {
	testutil.RequireBPF(b)
	mount, err := cgroup.Mount()
	if err != nil {
		b.Skip(err)
	}
	dir := filepath.Join(mount, "snag-bench-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Skipf("cannot make a cgroup: %v", err)
	}
	defer os.Remove(dir)
	const calls = 1000000
	other := testutil.StartWorkload(b, testutil.Workload{GateOnStdin: true}) // traced by pid, idle
	for _, c := range []struct {
		name string
		cfg  *Config
	}{
		{"untraced", nil},
		{"one-pid", &Config{PIDs: []int{other.Cmd.Process.Pid}}}, // a compare, no map
		{"pid-map", &Config{Select: &Selector{PIDs: []int{other.Cmd.Process.Pid}}}},
		{"cgroup", &Config{Select: &Selector{Cgroups: []string{dir}}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			if c.cfg != nil {
				c.cfg.Threshold = time.Second
				s, err := newSession(*c.cfg, nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.start(context.Background()); err != nil {
					b.Fatal(err)
				}
				defer s.close()
			}
			var per float64
			for range b.N {
				w := testutil.StartWorkload(b, testutil.Workload{Getppid: calls, GateOnStdin: true})
				t0 := time.Now()
				if err := w.Go(); err != nil {
					b.Fatal(err)
				}
				if err := w.WaitDone(); err != nil {
					b.Fatal(err)
				}
				per += float64(time.Since(t0).Nanoseconds()) / calls
				w.Finish()
			}
			b.ReportMetric(per/float64(b.N), "ns/call")
		})
	}
}
