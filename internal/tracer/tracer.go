// Package tracer runs one tracing session: it checks the target, loads and
// attaches the BPF programs, snapshots what the process was doing at the
// attach, streams events until the window ends and assembles the model.
package tracer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/snagtrace/snag/bpf"
	"github.com/snagtrace/snag/internal/cpython"
	"github.com/snagtrace/snag/internal/features"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/procfs"
	"github.com/snagtrace/snag/internal/syscalls"
)

// Config describes one session.
type Config struct {
	PIDs        []int    // attach to these processes
	Command     []string // or run this command (snag run)
	FollowForks bool
	Duration    time.Duration // 0: until ctx ends or every target exits
	Threshold   time.Duration // 0 with AllEvents: every syscall is an event
	AllEvents   bool
	StackBytes  int
	RingBytes   int
	MaxSlots    int

	// KeepEvents keeps events in the returned Trace (live reports need
	// them; a recording streams them through OnEvent instead), at most
	// MaxEvents of them (0: no limit); the rest are counted as dropped.
	KeepEvents bool
	MaxEvents  int
	OnEvent    func(*model.Event) error
	// OnStart is called once the programs are attached, with the trace
	// header filled in (target, sockets and blocked state at attach).
	OnStart func(*model.Trace) error
	Status  io.Writer // one live status line per second when non-nil

	Stdin          io.Reader // for Command
	Stdout, Stderr io.Writer
	Proc           procfs.FS
}

// ErrNoProcess marks a target that does not exist; the CLI exits 2.
var ErrNoProcess = errors.New("no such process")

// session is one running trace.
type session struct {
	cfg     Config
	tr      *bpf.Tracer
	trace   *model.Trace
	threads map[int]*model.Thread
	cpu0    map[int]time.Duration
	live    map[int]bool // traced processes still alive
	child   *child
	stacks  *stackResolver
	queues  *queueSampler // nil when the namespace's sockets cannot be read
	events  uint64
	// kept holds the events for the trace in chunks of eventChunk, joined
	// once at the end; kept counts them.
	chunks [][]model.Event
	kept   int
	// overLimit counts events past Config.MaxEvents.
	overLimit uint64
	// peers are the distinct peers events named, for the listener lookup
	// at the end (at most maxLocalPeers).
	peers map[model.Addr]bool
	notes []string // for Trace.Notes
	// selfCPU0 is snag's own CPU time at the attach (Trace.Cost).
	selfCPU0 time.Duration
	// pyPending are processes just exec'd whose interpreter library is
	// not mapped yet (python3.X over libpython3.X.so): pid → first try.
	pyPending map[int]time.Time
	pyRetried time.Time
	pyNoted   map[string]bool
}

// maxNotes bounds the notes of one trace; the rest are counted.
const maxNotes = 20

// note records what could not be read or done, for the report.
func (s *session) note(n string) {
	slog.Debug("note", "note", n)
	switch {
	case len(s.notes) < maxNotes:
		s.notes = append(s.notes, n)
	case len(s.notes) == maxNotes:
		s.notes = append(s.notes, "more notes left out")
	}
}

// Run traces until the window ends and returns the assembled trace. A
// target that exits mid-trace still yields everything seen until then.
func Run(ctx context.Context, cfg Config) (*model.Trace, error) {
	if cfg.Proc.Root == "" {
		cfg.Proc = procfs.Default
	}
	if len(cfg.PIDs) == 0 && len(cfg.Command) == 0 {
		return nil, errors.New("nothing to trace: give -p PID or a command")
	}
	for _, pid := range cfg.PIDs {
		if pid <= 0 || !cfg.Proc.Exists(pid) {
			return nil, fmt.Errorf("attach to pid %d: %w", pid, ErrNoProcess)
		}
		if z, _ := cfg.Proc.Zombie(pid); z {
			// It would be traced for the whole window without a call.
			ppid, _ := cfg.Proc.PPID(pid)
			return nil, fmt.Errorf("attach to pid %d: it has exited and waits for its parent (pid %d) to reap it: %w", pid, ppid, ErrNoProcess)
		}
	}
	if err := features.Require(); err != nil {
		return nil, err
	}
	s := &session{
		cfg:       cfg,
		threads:   map[int]*model.Thread{},
		cpu0:      map[int]time.Duration{},
		live:      map[int]bool{},
		pyPending: map[int]time.Time{},
		pyNoted:   map[string]bool{},
	}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	defer s.close()
	if err := s.loop(ctx); err != nil {
		return nil, err
	}
	return s.finish()
}

