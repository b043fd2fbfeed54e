package bench

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"

	"github.com/snagtrace/snag/internal/bench/noop"
)

// condition is one way of running a workload: untraced, under a tracer, or
// under the no-op BPF floor.
type condition interface {
	name() string
	// bpfLinks is how many programs the condition attaches to sys_enter.
	bpfLinks() int
	// attach starts tracing pid and returns once the tracing is in effect.
	attach(ctx context.Context, pid int) (attachment, error)
}

// attachment is a condition in effect on one process.
type attachment interface {
	// tracerPID is the tracing process whose cost is reported, or 0.
	tracerPID() int
	// detach ends the condition and reports what the tracer used.
	detach() (usage, error)
}

// progSource is an attachment whose BPF programs can be inspected.
type progSource interface {
	programs() (map[string]*ebpf.Program, func(), error)
}

// usage is what a tracing process cost over its whole life.
type usage struct {
	maxRSS int64 // bytes; 0 when there is no tracing process
	cpu    time.Duration
}

type untraced struct{}

func (untraced) name() string  { return "untraced" }
func (untraced) bpfLinks() int { return 0 }
func (untraced) attach(context.Context, int) (attachment, error) {
	return nothing{}, nil
}

type nothing struct{}

func (nothing) tracerPID() int         { return 0 }
func (nothing) detach() (usage, error) { return usage{}, nil }

// floor attaches the no-op programs from this process: it is root anyway,
// and there is no tracer CPU or memory to measure besides the programs.
type floor struct{}

func (floor) name() string  { return "floor" }
func (floor) bpfLinks() int { return 1 }
func (floor) attach(context.Context, int) (attachment, error) {
	f, err := noop.Attach()
	if err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	return floorAttachment{f}, nil
}

type floorAttachment struct{ f *noop.Floor }

func (floorAttachment) tracerPID() int { return 0 }
func (a floorAttachment) detach() (usage, error) {
	if err := a.f.Close(); err != nil {
		return usage{}, fmt.Errorf("floor: detach: %w", err)
	}
	return usage{}, nil
}

// programs returns the floor's programs by tracepoint; the caller does not
// own them.
func (a floorAttachment) programs() (map[string]*ebpf.Program, func(), error) {
	return a.f.Programs(), func() {}, nil
}

// attachTimeout bounds how long a tracer may take to start tracing.
const attachTimeout = 30 * time.Second

// stopTimeout bounds how long a tracer may take to finish after it is told
// to stop; snag analyzes and renders its report in that time.
const stopTimeout = 60 * time.Second

// procTracer is a tracer run as a separate process: snag or strace.
type procTracer struct {
	label string
	path  string
	links int // programs it attaches to sys_enter
	args  func(pid int) []string
	// ready reports whether the tracer has taken hold of pid.
	ready func(tracer, pid int) (bool, error)
	// startTimeout bounds how long it may take to be ready; 0:
	// attachTimeout.
	startTimeout time.Duration
}

func (t procTracer) name() string  { return t.label }
func (t procTracer) bpfLinks() int { return t.links }

func (t procTracer) attach(ctx context.Context, pid int) (attachment, error) {
	a := &procAttachment{label: t.label, cmd: exec.Command(t.path, t.args(pid)...)}
	a.cmd.Stdout = io.Discard // snag's report; what it costs is the point
	a.cmd.Stderr = &a.stderr
	// Told to stop with SIGTERM, both tracers detach cleanly.
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start: %w", t.label, err)
	}
	a.exited = make(chan struct{})
	go func() {
		a.cmd.Wait()
		close(a.exited)
	}()
	timeout := cmp.Or(t.startTimeout, attachTimeout)
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-a.exited:
			return nil, fmt.Errorf("%s exited before tracing (%s): %s", t.label, a.cmd.ProcessState, a.lastLine())
		default:
		}
		ok, err := t.ready(a.cmd.Process.Pid, pid)
		if err != nil {
			a.kill()
			return nil, fmt.Errorf("%s: %w", t.label, err)
		}
		if ok {
			return a, nil
		}
		if time.Now().After(deadline) {
			a.kill()
			return nil, fmt.Errorf("%s did not start tracing within %s: %s", t.label, timeout, a.lastLine())
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			a.kill()
			return nil, err
		}
	}
}

