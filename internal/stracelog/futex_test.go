package stracelog

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// Futex aggregates are split by operation class as the kernel side splits
// them, and a slow futex event carries the op word in Args[1].
func TestFutexOps(t *testing.T) {
	const head = "100 05:05:22.000000 "
	tests := []struct {
		name string
		line string
		op   string
		word uint64
	}{
		{"cond wait", "futex(0x55d0c2a0, FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME, 0, NULL, FUTEX_BITSET_MATCH_ANY) = 0 <0.500000>", "wait_bitset", 9 | 128 | 256},
		{"timed cond wait", "futex(0xa5b8f0, FUTEX_WAIT_BITSET_PRIVATE, 0, {tv_sec=624, tv_nsec=905148332}, FUTEX_BITSET_MATCH_ANY) = -1 ETIMEDOUT (Connection timed out) <0.020000>", "wait_bitset", 9 | 128},
		{"mutex wait", "futex(0xa5b8f8, FUTEX_WAIT_PRIVATE, 2, NULL) = 0 <0.015000>", "wait", 128},
		{"shared wait", "futex(0x7f00, FUTEX_WAIT, 2, NULL) = -1 EAGAIN (Resource temporarily unavailable) <0.011000>", "wait", 0},
		{"wake", "futex(0xa5b8f8, FUTEX_WAKE_PRIVATE, 1) = 1 <0.012000>", "wake", 1 | 128},
		{"pi lock", "futex(0x601040, FUTEX_LOCK_PI_PRIVATE, NULL) = 0 <0.030000>", "lock_pi", 6 | 128},
		{"pi lock2", "futex(0x601040, FUTEX_LOCK_PI2, NULL) = 0 <0.030000>", "lock_pi", 13},
		{"pi unlock", "futex(0x601040, FUTEX_UNLOCK_PI_PRIVATE) = 0 <0.010000>", "wake", 7 | 128},
		{"requeue", "futex(0x601040, FUTEX_CMP_REQUEUE_PRIVATE, 1, 2147483647, 0x601044, 2) = 1 <0.010000>", "wake", 4 | 128},
		{"raw op", "futex(0x601040, 0x89, 0, NULL, 0xffffffff) = 0 <0.010000>", "wait_bitset", 0x89},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, st, err := Parse(strings.NewReader(head+tt.line+"\n"), Options{Threshold: 10 * time.Millisecond})
			if err != nil || st.Unparsed != 0 {
				t.Fatalf("parse: %v, %+v", err, st)
			}
			if len(tr.Syscalls) != 1 {
				t.Fatalf("stats %+v", tr.Syscalls)
			}
			if s := tr.Syscalls[0]; s.Name != "futex" || s.Op != tt.op || s.Count != 1 {
				t.Errorf("stat %s op %q count %d, want futex %q 1", s.Name, s.Op, s.Count, tt.op)
			}
			if len(tr.Events) != 1 || tr.Events[0].Kind != model.EvSyscall {
				t.Fatalf("events %+v", tr.Events)
			}
			if got := tr.Events[0].Args[1]; got != tt.word {
				t.Errorf("event Args[1] = %#x, want %#x", got, tt.word)
			}
		})
	}
}

// One thread's futex calls of different classes are separate stats,
// calls of one class one stat.
func TestFutexOpsPerThread(t *testing.T) {
	log := `100 05:05:22.000000 futex(0x10, FUTEX_WAIT_PRIVATE, 2, NULL) = 0 <0.000100>
100 05:05:22.000200 futex(0x10, FUTEX_WAIT_PRIVATE, 2, NULL) = 0 <0.000100>
100 05:05:22.000400 futex(0x10, FUTEX_WAKE_PRIVATE, 1) = 0 <0.000010>
100 05:05:22.000500 futex(0x20, FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME, 0, NULL, FUTEX_BITSET_MATCH_ANY <unfinished ...>
101 05:05:22.000600 futex(0x20, FUTEX_WAKE_PRIVATE, 1) = 1 <0.000010>
100 05:05:22.000900 <... futex resumed>) = 0 <0.000400>
100 05:05:22.001000 read(3, "", 10) = 0 <0.000010>
`
	tr, _, err := Parse(strings.NewReader(log), Options{Threshold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, s := range tr.Syscalls {
		got[strings.TrimSpace(strconv.Itoa(s.TID)+" "+s.Name+" "+s.Op)] += s.Count
	}
	want := map[string]uint64{"100 futex wait": 2, "100 futex wake": 1, "100 futex wait_bitset": 1, "100 read": 1, "101 futex wake": 1}
	if len(got) != len(want) || len(tr.Syscalls) != len(want) {
		t.Fatalf("stats %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d calls, want %d", k, got[k], n)
		}
	}
}
