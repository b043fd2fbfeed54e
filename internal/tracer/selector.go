package tracer

import "regexp"

// A Selector names the processes a continuous trace follows: a process is
// traced when any of the criteria given matches it. Regular expressions
// match anywhere in their string unless anchored.
type Selector struct {
	PIDs    []int
	Comm    *regexp.Regexp // /proc/PID/comm
	Exe     *regexp.Regexp // the executable's path
	Cmdline *regexp.Regexp // the arguments joined by spaces
	// Cgroups are cgroup v2 directories (a container, a systemd unit, a
	// pod), absolute or relative to the cgroup2 mount; every process in
	// them or below them is traced.
	Cgroups []string
}
