// Package testutil holds helpers shared by snag's tests: privilege checks
// and a deterministic syscall workload run as a child process.
package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
)

// RequireBPF skips the test unless it runs as root on a kernel with raw
// tracepoints and ring buffers.
func RequireBPF(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs")
	}
	if err := features.HaveProgramType(ebpf.RawTracepoint); err != nil {
		t.Skipf("raw tracepoints unavailable: %v", err)
	}
	if err := features.HaveMapType(ebpf.RingBuf); err != nil {
		t.Skipf("ring buffers unavailable: %v", err)
	}
}

// Workload describes a deterministic syscall mix run on one locked thread.
type Workload struct {
	Getppid     int           // getppid calls
	BadClose    int           // close(-1) calls, each failing with EBADF
	Sleeps      int           // nanosleep calls
	SleepFor    time.Duration // each sleep's length
	Threads     int           // extra threads started after "go", each doing Getppid calls
	Fork        bool          // also fork a child that calls getppid Getppid times
	GateOnStdin bool          // wait for a line on stdin before starting
	// Spread paces the main thread's Getppid calls evenly over this long,
	// in batches, instead of making them at once.
	Spread time.Duration
	// Hold keeps the extra threads alive, idle, until the workload exits.
	Hold bool
	// Tag is an extra argument on the workload's command line, so that a
	// selector can tell this process by it.
	Tag string
}

// EnvWorkload carries the workload spec to the child process.
const EnvWorkload = "SNAG_TEST_WORKLOAD"

// MaybeRunWorkload runs the workload and exits when the process was started
// by StartWorkload. Call it first in TestMain.
func MaybeRunWorkload() {
	spec := os.Getenv(EnvWorkload)
	if spec == "" {
		return
	}
	var w Workload
	var gate int
	var fork, hold int
	if _, err := fmt.Sscanf(spec, "%d %d %d %d %d %d %d %d %d", &w.Getppid, &w.BadClose, &w.Sleeps, &w.SleepFor, &w.Threads, &fork, &gate, &w.Spread, &hold); err != nil {
		fmt.Fprintln(os.Stderr, "bad workload spec:", err)
		os.Exit(2)
	}
	w.Fork, w.GateOnStdin, w.Hold = fork == 1, gate == 1, hold == 1
	runWorkload(w)
	os.Exit(0)
}

func runWorkload(w Workload) {
	runtime.LockOSThread()
	in := bufio.NewReader(os.Stdin)
	fmt.Printf("ready %d\n", syscall.Gettid())
	if w.GateOnStdin {
		if _, err := in.ReadString('\n'); err != nil {
			os.Exit(3)
		}
	}
	done := make(chan int, w.Threads)
	for i := 0; i < w.Threads; i++ {
		go func() {
			runtime.LockOSThread()
			for j := 0; j < w.Getppid; j++ {
				syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
			}
			done <- syscall.Gettid()
			if w.Hold {
				select {} // the locked thread stays, blocked
			}
		}()
	}
	const batches = 50
	for i := 0; i < w.Getppid; i++ {
		if w.Spread > 0 && i%((w.Getppid+batches-1)/batches) == 0 && i > 0 {
			time.Sleep(w.Spread / batches)
		}
		syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
	}
	for i := 0; i < w.BadClose; i++ {
		syscall.RawSyscall(syscall.SYS_CLOSE, ^uintptr(0), 0, 0)
	}
	ts := syscall.NsecToTimespec(int64(w.SleepFor))
	for i := 0; i < w.Sleeps; i++ {
		syscall.Syscall(syscall.SYS_NANOSLEEP, uintptr(unsafePointer(&ts)), 0, 0)
	}
	tids := []string{}
	for i := 0; i < w.Threads; i++ {
		tids = append(tids, strconv.Itoa(<-done))
	}
	child := 0
	if w.Fork {
		child = forkGetppid(w.Getppid)
	}
	fmt.Printf("done %s child %d\n", strings.Join(tids, ","), child)
	// Stay alive until told, so an attached tracer can read /proc.
	in.ReadString('\n')
}

// Running is a started workload.
type Running struct {
	Cmd     *exec.Cmd
	TID     int   // the locked main workload thread
	Threads []int // extra threads, known after Wait
	Child   int   // forked child, known after Wait
	stdin   io.WriteCloser
	stdout  *bufio.Reader
}

// StartWorkload starts the test binary itself as the workload process.
func StartWorkload(t testing.TB, w Workload) *Running {
	t.Helper()
	args := []string{"-test.run=^$"}
	if w.Tag != "" {
		args = append(args, w.Tag)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), EnvWorkload+"="+Spec(w))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &Running{Cmd: cmd, stdin: stdin, stdout: bufio.NewReader(out)}
	t.Cleanup(func() { r.Cmd.Process.Kill(); r.Cmd.Wait() })
	line, err := r.stdout.ReadString('\n')
	if err != nil {
		t.Fatalf("workload did not start: %v", err)
	}
	if _, err := fmt.Sscanf(line, "ready %d", &r.TID); err != nil {
		t.Fatalf("workload said %q: %v", line, err)
	}
	return r
}

// Go releases a workload started with GateOnStdin.
func (r *Running) Go() error {
	_, err := io.WriteString(r.stdin, "go\n")
	return err
}

// WaitDone waits until the workload finished its syscalls.
func (r *Running) WaitDone() error {
	line, err := r.stdout.ReadString('\n')
	if err != nil {
		return fmt.Errorf("workload ended early: %w", err)
	}
	var tids string
	if _, err := fmt.Sscanf(line, "done %s child %d", &tids, &r.Child); err != nil {
		// No extra threads: "done  child N".
		if _, err2 := fmt.Sscanf(line, "done child %d", &r.Child); err2 != nil {
			return fmt.Errorf("workload said %q: %w", line, errors.Join(err, err2))
		}
		return nil
	}
	for _, s := range strings.Split(tids, ",") {
		if n, err := strconv.Atoi(s); err == nil {
			r.Threads = append(r.Threads, n)
		}
	}
	return nil
}

// Finish lets the workload exit and waits for it.
func (r *Running) Finish() error {
	io.WriteString(r.stdin, "exit\n")
	r.stdin.Close()
	return r.Cmd.Wait()
}

// Spec encodes a workload for EnvWorkload.
func Spec(w Workload) string {
	return fmt.Sprintf("%d %d %d %d %d %d %d %d %d", w.Getppid, w.BadClose, w.Sleeps, int64(w.SleepFor), w.Threads, b2i(w.Fork), b2i(w.GateOnStdin), int64(w.Spread), b2i(w.Hold))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
