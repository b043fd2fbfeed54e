//go:build linux

package tracer

import (
	"testing"
	"time"

	"github.com/snagtrace/snag/bpf"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/testutil"
)

// slowFrames is a symbolization that takes 200 ms the first time it sees
// a process, as the first symbolization of a large binary can.
type slowFrames struct {
	frameResolver
	seen  map[int]bool
	slept int
}

const firstSight = 200 * time.Millisecond

func (f *slowFrames) resolve(pid int, rec *bpf.Record) []model.Frame {
	if !f.seen[pid] {
		f.seen[pid] = true
		f.slept++
		time.Sleep(firstSight)
	}
	return f.frameResolver.resolve(pid, rec)
}

// A slow enricher must not turn into ring-buffer drops: the reader goes on
// taking records while the enricher symbolizes. A busy target makes every
// call an event; its one slow call (the sleep) is enriched first, and the
// burst of calls after it arrives while the enricher sleeps. Reading and
// enriching in one loop, the same trace overflows the ring buffer.
func TestSlowEnricherDoesNotDropRecords(t *testing.T) {
	testutil.RequireBPF(t)
	// The main thread's calls, a sleep with a stack, then a child's burst.
	w := testutil.Workload{Getppid: 20000, Sleeps: 1, SleepFor: 20 * time.Millisecond, Fork: true}
	// The default ring buffer holds ~6,000 of the 40,000 records.
	cfg := Config{AllEvents: true, FollowForks: true, StackBytes: 4096}
	for _, oneLoop := range []bool{false, true} {
		keep := KeepEvents(0)
		s, ctx, run := attachSession(t, w, cfg, keep)
		slow := &slowFrames{frameResolver: s.enr.stacks, seen: map[int]bool{}}
		s.enr.stacks = slow
		s.blockReader = oneLoop
		tr, err := s.run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if slow.slept == 0 {
			t.Fatal("no slow call was symbolized: the test stalls nothing")
		}
		got := stat(tr, run.Child, 0, "getppid").count
		t.Logf("one loop %v: %d events, %d slow symbolizations, child's getppid %d, drops %+v",
			oneLoop, len(tr.Events), slow.slept, got, tr.Drops)
		if got != uint64(w.Getppid) {
			t.Errorf("child %d: %d getppid calls counted, want exactly %d", run.Child, got, w.Getppid)
		}
		switch {
		case !oneLoop && tr.Drops.Total() != 0:
			t.Errorf("reader and enricher apart: drops %+v, want none", tr.Drops)
		case oneLoop && tr.Drops.RingBuffer == 0:
			t.Errorf("reading and enriching in one loop: no ring buffer drops behind a %v symbolization", firstSight)
		}
	}
}