// start attaches. Ctrl-C during it (ctx done) cuts the per-process work
// short; the trace then ends at once with what the attach saw.
func (s *session) start(ctx context.Context) error {
	opts := bpf.Options{
		PIDs:        s.cfg.PIDs,
		FollowForks: s.cfg.FollowForks,
		Threshold:   s.cfg.Threshold,
		// Stacks stay behind the threshold even when every call is an event.
		StackThreshold: s.cfg.Threshold,
		StackBytes:     s.cfg.StackBytes,
		RingBytes:      s.cfg.RingBytes,
		MaxSlots:       s.cfg.MaxSlots,
	}
	if s.cfg.AllEvents {
		opts.Threshold = 0
	}
	if len(s.cfg.Command) > 0 {
		c, err := startChild(s.cfg)
		if err != nil {
			return err
		}
		s.child = c
		opts.PIDs = nil
		opts.ArmedPID = c.pid
	} else if s.cfg.FollowForks {
		// Processes already below the targets are part of the traced set too.
		opts.PIDs = withDescendants(s.cfg.Proc, s.cfg.PIDs)
	}

	// Python processes are known before the attach, so that the first slow
	// returns (calls in progress at the attach) already carry their frames.
	if opts.StackBytes > 0 {
		for _, pid := range opts.PIDs {
			if ctx.Err() != nil {
				break
			}
			if p, err := s.detectPython(pid); err == nil {
				opts.Python = append(opts.Python, p)
			} else {
				s.notePython(err)
			}
		}
	}
	tr, err := bpf.Load(opts)
	if err != nil {
		if s.child != nil {
			s.child.kill()
		}
		return classifyLoadError(err)
	}
	s.tr = tr
	s.stacks = newStackResolver(s.cfg.Proc, s.note)
	for _, p := range opts.Python {
		s.stacks.py.Add(p)
	}

	s.trace = &model.Trace{
		Source:    "ebpf",
		Arch:      syscalls.Native(),
		Start:     time.Now(),
		StartNS:   tr.StartNS(),
		Threshold: opts.Threshold,
	}
	s.selfCPU0, _, _ = selfUsage()
	if s.child != nil {
		// Released only now: its first syscall after exec is traced.
		if err := s.child.release(); err != nil {
			return err
		}
		s.live[s.child.pid] = true
		s.trace.Target = model.Target{PID: s.child.pid, Cmdline: s.cfg.Command, Comm: filepath.Base(s.cfg.Command[0])}
		s.trace.Processes = append(s.trace.Processes, model.Process{PID: s.child.pid, PPID: unix.Getpid(), Cmdline: s.cfg.Command})
	} else {
		for _, pid := range opts.PIDs {
			s.live[pid] = true
			if ctx.Err() == nil {
				s.snapshot(pid)
			}
		}
		if s.cfg.FollowForks {
			opts.PIDs = append(opts.PIDs, s.followLate(opts.PIDs)...)
		}
		s.trace.Target = targetOf(s.cfg.Proc, s.cfg.PIDs[0])
	}
	s.startQueues(opts.PIDs)
	slog.Debug("attached", "pids", opts.PIDs, "armed", opts.ArmedPID, "threshold", opts.Threshold,
		"stack_bytes", opts.StackBytes, "threads", len(s.threads), "sockets", len(s.trace.Sockets))
	if s.cfg.OnStart != nil {
		return s.cfg.OnStart(s.trace)
	}
	return nil
}

