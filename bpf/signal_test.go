//go:build linux

package bpf

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/procfs"
	"github.com/snagtrace/snag/internal/testutil"
)

// signalEvents traces a process started by cmd, lets act end it, and
// returns its EvSignal and process EvExit records.
func signalEvents(t *testing.T, cmd *exec.Cmd, act func(pid int)) (sigs []model.Event, exit *model.Event) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	tr, err := Load(Options{PIDs: []int{pid}, Threshold: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	act(pid)
	cmd.Wait()
	var rec Record
	for {
		err := tr.Read(&rec, time.Now().Add(300*time.Millisecond))
		if err == ErrTimeout {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ev := rec.Event
		switch {
		case ev.Kind == model.EvSignal:
			sigs = append(sigs, ev)
		case ev.Kind == model.EvExit && !ev.Thread:
			exit = &ev
		}
	}
	return sigs, exit
}

func TestSignalFromAProcess(t *testing.T) {
	testutil.RequireBPF(t)
	sigs, exit := signalEvents(t, exec.Command("sleep", "30"), func(pid int) {
		syscall.Kill(pid, syscall.SIGKILL)
	})
	comm, _ := procfs.Default.Comm(os.Getpid())
	if len(sigs) != 1 {
		t.Fatalf("signal events %+v, want one", sigs)
	}
	if s := sigs[0]; s.Signal != 9 || s.Sender != os.Getpid() || s.SenderComm != comm || s.Thread {
		t.Errorf("signal %+v: want SIGKILL to the process from pid %d (%s)", s, os.Getpid(), comm)
	}
	if exit == nil || exit.Signal != 9 || exit.ExitCode != 128+9 {
		t.Errorf("exit %+v: want killed by signal 9, status 137", exit)
	}
}

func TestSignalFromAFault(t *testing.T) {
	testutil.RequireBPF(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	// The process waits for a line, then reads address 0.
	cmd := exec.Command("python3", "-c", "import ctypes, sys; sys.stdin.readline(); ctypes.string_at(0)")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	sigs, exit := signalEvents(t, cmd, func(int) {
		time.Sleep(300 * time.Millisecond) // python3 is up and tracing has begun
		in.Write([]byte("go\n"))
	})
	if len(sigs) != 1 || sigs[0].Signal != 11 || sigs[0].Sender != 0 || sigs[0].SenderComm != SenderKernel {
		t.Errorf("signal events %+v: want one SIGSEGV from the kernel", sigs)
	}
	if exit == nil || exit.Signal != 11 {
		t.Errorf("exit %+v: want killed by signal 11", exit)
	}
}

func TestExitWithoutSignal(t *testing.T) {
	testutil.RequireBPF(t)
	cmd := exec.Command("sh", "-c", "read x; exit 3")
	in, _ := cmd.StdinPipe()
	sigs, exit := signalEvents(t, cmd, func(int) { in.Write([]byte("go\n")) })
	if len(sigs) != 0 {
		t.Errorf("signal events %+v for a process that exited", sigs)
	}
	if exit == nil || exit.Signal != 0 || exit.ExitCode != 3 {
		t.Errorf("exit %+v: want status 3, no signal", exit)
	}
}
