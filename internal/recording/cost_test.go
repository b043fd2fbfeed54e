package recording

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

func costTrace() *model.Trace {
	tr := richTrace()
	tr.Cost = model.Cost{
		Known: true,
		Programs: []model.ProgramCost{
			{Name: "sched_switch", RunTime: 700 * time.Microsecond, Runs: 6500},
			{Name: "sys_exit", Syscall: true, RunTime: 9500 * time.Microsecond, Runs: 81938},
			{Name: "sys_enter", Syscall: true, RunTime: 6300 * time.Microsecond, Runs: 81933},
		},
		Syscalls:    50424,
		Events:      212,
		SnagCPU:     7 * time.Millisecond,
		SnagPeakRSS: 33894400,
	}
	return tr
}

// The cost round-trips, measured or not, and with a reason for a run time
// the kernel could not measure.
func TestRoundTripCost(t *testing.T) {
	noStats := costTrace()
	noStats.Cost.Programs = nil
	noStats.Cost.StatsError = "enable BPF run-time statistics: operation not permitted"
	for name, want := range map[string]*model.Trace{
		"measured": costTrace(), "without stats": noStats, "unknown": richTrace(),
	} {
		got, st, err := Read(bytes.NewReader(encode(t, want)))
		if err != nil || st.Truncated {
			t.Fatalf("%s: read: %v, %+v", name, err, st)
		}
		if !reflect.DeepEqual(got.Cost, want.Cost) {
			t.Errorf("%s: cost\n got %+v\nwant %+v", name, got.Cost, want.Cost)
		}
	}
}

// A recording from before the cost, which follows the futex ops, reads
// with everything else and the cost unknown.
func TestRecordingWithoutCost(t *testing.T) {
	want := costTrace()
	got, st, err := Read(bytes.NewReader(writeWith(t, want, appendedFutexOps)))
	if err != nil || st.Truncated {
		t.Fatalf("read: %v, %+v", err, st)
	}
	want.Source = "recording"
	want.Cost = model.Cost{}
	want.Drops.Backlog = 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("trace:\n got %+v\nwant %+v", got, want)
	}
}

// A recording from before the backlog drops, which follow the cost, reads
// with its cost and Backlog 0; one with them keeps them.
func TestRecordingWithoutBacklog(t *testing.T) {
	want := costTrace()
	if want.Drops.Backlog == 0 {
		t.Fatal("the test trace has no backlog drops to lose")
	}
	got, _, err := Read(bytes.NewReader(writeWith(t, want, appendedBacklog)))
	if err != nil || got.Drops != want.Drops {
		t.Fatalf("drops %+v, %v; want %+v", got.Drops, err, want.Drops)
	}
	got, st, err := Read(bytes.NewReader(writeWith(t, want, appendedCost)))
	if err != nil || st.Truncated {
		t.Fatalf("read: %v, %+v", err, st)
	}
	want.Source = "recording"
	want.Drops.Backlog = 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("trace:\n got %+v\nwant %+v", got, want)
	}
}

// A killed recorder leaves no final record, and no cost.
func TestCostNeedsTheFinalRecord(t *testing.T) {
	tr := costTrace()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, tr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range tr.Events {
		if err := w.Event(&tr.Events[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, st, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil || !st.Rebuilt {
		t.Fatalf("read: %v, %+v; want rebuilt", err, st)
	}
	if got.Cost.Known {
		t.Errorf("cost %+v without a final record", got.Cost)
	}
}

// A recording from before the stack backlog drops, which follow the
// backlog drops, reads with those and StackBacklog 0; one with them keeps
// them.
func TestRecordingWithoutStackBacklog(t *testing.T) {
	want := costTrace()
	want.Drops.StackBacklog = 9
	got, _, err := Read(bytes.NewReader(writeWith(t, want, appendedStackBacklog)))
	if err != nil || got.Drops != want.Drops {
		t.Fatalf("drops %+v, %v; want %+v", got.Drops, err, want.Drops)
	}
	got, st, err := Read(bytes.NewReader(writeWith(t, want, appendedBacklog)))
	if err != nil || st.Truncated {
		t.Fatalf("read: %v, %+v", err, st)
	}
	want.Source = "recording"
	want.Drops.StackBacklog = 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("trace:\n got %+v\nwant %+v", got, want)
	}
}
