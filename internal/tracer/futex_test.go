//go:build linux

package tracer

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/syscalls"
	"github.com/snagtrace/snag/internal/testutil"
)

// Threads handing a mutex around wait in FUTEX_WAIT; a pool waiting on a
// condition variable waits in FUTEX_WAIT_BITSET (glibc 2.36's
// pthread_cond_wait, checked with strace -f -e futex). The aggregates keep
// the two apart.
func TestFutexOpsOfMutexAndCondition(t *testing.T) {
	testutil.RequireBPF(t)
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed")
	}
	bin := filepath.Join(t.TempDir(), "futexmix")
	if out, err := exec.Command("gcc", "-O2", "-pthread", "-o", bin, "testdata/futexmix.c").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "1000")
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
	roles := map[int]string{}
	for {
		line, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("futexmix did not start: %v", err)
		}
		if line == "ready\n" {
			break
		}
		var role string
		var tid int
		if _, err := fmt.Sscanf(line, "%s %d", &role, &tid); err != nil {
			t.Fatalf("futexmix said %q: %v", line, err)
		}
		roles[tid] = role
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := Config{PIDs: []int{cmd.Process.Pid}, Threshold: 10 * time.Millisecond}
	release := started(func() {
		go func() {
			defer cancel()
			if _, err := fmt.Fprintln(stdin, "go"); err != nil {
				t.Error(err)
				return
			}
			if line, err := out.ReadString('\n'); err != nil || !strings.HasPrefix(line, "done") {
				t.Errorf("futexmix said %q, %v; want done", line, err)
			}
			cmd.Wait()
			time.Sleep(300 * time.Millisecond)
		}()
	})
	tr, err := Run(ctx, cfg, release)
	if err != nil {
		t.Fatal(err)
	}

	byTID := map[int]map[string]time.Duration{}
	for _, s := range tr.Syscalls {
		if s.Name != "futex" || roles[s.TID] == "" {
			continue
		}
		if s.Op == "" {
			t.Errorf("futex stat of tid %d without an op", s.TID)
		}
		if byTID[s.TID] == nil {
			byTID[s.TID] = map[string]time.Duration{}
		}
		byTID[s.TID][s.Op] += s.Total
	}
	for tid, role := range roles {
		ops := byTID[tid]
		// Of the time spent waiting (wakes, which a loaded machine can
		// stretch, are not the question): mutex waits in FUTEX_WAIT,
		// condition variable waits in FUTEX_WAIT_BITSET.
		total := ops[syscalls.FutexOpWait] + ops[syscalls.FutexOpWaitBitset]
		want := syscalls.FutexOpWait
		if role == "cond" {
			want = syscalls.FutexOpWaitBitset
		}
		t.Logf("%s thread %d: futex time by op %v", role, tid, ops)
		if total == 0 || ops[want] < total*3/4 {
			t.Errorf("%s thread %d: %v of %v futex wait time in %s, want most of it", role, tid, ops[want], total, want)
		}
	}
	if len(roles) != 6 {
		t.Errorf("futexmix named %d threads, want 6", len(roles))
	}
}
