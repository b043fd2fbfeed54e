package tracer

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snagtrace/snag/bpf"
	"github.com/snagtrace/snag/internal/model"
)

// selfUsage is snag's own user plus system CPU time so far, and its peak
// resident set in bytes (ru_maxrss: the counter /proc/self/status shows
// as VmHWM).
func selfUsage() (cpu time.Duration, peakRSS uint64, err error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), uint64(ru.Maxrss) * 1024, nil
}

// cost measures what the trace cost: the BPF programs' run time, what
// they counted, and snag's own CPU since the attach and peak memory.
func (s *session) cost(stats []model.SyscallStat) model.Cost {
	c := model.Cost{Known: true, Events: s.rd.read.Load()}
	for i := range stats {
		c.Syscalls += stats[i].Count
	}
	if progs, err := s.tr.ProgramCosts(); errors.Is(err, bpf.ErrRunStatsOff) {
		c.StatsError = err.Error() + " (--bpf-stats measures them)"
	} else if err != nil {
		c.StatsError = err.Error()
	} else {
		c.Programs = progs
	}
	if cpu, rss, err := selfUsage(); err == nil {
		c.SnagCPU = cpu - s.selfCPU0
		c.SnagPeakRSS = rss
	}
	return c
}
