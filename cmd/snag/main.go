// Command snag finds what a Linux process is waiting for. See the README.
package main

import (
	"os"
	"runtime"

	"golang.org/x/term"

	"github.com/snagtrace/snag/internal/cli"
)

func main() {
	if path := os.Getenv(memProfileEnv); path != "" {
		runtime.MemProfileRate = 4096
		go watchHeap(path)
	}
	os.Exit(cli.Main(os.Args[1:], cli.Env{
		Stdin:     os.Stdin,
		Stdout:    os.Stdout,
		Stderr:    os.Stderr,
		StderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
	}))
}
