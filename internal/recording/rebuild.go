package recording

import (
	"cmp"
	"slices"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/syscalls"
)

// rebuild derives the aggregates a missing final record would have held.
// A recording is made with a zero threshold, so every syscall is an event
// and the counts are exact; lifecycle events (fork, exec, exit) and the
// open and close events that accompany a call's own event are not counted
// as syscalls, and futex calls are split by operation as live. Thread
// names and CPU times not known at attach are lost, as are the drop
// counters.
func rebuild(t *model.Trace) {
	type key struct {
		pid, tid, nr int
		name, op     string
	}
	stats := map[key]*model.SyscallStat{}
	var order []key

	threads := slices.Clone(t.Threads)
	index := map[[2]int]int{}
	for i, th := range threads {
		index[[2]int{th.PID, th.TID}] = i
	}
	thread := func(pid, tid int) *model.Thread {
		k := [2]int{pid, tid}
		i, ok := index[k]
		if !ok {
			i = len(threads)
			index[k] = i
			threads = append(threads, model.Thread{PID: pid, TID: tid})
		}
		return &threads[i]
	}
	procs := slices.Clone(t.Processes)
	process := func(pid int) *model.Process {
		for i := range procs {
			if procs[i].PID == pid {
				return &procs[i]
			}
		}
		procs = append(procs, model.Process{PID: pid})
		return &procs[len(procs)-1]
	}

	var last uint64
	for i := range t.Events {
		e := &t.Events[i]
		last = max(last, e.Time)
		switch e.Kind {
		case model.EvFork:
			if e.Thread {
				th := thread(e.PID, e.ChildPID)
				th.Started = true
				if th.Name == "" {
					th.Name = e.Comm
				}
				continue
			}
			p := process(e.ChildPID)
			p.PPID = e.PID
			if p.Comm == "" {
				p.Comm = e.Comm
			}
			th := thread(e.ChildPID, e.ChildPID)
			th.Started = true
			if th.Name == "" {
				th.Name = e.Comm
			}
			continue
		case model.EvExec:
			if e.Comm != "" {
				process(e.PID).Comm = e.Comm
				thread(e.PID, e.TID).Name = e.Comm
			}
			continue
		case model.EvExit:
			thread(e.PID, e.TID).Exited = true
			if !e.Thread {
				p := process(e.PID)
				p.Exited = true
				p.ExitCode = e.ExitCode
			}
			continue
		case model.EvOpen, model.EvClose:
			// They come with the call's own event: counting them too
			// would count the call twice.
			thread(e.PID, e.TID)
			continue
		}
		thread(e.PID, e.TID)
		if e.Nr < 0 {
			continue
		}
		k := key{e.PID, e.TID, e.Nr, e.Syscall, ""}
		if e.Syscall == "futex" {
			k.op = syscalls.FutexOpOf(e.Args[1])
		}
		s := stats[k]
		if s == nil {
			s = &model.SyscallStat{PID: e.PID, TID: e.TID, Nr: e.Nr, Name: e.Syscall, Op: k.op}
			stats[k] = s
			order = append(order, k)
		}
		s.AddCall(e.Duration, e.Failed())
	}

	t.Syscalls = nil // empty, as a final record without syscalls reads
	for _, k := range order {
		t.Syscalls = append(t.Syscalls, *stats[k])
	}
	slices.SortFunc(t.Syscalls, func(a, b model.SyscallStat) int {
		return cmp.Or(cmp.Compare(a.PID, b.PID), cmp.Compare(a.TID, b.TID), cmp.Compare(a.Nr, b.Nr),
			cmp.Compare(a.Name, b.Name), cmp.Compare(a.Op, b.Op))
	})
	t.Threads = threads
	t.Processes = procs
	if last > t.StartNS {
		t.Duration = time.Duration(last - t.StartNS)
	}
}
