package procfs

import (
	"bufio"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestDescendantsLive starts sh, which starts a sleep in the background
// and then another sh that does the same: three generations below sh.
func TestDescendantsLive(t *testing.T) {
	requireProc(t)
	cmd := exec.Command("sh", "-c", `sleep 60 & echo $!; sh -c 'sleep 60 & echo $!; echo $$; wait' & wait`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sh: %v", err)
	}
	var want []int
	sc := bufio.NewScanner(out)
	for len(want) < 3 && sc.Scan() {
		pid, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, pid)
	}
	defer func() {
		for _, pid := range want {
			exec.Command("kill", strconv.Itoa(pid)).Run()
		}
		cmd.Process.Kill()
		cmd.Wait()
	}()
	got, err := Default.Descendants(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range want {
		if !slices.Contains(got, pid) {
			t.Errorf("Descendants = %v, want to contain %v", got, want)
		}
	}
	if slices.Contains(got, cmd.Process.Pid) {
		t.Errorf("Descendants = %v contains the root %d", got, cmd.Process.Pid)
	}
}
