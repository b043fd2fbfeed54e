package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf/link"
)

// syscallTracers counts the BPF links on the host's sys_enter raw
// tracepoint. Programs there slow every process down, so while someone
// else's are attached (another snag, a bpftrace) an "untraced" window is
// not untraced, and no measurement is trusted.
func syscallTracers() (int, error) {
	it := new(link.Iterator)
	defer it.Close()
	n := 0
	for it.Next() {
		l := it.Take()
		info, err := l.Info()
		l.Close()
		if err != nil {
			continue // detached since it was listed
		}
		if rt := info.RawTracepoint(); rt != nil && rt.Name == "sys_enter" {
			n++
		}
	}
	if err := it.Err(); err != nil {
		return 0, fmt.Errorf("list BPF links: %w", err)
	}
	return n, nil
}

// errForeignTracer marks a window spoiled by another tracer's programs.
var errForeignTracer = errors.New("another program is attached to the syscall tracepoints")

// checkTracers fails with errForeignTracer when more programs sit on
// sys_enter than the condition in effect attached itself.
func checkTracers(own int) error {
	n, err := syscallTracers()
	if err != nil {
		return err
	}
	if n > own {
		return fmt.Errorf("%w (%d besides this run's)", errForeignTracer, n-own)
	}
	return nil
}

// quietTimeout bounds the wait for other tracers to go away; after it the
// driver measures anyway and the windows fail with errForeignTracer.
const quietTimeout = 2 * time.Minute

// waitQuiet waits until nothing is attached to the syscall tracepoints,
// saying once on log that it waits.
func waitQuiet(ctx context.Context, log func(string)) error {
	deadline := time.Now().Add(quietTimeout)
	said := false
	for {
		err := checkTracers(0)
		if !errors.Is(err, errForeignTracer) || time.Now().After(deadline) {
			return nil
		}
		if !said {
			log(fmt.Sprintf("waiting up to %s: %v", quietTimeout, err))
			said = true
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}
