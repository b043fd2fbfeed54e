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

// Without --bpf-stats, the kernel's BPF statistics run in samples:
// statsSample every statsPeriod. Always on, they add two clock reads to
// every run of every BPF program on the host, about doubling snag's cost
// on a cheap syscall; sampled, 2% of that, and the report still has the
// programs' measured time per call, scaled from the calls traced during
// the samples (Cost.Scaled). The first sample starts at the attach and
// goes on until it saw statsMinCalls traced calls or statsLongest passed,
// so that a short trace is measured too; later ones last statsSample, for
// each check reads every aggregate row (Calls), which an idle target
// would otherwise pay ten times a second.
const (
	statsSample   = 100 * time.Millisecond
	statsLongest  = time.Second
	statsPeriod   = 5 * time.Second
	statsMinCalls = 1000
)

// statsSampler turns the statistics on and off and counts the traced
// calls they saw.
type statsSampler struct {
	on      bool
	next    time.Time // when the next sample starts, or this one may end
	began   time.Time // when this sample started
	first   bool      // this sample is the first, from the attach
	calls0  uint64    // traced calls when this sample started
	sampled uint64    // traced calls in the samples that ended
	runs    uint64    // the programs' runs when the last sample ended
	// whole is set when the programs ran while no sample was on: someone
	// else holds the statistics on, so they saw every call.
	whole, failed bool
}

// sampleStats starts or ends a sample when it is time.
func (s *session) sampleStats(now time.Time) {
	sm := s.sampler
	if sm == nil || sm.failed || sm.whole || now.Before(sm.next) {
		return
	}
	calls, err := s.tr.Calls()
	if err != nil {
		return
	}
	if sm.on {
		if sm.first && calls-sm.calls0 < statsMinCalls && now.Sub(sm.began) < statsLongest {
			// Calls reads every row: not at every event.
			sm.next = now.Add(statsSample)
			return
		}
		s.endSample(calls)
		sm.first = false
		sm.next = sm.began.Add(statsPeriod)
		return
	}
	if runs := s.programRuns(); runs > sm.runs {
		sm.whole = true
		return
	}
	if err := s.tr.SetRunStats(true); err != nil {
		sm.failed = true
		return
	}
	sm.on, sm.calls0, sm.began, sm.next = true, calls, now, now.Add(statsSample)
}

func (s *session) endSample(calls uint64) {
	sm := s.sampler
	sm.sampled += calls - sm.calls0
	s.tr.SetRunStats(false)
	sm.on, sm.runs = false, s.programRuns()
}

// stopSampling ends a sample in progress, at the end of the trace.
func (s *session) stopSampling() {
	if sm := s.sampler; sm != nil && sm.on {
		if calls, err := s.tr.Calls(); err == nil {
			s.endSample(calls)
		}
	}
}

func (s *session) programRuns() uint64 {
	progs, err := s.tr.ProgramCosts()
	if err != nil {
		return 0
	}
	_, runs := (&model.Cost{Programs: progs}).RunTime(false)
	return runs
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
	if sm := s.sampler; sm != nil && c.Programs != nil {
		_, runs := c.RunTime(false)
		sm.whole = sm.whole || (!sm.on && runs > sm.runs) // counted while no sample was on
	}
	if sm := s.sampler; sm != nil && !sm.whole && c.Programs != nil {
		c.StatsSampled, c.SampledSyscalls = true, sm.sampled
		if sm.on { // a window cut while a sample runs
			if calls, err := s.tr.Calls(); err == nil {
				c.SampledSyscalls += calls - sm.calls0
			}
		}
	}
	if cpu, rss, err := selfUsage(); err == nil {
		c.SnagCPU = cpu - s.selfCPU0
		c.SnagPeakRSS = rss
	}
	return c
}
