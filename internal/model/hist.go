package model

import (
	"fmt"
	"math/bits"
	"slices"
)

// Log-linear latency histogram shared bit for bit with the BPF side
// (bpf/snag.h: HIST_SUB_BITS, HIST_BUCKETS, hist_index).
//
// Values below 2^HistSubBits nanoseconds get one bucket each; above that,
// every power of two is split into 2^HistSubBits equal sub-buckets. Reporting
// a bucket's midpoint is then off by at most half a sub-bucket relative to
// its lower bound: 1/2^(HistSubBits+1) = 6.25% with 3 sub-bits, inside the
// 10% percentile error the reports promise.
const (
	HistSubBits = 3
	histSub     = 1 << HistSubBits
	// HistMaxLog2 caps the range at 2^41 ns (about 36 minutes); longer
	// calls land in the last bucket and their exact maximum is kept apart.
	HistMaxLog2 = 40
	HistBuckets = (HistMaxLog2 - HistSubBits + 2) * histSub
)

// HistIndex returns the bucket of a latency in nanoseconds.
func HistIndex(ns uint64) int {
	if ns < histSub {
		return int(ns)
	}
	msb := bits.Len64(ns) - 1
	if msb > HistMaxLog2 {
		return HistBuckets - 1
	}
	return (msb-HistSubBits+1)*histSub + int((ns>>(msb-HistSubBits))&(histSub-1))
}

// HistBounds returns the inclusive lower and exclusive upper bound of bucket i.
func HistBounds(i int) (lo, hi uint64) {
	if i < histSub {
		return uint64(i), uint64(i) + 1
	}
	msb := i/histSub + HistSubBits - 1
	sub := uint64(i % histSub)
	shift := msb - HistSubBits
	lo = (histSub + sub) << shift
	return lo, lo + 1<<shift
}

// Histogram counts latencies per bucket. The zero value is empty and usable.
//
// It keeps only the powers of two it has values in, each as the
// 2^HistSubBits buckets splitting it: a thread's calls of one syscall
// span one to a few of them, and a trace holds one histogram per thread,
// syscall and futex operation (2,000 threads: some 8,000), which the
// HistBuckets counts of the kernel side's layout (2.5 KiB) would fill
// with zeros. A bucket is still found without a search, for Add is
// called for every line of an strace log.
//
// A copy shares the counts of the original: Clone one before adding to it.
type Histogram struct {
	// octaves has bit g set when groups holds buckets g*histSub to
	// (g+1)*histSub-1; groups are in order of g.
	octaves uint64
	groups  []histGroup
}

// histGroup is the buckets of one power of two (below histSub: of the
// values one by one).
type histGroup [histSub]uint64

// histGroups is the number of groups of the layout; octaves has a bit each.
const histGroups = HistBuckets / histSub

var _ = [64 - histGroups]struct{}{} // octaves has a bit for every group

// Add records one latency.
func (h *Histogram) Add(ns uint64) { h.AddBucket(HistIndex(ns), 1) }

// AddBucket adds n to the count of bucket i (0 <= i < HistBuckets).
func (h *Histogram) AddBucket(i int, n uint64) {
	if n == 0 {
		return
	}
	if i < 0 || i >= HistBuckets {
		panic(fmt.Sprintf("model: histogram bucket %d out of range [0,%d)", i, HistBuckets))
	}
	bit := uint64(1) << (i / histSub)
	k := bits.OnesCount64(h.octaves & (bit - 1))
	if h.octaves&bit == 0 {
		h.groups = slices.Insert(h.groups, k, histGroup{})
		h.octaves |= bit
	}
	h.groups[k][i%histSub] += n
}

// AddCounts adds counts[i] to bucket i for every i: the dense layout of
// the kernel side (HistBuckets counts; trailing empty ones may be left out).
func (h *Histogram) AddCounts(counts []uint64) {
	if len(counts) > HistBuckets {
		panic(fmt.Sprintf("model: %d histogram counts, more than the %d buckets", len(counts), HistBuckets))
	}
	var o Histogram
	for i, c := range counts {
		if c != 0 {
			o.octaves |= 1 << (i / histSub)
		}
	}
	if o.octaves == 0 {
		return
	}
	o.groups = make([]histGroup, 0, bits.OnesCount64(o.octaves))
	for g := range histGroups {
		if o.octaves&(1<<g) != 0 {
			var grp histGroup
			copy(grp[:], counts[g*histSub:min(len(counts), (g+1)*histSub)])
			o.groups = append(o.groups, grp)
		}
	}
	if h.octaves == 0 {
		*h = o // as the kernel side's readout does: no copy to merge into
		return
	}
	h.Merge(&o)
}

