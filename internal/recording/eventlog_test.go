package recording

import (
	"reflect"
	"testing"

	"github.com/snagtrace/snag/internal/model"
)

func TestEventLogGivesBackWhatWasAdded(t *testing.T) {
	rich := richTrace().Events
	// Enough events to fill several of the log's buffers, the stacks of
	// rich repeating among them.
	var many []model.Event
	for i := 0; len(many) < 20000; i++ {
		e := rich[i%len(rich)]
		e.Time += uint64(i) * 1000
		e.Args[1] = uint64(i)
		many = append(many, e)
	}
	cases := []struct {
		name   string
		events []model.Event
	}{
		{"none", nil},
		{"every field the format stores", rich},
		{"several buffers", many},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var l EventLog
			for i := range tc.events {
				l.Add(&tc.events[i])
			}
			if l.Len() != len(tc.events) {
				t.Fatalf("Len %d after adding %d", l.Len(), len(tc.events))
			}
			got, err := l.Events()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.events) || cap(got) != len(tc.events) {
				t.Fatalf("%d events (capacity %d), want %d", len(got), cap(got), len(tc.events))
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], tc.events[i]) {
					t.Fatalf("event %d:\n got %+v\nwant %+v", i, got[i], tc.events[i])
				}
			}
			if l.Len() != 0 {
				t.Fatalf("Len %d after Events, want an empty log", l.Len())
			}
		})
	}
}

func TestEventLogSharesStacks(t *testing.T) {
	stack := []model.Frame{{Addr: 0x401000, Function: "main.wait", Module: "app", Kind: model.FrameNative}, {Addr: 0x402000, Function: "main.main", Module: "app", Kind: model.FrameNative}}
	other := []model.Frame{{Addr: 0x403000, Function: "main.other", Module: "app", Kind: model.FrameNative}}
	var l EventLog
	for _, s := range [][]model.Frame{stack, other, stack} {
		l.Add(&model.Event{Kind: model.EvSyscall, Nr: 7, Syscall: "poll", Stack: s})
	}
	evs, err := l.Events()
	if err != nil {
		t.Fatal(err)
	}
	if &evs[0].Stack[0] != &evs[2].Stack[0] {
		t.Errorf("two events with one stack hold two copies of its frames")
	}
	if &evs[0].Stack[0] == &evs[1].Stack[0] || !reflect.DeepEqual(evs[1].Stack, other) {
		t.Errorf("a different stack was not read as itself: %+v", evs[1].Stack)
	}
}
