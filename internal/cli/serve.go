//go:build linux

package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/snagtrace/snag/internal/otlpprof"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/snagtrace/snag/internal/agent"
	"github.com/snagtrace/snag/internal/tracer"
)

// Defaults of snag serve.
const (
	// defaultInterval is Prometheus's default scrape interval: each scrape
	// sees a new window.
	defaultInterval = 15 * time.Second
	// minInterval keeps a window long enough to hold a stall of a few
	// seconds and its analysis far cheaper than the window.
	minInterval = time.Second
	// defaultListen is loopback: metrics name peers and processes, so
	// exposing them is a choice (--listen :9464 in a pod). 9464 is the
	// port OpenTelemetry's Prometheus exporters use.
	defaultListen = "127.0.0.1:9464"
	// defaultRecordKeep is how far back an incident can be explained.
	defaultRecordKeep = 10 * time.Minute
)

// serveFlags are snag serve's own flags.
type serveFlags struct {
	comm, exe, cmdline string
	cgroups            []string
	interval           time.Duration
	listen             string
	recordDir          string
	recordKeep         time.Duration
	otlpEndpoint       string
	maxSeries          int
	keepSet            bool // --record-keep was given
	expectFlags
}

func cmdServe(ctx context.Context, args []string, env Env) error {
	var tf traceFlags
	var sf serveFlags
	fs := newFlags("serve", "snag serve [--pid PID,...] [--comm RE] [--exe RE] [--cmdline RE] [--cgroup PATH] [--interval 15s] [--listen ADDR] [--record-dir DIR [--record-keep 10m]] [--expect HOST:PORT,...] [--max-series N]", env)
	tf.register(fs, true)
	// A window's events, not a whole trace's: an agent's memory stays
	// bounded, so no "0: no limit" either.
	tf.maxEvents = agent.DefaultMaxEvents
	fs.Lookup("duration").Usage = "stop after this long (default: until SIGINT or SIGTERM)"
	me := fs.Lookup("max-events")
	me.DefValue, me.Usage = strconv.Itoa(agent.DefaultMaxEvents), "most events one window keeps for its analysis; more are counted as dropped (the counts stay exact)"
	fs.StringVar(&sf.comm, "comm", "", "trace every process whose name (/proc/PID/comm) matches this regular expression")
	fs.StringVar(&sf.exe, "exe", "", "trace every process whose executable's path matches this regular expression")
	fs.StringVar(&sf.cmdline, "cmdline", "", "trace every process whose arguments, joined by spaces, match this regular expression")
	fs.StringArrayVar(&sf.cgroups, "cgroup", nil, "trace every process in this cgroup v2 directory or below (a container, a systemd unit, a pod); repeatable")
	fs.DurationVar(&sf.interval, "interval", defaultInterval, "analyze and publish a window this long")
	fs.StringVar(&sf.listen, "listen", defaultListen, "serve /metrics, /findings and /debug/pprof/blocked on this address (HOST:PORT)")
	fs.StringVar(&sf.recordDir, "record-dir", "", "keep every window as a recording file in this directory (the flight recorder)")
	fs.DurationVar(&sf.recordKeep, "record-keep", defaultRecordKeep, "delete the flight recorder's files older than this")
	fs.StringVar(&sf.otlpEndpoint, "otlp-endpoint", "", "send each window's profile to this OTLP endpoint (URL)")
	sf.expectFlags.register(fs)
	fs.IntVar(&sf.maxSeries, "max-series", agent.DefaultMaxSeries, "most series per metric family; more are folded into one labelled \"other\"")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("serve: unexpected arguments %q", fs.Args())
	}
	sf.keepSet = fs.Changed("record-keep")
	cfg, sel, err := sf.session(&tf, env)
	if err != nil {
		return err
	}
	acfg, unresolved, err := sf.expectFlags.config()
	if err != nil {
		return err
	}
	for _, h := range unresolved {
		slog.Warn("--expect host resolves to no address here: no peer matches it", "host", h)
	}
	var rec *agent.Recorder
	if sf.recordDir != "" {
		if rec, err = agent.NewRecorder(sf.recordDir, sf.recordKeep); err != nil {
			return usagef("--record-dir %s: %v", sf.recordDir, unwrapPath(err))
		}
	}
	var exp *otlpprof.Exporter
	if sf.otlpEndpoint != "" {
		if exp, err = otlpprof.NewExporter(sf.otlpEndpoint, otlpprof.Options{}); err != nil {
			return usagef("--otlp-endpoint: %v", err)
		}
		defer func() {
			// What is still queued gets a few seconds, then counts as dropped.
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			exp.Close(cctx)
		}()
	}
	cfg.Select, cfg.Interval = sel, sf.interval
	// The listener before the kernel: a port in use is the user's to fix,
	// and nothing is attached for nothing.
	ln, err := net.Listen("tcp", sf.listen)
	if err != nil {
		return inputError{fmt.Errorf("--listen %s: %w", sf.listen, err)}
	}
	ag := agent.New(agent.Config{
		MaxEvents: tf.maxEvents,
		MaxSeries: sf.maxSeries,
		Analyzer:  acfg,
		Log:       env.Stdout,
		Recorder:  rec,
		OTLP:      exp,
	})
	srv := &http.Server{Handler: ag.Handler(), ReadHeaderTimeout: 10 * time.Second}
	// An agent nobody can scrape is not running: a failed server ends
	// the trace too.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	go func() {
		served <- srv.Serve(ln)
		stop()
	}()
	fmt.Fprintf(env.Stderr, "snag: serving http://%s%s, a window every %s\n", ln.Addr(), agent.PathMetrics, sf.interval)

	_, err = runTracer(ctx, cfg, tf.debug, env, ag)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("serve http on %s: %w", sf.listen, serr)
	}
	return err
}

