package syscalls

import "testing"

func TestFutexOpOf(t *testing.T) {
	tests := []struct {
		name string
		op   uint64
		want string
	}{
		{"FUTEX_WAIT", 0, FutexOpWait},
		{"FUTEX_WAIT_PRIVATE", 128, FutexOpWait},
		{"FUTEX_WAKE_PRIVATE", 129, FutexOpWake},
		{"FUTEX_FD", 2, FutexOpWake},
		{"FUTEX_REQUEUE", 3, FutexOpWake},
		{"FUTEX_CMP_REQUEUE_PRIVATE", 132, FutexOpWake},
		{"FUTEX_WAKE_OP_PRIVATE", 133, FutexOpWake},
		{"FUTEX_LOCK_PI", 6, FutexOpLockPI},
		{"FUTEX_UNLOCK_PI_PRIVATE", 135, FutexOpWake},
		{"FUTEX_TRYLOCK_PI", 8, FutexOpLockPI},
		{"FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME", 9 | 128 | 256, FutexOpWaitBitset},
		{"FUTEX_WAKE_BITSET", 10, FutexOpWake},
		{"FUTEX_WAIT_REQUEUE_PI_PRIVATE", 139, FutexOpWaitBitset},
		{"FUTEX_CMP_REQUEUE_PI", 12, FutexOpWake},
		{"FUTEX_LOCK_PI2_PRIVATE", 141, FutexOpLockPI},
		{"unknown command 14", 14, FutexOpWake},
	}
	for _, tt := range tests {
		if got := FutexOpOf(tt.op); got != tt.want {
			t.Errorf("FutexOpOf(%d) (%s) = %q, want %q", tt.op, tt.name, got, tt.want)
		}
		if tt.name[0] != 'F' {
			continue
		}
		if op, ok := ParseFutexOp(tt.name); !ok || op != tt.op {
			t.Errorf("ParseFutexOp(%q) = %d, %v, want %d", tt.name, op, ok, tt.op)
		}
	}
}

func TestParseFutexOpRejects(t *testing.T) {
	for _, s := range []string{"", "0x80", "FUTEX_WAIT|FUTEX_WAKE", "FUTEX_CLOCK_REALTIME", "FUTEX_NOPE_PRIVATE"} {
		if op, ok := ParseFutexOp(s); ok {
			t.Errorf("ParseFutexOp(%q) = %d, want failure", s, op)
		}
	}
	if op, ok := ParseFutexOp("FUTEX_WAIT|FUTEX_PRIVATE_FLAG"); !ok || op != 128 {
		t.Errorf("ParseFutexOp(FUTEX_WAIT|FUTEX_PRIVATE_FLAG) = %d, %v, want 128", op, ok)
	}
}
