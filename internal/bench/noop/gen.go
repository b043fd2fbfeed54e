// Package noop holds do-nothing BPF programs for the syscall raw
// tracepoints: the cost floor `make bench` compares snag against.
package noop

//go:generate go tool bpf2go -tags linux -target amd64,arm64 noop noop.bpf.c -- -Wall -Werror -O2