// Merge adds every count of o into h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.octaves == 0 {
		return
	}
	if h.octaves|o.octaves == h.octaves {
		// Nothing new, as when summing a syscall over threads: in place.
		for k, g := range o.groupIndexes() {
			h.groups[bits.OnesCount64(h.octaves&(1<<g-1))].add(&o.groups[k])
		}
		return
	}
	out := Histogram{octaves: h.octaves | o.octaves}
	out.groups = make([]histGroup, bits.OnesCount64(out.octaves))
	for k, g := range h.groupIndexes() {
		out.groups[bits.OnesCount64(out.octaves&(1<<g-1))] = h.groups[k]
	}
	for k, g := range o.groupIndexes() {
		out.groups[bits.OnesCount64(out.octaves&(1<<g-1))].add(&o.groups[k])
	}
	*h = out
}

func (g *histGroup) add(o *histGroup) {
	for i, c := range o {
		g[i] += c
	}
}

// groupIndexes yields, for each group h holds, its position in h.groups
// and its number in the layout.
func (h *Histogram) groupIndexes() func(yield func(k, g int) bool) {
	return func(yield func(k, g int) bool) {
		for k, m := 0, h.octaves; m != 0; k, m = k+1, m&(m-1) {
			if !yield(k, bits.TrailingZeros64(m)) {
				return
			}
		}
	}
}

// Clone returns a copy of h that shares nothing with it.
func (h *Histogram) Clone() Histogram {
	return Histogram{octaves: h.octaves, groups: slices.Clone(h.groups)}
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 {
	var n uint64
	for i := range h.groups {
		for _, c := range h.groups[i] {
			n += c
		}
	}
	return n
}

// Len is the number of non-empty buckets.
func (h *Histogram) Len() int {
	n := 0
	h.ForEach(func(int, uint64) { n++ })
	return n
}

// Quantile returns the q-quantile (0 < q <= 1) as the midpoint of the bucket
// holding it, or 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) uint64 {
	total := h.Count()
	if total == 0 {
		return 0
	}
	rank := uint64(q * float64(total))
	if float64(rank) < q*float64(total) || rank == 0 {
		rank++
	}
	var seen uint64
	for k, g := range h.groupIndexes() {
		for s, c := range h.groups[k] {
			if seen += c; seen >= rank {
				lo, hi := HistBounds(g*histSub + s)
				return lo + (hi-lo)/2
			}
		}
	}
	return 0
}

// ForEach calls f for every non-empty bucket, in order of latency.
func (h *Histogram) ForEach(f func(bucket int, count uint64)) {
	for k, g := range h.groupIndexes() {
		for s, c := range h.groups[k] {
			if c != 0 {
				f(g*histSub+s, c)
			}
		}
	}
}

// Sub takes o's counts out of h, o being an earlier reading of the same
// cumulative counts (no bucket of o above h's). h gets counts of its own:
// a copy it shared them with keeps the reading.
func (h *Histogram) Sub(o *Histogram) {
	var out Histogram
	h.ForEach(func(i int, c uint64) {
		if c -= min(c, o.bucket(i)); c != 0 {
			out.AddBucket(i, c)
		}
	})
	*h = out
}

// bucket is the count of bucket i.
func (h *Histogram) bucket(i int) uint64 {
	bit := uint64(1) << (i / histSub)
	if h.octaves&bit == 0 {
		return 0
	}
	return h.groups[bits.OnesCount64(h.octaves&(bit-1))][i%histSub]
}

// Last is the slowest non-empty bucket, -1 for an empty histogram.
func (h *Histogram) Last() int {
	if h.octaves == 0 {
		return -1
	}
	k, g := len(h.groups)-1, 63-bits.LeadingZeros64(h.octaves)
	for s := histSub - 1; s >= 0; s-- {
		if h.groups[k][s] != 0 {
			return g*histSub + s
		}
	}
	return -1 // an all-zero group: only from counts that were zero
}
