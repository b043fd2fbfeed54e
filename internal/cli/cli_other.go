//go:build !linux

package cli

import (
	"context"
	"errors"
	"fmt"
	"runtime"
)

// ErrNotSupported is what the tracing commands say away from Linux: snag
// traces with eBPF, and only analyze reads what was traced elsewhere.
var ErrNotSupported = errors.New("needs Linux (snag traces with eBPF); here snag analyzes recordings and strace logs: snag analyze FILE")

func platformInit() {}

func unsupported(err error) bool { return errors.Is(err, ErrNotSupported) }

func notSupported(cmd string) func(context.Context, []string, Env) error {
	return func(context.Context, []string, Env) error {
		return fmt.Errorf("%s on %s: %w", cmd, runtime.GOOS, ErrNotSupported)
	}
}

var (
	cmdAttach = notSupported("attach")
	cmdRun    = notSupported("run")
	cmdRecord = notSupported("record")
	cmdDoctor = notSupported("doctor")
	cmdServe  = notSupported("serve")
)
