package cli

import (
	"context"
	"fmt"

	"github.com/snagtrace/snag/internal/version"
)

func cmdVersion(_ context.Context, args []string, env Env) error {
	fs := newFlags("version", "snag version", env)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("version takes no arguments (got %q)", fs.Args())
	}
	fmt.Fprintln(env.Stdout, version.Get())
	return nil
}
