//go:build linux

package cli

import (
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/testutil"
)

// SIGINT and SIGTERM end a trace without -d within a second, and the
// report of what was gathered still prints.
func TestSignalEndsTraceWithReport(t *testing.T) {
	testutil.RequireBPF(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			target := exec.Command("sleep", "30")
			if err := target.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { target.Process.Kill(); target.Wait() }()
			var stdout, stderr bytes.Buffer
			done := make(chan int)
			go func() {
				done <- Main([]string{"attach", "-p", strconv.Itoa(target.Process.Pid)}, Env{Stdout: &stdout, Stderr: &stderr})
			}()
			time.Sleep(1500 * time.Millisecond) // attached by now
			sent := time.Now()
			syscall.Kill(syscall.Getpid(), sig)
			select {
			case code := <-done:
				if took := time.Since(sent); took > time.Second {
					t.Errorf("ended %s after the signal", took)
				}
				if code != ExitOK || !strings.Contains(stdout.String(), "snag report") {
					t.Errorf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
				}
			case <-time.After(5 * time.Second):
				t.Fatal("still tracing 5s after the signal")
			}
		})
	}
}
