package bench

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The soak's paced and short-lived workers: their rates are modest on
// purpose, to look like the many quiet processes an agent follows beside
// the busy ones.
const (
	// Its naps are ten times serve's default --threshold (10ms), so
	// that they are events, but not a thousand a second of them.
	pacedTick  = 100 * time.Millisecond
	pacedCalls = 100 // per tick: 1,000 getppid calls a second
	idleNap    = time.Second
	churnEvery = 100 * time.Millisecond // a new short-lived process
	blipNap    = time.Millisecond
)

// pacedLoop makes pacedCalls getppid calls every pacedTick; one operation
// is one call.
func pacedLoop(c *counter) error {
	t := time.NewTicker(pacedTick)
	defer t.Stop()
	for range t.C {
		for range pacedCalls {
			unix.Getppid()
		}
		c.add(pacedCalls)
	}
	return nil
}

// idleLoop sleeps and counts its wake-ups.
func idleLoop(c *counter) error {
	ts := unix.NsecToTimespec(int64(idleNap))
	for {
		c.add(1)
		if err := unix.Nanosleep(&ts, nil); err != nil && err != unix.EINTR {
			return fmt.Errorf("idle: nanosleep: %w", err)
		}
	}
}

// churn starts a blip every churnEvery and waits for it; the blips share
// its counter, so one operation is one short-lived process that ran to
// its end. marker is passed on for the driver's selector to match.
func churn(c *counter, marker []string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("churn: find own executable: %w", err)
	}
	t := time.NewTicker(churnEvery)
	defer t.Stop()
	for range t.C {
		cmd := exec.Command(self, append([]string{WorkerArg, "blip"}, marker...)...)
		cmd.ExtraFiles = []*os.File{c.file()}
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("churn: blip: %w: %s", err, out)
		}
	}
	return nil
}

// blip is a short-lived process: it reads a file, makes a few calls,
// naps, counts itself and exits.
func blip(c *counter) error {
	if _, err := os.ReadFile("/proc/self/stat"); err != nil {
		return fmt.Errorf("blip: %w", err)
	}
	for range 100 {
		unix.Getppid()
	}
	time.Sleep(blipNap)
	c.add(1)
	os.Exit(0)
	return nil
}
