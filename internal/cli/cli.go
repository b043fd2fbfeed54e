// Package cli is snag's command line: one pflag FlagSet per subcommand,
// validation before touching the kernel, and the mapping of errors to the
// documented exit codes. cmd/snag only calls Main.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
)

// Exit codes, as documented in the README and `snag help`.
const (
	ExitOK          = 0
	ExitFindings    = 1 // findings at or above --fail-on
	ExitUsage       = 2 // bad usage or bad input
	ExitUnsupported = 3 // the kernel or privileges do not allow tracing
	ExitOutput      = 4 // an output file could not be written; the report went to stdout
)

// usageError is bad usage: exit 2 with the subcommand's usage.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// inputError is bad input (a dead PID, a garbled file): exit 2, no usage.
type inputError struct{ err error }

func (e inputError) Error() string { return e.err.Error() }
func (e inputError) Unwrap() error { return e.err }

// findingsError carries exit code 1 after the report was printed.
type findingsError struct{ msg string }

func (e findingsError) Error() string { return e.msg }

// Env is what a command reads and writes, so tests can run it in-process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	StderrTTY      bool
}

const topUsage = `snag finds what a Linux process is waiting for.

Usage:
  snag attach -p PID[,PID...] [flags]     trace running processes
  snag run [flags] -- CMD [ARGS...]       trace a command from its first syscall
  snag record -p PID -d 30s -o FILE       save every event for later
  snag analyze FILE [flags]               report on a recording or an strace log
  snag doctor [--pid PID]                 what this kernel and these privileges allow,
                                          and whether the frames of PID's runtime can be named
  snag serve --cmdline RE [--listen ADDR] always on: Prometheus metrics, findings as JSON
                                          lines, blocked-time profiles, a flight recorder
  snag version                            which snag this is (also: snag --version)

Exit codes: 0 done; 1 findings at or above --fail-on; 2 bad usage or bad
input; 3 the kernel or privileges do not allow tracing; 4 an output file
could not be written (the report still went to stdout).

Run 'snag COMMAND --help' for a command's flags.
`

// Main runs snag with args (without the program name) and returns the exit code.
func Main(args []string, env Env) int {
	platformInit()
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, topUsage)
		return ExitUsage
	}
	cmds := map[string]func(context.Context, []string, Env) error{
		"attach":    cmdAttach,
		"run":       cmdRun,
		"record":    cmdRecord,
		"analyze":   cmdAnalyze,
		"doctor":    cmdDoctor,
		"serve":     cmdServe,
		"version":   cmdVersion,
		"--version": cmdVersion,
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "--help" {
		fmt.Fprint(env.Stdout, topUsage)
		return ExitOK
	}
	run, ok := cmds[name]
	if !ok {
		fmt.Fprintf(env.Stderr, "snag: unknown command %q\n\n%s", name, topUsage)
		return ExitUsage
	}
	// Ctrl-C or SIGTERM ends a trace early; the report still prints. Once
	// one arrived, the default action is back: a second one ends snag at
	// once, whatever it is doing.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	return exitCode(run(ctx, args[1:], env), env)
}

func exitCode(err error, env Env) int {
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, pflag.ErrHelp) {
		return ExitOK
	}
	var (
		usage    usageError
		findings findingsError
		output   outputError
	)
	switch {
	case errors.As(err, &output):
		fmt.Fprintf(env.Stderr, "snag: %v\n", err)
		return ExitOutput
	case errors.As(err, &findings):
		fmt.Fprintf(env.Stderr, "snag: %s\n", findings.msg)
		return ExitFindings
	case unsupported(err):
		fmt.Fprintf(env.Stderr, "snag: %v\n", err)
		return ExitUnsupported
	case errors.As(err, &usage):
		fmt.Fprintf(env.Stderr, "snag: %v\nRun 'snag help' for usage.\n", err)
		return ExitUsage
	}
	var input inputError
	if errors.As(err, &input) {
		fmt.Fprintf(env.Stderr, "snag: %v\n", err)
		return ExitUsage
	}
	fmt.Fprintf(env.Stderr, "snag: %v\n", err)
	return ExitUsage
}

// newFlags makes a subcommand's FlagSet that reports errors instead of exiting.
func newFlags(name, usage string, env Env) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage:\n  %s\n\nFlags:\n%s", usage, fs.FlagUsages())
	}
	return fs
}

func parse(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return usagef("%s: %v", fs.Name(), err)
	}
	return nil
}

func setupLog(env Env, debug bool) {
	level := slog.LevelWarn
	if debug {
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level})))
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
