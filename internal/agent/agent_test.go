package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/snagtrace/snag/analyzer"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/recording"
)

const ms = time.Millisecond

var (
	t0     = time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	dbPeer = model.Addr{Family: model.FamilyInet, IP: netip.MustParseAddr("127.0.0.1"), Port: 3306}
	// mariadbStack is where MySQLdb's C extension polls the database.
	mariadbStack = []model.Frame{
		{Function: "poll", Module: "libc.so.6", Path: "/usr/lib/x86_64-linux-gnu/libc.so.6"},
		{Function: "pvio_socket_wait_io_or_timeout", Module: "libmariadb.so.3", Path: "/usr/lib/x86_64-linux-gnu/libmariadb.so.3"},
		{Function: "mysql_real_query", Module: "libmariadb.so.3", Path: "/usr/lib/x86_64-linux-gnu/libmariadb.so.3"},
	}
)

// proc is a gevent process of a window: its loop waits in epoll_wait,
// and stalls, when it does, in a 50 ms poll on the database from
// libmariadb, 100 times in the window.
type proc struct {
	pid   int
	comm  string
	stall bool
}

// window builds window i (15 s each from t0) of procs, and the events the
// sink receives before it.
func window(i int, procs ...proc) (*model.Trace, []model.Event) {
	const d = 15 * time.Second
	t := &model.Trace{
		Source: "ebpf", Start: t0.Add(time.Duration(i) * d), Duration: d, Threshold: 10 * ms,
		StartNS: uint64(i) * uint64(d),
	}
	var evs []model.Event
	gevent := model.Runtime{Name: model.RuntimeCPython, Version: "3.11.2", Loop: model.LoopGevent}
	for _, p := range procs {
		t.Processes = append(t.Processes, model.Process{PID: p.pid, Comm: p.comm, Cmdline: []string{p.comm, "app.py"}, Runtime: gevent})
		t.Threads = append(t.Threads, model.Thread{PID: p.pid, TID: p.pid, Name: p.comm, OnCPU: 100 * ms})
		wait := model.SyscallStat{PID: p.pid, TID: p.pid, Name: "epoll_wait", Nr: 232}
		for range 400 {
			wait.AddCall(2*ms, false)
		}
		t.Syscalls = append(t.Syscalls, wait)
		if !p.stall {
			continue
		}
		poll := model.SyscallStat{PID: p.pid, TID: p.pid, Name: "poll", Nr: 7}
		now := t.StartNS
		for range 100 {
			poll.AddCall(50*ms, false)
			now += uint64(60 * ms)
			evs = append(evs, model.Event{
				Kind: model.EvSyscall, Time: now, Duration: 50 * ms, PID: p.pid, TID: p.pid, Nr: 7, Syscall: "poll",
				PollNFDs: 1, PollTimeout: 10000, FD: -1, Peer: dbPeer, Stack: mariadbStack,
			})
		}
		t.Syscalls = append(t.Syscalls, poll)
		evs = append(evs, model.Event{Kind: model.EvConnect, Time: now, Duration: ms, PID: p.pid, TID: p.pid, Nr: 42,
			Syscall: "connect", FD: 5, Peer: dbPeer})
	}
	return t, evs
}