// snapshot records what an already running process looks like at attach:
// its runtime, its threads, their CPU time so far, the syscall each is
// blocked in, its open sockets and files, and what its epoll fds watch.
func (s *session) snapshot(pid int) {
	p := s.cfg.Proc
	proc := model.Process{PID: pid}
	proc.PPID, _ = p.PPID(pid)
	proc.Comm, _ = p.Comm(pid)
	proc.Cmdline, _ = p.Cmdline(pid)
	proc.Exe, _ = p.Exe(pid)
	proc.Runtime = s.detectRuntime(pid)
	s.trace.Processes = append(s.trace.Processes, proc)

	tids, _ := p.Tasks(pid)
	for _, tid := range tids {
		th := s.thread(pid, tid)
		if name, err := p.ThreadName(pid, tid); err == nil {
			th.Name = name
		}
		if cpu, err := p.TaskCPU(pid, tid); err == nil {
			s.cpu0[tid] = cpu
		}
		if b, err := p.Blocked(pid, tid); err == nil && !b.Running && b.Nr >= 0 {
			if syscalls.Is(b.Syscall, syscalls.ArgPollFDs) && b.Args[1] > 0 {
				if fd, err := p.PollFD(pid, b.Args[0]); err == nil {
					b.FD = fd
				}
			}
			s.trace.Blocked = append(s.trace.Blocked, b)
		}
	}
	socks, _ := p.Sockets(pid)
	_ = p.ResolveUnixPeers(pid, socks) // best effort: unix peers need netlink in our namespace
	s.trace.Sockets = append(s.trace.Sockets, socks...)
	procfs.JoinPeers(s.trace.Blocked, socks)
	s.fdFacts(pid, socks, false)
}

// detectPython finds a CPython whose frames can be read in pid.
func (s *session) detectPython(pid int) (*cpython.Process, error) {
	p, err := cpython.Detect(s.cfg.Proc, pid)
	if err != nil {
		return nil, err
	}
	slog.Debug("python frames", "pid", pid, "version", p.Version, "patch", p.Patch, "runtime", p.Runtime)
	return p, nil
}

// notePython says once why a CPython's frames cannot be read; anything
// else is quietly not Python.
func (s *session) notePython(err error) {
	if errors.Is(err, cpython.ErrNotPython) {
		return
	}
	n := fmt.Sprintf("no Python frames: %v", err)
	if !s.pyNoted[n] {
		s.pyNoted[n] = true
		s.note(n)
	}
}

// pyPendingFor is how long a process may take to map its libpython.
const pyPendingFor = 5 * time.Second

// watchPython has the kernel side walk the Python frames of a process that
// appeared (fork) or changed (exec) while tracing.
func (s *session) watchPython(pid int) {
	if s.cfg.StackBytes == 0 {
		return
	}
	p, err := s.detectPython(pid)
	if errors.Is(err, cpython.ErrNoRuntime) {
		// At exec the dynamic loader has yet to map libpython: try again.
		if first, ok := s.pyPending[pid]; !ok {
			s.pyPending[pid] = time.Now()
		} else if time.Since(first) > pyPendingFor {
			delete(s.pyPending, pid)
			s.notePython(err)
		}
		return
	}
	delete(s.pyPending, pid)
	if err != nil {
		s.notePython(err)
		return
	}
	if err := s.tr.TracePython(pid, p.Runtime, p.Off); err != nil {
		slog.Debug("no python frames", "pid", pid, "error", err)
		return
	}
	s.stacks.py.Add(p)
}

// retryPython looks again, every few milliseconds, at processes whose
// libpython was not mapped yet.
func (s *session) retryPython() {
	if len(s.pyPending) == 0 || time.Since(s.pyRetried) < pyRetryEvery {
		return
	}
	s.pyRetried = time.Now()
	for pid := range s.pyPending {
		if !s.cfg.Proc.Exists(pid) {
			delete(s.pyPending, pid)
			continue
		}
		s.watchPython(pid)
	}
}

// pyRetryEvery spaces the retries: the loader maps libpython within a
// few milliseconds of the exec.
const pyRetryEvery = 5 * time.Millisecond

func (s *session) thread(pid, tid int) *model.Thread {
	th, ok := s.threads[tid]
	if !ok {
		th = &model.Thread{PID: pid, TID: tid}
		s.threads[tid] = th
	}
	return th
}

const pollInterval = 100 * time.Millisecond

func (s *session) loop(ctx context.Context) error {
	var deadline <-chan time.Time
	if s.cfg.Duration > 0 {
		timer := time.NewTimer(s.cfg.Duration)
		defer timer.Stop()
		deadline = timer.C
	}
	lastStatus, lastAlive := time.Now(), time.Now()
	var rec bpf.Record
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-deadline:
			return nil
		default:
		}
		err := s.tr.Read(&rec, time.Now().Add(pollInterval))
		switch {
		case err == nil:
			if err := s.handle(&rec); err != nil {
				return err
			}
		case errors.Is(err, bpf.ErrTimeout):
		default:
			return fmt.Errorf("read events: %w", err)
		}
		s.retryPython()
		if time.Since(lastAlive) >= time.Second {
			lastAlive = time.Now()
			s.reap()
		}
		if len(s.live) == 0 {
			return nil // every target exited
		}
		if s.cfg.Status != nil && time.Since(lastStatus) >= time.Second {
			lastStatus = time.Now()
			s.status()
		}
	}
}

