package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Defaults for the flags; with them a whole run stays under five minutes.
const (
	DefaultRounds   = 3
	DefaultDuration = 3 * time.Second
)

// Workloads are the workloads the driver knows, in the order it runs them.
var Workloads = []string{"getppid", "mtmix", "redis", "pingpong"}

// settle is how long a condition runs before its window opens: snag reads
// /proc for the process it attached to and strace attaches thread by
// thread, and neither is what the window should measure.
const settle = 300 * time.Millisecond

// busyWarn is how busy the workloads' CPU may be before the run without
// a warning in the report.
const busyWarn = 0.2

// warmup lets a fresh workload reach its steady rate before any window.
const warmup = time.Second

// Config is one benchmark run.
type Config struct {
	SnagPath string
	// BaselinePath, when set, is a second snag binary measured as its own
	// condition in the same interleaved rounds: the before of a change.
	BaselinePath string
	Rounds       int
	Duration     time.Duration // per measurement window
	Workloads    []string
	// StraceLog is the size of the strace log to time `snag analyze` on;
	// 0 skips that section.
	StraceLog int64
	// Memory measures snag's peak RSS on 2,000 threads and on 20,000
	// connections.
	Memory bool
	// Soak runs snag serve over a mix of 50 processes this long; 0 skips
	// that section.
	Soak time.Duration
	Out  io.Writer // the report
	Log  io.Writer // progress, one line per measurement
}

// result is everything measured for one workload.
type result struct {
	name, unit string
	skipped    string // why the workload did not run, if it did not
	runs       runs
	notes      []string                       // failed measurements
	progs      map[string]map[string]progStat // condition → tracepoint → stats
}

// Validate checks the configuration before anything is started.
func (c *Config) Validate() error {
	if c.Rounds < 1 {
		return fmt.Errorf("-rounds must be at least 1, got %d", c.Rounds)
	}
	if c.Duration < 100*time.Millisecond {
		return fmt.Errorf("-duration must be at least 100ms, got %s", c.Duration)
	}
	if len(c.Workloads) == 0 && c.StraceLog == 0 && !c.Memory && c.Soak == 0 {
		return errors.New("nothing to measure: -workloads names no workload and there is neither -strace-log, -memory nor -soak")
	}
	if c.Soak != 0 && c.Soak < MinSoak {
		return fmt.Errorf("-soak must be at least %s (its RSS slope needs windows), got %s", MinSoak, c.Soak)
	}
	for _, w := range c.Workloads {
		if newWorkload(w) == nil {
			return fmt.Errorf("-workloads: unknown workload %q (have %s)", w, strings.Join(Workloads, ", "))
		}
	}
	if c.StraceLog < 0 {
		return errors.New("-strace-log must not be negative")
	}
	return nil
}

func newWorkload(name string) workload {
	switch name {
	case "getppid":
		return &workerLoad{kind: "getppid", unitStr: "calls/s"}
	case "mtmix":
		return &workerLoad{kind: "mtmix", unitStr: "ops/s"}
	case "redis":
		return &redisLoad{}
	case "pingpong":
		return &bystander{load: &workerLoad{kind: "pingpong", unitStr: "round trips/s"},
			traced: &workerLoad{kind: "idle", unitStr: "wake-ups/s"}}
	}
	return nil
}

