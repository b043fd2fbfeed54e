//go:build linux

package bpf

// Traced reports whether pid is in the kernel's traced set: one given at
// load, added since, or followed by the kernel when its parent forked.
func (t *Tracer) Traced(pid int) bool {
	var st uint32
	return t.objs.Traced.Lookup(uint32(pid), &st) == nil && st == uint32(snagTraceStateTRACE_ACTIVE)
}

// Exiting reports whether every thread of pid, a traced process, has
// begun to exit: events of its threads may still come, but it is gone.
func (t *Tracer) Exiting(pid int) bool {
	var st uint32
	return t.objs.Traced.Lookup(uint32(pid), &st) == nil && st == uint32(snagTraceStateTRACE_EXITING)
}
