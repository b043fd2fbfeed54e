//go:build linux

package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snagtrace/snag/internal/recording"
	"github.com/snagtrace/snag/internal/stracelog"
)

// Every output path is checked before anything is traced: these all fail
// with exit 2 at once (pid 1 is never attached to: the check comes first).
func TestOutputsCheckedBeforeTracing(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("precious"), 0o644)
	link := filepath.Join(dir, "planted.json")
	os.Symlink(victim, link)
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, nil, 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing directory", []string{"attach", "-p", "1", "-o", filepath.Join(dir, "nope/r.json")}, "no such file or directory"},
		{"directory is a file", []string{"attach", "-p", "1", "-o", filepath.Join(notDir, "r.json")}, "not a directory"},
		{"symlink", []string{"attach", "-p", "1", "-o", link}, "does not write through symlinks"},
		{"baseline extension", []string{"attach", "-p", "1", "--baseline-out", filepath.Join(dir, "base.txt")}, "*.json"},
		{"baseline missing directory", []string{"attach", "-p", "1", "--baseline-out", filepath.Join(dir, "nope/base.json")}, "no such file"},
		{"record over a symlink", []string{"record", "-p", "1", "-o", link, "--force"}, "symlink"},
		{"run --record missing directory", []string{"run", "--record", filepath.Join(dir, "nope/x.snag"), "-d", "100ms", "--", "true"}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			// -d bounds the trace should a check fail to stop it.
			code, _, stderr := run(append(tc.args, "-d", "100ms")...)
			if code != ExitUsage {
				t.Errorf("exit %d, want %d; stderr %s", code, ExitUsage, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q lacks %q", stderr, tc.want)
			}
			if time.Since(start) > 2*time.Second {
				t.Errorf("took %s: something was traced first", time.Since(start))
			}
		})
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Errorf("the symlink's target was written: %q", b)
	}
}

// snag record never truncates an existing recording: without --force it
// refuses at once; with --force and a failing attach it still leaves the
// file as it was, and no .partial behind.
func TestRecordKeepsExistingFile(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "keep.snag")
	os.WriteFile(keep, []byte("an earlier recording"), 0o600)
	code, _, stderr := run("record", "-p", "999999", "-o", keep)
	if code != ExitUsage || !strings.Contains(stderr, "--force") {
		t.Errorf("exit %d, stderr %q; want exit 2 and a word about --force", code, stderr)
	}
	code, _, stderr = run("record", "-p", "999999", "-o", keep, "--force")
	if code != ExitUsage {
		t.Errorf("--force on a dead pid: exit %d (%s)", code, stderr)
	}
	if b, _ := os.ReadFile(keep); string(b) != "an earlier recording" {
		t.Errorf("existing recording now %q", b)
	}
	if _, err := os.Stat(keep + partialSuffix); err == nil {
		t.Errorf("a failed attach left %s", keep+partialSuffix)
	}
	// An unfinished recording is not overwritten either.
	fresh := filepath.Join(dir, "fresh.snag")
	os.WriteFile(fresh+partialSuffix, []byte("killed mid-way"), 0o600)
	if code, _, stderr := run("record", "-p", "1", "-d", "100ms", "-o", fresh); code != ExitUsage || !strings.Contains(stderr, "did not finish") {
		t.Errorf("over a .partial: exit %d, stderr %q", code, stderr)
	}
}

// The recording is FILE.partial while written, renamed to FILE when done,
// and readable by its owner only.
func TestRecorderPartialThenRenamed(t *testing.T) {
	tr, _, err := stracelog.ParseFiles([]string{stallLog(t)}, stracelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "r.snag")
	for _, finish := range []bool{true, false} {
		os.Remove(path)
		os.Remove(path + partialSuffix)
		rec, err := newRecorder(path, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := rec.Start(tr); err != nil {
			t.Fatal(err)
		}
		for i := range tr.Events {
			rec.Event(&tr.Events[i])
		}
		if _, err := os.Stat(path); err == nil {
			t.Fatalf("%s exists before the recording is complete", path)
		}
		fi, err := os.Stat(path + partialSuffix)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("partial recording: %v, mode %v; want 0600", err, fi.Mode())
		}
		var stderr bytes.Buffer
		if finish {
			if err := rec.Finish(tr); err != nil {
				t.Fatal(err)
			}
			rec.abort(Env{Stderr: &stderr})
			if _, err := os.Stat(path + partialSuffix); err == nil {
				t.Error("the .partial is still there after finishing")
			}
			if code, out, stderr := run("analyze", path); code != ExitOK || !strings.Contains(out, "Syscalls") {
				t.Errorf("analyze the recording: exit %d: %s", code, stderr)
			}
		} else {
			rec.abort(Env{Stderr: &stderr}) // tracing failed mid-way
			if !strings.Contains(stderr.String(), partialSuffix) {
				t.Errorf("no word of where the recording is: %q", stderr.String())
			}
			if code, _, stderr := run("analyze", path+partialSuffix); code != ExitOK {
				t.Errorf("analyze the partial recording: exit %d: %s", code, stderr)
			}
		}
	}
}

