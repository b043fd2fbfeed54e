// Package features probes what this kernel and these privileges allow, for
// `snag doctor` and for a clear exit-3 error before tracing starts.
package features

import (
	"errors"
	"os"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
)

// Check is one probed capability.
type Check struct {
	Name string
	Err  error  // nil when available
	Fix  string // what to do when it is not
}

// ErrNotChecked marks a probe that could not run without privileges.
var ErrNotChecked = errors.New("not checked: the probe itself needs privileges")

// MissingError says tracing cannot start here and why. The CLI turns it
// into exit code 3.
type MissingError struct {
	What string
	Fix  string
	Err  error
}

func (e *MissingError) Error() string {
	msg := e.What
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.Fix != "" {
		msg += " (" + e.Fix + ")"
	}
	return msg
}

func (e *MissingError) Unwrap() error { return e.Err }

var (
	once   sync.Once
	checks []Check
)

// All runs every probe once and returns the results in a stable order.
func All() []Check {
	once.Do(func() { checks = probe() })
	return checks
}

func probe() []Check {
	var out []Check
	add := func(name string, err error, fix string) {
		// Without privileges a kernel probe fails for that reason alone:
		// say so rather than blame the kernel version.
		if err != nil && len(out) > 0 && errors.Is(err, os.ErrPermission) {
			err, fix = ErrNotChecked, "run snag doctor as root to check this"
		}
		out = append(out, Check{name, err, fix})
	}

	caps, err := EffectiveCaps()
	if err == nil {
		err = privileges(caps)
	}
	required := requiredNames()
	add("privileges ("+strings.Join(required, " and ")+", or CAP_SYS_ADMIN)", err,
		"run snag as root, e.g. with sudo, or grant it "+strings.ToLower(strings.Join(required, ","))+"+ep")
	_, err = btf.LoadKernelSpec()
	add("kernel BTF (/sys/kernel/btf/vmlinux)", err,
		"use a kernel built with CONFIG_DEBUG_INFO_BTF=y (every major distro since 2020)")
	add("raw tracepoint programs", features.HaveProgramType(ebpf.RawTracepoint),
		"needs Linux 4.17 or newer")
	add("BPF ring buffer", features.HaveMapType(ebpf.RingBuf),
		"needs Linux 5.8 or newer")
	// Each traced thread's call in flight lives in its task storage.
	add("BPF task storage", features.HaveMapType(ebpf.TaskStorage),
		"needs Linux 5.11 or newer")
	for _, h := range []struct {
		name string
		fn   asm.BuiltinFunc
		fix  string
	}{
		{"bpf_probe_read_user", asm.FnProbeReadUser, "needs Linux 5.8 or newer"},
		{"bpf_get_stack", asm.FnGetStack, "needs Linux 5.8 or newer"},
		{"bpf_ringbuf_query", asm.FnRingbufQuery, "needs Linux 5.8 or newer"},
		{"bpf_get_current_task_btf", asm.FnGetCurrentTaskBtf, "needs a kernel that offers it to raw tracepoints (Linux 6.x)"},
		{"bpf_task_storage_get", asm.FnTaskStorageGet, "needs a kernel that offers it to raw tracepoints (Linux 6.x)"},
	} {
		add("helper "+h.name, features.HaveProgramHelper(ebpf.RawTracepoint, h.fn), h.fix)
	}
	return out
}

// Require returns a *MissingError for the first unavailable capability.
func Require() error {
	for _, c := range All() {
		if c.Err != nil {
			return &MissingError{What: "cannot trace: " + c.Name + " unavailable", Fix: c.Fix, Err: simplify(c.Err)}
		}
	}
	return nil
}

// simplify keeps the cause readable: the probes' permission errors say
// "operation not permitted" several layers deep. The privileges check's
// own error, which names the missing capabilities, is kept as it is.
func simplify(err error) error {
	var lacking *lackingCapsError
	if errors.Is(err, os.ErrPermission) && !errors.As(err, &lacking) {
		return os.ErrPermission
	}
	return err
}
