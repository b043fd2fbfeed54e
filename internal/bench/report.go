package bench

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

type reportInput struct {
	cfg     Config
	conds   []condition
	results []*result
	log     *logBench
	mem     []memResult
	notes   []string
	elapsed time.Duration
	// loadBefore is the 1-minute load average when the run started: other
	// work on the machine is the usual cause of a wide spread.
	loadBefore string
}

// writeReport prints the measurements, the figures derived from them and
// a verdict for every target.
func writeReport(w io.Writer, in reportInput) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\nsnag overhead: %d rounds of %s per condition, conditions interleaved; medians over rounds\n",
		in.cfg.Rounds, in.cfg.Duration)
	fmt.Fprintf(&b, "%s, %d CPUs, run took %s; load average before %s, after %s\n\n", kernelRelease(), runtime.NumCPU(),
		in.elapsed.Round(time.Second), in.loadBefore, loadAverage())

	if len(in.results) > 0 {
		if err := writeThroughput(&b, in); err != nil {
			return err
		}
	}

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tworkload\tvalue\tverdict")
	for _, r := range in.results {
		if r.skipped != "" {
			continue
		}
		for _, cond := range snagConds(in.conds) {
			of := r.runs.ratio(cond, condFloor)
			fmt.Fprintf(tw, "%s/floor throughput ≥ %.0f%%\t%s\t%s\t%s\n", cond, 100*targetOfFloor, r.name, pct(of), verdict(of >= targetOfFloor, of))
			of = r.runs.cpuRatio(cond, condFloor)
			fmt.Fprintf(tw, "%s/floor by CPU per op ≥ %.0f%%\t%s\t%s\t%s\n", cond, 100*targetOfFloor, r.name, pct(of), verdict(of >= targetOfFloor, of))
		}
		cpu := r.runs.stat(condSnag, cpuOf).median
		fmt.Fprintf(tw, "snag CPU ≤ %.0f%% of a core\t%s\t%s\t%s\n", 100*targetCPU, r.name, pct(cpu), verdict(cpu <= targetCPU, cpu))
		rss := r.runs.stat(condSnag, rssOf).hi
		fmt.Fprintf(tw, "snag peak RSS ≤ %d MiB\t%s\t%s\t%s\n", targetRSS>>20, r.name, mib(rss), verdict(rss <= targetRSS, rss))
	}
	for _, m := range in.mem {
		rss := float64(m.maxRSS)
		if m.err != nil {
			rss = math.NaN()
		}
		fmt.Fprintf(tw, "snag peak RSS ≤ %d MiB\t%s\t%s\t%s\n", targetRSS>>20, m.name, mib(rss), verdict(rss <= targetRSS, rss))
	}
	if in.log != nil {
		mbps := in.log.mbps()
		fmt.Fprintf(tw, "strace log analysis ≥ %d MB/s\t%s\t%.0f MB/s\t%s\n", targetLogMBps, "log", mbps, verdict(mbps >= targetLogMBps, mbps))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("\n")

	for _, r := range in.results {
		if r.skipped != "" {
			fmt.Fprintf(&b, "%s: %s\n", r.name, r.skipped)
			continue
		}
		for _, cond := range snagConds(in.conds) {
			if x := r.runs.ratio(cond, condStrace); !math.IsNaN(x) {
				fmt.Fprintf(&b, "%s: %s keeps %.1f× strace's throughput\n", r.name, cond, x)
			}
			op := "operation"
			if r.name == "getppid" {
				op = "syscall" // one call fires sys_enter and sys_exit once each
			}
			fmt.Fprintf(&b, "%s: %s adds %.0f ns per %s beyond the floor in wall time, %.0f ns in the workload's CPU time\n",
				r.name, cond, r.runs.extraNS(cond, condFloor), op, r.runs.extraCPUNS(cond, condFloor))
		}
		if r.name == "getppid" {
			fmt.Fprintf(&b, "%s: the floor adds %.0f ns per syscall to the untraced %.0f ns\n",
				r.name, r.runs.extraNS(condFloor, condUntraced), 1e9/r.runs.stat(condUntraced, throughputOf).median)
		}
		for _, cond := range append(snagConds(in.conds), condFloor) {
			ps, ok := r.progs[cond]
			if !ok {
				continue
			}
			fmt.Fprintf(&b, "%s: bpf_stats, %s programs: sys_enter %.0f ns per run, sys_exit %.0f ns per run (%s runs/s of sys_enter)\n",
				r.name, cond, ps["sys_enter"].nsPerRun(), ps["sys_exit"].nsPerRun(),
				si(float64(ps["sys_enter"].runs)/in.cfg.Duration.Seconds()))
		}
		for _, n := range r.notes {
			fmt.Fprintf(&b, "%s: %s\n", r.name, n)
		}
	}
	for _, m := range in.mem {
		if m.err != nil {
			fmt.Fprintf(&b, "%s: %v\n", m.name, m.err)
			continue
		}
		fmt.Fprintf(&b, "%s: snag attach -d %s on %s: peak RSS %s, CPU %s, %d operations traced\n",
			m.name, memTrace, m.what, mib(float64(m.maxRSS)), m.cpu.Round(time.Millisecond), m.ops)
	}
	if in.log != nil {
		fmt.Fprintf(&b, "strace log: snag analyze read %s in %s (%.0f MB/s), peak RSS %s\n",
			mib(float64(in.log.size)), in.log.elapsed.Round(time.Millisecond), in.log.mbps(), mib(float64(in.log.maxRSS)))
	}
	for _, n := range in.notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// snagConds are the conditions that run a snag binary: snag, and the
// baseline when there is one.
func snagConds(conds []condition) []string {
	var out []string
	for _, c := range conds {
		if c.name() == condSnag || c.name() == condBaseline {
			out = append(out, c.name())
		}
	}
	return out
}

// writeThroughput is the table of every workload under every condition.
func writeThroughput(b *strings.Builder, in reportInput) error {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tcondition\tthroughput\tspread\tvs untraced\tCPU per op\ttracer CPU\ttracer peak RSS\t")
	for _, r := range in.results {
		if r.skipped != "" {
			fmt.Fprintf(tw, "%s\t%s\t\t\t\t\t\t\t\n", r.name, "skipped")
			continue
		}
		for _, c := range in.conds {
			name := c.name()
			t := r.runs.stat(name, throughputOf)
			if t.n == 0 {
				fmt.Fprintf(tw, "%s\t%s\t%s\t\t\t\t\t\t\n", r.name, name, "failed")
				continue
			}
			cpu, rss := "-", "-"
			if _, ok := c.(procTracer); ok {
				cpu = pct(r.runs.stat(name, cpuOf).median)
				rss = mib(r.runs.stat(name, rssOf).hi)
			}
			vs := "-"
			if name != condUntraced {
				vs = pct(r.runs.ratio(name, condUntraced))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s %s\t±%.1f%%\t%s\t%.0f ns\t%s\t%s\t\n", r.name, name,
				si(t.median), r.unit, 50*(t.hi-t.lo)/t.median, vs, 1e9*r.runs.stat(name, cpuPerOpOf).median, cpu, rss)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("spread: half the range over rounds, relative to the median; CPU per op: the measured process's CPU time\n")
	b.WriteString("per operation, which other work on the machine disturbs far less than throughput\n\n")
	return nil
}

// si writes a rate with an SI prefix, three significant digits.
func si(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.3gk", v/1e3)
	}
	return fmt.Sprintf("%.3g", v)
}

func pct(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*v)
}

func mib(v float64) string {
	if math.IsNaN(v) || v == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", v/(1<<20))
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "Linux"
	}
	return "Linux " + unix.ByteSliceToString(u.Release[:])
}

// loadAverage is the 1-minute load average, or "?".
func loadAverage() string {
	data, err := os.ReadFile(procRoot + "/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(data)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
