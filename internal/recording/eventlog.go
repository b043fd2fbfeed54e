package recording

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/snagtrace/snag/internal/model"
)

// EventLog keeps events in memory as a recording's records hold them:
// strings and frames defined once, times and arguments delta-coded, a
// stack a few ids. A slow call with a stack takes some 40 bytes where a
// model.Event takes over 400, so a live trace holds its events in a tenth
// of the memory until the report needs them (Events). Nothing is
// compressed: the records are only the format's encoding, read back by
// the code that reads recordings.
//
// The zero value is an empty log. It is not safe for concurrent use.
type EventLog struct {
	w      Writer // its encoder; records go to w.out, never to an encoder
	chunks [][]byte
	n      int
}

// logChunk is the size of the buffers an EventLog fills one after the
// other: one growing buffer would copy what it holds each time it grew.
const logChunk = 256 << 10

// Add appends a copy of e.
func (l *EventLog) Add(e *model.Event) {
	w := &l.w
	if w.strs == nil {
		*w = Writer{out: make([]byte, 0, logChunk), strs: map[string]uint64{"": 0}, frames: map[model.Frame]uint64{}, upTo: appendedAll}
	}
	w.scratch = w.appendEvent(w.scratch[:0], e)
	w.record(kindEvent, w.scratch)
	l.n++
	if len(w.out) >= logChunk {
		l.chunks = append(l.chunks, w.out)
		w.out = make([]byte, 0, logChunk)
	}
}

// Len is the number of events added.
func (l *EventLog) Len() int { return l.n }

// Events decodes the events into one slice of exactly Len, in the order
// they were added, and empties the log, each buffer let go of once read.
// Events with the same stack share its frames, as they did when added
// from one stack resolver: treat Stack as read-only.
func (l *EventLog) Events() ([]model.Event, error) {
	chunks := append(l.chunks, l.w.out)
	n := l.n
	*l = EventLog{}
	if n == 0 {
		return nil, nil
	}
	d := &decoder{strs: []string{""}, trace: &model.Trace{Events: make([]model.Event, 0, n)}}
	for i, b := range chunks {
		chunks[i] = nil
		for len(b) > 0 {
			kind := b[0]
			size, k := binary.Uvarint(b[1:])
			if k <= 0 || size > uint64(len(b)-1-k) {
				return nil, errors.New("event log: record length past the end of its buffer")
			}
			d.payload = b[1+k : 1+k+int(size)]
			b = b[1+k+int(size):]
			if err := d.record(kind); err != nil {
				return nil, fmt.Errorf("event log: %w", err)
			}
		}
	}
	if len(d.trace.Events) != n {
		return nil, fmt.Errorf("event log: %d events decoded of %d added", len(d.trace.Events), n)
	}
	return d.trace.Events, nil
}
