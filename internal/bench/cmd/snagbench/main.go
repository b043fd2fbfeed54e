// Command snagbench measures what tracing costs a process: the same
// workloads untraced, under snag, under strace and under no-op BPF programs
// on the syscall tracepoints (the floor any such tracer pays), interleaved
// round by round. `make bench` runs it as root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/snagtrace/snag/internal/bench"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == bench.WorkerArg {
		if err := bench.RunWorker(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "snagbench:", err)
		}
		os.Exit(1)
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg, err := parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "snagbench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "snagbench:", err)
		return 1
	}
	return 0
}

// parse reads the flags with the standard library's flag package, not
// pflag: the single-dash long forms (-snag, -rounds) are the interface
// `make bench` and its users already call.
func parse(args []string) (bench.Config, error) {
	cfg := bench.Config{Out: os.Stdout, Log: os.Stderr}
	fs := flag.NewFlagSet("snagbench", flag.ContinueOnError)
	fs.StringVar(&cfg.SnagPath, "snag", "bin/snag", "the snag binary to measure")
	fs.StringVar(&cfg.BaselinePath, "snag-baseline", "", "another snag binary (the build before a change) measured in the same rounds, as condition snag-base")
	fs.IntVar(&cfg.Rounds, "rounds", bench.DefaultRounds, "rounds over all conditions; the report gives medians")
	fs.DurationVar(&cfg.Duration, "duration", bench.DefaultDuration, "measurement window per workload, condition and round")
	workloads := fs.String("workloads", strings.Join(bench.Workloads, ","), "comma-separated workloads to run")
	logSize := sizeFlag(0)
	fs.Var(&logSize, "strace-log", "also time snag analyze on a synthetic strace log: -strace-log for 1G, -strace-log=256M for another size")
	fs.BoolVar(&cfg.Memory, "memory", false, "also measure snag's peak RSS tracing 2,000 threads and 20,000 connections")
	fs.DurationVar(&cfg.Soak, "soak", 0, "also run snag serve this long (at least 1m) over 50 processes of mixed load, between two untraced halves as long")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, w := range strings.Split(*workloads, ",") {
		if w = strings.TrimSpace(w); w != "" {
			cfg.Workloads = append(cfg.Workloads, w)
		}
	}
	cfg.StraceLog = int64(logSize)
	return cfg, cfg.Validate()
}
