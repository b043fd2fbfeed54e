//go:build linux

package tracer

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/procfs"
	"github.com/snagtrace/snag/internal/testutil"
)

// A target that put a FIFO where the python3.11 it runs was mapped from
// (as nobody, in its own user and mount namespace) once made root snag
// block in open before anything was loaded, deaf to -d and Ctrl-C. The
// trace must end with its window and say what it made of the binary.
func TestHostileTargetTraceEnds(t *testing.T) {
	testutil.RequireBPF(t)
	pid, exe := testutil.HostileTarget(t, `mkfifo "$1"`)
	const window = time.Second
	start := time.Now()
	tr, err := Run(context.Background(), Config{PIDs: []int{pid}, Duration: window, Threshold: 10 * time.Millisecond, StackBytes: 1024, RingBytes: 1 << 20, MaxSlots: 1024}, KeepEvents(0))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if took > window+3*time.Second {
		t.Errorf("a %s trace took %s", window, took)
	}
	// The binary was read through map_files, not the FIFO: it is sleep,
	// so it has no _PyRuntime, and the report says so.
	if !strings.Contains(strings.Join(tr.Notes, "\n"), "_PyRuntime") {
		t.Errorf("no note about %s's Python frames: %q", exe, tr.Notes)
	}
}

// A zombie is refused at once instead of traced for the whole window.
func TestZombieTargetRefused(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if z, _ := procfs.Default.Zombie(cmd.Process.Pid); z {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child never became a zombie")
		}
	}
	start := time.Now()
	_, err := Run(context.Background(), Config{PIDs: []int{cmd.Process.Pid}, Duration: 10 * time.Second})
	if !errors.Is(err, ErrNoProcess) || !strings.Contains(err.Error(), "reap") {
		t.Errorf("Run = %v, want a zombie refused as no process", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("took %s", time.Since(start))
	}
}
