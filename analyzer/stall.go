package analyzer

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/syscalls"
)

// Loop-stall severity. A stall group is high when it takes at least a fifth
// of the wall time (the loop runs at most 80% of the time), when its typical
// call takes 50ms or more (every request queued behind it waits that long),
// or when one call froze the loop for a second or more. It is medium from
// StallShare or a 100ms call, else low.
const (
	stallHighShare = 0.20
	stallHighP50   = 50 * time.Millisecond
	stallHighMax   = time.Second
	stallMedMax    = 100 * time.Millisecond
)

// stallEvidence says how sure a slow call is a blocking wait.
type stallEvidence int

const (
	notStall     stallEvidence = iota
	blocksAlways               // the call can only wait: count every call
	blocksIfSlow               // can be a fast non-blocking call: count it only when it took ≥ Threshold
)

// stallKind judges one call on an event-loop thread.
func (th *thread) stallKind(ev *model.Event) stallEvidence {
	nonBlockingSocket := ev.FDKnown && ev.NonBlock && ev.FDKind != model.FDFile
	switch syscalls.ClassOf(ev.Syscall) {
	case syscalls.ClassFutex:
		return notStall // lock waits are the lock-contention rule's
	case syscalls.ClassNoWait:
		return notStall // slow only because the thread was preempted: CPU, not a wait
	case syscalls.ClassRestart:
		// Resumes a call interrupted by a signal (or a ptrace stop, as
		// under strace); on a loop that is nearly always the loop's own
		// wait, and nothing says it was anything else.
		return notStall
	case syscalls.ClassReadiness:
		if th.isLoopEvent(ev) {
			return notStall
		}
		if syscalls.PollSet(ev.Syscall) && ev.PollTimeout == 0 {
			return notStall // a non-blocking readiness check
		}
		return blocksAlways
	case syscalls.ClassConnect:
		if ev.Ret == -einprogress || nonBlockingSocket {
			return notStall
		}
		if ev.FDKnown {
			return blocksAlways
		}
		return blocksIfSlow
	case syscalls.ClassSocketRecv, syscalls.ClassSocketSend, syscalls.ClassFileIO, syscalls.ClassAccept:
		switch {
		case nonBlockingSocket:
			return notStall
		case ev.FDKnown:
			return blocksAlways // a file, or a socket or pipe without O_NONBLOCK
		}
		return blocksIfSlow
	case syscalls.ClassSync, syscalls.ClassSleep, syscalls.ClassProcWait, syscalls.ClassLoopOther:
		return blocksAlways
	}
	return blocksIfSlow
}

type stallKey struct {
	tid     int
	syscall string
	peer    string
	path    string // the file, for file I/O with no peer
}

type stallGroup struct {
	stallKey
	th        *thread
	peer      model.Addr
	durs      []time.Duration
	count     uint64
	total     time.Duration
	max       time.Duration
	p50       time.Duration
	belowNote string // set when calls under the event threshold were added from aggregates
	certain   bool   // some call could only have been waiting (not merely slow)
	libTime   map[string]time.Duration
	rep       *model.Event // the longest call, preferring one with a stack, then a whole one
}

// repRank orders candidates for a group's representative call: a stack to
// show first, then a call seen whole rather than one begun before tracing.
func repRank(ev *model.Event) int {
	r := 0
	if len(ev.Stack) > 0 {
		r += 2
	}
	if !ev.Partial {
		r++
	}
	return r
}

func (g *stallGroup) add(ev *model.Event) {
	g.durs = append(g.durs, ev.Duration)
	g.count++
	g.total += ev.Duration
	g.max = max(g.max, ev.Duration)
	if lib := library(ev.Stack); lib != "" {
		g.libTime[lib] += ev.Duration
	}
	if g.rep == nil || repRank(ev) > repRank(g.rep) ||
		repRank(ev) == repRank(g.rep) && ev.Duration > g.rep.Duration {
		g.rep = ev
	}
}

