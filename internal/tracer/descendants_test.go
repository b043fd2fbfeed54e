//go:build linux

package tracer

import (
	"bufio"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/testutil"
)

// TestFollowForksTracesExistingDescendants attaches to the top of a
// three-generation tree: the grandchild that was already running (a loop
// of its own sleeps) is traced, as a worker of a prefork master would be.
func TestFollowForksTracesExistingDescendants(t *testing.T) {
	testutil.RequireBPF(t)
	cmd := exec.Command("sh", "-c", `sh -c "$MIDDLE" & wait`)
	cmd.Env = append(cmd.Environ(), `MIDDLE=sh -c "$INNER" & wait`, `INNER=echo $$; while :; do sleep 0.05; done`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		t.Fatal("no pid from the inner shell")
	}
	inner, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		exec.Command("kill", strconv.Itoa(inner)).Run()
		cmd.Process.Kill()
		cmd.Wait()
	}()
	tr, err := Run(context.Background(), Config{PIDs: []int{cmd.Process.Pid}, FollowForks: true, Duration: time.Second, Threshold: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var listed bool
	for _, p := range tr.Processes {
		listed = listed || p.PID == inner
	}
	if !listed {
		t.Errorf("the running grandchild %d is not among the processes %+v", inner, tr.Processes)
	}
	var waits uint64
	for _, st := range tr.Syscalls {
		if st.PID == inner && st.Name == "wait4" {
			waits += st.Count
		}
	}
	if waits < 5 {
		t.Errorf("the grandchild %d waited for %d sleeps in a second, want about 20", inner, waits)
	}
}
