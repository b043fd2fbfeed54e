package recording

import (
	"fmt"

	"github.com/snagtrace/snag/internal/model"
)

// kindListen holds what the trace learned about its listeners' accept
// queues; older readers skip it.
const kindListen byte = 7

// evSignal: an event carries a signal and its sender (EvExit, EvSignal).
const evSignal = 1 << 17

// listenRecord is a kind 7 record, pending until a sync verifies it.
type listenRecord struct {
	queues   []model.ListenQueue
	counters model.ListenCounters
}

// appendListen encodes t's accept queues and listen counters; nil when
// there is nothing to say, so a trace without them writes no record.
func (w *Writer) appendListen(b []byte, t *model.Trace) []byte {
	if len(t.ListenQueues) == 0 && !t.TCPListen.Known {
		return nil
	}
	c := t.TCPListen
	b = appendBool(b, c.Known)
	b = appendUvarint(b, c.Overflows)
	b = appendUvarint(b, c.Drops)
	b = appendUvarint(b, uint64(len(t.ListenQueues)))
	for i := range t.ListenQueues {
		q := &t.ListenQueues[i]
		b = appendVarint(b, int64(q.PID))
		b = w.appendAddr(b, &q.Addr)
		b = appendUvarint(b, q.Inode)
		b = appendUvarint(b, uint64(q.Limit))
		b = appendUvarint(b, uint64(q.Samples))
		b = appendUvarint(b, uint64(q.Full))
		b = appendUvarint(b, uint64(q.Max))
		b = appendUvarint(b, q.Sum)
	}
	return b
}

func (d *decoder) listenRec(c *cursor) (*listenRecord, error) {
	r := &listenRecord{}
	r.counters.Known = c.bool()
	r.counters.Overflows = c.uvarint()
	r.counters.Drops = c.uvarint()
	n := c.count("listen queue")
	for i := 0; i < n && c.err == nil; i++ {
		q := model.ListenQueue{PID: c.int(), Addr: d.addr(c), Inode: c.uvarint()}
		limit, samples, full, deepest := c.uvarint(), c.uvarint(), c.uvarint(), c.uvarint()
		q.Sum = c.uvarint()
		if c.err == nil && (limit > 1<<32-1 || deepest > 1<<32-1 || full > samples || samples > 1<<40) {
			c.fail(fmt.Errorf("listen queue %d: limit %d, max %d, full %d of %d samples", i, limit, deepest, full, samples))
		}
		q.Limit, q.Max, q.Samples, q.Full = uint32(limit), uint32(deepest), int(samples), int(full)
		r.queues = append(r.queues, q)
	}
	if c.err != nil {
		return nil, c.err
	}
	return r, nil
}

// appendSignal encodes an event's signal fields (flag evSignal).
func (w *Writer) appendSignal(b []byte, e *model.Event) []byte {
	b = appendVarint(b, int64(e.Signal))
	b = appendVarint(b, int64(e.Sender))
	return appendUvarint(b, w.str(e.SenderComm))
}

func (d *decoder) signal(c *cursor, e *model.Event) {
	e.Signal = c.int()
	e.Sender = c.int()
	e.SenderComm = d.str(c)
}

// applyListen sets what a verified kind 7 record holds, and each process's
// fatal signal from its exit event (the process lists themselves predate
// the field).
func (d *decoder) applyListen(t *model.Trace) {
	if d.listen != nil {
		t.ListenQueues = d.listen.queues
		t.TCPListen = d.listen.counters
	}
	killed := map[int]int{}
	for i := range t.Events {
		if e := &t.Events[i]; e.Kind == model.EvExit && !e.Thread && e.Signal != 0 {
			killed[e.PID] = e.Signal
		}
	}
	for i := range t.Processes {
		if sig, ok := killed[t.Processes[i].PID]; ok {
			t.Processes[i].Signal = sig
		}
	}
}
