package tracer

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// snag run must trace a command from its first syscall after exec, and
// none of snag's own. Go cannot stop between fork and exec, so snag starts
// itself as a tiny shim that blocks on a pipe; once the shim's pid is armed
// in the BPF filter, snag releases it and the shim execs the command. The
// kernel side switches from armed to active at that exec.
const envShim = "SNAG_EXEC_SHIM"

// ErrBadCommand marks a command that cannot be started; the CLI exits 2.
var ErrBadCommand = errors.New("cannot run command")

// MaybeExecShim turns this process into the command when it was started as
// the shim. main calls it before anything else.
func MaybeExecShim() {
	if os.Getenv(envShim) != "1" {
		return
	}
	gate := os.NewFile(3, "gate")
	var b [1]byte
	if n, _ := gate.Read(b[:]); n != 1 {
		os.Exit(127) // snag went away before releasing us
	}
	gate.Close()
	if len(os.Args) < 3 {
		os.Exit(127)
	}
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if len(kv) < len(envShim)+1 || kv[:len(envShim)+1] != envShim+"=" {
			env = append(env, kv)
		}
	}
	err := syscall.Exec(os.Args[1], os.Args[2:], env)
	fmt.Fprintf(os.Stderr, "snag: exec %s: %v\n", os.Args[1], err)
	os.Exit(127)
}

type child struct {
	cmd  *exec.Cmd
	pid  int
	gate *os.File
	done chan struct{}
}

func startChild(cfg Config) (*child, error) {
	path, err := exec.LookPath(cfg.Command[0])
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrBadCommand, cfg.Command[0], err)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find snag's own binary to start the command: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start command: %w", err)
	}
	cmd := exec.Command(self, append([]string{path}, cfg.Command...)...)
	cmd.Env = append(os.Environ(), envShim+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = cfg.Stdin, cfg.Stdout, cfg.Stderr
	cmd.ExtraFiles = []*os.File{r}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("%w %q: %w", ErrBadCommand, cfg.Command[0], err)
	}
	r.Close()
	c := &child{cmd: cmd, pid: cmd.Process.Pid, gate: w, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) release() error {
	defer c.gate.Close()
	if _, err := c.gate.Write([]byte{1}); err != nil {
		return fmt.Errorf("release command: %w", err)
	}
	return nil
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *child) kill() {
	c.gate.Close()
	c.cmd.Process.Kill()
	<-c.done
}

// stop ends a command still running when the trace window closes, as
// timeout(1) would: SIGTERM, then SIGKILL after a grace period.
func (c *child) stop() {
	if c.exited() {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// ExitCode is the command's exit status, or -1 while it runs.
func (c *child) exitCode() int {
	if !c.exited() {
		return -1
	}
	return c.cmd.ProcessState.ExitCode()
}
