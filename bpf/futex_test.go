//go:build linux

package bpf

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/snagtrace/snag/internal/syscalls"
	"github.com/snagtrace/snag/internal/testutil"
)

// envFutexOps makes the test binary run futexOpsChild instead of the tests.
const envFutexOps = "SNAG_TEST_FUTEX_OPS"

// futexTestOps are every futex command, some with FUTEX_PRIVATE_FLAG (128)
// or FUTEX_CLOCK_REALTIME (256), and two unknown ones.
var futexTestOps = []uint64{
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 127,
	128 | 0, 128 | 1, 128 | 6, 128 | 9 | 256, 128 | 11, 128 | 13 | 256, 128 | 10,
}

const futexCallsPerOp = 50

// futexOpsChild calls futex with each of futexTestOps on a NULL address,
// where every one returns at once, from one locked thread.
func futexOpsChild() {
	runtime.LockOSThread()
	in := bufio.NewReader(os.Stdin)
	fmt.Printf("ready %d\n", unix.Gettid())
	if _, err := in.ReadString('\n'); err != nil {
		os.Exit(3)
	}
	for _, op := range futexTestOps {
		for range futexCallsPerOp {
			unix.RawSyscall6(unix.SYS_FUTEX, 0, uintptr(op), 0, 0, 0, 0)
		}
	}
	fmt.Println("done")
	in.ReadString('\n')
	os.Exit(0)
}

func TestFutexClassesMatchSyscalls(t *testing.T) {
	for c, want := range map[snagFutexClass]string{
		snagFutexClassFUTEX_CLASS_WAKE:        syscalls.FutexOpWake,
		snagFutexClassFUTEX_CLASS_WAIT:        syscalls.FutexOpWait,
		snagFutexClassFUTEX_CLASS_WAIT_BITSET: syscalls.FutexOpWaitBitset,
		snagFutexClassFUTEX_CLASS_LOCK_PI:     syscalls.FutexOpLockPI,
	} {
		if got := syscalls.FutexOps[c]; got != want {
			t.Errorf("syscalls.FutexOps[%d] = %q, want %q as in snag.h", c, got, want)
		}
	}
	if n := len(syscalls.FutexOps); n != int(snagFutexClassFUTEX_CLASSES) {
		t.Errorf("%d futex ops in syscalls, %d classes in snag.h", n, snagFutexClassFUTEX_CLASSES)
	}
}

// The kernel side classifies each futex call's op as syscalls.FutexOpOf
// does, and the loader turns the classes back into futex with an Op.
func TestFutexAggregatesByOp(t *testing.T) {
	testutil.RequireBPF(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envFutexOps+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	out := bufio.NewReader(stdout)
	var tid int
	if line, err := out.ReadString('\n'); err != nil {
		t.Fatalf("child did not start: %v", err)
	} else if _, err := fmt.Sscanf(line, "ready %d", &tid); err != nil {
		t.Fatalf("child said %q: %v", line, err)
	}

	tr, err := Load(Options{PIDs: []int{cmd.Process.Pid}, Threshold: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if _, err := fmt.Fprintln(stdin); err != nil {
		t.Fatal(err)
	}
	if line, err := out.ReadString('\n'); err != nil || line != "done\n" {
		t.Fatalf("child said %q, %v; want done", line, err)
	}
	stats, err := tr.Aggregates()
	if err != nil {
		t.Fatal(err)
	}

	want := map[string]uint64{}
	for _, op := range futexTestOps {
		want[syscalls.FutexOpOf(op)] += futexCallsPerOp
	}
	got := map[string]uint64{}
	futexNr, _ := syscalls.Number(syscalls.Native(), "futex")
	for _, s := range stats {
		if s.TID != tid {
			continue
		}
		if (s.Name == "futex") != (s.Op != "") {
			t.Errorf("%s (nr %d) has op %q", s.Name, s.Nr, s.Op)
		}
		if s.Name == "futex" {
			if s.Nr != futexNr {
				t.Errorf("futex %s: nr %d, want %d", s.Op, s.Nr, futexNr)
			}
			got[s.Op] += s.Count
		}
	}
	t.Logf("futex calls by op: %v", got)
	for _, op := range syscalls.FutexOps {
		// The Go runtime may park or wake this thread around the calls,
		// with FUTEX_WAIT_PRIVATE and FUTEX_WAKE_PRIVATE: a few extra.
		slack := uint64(0)
		if op == syscalls.FutexOpWait || op == syscalls.FutexOpWake {
			slack = 5
		}
		if got[op] < want[op] || got[op] > want[op]+slack {
			t.Errorf("futex %s: %d calls, want %d", op, got[op], want[op])
		}
	}
}
