// Command stalledloop reproduces a stalled event loop without any servers to
// install. "serve" runs a single-threaded epoll loop that, for every HTTP
// request, makes a blocking round trip to a slow database over one persistent
// socket and opens a fresh connection to a result store, so every request
// waits behind the previous one's database call. "load" drives it with
// concurrent clients and prints the throughput and latency that result.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
)

// Exit codes follow snag's: 0 done, 1 failed, 2 bad usage.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

const usage = `usage:
  stalledloop serve [--addr 127.0.0.1:18080] [--db-delay 20ms] [--db-addr ADDR]
                    [--store-addr ADDR] [--ready-file PATH]
  stalledloop load  --url http://127.0.0.1:18080/ [-c 8] [-d 5s | -n N]
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// usageError marks errors caused by the command line rather than the run.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], logger)
	case "load":
		err = runLoad(ctx, args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "unknown command %q\n%s", args[0], usage)
		return exitUsage
	}
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, pflag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "stalledloop %s: %v\n", args[0], err)
		return exitUsage
	default:
		logger.Error("stalledloop "+args[0]+" failed", "error", err)
		return exitFail
	}
}
