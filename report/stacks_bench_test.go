package report

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// benchTrace is a recording-sized trace: 100k slow syscalls from 32
// threads over a few hundred distinct stacks.
func benchTrace() (*model.Trace, *model.Analysis) {
	tr, a := stackFixture()
	base := mysqlStack()
	tr.Events = tr.Events[:0]
	for i := range 100_000 {
		stack := append([]model.Frame{}, base...)
		// Vary a middle frame so stacks differ, as call sites do.
		stack[5].Function = fmt.Sprintf("mthd_my_read_%d", i%300)
		stack[5].Addr += uint64(i % 300)
		tid := 4242 + i%32
		tr.Events = append(tr.Events, model.Event{
			Kind: model.EvSyscall, PID: 4242, TID: tid, Syscall: "poll",
			Duration: time.Duration(1e6 + i%1000*1e3), Stack: stack,
		})
	}
	return tr, a
}

func BenchmarkFolded(b *testing.B) {
	tr, a := benchTrace()
	for b.Loop() {
		if err := Folded(io.Discard, tr, a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPprof(b *testing.B) {
	tr, a := benchTrace()
	for b.Loop() {
		if err := Pprof(io.Discard, tr, a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFlameSVG(b *testing.B) {
	tr, a := benchTrace()
	for b.Loop() {
		if err := FlameSVG(io.Discard, tr, a); err != nil {
			b.Fatal(err)
		}
	}
}
