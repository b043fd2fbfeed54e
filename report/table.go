package report

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/version"
)

// TableOptions tunes the terminal report.
type TableOptions struct {
	Top   int  // rows per table; 0 means DefaultTop
	Color bool // ANSI colours for headings and severities
}

// DefaultTop is how many rows each table shows unless told otherwise: enough
// to see past the top offender, short enough to fit a terminal.
const DefaultTop = 20

const (
	// textWidth is where finding text wraps, a comfortable reading width
	// that still fits an 120-column terminal with the indent.
	textWidth = 96
	// stackFrames is how many frames of a finding's stack are shown; the
	// blocking library is almost always within the first few.
	stackFrames = 8
	// tidsShown is how many thread ids a connection row lists before "+N".
	tidsShown = 4
)

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[1;31m"
	ansiYellow = "\x1b[1;33m"
	ansiCyan   = "\x1b[36m"
	ansiDim    = "\x1b[2m"
)

// Table writes the terminal report: a header, the findings, then tables of
// threads blocked at attach, syscalls, threads and connections, and a
// footer saying what tracing cost.
func Table(w io.Writer, t *model.Trace, a *model.Analysis, opt TableOptions) error {
	if t == nil {
		return errors.New("table report: no trace")
	}
	if opt.Top <= 0 {
		opt.Top = DefaultTop
	}
	if a == nil {
		a = &model.Analysis{}
	}
	// Render into memory so a failing writer is reported once, not per line.
	var buf bytes.Buffer
	r := &tableReport{w: &buf, t: t, a: a, opt: opt, names: threadNames(t, a)}
	steps := []func() error{r.header, r.findings, r.blockedAtAttach, r.syscalls, r.threads, r.connections, r.footer}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("table report: %w", err)
		}
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("table report: write: %w", err)
	}
	return nil
}

type tableReport struct {
	w     *bytes.Buffer
	t     *model.Trace
	a     *model.Analysis
	opt   TableOptions
	names map[threadKey]string
}

func (r *tableReport) paint(code, s string) string {
	if !r.opt.Color || s == "" {
		return s
	}
	return code + s + ansiReset
}

func (r *tableReport) section(title string) {
	fmt.Fprintf(r.w, "\n%s\n", r.paint(ansiBold, title))
}

func (r *tableReport) thread(pid, tid int) string {
	return threadLabel(r.names[threadKey{pid, tid}], tid)
}

func (r *tableReport) header() error {
	t := r.t
	title := "snag report: pid " + strconv.Itoa(t.Target.PID)
	if t.Target.Comm != "" {
		title += " " + t.Target.Comm
	}
	fmt.Fprintln(r.w, r.paint(ansiBold, title))

	kv := func(k, v string) { fmt.Fprintf(r.w, "  %-10s %s\n", k, v) }
	if len(t.Target.Cmdline) > 0 {
		kv("cmdline", truncate(formatCmdline(t.Target.Cmdline), textWidth))
	}
	source := t.Source
	if source == "" {
		source = "unknown"
	}
	if t.Arch != "" {
		source += " (" + t.Arch + ")"
	}
	kv("source", source)
	traced := model.FormatDuration(t.Duration)
	if !t.Start.IsZero() {
		traced += " from " + t.Start.Format(time.RFC3339)
	}
	kv("traced", traced)
	threshold := model.FormatDuration(t.Threshold)
	if t.Threshold <= 0 {
		threshold = "none (every call)"
	}
	kv("threshold", threshold)
	if len(t.Processes) > 1 {
		exited := 0
		for _, p := range t.Processes {
			if p.Exited {
				exited++
			}
		}
		kv("processes", fmt.Sprintf("%d (%d exited)", len(t.Processes), exited))
	}
	kv("events", eventSummary(t.Events))
	dropped := formatCount(t.Drops.Total())
	if parts := dropBreakdown(t.Drops); len(parts) > 0 {
		dropped = r.paint(ansiYellow, dropped+" ("+strings.Join(parts, ", ")+")")
	}
	kv("dropped", dropped)
	for _, n := range t.Notes {
		kv("note", r.paint(ansiYellow, n))
	}
	return nil
}