// reap notices targets that died without an exit event (one can be lost
// when the ring buffer is full).
func (s *session) reap() {
	for pid := range s.live {
		if !s.cfg.Proc.Exists(pid) {
			delete(s.live, pid)
		} else if s.child != nil && pid == s.child.pid && s.child.exited() {
			delete(s.live, pid)
		}
	}
}

func (s *session) handle(rec *bpf.Record) error {
	ev := &rec.Event
	s.events++
	switch ev.Kind {
	case model.EvFork:
		th := s.thread(ev.PID, ev.ChildPID)
		if !ev.Thread {
			th.PID = ev.ChildPID
			s.live[ev.ChildPID] = true
			s.queues.add(ev.ChildPID)
			s.watchPython(ev.ChildPID)
			child := model.Process{PID: ev.ChildPID, PPID: ev.PID, Comm: ev.Comm}
			if parent := s.process(ev.PID); parent != nil {
				// A fork runs its parent's image until it execs.
				child.Runtime = parent.Runtime
			}
			s.trace.Processes = append(s.trace.Processes, child)
		}
		th.Name = ev.Comm
		th.Started = true
	case model.EvExec:
		s.watchPython(ev.PID)
		s.stacks.exec(ev.PID)
		s.thread(ev.PID, ev.TID).Name = ev.Comm
		// Read now: a short-lived command is gone by the end.
		rt := s.detectRuntime(ev.PID)
		for i := range s.trace.Processes {
			if p := &s.trace.Processes[i]; p.PID == ev.PID {
				p.Comm, p.Exe, p.Runtime = ev.Comm, ev.Filename, rt
			}
		}
		if ev.PID == s.trace.Target.PID {
			s.trace.Target.Comm, s.trace.Target.Exe = ev.Comm, ev.Filename
		}
	case model.EvExit:
		th := s.thread(ev.PID, ev.TID)
		th.Exited = true
		if th.Name == "" {
			th.Name = ev.Comm
		}
		if !ev.Thread {
			delete(s.live, ev.PID)
			s.stacks.forget(ev.PID)
			for i := range s.trace.Processes {
				if p := &s.trace.Processes[i]; p.PID == ev.PID {
					p.Exited, p.ExitCode, p.Signal = true, ev.ExitCode, ev.Signal
				}
			}
		}
	default:
		if len(rec.Stack) > 0 || len(rec.FPStack) > 0 {
			ev.Stack = s.stacks.resolve(ev.PID, rec)
		}
		if ev.Kind == model.EvConnect {
			// Connections open at the attach are in Sockets; the
			// calls on connections made since follow a connect.
			s.notePeer(ev.Peer)
		}
	}
	if s.cfg.OnEvent != nil {
		if err := s.cfg.OnEvent(ev); err != nil {
			return err
		}
	}
	if s.cfg.KeepEvents {
		if s.cfg.MaxEvents > 0 && s.kept >= s.cfg.MaxEvents {
			s.overLimit++
		} else {
			s.keep(ev)
		}
	}
	return nil
}

// eventChunk is how many events a chunk holds: some 1.7 MiB.
const eventChunk = 4096

// keep stores a copy of ev for the trace. One growing slice would copy
// every event kept so far each time it grew, five times the events'
// size in all, and hold the old and the new copy at once; chunks are
// written once and joined once.
func (s *session) keep(ev *model.Event) {
	if n := len(s.chunks); n == 0 || len(s.chunks[n-1]) == eventChunk {
		s.chunks = append(s.chunks, make([]model.Event, 0, eventChunk))
	}
	last := &s.chunks[len(s.chunks)-1]
	*last = append(*last, *ev)
	s.kept++
}

// joinEvents moves the kept events into the trace, letting each chunk
// go as soon as it is copied.
func (s *session) joinEvents() {
	if s.kept == 0 {
		return
	}
	evs := make([]model.Event, 0, s.kept)
	for i := range s.chunks {
		evs = append(evs, s.chunks[i]...)
		s.chunks[i] = nil
	}
	s.chunks, s.kept = nil, 0
	if len(s.trace.Events) == 0 {
		s.trace.Events = evs
	} else {
		s.trace.Events = append(s.trace.Events, evs...)
	}
}

