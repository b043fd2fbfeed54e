package testutil

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"unsafe"
)

func unsafePointer(ts *syscall.Timespec) unsafe.Pointer { return unsafe.Pointer(ts) }

// forkGetppid starts a child workload doing n getppid calls and returns its
// pid once it has finished.
func forkGetppid(n int) int {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), EnvWorkload+"="+strconv.Itoa(n)+" 0 0 0 0 0 0 0 0")
	cmd.Stdin = nil
	if err := cmd.Start(); err != nil {
		return -1
	}
	cmd.Wait()
	return cmd.Process.Pid
}
