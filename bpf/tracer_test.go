//go:build linux

package bpf

import (
	"os"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.MaybeRunWorkload()
	maybeRunFDWorkload()
	if os.Getenv(envFutexOps) != "" {
		futexOpsChild()
	}
	os.Exit(m.Run())
}

func statFor(stats []model.SyscallStat, tid int, name string) model.SyscallStat {
	var out model.SyscallStat
	for _, s := range stats {
		if s.TID == tid && s.Name == name {
			out.Add(&s)
		}
	}
	return out
}

func TestExactCountsOnAttachedProcess(t *testing.T) {
	testutil.RequireBPF(t)
	const n, m, k = 10000, 777, 5
	w := testutil.StartWorkload(t, testutil.Workload{Getppid: n, BadClose: m, Sleeps: k, SleepFor: 50 * time.Millisecond, GateOnStdin: true})
	tr, err := Load(Options{PIDs: []int{w.Cmd.Process.Pid}, Threshold: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := w.Go(); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitDone(); err != nil {
		t.Fatal(err)
	}
	stats, err := tr.Aggregates()
	if err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for _, s := range stats {
		sum += s.Count
	}
	// The target's runtime still makes calls after the workload says it
	// is done (some dozens, as its threads wind down): Calls() may only
	// be the same or a little ahead.
	if calls, err := tr.Calls(); err != nil || calls < sum || calls > sum+256 {
		t.Errorf("Calls() = %d, %v; want the aggregates' %d", calls, err, sum)
	}
	// getppid never waits: counted, not timed.
	if s := statFor(stats, w.TID, "getppid"); s.Count != n || s.Errors != 0 || !s.Untimed || s.Total != 0 {
		t.Errorf("getppid: count %d errors %d untimed %v total %v, want %d, 0, untimed and no time", s.Count, s.Errors, s.Untimed, s.Total, n)
	}
	if s := statFor(stats, w.TID, "close"); s.Count != m || s.Errors != m || s.Untimed || s.Total <= 0 {
		t.Errorf("close(-1): count %d errors %d untimed %v total %v, want %d, %d, timed", s.Count, s.Errors, s.Untimed, s.Total, m, m)
	}
	s := statFor(stats, w.TID, "nanosleep")
	if s.Count != k || s.Untimed {
		t.Errorf("nanosleep: count %d untimed %v, want %d timed", s.Count, s.Untimed, k)
	}
	checkHistIndex(t, stats)
	if p50 := s.Quantile(0.5); p50 < 45*time.Millisecond || p50 > 55*time.Millisecond {
		t.Errorf("nanosleep p50 %v, want 50ms ±10%%", p50)
	}

	// The sleeps are over the threshold: each arrives as an event.
	var sleeps int
	var rec Record
	for {
		err := tr.Read(&rec, time.Now().Add(200*time.Millisecond))
		if err == ErrTimeout {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Event.Kind == model.EvSyscall && rec.Event.Syscall == "nanosleep" && rec.Event.TID == w.TID {
			sleeps++
		}
	}
	if sleeps != k {
		t.Errorf("saw %d nanosleep events, want %d", sleeps, k)
	}
	d, err := tr.Drops()
	if err != nil {
		t.Fatal(err)
	}
	if d.Total() != 0 {
		t.Errorf("drops %+v, want none", d)
	}

	// Drained, the ring buffer is unmapped; the maps stay readable.
	if err := tr.CloseReader(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Read(&rec, time.Now().Add(10*time.Millisecond)); err == nil || err == ErrTimeout {
		t.Errorf("Read after CloseReader: %v, want an error", err)
	}
	if _, err := tr.Aggregates(); err != nil {
		t.Errorf("Aggregates after CloseReader: %v", err)
	}
}

// With TimeAll, the calls that never wait are timed like the others.
func TestTimeAll(t *testing.T) {
	testutil.RequireBPF(t)
	const n = 1000
	w := testutil.StartWorkload(t, testutil.Workload{Getppid: n, GateOnStdin: true})
	tr, err := Load(Options{PIDs: []int{w.Cmd.Process.Pid}, Threshold: 10 * time.Millisecond, TimeAll: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := w.Go(); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitDone(); err != nil {
		t.Fatal(err)
	}
	stats, err := tr.Aggregates()
	if err != nil {
		t.Fatal(err)
	}
	s := statFor(stats, w.TID, "getppid")
	if s.Count != n || s.Untimed || s.Total <= 0 || s.Hist.Count() != n {
		t.Errorf("getppid: count %d untimed %v total %v histogram %d, want %d timed calls", s.Count, s.Untimed, s.Total, s.Hist.Count(), n)
	}
	checkHistIndex(t, stats)
}

// checkHistIndex compares the kernel side's hist_index with
// model.HistIndex on every timed aggregate's slowest call: it must sit in
// the highest bucket counted.
func checkHistIndex(t *testing.T, stats []model.SyscallStat) {
	t.Helper()
	checked := 0
	for _, s := range stats {
		if s.Untimed || s.Count == 0 {
			continue
		}
		top := -1
		s.Hist.ForEach(func(b int, _ uint64) { top = max(top, b) })
		if want := model.HistIndex(uint64(s.Max)); top != want {
			t.Errorf("%s of tid %d: max %d ns in bucket %d by the kernel, %d by model.HistIndex", s.Name, s.TID, s.Max, top, want)
		}
		checked++
	}
	if checked == 0 {
		t.Error("no timed aggregate to check")
	}
}