// Run measures every workload under every condition and writes the report.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("snagbench must run as root: it attaches BPF programs and ptraces its workloads (try sudo)")
	}
	snagPath, err := exec.LookPath(cfg.SnagPath)
	if err != nil {
		return fmt.Errorf("snag binary: %w (build it with make build)", err)
	}
	conds := []condition{untraced{}, floor{}, snagTracer(condSnag, snagPath, cfg.Duration)}
	if cfg.BaselinePath != "" {
		base, err := exec.LookPath(cfg.BaselinePath)
		if err != nil {
			return fmt.Errorf("-snag-baseline: %w", err)
		}
		conds = append(conds, snagTracer(condBaseline, base, cfg.Duration))
	}
	var notes []string
	if p, err := exec.LookPath("strace"); err == nil {
		conds = append(conds, straceTracer(p))
	} else {
		notes = append(notes, "strace not found: its column is empty (apt-get install -y strace)")
	}
	// The workloads run on the last CPU; anything else there lowers every
	// figure, so say so rather than leave the reader to guess.
	last := runtime.NumCPU() - 1
	if busy, err := cpuBusy(ctx, last, 500*time.Millisecond); err == nil && busy > busyWarn {
		note := fmt.Sprintf("cpu %d, where the workloads run, was %.0f%% busy before the run: expect lower and noisier figures", last, 100*busy)
		fmt.Fprintln(cfg.Log, note)
		notes = append(notes, note)
	}
	start, load := time.Now(), loadAverage()
	var results []*result
	for _, name := range cfg.Workloads {
		res, err := runWorkload(ctx, cfg, newWorkload(name), conds)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	var mem []memResult
	if cfg.Memory {
		if mem, err = benchMemory(ctx, snagPath, cfg.Log); err != nil {
			return err
		}
	}
	var lb *logBench
	if cfg.StraceLog > 0 {
		lb, err = benchStraceLog(ctx, snagPath, cfg.StraceLog, cfg.Log)
		if err != nil {
			return err
		}
	}
	if len(results) > 0 || mem != nil || lb != nil {
		err := writeReport(cfg.Out, reportInput{
			cfg:        cfg,
			conds:      conds,
			results:    results,
			log:        lb,
			mem:        mem,
			notes:      notes,
			elapsed:    time.Since(start),
			loadBefore: load,
		})
		if err != nil {
			return err
		}
	}
	if cfg.Soak > 0 {
		// Last: it is the longest, and the sections above print first.
		soak, err := benchSoak(ctx, snagPath, cfg.Soak, cfg.Log)
		if err != nil {
			return err
		}
		return writeSoakReport(cfg.Out, soak)
	}
	return nil
}

func runWorkload(ctx context.Context, cfg Config, w workload, conds []condition) (*result, error) {
	res := &result{name: w.name(), unit: w.unit(), runs: make(runs)}
	if err := w.start(ctx); err != nil {
		if errors.Is(err, errSkip) {
			res.skipped = err.Error()
			fmt.Fprintf(cfg.Log, "%s: %s\n", w.name(), err)
			return res, nil
		}
		return nil, err
	}
	defer w.stop()
	if err := sleepCtx(ctx, warmup); err != nil {
		return nil, err
	}
	for round := range cfg.Rounds {
		// Rotating the order keeps any drift from always favouring the
		// same condition.
		for i := range conds {
			c := conds[(i+round)%len(conds)]
			s, err := measureQuiet(ctx, cfg, w, c)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				res.notes = append(res.notes, fmt.Sprintf("round %d, %s: %v", round+1, c.name(), err))
				fmt.Fprintf(cfg.Log, "%s round %d %-8s failed: %v\n", w.name(), round+1, c.name(), err)
			} else {
				fmt.Fprintf(cfg.Log, "%s round %d %-8s %12.0f %s\n", w.name(), round+1, c.name(), s.throughput, w.unit())
			}
			for len(res.runs[c.name()]) < round {
				res.runs[c.name()] = append(res.runs[c.name()], sample{})
			}
			res.runs[c.name()] = append(res.runs[c.name()], s)
		}
	}
	if w.name() == "getppid" {
		res.progs = make(map[string]map[string]progStat)
		for _, c := range conds {
			if c.name() == condUntraced || c.name() == condStrace {
				continue
			}
			ps, err := measureProgs(ctx, w, c, cfg.Duration)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				res.notes = append(res.notes, fmt.Sprintf("bpf_stats, %s: %v", c.name(), err))
				continue
			}
			res.progs[c.name()] = ps
		}
	}
	return res, nil
}

// retries is how often a window spoiled by another tracer is measured
// again.
const retries = 3

// measureQuiet measures once nobody else traces syscalls, and again when
// someone started to during the window.
func measureQuiet(ctx context.Context, cfg Config, w workload, c condition) (sample, error) {
	logf := func(msg string) { fmt.Fprintf(cfg.Log, "%s %s: %s\n", w.name(), c.name(), msg) }
	for try := 1; ; try++ {
		if err := waitQuiet(ctx, logf); err != nil {
			return sample{}, err
		}
		s, err := measure(ctx, w, c, cfg.Duration)
		if !errors.Is(err, errForeignTracer) || try == retries {
			return s, err
		}
		logf(fmt.Sprintf("measuring again: %v", err))
	}
}