// feed hands a window to the agent as Run would.
func feed(t *testing.T, a *Agent, w *model.Trace, evs []model.Event) {
	t.Helper()
	for i := range evs {
		if err := a.Event(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Window(w); err != nil {
		t.Fatal(err)
	}
}

func TestFindingLines(t *testing.T) {
	const (
		pid       = 4242
		container = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		pod       = "8c3e7a52-3e3c-4d4b-9b1e-2f7f3c1d6a10"
	)
	// Which windows stall, and the lines each must print.
	steps := []struct {
		stall bool
		want  []string // events of the lines
	}{
		{true, []string{"finding-start"}},
		{true, nil},
		{false, []string{"finding-end"}},
		{false, nil},
		{true, []string{"finding-start"}},
	}
	var out bytes.Buffer
	a := New(Config{Log: &out})
	for i, st := range steps {
		out.Reset()
		w, evs := window(i, proc{pid, "python3", st.stall})
		w.Processes[0].Container, w.Processes[0].Pod = container, pod
		feed(t, a, w, evs)
		var got []findingLine
		dec := json.NewDecoder(&out)
		for dec.More() {
			var l findingLine
			if err := dec.Decode(&l); err != nil {
				t.Fatalf("window %d: a line that is not JSON: %v", i, err)
			}
			if l.Kind == model.KindLoopStall {
				got = append(got, l)
			}
		}
		var events []string
		for _, l := range got {
			events = append(events, l.Event)
		}
		if !slices.Equal(events, st.want) {
			t.Fatalf("window %d: loop-stall lines %v, want %v", i, events, st.want)
		}
		for _, l := range got {
			end := t0.Add(time.Duration(i+1) * 15 * time.Second).Format(time.RFC3339Nano)
			if l.Time != end || l.Severity != "high" || l.PID != pid || l.Process != "python3" || l.Container != container || l.Pod != pod ||
				l.Peer != "127.0.0.1:3306" || l.Syscall != "poll" || l.Library != "libmariadb.so.3" || l.Summary == "" {
				t.Errorf("window %d: line %+v", i, l)
			}
			if l.Event == "finding-end" && l.Since != t0.Add(15*time.Second).Format(time.RFC3339Nano) {
				t.Errorf("window %d: the end says it began %s, want at the end of window 0, where it began", i, l.Since)
			}
		}
		if active := a.ActiveFindings(); st.stall != slices.ContainsFunc(active, func(f model.Finding) bool { return f.Kind == model.KindLoopStall }) {
			t.Errorf("window %d: active findings %+v, want the stall active: %v", i, active, st.stall)
		}
	}
}

// feedWindow hands window i of procs to the agent.
func feedWindow(t *testing.T, a *Agent, i int, procs ...proc) {
	t.Helper()
	w, evs := window(i, procs...)
	feed(t, a, w, evs)
}

// gather scrapes the agent's collector.
func gather(t *testing.T, a *Agent) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(a.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// series returns the metric of family name whose labels include want.
func seriesOf(mfs map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range mfs[name].GetMetric() {
		ok := true
		for k, v := range want {
			if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == k && l.GetValue() == v }) {
				ok = false
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

func one(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	s := seriesOf(mfs, name, want)
	if len(s) != 1 {
		t.Fatalf("%s%v: %d series, want 1", name, want, len(s))
	}
	return s[0]
}

func TestCountersAccumulateWindows(t *testing.T) {
	a := New(Config{})
	poll := map[string]string{"comm": "python3", "syscall": "poll", "class": "readiness"}
	for i := range 3 {
		// The second window has no stall: its counters stay, the finding goes.
		stall := i != 1
		feedWindow(t, a, i, proc{10, "python3", stall})
		mfs := gather(t, a)
		windows := map[int]float64{0: 1, 1: 1, 2: 2}[i] // windows that stalled so far
		if got := one(t, mfs, "snag_syscalls_total", poll).GetCounter().GetValue(); got != 100*windows {
			t.Errorf("window %d: poll calls %v, want %v", i, got, 100*windows)
		}
		h := one(t, mfs, "snag_syscall_duration_seconds", poll).GetHistogram()
		if h.GetSampleCount() != uint64(100*windows) || !near(h.GetSampleSum(), 5*windows) {
			t.Errorf("window %d: poll histogram count %d sum %v, want %v and %v s", i, h.GetSampleCount(), h.GetSampleSum(), 100*windows, 5*windows)
		}
		blocked := one(t, mfs, "snag_blocked_seconds_total", map[string]string{"comm": "python3", "peer": "127.0.0.1:3306", "service": "mysql"})
		if got := blocked.GetCounter().GetValue(); !near(got, 5*windows) {
			t.Errorf("window %d: blocked on the database %v s, want %v", i, got, 5*windows)
		}
		if got := one(t, mfs, "snag_connections_total", map[string]string{"peer": "127.0.0.1:3306"}).GetCounter().GetValue(); got != windows {
			t.Errorf("window %d: connects %v, want %v", i, got, windows)
		}
		stalls := seriesOf(mfs, "snag_finding_active", map[string]string{"kind": "loop-stall", "pid": "10", "library": "libmariadb.so.3", "syscall": "poll"})
		if stall != (len(stalls) == 1) {
			t.Errorf("window %d: loop-stall series %v, want active %v", i, stalls, stall)
		}
		if got := mfs["snag_windows_total"].GetMetric()[0].GetCounter().GetValue(); got != float64(i+1) {
			t.Errorf("windows_total %v, want %d", got, i+1)
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-6 && b-a < 1e-6 }

func TestHistogramBuckets(t *testing.T) {
	tests := []struct {
		d      time.Duration
		le     float64 // the smallest bucket bound that holds d
		lePrev float64 // the bound before, which does not
	}{
		{50 * ms, 0.050331648, 0.041943040},                      // 3·2^24 ns and 5·2^23 ns
		{50*ms + 400*time.Microsecond, 0.058720256, 0.050331648}, // 7·2^23 ns
		{time.Microsecond, 0.000016384, 0},                       // the first bucket: 2^14 ns
		{20 * time.Microsecond, 0.000020480, 0.000016384},
	}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			a := New(Config{})
			w := &model.Trace{Start: t0, Duration: time.Second, Processes: []model.Process{{PID: 1, Comm: "x"}}}
			st := model.SyscallStat{PID: 1, TID: 1, Name: "read"}
			st.AddCall(tt.d, false)
			w.Syscalls = []model.SyscallStat{st}
			if err := a.Window(w); err != nil {
				t.Fatal(err)
			}
			h := one(t, gather(t, a), "snag_syscall_duration_seconds", map[string]string{"syscall": "read"}).GetHistogram()
			for _, b := range h.GetBucket() {
				want := uint64(0)
				if b.GetUpperBound() >= tt.le {
					want = 1
				}
				if b.GetCumulativeCount() != want {
					t.Errorf("bucket le=%g holds %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
				}
				if b.GetUpperBound() > tt.lePrev && b.GetUpperBound() < tt.le {
					t.Errorf("bucket le=%g lies between %g and %g", b.GetUpperBound(), tt.lePrev, tt.le)
				}
			}
			if !slices.ContainsFunc(h.GetBucket(), func(b *dto.Bucket) bool { return near(b.GetUpperBound(), tt.le) }) {
				t.Errorf("no bucket le=%g", tt.le)
			}
		})
	}
	// Every model bucket falls in one exported bucket, whole.
	for i := range model.HistBuckets {
		lo, hi := model.HistBounds(i)
		j := promBucketOf[i]
		if j < len(promBounds) && float64(hi)/1e9 > promBounds[j]+1e-15 {
			t.Fatalf("model bucket [%d, %d) ns ends past le=%g", lo, hi, promBounds[j])
		}
		if j > 0 && float64(lo)/1e9 < promBounds[j-1]-1e-15 {
			t.Fatalf("model bucket [%d, %d) ns starts below le=%g, the bound before its bucket", lo, hi, promBounds[j-1])
		}
	}
}

func TestSeriesCap(t *testing.T) {
	a := New(Config{MaxSeries: 3})
	w := &model.Trace{Start: t0, Duration: time.Second}
	for pid := 1; pid <= 5; pid++ {
		w.Processes = append(w.Processes, model.Process{PID: pid, Comm: fmt.Sprintf("worker%d", pid)})
		st := model.SyscallStat{PID: pid, TID: pid, Name: "read"}
		st.AddCall(ms, false)
		w.Syscalls = append(w.Syscalls, st)
	}
	for range 2 {
		if err := a.Window(w); err != nil {
			t.Fatal(err)
		}
	}
	mfs := gather(t, a)
	calls := mfs["snag_syscalls_total"].GetMetric()
	if len(calls) != 4 {
		t.Fatalf("%d series of snag_syscalls_total, want 3 and other", len(calls))
	}
	var sum float64
	for _, m := range calls {
		sum += m.GetCounter().GetValue()
	}
	if sum != 10 {
		t.Errorf("the series count %v calls in all, want every one of the 10", sum)
	}
	if got := one(t, mfs, "snag_syscalls_total", map[string]string{"comm": "other", "syscall": "other"}).GetCounter().GetValue(); got != 4 {
		t.Errorf("other holds %v calls, want the 2 processes' 2 windows", got)
	}
	if got := one(t, mfs, "snag_series_dropped_total", map[string]string{"metric": "snag_syscalls_total"}).GetCounter().GetValue(); got != 4 {
		t.Errorf("series dropped %v, want 4 (2 label sets in 2 windows)", got)
	}
}

func TestProcessLeaves(t *testing.T) {
	a := New(Config{})
	feedWindow(t, a, 0, proc{1, "api", true}, proc{2, "batch", true})
	w, evs := window(1, proc{1, "api", true}, proc{2, "batch", true})
	w.Processes[1].Exited = true // batch exits in window 1: its last counts still show
	feed(t, a, w, evs)
	if len(seriesOf(gather(t, a), "snag_syscalls_total", map[string]string{"comm": "batch"})) == 0 {
		t.Fatal("batch's series gone in the window it exited")
	}
	feedWindow(t, a, 2, proc{1, "api", true})
	mfs := gather(t, a)
	for _, name := range []string{"snag_syscalls_total", "snag_syscall_duration_seconds", "snag_blocked_seconds_total", "snag_connections_total"} {
		if s := seriesOf(mfs, name, map[string]string{"comm": "batch"}); len(s) != 0 {
			t.Errorf("%s keeps %d series of the process that left", name, len(s))
		}
		if s := seriesOf(mfs, name, map[string]string{"comm": "api"}); len(s) == 0 {
			t.Errorf("%s lost the series of the process still traced", name)
		}
	}
}

func TestEventsOverLimit(t *testing.T) {
	a := New(Config{MaxEvents: 30})
	feedWindow(t, a, 0, proc{1, "python3", true})
	mfs := gather(t, a)
	// 100 polls and a connect, 30 kept.
	if got := one(t, mfs, "snag_dropped_events_total", map[string]string{"cause": "over_limit"}).GetCounter().GetValue(); got != 71 {
		t.Errorf("over_limit drops %v, want 71", got)
	}
	// The aggregates stay exact past the limit.
	if got := one(t, mfs, "snag_syscalls_total", map[string]string{"syscall": "poll"}).GetCounter().GetValue(); got != 100 {
		t.Errorf("poll calls %v, want 100", got)
	}
}

func TestMetricsLint(t *testing.T) {
	a := New(Config{})
	feedWindow(t, a, 0, proc{1, "python3", true})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(a.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	// METRICS.md documents every family.
	doc, err := os.ReadFile("METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if !strings.Contains(string(doc), "`"+mf.GetName()+"`") {
			t.Errorf("METRICS.md does not document %s", mf.GetName())
		}
	}
}

func TestHTTP(t *testing.T) {
	a := New(Config{})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	for _, p := range []string{PathFindings, PathBlocked} {
		if code, _ := get(p); code != http.StatusServiceUnavailable {
			t.Errorf("%s before the first window: %d, want 503", p, code)
		}
	}
	if p, err := a.BlockedProfile(); p != nil || err != nil {
		t.Errorf("BlockedProfile before the first window: %v, %v", p, err)
	}

	feedWindow(t, a, 0, proc{7, "python3", true})
	code, body := get(PathFindings)
	var doc struct {
		Schema   string `json:"schema"`
		Findings []struct {
			Kind    string `json:"kind"`
			Library string `json:"library"`
			TID     int    `json:"tid"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(body, &doc); code != http.StatusOK || err != nil {
		t.Fatalf("%s: %d, %v:\n%s", PathFindings, code, err, body)
	}
	if doc.Schema != model.Schema || !slices.ContainsFunc(doc.Findings, func(f struct {
		Kind    string `json:"kind"`
		Library string `json:"library"`
		TID     int    `json:"tid"`
	}) bool {
		return f.Kind == model.KindLoopStall && f.Library == "libmariadb.so.3" && f.TID == 7
	}) {
		t.Errorf("%s: schema %q, findings %+v: want the loop stall in libmariadb", PathFindings, doc.Schema, doc.Findings)
	}

	code, body = get(PathBlocked)
	if code != http.StatusOK {
		t.Fatalf("%s: %d %s", PathBlocked, code, body)
	}
	p, err := profile.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s does not parse as pprof: %v", PathBlocked, err)
	}
	var blocked int64
	for _, s := range p.Sample {
		for _, l := range s.Location {
			if l.Line[0].Function.Name == "pvio_socket_wait_io_or_timeout" && l.Mapping.File == "/usr/lib/x86_64-linux-gnu/libmariadb.so.3" {
				blocked += s.Value[0]
				break
			}
		}
	}
	if blocked != int64(100*50*ms) {
		t.Errorf("the profile has %v blocked under libmariadb, want 100 polls of 50ms", time.Duration(blocked))
	}

	code, body = get(PathMetrics)
	if code != http.StatusOK || !strings.Contains(string(body), `snag_finding_active{comm="python3",container="",kind="loop-stall",library="libmariadb.so.3",peer="127.0.0.1:3306",pid="7",pod="",severity="high",syscall="poll"} 1`) {
		t.Errorf("%s: %d, without the active stall:\n%s", PathMetrics, code, body)
	}
}

func TestFlightRecorder(t *testing.T) {
	dir := t.TempDir()
	rec, err := NewRecorder(dir, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Not the recorder's: kept whatever its name says.
	other := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(other, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	a := New(Config{Recorder: rec})
	for i := range 5 {
		feedWindow(t, a, i, proc{3, "python3", true})
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	// Windows end at 15, 30, 45, 60, 75 s: the last 30 s keep 45 s on.
	want := []string{"notes.txt", "snag-20261130T060045.000Z.snag", "snag-20261130T060100.000Z.snag", "snag-20261130T060115.000Z.snag"}
	if !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	f, err := os.Open(filepath.Join(dir, want[3]))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, _ := f.Stat(); fi.Mode().Perm() != 0o600 {
		t.Errorf("recording mode %v, want 0600", fi.Mode().Perm())
	}
	tr, _, err := recording.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Events) != 101 || !tr.Start.Equal(t0.Add(4*15*time.Second)) {
		t.Errorf("the last window's recording: %d events from %v, want 101 from %v", len(tr.Events), tr.Start, t0.Add(60*time.Second))
	}
}

func TestNewRecorderChecks(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct {
		name, dir string
		keep      time.Duration
		want      string
	}{
		{"missing", filepath.Join(dir, "nope"), time.Minute, "no such file"},
		{"a file", file, time.Minute, "not a directory"},
		{"no time", dir, 0, "positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewRecorder(tc.dir, tc.keep); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewRecorder(%s, %v) = %v, want an error saying %q", tc.dir, tc.keep, err, tc.want)
			}
		})
	}
}

func TestProfileHook(t *testing.T) {
	var got []time.Duration
	a := New(Config{Profile: func(p *profile.Profile, w *model.Trace) {
		var blocked int64
		for _, s := range p.Sample {
			blocked += s.Value[0]
		}
		got = append(got, time.Duration(blocked))
		if w.Duration != 15*time.Second {
			t.Errorf("the hook's window lasts %v, want 15s", w.Duration)
		}
	}})
	feedWindow(t, a, 0, proc{1, "python3", true})
	feedWindow(t, a, 1, proc{1, "python3", false})
	// Each window's profile holds that window's blocked time alone.
	if want := []time.Duration{100 * 50 * ms, 0}; !slices.Equal(got, want) {
		t.Errorf("profiles blocked %v, want %v", got, want)
	}
}

// A syscall counted but not timed has calls and no latency series.
func TestUntimedCallsHaveNoHistogram(t *testing.T) {
	a := New(Config{})
	w := &model.Trace{Start: t0, Duration: time.Second, Processes: []model.Process{{PID: 1, Comm: "x"}}}
	w.Syscalls = []model.SyscallStat{{PID: 1, TID: 1, Name: "getppid", Count: 1000}}
	if err := a.Window(w); err != nil {
		t.Fatal(err)
	}
	mfs := gather(t, a)
	if got := one(t, mfs, "snag_syscalls_total", map[string]string{"syscall": "getppid"}).GetCounter().GetValue(); got != 1000 {
		t.Errorf("getppid calls %v, want 1000", got)
	}
	if s := seriesOf(mfs, "snag_syscall_duration_seconds", map[string]string{"syscall": "getppid"}); len(s) != 0 {
		t.Errorf("an untimed syscall has %d latency series, want none", len(s))
	}
}

// The same program in two containers makes two series, each with its
// container and pod.
func TestContainersSeparateSeries(t *testing.T) {
	a := New(Config{})
	w, evs := window(0, proc{1, "python3", true}, proc{2, "python3", true})
	w.Processes[0].Container, w.Processes[0].Pod = "c1", "p1"
	w.Processes[1].Container = "c2"
	feed(t, a, w, evs)
	mfs := gather(t, a)
	for _, want := range []map[string]string{
		{"comm": "python3", "container": "c1", "pod": "p1", "syscall": "poll"},
		{"comm": "python3", "container": "c2", "pod": "", "syscall": "poll"},
	} {
		if got := one(t, mfs, "snag_syscalls_total", want).GetCounter().GetValue(); got != 100 {
			t.Errorf("%v: %v calls, want 100", want, got)
		}
	}
	if s := seriesOf(mfs, "snag_finding_active", map[string]string{"kind": "loop-stall", "container": "c1", "pod": "p1", "pid": "1"}); len(s) != 1 {
		t.Errorf("the stall in container c1: %d series, want 1", len(s))
	}
}

// With expected peers, a connection to any other is a finding of every
// window that makes one.
func TestExpectedPeers(t *testing.T) {
	eps, err := analyzer.ParseExpect("10.0.0.1:5432")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	a := New(Config{Log: &out, Analyzer: analyzer.Config{Expect: eps}})
	feedWindow(t, a, 0, proc{1, "python3", true})
	s := seriesOf(gather(t, a), "snag_finding_active", map[string]string{"kind": model.KindUnexpectedConnection, "peer": "127.0.0.1:3306", "pid": "1"})
	if len(s) != 1 {
		t.Errorf("unexpected-connection series for the database: %d, want 1", len(s))
	}
	if !strings.Contains(out.String(), `"event":"finding-start","kind":"unexpected-connection"`) {
		t.Errorf("no finding-start line for the unexpected connection:\n%s", out.String())
	}
}
