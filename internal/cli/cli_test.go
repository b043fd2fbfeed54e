package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/recording"
	"github.com/snagtrace/snag/internal/stracelog"
)

// stallLog writes an strace log of a loop thread that spends most of its
// time in poll on a MySQL socket between epoll waits.
func stallLog(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	at := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	ts := func() string { return at.Format("15:04:05.000000") }
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&b, "4242  %s epoll_wait(4<anon_inode:[eventpoll]>, [{events=EPOLLIN, data={u32=7, u64=7}}], 64, 1000) = 1 <0.001000>\n", ts())
		at = at.Add(time.Millisecond)
		fmt.Fprintf(&b, "4242  %s poll([{fd=7<TCP:[127.0.0.1:40000->127.0.0.1:3306]>, events=POLLIN}], 1, 60000) = 1 ([{fd=7, revents=POLLIN}]) <0.050000>\n", ts())
		at = at.Add(50 * time.Millisecond)
	}
	path := filepath.Join(t.TempDir(), "stall.log")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(args, Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no command", nil, "Usage:"},
		{"unknown command", []string{"trace"}, `unknown command "trace"`},
		{"attach without pid", []string{"attach"}, "-p PID is required"},
		{"pid not a number", []string{"attach", "-p", "web"}, `"web" is not a process id`},
		{"bad format", []string{"attach", "-p", "1", "--format", "xml"}, "--format must be table or json"},
		{"bad output extension", []string{"attach", "-p", "1", "-o", "report.txt"}, "unknown report extension"},
		{"bad fail-on", []string{"attach", "-p", "1", "--fail-on", "urgent"}, "unknown severity"},
		{"bad expect", []string{"attach", "-p", "1", "--expect", "db:notaport"}, "--expect"},
		{"ring not a power of two", []string{"attach", "-p", "1", "--ring-bytes", "5000"}, "power of two"},
		{"run without command", []string{"run"}, "give the command after --"},
		{"record without output", []string{"record", "-p", "1"}, "-o FILE are required"},
		{"analyze without file", []string{"analyze"}, "give a recording or an strace log"},
		{"unknown flag", []string{"attach", "--frobnicate"}, "unknown flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(tc.args...)
			if code != ExitUsage {
				t.Errorf("exit %d, want %d", code, ExitUsage)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tc.want)
			}
		})
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"attach", "--help"}} {
		if code, _, _ := run(args...); code != ExitOK {
			t.Errorf("%v: exit %d, want 0", args, code)
		}
	}
}

func TestAnalyzeStraceLogFailOn(t *testing.T) {
	log := stallLog(t)
	code, stdout, stderr := run("analyze", log, "--fail-on", "high")
	if code != ExitFindings {
		t.Fatalf("exit %d, want %d; stderr %s", code, ExitFindings, stderr)
	}
	if !strings.Contains(stdout, "loop-stall") || !strings.Contains(stdout, "127.0.0.1:3306") {
		t.Errorf("table report lacks the stall on 127.0.0.1:3306:\n%s", stdout)
	}
	if code, _, _ := run("analyze", log); code != ExitOK {
		t.Errorf("without --fail-on: exit %d, want 0", code)
	}
}

func TestAnalyzeWritesEveryReport(t *testing.T) {
	log := stallLog(t)
	dir := t.TempDir()
	outs := []string{"r.json", "r.pb.gz", "r.folded", "r.svg", "r.perfetto.json", "r.html"}
	args := []string{"analyze", log, "--format", "json", "--baseline-out", filepath.Join(dir, "base.json")}
	for _, o := range outs {
		args = append(args, "-o", filepath.Join(dir, o))
	}
	code, stdout, stderr := run(args...)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || doc["schema"] != "snag/v1" {
		t.Fatalf("stdout is not a snag/v1 document: %v", err)
	}
	for _, o := range append(outs, "base.json") {
		if fi, err := os.Stat(filepath.Join(dir, o)); err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", o, err)
		}
	}
	// The baseline of this run knows 127.0.0.1:3306: nothing is new.
	if code, stdout, _ := run("analyze", log, "--baseline", filepath.Join(dir, "base.json")); code != ExitOK || strings.Contains(stdout, "unexpected-connection") {
		t.Errorf("peers of the baseline itself flagged (exit %d):\n%s", code, stdout)
	}
}

func TestAnalyzeBadInput(t *testing.T) {
	dir := t.TempDir()
	garbled := filepath.Join(dir, "garbled")
	os.WriteFile(garbled, bytes.Repeat([]byte("\x00\x01binary"), 500), 0o644)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	for _, path := range []string{garbled, empty, filepath.Join(dir, "missing")} {
		code, _, stderr := run("analyze", path)
		if code != ExitUsage {
			t.Errorf("%s: exit %d, want %d", filepath.Base(path), code, ExitUsage)
		}
		if lines := strings.Count(strings.TrimSpace(stderr), "\n") + 1; lines != 1 {
			t.Errorf("%s: want a one-line error, got %q", filepath.Base(path), stderr)
		}
	}
}

func TestAnalyzeTruncatedRecording(t *testing.T) {
	// A recording of the strace log's trace, cut short as a kill -9 of
	// snag record would leave it: analyze reports what precedes the cut.
	tr, _, err := stracelog.ParseFiles([]string{stallLog(t)}, stracelog.Options{Threshold: 0})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := recording.NewWriter(&buf, tr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range tr.Events {
		w.Event(&tr.Events[i])
		if i%10 == 9 {
			w.Flush() // as snag record does about once a second
		}
	}
	if err := w.Close(tr); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cut.snag")
	os.WriteFile(path, buf.Bytes()[:buf.Len()*2/3], 0o644)
	code, stdout, stderr := run("analyze", path)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "truncated") {
		t.Errorf("no word of the truncation on stderr: %q", stderr)
	}
	if !strings.Contains(stdout, "Syscalls") {
		t.Errorf("no report from the readable part:\n%s", stdout)
	}
}
