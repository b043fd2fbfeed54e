package bpf

// Mirrors of snag.h constants bpf2go does not carry over (it generates
// types and enums, not #defines). TestConstants checks them against the object.
const (
	MaxSyscalls  = 512
	StackCopyMax = 16384
	HistBuckets  = 312
	// FutexNrBase + a futex_class is the number a futex call is aggregated under.
	FutexNrBase = MaxSyscalls
)