// When an output cannot be written after the trace, the report still goes
// to stdout and the exit code is 4; the file's previous version stays.
func TestFailedOutputStillReports(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "sub", "r.json")
	os.Mkdir(filepath.Dir(out), 0o755)
	kept := filepath.Join(dir, "kept.folded")
	os.WriteFile(kept, []byte("old"), 0o644)
	of := outputFlags{format: "table", outputs: []string{out, kept}, failOn: "low", top: 20}
	oc, err := of.prepare()
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Dir(out)) // the disk went away after the check
	tr, _, err := stracelog.ParseFiles([]string{stallLog(t)}, stracelog.Options{Threshold: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	env := Env{Stdout: &stdout, Stderr: &stderr}
	code := exitCode(analyzeAndReport(tr, oc, env), env)
	if code != ExitOutput {
		t.Errorf("exit %d, want %d", code, ExitOutput)
	}
	if !strings.Contains(stdout.String(), "loop-stall") {
		t.Errorf("no report on stdout:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "r.json") || !strings.Contains(stderr.String(), "findings") {
		t.Errorf("stderr should name the failed file and the findings: %q", stderr.String())
	}
	if b, _ := os.ReadFile(kept); string(b) == "old" {
		t.Errorf("the writable output was not written")
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestReportReplacedAtomically(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "r.json")
	os.WriteFile(out, []byte("old"), 0o600)
	var st1 unix.Stat_t
	unix.Stat(out, &st1)
	if code, _, stderr := run("analyze", stallLog(t), "-o", out); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var st2 unix.Stat_t
	unix.Stat(out, &st2)
	if st1.Ino == st2.Ino {
		t.Error("the report was written in place, not renamed into place")
	}
	if st2.Mode&0o777 != 0o644 {
		t.Errorf("report mode %o, want 644", st2.Mode&0o777)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
}

// Non-regular inputs are refused at once instead of read forever.
func TestFIFOInputsRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	log := stallLog(t)
	for _, args := range [][]string{
		{"analyze", fifo},
		{"analyze", log, fifo},
		{"analyze", log, "--expect-file", fifo},
		{"analyze", log, "--baseline", fifo},
		{"attach", "-p", "1", "-d", "100ms", "--expect-file", fifo},
	} {
		done := make(chan struct{})
		var code int
		var stderr string
		go func() { code, _, stderr = run(args...); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			t.Fatalf("%v: still reading the FIFO after 3s", args)
		}
		if code != ExitUsage || !strings.Contains(stderr, "not a regular file") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line", args, code, stderr)
		}
	}
}

// Each input of analyze is detected on its own: a recording among strace
// logs is named, not read as text.
func TestAnalyzeMixedInputs(t *testing.T) {
	log := stallLog(t)
	rec := filepath.Join(t.TempDir(), "r.snag")
	tr, _, err := stracelog.ParseFiles([]string{log}, stracelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, _ := recording.NewWriter(&buf, tr)
	if err := w.Close(tr); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(rec, buf.Bytes(), 0o600)
	code, _, stderr := run("analyze", log, rec)
	if code != ExitUsage || !strings.Contains(stderr, "r.snag is a snag recording") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// A first line of garbage too long to judge the input by is skipped: the
// log is read, the line counted as one bad line.
func TestAnalyzeGarbageFirstLine(t *testing.T) {
	log := stallLog(t)
	b, _ := os.ReadFile(log)
	path := filepath.Join(t.TempDir(), "garbage-first.log")
	os.WriteFile(path, append(append(bytes.Repeat([]byte("x"), 100<<10), '\n'), b...), 0o644)
	code, stdout, stderr := run("analyze", path)
	if code != ExitOK || !strings.Contains(stdout, "loop-stall") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "skipped 1 of") || !strings.Contains(stderr, "(line 1)") {
		t.Errorf("stderr %q: want one skipped line, line 1", stderr)
	}
}

func TestBadLines(t *testing.T) {
	for _, tc := range []struct {
		first []int
		total uint64
		want  string
	}{
		{[]int{4}, 1, "line 4"},
		{[]int{4, 5}, 2, "lines 4 and 5"},
		{[]int{4, 5, 9}, 3, "lines 4, 5 and 9"},
		{[]int{1, 2, 3, 4, 5}, 12, "first at lines 1, 2, 3, 4, 5, …"},
	} {
		if got := badLines(tc.first, tc.total); got != tc.want {
			t.Errorf("badLines(%v, %d) = %q, want %q", tc.first, tc.total, got, tc.want)
		}
	}
}
