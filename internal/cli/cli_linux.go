//go:build linux

package cli

import (
	"errors"

	"github.com/snagtrace/snag/internal/features"
	"github.com/snagtrace/snag/internal/tracer"
)

// platformInit runs before anything else: a `snag run` child re-executed
// as the exec shim never returns from it.
func platformInit() { tracer.MaybeExecShim() }

// unsupported tells whether err says that tracing cannot start here (exit 3).
func unsupported(err error) bool {
	var missing *features.MissingError
	return errors.As(err, &missing)
}
