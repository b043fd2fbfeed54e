package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// chromeTrace is what a trace viewer reads, typed the way the format
// defines it, so decoding checks every field's type.
type chromeTrace struct {
	TraceEvents []struct {
		Name  string         `json:"name"`
		Cat   string         `json:"cat"`
		Ph    string         `json:"ph"`
		TS    *float64       `json:"ts"`
		Dur   *float64       `json:"dur"`
		PID   *int           `json:"pid"`
		TID   *int           `json:"tid"`
		Scope string         `json:"s"`
		Args  map[string]any `json:"args"`
	} `json:"traceEvents"`
	DisplayTimeUnit string            `json:"displayTimeUnit"`
	OtherData       map[string]string `json:"otherData"`
}

func renderPerfetto(t *testing.T, tr *model.Trace, a *model.Analysis) (chromeTrace, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := Perfetto(&buf, tr, a); err != nil {
		t.Fatal(err)
	}
	var ct chromeTrace
	dec := json.NewDecoder(bytes.NewReader(buf.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ct); err != nil {
		t.Fatalf("decode: %v\n%s", err, buf.Bytes())
	}
	return ct, buf.Bytes()
}

func TestPerfettoStructure(t *testing.T) {
	tr, a := geventFixture()
	ct, _ := renderPerfetto(t, tr, a)
	if ct.DisplayTimeUnit != "ms" {
		t.Errorf("displayTimeUnit = %q", ct.DisplayTimeUnit)
	}
	named := map[[2]int]bool{}
	procNamed := map[int]bool{}
	used := map[[2]int]bool{}
	var slices, instants, findings int
	for i, e := range ct.TraceEvents {
		if e.Name == "" || e.Ph == "" || e.TS == nil || e.PID == nil || e.TID == nil {
			t.Fatalf("event %d lacks name, ph, ts, pid or tid: %+v", i, e)
		}
		key := [2]int{*e.PID, *e.TID}
		switch e.Ph {
		case "M":
			switch e.Name {
			case "thread_name":
				named[key] = true
			case "process_name":
				procNamed[*e.PID] = true
			default:
				t.Errorf("unknown metadata %q", e.Name)
			}
			if n, _ := e.Args["name"].(string); n == "" {
				t.Errorf("metadata %d has no name arg", i)
			}
		case "X":
			slices++
			used[key] = true
			if e.Dur == nil || *e.Dur < 0 || *e.TS < 0 {
				t.Errorf("slice %d has bad ts/dur: %+v", i, e)
			}
			for _, k := range []string{"fd", "ret"} {
				if _, ok := e.Args[k]; !ok {
					t.Errorf("slice %q lacks arg %q", e.Name, k)
				}
			}
		case "i":
			instants++
			used[key] = true
			if e.Scope != "t" && e.Scope != "p" {
				t.Errorf("instant %q has scope %q", e.Name, e.Scope)
			}
			if e.Dur != nil {
				t.Errorf("instant %q has a duration", e.Name)
			}
			if e.Cat == "finding" {
				findings++
			}
		default:
			t.Errorf("unexpected phase %q", e.Ph)
		}
	}
	for k := range used {
		if !named[k] {
			t.Errorf("thread %v used without thread_name metadata", k)
		}
		if !procNamed[k[0]] {
			t.Errorf("process %d used without process_name metadata", k[0])
		}
	}
	// The fixture holds 4 syscall events (3 slow calls, 1 connect), a fork, an
	// exit and 3 findings.
	if slices != 4 || instants != 5 || findings != 3 {
		t.Errorf("%d slices, %d instants, %d findings; want 4, 5, 3", slices, instants, findings)
	}
}

func TestPerfettoTimes(t *testing.T) {
	tr, a := geventFixture()
	ct, _ := renderPerfetto(t, tr, a)
	find := func(name, cat string) (ts, dur float64, args map[string]any) {
		t.Helper()
		for _, e := range ct.TraceEvents {
			if strings.HasPrefix(e.Name, name) && e.Cat == cat {
				if e.Dur != nil {
					dur = *e.Dur
				}
				return *e.TS, dur, e.Args
			}
		}
		t.Fatalf("no %s event %q", cat, name)
		return 0, 0, nil
	}
	// The first slow poll returned 2.5s in after 50.1ms: it began at 2449.9ms.
	ts, dur, args := find("poll", "syscall")
	if ts != 2_449_900 || dur != 50_100 {
		t.Errorf("poll slice at %vµs for %vµs, want 2449900 for 50100", ts, dur)
	}
	if args["peer"] != "127.0.0.1:3306" || args["poll_nfds"] != float64(1) || args["poll_timeout"] != float64(-1) || args["nonblock"] != false {
		t.Errorf("poll args = %v", args)
	}
	if st, _ := args["stack"].([]any); len(st) != 6 || st[1] != "pvio_socket_wait_io_or_timeout (libmariadb.so.3)" {
		t.Errorf("poll stack = %v", args["stack"])
	}
	// Findings sit at their first matching event, or at 0.
	if ts, _, _ := find("[high]", "finding"); ts != 2_449_900 {
		t.Errorf("loop-stall finding at %vµs, want the first poll's start", ts)
	}
	if ts, _, _ := find("[medium]", "finding"); ts != 1_199_100 {
		t.Errorf("unexpected-connection finding at %vµs, want the connect's start", ts)
	}
	if ts, _, args := find("[low]", "finding"); ts != 3_755_000 || args["kind"] != "lock-contention" {
		t.Errorf("lock finding at %vµs args %v", ts, args)
	}
	if ts, _, args := find("thread exit", "process"); ts != 9_000_000 || args["exit_code"] != float64(0) {
		t.Errorf("exit at %vµs args %v", ts, args)
	}
}

func TestPerfettoEdgeCases(t *testing.T) {
	tr := &model.Trace{
		Target:  model.Target{PID: 10},
		StartNS: 1_000_000,
		Events: []model.Event{
			// Began before tracing did: drawn from 0 to its return.
			{Kind: model.EvSyscall, Time: 1_500_000, Duration: 2 * time.Millisecond, PID: 10, TID: 11, Nr: 999, FD: -1},
			// Duration longer than the clock: must not wrap around.
			{Kind: model.EvSyscall, Time: 100, Duration: time.Second, PID: 10, TID: 11, Syscall: "read", FD: 3},
			{Kind: model.EvExec, Time: 1_200_000, PID: 12, TID: 12, Filename: "/usr/bin/python3", Comm: "python3"},
			{Kind: model.EventKind(99), Time: 1_300_000, PID: 10, TID: 10},
		},
	}
	a := &model.Analysis{Findings: []model.Finding{
		{Kind: model.KindWorkerSaturation, Severity: model.SeverityMedium, Title: "all workers busy"},
		{Kind: model.KindLockContention, Severity: model.SeverityLow, Title: "lock", TID: 13, Syscall: "futex"},
	}}
	ct, _ := renderPerfetto(t, tr, a)
	var gotNames []string
	for _, e := range ct.TraceEvents {
		if e.Ph == "M" {
			continue
		}
		gotNames = append(gotNames, e.Name)
		if *e.TS < 0 || (e.Dur != nil && *e.Dur < 0) {
			t.Errorf("%q at %v for %v", e.Name, *e.TS, *e.Dur)
		}
		switch e.Name {
		case "syscall_999":
			if *e.TS != 0 || *e.Dur != 500 {
				t.Errorf("clamped slice at %v for %v, want 0 for 500", *e.TS, *e.Dur)
			}
		case "[medium] all workers busy":
			if *e.PID != 10 || *e.TID != 10 || e.Scope != "p" {
				t.Errorf("process finding on %d/%d scope %q", *e.PID, *e.TID, e.Scope)
			}
		case "[low] lock":
			if *e.TS != 0 || *e.TID != 13 || *e.PID != 13 {
				t.Errorf("unmatched finding at %v on %d/%d", *e.TS, *e.PID, *e.TID)
			}
		}
	}
	want := []string{"syscall_999", "read", "exec python3", "[medium] all workers busy", "[low] lock"}
	if strings.Join(gotNames, "|") != strings.Join(want, "|") {
		t.Errorf("events %q, want %q", gotNames, want)
	}
}

func TestPerfettoGolden(t *testing.T) {
	tr, a := geventFixture()
	_, out := renderPerfetto(t, tr, a)
	checkGolden(t, "gevent.perfetto.json", out)
}

func TestPerfettoErrors(t *testing.T) {
	if err := Perfetto(&bytes.Buffer{}, nil, nil); err == nil {
		t.Error("nil trace: no error")
	}
	tr, a := geventFixture()
	if err := Perfetto(failingWriter{}, tr, a); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("failing writer: err = %v", err)
	}
}

// manyEvents is the fixture with n slow syscall events spread over threads.
func manyEvents(n int) (*model.Trace, *model.Analysis) {
	tr, a := geventFixture()
	base := tr.Events[1]
	tr.Events = make([]model.Event, n)
	for i := range tr.Events {
		e := base
		e.TID = 4242 + i%8
		e.Time = fixtureStartNS + uint64(i)*1_000_000
		tr.Events[i] = e
	}
	return tr, a
}

func BenchmarkPerfetto(b *testing.B) {
	tr, a := manyEvents(100_000)
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := Perfetto(&buf, tr, a); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len())/float64(len(tr.Events)), "bytes/event")
}

func BenchmarkTable(b *testing.B) {
	tr, a := manyEvents(100_000)
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := Table(&buf, tr, a, TableOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSON(b *testing.B) {
	tr, a := manyEvents(100_000)
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := JSON(&buf, tr, a); err != nil {
			b.Fatal(err)
		}
	}
}
