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
