package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// workload is a process the driver keeps running for all of its
// measurements, whose progress it can read at any moment.
type workload interface {
	name() string
	unit() string // what count counts, per second: "calls/s"
	// start launches the workload; errSkip means it cannot run here.
	start(ctx context.Context) error
	pid() int // the process a tracer attaches to
	// measured is the process whose CPU per operation is measured: the
	// one that does the operations.
	measured() int
	count() (uint64, error)
	stop() error
}

// errSkip marks a workload or condition that cannot run on this machine
// (a missing program); the report says why instead of failing the run.
var errSkip = errors.New("skipped")

func skipf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errSkip}, args...)...)
}

// workerLoad is a workload run by RunWorker in a re-executed driver.
type workerLoad struct {
	kind    string
	unitStr string
	args    []string // after the kind
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the worker is reaped
	ctr     *counter
	stderr  bytes.Buffer
}

func (w *workerLoad) name() string { return w.kind }
func (w *workerLoad) unit() string { return w.unitStr }

func (w *workerLoad) start(ctx context.Context) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("%s: find own executable: %w", w.kind, err)
	}
	ctr, err := newCounter()
	if err != nil {
		return fmt.Errorf("%s: %w", w.kind, err)
	}
	w.ctr = ctr
	w.cmd = exec.Command(self, append([]string{WorkerArg, w.kind}, w.args...)...)
	w.cmd.ExtraFiles = []*os.File{ctr.file()}
	w.cmd.Stderr = &w.stderr
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := w.cmd.Start(); err != nil {
		ctr.close()
		return fmt.Errorf("%s: start worker: %w", w.kind, err)
	}
	w.exited = make(chan struct{})
	go func() {
		w.cmd.Wait()
		close(w.exited)
	}()
	// Running means counting: wait for the first batch.
	deadline := time.Now().Add(10 * time.Second)
	for ctr.load() == 0 {
		if _, err := w.count(); err != nil {
			w.stop()
			return err
		}
		if time.Now().After(deadline) {
			w.stop()
			return fmt.Errorf("%s: worker made no progress in 10s: %s", w.kind, strings.TrimSpace(w.stderr.String()))
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			w.stop()
			return err
		}
	}
	return nil
}

func (w *workerLoad) pid() int      { return w.cmd.Process.Pid }
func (w *workerLoad) measured() int { return w.pid() }

func (w *workerLoad) count() (uint64, error) {
	select {
	case <-w.exited:
		return 0, fmt.Errorf("%s: worker exited: %s", w.kind, strings.TrimSpace(w.stderr.String()))
	default:
		return w.ctr.load(), nil
	}
}

func (w *workerLoad) stop() error {
	if w.exited != nil {
		w.cmd.Process.Kill()
		<-w.exited
		w.exited = nil
	}
	if w.ctr != nil {
		err := w.ctr.close()
		w.ctr = nil
		return err
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
