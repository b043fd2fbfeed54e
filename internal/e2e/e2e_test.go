//go:build linux

// Package e2e runs the snag binary against the bundled examples, as a user
// would, and checks the reports.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/testutil"
)

var binDir string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "snag-e2e")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binDir = dir
		for _, pkg := range []string{"./cmd/snag", "./examples/stalledloop", "./examples/healthy/gohttp"} {
			cmd := exec.Command("go", "build", "-o", dir+"/", pkg)
			cmd.Dir = repoRoot()
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintf(os.Stderr, "build %s: %v\n", pkg, err)
				return 1
			}
		}
		defer stopMariaDB()
		defer stopRedis()
		defer stopHealthy()
		return m.Run()
	}()
	os.Exit(code)
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..")
}

func bin(name string) string { return filepath.Join(binDir, name) }

// report is the part of snag/v1 the tests read.
type report struct {
	Schema    string            `json:"schema"`
	Target    struct{ PID int } `json:"target"`
	Dropped   uint64            `json:"dropped_events"`
	Processes []struct {
		PID     int      `json:"pid"`
		PPID    int      `json:"ppid"`
		Comm    string   `json:"comm"`
		Cmdline []string `json:"cmdline"`
	} `json:"processes"`
	Threads  []thread `json:"threads"`
	Syscalls []struct {
		Name    string `json:"name"`
		TID     int    `json:"tid"`
		Count   uint64 `json:"count"`
		TotalNS int64  `json:"total_ns"`
	} `json:"syscalls"`
	Connections []struct {
		Peer     string `json:"peer"`
		Service  string `json:"service"`
		Expected bool   `json:"expected"`
	} `json:"connections"`
	Findings []finding `json:"findings"`
	Notes    []string  `json:"notes"`
}

type thread struct {
	TID     int    `json:"tid"`
	PID     int    `json:"pid"`
	Name    string `json:"name"`
	Role    string `json:"role"`
	OnCPUNS int64  `json:"on_cpu_ns"`
	Started bool   `json:"started"` // created during the trace
}

type finding struct {
	Kind      string   `json:"kind"`
	Severity  string   `json:"severity"`
	Title     string   `json:"title"`
	TID       int      `json:"tid"`
	Thread    string   `json:"thread"`
	Syscall   string   `json:"syscall"`
	Count     uint64   `json:"count"`
	P50       int64    `json:"p50_ns"`
	Share     float64  `json:"share"`
	Peer      string   `json:"peer"`
	Library   string   `json:"library"`
	Stack     []string `json:"stack"`
	Coroutine string   `json:"coroutine"`
	Detail    string   `json:"detail"`
	Hint      string   `json:"hint"`
}

func (r *report) find(kind, peer string) *finding {
	for i := range r.Findings {
		f := &r.Findings[i]
		if f.Kind == kind && (peer == "" || f.Peer == peer) {
			return f
		}
	}
	return nil
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// stalledLoop starts the example and its load generator.
func stalledLoop(t *testing.T) (pid int, db, store string) {
	t.Helper()
	httpAddr, db, store := freePort(t), freePort(t), freePort(t)
	ready := filepath.Join(t.TempDir(), "ready")
	srv := exec.Command(bin("stalledloop"), "serve", "--addr", httpAddr, "--db-addr", db, "--store-addr", store, "--ready-file", ready)
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	waitFile(t, ready)
	load := exec.Command(bin("stalledloop"), "load", "--url", "http://"+httpAddr+"/", "-c", "8", "-d", "20s")
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { load.Process.Kill(); load.Wait() })
	time.Sleep(500 * time.Millisecond)
	return srv.Process.Pid, db, store
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
}

// snag runs the binary and decodes its JSON report; it also returns the exit code.
func snag(t *testing.T, args ...string) (*report, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bin("snag"), args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var r report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("snag %s: exit %d, output not JSON: %v\nstdout: %.2000s\nstderr: %s", strings.Join(args, " "), code, err, out.String(), errb.String())
	}
	return &r, code
}

