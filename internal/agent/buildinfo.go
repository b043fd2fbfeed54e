package agent

import (
	"runtime"
	"runtime/debug"
)

// buildInfo returns snag_build_info's label values: the main module's
// version ("(devel)" for a build from a work tree) and Go's.
func buildInfo() []string {
	v := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return []string{v, runtime.Version()}
}
