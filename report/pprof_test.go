package report

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

func writeParseProfile(t *testing.T) (*profile.Profile, []byte) {
	t.Helper()
	tr, a := stackFixture()
	var buf bytes.Buffer
	if err := Pprof(&buf, tr, a); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("parse written profile: %v", err)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatalf("parsed profile invalid: %v", err)
	}
	return p, buf.Bytes()
}

func TestPprofRoundTripTotals(t *testing.T) {
	p, _ := writeParseProfile(t)
	tr, _ := stackFixture()
	blocked, calls := fixtureTotals(tr)

	if len(p.SampleType) != 2 || p.SampleType[0].Type != "blocked" || p.SampleType[0].Unit != "nanoseconds" ||
		p.SampleType[1].Type != "syscalls" || p.SampleType[1].Unit != "count" || p.DefaultSampleType != "blocked" {
		t.Fatalf("sample types %v default %q", p.SampleType, p.DefaultSampleType)
	}
	if p.TimeNanos != tr.Start.UnixNano() || p.DurationNanos != int64(10*time.Second) {
		t.Errorf("time %d duration %d", p.TimeNanos, p.DurationNanos)
	}

	byLabel := map[string]int64{}
	byLeaf := map[string]int64{}
	callsByLabel := map[string]int64{}
	for _, s := range p.Sample {
		sc := s.Label["syscall"][0]
		byLabel[sc] += s.Value[0]
		callsByLabel[sc] += s.Value[1]
		// The synthetic syscall function is the leaf unless kernel frames sit above it.
		for _, l := range s.Location {
			if name := l.Line[0].Function.Name; strings.HasPrefix(name, syscallFunctionPrefix) {
				byLeaf[strings.TrimPrefix(name, syscallFunctionPrefix)] += s.Value[0]
				break
			}
		}
	}
	for sc, want := range blocked {
		if byLabel[sc] != want.Nanoseconds() || byLeaf[sc] != want.Nanoseconds() {
			t.Errorf("%s: label total %d, leaf total %d, want %d", sc, byLabel[sc], byLeaf[sc], want.Nanoseconds())
		}
		if callsByLabel[sc] != calls[sc] {
			t.Errorf("%s: %d calls, want %d", sc, callsByLabel[sc], calls[sc])
		}
	}
	if len(byLabel) != len(blocked) {
		t.Errorf("syscalls %v, want %v", byLabel, blocked)
	}
}

func TestPprofLabels(t *testing.T) {
	p, _ := writeParseProfile(t)
	seen := map[string]bool{}
	for _, s := range p.Sample {
		sc := s.Label["syscall"][0]
		tid := s.NumLabel["tid"]
		if len(tid) != 1 || (tid[0] != 4242 && tid[0] != 4250) {
			t.Errorf("%s: tid label %v", sc, tid)
		}
		switch sc {
		case "poll":
			if s.Label["peer"][0] != "10.0.0.5:3306" || s.Label["role"][0] != "event-loop" || s.Label["thread"][0] != "python3" {
				t.Errorf("poll labels %v", s.Label)
			}
		case "futex":
			if s.Label["role"][0] != "worker" || s.Label["thread"][0] != "ThreadPoolExec" || len(s.Label["peer"]) != 0 {
				t.Errorf("futex labels %v", s.Label)
			}
			if len(s.Location) != 1 {
				t.Errorf("stackless futex has %d locations, want the syscall alone", len(s.Location))
			}
		}
		seen[sc] = true
	}
	if !seen["poll"] || !seen["futex"] {
		t.Errorf("samples for %v", seen)
	}
	// Identical stacks and labels merge: 40 polls become one sample.
	if len(p.Sample) != 5 {
		t.Errorf("%d samples, want 5 distinct stacks", len(p.Sample))
	}
}

func TestPprofDeduplicates(t *testing.T) {
	p, _ := writeParseProfile(t)
	files := map[string]*profile.Mapping{}
	for _, m := range p.Mapping {
		if files[m.File] != nil {
			t.Errorf("mapping %q appears twice", m.File)
		}
		files[m.File] = m
	}
	libc := files["/usr/lib/x86_64-linux-gnu/libc.so.6"]
	if libc == nil || libc.BuildID != buildIDLibc {
		t.Errorf("libc mapping %+v", libc)
	}
	if files[kernelMapping] == nil {
		t.Errorf("no kernel mapping among %v", p.Mapping)
	}
	type fkey struct{ name, file string }
	fns := map[fkey]bool{}
	for _, f := range p.Function {
		k := fkey{f.Name, f.Filename}
		if fns[k] {
			t.Errorf("function %v appears twice", k)
		}
		fns[k] = true
	}
	type lkey struct {
		addr uint64
		fn   uint64
	}
	locs := map[lkey]bool{}
	for _, l := range p.Location {
		k := lkey{l.Address, l.Line[0].Function.ID}
		if locs[k] {
			t.Errorf("location %#x %s appears twice", l.Address, l.Line[0].Function.Name)
		}
		locs[k] = true
		if l.Mapping != nil && l.Mapping.File == "/usr/lib/x86_64-linux-gnu/libmariadb.so.3" && l.Address == 0 {
			t.Errorf("libmariadb location lost its address")
		}
	}
	// poll in libc and the poll syscall stay two functions.
	if !fns[fkey{"poll", ""}] || !fns[fkey{"syscall:poll", ""}] {
		t.Errorf("functions %v lack libc poll or syscall:poll", fns)
	}
	// Python frames name their script, and their location the line.
	if !fns[fkey{"get_user", "/srv/app/app/views.py"}] {
		t.Errorf("no interpreter function for get_user")
	}
	for _, l := range p.Location {
		if fn := l.Line[0].Function; fn.Name == "get_user" && l.Line[0].Line != 42 {
			t.Errorf("get_user's location is at line %d, want 42", l.Line[0].Line)
		}
	}
}

func TestPprofEmptyTrace(t *testing.T) {
	var buf bytes.Buffer
	if err := Pprof(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Sample) != 0 || len(p.SampleType) != 2 {
		t.Errorf("empty profile: %d samples, %d types", len(p.Sample), len(p.SampleType))
	}
}

// TestPprofTool reads the profile with the real pprof command line.
func TestPprofTool(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	_, data := writeParseProfile(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "blocked.pb.gz")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "tool", "pprof", "-top", "-nodecount=200", "-nodefraction=0", "-symbolize=none", file)
	cmd.Env = append(os.Environ(), "PPROF_TMPDIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof: %v\n%s", err, out)
	}
	for _, want := range []string{
		"Type: blocked",
		"syscall:poll",
		"pvio_socket_wait_io_or_timeout",
		"_mysql_ConnectionObject_query",
		"PylibMC_Client_get",
		"syscall:futex",
		"1900ms total", // every event, none dropped
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("pprof -top lacks %q:\n%s", want, out)
		}
	}
}
