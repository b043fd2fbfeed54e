package bench

import (
	"math"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{5, 5, 1}, 5},
	} {
		in := append([]float64(nil), tc.in...)
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Errorf("median reordered its input: %v", tc.in)
			}
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
}

func ok(thr float64) sample { return sample{ok: true, throughput: thr} }

func TestRunsRatio(t *testing.T) {
	r := runs{
		condUntraced: {ok(100), ok(200), ok(100)},
		condSnag:     {ok(50), ok(150), {}},
		condFloor:    {ok(100), ok(100)},
	}
	for _, tc := range []struct {
		name string
		a, b string
		want float64
	}{
		// Round 3 failed for snag: only rounds 1 and 2 pair up, and each
		// round is compared with itself (0.5 and 0.75), not medians with
		// medians (150/150).
		{"paired within rounds", condSnag, condUntraced, 0.625},
		{"shorter series", condFloor, condUntraced, 0.75},
		{"missing condition", condStrace, condUntraced, math.NaN()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := r.ratio(tc.a, tc.b)
			if got != tc.want && !(math.IsNaN(got) && math.IsNaN(tc.want)) {
				t.Errorf("ratio(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestRunsExtraNS(t *testing.T) {
	// 2M/s is 500 ns per call, 4M/s 250 ns: 250 ns more per call.
	r := runs{condSnag: {ok(2e6)}, condFloor: {ok(4e6)}}
	if got := r.extraNS(condSnag, condFloor); math.Abs(got-250) > 1e-9 {
		t.Errorf("extraNS = %v, want 250", got)
	}
}

func TestRunsCPU(t *testing.T) {
	cpu := func(thr, nsPerOp float64) sample { return sample{ok: true, throughput: thr, cpuPerOp: nsPerOp / 1e9} }
	// Round 2's snag throughput fell to a quarter (the CPU was taken
	// away), its CPU per op did not: the CPU figures stay put.
	r := runs{
		condSnag:  {cpu(2e6, 330), cpu(0.5e6, 330), cpu(2e6, 330)},
		condFloor: {cpu(2.2e6, 300), cpu(2.2e6, 300), {}},
	}
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"cpuRatio", r.cpuRatio(condSnag, condFloor), 300.0 / 330},
		{"extraCPUNS", r.extraCPUNS(condSnag, condFloor), 30},
		{"ratio, for contrast", r.ratio(condSnag, condFloor), (2/2.2 + 0.5/2.2) / 2},
	} {
		if math.Abs(tc.got-tc.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestRunsStat(t *testing.T) {
	r := runs{condSnag: {
		{ok: true, throughput: 10, tracerCPU: 0.01, maxRSS: 30 << 20},
		{},
		{ok: true, throughput: 30, tracerCPU: 0.03, maxRSS: 40 << 20},
		{ok: true, throughput: 20, tracerCPU: 0.02, maxRSS: 20 << 20},
	}}
	s := r.stat(condSnag, throughputOf)
	if s.n != 3 || s.median != 20 || s.lo != 10 || s.hi != 30 {
		t.Errorf("throughput stat = %+v, want n 3, median 20, range 10..30", s)
	}
	if s := r.stat(condSnag, rssOf); s.hi != 40<<20 {
		t.Errorf("peak RSS = %v, want the largest of the rounds", s.hi)
	}
	if s := r.stat(condStrace, cpuOf); s.n != 0 || !math.IsNaN(s.median) {
		t.Errorf("stat of a condition never measured = %+v, want NaN", s)
	}
}

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		met  bool
		v    float64
		want string
	}{
		{true, 0.95, "PASS"},
		{false, 0.5, "MISS"},
		{false, math.NaN(), "n/a"},
		// NaN compares false, but the verdict must not read as a miss
		// measured.
		{true, math.NaN(), "n/a"},
	} {
		if got := verdict(tc.met, tc.v); got != tc.want {
			t.Errorf("verdict(%v, %v) = %s, want %s", tc.met, tc.v, got, tc.want)
		}
	}
}
