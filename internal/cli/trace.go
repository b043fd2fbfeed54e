//go:build linux

package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cilium/ebpf"
	"github.com/spf13/pflag"

	"github.com/snagtrace/snag/analyzer"
	"github.com/snagtrace/snag/bpf"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/tracer"
)

// defaultMaxEvents bounds a live trace's memory: about 300 bytes an event,
// stacks shared, so some 300 MiB at worst; aggregates stay exact past it.
const defaultMaxEvents = 1_000_000

// traceFlags are shared by attach, run and record.
type traceFlags struct {
	pids        string
	duration    time.Duration
	followForks bool
	threshold   time.Duration
	stackBytes  int
	ringBytes   int
	maxSlots    int
	maxEvents   int
	timeAll     bool
	bpfStats    bool
	debug       bool
}

func (f *traceFlags) register(fs *pflag.FlagSet, withPID bool) {
	if withPID {
		fs.StringVarP(&f.pids, "pid", "p", "", "trace these processes (comma-separated PIDs)")
	}
	fs.DurationVarP(&f.duration, "duration", "d", 0, "stop after this long (default: until Ctrl-C or the targets exit)")
	fs.BoolVar(&f.followForks, "follow-forks", false, "also trace every process below the targets: those already running (a prefork master's workers) and those they start")
	fs.DurationVar(&f.threshold, "threshold", analyzer.DefaultThreshold, "syscalls at least this slow are recorded one by one, with a stack")
	fs.IntVar(&f.stackBytes, "stack-bytes", bpf.DefaultStackBytes, "user stack bytes copied per slow call for unwinding (0 disables stacks)")
	fs.IntVar(&f.ringBytes, "ring-bytes", bpf.DefaultRingBytes, "ring buffer size in bytes (a power of two)")
	fs.IntVar(&f.maxSlots, "max-slots", bpf.DefaultMaxSlots, "most (thread, syscall) aggregates of live threads kept in the kernel (2.5 KiB each, allocated at attach)")
	fs.IntVar(&f.maxEvents, "max-events", defaultMaxEvents, "most events kept in memory for the report; more are counted as dropped (0: no limit)")
	fs.BoolVar(&f.timeAll, "time-all", false, "also time the calls that never wait (getpid, clock_gettime, epoll_ctl...), which are otherwise counted but not timed: two clock reads would cost more than such a call")
	fs.BoolVar(&f.bpfStats, "bpf-stats", false, "measure every run of snag's BPF programs for the report's cost line, not 100 ms samples every 5 s (the kernel's BPF statistics add two clock reads to every program run, about doubling snag's cost on cheap syscalls)")
	fs.BoolVar(&f.debug, "debug", false, "log details, including the verifier's log on load failures")
}

func (f *traceFlags) validate() error {
	if f.duration < 0 {
		return usagef("--duration must not be negative")
	}
	if f.threshold < 0 {
		return usagef("--threshold must not be negative")
	}
	if f.stackBytes < 0 || f.stackBytes > bpf.StackCopyMax {
		return usagef("--stack-bytes must be between 0 and %d", bpf.StackCopyMax)
	}
	if f.ringBytes < 4096 || f.ringBytes&(f.ringBytes-1) != 0 {
		return usagef("--ring-bytes must be a power of two of at least 4096, got %d", f.ringBytes)
	}
	if f.maxSlots <= 0 {
		return usagef("--max-slots must be positive")
	}
	if f.maxEvents < 0 {
		return usagef("--max-events must not be negative")
	}
	return nil
}

