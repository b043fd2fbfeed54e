package report

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/syscalls"
)

// traceEvent is one record of the Chrome Trace Event format, which Perfetto
// and chrome://tracing both load. Timestamps are microseconds.
type traceEvent struct {
	Name  string   `json:"name"`
	Cat   string   `json:"cat,omitempty"`
	Ph    string   `json:"ph"`
	TS    float64  `json:"ts"`
	Dur   *float64 `json:"dur,omitempty"` // complete ("X") events only
	PID   int      `json:"pid"`
	TID   int      `json:"tid"`
	Scope string   `json:"s,omitempty"` // instant events: "t" thread, "p" process
	Args  any      `json:"args,omitempty"`
}

// sliceArgs are a syscall slice's details. A struct rather than a map:
// traces hold up to millions of slices and maps cost an allocation and a
// key sort each.
type sliceArgs struct {
	FD          int      `json:"fd"`
	Ret         int64    `json:"ret"`
	Peer        string   `json:"peer,omitempty"`
	Local       string   `json:"local,omitempty"`
	FDKind      string   `json:"fd_kind,omitempty"`
	NonBlock    *bool    `json:"nonblock,omitempty"` // only when read from the fd
	PollNFDs    *int     `json:"poll_nfds,omitempty"`
	PollFD      *int     `json:"poll_fd,omitempty"`
	PollTimeout *int64   `json:"poll_timeout,omitempty"`
	Stack       []string `json:"stack,omitempty"`
}

// Chrome trace phases.
const (
	phaseComplete = "X"
	phaseInstant  = "i"
	phaseMetadata = "M"
)

// Perfetto writes the trace as Chrome Trace Event JSON: one track per
// thread, a slice per recorded syscall, instants for process lifecycle and
// for each finding. Times are relative to the start of tracing.
//
// Only the events the trace kept are drawn (slow calls, connections,
// lifecycle); fast calls live in the aggregates, not on the timeline.
func Perfetto(w io.Writer, t *model.Trace, a *model.Analysis) error {
	if t == nil {
		return errors.New("perfetto report: no trace")
	}
	if a == nil {
		a = &model.Analysis{}
	}
	events := perfettoEvents(t, a)

	// One event per line: loads the same, and diffs and greps far better.
	// bufio keeps the first write error; Flush reports it.
	bw := bufio.NewWriter(w)
	bw.WriteString(`{"displayTimeUnit":"ms","otherData":`)
	other, err := json.Marshal(map[string]string{
		"schema": model.Schema, "source": t.Source, "target": strconv.Itoa(t.Target.PID),
	})
	if err != nil {
		return fmt.Errorf("perfetto report: %w", err)
	}
	bw.Write(other)
	bw.WriteString(",\"traceEvents\":[\n")
	for i := range events {
		b, err := json.Marshal(&events[i])
		if err != nil {
			return fmt.Errorf("perfetto report: event %d: %w", i, err)
		}
		bw.Write(b)
		if i < len(events)-1 {
			bw.WriteByte(',')
		}
		bw.WriteByte('\n')
	}
	bw.WriteString("]}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("perfetto report: write: %w", err)
	}
	return nil
}

func perfettoEvents(t *model.Trace, a *model.Analysis) []traceEvent {
	var body []traceEvent
	used := map[threadKey]bool{}
	for i := range t.Events {
		e := &t.Events[i]
		var ev traceEvent
		switch e.Kind {
		case model.EvSyscall, model.EvConnect, model.EvAccept, model.EvBind, model.EvSendTo:
			ev = syscallSlice(t, e)
		case model.EvFork, model.EvExec, model.EvExit:
			ev = lifecycleInstant(t, e)
		default:
			continue // a kind this renderer does not know yet
		}
		used[threadKey{e.PID, e.TID}] = true
		body = append(body, ev)
	}
	for i := range a.Findings {
		ev := findingInstant(t, &a.Findings[i])
		used[threadKey{ev.PID, ev.TID}] = true
		body = append(body, ev)
	}

	// Name every track: the known threads and any seen only in events.
	names := threadNames(t, a)
	for _, th := range t.Threads {
		used[threadKey{th.PID, th.TID}] = true
	}
	keys := make([]threadKey, 0, len(used))
	for k := range used {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareThreadKey)
	procNames := processNames(t)
	var meta []traceEvent
	lastPID, first := 0, true
	for _, k := range keys {
		if first || k.pid != lastPID {
			first, lastPID = false, k.pid
			name := procNames[k.pid]
			if name == "" {
				name = "pid " + strconv.Itoa(k.pid)
			} else {
				name += " " + strconv.Itoa(k.pid)
			}
			meta = append(meta, traceEvent{Name: "process_name", Ph: phaseMetadata, PID: k.pid, TID: k.pid,
				Args: map[string]any{"name": name}})
		}
		meta = append(meta, traceEvent{Name: "thread_name", Ph: phaseMetadata, PID: k.pid, TID: k.tid,
			Args: map[string]any{"name": threadLabel(names[k], k.tid)}})
	}
	return append(meta, body...)
}

// processNames maps each traced pid to its comm.
func processNames(t *model.Trace) map[int]string {
	m := map[int]string{}
	if t.Target.Comm != "" {
		m[t.Target.PID] = t.Target.Comm
	}
	for _, p := range t.Processes {
		if p.Comm != "" {
			m[p.PID] = p.Comm
		}
	}
	return m
}

