package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/snagtrace/snag/internal/features"
)

func cmdDoctor(_ context.Context, args []string, env Env) error {
	fs := newFlags("doctor", "snag doctor", env)
	if err := parse(fs, args); err != nil {
		return err
	}
	var missing int
	for _, c := range features.All() {
		if c.Err == nil {
			fmt.Fprintf(env.Stdout, "OK       %s\n", c.Name)
			continue
		}
		missing++
		status := "MISSING"
		if errors.Is(c.Err, features.ErrNotChecked) {
			status = "UNKNOWN"
		}
		fmt.Fprintf(env.Stdout, "%-8s %s: %v\n         fix: %s\n", status, c.Name, c.Err, c.Fix)
	}
	if missing > 0 {
		return &features.MissingError{What: fmt.Sprintf("%d of %d requirements missing or unchecked: snag cannot trace here", missing, len(features.All()))}
	}
	fmt.Fprintln(env.Stdout, "snag can trace on this host.")
	return nil
}
