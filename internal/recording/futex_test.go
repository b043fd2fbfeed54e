package recording

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/snagtrace/snag/internal/model"
)

func futexTrace() *model.Trace {
	tr := &model.Trace{Source: "ebpf", Arch: "amd64", StartNS: 1000}
	tr.Syscalls = []model.SyscallStat{
		{PID: 10, TID: 10, Nr: 0, Name: "read", Count: 1},
		{PID: 10, TID: 10, Nr: 110, Name: "getppid", Count: 7, Untimed: true},
		{PID: 10, TID: 11, Nr: 202, Name: "futex", Op: "wait_bitset", Count: 2},
		{PID: 10, TID: 11, Nr: 202, Name: "futex", Op: "wake", Count: 3},
		{PID: 10, TID: 12, Nr: 449, Name: "futex_waitv", Count: 4},
		{PID: 10, TID: 12, Nr: 202, Name: "futex", Op: "wait", Count: 5},
	}
	return tr
}

func TestRoundTripFutexOps(t *testing.T) {
	want := futexTrace()
	got, st, err := Read(bytes.NewReader(encode(t, want)))
	if err != nil || st.Truncated {
		t.Fatalf("read: %v, %+v", err, st)
	}
	if !reflect.DeepEqual(got.Syscalls, want.Syscalls) {
		t.Errorf("syscalls:\n got %+v\nwant %+v", got.Syscalls, want.Syscalls)
	}
}

// The ops follow every other field of a final record: a payload cut
// before them is what an older writer wrote, and reads without ops.
func TestFinalWithoutFutexOps(t *testing.T) {
	tr := futexTrace()
	w := &Writer{strs: map[string]uint64{"": 0}, upTo: appendedFutexOps}
	full := w.appendFinal(nil, tr)
	d := &decoder{strs: []string{""}}
	for s, id := range w.strs {
		for uint64(len(d.strs)) <= id {
			d.strs = append(d.strs, "")
		}
		d.strs[id] = s
	}
	// The tail: one byte for the count, two per op (3) with ids below 128.
	old := full[:len(full)-1-2*3]
	f, err := d.finalRec(&cursor{b: old})
	if err != nil {
		t.Fatalf("final record without ops: %v", err)
	}
	for _, s := range f.syscalls {
		if s.Op != "" {
			t.Errorf("%s of tid %d has op %q from an old payload", s.Name, s.TID, s.Op)
		}
	}
	f, err = d.finalRec(&cursor{b: full})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range f.syscalls {
		if s.Op != tr.Syscalls[i].Op {
			t.Errorf("aggregate %d: op %q, want %q", i, s.Op, tr.Syscalls[i].Op)
		}
	}
	if _, err := d.finalRec(&cursor{b: append(old, 1, 9, 1)}); err == nil {
		t.Error("an op for aggregate 9 of 5 was accepted")
	}
}

// Without a final record the aggregates are rebuilt with the op of each
// futex event, as the kernel side splits them.
func TestRebuildSplitsFutexOps(t *testing.T) {
	meta := &model.Trace{Source: "ebpf", Arch: "amd64", StartNS: 1000}
	evs := []model.Event{
		{Kind: model.EvSyscall, Time: 2000, Duration: 100, PID: 10, TID: 10, Nr: 202, Syscall: "futex", Args: [6]uint64{0x1000, 128}},
		{Kind: model.EvSyscall, Time: 3000, Duration: 900, PID: 10, TID: 10, Nr: 202, Syscall: "futex", Args: [6]uint64{0x2000, 128 | 9 | 256}},
		{Kind: model.EvSyscall, Time: 4000, Duration: 100, PID: 10, TID: 10, Nr: 202, Syscall: "futex", Args: [6]uint64{0x1000, 128}},
		{Kind: model.EvSyscall, Time: 5000, Duration: 10, PID: 10, TID: 10, Nr: 202, Syscall: "futex", Args: [6]uint64{0x1000, 129}},
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, meta)
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		if err := w.Event(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, st, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil || !st.Rebuilt {
		t.Fatalf("read: %v, %+v", err, st)
	}
	counts := map[string]uint64{}
	for _, s := range got.Syscalls {
		counts[s.Op] += s.Count
	}
	if want := map[string]uint64{"wait": 2, "wait_bitset": 1, "wake": 1}; !reflect.DeepEqual(counts, want) {
		t.Errorf("rebuilt futex counts by op = %v, want %v", counts, want)
	}
}