func (f *traceFlags) parsePIDs() ([]int, error) {
	var pids []int
	for _, s := range splitList(f.pids) {
		pid, err := strconv.Atoi(s)
		if err != nil || pid <= 0 {
			return nil, usagef("-p: %q is not a process id", s)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// session validates the flags and turns them into a tracer configuration.
func (f *traceFlags) session(env Env) (tracer.Config, error) {
	pids, err := f.parsePIDs()
	if err != nil {
		return tracer.Config{}, err
	}
	if err := f.validate(); err != nil {
		return tracer.Config{}, err
	}
	setupLog(env, f.debug)
	cfg := f.config(env)
	cfg.PIDs = pids
	return cfg, nil
}

func (f *traceFlags) config(env Env) tracer.Config {
	cfg := tracer.Config{
		FollowForks: f.followForks,
		Duration:    f.duration,
		Threshold:   f.threshold,
		StackBytes:  f.stackBytes,
		RingBytes:   f.ringBytes,
		MaxSlots:    f.maxSlots,
		TimeAll:     f.timeAll,
		BPFStats:    f.bpfStats,
	}
	if env.StderrTTY {
		cfg.Status = env.Stderr
	}
	return cfg
}

func cmdAttach(ctx context.Context, args []string, env Env) error {
	var tf traceFlags
	var of outputFlags
	fs := newFlags("attach", "snag attach -p PID[,PID...] [-d 30s] [--follow-forks] [--threshold 10ms] [--expect HOST:PORT,...] [--format table|json] [-o FILE] [--fail-on high|medium|low]", env)
	tf.register(fs, true)
	of.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("attach: unexpected arguments %q (to trace a command, use snag run -- CMD)", fs.Args())
	}
	if tf.pids == "" {
		return usagef("attach: -p PID is required")
	}
	cfg, err := tf.session(env)
	if err != nil {
		return err
	}
	oc, err := of.prepare()
	if err != nil {
		return err
	}
	return traceAndReport(ctx, cfg, tf.debug, oc, env, tracer.KeepEvents(tf.maxEvents))
}

func cmdRun(ctx context.Context, args []string, env Env) error {
	var tf traceFlags
	var of outputFlags
	var record string
	var force bool
	fs := newFlags("run", "snag run [flags] -- CMD [ARGS...]", env)
	tf.register(fs, false)
	of.register(fs)
	fs.StringVar(&record, "record", "", "also save every event to this recording file (written as FILE.partial until it is complete)")
	fs.BoolVar(&force, "force", false, "let --record replace an existing file")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("run: give the command after --, e.g. snag run -- python3 app.py")
	}
	cfg, err := tf.session(env)
	if err != nil {
		return err
	}
	oc, err := of.prepare()
	if err != nil {
		return err
	}
	cfg.Command = fs.Args()
	// snag's stdout carries the report and nothing else, so it can be
	// piped or parsed (--format json): the command's own output goes to
	// stderr, as strace keeps its trace off the program's output.
	cfg.Stdin, cfg.Stdout, cfg.Stderr = env.Stdin, env.Stderr, env.Stderr
	keep := tracer.KeepEvents(tf.maxEvents)
	if record == "" {
		return traceAndReport(ctx, cfg, tf.debug, oc, env, keep)
	}
	rec, err := newRecorder(record, force)
	if err != nil {
		return err
	}
	defer rec.abort(env)
	cfg.AllEvents = true
	// The recording first: it holds every event, whatever the report's
	// sink leaves out over --max-events.
	return traceAndReport(ctx, cfg, tf.debug, oc, env, rec, keep)
}

func traceAndReport(ctx context.Context, cfg tracer.Config, debug bool, oc *outputConfig, env Env, sinks ...tracer.Sink) error {
	t, err := runTracer(ctx, cfg, debug, env, sinks...)
	if err != nil {
		return err
	}
	return analyzeAndReport(t, oc, env)
}

// runTracer runs a session; with --debug a verifier rejection prints the
// verifier's whole log, which is what a bug report needs.
func runTracer(ctx context.Context, cfg tracer.Config, debug bool, env Env, sinks ...tracer.Sink) (*model.Trace, error) {
	t, err := tracer.Run(ctx, cfg, sinks...)
	var verr *ebpf.VerifierError
	if debug && errors.As(err, &verr) {
		fmt.Fprintf(env.Stderr, "%+v\n", verr)
	}
	return t, err
}

func cmdRecord(ctx context.Context, args []string, env Env) error {
	var tf traceFlags
	var out string
	var force bool
	fs := newFlags("record", "snag record -p PID[,PID...] [-d 30s] -o FILE [--force]", env)
	tf.register(fs, true)
	fs.StringVarP(&out, "output", "o", "", "recording file to write (required); written as FILE.partial until it is complete")
	fs.BoolVar(&force, "force", false, "replace FILE if it exists")
	if err := parse(fs, args); err != nil {
		return err
	}
	if tf.pids == "" || out == "" {
		return usagef("record: -p PID and -o FILE are required")
	}
	cfg, err := tf.session(env)
	if err != nil {
		return err
	}
	rec, err := newRecorder(out, force)
	if err != nil {
		return err
	}
	defer rec.abort(env)
	cfg.AllEvents = true // a recording holds every syscall, streamed to the file
	t, err := runTracer(ctx, cfg, tf.debug, env, rec)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "snag: recorded %d events of pid %d over %s to %s (%d dropped)\n",
		rec.events, t.Target.PID, t.Duration.Round(time.Millisecond), out, t.Drops.Total())
	return nil
}