// checkStalledLoop asserts the example's three findings. An strace log
// carries no thread names, so names is false for it.
func checkStalledLoop(t *testing.T, r *report, db, store string, names bool) {
	t.Helper()
	stall := r.find("loop-stall", db)
	if stall == nil {
		t.Fatalf("no loop-stall on the database %s; findings: %+v", db, r.Findings)
	}
	if stall.Severity != "high" || stall.Syscall != "recvfrom" || (names && stall.Thread != "loop") {
		t.Errorf("stall %+v: want high, recvfrom, on thread loop", stall)
	}
	if stall.P50 < int64(18*time.Millisecond) || stall.P50 > int64(30*time.Millisecond) {
		t.Errorf("stall p50 %v, want about the 20ms database delay", time.Duration(stall.P50))
	}
	if u := r.find("unexpected-connection", store); u == nil {
		t.Errorf("the result store %s is not flagged unexpected; findings: %+v", store, r.Findings)
	}
	if u := r.find("unexpected-connection", db); u != nil {
		t.Errorf("the expected database is flagged: %+v", u)
	}
	churn := r.find("connection-churn", store)
	if churn == nil {
		t.Fatalf("no connection-churn to %s", store)
	}
	if !strings.Contains(churn.Title, "/s") {
		t.Errorf("churn title %q does not name its rate", churn.Title)
	}
}

func TestStalledLoopAttach(t *testing.T) {
	testutil.RequireBPF(t)
	pid, db, store := stalledLoop(t)
	r, code := snag(t, "attach", "-p", strconv.Itoa(pid), "-d", "3s", "--expect", db, "--format", "json", "--fail-on", "high")
	if code != 1 {
		t.Errorf("exit code %d with high findings and --fail-on high, want 1", code)
	}
	if r.Schema != "snag/v1" || r.Target.PID != pid {
		t.Errorf("schema %q target %d", r.Schema, r.Target.PID)
	}
	checkStalledLoop(t, r, db, store, true)
}

func TestStalledLoopRecordThenAnalyze(t *testing.T) {
	testutil.RequireBPF(t)
	pid, db, store := stalledLoop(t)
	file := filepath.Join(t.TempDir(), "incident.snag")
	cmd := exec.Command(bin("snag"), "record", "-p", strconv.Itoa(pid), "-d", "3s", "-o", file)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("snag record: %v", err)
	}
	r, _ := snag(t, "analyze", file, "--expect", db, "--format", "json")
	checkStalledLoop(t, r, db, store, true)
}

func TestBadInputExitCodes(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "garbage")
	os.WriteFile(garbage, bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 1000), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"no args", nil, 2},
		{"unknown command", []string{"frobnicate"}, 2},
		{"attach without pid", []string{"attach"}, 2},
		{"bad flag", []string{"attach", "-p", "1", "--threshold", "soon"}, 2},
		{"dead pid", []string{"attach", "-p", "999999999"}, 2},
		{"garbled file", []string{"analyze", garbage}, 2},
		{"missing file", []string{"analyze", "/nonexistent/trace.snag"}, 2},
		{"bad fail-on", []string{"analyze", garbage, "--fail-on", "urgent"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errb bytes.Buffer
			cmd := exec.Command(bin("snag"), tc.args...)
			cmd.Stderr = &errb
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tc.want {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.want, errb.String())
			}
			if strings.Contains(errb.String(), "goroutine ") || strings.Contains(errb.String(), "panic") {
				t.Errorf("stack dump on bad input: %s", errb.String())
			}
		})
	}
}

