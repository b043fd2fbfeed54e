package otlpprof

import (
	"strconv"
	"testing"

	"github.com/google/pprof/profile"
)

// bigProfile is a busy window: threads × stacks samples, each stack depth
// frames deep over a shared pool of functions, as a worker pool blocked in a
// few libraries gives.
func bigProfile(threads, stacks, depth int) *profile.Profile {
	p := &profile.Profile{
		SampleType:        []*profile.ValueType{{Type: "blocked", Unit: "nanoseconds"}, {Type: "syscalls", Unit: "count"}},
		DefaultSampleType: "blocked",
		PeriodType:        &profile.ValueType{Type: "blocked", Unit: "nanoseconds"},
		Period:            1,
	}
	m := &profile.Mapping{ID: 1, File: "/usr/lib/x86_64-linux-gnu/libmariadb.so.3", BuildID: "0123456789abcdef"}
	p.Mapping = []*profile.Mapping{m}
	loc := func(i int) *profile.Location {
		for len(p.Location) <= i {
			id := uint64(len(p.Location) + 1)
			fn := &profile.Function{ID: id, Name: "fn" + strconv.FormatUint(id, 10), SystemName: "fn" + strconv.FormatUint(id, 10)}
			p.Function = append(p.Function, fn)
			p.Location = append(p.Location, &profile.Location{ID: id, Mapping: m, Address: 0x1000 * id, Line: []profile.Line{{Function: fn}}})
		}
		return p.Location[i]
	}
	for th := range threads {
		for st := range stacks {
			s := &profile.Sample{
				Value:    []int64{int64(1000 + st), 1},
				Label:    map[string][]string{"thread": {"worker-" + strconv.Itoa(th)}, "syscall": {"poll"}},
				NumLabel: map[string][]int64{"tid": {int64(1000 + th)}, "pid": {1000}},
			}
			for d := range depth {
				s.Location = append(s.Location, loc((st*7+d*13)%(stacks*2)))
			}
			p.Sample = append(p.Sample, s)
		}
	}
	return p
}

// BenchmarkEncode: 64 threads × 100 stacks of 30 frames, 6,400 samples,
// converted, marshalled and gzipped as Export does for each window.
func BenchmarkEncode(b *testing.B) {
	p := bigProfile(64, 100, 30)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		body, err := encode(p, Resource{PID: 1000, Comm: "gunicorn"})
		if err != nil {
			b.Fatal(err)
		}
		n = len(body)
	}
	b.ReportMetric(float64(n), "bytes/request")
}