func (s *session) status() {
	calls, _ := s.tr.Calls()
	d, _ := s.tr.Drops()
	fmt.Fprintf(s.cfg.Status, "\r\033[Ksnag: %s elapsed, %d syscalls, %d events, %d dropped",
		time.Since(s.trace.Start).Round(time.Second), calls, s.events, d.Total())
}

func (s *session) finish() (*model.Trace, error) {
	s.tr.Detach()
	end := time.Now()
	s.trace.ListenQueues, s.trace.TCPListen = s.queues.stop()
	// Drain what the programs wrote before they were detached.
	var rec bpf.Record
	for {
		err := s.tr.Read(&rec, time.Now().Add(20*time.Millisecond))
		if err != nil {
			break
		}
		if err := s.handle(&rec); err != nil {
			return nil, err
		}
	}
	// Nothing more will be read: give back the ring buffer's mapping
	// before the events are joined and the report is built.
	if err := s.tr.CloseReader(); err != nil {
		slog.Debug("close ring buffer reader", "error", err)
	}
	if s.cfg.Status != nil {
		fmt.Fprint(s.cfg.Status, "\r\033[K")
	}
	s.endFacts()
	s.joinEvents()
	// The chunks are garbage now, as big as the events: collected before
	// the aggregates and the analysis allocate, their pages are reused
	// instead of new ones taken (2,000 threads: some 25 MiB).
	runtime.GC()
	t := s.trace
	t.Duration = end.Sub(t.Start)
	stats, err := s.tr.Aggregates()
	if err != nil {
		return nil, err
	}
	sort.Slice(stats, func(i, j int) bool {
		a, b := stats[i], stats[j]
		if a.TID != b.TID {
			return a.TID < b.TID
		}
		if a.Nr != b.Nr {
			return a.Nr < b.Nr
		}
		return a.Op < b.Op // a thread's futex aggregates, one per class
	})
	t.Syscalls = stats
	if t.Drops, err = s.tr.Drops(); err != nil {
		return nil, err
	}
	t.Drops.OverLimit = s.overLimit
	t.Cost = s.cost(stats)
	t.Notes = append(t.Notes, s.notes...)
	slog.Debug("detached", "duration", t.Duration, "events", s.events, "syscall_slots", len(stats), "drops", t.Drops)
	for _, st := range stats {
		s.thread(st.PID, st.TID)
	}
	for tid, th := range s.threads {
		if th.Exited {
			continue
		}
		if th.Name == "" {
			th.Name, _ = s.cfg.Proc.ThreadName(th.PID, tid)
		}
		if cpu, err := s.cfg.Proc.TaskCPU(th.PID, tid); err == nil {
			th.OnCPU = cpu - s.cpu0[tid]
		}
	}
	t.Threads = t.Threads[:0]
	for _, th := range s.threads {
		t.Threads = append(t.Threads, *th)
	}
	sort.Slice(t.Threads, func(i, j int) bool { return t.Threads[i].TID < t.Threads[j].TID })
	if s.child != nil {
		s.child.stop()
		// The exit event may have been dropped; the parent's wait is exact.
		for i := range t.Processes {
			if p := &t.Processes[i]; p.PID == s.child.pid {
				p.Exited, p.ExitCode = true, s.child.exitCode()
			}
		}
	}
	return t, nil
}

func (s *session) close() {
	s.queues.stop()
	if s.tr != nil {
		s.tr.Close()
	}
	if s.child != nil {
		s.child.stop()
	}
}

func targetOf(p procfs.FS, pid int) model.Target {
	t := model.Target{PID: pid}
	t.Comm, _ = p.Comm(pid)
	t.Cmdline, _ = p.Cmdline(pid)
	t.Exe, _ = p.Exe(pid)
	return t
}

// classifyLoadError turns permission failures into the exit-3 error that
// says what is missing.
func classifyLoadError(err error) error {
	var verr *ebpf.VerifierError
	if errors.As(err, &verr) {
		return err // EACCES from the verifier is a bug report, not missing privileges
	}
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return &features.MissingError{What: "cannot load snag's BPF programs", Fix: "run as root or with CAP_BPF and CAP_PERFMON; `snag doctor` lists what this host allows", Err: err}
	}
	return err
}
