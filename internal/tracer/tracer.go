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
	"sort"
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
	// WindowSinks; 0: one trace, no windows.
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
	// selfCPU0 is snag's own CPU time at the attach (Trace.Cost).
	selfCPU0 time.Duration
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
	trace := &model.Trace{Source: "ebpf", Arch: syscalls.Native()}
	return &session{cfg: cfg, trace: trace, enr: newEnricher(cfg.Proc, trace), sinks: sinks}, nil
}

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
		s.trace.Target = targetOf(s.cfg.Proc, s.cfg.PIDs[0])
	}
	s.startQueues(opts.PIDs)
	// The reader starts last: the attach's facts are read before any
	// event is enriched, and nothing else touches the ring buffer.
	s.rd = newReader(tr, queueLen, queueBytes)
	if s.blockReader {
		s.rd = newReader(tr, 0, queueBytes)
		s.rd.block = true
	}
	s.rd.start()
	slog.Debug("attached", "pids", opts.PIDs, "armed", opts.ArmedPID, "threshold", opts.Threshold,
		"stack_bytes", opts.StackBytes, "threads", len(s.enr.threads), "sockets", len(s.trace.Sockets))
	for _, k := range s.sinks {
		if err := k.Start(s.trace); err != nil {
			return err
		}
	}
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
		}
		s.enr.retryPython()
		if time.Since(lastAlive) >= time.Second {
			lastAlive = time.Now()
			s.reap()
		}
		if len(s.enr.live) == 0 {
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
	ev := s.enr.enrich(&q.rec)
	for _, k := range s.sinks {
		if err := k.Event(ev); err != nil {
			return err
		}
	}
	return nil
}

// reap notices targets that died without an exit event (one can be lost
// when the ring buffer is full).
func (s *session) reap() {
	for pid := range s.enr.live {
		if !s.cfg.Proc.Exists(pid) {
			delete(s.enr.live, pid)
		} else if s.child != nil && pid == s.child.pid && s.child.exited() {
			delete(s.enr.live, pid)
		}
	}
}

func (s *session) status() {
	calls, _ := s.tr.Calls()
	d, _ := s.tr.Drops()
	d.Backlog = s.rd.full.Load()
	fmt.Fprintf(s.cfg.Status, "\r\033[Ksnag: %s elapsed, %d syscalls, %d events, %d dropped",
		time.Since(s.trace.Start).Round(time.Second), calls, s.rd.read.Load(), d.Total())
}

func (s *session) finish() (*model.Trace, error) {
	s.tr.Detach()
	end := time.Now()
	s.trace.ListenQueues, s.trace.TCPListen = s.enr.queues.stop()
	// Enrich what the programs wrote before they were detached.
	s.rd.finish()
	for q := range s.rd.out {
		if err := s.handle(q); err != nil {
			return nil, err
		}
	}
	// Nothing more will be read: give back the ring buffer's mapping
	// before the events are joined and the report is built.
	s.rd.stop()
	if err := s.tr.CloseReader(); err != nil {
		slog.Debug("close ring buffer reader", "error", err)
	}
	if s.cfg.Status != nil {
		fmt.Fprint(s.cfg.Status, "\r\033[K")
	}
	s.enr.endFacts()
	t := s.trace
	t.Duration = end.Sub(t.Start)
	for _, k := range s.sinks {
		if c, ok := k.(EventsCloser); ok {
			if err := c.CloseEvents(t); err != nil {
				return nil, err
			}
		}
	}
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
	t.Drops.Backlog = s.rd.full.Load()
	t.Cost = s.cost(stats)
	t.Notes = append(t.Notes, s.enr.notes...)
	t.Threads = s.enr.endThreads(stats)
	if s.child != nil {
		s.child.stop()
		// The exit event may have been dropped; the parent's wait is exact.
		for i := range t.Processes {
			if p := &t.Processes[i]; p.PID == s.child.pid {
				p.Exited, p.ExitCode = true, s.child.exitCode()
			}
		}
	}
	slog.Debug("detached", "duration", t.Duration, "events", s.rd.read.Load(), "syscall_slots", len(stats), "drops", t.Drops)
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