// loopStalls finds time event-loop threads spent blocked outside their loop.
func (s *session) loopStalls() []model.Finding {
	thr := s.cfg.threshold()
	var out []model.Finding
	for _, th := range s.threads {
		if th.role != model.RoleEventLoop || th.netpoller {
			continue
		}
		groups := map[stallKey]*stallGroup{}
		group := func(name string, peer model.Addr, path string) *stallGroup {
			k := stallKey{th.tid, name, peer.String(), path}
			g := groups[k]
			if g == nil {
				g = &stallGroup{stallKey: k, th: th, peer: peer, libTime: map[string]time.Duration{}}
				groups[k] = g
			}
			return g
		}
		evCount := map[string]uint64{}
		evTime := map[string]time.Duration{}
		for _, ev := range th.events {
			evCount[ev.Syscall]++
			evTime[ev.Syscall] += ev.Duration
			kind := th.stallKind(ev)
			switch kind {
			case notStall:
				continue
			case blocksIfSlow:
				if ev.Duration < thr {
					continue
				}
			}
			path := ""
			if ev.Peer.IsZero() {
				path = s.files.path(ev.PID, ev.FD, ev.Time)
			}
			g := group(ev.Syscall, ev.Peer, path)
			g.add(ev)
			if kind == blocksAlways {
				g.certain = true
			}
		}
		for _, g := range groups {
			g.p50 = median(g.durs)
		}
		s.addBelowThreshold(th, groups, group, evCount, evTime)

		var threadTotal time.Duration
		for _, g := range groups {
			threadTotal += g.total
		}
		keys := make([]stallKey, 0, len(groups))
		for k := range groups {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b stallKey) int {
			if c := cmp.Compare(a.syscall, b.syscall); c != 0 {
				return c
			}
			if c := cmp.Compare(a.peer, b.peer); c != 0 {
				return c
			}
			return cmp.Compare(a.path, b.path)
		})
		for _, k := range keys {
			g := groups[k]
			sh := share(g.total, s.wall)
			if g.max < thr && sh < s.cfg.stallShare() {
				continue
			}
			if !g.certain && g.count < 2 && g.max < stallMedMax {
				// One slow call whose blocking mode is unknown (a log)
				// is as likely a thread preempted in a non-blocking call.
				continue
			}
			out = append(out, s.stallFinding(g, sh, threadTotal))
		}
	}
	return out
}

// addBelowThreshold adds calls shorter than the tracer's event threshold,
// known only from aggregates, for syscalls that can only block. Their peer
// is unknown, so they join the group of the events only when every event of
// that syscall landed in one group; otherwise they form their own group.
func (s *session) addBelowThreshold(th *thread, groups map[stallKey]*stallGroup,
	group func(string, model.Addr, string) *stallGroup, evCount map[string]uint64, evTime map[string]time.Duration) {
	for name, st := range th.stats {
		switch syscalls.ClassOf(name) {
		case syscalls.ClassReadiness:
			if name == th.loopWait {
				continue // the remainder of the loop's own wait is the loop
			}
		case syscalls.ClassSync, syscalls.ClassSleep, syscalls.ClassProcWait, syscalls.ClassLoopOther:
		default:
			continue // recv/read/connect may be fast non-blocking calls: events only
		}
		if st.Count <= evCount[name] || st.Total <= evTime[name] {
			continue
		}
		restN, rest := st.Count-evCount[name], st.Total-evTime[name]
		var only *stallGroup
		n := 0
		for _, g := range groups {
			if g.tid == th.tid && g.syscall == name {
				only = g
				n++
			}
		}
		if n == 1 && only.count == evCount[name] {
			// Every call of this syscall is in this group: use the exact
			// aggregate for it.
			only.count, only.total, only.max, only.p50 = st.Count, st.Total, st.Max, st.Quantile(0.5)
			only.belowNote = fmt.Sprintf("%d of the %d calls were shorter than the %s event threshold and their peer was not recorded",
				restN, st.Count, s.t.Threshold)
			continue
		}
		g := group(name, model.Addr{}, "")
		g.count += restN
		g.total += rest
		if len(g.durs) == 0 {
			g.p50 = st.Quantile(0.5)
			g.max = st.Max
			if s.t.Threshold > 0 {
				g.p50 = min(g.p50, s.t.Threshold)
				g.max = min(g.max, s.t.Threshold)
			}
		}
		g.belowNote = fmt.Sprintf("%d calls shorter than the %s event threshold; their peer and stack were not recorded", restN, s.t.Threshold)
	}
}

