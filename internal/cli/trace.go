//go:build linux

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
	fs.IntVar(&f.maxSlots, "max-slots", bpf.DefaultMaxSlots, "most (thread, syscall) aggregates of live threads kept in the kernel (2.5 KiB each, allocated at attach)")
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
	if record != "" {
		rec, err := newRecorder(record, force)
		if err != nil {
			return err
		}
		t, _, err := traceToRecording(ctx, cfg, rec, tf.debug, env)
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
	cfg.KeepEvents = false // streamed to the file instead
	t, events, err := traceToRecording(ctx, cfg, rec, tf.debug, env)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "snag: recorded %d events of pid %d over %s to %s (%d dropped)\n",
		events, t.Target.PID, t.Duration.Round(time.Millisecond), out, t.Drops.Total())
	return nil
}

// traceToRecording traces with every syscall an event, streaming them to
// rec, and returns the trace and the events written.
func traceToRecording(ctx context.Context, cfg tracer.Config, rec *recorder, debug bool, env Env) (*model.Trace, uint64, error) {
	defer rec.abort(env)
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

// recorder streams events into a recording as they arrive, flushing about
// once a second so a killed snag leaves a readable file. The file is
// written as PATH.partial, created only once tracing has started (a
// failed attach leaves nothing behind), and renamed to PATH when the
// recording is complete: a name without .partial is a finished recording.
// Recordings hold what the process read and wrote, so they are mode 0600.
type recorder struct {
	path, partial string
	force         bool
	f             *os.File
	w             *recording.Writer
	lastFlush     time.Time
	events        uint64
	closed        bool
}

const recordFlushEvery = time.Second

// partialSuffix marks a recording still being written, or one whose
// writer was killed: snag analyze reads it up to its last flush.
const partialSuffix = ".partial"

// newRecorder checks path before anything is traced: an existing file is
// kept unless force, and so is an unfinished PATH.partial.
func newRecorder(path string, force bool) (*recorder, error) {
	if err := checkOutput("recording", path, force); err != nil {
		return nil, err
	}
	partial := path + partialSuffix
	if err := checkOutput("recording", partial, force); err != nil {
		if !force {
			if _, serr := os.Lstat(partial); serr == nil {
				return nil, usagef("%s exists: a recording that did not finish? analyze it, move it away, or add --force", partial)
			}
		}
		return nil, err
	}
	return &recorder{path: path, partial: partial, force: force}, nil
}

func (r *recorder) hook(cfg *tracer.Config) {
	cfg.OnStart = func(t *model.Trace) error {
		if r.force {
			os.Remove(r.partial) // checked: a regular file, or nothing
		}
		f, err := createExclusive(r.partial, 0o600)
		if err != nil {
			return fmt.Errorf("create recording: %w", err)
		}
		r.f = f
		w, err := recording.NewWriter(r.f, t)
		if err != nil {
			return fmt.Errorf("write recording %s: %w", r.partial, err)
		}
		r.w, r.lastFlush = w, time.Now()
		return nil
	}
	cfg.OnEvent = func(e *model.Event) error {
		r.events++
		if err := r.w.Event(e); err != nil {
			return fmt.Errorf("write recording %s: %w", r.partial, err)
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
	if r.f == nil {
		return errors.New("finish recording: tracing never started")
	}
	err := r.w.Close(t)
	if err == nil {
		err = r.f.Sync()
	}
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = publish(r.partial, r.path, r.force)
	}
	if err != nil {
		return fmt.Errorf("finish recording %s: %w (what was flushed is in %s)", r.path, err, r.partial)
	}
	return nil
}

// abort closes the file when tracing failed; whatever was flushed stays
// readable in PATH.partial.
func (r *recorder) abort(env Env) {
	if r.closed || r.f == nil {
		return
	}
	if r.w != nil {
		r.w.Flush()
	}
	r.f.Close()
	fmt.Fprintf(env.Stderr, "snag: the recording so far is in %s\n", r.partial)
}