// usSince converts an event-clock time to microseconds since tracing
// began, clamped at 0: a call that began before the attach is drawn from
// the attach on.
func usSince(t *model.Trace, ns uint64) float64 {
	if ns <= t.StartNS {
		return 0
	}
	return float64(ns-t.StartNS) / 1e3
}

// eventBegin is when a syscall event began on the event clock: Time is its
// return.
func eventBegin(e *model.Event) uint64 {
	d := uint64(max(e.Duration, 0))
	if d > e.Time {
		return 0
	}
	return e.Time - d
}

func syscallSlice(t *model.Trace, e *model.Event) traceEvent {
	name := syscallName(e.Syscall, e.Nr)
	begin := usSince(t, eventBegin(e))
	dur := max(usSince(t, e.Time)-begin, 0)
	args := &sliceArgs{FD: e.FD, Ret: e.Ret, Peer: e.Peer.String(), Local: e.Local.String()}
	if e.FDKnown {
		args.FDKind = e.FDKind.String()
		args.NonBlock = &e.NonBlock
	}
	if syscalls.PollSet(name) || e.PollNFDs > 0 { // a pollfd array or fd sets: their count and timeout
		args.PollNFDs, args.PollTimeout = &e.PollNFDs, &e.PollTimeout
		if e.PollNFDs > 0 {
			args.PollFD = &e.PollFD
		}
	}
	if len(e.Stack) > 0 {
		args.Stack = make([]string, len(e.Stack))
		for i, f := range e.Stack {
			args.Stack[i] = f.String()
		}
	}
	return traceEvent{Name: name, Cat: e.Kind.String(), Ph: phaseComplete, TS: begin, Dur: &dur,
		PID: e.PID, TID: e.TID, Args: args}
}

func lifecycleInstant(t *model.Trace, e *model.Event) traceEvent {
	args := map[string]any{}
	ev := traceEvent{Cat: "process", Ph: phaseInstant, Scope: "t", TS: usSince(t, e.Time), PID: e.PID, TID: e.TID,
		Args: args}
	what := "process"
	if e.Thread {
		what = "thread"
	}
	switch e.Kind {
	case model.EvFork:
		ev.Name = "new " + what + " " + strconv.Itoa(e.ChildPID)
		args["child"] = e.ChildPID
		args["thread"] = e.Thread
		if e.Comm != "" {
			args["comm"] = e.Comm
		}
	case model.EvExec:
		ev.Name = "exec " + path.Base(e.Filename)
		if e.Filename == "" {
			ev.Name = "exec"
		}
		args["filename"] = e.Filename
		args["comm"] = e.Comm
	case model.EvExit:
		ev.Name = what + " exit " + strconv.Itoa(e.ExitCode)
		args["exit_code"] = e.ExitCode
		args["thread"] = e.Thread
	}
	return ev
}

// findingInstant marks a finding on its thread's track at the start of the
// first recorded event it is about, or at 0 when no event matches.
func findingInstant(t *model.Trace, f *model.Finding) traceEvent {
	args := map[string]any{"kind": f.Kind, "severity": f.Severity.String()}
	for k, v := range map[string]string{
		"syscall": f.Syscall, "peer": f.Peer, "service": f.Service, "library": f.Library,
		"detail": f.Detail, "hint": f.Hint,
	} {
		if v != "" {
			args[k] = v
		}
	}
	if f.Count > 0 {
		args["count"] = f.Count
	}
	if f.Total > 0 {
		args["total"] = model.FormatDuration(f.Total)
	}
	title := f.Title
	if title == "" {
		title = f.Kind
	}
	ev := traceEvent{Name: "[" + f.Severity.String() + "] " + title, Cat: "finding", Ph: phaseInstant,
		Scope: "t", PID: f.PID, TID: f.TID, Args: args}
	if e := firstMatch(t, f); e != nil {
		ev.TS = usSince(t, eventBegin(e))
		ev.PID, ev.TID = e.PID, e.TID
		return ev
	}
	if ev.TID == 0 {
		// About the process as a whole: mark it on its main thread.
		if ev.PID == 0 {
			ev.PID = t.Target.PID
		}
		ev.TID, ev.Scope = ev.PID, "p"
	} else if ev.PID == 0 {
		ev.PID = pidOf(t, f.TID)
	}
	return ev
}

// firstMatch finds the earliest syscall event on the finding's thread, of
// its syscall and with its peer, as far as the finding names them.
func firstMatch(t *model.Trace, f *model.Finding) *model.Event {
	if f.TID == 0 && f.Syscall == "" && f.Peer == "" {
		return nil // nothing to match on; any event would be a guess
	}
	var best *model.Event
	for i := range t.Events {
		e := &t.Events[i]
		switch e.Kind {
		case model.EvSyscall, model.EvConnect, model.EvAccept, model.EvBind, model.EvSendTo:
		default:
			continue
		}
		if (f.TID != 0 && e.TID != f.TID) || (f.PID != 0 && e.PID != f.PID) ||
			(f.Syscall != "" && syscallName(e.Syscall, e.Nr) != f.Syscall) ||
			(f.Peer != "" && e.Peer.String() != f.Peer) {
			continue
		}
		if best == nil || eventBegin(e) < eventBegin(best) {
			best = e
		}
	}
	return best
}

// pidOf finds the process of a thread, assuming a main thread when unknown.
func pidOf(t *model.Trace, tid int) int {
	for _, th := range t.Threads {
		if th.TID == tid {
			return th.PID
		}
	}
	for _, s := range t.Syscalls {
		if s.TID == tid {
			return s.PID
		}
	}
	return tid
}
