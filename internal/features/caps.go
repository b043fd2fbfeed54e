package features

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Capability is a Linux capability snag uses when it runs without root.
type Capability struct {
	Name     string // as capabilities(7) spells it: CAP_BPF
	Bit      uint   // its number (linux/capability.h)
	Required bool   // no tracing without it; without the others a trace lacks what Why says
	Why      string
}

// Capabilities is every capability snag uses, and the ones the systemd
// unit and the Kubernetes DaemonSet under examples/ grant: their tests
// check that they name exactly these. Measured on Linux 6.18 by running
// snag as nobody with each one dropped in turn (README, "Running on a
// host").
//
// CAP_SYS_ADMIN is left out although it would do for the first two (and
// is what kernels before 5.8 ask instead): it grants nearly everything
// root can do. Without it, snag cannot enter another network namespace,
// so the accept queues of a target in a container are not sampled.
var Capabilities = []Capability{
	{"CAP_BPF", unix.CAP_BPF, true, "load the BPF programs and create their maps"},
	{"CAP_PERFMON", unix.CAP_PERFMON, true, "attach tracing programs to the syscall and scheduler raw tracepoints"},
	{"CAP_SYS_PTRACE", unix.CAP_SYS_PTRACE, false, "read /proc/PID/exe, maps, mem and root of other users' processes: their executables, stacks and Python frames"},
	{"CAP_DAC_READ_SEARCH", unix.CAP_DAC_READ_SEARCH, false, "list /proc/PID/fd of other users' processes (the connections open before the attach) and read their objects that only their owner may read"},
	{"CAP_CHECKPOINT_RESTORE", unix.CAP_CHECKPOINT_RESTORE, false, "read /proc/PID/map_files (Linux 5.9+): stacks through executables and libraries deleted or replaced since they were mapped, as an upgrade in place leaves them"},
}

// CapSet is a set of capabilities, as /proc/PID/status shows them.
type CapSet uint64

// Has tells whether c is in the set.
func (s CapSet) Has(c Capability) bool { return s&(1<<c.Bit) != 0 }

// EffectiveCaps reads snag's effective capabilities. Root is not assumed
// to have them all: a container's root has those its runtime grants.
func EffectiveCaps() (CapSet, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read capabilities: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("read capabilities: CapEff %q: %w", v, err)
			}
			return CapSet(n), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read capabilities: %w", err)
	}
	return 0, errors.New("read capabilities: no CapEff line in /proc/self/status")
}

// requiredNames names the capabilities tracing cannot start without.
func requiredNames() []string {
	var names []string
	for _, c := range Capabilities {
		if c.Required {
			names = append(names, c.Name)
		}
	}
	return names
}

// privileges says whether caps allow tracing: every required capability,
// or CAP_SYS_ADMIN, which includes them.
func privileges(caps CapSet) error {
	if caps&(1<<unix.CAP_SYS_ADMIN) != 0 {
		return nil
	}
	var missing []string
	for _, c := range Capabilities {
		if c.Required && !caps.Has(c) {
			missing = append(missing, c.Name)
		}
	}
	if len(missing) > 0 {
		return &lackingCapsError{uid: os.Geteuid(), missing: missing}
	}
	return nil
}

// lackingCapsError names the required capabilities snag runs without.
type lackingCapsError struct {
	uid     int
	missing []string
}

func (e *lackingCapsError) Error() string {
	return fmt.Sprintf("running as uid %d without %s: %v", e.uid, strings.Join(e.missing, ", "), os.ErrPermission)
}

func (e *lackingCapsError) Unwrap() error { return os.ErrPermission }
