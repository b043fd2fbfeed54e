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

// denseHist is the kernel side's layout, the reference Histogram must match.
type denseHist [HistBuckets]uint64

func (d *denseHist) check(t *testing.T, h *Histogram) {
	t.Helper()
	var got denseHist
	prev := -1
	h.ForEach(func(i int, c uint64) {
		if i <= prev || c == 0 {
			t.Fatalf("ForEach gave bucket %d (count %d) after %d", i, c, prev)
		}
		got[i], prev = c, i
	})
	if got != *d {
		t.Fatalf("buckets differ from the dense reference:\n got %v\nwant %v", nonEmpty(got[:]), nonEmpty(d[:]))
	}
	var n uint64
	buckets := 0
	for _, c := range d {
		n += c
		if c != 0 {
			buckets++
		}
	}
	if h.Count() != n || h.Len() != buckets {
		t.Fatalf("Count %d Len %d, want %d and %d", h.Count(), h.Len(), n, buckets)
	}
}

func nonEmpty(d []uint64) map[int]uint64 {
	m := map[int]uint64{}
	for i, c := range d {
		if c != 0 {
			m[i] = c
		}
	}
	return m
}

func TestHistSparseMatchesDense(t *testing.T) {
	cases := []struct {
		name   string
		a, b   []uint64 // latencies added to two histograms then merged
		counts []uint64 // a dense array added to the merge with AddCounts
	}{
		{"empty", nil, nil, nil},
		{"one value", []uint64{300}, nil, nil},
		{"into empty", nil, []uint64{5, 300, 1e9}, nil},
		{"same groups, in place", []uint64{300, 310, 5000}, []uint64{305, 5100}, nil},
		{"new groups before, between and after", []uint64{1000, 1e6}, []uint64{3, 40000, 1e12, math.MaxUint64}, nil},
		{"first and last bucket", []uint64{0}, []uint64{math.MaxUint64}, nil},
		{"dense counts", []uint64{700}, nil, func() []uint64 {
			c := make([]uint64, HistBuckets)
			c[0], c[9], c[200], c[HistBuckets-1] = 1, 2, 3, 4
			return c
		}()},
		{"short dense counts", nil, []uint64{9}, []uint64{0, 0, 7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a, b Histogram
			var want denseHist
			for _, v := range tc.a {
				a.Add(v)
				want[HistIndex(v)]++
			}
			for _, v := range tc.b {
				b.Add(v)
				want[HistIndex(v)]++
			}
			bBefore := b.Clone()
			a.Merge(&b)
			a.AddCounts(tc.counts)
			for i, c := range tc.counts {
				want[i] += c
			}
			want.check(t, &a)
			// Merging must not have written to b.
			var wantB denseHist
			bBefore.ForEach(func(i int, c uint64) { wantB[i] = c })
			wantB.check(t, &b)
		})
	}
}

func TestHistCloneSharesNothing(t *testing.T) {
	var h Histogram
	h.Add(1000)
	c := h.Clone()
	c.Add(1000)
	c.Add(1e9)
	if h.Count() != 1 || c.Count() != 3 {
		t.Fatalf("counts %d and %d after adding to the clone, want 1 and 3", h.Count(), c.Count())
	}
}
