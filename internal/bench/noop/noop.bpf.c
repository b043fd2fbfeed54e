//go:build ignore
// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The cost floor for syscall tracing: programs on the same raw tracepoints
 * as snag that do nothing. Enabling sys_enter/sys_exit moves every syscall
 * of every process onto the slow tracing path whatever the program does, so
 * the throughput a workload keeps under these programs is the best any
 * syscall tracer built on them can reach.
 *
 * No headers: the programs use no helpers and no kernel types, and leaving
 * them out keeps the object identical for every target.
 */
#define SEC(name) __attribute__((section(name), used))

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("raw_tracepoint/sys_enter")
int noop_sys_enter(void *ctx)
{
	return 0;
}

SEC("raw_tracepoint/sys_exit")
int noop_sys_exit(void *ctx)
{
	return 0;
}
