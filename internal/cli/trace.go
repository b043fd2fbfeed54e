package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/cilium/ebpf"
	"github.com/spf13/pflag"

	"github.com/snagtrace/snag/analyzer"
	"github.com/snagtrace/snag/bpf"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/recording"
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
	fs.IntVar(&f.maxSlots, "max-slots", bpf.DefaultMaxSlots, "most (thread, syscall) aggregates kept in the kernel")
	fs.IntVar(&f.maxEvents, "max-events", defaultMaxEvents, "most events kept in memory for the report; more are counted as dropped (0: no limit)")
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
		KeepEvents:  true,
		MaxEvents:   f.maxEvents,
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
	return traceAndReport(ctx, cfg, tf.debug, oc, env)
}

func cmdRun(ctx context.Context, args []string, env Env) error {
	var tf traceFlags
	var of outputFlags
	var record string
	fs := newFlags("run", "snag run [flags] -- CMD [ARGS...]", env)
	tf.register(fs, false)
	of.register(fs)
	fs.StringVar(&record, "record", "", "also save every event to this recording file")
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
	cfg.Stdin, cfg.Stdout, cfg.Stderr = env.Stdin, env.Stdout, env.Stderr
	if record != "" {
		t, _, err := traceToRecording(ctx, cfg, record, tf.debug, env)
		if err != nil {
			return err
		}
		return analyzeAndReport(t, oc, env)
	}
	return traceAndReport(ctx, cfg, tf.debug, oc, env)
}

func traceAndReport(ctx context.Context, cfg tracer.Config, debug bool, oc *outputConfig, env Env) error {
	t, err := runTracer(ctx, cfg, debug, env)
	if err != nil {
		return err
	}
	return analyzeAndReport(t, oc, env)
}

// runTracer runs a session; with --debug a verifier rejection prints the
// verifier's whole log, which is what a bug report needs.
func runTracer(ctx context.Context, cfg tracer.Config, debug bool, env Env) (*model.Trace, error) {
	t, err := tracer.Run(ctx, cfg)
	var verr *ebpf.VerifierError
	if debug && errors.As(err, &verr) {
		fmt.Fprintf(env.Stderr, "%+v\n", verr)
	}
	return t, err
}

func cmdRecord(ctx context.Context, args []string, env Env) error {
	var tf traceFlags
	var out string
	fs := newFlags("record", "snag record -p PID[,PID...] [-d 30s] -o FILE", env)
	tf.register(fs, true)
	fs.StringVarP(&out, "output", "o", "", "recording file to write (required)")
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
	cfg.KeepEvents = false // streamed to the file instead
	t, events, err := traceToRecording(ctx, cfg, out, tf.debug, env)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "snag: recorded %d events of pid %d over %s to %s (%d dropped)\n",
		events, t.Target.PID, t.Duration.Round(time.Millisecond), out, t.Drops.Total())
	return nil
}

// traceToRecording traces with every syscall an event, streaming them to
// the recording at path, and returns the trace and the events written.
func traceToRecording(ctx context.Context, cfg tracer.Config, path string, debug bool, env Env) (*model.Trace, uint64, error) {
	rec, err := newRecorder(path)
	if err != nil {
		return nil, 0, err
	}
	defer rec.abort()
	rec.hook(&cfg)
	cfg.AllEvents = true
	t, err := runTracer(ctx, cfg, debug, env)
	if err != nil {
		return nil, 0, err
	}
	if err := rec.close(t); err != nil {
		return nil, 0, err
	}
	return t, rec.events, nil
}

// recorder streams events into a recording file as they arrive, flushing
// about once a second so a killed snag leaves a readable file.
type recorder struct {
	path      string
	f         *os.File
	w         *recording.Writer
	lastFlush time.Time
	events    uint64
	closed    bool
}

const recordFlushEvery = time.Second

func newRecorder(path string) (*recorder, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, inputError{fmt.Errorf("create recording: %w", err)}
	}
	return &recorder{path: path, f: f}, nil
}

func (r *recorder) hook(cfg *tracer.Config) {
	cfg.OnStart = func(t *model.Trace) error {
		w, err := recording.NewWriter(r.f, t)
		if err != nil {
			return fmt.Errorf("write recording %s: %w", r.path, err)
		}
		r.w, r.lastFlush = w, time.Now()
		return nil
	}
	cfg.OnEvent = func(e *model.Event) error {
		r.events++
		if err := r.w.Event(e); err != nil {
			return fmt.Errorf("write recording %s: %w", r.path, err)
		}
		if time.Since(r.lastFlush) >= recordFlushEvery {
			r.lastFlush = time.Now()
			return r.w.Flush()
		}
		return nil
	}
}

func (r *recorder) close(t *model.Trace) error {
	r.closed = true
	if err := r.w.Close(t); err != nil {
		r.f.Close()
		return fmt.Errorf("finish recording %s: %w", r.path, err)
	}
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("finish recording %s: %w", r.path, err)
	}
	return nil
}

// abort closes the file when tracing failed; whatever was flushed stays
// readable.
func (r *recorder) abort() {
	if !r.closed {
		if r.w != nil {
			r.w.Flush()
		}
		r.f.Close()
	}
}
