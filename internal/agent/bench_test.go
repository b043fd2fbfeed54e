package agent

import (
	"fmt"
	"io"
	"net/http/httptest"
	"testing"
)

// benchWindow is a busy window: 50 gevent processes, half of them
// stalling, 100 slow calls each with a stack.
func benchWindow() []proc {
	var procs []proc
	for i := range 50 {
		procs = append(procs, proc{pid: 1000 + i, comm: fmt.Sprintf("app%d", i), stall: i%2 == 0})
	}
	return procs
}

func BenchmarkWindow(b *testing.B) {
	a := New(Config{Log: io.Discard})
	w, evs := window(0, benchWindow()...)
	b.ReportAllocs()
	for b.Loop() {
		for i := range evs {
			a.Event(&evs[i])
		}
		if err := a.Window(w); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScrape(b *testing.B) {
	a := New(Config{Log: io.Discard})
	w, evs := window(0, benchWindow()...)
	for i := range evs {
		a.Event(&evs[i])
	}
	if err := a.Window(w); err != nil {
		b.Fatal(err)
	}
	h := a.Handler()
	b.ReportAllocs()
	var n int
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", PathMetrics, nil))
		n = rec.Body.Len()
	}
	b.ReportMetric(float64(n), "bytes/scrape")
}
