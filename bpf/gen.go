// Package bpf holds snag's kernel programs and the loader that attaches them
// and turns ring-buffer records and map contents into the trace model.
package bpf

//go:generate go tool bpf2go -tags linux -target amd64,arm64 -type event -type agg_val -type thread_aggs -type inflight -type sysinfo -type py_proc -type py_flag -type event_kind -type fd_kind -type sys_flag -type drop_reason -type trace_state -type sig_sender -type futex_class snag snag.bpf.c -- -I./headers -Wall -Werror -O2 -g