// session validates every flag before anything is traced and returns the
// tracer's configuration and the selector.
func (sf *serveFlags) session(tf *traceFlags, env Env) (tracer.Config, *tracer.Selector, error) {
	pids, err := tf.parsePIDs()
	if err != nil {
		return tracer.Config{}, nil, err
	}
	sel := &tracer.Selector{PIDs: pids, Cgroups: sf.cgroups}
	for _, re := range []struct {
		flag, expr string
		dst        **regexp.Regexp
	}{{"--comm", sf.comm, &sel.Comm}, {"--exe", sf.exe, &sel.Exe}, {"--cmdline", sf.cmdline, &sel.Cmdline}} {
		if re.expr == "" {
			continue
		}
		if *re.dst, err = regexp.Compile(re.expr); err != nil {
			return tracer.Config{}, nil, usagef("%s: %v", re.flag, err)
		}
	}
	if len(sel.PIDs) == 0 && len(sel.Cgroups) == 0 && sel.Comm == nil && sel.Exe == nil && sel.Cmdline == nil {
		return tracer.Config{}, nil, usagef("serve: say what to trace: --pid, --comm, --exe, --cmdline or --cgroup")
	}
	for _, c := range sf.cgroups {
		if c == "" {
			return tracer.Config{}, nil, usagef("--cgroup: empty path")
		}
	}
	if sf.interval < minInterval {
		return tracer.Config{}, nil, usagef("--interval must be at least %s, got %s", minInterval, sf.interval)
	}
	if _, _, err := net.SplitHostPort(sf.listen); err != nil {
		return tracer.Config{}, nil, usagef("--listen %q: want HOST:PORT (127.0.0.1:9464, or :9464 for every interface)", sf.listen)
	}
	if sf.recordDir == "" && sf.keepSet {
		return tracer.Config{}, nil, usagef("--record-keep needs --record-dir")
	}
	if sf.recordDir != "" && sf.recordKeep < sf.interval {
		return tracer.Config{}, nil, usagef("--record-keep %s is shorter than a window (--interval %s)", sf.recordKeep, sf.interval)
	}
	if tf.maxEvents <= 0 {
		return tracer.Config{}, nil, usagef("--max-events must be positive: an agent keeps a bounded window")
	}
	if sf.maxSeries <= 0 {
		return tracer.Config{}, nil, usagef("--max-series must be positive")
	}
	if sf.otlpEndpoint != "" {
		if err := otlpprof.CheckEndpoint(sf.otlpEndpoint); err != nil {
			return tracer.Config{}, nil, usagef("--otlp-endpoint: %v", err)
		}
	}

	if err := tf.validate(); err != nil {
		return tracer.Config{}, nil, err
	}
	setupLog(env, tf.debug)
	cfg := tf.config(env)
	cfg.Status = nil // an agent's stderr is a log, not a terminal's status line
	return cfg, sel, nil
}
