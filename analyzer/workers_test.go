package analyzer

import (
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/syscalls"
)

func TestLockContention(t *testing.T) {
	tests := []struct {
		name    string
		cmdline string
		threads int
		calls   int
		each    time.Duration
		want    model.Severity
		hint    string
	}{
		{name: "GIL handoff between python threads", cmdline: "python3", threads: 3, calls: 600, each: 3 * ms,
			want: model.SeverityMedium, hint: "GIL"},
		{name: "heavy contention in a native server", cmdline: "server", threads: 4, calls: 1000, each: 4 * ms,
			want: model.SeverityHigh, hint: "shorten its critical section"},
		{name: "one thread alone is not contention", cmdline: "python3", threads: 1, calls: 600, each: 3 * ms},
		{name: "idle pool workers: few long waits", cmdline: "python3", threads: 4, calls: 5, each: 1900 * ms},
		{name: "rare short waits", cmdline: "python3", threads: 4, calls: 50, each: 2 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTrace(10*time.Second).process(1, tt.cmdline)
			for i := range tt.threads {
				tid := 1 + i
				b.thread(1, tid, "t", 2*time.Second)
				b.calls(1, tid, "futex", tt.calls, tt.each)
				b.calls(1, tid, "write", 100, 50*time.Microsecond)
			}
			// A few slow waits show the futex address.
			b.slow(5, model.Event{PID: 1, TID: 1, Syscall: "futex", Args: [6]uint64{0xdead0, 128 | 0}, Duration: 15 * ms})
			b.slow(2, model.Event{PID: 1, TID: 1, Syscall: "futex", Args: [6]uint64{0xbeef0, 1}, Duration: 15 * ms})
			got := findingsOf(Analyze(b.t, Config{}), model.KindLockContention)
			if tt.want == 0 {
				if len(got) != 0 {
					t.Errorf("got %+v, want no contention", got)
				}
				return
			}
			if len(got) != 1 || got[0].Severity != tt.want {
				t.Fatalf("got %+v, want one %s finding", got, tt.want)
			}
			f := got[0]
			if !strings.Contains(f.Hint, tt.hint) || !strings.Contains(f.Title, "0xdead0") || strings.Contains(f.Detail, "0xbeef0") {
				t.Errorf("finding = %q / %q / %q", f.Title, f.Detail, f.Hint)
			}
		})
	}
}

func TestWorkerSaturation(t *testing.T) {
	// uWSGI-like workers: each accepts, then waits on MySQL per request.
	build := func(idleSecond bool) *model.Trace {
		b := newTrace(10 * time.Second)
		for _, pid := range []int{10, 11} {
			b.thread(pid, pid, "uwsgi", 1500*ms)
			b.calls(pid, pid, "accept4", 200, 2*ms)
			b.slow(200, model.Event{PID: pid, TID: pid, Syscall: "recvfrom", FDKnown: true, FDKind: model.FDSocket,
				Peer: inet("10.0.0.2:3306"), Duration: 40 * ms})
		}
		if idleSecond {
			b.calls(11, 11, "accept4", 1, 7*time.Second)
		}
		return b.t
	}
	a := Analyze(build(false), Config{})
	got := findingsOf(a, model.KindWorkerSaturation)
	if len(got) != 1 {
		t.Fatalf("saturation = %+v, want one", got)
	}
	f := got[0]
	if f.Severity != model.SeverityHigh || f.Count != 2 || f.Peer != "10.0.0.2:3306 (mysql)" {
		t.Errorf("finding = %+v", f)
	}
	for _, want := range []string{"all 2 workers", "peer 10.0.0.2:3306 (mysql) 83%", "on CPU"} {
		if !strings.Contains(f.Detail, want) {
			t.Errorf("detail %q lacks %q", f.Detail, want)
		}
	}
	if !strings.Contains(f.Hint, "mostly wait on peer 10.0.0.2:3306 (mysql)") {
		t.Errorf("hint = %q", f.Hint)
	}
	th := threadOf(t, a, 10)
	if th.Role != model.RoleAcceptor || th.Idle != 400*ms || th.Blocked != 8*time.Second {
		t.Errorf("worker = %+v", th)
	}
	if n := len(findingsOf(Analyze(build(true), Config{}), model.KindWorkerSaturation)); n != 0 {
		t.Errorf("one idle worker still gave %d saturation findings", n)
	}
}

func TestFindingOrder(t *testing.T) {
	fs := []model.Finding{
		{Kind: "b", Severity: model.SeverityLow, Total: 9},
		{Kind: "a", Severity: model.SeverityHigh, Total: 1},
		{Kind: "c", Severity: model.SeverityHigh, Total: 5},
		{Kind: "a", Severity: model.SeverityMedium, Total: 5, TID: 2},
		{Kind: "a", Severity: model.SeverityMedium, Total: 5, TID: 1},
	}
	sortFindings(fs)
	var got []string
	for _, f := range fs {
		got = append(got, f.Kind+f.Severity.String()+itoa(uint64(f.TID)))
	}
	want := "chigh0 ahigh0 amedium1 amedium2 blow0"
	if strings.Join(got, " ") != want {
		t.Errorf("order = %v, want %s", got, want)
	}
}

// With the futex operation known, a mutex handed around (FUTEX_WAIT and the
// wakes that go with it) is contention; a pool waiting on a condition
// variable (FUTEX_WAIT_BITSET) or threads that wait without waking anyone
// are not.
func TestLockContentionByFutexOp(t *testing.T) {
	tests := []struct {
		name       string
		op         string
		wakes      int
		contention bool
	}{
		{"4 threads fight over one mutex", syscalls.FutexOpWait, 900, true},
		{"a pool waiting on a condition variable", syscalls.FutexOpWaitBitset, 900, false},
		{"waits that wake nobody", syscalls.FutexOpWait, 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTrace(10*time.Second).process(1, "server")
			for tid := 1; tid <= 4; tid++ {
				b.thread(1, tid, "t", 2*time.Second)
				b.t.Syscalls = append(b.t.Syscalls, opStat(1, tid, tt.op, 1000, 3*ms), opStat(1, tid, syscalls.FutexOpWake, tt.wakes, 5*time.Microsecond))
				b.calls(1, tid, "write", 100, 50*time.Microsecond)
			}
			got := findingsOf(Analyze(b.t, Config{}), model.KindLockContention)
			if tt.contention != (len(got) == 1) {
				t.Errorf("contention = %+v, want %v", got, tt.contention)
			}
		})
	}
}

func opStat(pid, tid int, op string, n int, d time.Duration) model.SyscallStat {
	st := model.SyscallStat{PID: pid, TID: tid, Name: "futex", Nr: 202, Op: op}
	for range n {
		st.Count++
		st.Total += d
		st.Max = max(st.Max, d)
		st.Hist.Add(uint64(d))
	}
	return st
}
