package model

import "math/bits"

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
type Histogram struct {
	Buckets [HistBuckets]uint64
}

// Add records one latency.
func (h *Histogram) Add(ns uint64) { h.Buckets[HistIndex(ns)]++ }

// Merge adds every count of o into h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil {
		return
	}
	for i, c := range o.Buckets {
		h.Buckets[i] += c
	}
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Buckets {
		n += c
	}
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
	for i, c := range h.Buckets {
		seen += c
		if seen >= rank {
			lo, hi := HistBounds(i)
			return lo + (hi-lo)/2
		}
	}
	return 0
}

// ForEach calls f for every non-empty bucket, in order of latency.
func (h *Histogram) ForEach(f func(bucket int, count uint64)) {
	for i, c := range h.Buckets {
		if c != 0 {
			f(i, c)
		}
	}
}