func (s *session) stallFinding(g *stallGroup, sh float64, threadTotal time.Duration) model.Finding {
	th := g.th
	sev := model.SeverityLow
	switch {
	case sh >= stallHighShare, g.p50 >= stallHighP50 && g.count >= 2, g.max >= stallHighMax:
		sev = model.SeverityHigh
	case sh >= s.cfg.stallShare(), g.max >= stallMedMax:
		sev = model.SeverityMedium
	}
	what := g.syscall
	service := ""
	switch {
	case !g.peer.IsZero():
		what += " on " + s.svc.label(g.peer)
		service = s.svc.of(g.peer)
	case g.path != "":
		what += " on " + g.path
	}
	lib := topLibrary(g.libTime)
	var stack []string
	hasStack := g.rep != nil && len(g.rep.Stack) > 0
	if hasStack {
		for _, f := range g.rep.Stack {
			stack = append(stack, f.String())
		}
	}
	rt := th.proc.runtime
	loop := strings.TrimPrefix(rt.LoopWords(), "the ")
	title := loop + " blocked in " + what
	if lib != "" {
		title += " from " + lib
	}
	detail := fmt.Sprintf("%s took %s of the trace (%s, %s in all, p50 %s, max %s) on loop thread %d (%s), which waits in %s; "+
		"in all this loop thread spent %s of the trace blocked outside its event loop: nothing else on it could run meanwhile",
		what, pct(sh), plural(g.count, "call"), model.FormatDuration(g.total), model.FormatDuration(g.p50), model.FormatDuration(g.max),
		th.tid, th.name, th.loopWait, pct(share(threadTotal, s.wall)))
	co := ""
	if hasStack {
		co = coroutine(g.rep.Stack)
		app := appFrame(g.rep.Stack)
		switch {
		case app != "" && co != "":
			detail += "; the call comes from " + app + ", in " + co
		case app != "":
			detail += "; the call comes from " + app
		case co != "":
			detail += "; the call ran in " + co
		}
	}
	if g.belowNote != "" {
		detail += " (" + g.belowNote + ")"
	}
	rtName := ""
	if !rt.IsZero() {
		rtName = rt.String()
	}
	return model.Finding{
		Kind: model.KindLoopStall, Severity: sev, Title: title,
		PID: th.pid, TID: th.tid, Thread: th.name, Syscall: g.syscall,
		Count: g.count, Total: g.total, P50: g.p50, Max: g.max, Share: sh,
		Peer: g.peer.String(), Service: service, Library: lib, Stack: stack, Path: g.path, Runtime: rtName,
		Coroutine: co, Detail: detail,
		Hint: stallHint(g.syscall, g.peer, g.path, service, lib, hasStack, rt),
	}
}

func topLibrary(libs map[string]time.Duration) string {
	best := ""
	for lib, d := range libs {
		if best == "" || d > libs[best] || d == libs[best] && lib < best {
			best = lib
		}
	}
	return best
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

func pct(f float64) string {
	switch {
	case f <= 0:
		return "0%"
	case f < 0.01:
		return "<1%"
	}
	return fmt.Sprintf("%.0f%%", f*100)
}
