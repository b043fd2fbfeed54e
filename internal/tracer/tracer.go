// Package tracer runs one tracing session: it checks the target, loads and
// attaches the BPF programs, snapshots what the process was doing at the
// attach, streams events until the window ends and assembles the model.
package tracer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"runtime/debug"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/snagtrace/snag/bpf"
	"github.com/snagtrace/snag/internal/features"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/procfs"
	"github.com/snagtrace/snag/internal/syscalls"
)

// Config is what the user chose for one session. Where the trace goes is
// not part of it: that is the sinks given to Run.
type Config struct {
	PIDs []int // attach to these processes
	// Select follows every process matching it, already running or
	// started later, until it exits (snag serve). With Select, the trace
	// goes on when no process is traced, until ctx ends.
	Select *Selector
	// Interval cuts a continuous trace into windows handed to the
	// WindowSinks; 0: one trace, no windows. With windows, what a trace
	// keeps about processes and threads that exited is forgotten once
	// their last window is cut, so that its memory stays bounded.
	Interval    time.Duration
	Command     []string // or run this command (snag run)
	FollowForks bool
	Duration    time.Duration // 0: until ctx ends or every target exits
	Threshold   time.Duration // 0 with AllEvents: every syscall is an event
	AllEvents   bool
	StackBytes  int
	RingBytes   int
	MaxSlots    int
	TimeAll     bool      // time the calls that never wait too (bpf.Options.TimeAll)
	BPFStats    bool      // measure the BPF programs' run time (bpf.Options.RunStats)
	Status      io.Writer // one live status line per second when non-nil

	Stdin          io.Reader // for Command
	Stdout, Stderr io.Writer
	Proc           procfs.FS
}

// ErrNoProcess marks a target that does not exist; the CLI exits 2.
var ErrNoProcess = errors.New("no such process")

// session is one running trace: the wiring of reader, enricher and sinks.
type session struct {
	cfg   Config
	tr    *bpf.Tracer
	trace *model.Trace // the enricher's, returned by Run
	child *child
	rd    *reader
	enr   *enricher
	sinks []Sink
	cg    *cgroupWatch // the selected cgroups; nil when none
	win   *windows     // nil without Interval
	// selfCPU0 is snag's own CPU time at the attach (Trace.Cost).
	selfCPU0 time.Duration
	// sampler runs the BPF statistics in samples; nil with BPFStats.
	sampler *statsSampler
	// blockReader has the reader wait for the enricher, as one loop
	// would. Tests only.
	blockReader bool
}

// Run traces until the window ends, handing every event to the sinks in
// order, and returns the assembled trace after each sink's Finish. A
// target that exits mid-trace still yields everything seen until then.
// Events are in the trace only if a sink put them there (KeepEvents).
func Run(ctx context.Context, cfg Config, sinks ...Sink) (*model.Trace, error) {
	s, err := newSession(cfg, sinks)
	if err != nil {
		return nil, err
	}
	return s.run(ctx)
}

