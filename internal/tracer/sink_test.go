package tracer

import (
	"testing"

	"github.com/snagtrace/snag/internal/model"
)

// started is a sink that calls f once the programs are attached: the
// tests release their workloads with it.
type started func()

func (f started) Start(*model.Trace) error { f(); return nil }
func (started) Event(*model.Event) error   { return nil }
func (started) Finish(*model.Trace) error  { return nil }

func TestKeepEventsBoundsAndCounts(t *testing.T) {
	k := KeepEvents(2)
	tr := &model.Trace{Drops: model.Drops{OverLimit: 1}}
	if err := k.Start(tr); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		ev := model.Event{Kind: model.EvSyscall, TID: i}
		if err := k.Event(&ev); err != nil {
			t.Fatal(err)
		}
		ev.TID = -1 // the sink keeps a copy, not the caller's event
	}
	if err := k.Finish(tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.Events) != 2 || tr.Events[0].TID != 0 || tr.Events[1].TID != 1 {
		t.Errorf("kept %+v, want the first two events", tr.Events)
	}
	if tr.Drops.OverLimit != 4 {
		t.Errorf("over-limit drops %d, want 1 already counted plus the 3 left out", tr.Drops.OverLimit)
	}
	all := KeepEvents(0)
	for range 1000 {
		all.Event(&model.Event{})
	}
	var t2 model.Trace
	all.Finish(&t2)
	if len(t2.Events) != 1000 || t2.Drops.OverLimit != 0 {
		t.Errorf("no limit: kept %d, %d over the limit", len(t2.Events), t2.Drops.OverLimit)
	}
}
