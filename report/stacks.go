package report

import (
	"strconv"
	"strings"

	"github.com/snagtrace/snag/internal/model"
)

// The stack renderers (pprof, folded, flame) share one notion of a sample:
// every EvSyscall event weighs its Duration in blocked time and 1 in calls.
// Only events count; the exact per-thread aggregates (Trace.Syscalls) carry
// no stacks, so they are left to the tables rather than folded in as
// stackless roots that would double count the events.

// frameClass is what a rendered frame stands for; the flame graph colours by it.
type frameClass uint8

const (
	classProcess frameClass = iota
	classThread
	classNative
	classInterpreter
	classKernel
	classSyscall
	classUnknown // truncated stacks and addresses in no known object
	classAll     // the flame graph's base frame, the whole trace
)

// pathFrame is one frame of a sample's path, root first.
type pathFrame struct {
	name  string
	class frameClass
}

// blockedSample is one EvSyscall event with everything the renderers print.
type blockedSample struct {
	ev      *model.Event
	process string // "python3 (4242)"
	thread  string // "python3 (4242)"
	tname   string // thread name alone, for labels
	role    model.Role
	// path runs process, thread, outermost user frame … leaf user frame,
	// syscall, then any kernel frames the source captured.
	path []pathFrame
}

// blockedSamples returns the EvSyscall events of t as samples, in event order.
func blockedSamples(t *model.Trace, a *model.Analysis) []blockedSample {
	if t == nil {
		return nil
	}
	names := newNameIndex(t, a)
	// The same threads and frames recur in every sample; render each once.
	type threadKey struct{ pid, tid int }
	threads := map[threadKey]blockedSample{}
	frames := map[model.Frame]pathFrame{}
	var out []blockedSample
	for i := range t.Events {
		ev := &t.Events[i]
		if ev.Kind != model.EvSyscall {
			continue
		}
		s, ok := threads[threadKey{ev.PID, ev.TID}]
		if !ok {
			s.tname = names.thread(ev.PID, ev.TID)
			s.process = names.process(ev.PID)
			s.thread = sanitizeFrameName(s.tname + " (" + strconv.Itoa(ev.TID) + ")")
			s.role = names.roles[ev.TID]
			threads[threadKey{ev.PID, ev.TID}] = s
		}
		s.ev = ev
		s.path = samplePath(s.process, s.thread, stackSyscallName(ev), ev.Stack, frames)
		out = append(out, s)
	}
	return out
}

// samplePath lays a leaf-first stack out root first, with the syscall placed
// where user code enters the kernel: above the user frames and below any
// kernel frames.
// A non-nil cache memoizes rendered frames.
func samplePath(process, thread, syscall string, stack []model.Frame, cache map[model.Frame]pathFrame) []pathFrame {
	render := func(f model.Frame) pathFrame {
		if pf, ok := cache[f]; ok {
			return pf
		}
		pf := pathFrame{stackFrameName(f), frameClassOf(f)}
		if cache != nil {
			cache[f] = pf
		}
		return pf
	}
	path := make([]pathFrame, 0, len(stack)+3)
	path = append(path, pathFrame{process, classProcess}, pathFrame{thread, classThread})
	nkernel := 0
	for nkernel < len(stack) && stack[nkernel].Kind == model.FrameKernel {
		nkernel++
	}
	for i := len(stack) - 1; i >= nkernel; i-- {
		path = append(path, render(stack[i]))
	}
	path = append(path, pathFrame{sanitizeFrameName(syscall), classSyscall})
	for i := nkernel - 1; i >= 0; i-- {
		path = append(path, render(stack[i]))
	}
	return path
}

func frameClassOf(f model.Frame) frameClass {
	switch f.Kind {
	case model.FrameKernel:
		return classKernel
	case model.FrameInterpreter:
		return classInterpreter
	case model.FrameTruncated:
		return classUnknown
	}
	if f.Function == "" && f.Module == "" {
		return classUnknown
	}
	// A stripped library's frame is still native code of a known object:
	// which object made the call is the first thing the reader wants.
	return classNative
}

// stackFrameName renders a frame for folded lines and flame labels. Kernel frames
// get the "_[k]" suffix flamegraph.pl and speedscope colour as kernel code.
func stackFrameName(f model.Frame) string {
	if f.Kind == model.FrameKernel && f.Function != "" {
		return sanitizeFrameName(f.Function + "_[k]")
	}
	return sanitizeFrameName(f.String())
}

// stackSyscallName names an event's syscall, falling back to its number.
func stackSyscallName(ev *model.Event) string {
	if ev.Syscall != "" {
		return ev.Syscall
	}
	return "syscall_" + strconv.Itoa(ev.Nr)
}

// sanitizeFrameName keeps a name on one line and free of the folded format's
// separator, so any symbol survives a round trip through folded stacks.
func sanitizeFrameName(s string) string {
	if !strings.ContainsAny(s, ";\n\r\t") {
		if s == "" {
			return "[unknown]"
		}
		return s
	}
	s = strings.Map(func(r rune) rune {
		switch r {
		case ';':
			return ':'
		case '\n', '\r', '\t':
			return ' '
		}
		return r
	}, s)
	if strings.TrimSpace(s) == "" {
		return "[unknown]"
	}
	return s
}

// nameIndex resolves pids and tids to the names a reader recognises.
type nameIndex struct {
	procs   map[int]string
	threads map[int]string
	roles   map[int]model.Role
}

func newNameIndex(t *model.Trace, a *model.Analysis) nameIndex {
	n := nameIndex{procs: map[int]string{}, threads: map[int]string{}, roles: map[int]model.Role{}}
	if t.Target.PID != 0 && t.Target.Comm != "" {
		n.procs[t.Target.PID] = t.Target.Comm
	}
	for _, p := range t.Processes {
		if p.Comm != "" {
			n.procs[p.PID] = p.Comm
		}
	}
	for _, th := range t.Threads {
		if th.Name != "" {
			n.threads[th.TID] = th.Name
		}
	}
	if a != nil {
		for _, th := range a.Threads {
			if th.Role != "" {
				n.roles[th.TID] = th.Role
			}
			if _, ok := n.threads[th.TID]; !ok && th.Name != "" {
				n.threads[th.TID] = th.Name
			}
		}
	}
	return n
}

// process renders "comm (pid)".
func (n nameIndex) process(pid int) string {
	comm, ok := n.procs[pid]
	if !ok {
		comm = "pid"
	}
	return sanitizeFrameName(comm + " (" + strconv.Itoa(pid) + ")")
}

// thread returns a thread's name; threads without one carry their process's
// comm, as Linux names new threads.
func (n nameIndex) thread(pid, tid int) string {
	if name, ok := n.threads[tid]; ok {
		return name
	}
	if comm, ok := n.procs[pid]; ok {
		return comm
	}
	return "tid"
}
