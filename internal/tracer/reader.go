package tracer

import (
	"errors"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/snagtrace/snag/bpf"
	"github.com/snagtrace/snag/internal/model"
)

// The reader is the first stage of a live trace: one goroutine that only
// takes records off the ring buffer, decodes them and queues them for the
// enricher. It never waits for the enricher: a slow first symbolization
// must not leave the ring buffer full, where the kernel would drop records
// it cannot count one by one. When the queue is full the reader drops the
// record itself and counts it (model.Drops.Backlog); when it holds its
// share of stack copies, the reader queues a slow call without its copy,
// to be named by the kernel's frame-pointer walk, and counts that
// (model.Drops.StackBacklog).

// recordSource is what the reader reads: bpf.Tracer, or a stub in tests.
type recordSource interface {
	Read(rec *bpf.Record, deadline time.Time) error
}

// queued is one record on its way to the enricher, with its own copies of
// the buffers the source reuses.
type queued struct {
	rec   bpf.Record
	size  int64 // bytes it holds, against the queue's budget
	stack int64 // the bytes of its stack copy, against queueStackBytes
}

const (
	// queueLen bounds the records waiting for the enricher: some 200 ms of
	// a busy target's events, every call an event (snag record). The
	// queue is empty but for a backlog, so it costs memory only then.
	queueLen = 1 << 16
	// queueBytes bounds what they hold (a record is some 500 bytes, and a
	// slow call's carries a stack copy of up to --stack-bytes).
	queueBytes = 32 << 20
	// queueStackBytes bounds the stack copies among them: 256 at the
	// default --stack-bytes. 2,000 threads waking at once would otherwise
	// fill the queue's 32 MiB with copies whenever the enricher fell
	// behind, half of what snag may take (the collector doubles it).
	queueStackBytes = 4 << 20
	// freeLen bounds the records kept for reuse: enough for the reader
	// to keep pace with the enricher without allocating, few enough that
	// what a backlog took (a stack copy of up to --stack-bytes each) is
	// let go once it drains.
	freeLen = 64
	// drainWait ends the drain at the end of a trace: the programs are
	// detached, so a quiet ring buffer is an empty one.
	drainWait = 20 * time.Millisecond
)

type reader struct {
	src      recordSource
	out      chan *queued
	free     chan *queued // records the enricher is done with, for reuse
	maxBytes int64
	maxStack int64 // queueStackBytes but in tests
	// block makes the reader wait for room in the queue instead of
	// dropping, as one loop reading and enriching would. Tests only.
	block bool

	bytes      atomic.Int64  // held by queued records
	stackBytes atomic.Int64  // held by their stack copies
	read       atomic.Uint64 // records read from the source (Cost.Events)
	full       atomic.Uint64 // records dropped because the queue was full
	stackFull  atomic.Uint64 // stack copies let go because the queue held its share

	drain chan struct{} // closed: read what is left, then end
	quit  chan struct{} // closed: end now
	ended chan struct{} // closed when the goroutine has ended
	err   error         // why reading failed; read after out is closed
}

func newReader(src recordSource, n int, maxBytes int64) *reader {
	return &reader{src: src, out: make(chan *queued, n), free: make(chan *queued, freeLen), maxBytes: maxBytes, maxStack: queueStackBytes,
		drain: make(chan struct{}), quit: make(chan struct{}), ended: make(chan struct{})}
}

// start runs the reader until stop or finish; out is closed when it ends.
func (r *reader) start() { go r.run() }

func (r *reader) run() {
	defer close(r.ended)
	defer close(r.out)
	var rec bpf.Record
	draining := false
	for {
		wait := pollInterval
		if !draining {
			select {
			case <-r.drain:
				draining = true
			case <-r.quit:
				return
			default:
			}
		}
		if draining {
			wait = drainWait
		}
		err := r.src.Read(&rec, time.Now().Add(wait))
		switch {
		case err == nil:
		case errors.Is(err, bpf.ErrTimeout):
			if draining {
				return
			}
			continue
		default:
			if !draining {
				r.err = err
			}
			return
		}
		r.read.Add(1)
		waitForRoom := draining || r.block
		// Nothing new reaches the ring buffer once the programs are
		// detached: waiting loses nothing, and what is left in the ring
		// buffer bounds what the queue takes.
		if !waitForRoom && len(rec.Stack) > 0 && r.stackBytes.Load()+int64(len(rec.Stack)) > r.maxStack {
			rec.Stack = nil
			r.stackFull.Add(1)
		}
		q := r.copyRecord(&rec)
		r.stackBytes.Add(q.stack)
		if waitForRoom {
			r.bytes.Add(q.size)
			select {
			case r.out <- q:
			case <-r.quit:
				return
			}
			continue
		}
		if r.bytes.Load()+q.size > r.maxBytes {
			r.full.Add(1)
			r.stackBytes.Add(-q.stack)
			r.done(q)
			continue
		}
		r.bytes.Add(q.size)
		select {
		case r.out <- q:
		default:
			r.bytes.Add(-q.size)
			r.stackBytes.Add(-q.stack)
			r.full.Add(1)
			r.done(q)
		}
	}
}

// countDrops sets the drops the reader counted in d.
func (r *reader) countDrops(d *model.Drops) {
	d.Backlog, d.StackBacklog = r.full.Load(), r.stackFull.Load()
}

// taken tells the reader the enricher has a record off the queue.
func (r *reader) taken(q *queued) {
	r.bytes.Add(-q.size)
	r.stackBytes.Add(-q.stack)
}

// done gives back a record the enricher and the sinks are finished with:
// its buffers are reused for the next ones, so that copying records out
// of the ring buffer (a slow call's stack is up to --stack-bytes) makes
// no garbage for the collector to catch up with.
func (r *reader) done(q *queued) {
	select {
	case r.free <- q:
	default: // enough kept: the collector takes it
	}
}

// finish has the reader read what is left in the ring buffer and end;
// the caller reads out until it is closed.
func (r *reader) finish() { close(r.drain) }

// stop ends the reader and waits for it, and lets go of the records kept
// for reuse; the source may be closed after.
func (r *reader) stop() {
	select {
	case <-r.quit:
	default:
		close(r.quit)
	}
	<-r.ended
	for {
		select {
		case <-r.free:
		default:
			return
		}
	}
}

// copyRecord copies rec out of the source's buffers, into those of a
// record given back earlier when there is one.
func (r *reader) copyRecord(rec *bpf.Record) *queued {
	var q *queued
	select {
	case q = <-r.free:
	default:
		q = new(queued)
	}
	stack, fp, code, lasti := q.rec.Stack[:0], q.rec.FPStack[:0], q.rec.PyCode[:0], q.rec.PyLasti[:0]
	q.rec = *rec
	q.rec.Stack = copyInto(stack, rec.Stack)
	q.rec.FPStack = copyInto(fp, rec.FPStack)
	q.rec.PyCode = copyInto(code, rec.PyCode)
	q.rec.PyLasti = copyInto(lasti, rec.PyLasti)
	q.stack = int64(len(q.rec.Stack))
	q.size = int64(unsafe.Sizeof(*q)) + int64(cap(q.rec.Stack)) + 8*int64(cap(q.rec.FPStack)+cap(q.rec.PyCode)) + 4*int64(cap(q.rec.PyLasti))
	return q
}

// copyInto copies src into buf; an empty src leaves buf empty (the
// enricher tells a record with a stack by its length) but kept for later.
func copyInto[T any](buf, src []T) []T {
	if len(src) == 0 {
		return buf[:0]
	}
	return append(buf, src...)
}
