package bench

import (
	"math"
	"slices"
)

// Condition names, as they appear in the report.
const (
	condUntraced = "untraced"
	condFloor    = "floor"
	condSnag     = "snag"
	condBaseline = "snag-base" // -snag-baseline: another snag binary, to compare against
	condStrace   = "strace"
)

// Targets snag is held to.
const (
	targetOfFloor = 0.90     // snag keeps at least 90% of the floor's throughput
	targetCPU     = 0.02     // of one core, while tracing
	targetRSS     = 64 << 20 // bytes, peak
	targetLogMBps = 150      // strace log analysis throughput
)

// sample is one measurement of one workload under one condition.
type sample struct {
	ok         bool
	throughput float64 // operations per second over the window
	// cpuPerOp is the measured process's CPU time per operation, in
	// seconds: unlike throughput, it does not move when other work on the
	// machine takes the workload's CPU away.
	cpuPerOp  float64
	tracerCPU float64 // the tracing process's CPU, in cores; 0 without one
	maxRSS    int64   // the tracing process's peak RSS in bytes; 0 without one
}

// runs holds a workload's samples by condition, indexed by round, so each
// round's conditions can be compared with each other: interleaving only
// pays off when the ratios are taken within a round.
type runs map[string][]sample

// perRound applies f to the rounds where conditions a and b both
// succeeded and returns the median of the results, or NaN without any.
func (r runs) perRound(a, b string, f func(x, y sample) float64) float64 {
	var vals []float64
	for i := range min(len(r[a]), len(r[b])) {
		if r[a][i].ok && r[b][i].ok {
			vals = append(vals, f(r[a][i], r[b][i]))
		}
	}
	return median(vals)
}

// ratio is the median over rounds of throughput(a)/throughput(b).
func (r runs) ratio(a, b string) float64 {
	return r.perRound(a, b, func(x, y sample) float64 { return x.throughput / y.throughput })
}

// extraNS is the median over rounds of the time per operation that a adds
// over b, in nanoseconds.
func (r runs) extraNS(a, b string) float64 {
	return r.perRound(a, b, func(x, y sample) float64 { return 1e9/x.throughput - 1e9/y.throughput })
}

// cpuRatio is the median over rounds of cpuPerOp(b)/cpuPerOp(a): the
// share of b's throughput a keeps when CPU alone is counted.
func (r runs) cpuRatio(a, b string) float64 {
	return r.perRound(a, b, func(x, y sample) float64 { return y.cpuPerOp / x.cpuPerOp })
}

// extraCPUNS is the median over rounds of the CPU per operation that a
// adds over b, in nanoseconds.
func (r runs) extraCPUNS(a, b string) float64 {
	return r.perRound(a, b, func(x, y sample) float64 { return 1e9 * (x.cpuPerOp - y.cpuPerOp) })
}

// stat summarizes one field of a condition's good samples.
type stat struct {
	n              int
	median, lo, hi float64
}

func (r runs) stat(cond string, field func(sample) float64) stat {
	var vals []float64
	for _, s := range r[cond] {
		if s.ok {
			vals = append(vals, field(s))
		}
	}
	if len(vals) == 0 {
		return stat{median: math.NaN(), lo: math.NaN(), hi: math.NaN()}
	}
	return stat{n: len(vals), median: median(vals), lo: slices.Min(vals), hi: slices.Max(vals)}
}

func throughputOf(s sample) float64 { return s.throughput }
func cpuOf(s sample) float64        { return s.tracerCPU }
func cpuPerOpOf(s sample) float64   { return s.cpuPerOp }
func rssOf(s sample) float64        { return float64(s.maxRSS) }

// median of vals, NaN for none; vals is left as it was.
func median(vals []float64) float64 {
	if len(vals) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// verdict says whether a figure met its target; a figure that could not be
// measured meets nothing.
func verdict(met bool, measured float64) string {
	switch {
	case math.IsNaN(measured):
		return "n/a"
	case met:
		return "PASS"
	}
	return "MISS"
}