func newSession(cfg Config, sinks []Sink) (*session, error) {
	if cfg.Proc.Root == "" {
		cfg.Proc = procfs.Default
	}
	sel := cfg.Select
	switch {
	case sel != nil && (len(cfg.PIDs) > 0 || len(cfg.Command) > 0):
		return nil, errors.New("a selector cannot be combined with pids or a command: put the pids in the selector")
	case sel == nil && len(cfg.PIDs) == 0 && len(cfg.Command) == 0:
		return nil, errors.New("nothing to trace: give -p PID or a command")
	case cfg.Interval < 0 || (cfg.Interval > 0 && cfg.Interval < MinInterval):
		return nil, fmt.Errorf("window interval %v: give 0 for one trace, or at least %v", cfg.Interval, MinInterval)
	}
	var cg *cgroupWatch
	if sel != nil {
		if err := sel.check(cfg.Proc); err != nil {
			return nil, err
		}
		var err error
		if cg, err = newCgroupWatch(sel.Cgroups); err != nil {
			return nil, err
		}
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
	trace := &model.Trace{Source: "ebpf", Arch: syscalls.Native()}
	return &session{cfg: cfg, trace: trace, enr: newEnricher(cfg.Proc, trace), sinks: sinks, cg: cg}, nil
}

// MinInterval is the shortest window: each cut reads every aggregate of
// the kernel side (2.5 KiB each) and the CPU time of every thread.
const MinInterval = 100 * time.Millisecond

func (s *session) run(ctx context.Context) (*model.Trace, error) {
	if err := s.start(ctx); err != nil {
		s.close()
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
		TimeAll:        s.cfg.TimeAll,
		RunStats:       s.cfg.BPFStats,
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
	} else if s.cfg.Select != nil {
		// The processes a selected one starts are followed; those that
		// come to match are reported by their exec.
		opts.FollowForks = true
		opts.WatchExecs = s.cfg.Select.byName()
		opts.PIDs, opts.Cgroups = s.selected()
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
			if p, err := s.enr.detectPython(pid); err == nil {
				opts.Python = append(opts.Python, p)
			} else {
				s.enr.notePython(err)
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
	if opts.StackBytes > 0 {
		s.enr.python = tr
	}
	for _, p := range opts.Python {
		s.enr.stacks.addPython(p)
	}
	s.trace.Start, s.trace.StartNS, s.trace.Threshold = time.Now(), tr.StartNS(), opts.Threshold
	s.selfCPU0, _, _ = selfUsage()
	if !s.cfg.BPFStats {
		s.sampler = &statsSampler{first: true}
	}
	if s.child != nil {
		// Released only now: its first syscall after exec is traced.
		if err := s.child.release(); err != nil {
			return err
		}
		s.enr.live[s.child.pid] = true
		s.trace.Target = model.Target{PID: s.child.pid, Cmdline: s.cfg.Command, Comm: filepath.Base(s.cfg.Command[0])}
		s.trace.Processes = append(s.trace.Processes, model.Process{PID: s.child.pid, PPID: unix.Getpid(), Cmdline: s.cfg.Command})
	} else {
		for _, pid := range opts.PIDs {
			s.enr.live[pid] = true
			if ctx.Err() == nil {
				s.enr.snapshot(pid)
			}
		}
		if s.cfg.FollowForks {
			opts.PIDs = append(opts.PIDs, s.followLate(opts.PIDs)...)
		}
		if s.cfg.Select != nil {
			// Those that started to match while loading.
			s.adoptMatching()
		} else {
			s.trace.Target = targetOf(s.cfg.Proc, s.cfg.PIDs[0])
		}
	}
	if s.cfg.Interval == 0 {
		// Accept queues are sampled over one trace, not cut into windows.
		s.startQueues(opts.PIDs)
	}
	// The reader starts last: the attach's facts are read before any
	// event is enriched, and nothing else touches the ring buffer.
	s.rd = newReader(tr, queueLen, queueBytes)
	if s.blockReader {
		s.rd = newReader(tr, 0, queueBytes)
		s.rd.block = true
	}
	s.rd.start()
	if s.cfg.Interval > 0 {
		s.win = newWindows(s.trace.Start)
	}
	slog.Debug("attached", "pids", opts.PIDs, "armed", opts.ArmedPID, "threshold", opts.Threshold,
		"stack_bytes", opts.StackBytes, "threads", len(s.enr.threads), "sockets", len(s.trace.Sockets))
	for _, k := range s.sinks {
		if err := k.Start(s.trace); err != nil {
			return err
		}
	}
	s.sampleStats(time.Now()) // the first sample from the attach
	return nil
}

const pollInterval = 100 * time.Millisecond

// loop hands the reader's records through the enricher to the sinks
// until the window ends, and keeps house between them.
func (s *session) loop(ctx context.Context) error {
	var deadline <-chan time.Time
	if s.cfg.Duration > 0 {
		timer := time.NewTimer(s.cfg.Duration)
		defer timer.Stop()
		deadline = timer.C
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var cut <-chan time.Time
	if s.win != nil {
		t := time.NewTicker(s.cfg.Interval)
		defer t.Stop()
		cut = t.C
	}
	lastStatus, lastAlive := time.Now(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-deadline:
			return nil
		case q, ok := <-s.rd.out:
			if !ok {
				return fmt.Errorf("read events: %w", s.rd.err)
			}
			if err := s.handle(q); err != nil {
				return err
			}
		case <-tick.C:
		case <-cut:
			// The events read before the cut go to the sinks first.
			if err := s.drainQueued(); err != nil {
				return err
			}
			if _, err := s.cutWindow(time.Now()); err != nil {
				return err
			}
			// What exited in the window is forgotten once it was cut; the
			// last window, which Run returns, keeps it. The calls in
			// progress when a process was first seen are the first
			// window's.
			s.enr.forgetExited()
			s.trace.Blocked = nil
		}
		s.enr.retryPython()
		s.sampleStats(time.Now())
		if time.Since(lastAlive) >= time.Second {
			lastAlive = time.Now()
			s.reap()
		}
		if len(s.enr.live) == 0 && s.cfg.Select == nil {
			return nil // every target exited
		}
		if s.cfg.Status != nil && time.Since(lastStatus) >= time.Second {
			lastStatus = time.Now()
			s.status()
		}
	}
}

// handle enriches one record and hands its event to the sinks.
func (s *session) handle(q *queued) error {
	s.rd.taken(q)
	defer s.rd.done(q)
	if s.cfg.Select != nil && !s.selectEvent(&q.rec.Event) {
		return nil
	}
	ev := s.enr.enrich(&q.rec)
	for _, k := range s.sinks {
		if err := k.Event(ev); err != nil {
			return err
		}
	}
	return nil
}

// drainQueued hands on the records the reader has queued so far.
func (s *session) drainQueued() error {
	for {
		select {
		case q, ok := <-s.rd.out:
			if !ok {
				return fmt.Errorf("read events: %w", s.rd.err)
			}
			if err := s.handle(q); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// reap notices targets that died without an exit event (one can be lost
// when the ring buffer is full), and follows the selected cgroups.
func (s *session) reap() {
	for pid := range s.enr.live {
		if s.cfg.Proc.Exists(pid) && (s.child == nil || pid != s.child.pid || !s.child.exited()) {
			continue
		}
		s.untrace(pid)
		if s.win != nil {
			s.enr.markExited(pid)
		} else {
			delete(s.enr.live, pid)
		}
	}
	if _, err := s.tr.SweepExited(func(pid int) bool { return !s.cfg.Proc.Exists(pid) }); err != nil {
		slog.Debug("forget exited processes", "error", err)
	}
	if s.cg != nil {
		s.scanCgroups()
	}
}

func (s *session) status() {
	calls, _ := s.tr.Calls()
	d, _ := s.tr.Drops()
	s.rd.countDrops(&d)
	fmt.Fprintf(s.cfg.Status, "\r\033[Ksnag: %s elapsed, %d syscalls, %d events, %d dropped",
		time.Since(s.trace.Start).Round(time.Second), calls, s.rd.read.Load(), d.Total())
}

func (s *session) finish() (*model.Trace, error) {
	s.stopSampling()
	s.tr.Detach()
	end := time.Now()
	listenQueues, tcpListen := s.enr.queues.stop() // none with windows
	// Enrich what the programs wrote before they were detached.
	s.rd.finish()
	for q := range s.rd.out {
		if err := s.handle(q); err != nil {
			return nil, err
		}
	}
	// Nothing more will be read: give back the ring buffer's mapping
	// before the events are decoded and the report is built.
	s.rd.stop()
	if err := s.tr.CloseReader(); err != nil {
		slog.Debug("close ring buffer reader", "error", err)
	}
	if s.cfg.Status != nil {
		fmt.Fprint(s.cfg.Status, "\r\033[K")
	}
	if s.win != nil {
		return s.finishWindows(end)
	}
	s.trace.ListenQueues, s.trace.TCPListen = listenQueues, tcpListen
	s.enr.endFacts()
	t := s.trace
	t.Duration = end.Sub(t.Start)
	stats, err := s.tr.Aggregates()
	if err != nil {
		return nil, err
	}
	slices.SortFunc(stats, compareStats)
	t.Syscalls = stats
	if t.Drops, err = s.tr.Drops(); err != nil {
		return nil, err
	}
	s.rd.countDrops(&t.Drops)
	t.Cost = s.cost(stats).Scaled()
	t.Notes = append(t.Notes, s.enr.notes...)
	t.Threads = s.enr.endThreads(stats)
	s.childExit()
	slog.Debug("detached", "duration", t.Duration, "events", s.rd.read.Load(), "syscall_slots", len(stats), "drops", t.Drops)
	// What tracing and the reads since took and let go of (the queue's
	// stack copies, the unwinder's scratch, /proc at every thread's end)
	// goes back to the kernel now: the events are about to take their
	// full size, and the pages the collector keeps for reuse would count
	// twice at the peak.
	debug.FreeOSMemory()
	for _, k := range s.sinks {
		if c, ok := k.(EventsCloser); ok {
			if err := c.CloseEvents(t); err != nil {
				return nil, err
			}
		}
	}
	for _, k := range s.sinks {
		if err := k.Finish(t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// childExit records how the command snag ran exited: its exit event may
// have been dropped; the parent's wait is exact.
func (s *session) childExit() {
	if s.child == nil {
		return
	}
	s.child.stop()
	if p := s.enr.process(s.child.pid); p != nil {
		p.Exited, p.ExitCode = true, s.child.exitCode()
	}
}

// finishWindows ends a trace cut into windows: the last window, cut at
// the end, goes to the window sinks, then to Finish as the trace.
func (s *session) finishWindows(end time.Time) (*model.Trace, error) {
	s.childExit()
	t, err := s.cutWindow(end)
	if err != nil {
		return nil, err
	}
	for _, k := range s.sinks {
		if c, ok := k.(EventsCloser); ok {
			if err := c.CloseEvents(t); err != nil {
				return nil, err
			}
		}
	}
	slog.Debug("detached", "window", t.Duration, "events", s.rd.read.Load(), "drops", t.Drops)
	for _, k := range s.sinks {
		if err := k.Finish(t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (s *session) close() {
	if s.rd != nil {
		s.rd.stop() // before the ring buffer it reads is closed
	}
	s.enr.queues.stop()
	if s.tr != nil {
		s.tr.Close()
	}
	if s.child != nil {
		s.child.stop()
	}
}

// compareStats orders aggregates by thread, syscall and futex class.
func compareStats(a, b model.SyscallStat) int {
	return cmp.Or(cmp.Compare(a.TID, b.TID), cmp.Compare(a.Nr, b.Nr), cmp.Compare(a.Op, b.Op))
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
