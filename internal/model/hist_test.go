package model

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

func TestHistIndexIsMonotonicAndContiguous(t *testing.T) {
	prev := -1
	for ns := uint64(0); ns < 1<<16; ns++ {
		i := HistIndex(ns)
		if i != prev && i != prev+1 {
			t.Fatalf("HistIndex(%d) = %d after %d: not contiguous", ns, i, prev)
		}
		lo, hi := HistBounds(i)
		if ns < lo || ns >= hi {
			t.Fatalf("HistIndex(%d) = %d with bounds [%d,%d)", ns, i, lo, hi)
		}
		prev = i
	}
	if got := HistIndex(math.MaxUint64); got != HistBuckets-1 {
		t.Fatalf("HistIndex(max) = %d, want last bucket %d", got, HistBuckets-1)
	}
	if lo, _ := HistBounds(HistBuckets - 1); HistIndex(lo) != HistBuckets-1 {
		t.Fatalf("last bucket's lower bound %d does not map back to it", lo)
	}
}

func TestHistQuantileErrorBound(t *testing.T) {
	cases := []struct {
		name string
		gen  func(r *rand.Rand) uint64
	}{
		{"uniform 1us-1s", func(r *rand.Rand) uint64 { return 1000 + r.Uint64N(1e9) }},
		{"lognormal around 50ms", func(r *rand.Rand) uint64 { return uint64(50e6 * math.Exp(r.NormFloat64()*0.3)) }},
		{"bimodal 300ns and 20ms", func(r *rand.Rand) uint64 {
			if r.IntN(10) < 9 {
				return 250 + r.Uint64N(100)
			}
			return 20e6 + r.Uint64N(1e6)
		}},
		{"exact small values", func(r *rand.Rand) uint64 { return r.Uint64N(8) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var h Histogram
			vals := make([]uint64, 20000)
			for i := range vals {
				vals[i] = tc.gen(r)
				h.Add(vals[i])
			}
			sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
			for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
				rank := int(math.Ceil(q*float64(len(vals)))) - 1
				want := float64(vals[rank])
				got := float64(h.Quantile(q))
				if want == 0 {
					if got > 1 {
						t.Errorf("q%.3f: got %v, want 0", q, got)
					}
					continue
				}
				if err := math.Abs(got-want) / want; err > 0.0625+1e-9 {
					t.Errorf("q%.3f: got %.0f want %.0f: error %.2f%% > 6.25%%", q, got, want, err*100)
				}
			}
		})
	}
}

func TestHistEmptyAndMerge(t *testing.T) {
	var a, b Histogram
	if a.Quantile(0.5) != 0 {
		t.Fatal("empty histogram quantile not 0")
	}
	a.Add(100)
	b.Add(1000)
	b.Add(1000)
	a.Merge(&b)
	a.Merge(nil)
	if a.Count() != 3 {
		t.Fatalf("count %d, want 3", a.Count())
	}
	if p := a.Quantile(0.5); p < 937 || p > 1063 {
		t.Fatalf("median %d, want about 1000", p)
	}
}
