package model

import (
	"slices"
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

// A window's calls are the later reading less the earlier, exactly but for
// Max, which is exact when the window holds the slowest call so far and
// else the top of its slowest bucket.
func TestSyscallStatSince(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name          string
		before, after []time.Duration // calls before the earlier reading, and after it
		wantMax       time.Duration
		exactMax      bool
	}{
		{"no earlier calls", nil, []time.Duration{ms, 5 * ms}, 5 * ms, true},
		{"a new slowest call", []time.Duration{2 * ms}, []time.Duration{ms, 9 * ms}, 9 * ms, true},
		{"faster calls than before", []time.Duration{9 * ms}, []time.Duration{ms, 3 * ms}, 3 * ms, false},
		{"nothing new", []time.Duration{9 * ms}, nil, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var earlier, window SyscallStat
			for _, d := range tc.before {
				earlier.AddCall(d, false)
			}
			later := earlier
			later.Hist = earlier.Hist.Clone() // a copy shares the counts
			for i, d := range tc.after {
				later.AddCall(d, i == 0)
				window.AddCall(d, i == 0)
			}
			later.Since(&earlier)
			if later.Count != window.Count || later.Errors != window.Errors || later.Total != window.Total || !sameBuckets(&later.Hist, &window.Hist) {
				t.Errorf("since: count %d errors %d total %v; want %d %d %v and the window's histogram",
					later.Count, later.Errors, later.Total, window.Count, window.Errors, window.Total)
			}
			if tc.exactMax && later.Max != tc.wantMax {
				t.Errorf("max %v, want exactly %v", later.Max, tc.wantMax)
			}
			if !tc.exactMax && (later.Max < tc.wantMax || later.Max > tc.wantMax+tc.wantMax/8) {
				t.Errorf("max %v, want %v to 1/8 over", later.Max, tc.wantMax)
			}
		})
	}
}

func sameBuckets(a, b *Histogram) bool {
	type bucket struct {
		i int
		c uint64
	}
	var x, y []bucket
	a.ForEach(func(i int, c uint64) { x = append(x, bucket{i, c}) })
	b.ForEach(func(i int, c uint64) { y = append(y, bucket{i, c}) })
	return slices.Equal(x, y)
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

// Programs measured in samples are scaled to every traced syscall; with
// no traced syscall in a sample there is no figure, and the error says so.
func TestCostScaled(t *testing.T) {
	progs := []ProgramCost{{Name: "sys_enter", Syscall: true, RunTime: 1000, Runs: 10}}
	for _, tc := range []struct {
		name     string
		c        Cost
		wantRun  time.Duration
		wantRuns uint64
		wantErr  bool
	}{
		{"always on", Cost{Syscalls: 100, Programs: progs}, 1000, 10, false},
		{"a tenth sampled", Cost{Syscalls: 100, StatsSampled: true, SampledSyscalls: 10, Programs: progs}, 10000, 100, false},
		{"all sampled", Cost{Syscalls: 100, StatsSampled: true, SampledSyscalls: 100, Programs: progs}, 1000, 10, false},
		{"none sampled", Cost{Syscalls: 100, StatsSampled: true, Programs: progs}, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.c.Scaled()
			run, runs := got.RunTime(false)
			if run != tc.wantRun || runs != tc.wantRuns || (got.StatsError != "") != tc.wantErr {
				t.Errorf("run %v runs %d error %q; want %v %d error %v", run, runs, got.StatsError, tc.wantRun, tc.wantRuns, tc.wantErr)
			}
			if tc.c.Programs[0].RunTime != 1000 {
				t.Error("Scaled changed the cost it was called on")
			}
		})
	}
}
