package report

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// tracedCPU is the CPU time the traced threads used over the trace, as far
// as it is known (threads that exited while tracing have none).
func tracedCPU(t *model.Trace) time.Duration {
	var d time.Duration
	for i := range t.Threads {
		d += t.Threads[i].OnCPU
	}
	return d
}

// costShare is the syscall programs' run time as a fraction of the traced
// threads' CPU time, which it is part of: the programs run in the thread,
// in its syscall, and the kernel charges their time to it. NaN when
// either is unknown.
func costShare(t *model.Trace) float64 {
	run, _ := t.Cost.RunTime(true)
	cpu := tracedCPU(t)
	if run == 0 || cpu <= 0 {
		return math.NaN()
	}
	return float64(run) / float64(cpu)
}

// perSecond is n over the traced wall time, NaN when that is unknown.
func perSecond(n uint64, wall time.Duration) float64 {
	if wall <= 0 {
		return math.NaN()
	}
	return float64(n) / wall.Seconds()
}

// costLines says what the trace cost in two sentences, or nothing when the
// source did not measure it:
//
//	snag added ~92ns to each of the 2,104,332 syscalls it traced (3.1% of the traced threads' CPU time)
//	its BPF programs ran 201ms in all; snag itself used 0.6% of a CPU and 35.2 MiB at its peak; 1,210 events/s
//
// When the programs ran for many calls of untraced processes, whose time
// is in the run time too, the first says "at most" and the second how many.
func costLines(t *model.Trace) []string {
	c := &t.Cost
	if !c.Known {
		return nil
	}
	var first string
	// The filter's runs for other processes' calls are in the run time:
	// when they are many, the time per traced call is a bound.
	others := c.UntracedCalls()
	bound := others > c.Syscalls/10
	if per := c.PerSyscall(); per > 0 {
		first = "snag added ~" + model.FormatDuration(per)
		if bound {
			first = "snag added at most ~" + model.FormatDuration(per)
		}
		first += " to each of the " + formatCount(c.Syscalls) + " syscalls it traced"
		// Past the whole, a bound says nothing: left out.
		if share := costShare(t); !math.IsNaN(share) && share <= 1 {
			first += " (" + formatShare(share) + " of the traced threads' CPU time)"
		}
	} else {
		first = "snag traced " + formatCount(c.Syscalls) + " syscalls; the run time of its BPF programs is unknown"
		if c.StatsError != "" {
			first += " (" + c.StatsError + ")"
		}
	}
	var second []string
	if run, _ := c.RunTime(false); run > 0 {
		ran := "its BPF programs ran " + model.FormatDuration(run) + " in all"
		if c.StatsSampled {
			ran = "its BPF programs ran ~" + model.FormatDuration(run) + " in all (scaled from the " + formatCount(c.SampledSyscalls) + " syscalls timed in samples)"
		}
		if bound {
			ran += ", which includes filtering out " + formatCount(others) + " calls of other processes"
		}
		second = append(second, ran)
	}
	self := "snag itself used " + formatShare(wallShare(c.SnagCPU, t.Duration)) + " of a CPU"
	if c.SnagPeakRSS > 0 {
		self += " and " + formatBytes(c.SnagPeakRSS) + " at its peak"
	}
	second = append(second, self)
	if r := perSecond(c.Events, t.Duration); !math.IsNaN(r) {
		second = append(second, formatCount(uint64(math.Round(r)))+" events/s")
	}
	return []string{first, strings.Join(second, "; ")}
}

// formatBytes renders a size in binary units with three significant
// digits: 512 B, 4.00 KiB, 35.2 MiB.
func formatBytes(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10) + " B"
	}
	units := []string{" KiB", " MiB", " GiB", " TiB"}
	v := float64(n) / 1024
	i := 0
	for ; roundFloat3(v) >= 1000 && i < len(units)-1; i++ {
		v /= 1024
	}
	return model.ThreeDigits(roundFloat3(v), units[i])
}

// roundFloat3 rounds v (≥ 1) to three significant digits.
func roundFloat3(v float64) float64 {
	p := math.Pow(10, 2-math.Floor(math.Log10(v)))
	return math.Round(v*p) / p
}

// jsonCost is the JSON report's cost object (JSON.md), present when the
// source measured it.
type jsonCost struct {
	Syscalls         uint64            `json:"syscalls"`
	Events           uint64            `json:"events"`
	EventsPerSecond  float64           `json:"events_per_second"`
	BPFRunNS         int64             `json:"bpf_run_ns"`
	BPFRuns          uint64            `json:"bpf_runs"`
	SyscallBPFRunNS  int64             `json:"syscall_bpf_run_ns"`
	UntracedCalls    uint64            `json:"untraced_calls"`
	NSPerSyscall     float64           `json:"ns_per_syscall"`
	TracedCPUNS      int64             `json:"traced_cpu_ns"`
	TracedCPUShare   float64           `json:"traced_cpu_share"`
	SnagCPUNS        int64             `json:"snag_cpu_ns"`
	SnagCPUShare     float64           `json:"snag_cpu_share"`
	SnagPeakRSSBytes uint64            `json:"snag_peak_rss_bytes"`
	StatsError       string            `json:"stats_error,omitempty"`
	StatsSampled     bool              `json:"stats_sampled"`
	SampledSyscalls  uint64            `json:"sampled_syscalls"`
	Programs         []jsonProgramCost `json:"programs"`
}

type jsonProgramCost struct {
	Name    string `json:"name"`
	Syscall bool   `json:"syscall"`
	RunNS   int64  `json:"run_ns"`
	Runs    uint64 `json:"runs"`
}

func newJSONCost(t *model.Trace) *jsonCost {
	c := &t.Cost
	if !c.Known {
		return nil
	}
	run, runs := c.RunTime(false)
	sysRun, _ := c.RunTime(true)
	j := &jsonCost{
		Syscalls: c.Syscalls, Events: c.Events, EventsPerSecond: finite(perSecond(c.Events, t.Duration)),
		BPFRunNS: int64(run), BPFRuns: runs, SyscallBPFRunNS: int64(sysRun), UntracedCalls: c.UntracedCalls(),
		TracedCPUNS: int64(tracedCPU(t)), TracedCPUShare: finite(costShare(t)),
		SnagCPUNS: int64(c.SnagCPU), SnagCPUShare: finite(wallShare(c.SnagCPU, t.Duration)),
		SnagPeakRSSBytes: c.SnagPeakRSS, StatsError: c.StatsError,
		StatsSampled: c.StatsSampled, SampledSyscalls: c.SampledSyscalls,
		Programs: make([]jsonProgramCost, 0, len(c.Programs)),
	}
	if c.Syscalls > 0 {
		j.NSPerSyscall = float64(sysRun) / float64(c.Syscalls)
	}
	for _, p := range c.Programs {
		j.Programs = append(j.Programs, jsonProgramCost{Name: p.Name, Syscall: p.Syscall, RunNS: int64(p.RunTime), Runs: p.Runs})
	}
	return j
}
