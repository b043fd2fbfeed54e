package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/version"
)

// The -update flag rewrites golden files. It is registered in init, which
// runs after every package-level variable, so a test file of this package
// that declares the same flag the usual way wins and this one shares it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata/")
	}
}

func updatingGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// checkGolden compares got with testdata/name, or rewrites it under -update.
// goldenVersion stands for version.Get().String() in the golden files.
const goldenVersion = "snag {version}"

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	// Every report names the snag that wrote it, which differs by build.
	got = bytes.ReplaceAll(got, []byte(version.Get().String()), []byte(goldenVersion))
	path := filepath.Join("testdata", name)
	if updatingGolden() {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

func inet(s string) model.Addr {
	ap := netip.MustParseAddrPort(s)
	fam := model.FamilyInet
	if ap.Addr().Is6() {
		fam = model.FamilyInet6
	}
	return model.Addr{Family: fam, IP: ap.Addr(), Port: ap.Port()}
}

func histOf(ns ...time.Duration) model.Histogram {
	var h model.Histogram
	for _, d := range ns {
		h.Add(uint64(d))
	}
	return h
}

// repeat returns d n times.
func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

const fixtureStartNS = 5_000_000_000_000

// geventFixture is the first incident of DESIGN.md: a gevent worker whose hub
// blocks in libmariadb's poll, plus a Celery-style unexpected connection.
func geventFixture() (*model.Trace, *model.Analysis) {
	hub, pool := 4242, 4250
	mysql := inet("127.0.0.1:3306")
	backend := inet("10.0.0.5:3306")
	stack := []model.Frame{
		{Function: "__poll", Module: "libc.so.6"},
		{Function: "pvio_socket_wait_io_or_timeout", Module: "libmariadb.so.3"},
		{Function: "pvio_socket_read", Module: "libmariadb.so.3"},
		{Function: "ma_net_safe_read", Module: "libmariadb.so.3"},
		{Function: "mthd_my_read_query_result", Module: "libmariadb.so.3"},
		{Function: "_mysql_ConnectionObject_query", Module: "_mysql.cpython-311-x86_64-linux-gnu.so"},
	}
	polls := append(repeat(1200*time.Microsecond, 900), repeat(12*time.Millisecond, 330)...)
	polls = append(polls, 50100*time.Microsecond, 48*time.Millisecond, 45*time.Millisecond, 40*time.Millisecond)
	var pollTotal time.Duration
	for _, d := range polls {
		pollTotal += d
	}
	t := &model.Trace{
		Source: "ebpf",
		Arch:   "amd64",
		Target: model.Target{PID: hub, Comm: "gunicorn",
			Cmdline: []string{"/usr/bin/python3", "/usr/bin/gunicorn", "-k", "gevent", "app:application", "--name", "web worker"}},
		Processes: []model.Process{{PID: hub, PPID: 1, Comm: "gunicorn"}},
		Start:     time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC),
		StartNS:   fixtureStartNS,
		Duration:  10 * time.Second,
		Threshold: 10 * time.Millisecond,
		Threads: []model.Thread{
			{PID: hub, TID: hub, Name: "gunicorn", OnCPU: 2100 * time.Millisecond},
			{PID: hub, TID: pool, Name: "ThreadPoolExec", OnCPU: 15 * time.Millisecond, Started: true},
		},
		Syscalls: []model.SyscallStat{
			{PID: hub, TID: hub, Nr: 7, Name: "poll", Count: uint64(len(polls)), Total: pollTotal, Max: 50100 * time.Microsecond, Hist: histOf(polls...)},
			{PID: hub, TID: hub, Nr: 232, Name: "epoll_wait", Count: 2100, Total: 2900 * time.Millisecond, Max: 310 * time.Millisecond,
				Hist: histOf(append(repeat(800*time.Microsecond, 2000), repeat(14*time.Millisecond, 100)...)...)},
			{PID: hub, TID: hub, Nr: 45, Name: "recvfrom", Count: 4000, Errors: 1800, Total: 18 * time.Millisecond, Max: 210 * time.Microsecond,
				Hist: histOf(repeat(4500*time.Nanosecond, 4000)...)},
			{PID: hub, TID: hub, Nr: 42, Name: "connect", Count: 12, Errors: 0, Total: 2400 * time.Microsecond, Max: 900 * time.Microsecond,
				Hist: histOf(repeat(200*time.Microsecond, 12)...)},
			{PID: hub, TID: pool, Nr: 202, Name: "futex", Count: 40, Errors: 3, Total: 9800 * time.Millisecond, Max: 5 * time.Second,
				Hist: histOf(repeat(245*time.Millisecond, 40)...)},
			{PID: hub, TID: pool, Nr: 45, Name: "recvfrom", Count: 10, Total: 60 * time.Microsecond, Max: 9 * time.Microsecond,
				Hist: histOf(repeat(6*time.Microsecond, 10)...)},
		},
		Events: []model.Event{
			{Kind: model.EvConnect, Time: fixtureStartNS + 1_200_000_000, Duration: 900 * time.Microsecond, PID: hub, TID: hub, Nr: 42, Syscall: "connect",
				Ret: 0, FD: 17, FDKnown: true, NonBlock: false, FDKind: model.FDSocket, Peer: backend, PollFD: -1},
			{Kind: model.EvSyscall, Time: fixtureStartNS + 2_500_000_000, Duration: 50100 * time.Microsecond, PID: hub, TID: hub, Nr: 7, Syscall: "poll",
				Ret: 1, FD: 9, FDKnown: true, FDKind: model.FDSocket, PollNFDs: 1, PollFD: 9, PollTimeout: -1, Peer: mysql, Stack: stack},
			{Kind: model.EvSyscall, Time: fixtureStartNS + 3_000_000_000, Duration: 12 * time.Millisecond, PID: hub, TID: hub, Nr: 7, Syscall: "poll",
				Ret: 1, FD: 9, FDKnown: true, FDKind: model.FDSocket, PollNFDs: 1, PollFD: 9, PollTimeout: -1, Peer: mysql, Stack: stack},
			{Kind: model.EvSyscall, Time: fixtureStartNS + 4_000_000_000, Duration: 245 * time.Millisecond, PID: hub, TID: pool, Nr: 202, Syscall: "futex",
				Ret: -110, FD: -1, PollFD: -1},
			{Kind: model.EvFork, Time: fixtureStartNS + 100_000, PID: hub, TID: hub, Nr: -1, FD: -1, ChildPID: pool, Thread: true, Comm: "ThreadPoolExec"},
			{Kind: model.EvExit, Time: fixtureStartNS + 9_000_000_000, PID: hub, TID: pool, Nr: -1, FD: -1, Thread: true, ExitCode: 0},
		},
		Sockets: []model.Socket{{PID: hub, FD: 9, Proto: "tcp", Local: inet("127.0.0.1:51234"), Peer: mysql, State: "ESTABLISHED"}},
		Blocked: []model.BlockedState{
			{PID: hub, TID: hub, Running: true, Nr: -1, FD: -1},
			{PID: hub, TID: pool, Nr: 202, Syscall: "futex", Wchan: "futex_wait_queue", FD: -1},
		},
	}
	a := &model.Analysis{
		Threads: []model.ThreadSummary{
			{PID: hub, TID: hub, Name: "gunicorn", Role: model.RoleEventLoop, LoopWait: "epoll_wait",
				OnCPU: 2100 * time.Millisecond, Blocked: pollTotal + 20*time.Millisecond, Idle: 2900 * time.Millisecond, Syscalls: 7346,
				Budget: []model.BudgetItem{{Category: "cpu", Time: 2100 * time.Millisecond}, {Category: "peer 127.0.0.1:3306", Time: pollTotal}}},
			{PID: hub, TID: pool, Name: "ThreadPoolExec", Role: model.RoleIdle,
				OnCPU: 15 * time.Millisecond, Idle: 9800 * time.Millisecond, Syscalls: 50},
		},
		Connections: []model.Connection{
			{Peer: mysql, Service: "mysql", TIDs: []int{hub}, Expected: true, BeforeAttach: true, FirstSeen: fixtureStartNS, LastSeen: fixtureStartNS + 9_000_000_000},
			{Peer: backend, Service: "mysql", Connects: 12, TIDs: []int{hub, hub}, FirstSeen: fixtureStartNS + 1_200_000_000, LastSeen: fixtureStartNS + 9_500_000_000,
				ConnectTime: 2400 * time.Microsecond, MedianLifetime: 310 * time.Millisecond},
		},
		Findings: []model.Finding{
			{Kind: model.KindLoopStall, Severity: model.SeverityHigh,
				Title: "event loop blocked in poll inside libmariadb.so.3",
				PID:   hub, TID: hub, Thread: "gunicorn", Syscall: "poll", Count: uint64(len(polls)), Total: pollTotal,
				P50: 1200 * time.Microsecond, Max: 50100 * time.Microsecond, Share: float64(pollTotal) / float64(10*time.Second),
				Peer: "127.0.0.1:3306", Service: "mysql", Library: "libmariadb.so.3",
				Stack: []string{
					"__poll (libc.so.6)", "pvio_socket_wait_io_or_timeout (libmariadb.so.3)", "pvio_socket_read (libmariadb.so.3)",
					"ma_net_safe_read (libmariadb.so.3)", "mthd_my_read_query_result (libmariadb.so.3)", "mysql_real_query (libmariadb.so.3)",
					"_mysql_ConnectionObject_query (_mysql.cpython-311-x86_64-linux-gnu.so)", "_PyEval_EvalFrameDefault (python3.11)",
					"PyEval_EvalCode (python3.11)", "Py_RunMain (python3.11)"},
				Detail: "The hub thread waited 5.22s for MySQL inside a C extension that gevent cannot patch, so every greenlet stalled with it.",
				Hint:   "Use a pure-Python driver (PyMySQL) so gevent can yield while the query runs, or move the queries to a thread pool."},
			{Kind: model.KindUnexpectedConnection, Severity: model.SeverityMedium,
				Title: "12 connections to 10.0.0.5:3306 (mysql), not in --expect",
				PID:   hub, TID: hub, Syscall: "connect", Count: 12, Total: 2400 * time.Microsecond,
				Peer: "10.0.0.5:3306", Service: "mysql",
				Hint: "If this is a Celery result backend nobody reads, set ignore_result."},
			{Kind: model.KindLockContention, Severity: model.SeverityLow, Title: "futex waits on a pool thread",
				PID: hub, TID: pool, Syscall: "futex", Count: 40, Total: 9800 * time.Millisecond, Max: 5 * time.Second},
		},
	}
	return t, a
}

