package recording

import (
	"bytes"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time this process has used. The benchmarks report CPU
// time per event next to wall time, which a busy machine inflates.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// BenchmarkWriteEvent measures the per-event cost of recording a realistic
// mix without stacks, and the compressed bytes each event takes.
func BenchmarkWriteEvent(b *testing.B) {
	evs := mix(1 << 16)
	tr := richTrace()
	tr.Events = nil
	var out countingWriter
	w, err := NewWriter(&out, tr)
	if err != nil {
		b.Fatal(err)
	}
	start := out.n
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for i := 0; i < b.N; i++ {
		if err := w.Event(&evs[i&(len(evs)-1)]); err != nil {
			b.Fatal(err)
		}
		// The recorder flushes about once a second; at two million events
		// a second that is every 2^21 events.
		if i&(1<<21-1) == 1<<21-1 {
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	b.ReportMetric(float64(out.n-start)/float64(b.N), "bytes/event")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/event")
}

// BenchmarkWriteEventStacks is the slow-event case: every event carries a
// stack from a small set, as a few hot call sites produce.
func BenchmarkWriteEventStacks(b *testing.B) {
	evs := mix(1 << 12)
	stacks := richTrace().Events[0].Stack
	for i := range evs {
		evs[i].Stack = stacks[i%3:]
	}
	var out countingWriter
	w, err := NewWriter(&out, richTrace())
	if err != nil {
		b.Fatal(err)
	}
	start := out.n
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := w.Event(&evs[i&(len(evs)-1)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(out.n-start)/float64(b.N), "bytes/event")
}

// BenchmarkRead measures decoding a recording of the realistic mix.
func BenchmarkRead(b *testing.B) {
	const n = 200_000
	tr := richTrace()
	tr.Events = mix(n)
	var buf bytes.Buffer
	if err := Write(&buf, tr); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for i := 0; i < b.N; i++ {
		got, _, err := Read(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		if len(got.Events) != n {
			b.Fatalf("read %d events, want %d", len(got.Events), n)
		}
	}
	cpu := cpuTime(b) - cpu0
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(n)*float64(b.N)/cpu.Seconds(), "events/cpu-s")
}
