// Package report renders a trace and its analysis for people and tools: a
// terminal report, the snag/v1 JSON document, Perfetto traces, profiles and
// flame graphs. It formats what the analyzer concluded and never draws a
// conclusion of its own.
package report

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// formatShare renders a fraction as a percentage. A tiny but non-zero share
// shows as "<0.1%" so it does not read as nothing at all.
func formatShare(f float64) string {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return "-"
	case f == 0:
		return "0%"
	case f > 0 && f < 0.001:
		return "<0.1%"
	}
	return strconv.FormatFloat(f*100, 'f', 1, 64) + "%"
}

// wallShare is d as a fraction of the traced wall time, or NaN when the
// duration is unknown.
func wallShare(d, wall time.Duration) float64 {
	if wall <= 0 {
		return math.NaN()
	}
	return float64(d) / float64(wall)
}

// formatCount renders an integer with thousands separators.
func formatCount(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	lead := len(s) % 3
	if lead > 0 {
		b.WriteString(s[:lead])
	}
	for i := lead; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// threadLabel names a thread for people: "python3 (tid 4242)".
func threadLabel(name string, tid int) string {
	if name == "" {
		return "tid " + strconv.Itoa(tid)
	}
	return name + " (tid " + strconv.Itoa(tid) + ")"
}

// formatCmdline joins argv for display, quoting arguments a shell would split.
func formatCmdline(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`") || !strconv.CanBackquote(a) {
			parts[i] = strconv.Quote(a)
		} else {
			parts[i] = a
		}
	}
	return strings.Join(parts, " ")
}

// truncate shortens s to at most n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n == 1 {
		return "…"
	}
	return string(r[:n-1]) + "…"
}

// wrapText breaks s into lines of at most width runes at spaces. Words
// longer than width stay whole on their own line: breaking a path or a
// symbol name would make it harder to search for.
func wrapText(s string, width int) []string {
	var lines []string
	for _, para := range strings.Split(s, "\n") {
		words := strings.Fields(para)
		if len(words) == 0 {
			continue
		}
		line := words[0]
		n := len([]rune(line))
		for _, w := range words[1:] {
			wn := len([]rune(w))
			if n+1+wn > width {
				lines = append(lines, line)
				line, n = w, wn
				continue
			}
			line += " " + w
			n += 1 + wn
		}
		lines = append(lines, line)
	}
	return lines
}

// syscallName names a stat or event's syscall, falling back to its number
// when the source could not name it.
func syscallName(name string, nr int) string {
	if name != "" {
		return name
	}
	return "syscall_" + strconv.Itoa(nr)
}

// threadKey identifies a thread across processes.
type threadKey struct{ pid, tid int }

func compareThreadKey(a, b threadKey) int {
	if c := cmp.Compare(a.pid, b.pid); c != 0 {
		return c
	}
	return cmp.Compare(a.tid, b.tid)
}

// threadRow is one thread's line in the reports: the analyzer's summary
// when there is one, otherwise what the trace alone says.
type threadRow struct {
	PID, TID  int
	Name      string
	Role      model.Role
	LoopWait  string
	Evidence  string // why the role
	OnCPU     time.Duration
	Blocked   time.Duration
	Idle      time.Duration
	Syscalls  uint64
	InSyscall time.Duration // total time in syscalls, from the aggregates
	Started   bool
	Exited    bool
	Budget    []model.BudgetItem
}

// threadRows merges the analyzer's thread summaries with the trace's thread
// list and syscall aggregates, ordered by pid and tid. analyzed reports
// whether roles and the blocked/idle split came from the analyzer; without
// it those fields are empty and only InSyscall tells where time went.
func threadRows(t *model.Trace, a *model.Analysis) (rows []threadRow, analyzed bool) {
	byKey := map[threadKey]*threadRow{}
	get := func(pid, tid int) *threadRow {
		k := threadKey{pid, tid}
		r := byKey[k]
		if r == nil {
			r = &threadRow{PID: pid, TID: tid}
			byKey[k] = r
		}
		return r
	}
	if t != nil {
		for _, th := range t.Threads {
			r := get(th.PID, th.TID)
			r.Name = th.Name
			r.OnCPU = th.OnCPU
			r.Started, r.Exited = th.Started, th.Exited
		}
		for _, s := range t.Syscalls {
			r := get(s.PID, s.TID)
			r.Syscalls += s.Count
			r.InSyscall += s.Total
		}
	}
	if a != nil && len(a.Threads) > 0 {
		analyzed = true
		for _, ts := range a.Threads {
			r := get(ts.PID, ts.TID)
			if ts.Name != "" {
				r.Name = ts.Name
			}
			r.Role, r.LoopWait, r.Evidence = ts.Role, ts.LoopWait, ts.Evidence
			r.OnCPU, r.Blocked, r.Idle = ts.OnCPU, ts.Blocked, ts.Idle
			r.Syscalls = ts.Syscalls
			r.Budget = ts.Budget
		}
	}
	rows = make([]threadRow, 0, len(byKey))
	for _, r := range byKey {
		rows = append(rows, *r)
	}
	slices.SortFunc(rows, func(x, y threadRow) int {
		return compareThreadKey(threadKey{x.PID, x.TID}, threadKey{y.PID, y.TID})
	})
	return rows, analyzed
}

// syscallTotal is one syscall summed over every traced thread, futex once
// per operation class.
type syscallTotal struct {
	model.SyscallStat // Name, Op and the sums; PID, TID and Nr unset
	Threads           int
}

// Avg is the mean latency, or zero when there were no calls.
func (s *syscallTotal) Avg() time.Duration {
	if s.Count == 0 {
		return 0
	}
	return s.Total / time.Duration(s.Count)
}

// Label names the syscall in a table: "futex (wait_bitset)" for a futex
// operation class.
func (s *syscallTotal) Label() string {
	if s.Op == "" {
		return s.Name
	}
	return s.Name + " (" + s.Op + ")"
}

// syscallTotals sums the per-thread aggregates by syscall name and futex
// operation, most total time first.
func syscallTotals(stats []model.SyscallStat) []*syscallTotal {
	type key struct{ name, op string }
	byName := map[key]*syscallTotal{}
	for i := range stats {
		s := &stats[i]
		k := key{syscallName(s.Name, s.Nr), s.Op}
		st := byName[k]
		if st == nil {
			st = &syscallTotal{SyscallStat: model.SyscallStat{Name: k.name, Op: k.op}}
			byName[k] = st
		}
		st.Add(s)
		st.Threads++
	}
	out := make([]*syscallTotal, 0, len(byName))
	for _, st := range byName {
		out = append(out, st)
	}
	slices.SortFunc(out, func(x, y *syscallTotal) int {
		if c := cmp.Compare(y.Total, x.Total); c != 0 {
			return c
		}
		if c := cmp.Compare(y.Count, x.Count); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(x.Name, y.Name), strings.Compare(x.Op, y.Op))
	})
	return out
}

// dropBreakdown lists the non-zero drop counters with their meaning.
func dropBreakdown(d model.Drops) []string {
	var parts []string
	add := func(n uint64, what string) {
		if n > 0 {
			parts = append(parts, what+": "+formatCount(n))
		}
	}
	add(d.RingBuffer, "ring buffer full")
	add(d.AggregateMap, "aggregate map full")
	add(d.InFlightMap, "in-flight map full")
	add(d.StackRead, "stack read failed")
	add(d.FDMap, "tracked-fd map full")
	add(d.Unparsed, "unparsed input")
	add(d.Backlog, "enrichment backlog full")
	add(d.StackBacklog, "stack copy let go in backlog")
	add(d.OverLimit, "over --max-events")
	return parts
}

// threadNames maps each known thread to its name, preferring the analyzer's.
func threadNames(t *model.Trace, a *model.Analysis) map[threadKey]string {
	names := map[threadKey]string{}
	if t != nil {
		for _, th := range t.Threads {
			if th.Name != "" {
				names[threadKey{th.PID, th.TID}] = th.Name
			}
		}
	}
	if a != nil {
		for _, ts := range a.Threads {
			if ts.Name != "" {
				names[threadKey{ts.PID, ts.TID}] = ts.Name
			}
		}
	}
	return names
}

// connPeer renders a connection's peer; inbound entries name the client
// host alone, since every client connection has its own ephemeral port.
func connPeer(c model.Connection) string {
	if c.Inbound && c.Peer.IP.IsValid() {
		return c.Peer.IP.String()
	}
	return c.Peer.String()
}

// connDirection is "inbound" for clients of ours, else "outbound".
func connDirection(c model.Connection) string {
	if c.Inbound {
		return "inbound"
	}
	return "outbound"
}

// sortConnections puts unexpected peers first (they are what the on-call
// engineer did not know about), then the busiest.
func sortConnections(conns []model.Connection) {
	slices.SortStableFunc(conns, func(x, y model.Connection) int {
		if x.Expected != y.Expected {
			if !x.Expected {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(connCount(y), connCount(x)); c != 0 {
			return c
		}
		return strings.Compare(x.Peer.String(), y.Peer.String())
	})
}