func TestNoPrivilegesExit3(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop to another user")
	}
	sleeper := exec.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	// setpriv drops every capability for an unprivileged uid.
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv not installed")
	}
	os.Chmod(binDir, 0o755)
	var errb bytes.Buffer
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
		bin("snag"), "attach", "-p", strconv.Itoa(os.Getpid()), "-d", "1s")
	cmd.Stderr = &errb
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 3 {
		t.Fatalf("unprivileged attach: %v, want exit 3; stderr: %s", err, errb.String())
	}
	if !strings.Contains(errb.String(), "privileges") || strings.Count(strings.TrimSpace(errb.String()), "\n") > 0 {
		t.Errorf("want one line naming the missing privileges, got: %q", errb.String())
	}
}

func TestStalledLoopFromStraceLog(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to ptrace the example")
	}
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("strace not installed")
	}
	pid, db, store := stalledLoop(t)
	log := filepath.Join(t.TempDir(), "strace.log")
	cmd := exec.Command("timeout", "-s", "INT", "3", "strace", "-f", "-tt", "-T", "-yy", "-p", strconv.Itoa(pid), "-o", log)
	cmd.Run() // timeout's exit status is expected
	r, _ := snag(t, "analyze", log, "--expect", db, "--format", "json")
	checkStalledLoop(t, r, db, store, false)
}

func TestInterruptStillReports(t *testing.T) {
	testutil.RequireBPF(t)
	target := exec.Command("sh", "-c", "while :; do sleep 0.05; done")
	if err := target.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { target.Process.Kill(); target.Wait() }()
	var out bytes.Buffer
	cmd := exec.Command(bin("snag"), "attach", "-p", strconv.Itoa(target.Process.Pid), "--format", "json")
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("snag after Ctrl-C: %v", err)
	}
	var r report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("no report after Ctrl-C: %v\n%s", err, out.String())
	}
	if r.Target.PID != target.Process.Pid {
		t.Errorf("report for pid %d, want %d", r.Target.PID, target.Process.Pid)
	}
}

func TestTargetExitingMidTraceStillReports(t *testing.T) {
	testutil.RequireBPF(t)
	target := exec.Command("sh", "-c", "sleep 0.3; sleep 0.3; exit 7")
	if err := target.Start(); err != nil {
		t.Fatal(err)
	}
	go target.Wait()
	start := time.Now()
	r, code := snag(t, "attach", "-p", strconv.Itoa(target.Process.Pid), "-d", "30s", "--format", "json")
	if code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("snag ran %v after its target exited", took)
	}
	if r.Target.PID != target.Process.Pid {
		t.Errorf("report for pid %d, want %d", r.Target.PID, target.Process.Pid)
	}
}

// Fast sends on a connected socket are counted, not sent one by one as
// events; a datagram to a named address is an event and a peer.
func TestSendsToAddressesAreEventsConnectedSendsAreNot(t *testing.T) {
	testutil.RequireBPF(t)
	script := `import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3): u.sendto(b"x", ("127.0.0.1", 9))
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
c = socket.create_connection(l.getsockname()); s, _ = l.accept()
for _ in range(200): c.send(b"y")
`
	type result struct {
		Events      uint64 `json:"events"`
		Connections []struct {
			Peer  string `json:"peer"`
			Sends uint64 `json:"sends"`
		} `json:"connections"`
	}
	run := func(script string) result {
		var out bytes.Buffer
		cmd := exec.Command(bin("snag"), "run", "--format", "json", "--", "/usr/bin/python3", "-c", script)
		cmd.Stdout = &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("snag run: %v", err)
		}
		var doc result
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		return doc
	}
	doc := run(script)
	// The interpreter's start-up (the files it opens) makes events of its
	// own: compare with the same script making one connected send.
	base := run(strings.Replace(script, "range(200)", "range(1)", 1))
	if doc.Events > base.Events+30 {
		t.Errorf("%d events against %d for one send: the 200 connected sends came one by one", doc.Events, base.Events)
	}
	var sends uint64
	for _, c := range doc.Connections {
		if c.Peer == "127.0.0.1:9" {
			sends = c.Sends
		}
	}
	if sends != 3 {
		t.Errorf("%d sends to 127.0.0.1:9, want 3", sends)
	}
}
