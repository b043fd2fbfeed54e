package procfs

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"unsafe"
)

func requireProc(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skipf("no /proc: %v", err)
	}
}

// TestSelfLive reads this test process through the live /proc.
func TestSelfLive(t *testing.T) {
	requireProc(t)
	pid := os.Getpid()
	if !Default.Exists(pid) {
		t.Fatal("Exists(self) = false")
	}
	args, err := Default.Cmdline(pid)
	if err != nil || !slices.Equal(args, os.Args) {
		t.Errorf("Cmdline = %q, %v, want %q", args, err, os.Args)
	}
	exe, err := Default.Exe(pid)
	want, _ := os.Executable()
	if err != nil || exe != want {
		t.Errorf("Exe = %q, %v, want %q", exe, err, want)
	}
	comm, err := Default.Comm(pid)
	if base := filepath.Base(want); err != nil || len(base) > 15 && comm != base[:15] || len(base) <= 15 && comm != base {
		t.Errorf("Comm = %q, %v, executable %q", comm, err, base)
	}
	ppid, err := Default.PPID(pid)
	if err != nil || ppid != os.Getppid() {
		t.Errorf("PPID = %d, %v, want %d", ppid, err, os.Getppid())
	}
	tids, err := Default.Tasks(pid)
	if err != nil || !slices.Contains(tids, pid) || !slices.IsSorted(tids) {
		t.Fatalf("Tasks = %v, %v", tids, err)
	}
	for _, tid := range tids {
		if _, err := Default.TaskCPU(pid, tid); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("TaskCPU(%d): %v", tid, err)
		}
		// Go runtime threads sit in futex or epoll_pwait, or run; any of
		// those must parse.
		bs, err := Default.Blocked(pid, tid)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Blocked(%d): %v", tid, err)
		}
		if err == nil && !bs.Running && bs.Nr >= 0 && bs.Syscall == "" {
			t.Errorf("Blocked(%d): syscall %d has no name", tid, bs.Nr)
		}
	}
}

func TestChildrenLive(t *testing.T) {
	requireProc(t)
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	child := cmd.Process.Pid
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	kids, err := Default.Children(os.Getpid())
	if err != nil || !slices.Contains(kids, child) {
		t.Errorf("Children = %v, %v, want to contain %d", kids, err, child)
	}
	if ppid, err := Default.PPID(child); err != nil || ppid != os.Getpid() {
		t.Errorf("PPID(child) = %d, %v", ppid, err)
	}
}

func TestVanishedLive(t *testing.T) {
	requireProc(t)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	pid := cmd.Process.Pid // reaped, so gone unless the pid was reused
	if Default.Exists(pid) {
		t.Skip("pid reused")
	}
	if _, err := Default.Comm(pid); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Comm of a reaped pid: %v", err)
	}
	if _, err := Default.Sockets(pid); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Sockets of a reaped pid: %v", err)
	}
}

func TestPollFDReadsProcessMemory(t *testing.T) {
	// A pollfd array in this process, fd 7 first.
	set := []int32{7, 1, 9, 1}
	fd, err := Default.PollFD(os.Getpid(), uint64(uintptr(unsafe.Pointer(&set[0]))))
	if err != nil {
		t.Skipf("cannot read this process's memory: %v", err)
	}
	if fd != 7 {
		t.Errorf("PollFD = %d, want 7", fd)
	}
	runtime.KeepAlive(set)
}