type procAttachment struct {
	label  string
	cmd    *exec.Cmd
	exited chan struct{}
	stderr bytes.Buffer
}

func (a *procAttachment) tracerPID() int { return a.cmd.Process.Pid }

// programs opens the programs the tracer has attached to the raw
// tracepoints, by tracepoint name; release closes them.
func (a *procAttachment) programs() (progs map[string]*ebpf.Program, release func(), err error) {
	links, err := rawTracepointLinks(a.tracerPID())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", a.label, err)
	}
	progs = make(map[string]*ebpf.Program)
	release = func() {
		for _, p := range progs {
			p.Close()
		}
	}
	for tp, id := range links {
		p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
		if err != nil {
			release()
			return nil, nil, fmt.Errorf("%s: open program %d on %s: %w", a.label, id, tp, err)
		}
		progs[tp] = p
	}
	return progs, release, nil
}

func (a *procAttachment) lastLine() string {
	lines := strings.Split(strings.TrimSpace(a.stderr.String()), "\n")
	return lines[len(lines)-1]
}

func (a *procAttachment) kill() {
	a.cmd.Process.Kill()
	<-a.exited
}

func (a *procAttachment) detach() (usage, error) {
	a.cmd.Process.Signal(syscall.SIGTERM)
	return a.wait(stopTimeout)
}

// wait waits up to d for the tracer to end on its own and reports what
// it used.
func (a *procAttachment) wait(d time.Duration) (usage, error) {
	select {
	case <-a.exited:
	case <-time.After(d):
		a.kill()
		return usage{}, fmt.Errorf("%s did not stop within %s", a.label, d)
	}
	var u usage
	if ru, ok := a.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.maxRSS = ru.Maxrss * 1024 // KiB on Linux
		u.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if !stoppedCleanly(a.cmd.ProcessState) {
		return u, fmt.Errorf("%s: %s: %s", a.label, a.cmd.ProcessState, a.lastLine())
	}
	return u, nil
}

// snagTracer runs `snag attach` from path under the condition name label.
// Its -d is only a safety net: the driver stops it with SIGTERM at the end
// of the window.
func snagTracer(label, path string, window time.Duration) procTracer {
	return procTracer{
		label: label,
		path:  path,
		links: 1,
		args: func(pid int) []string {
			return []string{"attach", "-p", strconv.Itoa(pid), "-d", (window + attachTimeout + time.Minute).String()}
		},
		ready: func(tracer, _ int) (bool, error) {
			links, err := rawTracepointLinks(tracer)
			if err != nil {
				return false, nil // not started far enough to list its fds
			}
			_, enter := links["sys_enter"]
			_, exit := links["sys_exit"]
			return enter && exit, nil
		},
	}
}

// straceTracer runs strace the way an engineer would on a live process,
// minus the output, which would only add the cost of a disk.
func straceTracer(path string) procTracer {
	return procTracer{
		label: "strace",
		path:  path,
		args: func(pid int) []string {
			return []string{"-f", "-qq", "-o", "/dev/null", "-p", strconv.Itoa(pid)}
		},
		ready: func(tracer, pid int) (bool, error) {
			return tracedBy(pid, tracer)
		},
	}
}

// stoppedCleanly reports whether a tracer told to stop with SIGTERM ended
// well: snag exits 0, or 1 when its report has findings; strace detaches
// and then dies of the signal it was sent.
func stoppedCleanly(ps *os.ProcessState) bool {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ws.Signal() == syscall.SIGTERM
	}
	code := ps.ExitCode()
	return code == 0 || code == 1
}
