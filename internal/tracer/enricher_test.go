package tracer

import (
	"os"
	"testing"

	"github.com/snagtrace/snag/bpf"
	"github.com/snagtrace/snag/internal/cpython"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/procfs"
)

// stubFrames records what the enricher asked of the stack resolver.
type stubFrames struct {
	resolved, execs, forgot []int
}

func (s *stubFrames) resolve(pid int, rec *bpf.Record) []model.Frame {
	s.resolved = append(s.resolved, pid)
	return []model.Frame{{Function: "blocking_call"}}
}
func (s *stubFrames) addPython(*cpython.Process) {}
func (s *stubFrames) exec(pid int)               { s.execs = append(s.execs, pid) }
func (s *stubFrames) forget(pid int)             { s.forgot = append(s.forgot, pid) }

// The enricher's facts come from the records alone, and from /proc on
// exec: this process stands in for the one that exec'd.
func TestEnricherFollowsProcesses(t *testing.T) {
	self := os.Getpid()
	const parent, child, thread = 1, 2, 3 // pids /proc knows nothing of
	tr := &model.Trace{Target: model.Target{PID: self}}
	e := newEnricher(procfs.Default, tr)
	frames := &stubFrames{}
	e.stacks = frames
	tr.Processes = []model.Process{{PID: parent, Runtime: model.Runtime{Name: model.RuntimeCPython}}, {PID: self}}
	e.live[parent], e.live[self] = true, true

	for _, ev := range []model.Event{
		{Kind: model.EvFork, PID: parent, TID: parent, ChildPID: child, Comm: "worker"},
		{Kind: model.EvFork, PID: parent, TID: parent, ChildPID: thread, Thread: true, Comm: "pool"},
		{Kind: model.EvExec, PID: self, TID: self, Comm: "newimage", Filename: "/usr/bin/newimage"},
		{Kind: model.EvExit, PID: child, TID: child, ExitCode: 3},
	} {
		got := e.enrich(&bpf.Record{Event: ev})
		if got.Kind != ev.Kind || got.PID != ev.PID {
			t.Errorf("enrich changed the event %+v into %+v", ev, *got)
		}
	}
	proc := func(pid int) model.Process {
		if p := e.process(pid); p != nil {
			return *p
		}
		t.Fatalf("no process %d in %+v", pid, tr.Processes)
		return model.Process{}
	}
	if c := proc(child); c.PPID != parent || c.Comm != "worker" || c.Runtime.Name != model.RuntimeCPython || !c.Exited || c.ExitCode != 3 {
		t.Errorf("forked child %+v: want its parent, name, the parent's runtime and its exit", c)
	}
	if e.process(thread) != nil || e.threads[thread] == nil || e.threads[thread].Name != "pool" || !e.threads[thread].Started {
		t.Errorf("a new thread is a thread, not a process: %+v, %+v", e.process(thread), e.threads[thread])
	}
	if p := proc(self); p.Comm != "newimage" || p.Exe != "/usr/bin/newimage" || p.Runtime.Name != model.RuntimeGo {
		t.Errorf("exec'd process %+v: want its new name and image, and the runtime read from /proc", p)
	}
	if tr.Target.Comm != "newimage" {
		t.Errorf("target %+v: the exec renames it", tr.Target)
	}
	if e.live[child] || !e.live[parent] {
		t.Errorf("live %v: the exited child should be gone, the parent not", e.live)
	}
	if len(frames.execs) != 1 || frames.execs[0] != self || len(frames.forgot) != 1 || frames.forgot[0] != child {
		t.Errorf("stacks told of execs %v and exits %v; want [%d] and [%d]", frames.execs, frames.forgot, self, child)
	}
}

func TestEnricherResolvesStacksOfSlowCalls(t *testing.T) {
	tr := &model.Trace{}
	e := newEnricher(procfs.Default, tr)
	frames := &stubFrames{}
	e.stacks = frames
	peer := model.Addr{Family: model.FamilyInet, Port: 3306}
	plain := e.enrich(&bpf.Record{Event: model.Event{Kind: model.EvSyscall, PID: 7, TID: 7}})
	slow := e.enrich(&bpf.Record{Event: model.Event{Kind: model.EvSyscall, PID: 7, TID: 7}, Stack: []byte{1}})
	fp := e.enrich(&bpf.Record{Event: model.Event{Kind: model.EvConnect, PID: 8, TID: 8, Peer: peer}, FPStack: []uint64{0x1000}})
	if plain.Stack != nil || len(slow.Stack) != 1 || len(fp.Stack) != 1 {
		t.Errorf("stacks %v, %v, %v: want none without a stack copy, frames with one", plain.Stack, slow.Stack, fp.Stack)
	}
	if len(frames.resolved) != 2 {
		t.Errorf("resolved %v, want the two calls with stacks", frames.resolved)
	}
	if !e.peers[peer] {
		t.Errorf("peers %v: a connect names its peer for the listener lookup", e.peers)
	}
}

func TestEnricherNotesAreBounded(t *testing.T) {
	e := newEnricher(procfs.Default, &model.Trace{})
	for range 3 * maxNotes {
		e.note("x")
	}
	if len(e.notes) != maxNotes+1 || e.notes[maxNotes] != "more notes left out" {
		t.Errorf("%d notes, last %q", len(e.notes), e.notes[len(e.notes)-1])
	}
}
