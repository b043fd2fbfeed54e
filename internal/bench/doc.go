// Package bench measures what tracing costs a process, for `make bench`.
//
// The same workloads (a pinned getppid loop, a pipe and futex mix, redis
// under redis-benchmark) run untraced, under `snag attach`, under
// `strace -f` and under no-op BPF programs on the syscall raw tracepoints:
// the floor any tracer hooked there pays. Conditions are interleaved round
// by round against one long-running workload process, progress is read
// without adding syscalls to it, and ratios are taken within a round, so
// drift on a shared machine moves every condition alike.
//
// The soak (-soak) holds `snag serve` to an always-on agent's targets: it
// follows a mix of 50 processes, busy, paced, idle and short-lived ones,
// picked by one --cmdline regexp, for a long while, between two untraced
// halves as long, and is sampled every window for its CPU, RSS, drops and
// windows.
package bench
