package model

import (
	"testing"
	"time"
)

// Calls counted one by one and merged by thread sum to the same stat.
func TestSyscallStatAddCall(t *testing.T) {
	var a, b, all SyscallStat
	for i, d := range []time.Duration{time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond, 9 * time.Millisecond} {
		failed := i == 2
		all.AddCall(d, failed)
		if i%2 == 0 {
			a.AddCall(d, failed)
		} else {
			b.AddCall(d, failed)
		}
	}
	a.Add(&b)
	if a.Count != 4 || a.Errors != 1 || a.Total != 15*time.Millisecond || a.Max != 9*time.Millisecond {
		t.Errorf("merged: count %d errors %d total %v max %v", a.Count, a.Errors, a.Total, a.Max)
	}
	if a.Count != all.Count || a.Total != all.Total || a.Max != all.Max || a.Quantile(0.5) != all.Quantile(0.5) {
		t.Errorf("merged %+v differs from counted %+v", a, all)
	}
	var neg SyscallStat
	neg.AddCall(-time.Microsecond, false) // a clock step: counted, not in the histogram
	if neg.Count != 1 || neg.Quantile(0.99) != 0 {
		t.Errorf("negative duration: count %d p99 %v", neg.Count, neg.Quantile(0.99))
	}
}

// A sum that includes untimed calls is untimed: its times leave them out.
func TestSyscallStatAddUntimed(t *testing.T) {
	timed := SyscallStat{Count: 2, Total: 10}
	untimed := SyscallStat{Count: 3, Untimed: true}
	for _, tc := range []struct {
		name string
		a, b SyscallStat
		want bool
	}{
		{"timed + timed", timed, timed, false},
		{"untimed + untimed", untimed, untimed, true},
		{"timed + untimed", timed, untimed, true},
		{"untimed + timed", untimed, timed, true},
		{"empty + untimed", SyscallStat{}, untimed, true},
		{"untimed + empty", untimed, SyscallStat{}, true},
		{"empty + timed", SyscallStat{}, timed, false},
	} {
		s := tc.a
		s.Add(&tc.b)
		if s.Untimed != tc.want || s.Count != tc.a.Count+tc.b.Count {
			t.Errorf("%s: untimed %v count %d, want %v and %d", tc.name, s.Untimed, s.Count, tc.want, tc.a.Count+tc.b.Count)
		}
	}
}