// tracerCheck is how often a window looks for other tracers.
const tracerCheck = 250 * time.Millisecond

// measure runs w under c for one window.
func measure(ctx context.Context, w workload, c condition, d time.Duration) (sample, error) {
	a, err := c.attach(ctx, w.pid())
	if err != nil {
		return sample{}, err
	}
	attached := true
	defer func() {
		if attached {
			a.detach()
		}
	}()
	if err := sleepCtx(ctx, settle); err != nil {
		return sample{}, err
	}
	tracer := a.tracerPID()
	var cpu0, cpu1 time.Duration
	if tracer != 0 {
		if cpu0, err = cpuTime(tracer); err != nil {
			return sample{}, err
		}
	}
	wcpu0, err := cpuTime(w.measured())
	if err != nil {
		return sample{}, err
	}
	n0, err := w.count()
	if err != nil {
		return sample{}, err
	}
	t0 := time.Now()
	for end := t0.Add(d); ; {
		if err := checkTracers(c.bpfLinks()); err != nil {
			return sample{}, err
		}
		left := time.Until(end)
		if left <= 0 {
			break
		}
		if err := sleepCtx(ctx, min(left, tracerCheck)); err != nil {
			return sample{}, err
		}
	}
	n1, err := w.count()
	if err != nil {
		return sample{}, err
	}
	elapsed := time.Since(t0)
	wcpu1, err := cpuTime(w.measured())
	if err != nil {
		return sample{}, err
	}
	if tracer != 0 {
		if cpu1, err = cpuTime(tracer); err != nil {
			return sample{}, err
		}
	}
	attached = false
	u, err := a.detach()
	if err != nil {
		return sample{}, err
	}
	if n1 <= n0 {
		return sample{}, fmt.Errorf("%s: no progress over the window (counter %d then %d)", w.name(), n0, n1)
	}
	return sample{
		ok:         true,
		throughput: float64(n1-n0) / elapsed.Seconds(),
		cpuPerOp:   (wcpu1 - wcpu0).Seconds() / float64(n1-n0),
		tracerCPU:  (cpu1 - cpu0).Seconds() / elapsed.Seconds(),
		maxRSS:     u.maxRSS,
	}, nil
}

// progStat is the kernel's run-time accounting for one BPF program over a
// window.
type progStat struct {
	runs  uint64
	total time.Duration
}

func (p progStat) nsPerRun() float64 {
	if p.runs == 0 {
		return 0
	}
	return float64(p.total.Nanoseconds()) / float64(p.runs)
}

// measureProgs runs w under c with the kernel's BPF run-time statistics on
// and returns what c's programs cost per run. It is a separate pass
// because the statistics cost two clock reads per program run, which the
// throughput windows should not include.
func measureProgs(ctx context.Context, w workload, c condition, d time.Duration) (map[string]progStat, error) {
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		return nil, fmt.Errorf("enable bpf stats: %w", err)
	}
	defer stats.Close()
	a, err := c.attach(ctx, w.pid())
	if err != nil {
		return nil, err
	}
	defer a.detach()
	src, ok := a.(progSource)
	if !ok {
		return nil, fmt.Errorf("%s has no programs to inspect", c.name())
	}
	if err := sleepCtx(ctx, settle); err != nil {
		return nil, err
	}
	progs, release, err := src.programs()
	if err != nil {
		return nil, err
	}
	defer release()
	read := func() (map[string]ebpf.ProgramStats, error) {
		m := make(map[string]ebpf.ProgramStats)
		for tp, p := range progs {
			s, err := p.Stats()
			if err != nil {
				return nil, fmt.Errorf("%s: stats of %s program: %w", c.name(), tp, err)
			}
			m[tp] = *s
		}
		return m, nil
	}
	before, err := read()
	if err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, d); err != nil {
		return nil, err
	}
	after, err := read()
	if err != nil {
		return nil, err
	}
	out := make(map[string]progStat)
	for tp, b := range before {
		a := after[tp]
		out[tp] = progStat{runs: a.RunCount - b.RunCount, total: a.Runtime - b.Runtime}
	}
	return out, nil
}