// bareFixture is a trace from a log with no analysis: the fallbacks.
func bareFixture() *model.Trace {
	return &model.Trace{
		Source:   "strace",
		Target:   model.Target{PID: 77},
		Duration: 1500 * time.Millisecond,
		Syscalls: []model.SyscallStat{
			{PID: 77, TID: 77, Nr: 0, Name: "read", Count: 3, Total: 300 * time.Microsecond, Max: 200 * time.Microsecond, Hist: histOf(50*time.Microsecond, 50*time.Microsecond, 200*time.Microsecond)},
			{PID: 78, TID: 78, Nr: 999, Count: 1, Errors: 1, Total: 5 * time.Microsecond, Max: 5 * time.Microsecond, Hist: histOf(5 * time.Microsecond)},
		},
		Drops: model.Drops{RingBuffer: 1200, StackRead: 34, Unparsed: 2},
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0ns"},
		{245, "245ns"},
		{999, "999ns"},
		{1000, "1.00µs"},
		{1234, "1.23µs"},
		{1200, "1.20µs"},
		{9995, "10.0µs"},
		{999_600, "1.00ms"},
		{50_100_000, "50.1ms"},
		{123_456_789, "123ms"},
		{3_200_000_000, "3.20s"},
		{59_999_000_000, "1m00s"},
		{125 * time.Second, "2m05s"},
		{time.Hour + 2*time.Minute + 20*time.Second, "1h02m"},
		{-1500 * time.Microsecond, "-1.50ms"},
		{math.MaxInt64, "2562047h47m"},
		{math.MinInt64, "-2562047h47m"},
	}
	for _, tt := range tests {
		if got := model.FormatDuration(tt.in); got != tt.want {
			t.Errorf("model.FormatDuration(%d) = %q, want %q", int64(tt.in), got, tt.want)
		}
	}
}

