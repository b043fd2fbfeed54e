package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"
)

// memTrace is how long `snag attach -d` traces each memory workload.
const memTrace = 3 * time.Second

// memResult is snag's peak RSS over one trace of a memory workload.
type memResult struct {
	name, what string
	ops        uint64 // operations the workload did while traced
	maxRSS     int64
	cpu        time.Duration // snag's, over its whole run
	err        error
}

// benchMemory traces each memory workload once with `snag attach -d 3s`,
// letting snag end on its own, and takes the peak RSS the kernel kept
// for it.
func benchMemory(ctx context.Context, snagPath string, log io.Writer) ([]memResult, error) {
	var out []memResult
	for _, m := range []struct {
		name, what string
		run        func(context.Context, string) (memResult, error)
	}{
		{"2000 threads", fmt.Sprintf("%d threads, each making two calls and a %s nap in turn", memThreads, memNap), memThreadsRun},
		{"20000 conns", fmt.Sprintf("%d short TCP connections to a local listener in %s", memConns, memConnsOver), memConnsRun},
	} {
		fmt.Fprintf(log, "memory: %s: snag attach -d %s\n", m.name, memTrace)
		r, err := m.run(ctx, snagPath)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.name, r.what, r.err = m.name, m.what, err
		if err != nil {
			fmt.Fprintf(log, "memory: %s: %v\n", m.name, err)
		} else {
			fmt.Fprintf(log, "memory: %s: peak RSS %s, CPU %s, %d operations traced\n", m.name, mib(float64(r.maxRSS)), r.cpu.Round(time.Millisecond), r.ops)
		}
		out = append(out, r)
	}
	return out, nil
}

// memSnag runs `snag attach -p pid -d memTrace`, calls started once its
// programs are attached, and waits for it to end.
func memSnag(ctx context.Context, snagPath string, pid int, started func() error) (usage, error) {
	t := snagTracer(condSnag, snagPath, 0)
	t.args = func(pid int) []string {
		return []string{"attach", "-p", strconv.Itoa(pid), "-d", memTrace.String()}
	}
	a, err := t.attach(ctx, pid)
	if err != nil {
		return usage{}, err
	}
	pa := a.(*procAttachment)
	if err := started(); err != nil {
		pa.kill()
		return usage{}, err
	}
	return pa.wait(memTrace + stopTimeout)
}

func memThreadsRun(ctx context.Context, snagPath string) (memResult, error) {
	w := &workerLoad{kind: "threads", unitStr: "rounds/s"}
	if err := w.start(ctx); err != nil {
		return memResult{}, err
	}
	defer w.stop()
	// Every thread has made its calls at least once.
	for n := uint64(0); n < memThreads; {
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return memResult{}, err
		}
		var err error
		if n, err = w.count(); err != nil {
			return memResult{}, err
		}
	}
	var n0 uint64
	u, err := memSnag(ctx, snagPath, w.pid(), func() (err error) {
		n0, err = w.count()
		return err
	})
	if err != nil {
		return memResult{}, err
	}
	n1, err := w.count()
	return memResult{ops: n1 - n0, maxRSS: u.maxRSS, cpu: u.cpu}, err
}

func memConnsRun(ctx context.Context, snagPath string) (memResult, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return memResult{}, fmt.Errorf("conns: listen: %w", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err == nil {
				c.Close()
			}
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	w := &workerLoad{kind: "conns", unitStr: "conns/s", args: []string{strconv.Itoa(port)}}
	if err := w.start(ctx); err != nil {
		return memResult{}, err
	}
	defer w.stop()
	var n0 uint64
	u, err := memSnag(ctx, snagPath, w.pid(), func() (err error) {
		if n0, err = w.count(); err != nil {
			return err
		}
		return w.cmd.Process.Signal(syscall.SIGUSR1)
	})
	if err != nil {
		return memResult{}, err
	}
	n1, err := w.count()
	return memResult{ops: n1 - n0, maxRSS: u.maxRSS, cpu: u.cpu}, err
}
