package syscalls

import "strings"

// The futex operation classes the aggregates tell apart. A thread pool
// waiting for work sleeps in FUTEX_WAIT_BITSET (glibc's pthread_cond_wait,
// sem_wait, and the JVM's and libuv's parking on them); a thread handing a
// mutex around sleeps in FUTEX_WAIT (glibc's __lll_lock_wait) or, for
// priority-inheritance mutexes, in FUTEX_LOCK_PI.
const (
	FutexOpWait       = "wait"        // FUTEX_WAIT
	FutexOpWaitBitset = "wait_bitset" // FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI
	FutexOpLockPI     = "lock_pi"     // FUTEX_LOCK_PI, FUTEX_LOCK_PI2, FUTEX_TRYLOCK_PI
	FutexOpWake       = "wake"        // every other operation: wakes, requeues, UNLOCK_PI
)

// FutexOps lists the classes in the order of the kernel side's enum
// futex_class (bpf/snag.h): wake, wait, wait_bitset, lock_pi.
var FutexOps = [...]string{FutexOpWake, FutexOpWait, FutexOpWaitBitset, FutexOpLockPI}

// futexCmdMask keeps the command of a futex op word, dropping
// FUTEX_PRIVATE_FLAG (128) and FUTEX_CLOCK_REALTIME (256).
const futexCmdMask = 0x7f

// futexCmds are the futex commands by name, as strace prints them without
// the _PRIVATE suffix.
var futexCmds = map[string]uint64{
	"FUTEX_WAIT": 0, "FUTEX_WAKE": 1, "FUTEX_FD": 2, "FUTEX_REQUEUE": 3,
	"FUTEX_CMP_REQUEUE": 4, "FUTEX_WAKE_OP": 5, "FUTEX_LOCK_PI": 6,
	"FUTEX_UNLOCK_PI": 7, "FUTEX_TRYLOCK_PI": 8, "FUTEX_WAIT_BITSET": 9,
	"FUTEX_WAKE_BITSET": 10, "FUTEX_WAIT_REQUEUE_PI": 11,
	"FUTEX_CMP_REQUEUE_PI": 12, "FUTEX_LOCK_PI2": 13,
}

// Futex op word flags.
const (
	FutexPrivateFlag   = 128
	FutexClockRealtime = 256
)

// FutexOpOf returns the class of a futex call from its op argument
// (futex's second argument, flags included).
func FutexOpOf(op uint64) string {
	switch op & futexCmdMask {
	case 0:
		return FutexOpWait
	case 9, 11:
		return FutexOpWaitBitset
	case 6, 8, 13:
		return FutexOpLockPI
	}
	return FutexOpWake
}

// ParseFutexOp reads a futex op the way strace prints it,
// "FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME", into the op word.
func ParseFutexOp(s string) (uint64, bool) {
	var op uint64
	cmd := false
	for _, part := range strings.Split(s, "|") {
		switch part = strings.TrimSpace(part); part {
		case "FUTEX_PRIVATE_FLAG":
			op |= FutexPrivateFlag
		case "FUTEX_CLOCK_REALTIME":
			op |= FutexClockRealtime
		default:
			if name, ok := strings.CutSuffix(part, "_PRIVATE"); ok {
				part = name
				op |= FutexPrivateFlag
			}
			c, ok := futexCmds[part]
			if !ok || cmd {
				return 0, false
			}
			op |= c
			cmd = true
		}
	}
	return op, cmd
}
