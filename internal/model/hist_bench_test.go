package model

import (
	"math/rand/v2"
	"testing"
)

// latencies are a mix like a traced thread's: most calls fast, a tail slow.
func benchLatencies() []uint64 {
	r := rand.New(rand.NewPCG(3, 4))
	vals := make([]uint64, 4096)
	for i := range vals {
		if r.IntN(10) < 9 {
			vals[i] = 200 + r.Uint64N(2000)
		} else {
			vals[i] = 1e6 + r.Uint64N(50e6)
		}
	}
	return vals
}

func BenchmarkHistAdd(b *testing.B) {
	vals := benchLatencies()
	var h Histogram
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.Add(vals[i&4095])
	}
}

func BenchmarkHistMerge(b *testing.B) {
	var hs [64]Histogram
	for i, v := range benchLatencies() {
		hs[i%64].Add(v)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var sum Histogram
		for j := range hs {
			sum.Merge(&hs[j])
		}
	}
}

func BenchmarkHistQuantile(b *testing.B) {
	var h Histogram
	for _, v := range benchLatencies() {
		h.Add(v)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.Quantile(0.99)
	}
}
