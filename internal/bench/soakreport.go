package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// writeSoakReport prints the soak: the mix's throughput traced against
// untraced, the agent's figures over the traced part and a verdict for
// every target.
func writeSoakReport(w io.Writer, r *soakResult) error {
	var b strings.Builder
	s := summarize(r)
	fmt.Fprintf(&b, "\nsnag serve soak: %d processes traced for %s (--interval %s, --cmdline %q), untraced for %s before and %s after\n",
		r.procs, r.duration, soakInterval, r.selector, r.duration/2, r.duration/2)
	fmt.Fprintf(&b, "load average before %s, after %s\n\n", r.loadBefore, r.loadAfter)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tprocesses\tuntraced\ttraced\ttraced/untraced\t")
	for _, x := range r.rates {
		if x.skipped != "" {
			fmt.Fprintf(tw, "%s\t%d\t%s\t\t\t\n", x.kind.name, x.procs, x.skipped)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s %s\t%s %s\t%s\t\n", x.kind.name, x.procs, si(x.untraced), x.kind.unit,
			si(x.traced), x.kind.unit, pct(x.traced/x.untraced))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("untraced: both untraced parts together, around the traced one\n\n")

	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tvalue\tverdict")
	fmt.Fprintf(tw, "serve CPU ≤ %.0f%% of a core (/proc/PID/stat)\t%s\t%s\n", 100*targetSoakCPU, pct(s.cpu), verdict(s.cpu <= targetSoakCPU, s.cpu))
	fmt.Fprintf(tw, "serve CPU ≤ %.0f%% of a core (snag_cpu_seconds_total)\t%s\t%s\n", 100*targetSoakCPU, pct(s.mCPU), verdict(s.mCPU <= targetSoakCPU, s.mCPU))
	fmt.Fprintf(tw, "serve peak RSS ≤ %d MiB\t%s\t%s\n", targetSoakRSS>>20, mib(s.peakRSS), verdict(s.peakRSS <= targetSoakRSS, s.peakRSS))
	fmt.Fprintf(tw, "serve RSS stays ≤ %d MiB for %s at its slope\t%s\t%s\n", targetSoakRSS>>20, soakHorizon,
		perHour(s.slopePerHour), verdict(rssHeadroomOK(s.lastRSS, s.slopePerHour), s.slopePerHour))
	// The first window holds serve's start-up, when the events of the
	// processes it is still reading wait in the ring buffer; after that
	// an agent should keep up.
	later := s.droppedLater
	if len(r.samples) == 0 {
		later = math.NaN()
	}
	fmt.Fprintf(tw, "serve dropped events after the first window = 0\t%.0f\t%s\n", later, verdict(later == 0, later))
	fmt.Fprintf(tw, "serve windows ≥ %.0f\t%.0f\t%s\n", s.wantWindows-1, s.windows, verdict(s.windows >= s.wantWindows-1, s.windows))
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("\n")

	fmt.Fprintf(&b, "serve RSS every window: first %s, last %s, max %s; slope (Theil–Sen) over the second half %s\n",
		mib(s.firstRSS), mib(s.lastRSS), mib(s.maxRSS), perHour(s.slopePerHour))
	fmt.Fprintf(&b, "serve answered %s after it started; ", r.startup.Round(time.Millisecond))
	fmt.Fprintf(&b, "serve CPU over its whole life (start-up and shutdown too): %s; peak RSS by the kernel %s\n",
		r.life.cpu.Round(time.Millisecond), mib(float64(r.life.maxRSS)))
	fmt.Fprintf(&b, "serve read %.0f events (%s/s) in %.0f windows; %.0f processes traced in the last\n",
		s.events, si(s.events/r.duration.Seconds()), s.windows, s.traced)
	if drops := sumValues(s.dropped); drops > 0 {
		causes := make([]string, 0, len(s.dropped))
		for c := range s.dropped {
			causes = append(causes, c)
		}
		slices.Sort(causes)
		for i, c := range causes {
			causes[i] = fmt.Sprintf("%s %.0f", c, s.dropped[c])
		}
		fmt.Fprintf(&b, "serve dropped %.0f events, first window included, by cause: %s\n", drops, strings.Join(causes, ", "))
	}
	for _, n := range r.notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// perHour writes a rate of bytes an hour in MiB.
func perHour(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%+.2f MiB/h", v/(1<<20))
}