// eventSummary counts the trace's events by kind: "1,502 (syscall 1,480, connect 20, exit 2)".
func eventSummary(events []model.Event) string {
	counts := map[model.EventKind]uint64{}
	for i := range events {
		counts[events[i].Kind]++
	}
	kinds := make([]model.EventKind, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = k.String() + " " + formatCount(counts[k])
	}
	s := formatCount(uint64(len(events)))
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

func (r *tableReport) findings() error {
	r.section("Findings")
	if len(r.a.Findings) == 0 {
		fmt.Fprintln(r.w, "  no findings")
		return nil
	}
	for i := range r.a.Findings {
		r.finding(i+1, &r.a.Findings[i])
	}
	return nil
}

func (r *tableReport) severity(s model.Severity) string {
	label := strings.ToUpper(s.String())
	padded := fmt.Sprintf("%-6s", label)
	switch s {
	case model.SeverityHigh:
		return r.paint(ansiRed, padded)
	case model.SeverityMedium:
		return r.paint(ansiYellow, padded)
	case model.SeverityLow:
		return r.paint(ansiCyan, padded)
	}
	return padded
}

func (r *tableReport) finding(n int, f *model.Finding) {
	const indent = "             " // under the title, past "  1. HIGH   "
	title := f.Title
	if title == "" {
		title = f.Kind
	}
	fmt.Fprintf(r.w, "\n  %d. %s %s\n", n, r.severity(f.Severity), r.paint(ansiBold, title))

	line := func(key string, values ...string) {
		for i, v := range values {
			if i == 0 {
				fmt.Fprintf(r.w, "%s%-9s %s\n", indent, key, v)
			} else {
				fmt.Fprintf(r.w, "%s%-9s %s\n", indent, "", v)
			}
		}
	}
	if f.Kind != "" {
		line("kind", f.Kind)
	}
	if f.TID != 0 || f.Thread != "" {
		name := f.Thread
		if name == "" {
			name = r.names[threadKey{f.PID, f.TID}]
		}
		line("thread", threadLabel(name, f.TID))
	}
	if ev := findingNumbers(f, r.t.Duration); ev != "" || f.Syscall != "" {
		s := f.Syscall
		switch {
		case s == "":
			s = ev
		case ev != "":
			s += ": " + ev
		}
		line("syscall", s)
	}
	if f.Peer != "" || f.Service != "" {
		peer := f.Peer
		switch {
		case peer == "":
			peer = f.Service
		case f.Service != "":
			peer += " (" + f.Service + ")"
		}
		line("peer", peer)
	}
	if f.Path != "" {
		line("file", f.Path)
	}
	if f.Library != "" {
		line("library", f.Library)
	}
	if f.Runtime != "" {
		line("runtime", f.Runtime)
	}
	if len(f.Stack) > 0 {
		frames := f.Stack[:min(len(f.Stack), stackFrames)]
		if more := len(f.Stack) - len(frames); more > 0 {
			frames = append(slices.Clone(frames), fmt.Sprintf("… %d more frames", more))
		}
		line("stack", frames...)
	}
	if f.Detail != "" {
		line("detail", wrapText(f.Detail, textWidth-len(indent)-10)...)
	}
	if f.Hint != "" {
		line("hint", wrapText(f.Hint, textWidth-len(indent)-10)...)
	}
}

// findingNumbers renders a finding's measurements: "1,234 calls, total
// 3.20s, p50 1.20ms, max 50.1ms, 32.0% of wall time".
func findingNumbers(f *model.Finding, wall time.Duration) string {
	var parts []string
	if f.Count > 0 {
		calls := "calls"
		if f.Count == 1 {
			calls = "call"
		}
		parts = append(parts, formatCount(f.Count)+" "+calls)
	}
	if f.Total > 0 {
		parts = append(parts, "total "+model.FormatDuration(f.Total))
	}
	if f.P50 > 0 {
		parts = append(parts, "p50 "+model.FormatDuration(f.P50))
	}
	if f.Max > 0 {
		parts = append(parts, "max "+model.FormatDuration(f.Max))
	}
	share := f.Share
	if share == 0 && f.Total > 0 {
		share = wallShare(f.Total, wall)
	}
	if share > 0 && !math.IsInf(share, 0) {
		parts = append(parts, formatShare(share)+" of wall time")
	}
	return strings.Join(parts, ", ")
}

func (r *tableReport) blockedAtAttach() error {
	var rows []model.BlockedState
	for _, b := range r.t.Blocked {
		if !b.Running {
			rows = append(rows, b)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	slices.SortFunc(rows, func(x, y model.BlockedState) int {
		return compareThreadKey(threadKey{x.PID, x.TID}, threadKey{y.PID, y.TID})
	})
	r.section("Blocked at attach")
	tbl, out := newTable([]string{"thread", "syscall", "fd", "peer", "wchan"}, nil)
	shown := rows[:min(len(rows), r.opt.Top)]
	for _, b := range shown {
		fd := "-"
		if b.FD >= 0 {
			fd = strconv.Itoa(b.FD)
		}
		if err := tbl.Append([]string{
			r.thread(b.PID, b.TID), syscallName(b.Syscall, b.Nr), fd,
			dash(b.Peer.String()), dash(b.Wchan),
		}); err != nil {
			return fmt.Errorf("blocked at attach: %w", err)
		}
	}
	if err := tbl.Render(); err != nil {
		return fmt.Errorf("blocked at attach: %w", err)
	}
	r.flush(out)
	r.more(len(rows)-len(shown), "threads")
	return nil
}

func (r *tableReport) syscalls() error {
	totals := syscallTotals(r.t.Syscalls)
	if len(totals) == 0 {
		return nil
	}
	r.section("Syscalls")
	tbl, out := newTable(
		[]string{"syscall", "count", "errors", "total", "avg", "p50", "p99", "max", "% wall"},
		[]bool{false, true, true, true, true, true, true, true, true})
	shown := totals[:min(len(totals), r.opt.Top)]
	untimed := false
	for _, s := range shown {
		row := []string{
			s.Label(), formatCount(s.Count), formatCount(s.Errors),
			model.FormatDuration(s.Total), model.FormatDuration(s.Avg()),
			model.FormatDuration(s.Quantile(0.5)), model.FormatDuration(s.Quantile(0.99)),
			model.FormatDuration(s.Max), formatShare(wallShare(s.Total, r.t.Duration)),
		}
		if s.Untimed {
			untimed = true
			for i := 3; i < len(row); i++ {
				row[i] = untimedMark
			}
		}
		if err := tbl.Append(row); err != nil {
			return fmt.Errorf("syscalls: %w", err)
		}
	}
	if err := tbl.Render(); err != nil {
		return fmt.Errorf("syscalls: %w", err)
	}
	r.flush(out)
	r.more(len(totals)-len(shown), "syscalls")
	r.note("summed over threads; % wall = total / " + model.FormatDuration(r.t.Duration) +
		" traced, so it can pass 100% when threads wait at once")
	if untimed {
		r.note(untimedMark + " not timed: calls that never wait are counted only (--time-all times them)")
	}
	return nil
}

// untimedMark fills the time columns of calls counted but not timed.
const untimedMark = "—"

func (r *tableReport) threads() error {
	rows, analyzed := threadRows(r.t, r.a)
	if len(rows) == 0 {
		return nil
	}
	// The busiest threads first, so a cut at Top keeps the interesting ones.
	busy := func(x threadRow) time.Duration {
		if analyzed {
			return x.OnCPU + x.Blocked
		}
		return x.OnCPU + x.InSyscall
	}
	slices.SortStableFunc(rows, func(x, y threadRow) int {
		if c := cmp.Compare(busy(y), busy(x)); c != 0 {
			return c
		}
		return cmp.Compare(y.Syscalls, x.Syscalls)
	})
	pids := map[int]bool{}
	for _, x := range rows {
		pids[x.PID] = true
	}
	multi := len(pids) > 1

	r.section("Threads")
	var headers []string
	var right []bool
	if multi {
		headers, right = append(headers, "pid"), append(right, true)
	}
	if analyzed {
		headers = append(headers, "tid", "name", "role", "loop wait", "syscalls", "blocked", "idle", "on-cpu")
		right = append(right, true, false, false, false, true, true, true, true)
	} else {
		headers = append(headers, "tid", "name", "syscalls", "in syscalls", "on-cpu")
		right = append(right, true, false, true, true, true)
	}
	tbl, out := newTable(headers, right)
	shown := rows[:min(len(rows), r.opt.Top)]
	for _, x := range shown {
		var cells []string
		if multi {
			cells = append(cells, strconv.Itoa(x.PID))
		}
		name := dash(x.Name)
		if x.Started || x.Exited {
			var life []string
			if x.Started {
				life = append(life, "new")
			}
			if x.Exited {
				life = append(life, "exited")
			}
			name += " (" + strings.Join(life, ", ") + ")"
		}
		cells = append(cells, strconv.Itoa(x.TID), name)
		if analyzed {
			cells = append(cells, dash(string(x.Role)), dash(x.LoopWait), formatCount(x.Syscalls),
				model.FormatDuration(x.Blocked), model.FormatDuration(x.Idle), onCPU(x.OnCPU))
		} else {
			cells = append(cells, formatCount(x.Syscalls), model.FormatDuration(x.InSyscall), onCPU(x.OnCPU))
		}
		if err := tbl.Append(cells); err != nil {
			return fmt.Errorf("threads: %w", err)
		}
	}
	if err := tbl.Render(); err != nil {
		return fmt.Errorf("threads: %w", err)
	}
	r.flush(out)
	r.more(len(rows)-len(shown), "threads")
	if !analyzed {
		r.note("no analysis: roles and the blocked/idle split are unknown")
	}
	return nil
}

func (r *tableReport) connections() error {
	conns := slices.Clone(r.a.Connections)
	if len(conns) == 0 {
		return nil
	}
	sortConnections(conns)
	r.section("Connections")
	tbl, out := newTable(
		[]string{"peer", "service", "connects", "accepts", "threads", "expected", "before attach"},
		[]bool{false, false, true, true, false, false, false})
	shown := conns[:min(len(conns), r.opt.Top)]
	for _, c := range shown {
		if err := tbl.Append([]string{
			dash(tablePeer(c)), dash(c.Service), formatCount(c.Connects), formatCount(c.Accepts),
			formatTIDs(c.TIDs), yesNo(c.Expected), yesNo(c.BeforeAttach),
		}); err != nil {
			return fmt.Errorf("connections: %w", err)
		}
	}
	if err := tbl.Render(); err != nil {
		return fmt.Errorf("connections: %w", err)
	}
	r.flush(out)
	r.more(len(conns)-len(shown), "connections")
	return nil
}

// footer says what tracing cost, when the source measured it, and which
// snag wrote the report.
func (r *tableReport) footer() error {
	r.w.WriteString("\n")
	for _, l := range costLines(r.t) {
		r.note(l)
	}
	r.note(version.Get().String())
	return nil
}

// connCount is how often a peer was used: connects, accepts and addressed sends.
func connCount(c model.Connection) uint64 { return c.Connects + c.Accepts + c.Sends }

func formatTIDs(tids []int) string {
	if len(tids) == 0 {
		return "-"
	}
	sorted := slices.Clone(tids)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	shown := sorted[:min(len(sorted), tidsShown)]
	parts := make([]string, len(shown))
	for i, tid := range shown {
		parts[i] = strconv.Itoa(tid)
	}
	s := strings.Join(parts, ",")
	if more := len(sorted) - len(shown); more > 0 {
		s += " +" + strconv.Itoa(more)
	}
	return s
}

// onCPU shows an unmeasured CPU time (strace logs carry none) as "-"
// rather than a misleading 0ns: any live thread uses some.
func onCPU(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return model.FormatDuration(d)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (r *tableReport) more(n int, what string) {
	if n > 0 {
		r.note(fmt.Sprintf("… %d more %s", n, what))
	}
}

func (r *tableReport) note(s string) {
	fmt.Fprintf(r.w, "  %s\n", r.paint(ansiDim, s))
}

// newTable builds a borderless table in the style of ps and ss: an
// underlined header, columns separated by spaces, numbers right-aligned.
// Headers are upper-cased here rather than by tablewriter, whose automatic
// formatting splits "p50" into "P 50".
func newTable(headers []string, rightAligned []bool) (*tablewriter.Table, *bytes.Buffer) {
	align := make(tw.Alignment, len(headers))
	upper := make([]string, len(headers))
	for i, h := range headers {
		upper[i] = strings.ToUpper(h)
		align[i] = tw.AlignLeft
		if i < len(rightAligned) && rightAligned[i] {
			align[i] = tw.AlignRight
		}
	}
	var buf bytes.Buffer
	tbl := tablewriter.NewTable(&buf,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders: tw.BorderNone,
			Symbols: tw.NewSymbols(tw.StyleLight),
			Settings: tw.Settings{
				Separators: tw.Separators{BetweenColumns: tw.Off, BetweenRows: tw.Off},
				Lines:      tw.Lines{ShowHeaderLine: tw.On},
			},
		})),
		tablewriter.WithPadding(tw.Padding{Left: "", Right: "  ", Overwrite: true}),
		tablewriter.WithHeaderAlignmentConfig(tw.CellAlignment{Global: tw.AlignLeft, PerColumn: align}),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{Global: tw.AlignLeft, PerColumn: align}),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithHeaderAutoFormat(tw.Off),
	)
	tbl.Header(upper)
	return tbl, &buf
}

// flush copies a rendered table under its heading, indented by two spaces,
// without the trailing blanks the column padding leaves.
func (r *tableReport) flush(buf *bytes.Buffer) {
	for line := range strings.Lines(buf.String()) {
		line = strings.TrimRight(line, " \n")
		if line == "" {
			continue
		}
		r.w.WriteString("  " + line + "\n")
	}
}

func tablePeer(c model.Connection) string {
	if c.Inbound {
		return "clients from " + connPeer(c)
	}
	return c.Peer.String()
}
