package recording

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/snagtrace/snag/internal/model"
)

// writeWith writes tr as a writer that knew the appended fields up to upTo
// does.
func writeWith(t *testing.T, tr *model.Trace, upTo appended) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := newWriter(&buf, tr, upTo)
	if err != nil {
		t.Fatal(err)
	}
	for i := range tr.Events {
		if err := w.Event(&tr.Events[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(tr); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A recording from before the process facts reads as it always did: no
// runtimes, files, epoll sets, listeners or fd map drops, everything else
// intact.
func TestRecordingWithoutFacts(t *testing.T) {
	want := richTrace()
	got, st, err := Read(bytes.NewReader(writeWith(t, want, appendedNone)))
	if err != nil || st.Truncated {
		t.Fatalf("read: %v, %+v", err, st)
	}
	want.Source = "recording"
	for i := range want.Processes {
		want.Processes[i].Runtime = model.Runtime{}
	}
	want.Files, want.Epoll, want.Listeners = nil, nil, nil
	want.Drops.FDMap, want.Drops.Backlog = 0, 0
	clearOps(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("trace:\n got %+v\nwant %+v", got, want)
	}
}

// A recording with the process facts but from before the fd map drops,
// which follow them, reads with its facts, FDMap 0 and no futex ops.
func TestRecordingWithoutFDMap(t *testing.T) {
	want := richTrace()
	got, st, err := Read(bytes.NewReader(writeWith(t, want, appendedFacts)))
	if err != nil || st.Truncated {
		t.Fatalf("read: %v, %+v", err, st)
	}
	want.Source = "recording"
	want.Drops.FDMap, want.Drops.Backlog = 0, 0
	clearOps(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("trace:\n got %+v\nwant %+v", got, want)
	}
}

// A recording with the facts and the fd map drops but from before the
// futex ops, which follow them, reads with both and every Op empty.
func TestRecordingWithoutFutexOps(t *testing.T) {
	want := richTrace()
	got, st, err := Read(bytes.NewReader(writeWith(t, want, appendedFDMap)))
	if err != nil || st.Truncated {
		t.Fatalf("read: %v, %+v", err, st)
	}
	want.Source = "recording"
	want.Drops.Backlog = 0
	clearOps(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("trace:\n got %+v\nwant %+v", got, want)
	}
}

func clearOps(t *model.Trace) {
	for i := range t.Syscalls {
		t.Syscalls[i].Op = ""
	}
}

// Facts known at the attach survive a recorder killed before its final
// record; a final record's runtimes win, and a process the end could not
// read keeps the runtime of the attach.
func TestFactsAtAttachAndEnd(t *testing.T) {
	tr := richTrace()
	tr.Events = nil
	var buf bytes.Buffer
	w, err := NewWriter(&buf, tr)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	killed := bytes.Clone(buf.Bytes())

	got, st, err := Read(bytes.NewReader(killed))
	if err != nil || !st.Rebuilt {
		t.Fatalf("read: %v, %+v", err, st)
	}
	if got.Processes[0].Runtime != tr.Processes[0].Runtime || !reflect.DeepEqual(got.Files, tr.Files) {
		t.Errorf("attach facts lost: %+v, %+v", got.Processes, got.Files)
	}
	if len(got.Epoll) != 1 || got.Epoll[0].End || got.Listeners != nil {
		t.Errorf("without a final record: epoll %+v, listeners %+v; want the attach set only", got.Epoll, got.Listeners)
	}

	end := *tr
	end.Processes = []model.Process{
		{PID: 4242, Runtime: model.Runtime{Name: model.RuntimeCPython, Version: "3.11.7", Loop: model.LoopAsyncio}},
		{PID: 5000}, // gone by the end
	}
	if err := w.Close(&end); err != nil {
		t.Fatal(err)
	}
	got, st, err = Read(bytes.NewReader(buf.Bytes()))
	if err != nil || st.Truncated {
		t.Fatalf("read: %v, %+v", err, st)
	}
	if got.Processes[0].Runtime.Loop != model.LoopAsyncio || got.Processes[1].Runtime.Name != model.RuntimeNative {
		t.Errorf("runtimes %+v, want the end's for 4242 and the attach's for 5000", got.Processes)
	}
	if len(got.Epoll) != 3 || got.Epoll[0].End || !got.Epoll[1].End || !reflect.DeepEqual(got.Listeners, tr.Listeners) {
		t.Errorf("epoll %+v, listeners %+v", got.Epoll, got.Listeners)
	}
}

// Fields a newer writer appends after the last known group (the futex
// ops, after the fd map drops, after the facts) are ignored, and every
// known group is read.
func TestFactsThenNewerFields(t *testing.T) {
	tr := richTrace()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, &model.Trace{})
	if err != nil {
		t.Fatal(err)
	}
	// A second meta record cannot be written; check the final instead.
	w.scratch = w.appendFinal(w.scratch[:0], tr)
	w.scratch = append(w.scratch, 0xde, 0xad, 0xbe, 0xef)
	w.record(kindFinal, w.scratch)
	w.closed = false
	w.sync()
	if err := w.enc.Close(); err != nil {
		t.Fatal(err)
	}
	got, st, err := Read(&buf)
	if err != nil || st.Truncated {
		t.Fatalf("read: %v, %+v", err, st)
	}
	if !reflect.DeepEqual(got.Listeners, tr.Listeners) || len(got.Epoll) != 2 || got.Drops != tr.Drops ||
		!reflect.DeepEqual(got.Syscalls, tr.Syscalls) {
		t.Errorf("listeners %+v, epoll %+v, drops %+v, syscalls %+v", got.Listeners, got.Epoll, got.Drops, got.Syscalls)
	}
}
