package tracer

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/snagtrace/snag/bpf"
	"github.com/snagtrace/snag/internal/model"
)

// fakeRing hands out records numbered 1..n, reusing one stack buffer as
// the ring buffer does, then times out (or fails with err).
type fakeRing struct {
	mu    sync.Mutex
	n     int
	next  int
	stack []byte
	err   error
	more  chan struct{} // when non-nil, each record waits for a token
}

func (f *fakeRing) Read(rec *bpf.Record, deadline time.Time) error {
	if f.more != nil {
		select {
		case <-f.more:
		case <-time.After(time.Until(deadline)):
			return bpf.ErrTimeout
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.next >= f.n {
		if f.err != nil {
			return f.err
		}
		time.Sleep(time.Until(deadline) / 10)
		return bpf.ErrTimeout
	}
	f.next++
	f.stack[0] = byte(f.next)
	*rec = bpf.Record{Event: model.Event{Kind: model.EvSyscall, TID: f.next}, Stack: f.stack}
	return nil
}

func TestReaderCopiesRecordsInOrder(t *testing.T) {
	src := &fakeRing{n: 100, stack: make([]byte, 64)}
	r := newReader(src, 1000, 1<<20)
	r.start()
	defer r.stop()
	for want := 1; want <= 100; want++ {
		q := <-r.out
		r.taken(q)
		if q.rec.Event.TID != want || q.rec.Stack[0] != byte(want) {
			t.Fatalf("record %d: tid %d, stack byte %d: out of order or sharing the source's buffer", want, q.rec.Event.TID, q.rec.Stack[0])
		}
	}
	r.finish()
	if _, ok := <-r.out; ok {
		t.Error("a record after the last one")
	}
	if r.read.Load() != 100 || r.full.Load() != 0 || r.bytes.Load() != 0 {
		t.Errorf("read %d, dropped %d, %d bytes still queued; want 100, 0, 0", r.read.Load(), r.full.Load(), r.bytes.Load())
	}
}

// Nobody taking records: the reader keeps reading and counts what it
// cannot queue instead of waiting, by records and by bytes.
func TestReaderDropsWhenTheQueueIsFull(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n        int
		maxBytes int64
	}{{"records", 10, 1 << 30}, {"bytes", 1000, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			src := &fakeRing{n: 500, stack: make([]byte, 4096)}
			sz := newReader(src, 0, 0).copyRecord(&bpf.Record{Stack: src.stack}).size
			maxBytes := tc.maxBytes
			if maxBytes == 0 {
				maxBytes = 10 * sz
			}
			r := newReader(src, tc.n, maxBytes)
			r.start()
			deadline := time.Now().Add(5 * time.Second)
			for r.read.Load() < 500 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if r.read.Load() != 500 {
				t.Fatalf("read %d of 500 records: the reader waited for room", r.read.Load())
			}
			if len(r.out) != 10 || r.full.Load() != 490 {
				t.Errorf("%d queued, %d dropped; want 10 and 490", len(r.out), r.full.Load())
			}
			r.stop()
		})
	}
}

// Nobody taking records: past its share of stack copies the queue takes
// slow calls without theirs, counted, and at the end it keeps them all.
func TestReaderLetsStacksGoPastTheirShare(t *testing.T) {
	for _, tc := range []struct {
		name      string
		finishing bool
		kept      int
	}{{"tracing", false, 10}, {"finishing", true, 500}} {
		t.Run(tc.name, func(t *testing.T) {
			src := &fakeRing{n: 500, stack: make([]byte, 4096)}
			r := newReader(src, 1000, 1<<30)
			r.maxStack = 10 * 4096
			if tc.finishing {
				r.finish()
			}
			r.start()
			deadline := time.Now().Add(5 * time.Second)
			for len(r.out) < 500 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			r.stop()
			withStack := 0
			for q := range r.out {
				if len(q.rec.Stack) > 0 {
					withStack++
				}
			}
			if withStack != tc.kept || r.stackFull.Load() != uint64(500-tc.kept) || r.full.Load() != 0 {
				t.Errorf("%d records with their stack, %d copies let go, %d records dropped; want %d, %d, 0",
					withStack, r.stackFull.Load(), r.full.Load(), tc.kept, 500-tc.kept)
			}
		})
	}
}

// At the end the reader waits for room: the programs are detached, so
// nothing is lost by it, and every record left is handed on.
func TestReaderFinishHandsOnEverything(t *testing.T) {
	src := &fakeRing{n: 50, stack: make([]byte, 8), more: make(chan struct{}, 50)}
	r := newReader(src, 1, 1<<20)
	r.start()
	r.finish()
	for range 50 {
		src.more <- struct{}{}
	}
	got := 0
	for q := range r.out {
		r.taken(q)
		got++
		time.Sleep(100 * time.Microsecond) // a slow enricher
	}
	if got != 50 || r.full.Load() != 0 {
		t.Errorf("handed on %d of 50 records, dropped %d", got, r.full.Load())
	}
}

func TestReaderStopsAndReportsErrors(t *testing.T) {
	src := &fakeRing{n: 3, stack: make([]byte, 8), err: errors.New("ring gone")}
	r := newReader(src, 10, 1<<20)
	r.start()
	n := 0
	for range r.out {
		n++
	}
	if n != 3 || r.err == nil {
		t.Errorf("%d records then error %v; want 3 and the source's error", n, r.err)
	}
	r.stop() // after the end too

	// Stopped while waiting for room at the end.
	src = &fakeRing{n: 10, stack: make([]byte, 8)}
	r = newReader(src, 0, 1<<20)
	r.start()
	r.finish()
	done := make(chan struct{})
	go func() { r.stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not end a reader waiting for room")
	}
}