func TestFormatShare(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0%"},
		{0.0004, "<0.1%"},
		{0.001, "0.1%"},
		{0.822, "82.2%"},
		{2.5, "250.0%"},
		{math.NaN(), "-"},
		{math.Inf(1), "-"},
	}
	for _, tt := range tests {
		if got := formatShare(tt.in); got != tt.want {
			t.Errorf("formatShare(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatCount(t *testing.T) {
	tests := map[uint64]string{0: "0", 999: "999", 1000: "1,000", 12345: "12,345", 1234567: "1,234,567", math.MaxUint64: "18,446,744,073,709,551,615"}
	for in, want := range tests {
		if got := formatCount(in); got != want {
			t.Errorf("formatCount(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestWrapText(t *testing.T) {
	tests := []struct {
		in    string
		width int
		want  []string
	}{
		{"", 10, nil},
		{"short", 10, []string{"short"}},
		{"one two three four", 9, []string{"one two", "three", "four"}},
		{"a /very/long/path/that/does/not/fit b", 8, []string{"a", "/very/long/path/that/does/not/fit", "b"}},
		{"para one\n\npara two", 40, []string{"para one", "para two"}},
		{"  spaced   out  ", 40, []string{"spaced out"}},
	}
	for _, tt := range tests {
		if got := wrapText(tt.in, tt.width); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("wrapText(%q, %d) = %q, want %q", tt.in, tt.width, got, tt.want)
		}
	}
}

func TestFormatCmdline(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"python3", "app.py"}, "python3 app.py"},
		{[]string{"sh", "-c", "echo hi"}, `sh -c "echo hi"`},
		{[]string{"x", ""}, `x ""`},
		{[]string{"bad\x00arg"}, `"bad\x00arg"`},
	}
	for _, tt := range tests {
		if got := formatCmdline(tt.in); got != tt.want {
			t.Errorf("formatCmdline(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello", 4, "hel…"},
		{"µµµµ", 2, "µ…"},
		{"hello", 1, "…"},
		{"hello", 0, ""},
	}
	for _, tt := range tests {
		if got := truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestSyscallTotals(t *testing.T) {
	tr, _ := geventFixture()
	totals := syscallTotals(tr.Syscalls)
	var names []string
	for _, s := range totals {
		names = append(names, s.Name)
	}
	// Sorted by total time: futex 9.8s, poll 5.22s, epoll_wait 2.9s, …
	want := []string{"futex", "poll", "epoll_wait", "recvfrom", "connect"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("order = %v, want %v", names, want)
	}
	recv := totals[3]
	if recv.Count != 4010 || recv.Errors != 1800 || recv.Threads != 2 {
		t.Errorf("recvfrom summed to count %d errors %d threads %d, want 4010, 1800, 2", recv.Count, recv.Errors, recv.Threads)
	}
	if recv.Total != 18*time.Millisecond+60*time.Microsecond || recv.Max != 210*time.Microsecond {
		t.Errorf("recvfrom total %v max %v", recv.Total, recv.Max)
	}
	// The merged histogram's median lies in the 4.5µs bucket (10% error at most).
	if p50 := recv.Quantile(0.5); p50 < 4050*time.Nanosecond || p50 > 4950*time.Nanosecond {
		t.Errorf("recvfrom p50 = %v, want about 4.5µs", p50)
	}
	poll := totals[1]
	if p99 := poll.Quantile(0.99); p99 > poll.Max {
		t.Errorf("poll p99 %v above max %v", p99, poll.Max)
	}
	if got := syscallTotals(bareFixture().Syscalls)[1].Name; got != "syscall_999" {
		t.Errorf("unnamed syscall rendered as %q", got)
	}
}

// Futex is summed once per operation class: a pool's condition waits stay
// apart from a mutex's waits, and each counts its own threads.
func TestSyscallTotalsByFutexOp(t *testing.T) {
	ms := time.Millisecond
	totals := syscallTotals([]model.SyscallStat{
		{PID: 1, TID: 2, Nr: 202, Name: "futex", Op: "wait_bitset", Count: 1, Total: 900 * ms},
		{PID: 1, TID: 3, Nr: 202, Name: "futex", Op: "wait_bitset", Count: 1, Total: 800 * ms},
		{PID: 1, TID: 3, Nr: 202, Name: "futex", Op: "wake", Count: 5, Total: ms},
		{PID: 1, TID: 4, Nr: 202, Name: "futex", Op: "wait", Count: 50, Total: 40 * ms},
		{PID: 1, TID: 4, Nr: 0, Name: "read", Count: 2, Total: 2 * ms},
	})
	var got []string
	for _, s := range totals {
		got = append(got, fmt.Sprintf("%s %d/%d", s.Label(), s.Count, s.Threads))
	}
	want := []string{"futex (wait_bitset) 2/2", "futex (wait) 50/1", "read 2/1", "futex (wake) 5/1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("totals = %q, want %q", got, want)
	}
}

func TestThreadRowsFallback(t *testing.T) {
	rows, analyzed := threadRows(bareFixture(), nil)
	if analyzed {
		t.Fatal("bare trace reported as analyzed")
	}
	if len(rows) != 2 || rows[0].TID != 77 || rows[1].TID != 78 {
		t.Fatalf("rows = %+v, want tids 77 and 78 from the syscall aggregates", rows)
	}
	if rows[0].Syscalls != 3 || rows[0].InSyscall != 300*time.Microsecond {
		t.Errorf("tid 77 = %+v", rows[0])
	}

	tr, a := geventFixture()
	rows, analyzed = threadRows(tr, a)
	if !analyzed || len(rows) != 2 {
		t.Fatalf("analyzed %v rows %d", analyzed, len(rows))
	}
	if rows[1].Role != model.RoleIdle || !rows[1].Started || rows[1].Syscalls != 50 {
		t.Errorf("pool thread = %+v", rows[1])
	}
}

// FuzzRenderers feeds odd values (negative or huge durations, clocks that
// run backwards, control characters, NaN shares) through every renderer
// here: none may fail or panic, and the JSON outputs must stay valid.
func FuzzRenderers(f *testing.F) {
	f.Add("poll", "gunicorn", "127.0.0.1:3306", "stall\nin poll", int64(50_000_000), uint64(5_000_000), uint64(3), 0.5, 20, false)
	f.Add("", "", "", "", int64(-1), uint64(0), uint64(0), math.NaN(), 0, true)
	f.Add("fu\x00tex", "n\u00e4me\t", "[::1]:1", "µ <&> \"q\"", int64(math.MaxInt64), uint64(math.MaxUint64), uint64(math.MaxUint64), math.Inf(1), -3, true)
	f.Fuzz(func(t *testing.T, syscall, thread, peer, text string, dur int64, at, count uint64, share float64, top int, color bool) {
		tr, a := geventFixture()
		tr.Duration = time.Duration(dur)
		tr.Threads[0].Name = thread
		tr.Syscalls[0].Name = syscall
		tr.Syscalls[0].Count = count
		tr.Syscalls[0].Total = time.Duration(dur)
		tr.Syscalls[0].Max = time.Duration(dur)
		tr.Events[1].Syscall = syscall
		tr.Events[1].Time = at
		tr.Events[1].Duration = time.Duration(dur)
		tr.Target.Cmdline = []string{text, thread}
		fd := &a.Findings[0]
		fd.Title, fd.Detail, fd.Hint, fd.Peer, fd.Syscall, fd.Thread = text, text, text, peer, syscall, thread
		fd.Count, fd.Total, fd.Share = count, time.Duration(dur), share
		fd.Stack = []string{text}

		var buf bytes.Buffer
		if err := Table(&buf, tr, a, TableOptions{Top: top, Color: color}); err != nil {
			t.Fatalf("table: %v", err)
		}
		buf.Reset()
		if err := JSON(&buf, tr, a); err != nil {
			t.Fatalf("json: %v", err)
		}
		if !json.Valid(buf.Bytes()) {
			t.Fatalf("json output invalid:\n%s", buf.Bytes())
		}
		buf.Reset()
		if err := Perfetto(&buf, tr, a); err != nil {
			t.Fatalf("perfetto: %v", err)
		}
		var ct struct {
			TraceEvents []traceEvent `json:"traceEvents"`
		}
		if err := json.Unmarshal(buf.Bytes(), &ct); err != nil {
			t.Fatalf("perfetto output invalid: %v", err)
		}
		for _, e := range ct.TraceEvents {
			if e.TS < 0 || (e.Dur != nil && *e.Dur < 0) {
				t.Fatalf("negative time in %+v", e)
			}
		}
	})
}

func TestConnPeerNamesClientHosts(t *testing.T) {
	in := model.Connection{Peer: model.Addr{Family: model.FamilyInet, IP: netip.MustParseAddr("10.0.0.8")}, Inbound: true}
	out := model.Connection{Peer: model.Addr{Family: model.FamilyInet, IP: netip.MustParseAddr("10.0.0.5"), Port: 3306}}
	if got := tablePeer(in); got != "clients from 10.0.0.8" {
		t.Errorf("inbound: %q", got)
	}
	if got, dir := connPeer(in), connDirection(in); got != "10.0.0.8" || dir != "inbound" {
		t.Errorf("inbound json: %q %q", got, dir)
	}
	if got, dir := tablePeer(out), connDirection(out); got != "10.0.0.5:3306" || dir != "outbound" {
		t.Errorf("outbound: %q %q", got, dir)
	}
}
