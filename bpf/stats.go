//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"io"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/snagtrace/snag/internal/model"
)

// attachedProg is one of snag's programs and the raw tracepoint it runs on.
type attachedProg struct {
	name string
	prog *ebpf.Program
}

// runStats holds the kernel's BPF run-time statistics open for the
// tracer's life. They are global and reference-counted: enabling them is
// harmless when someone else has, and closing drops only our reference.
type runStats struct {
	closer io.Closer
	err    error
}

// ErrRunStatsOff is ProgramCosts' error when the tracer was loaded without
// Options.RunStats and nobody else turned the statistics on.
var ErrRunStatsOff = errors.New("BPF run-time statistics off: they add two clock reads to every program run")

// enableRunStats asks the kernel to time every BPF program run (5.8+). The
// timing adds two clock reads to each run; a failure (older kernel, no
// CAP_SYS_ADMIN) leaves the trace without the measurement, not failed.
func enableRunStats() runStats {
	c, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		return runStats{err: fmt.Errorf("enable BPF run-time statistics: %w", err)}
	}
	return runStats{closer: c}
}

// SetRunStats turns the statistics on or off for a sample (the tracer
// loaded without Options.RunStats): only this tracer's reference, which
// the kernel counts with everyone else's.
func (t *Tracer) SetRunStats(on bool) error {
	if !on {
		t.stats.close()
		return nil
	}
	if t.stats.closer == nil {
		t.stats = enableRunStats()
	}
	return t.stats.err
}

func (s *runStats) close() {
	if s.closer != nil {
		s.closer.Close()
		s.closer = nil
	}
}

// ProgramCosts returns the run time and runs of each of snag's attached
// programs since it was loaded. The programs are new, so their counters
// start at zero with the tracer: no reading at the start is needed, and
// other programs on the host, which the statistics also time, are not
// counted. A non-nil error says why there is no measurement.
func (t *Tracer) ProgramCosts() ([]model.ProgramCost, error) {
	var out []model.ProgramCost
	var ran bool
	for _, p := range t.progs {
		st, err := p.prog.Stats()
		if err != nil {
			return nil, fmt.Errorf("read run-time statistics of %s: %w", p.name, err)
		}
		ran = ran || st.RunCount > 0
		out = append(out, model.ProgramCost{
			Name:    p.name,
			Syscall: p.name == "sys_enter" || p.name == "sys_exit",
			RunTime: st.Runtime,
			Runs:    st.RunCount,
		})
	}
	if t.stats.err != nil && !ran {
		// Stats enabled by sysctl (kernel.bpf_stats_enabled) still count.
		return nil, t.stats.err
	}
	if len(out) == 0 {
		return nil, errors.New("no BPF programs attached")
	}
	return out, nil
}
