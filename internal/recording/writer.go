package recording

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/snagtrace/snag/internal/model"
)

// drainAt is how many encoded bytes the writer gathers before handing them
// to the compressor: large enough to amortise the call, small enough to
// stay in cache.
const drainAt = 64 << 10

// windowSize is the zstd window. Syscall events repeat within a few
// thousand records, so a larger window buys little and costs reader memory.
const windowSize = 1 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Writer streams a trace into a recording. It is not safe for concurrent
// use.
type Writer struct {
	enc *zstd.Encoder
	err error // sticky: the first failure ends the recording

	out     []byte // records not yet handed to enc
	scratch []byte // the payload being built
	frameB  []byte // a frame definition's payload, built while an event is
	crc     uint32 // of the records since the last sync record

	strs   map[string]uint64
	frames map[model.Frame]uint64

	// Delta-coding state, mirrored by the reader.
	prevTime         uint64
	prevPID, prevTID int
	prevArgs         [nrSlots][6]uint64
	// nrName caches each syscall number's name and string id, sparing a map
	// lookup per event.
	nrName [nrSlots]struct {
		name string
		id   uint64
		ok   bool
	}

	closed bool
	upTo   appended // the last group of appended fields written
}

// appended names the groups of fields added to version 1 payloads after
// its first release, in the order each follows the previous (FORMAT.md).
// A writer writes every group up to its own, so a group is present only
// when every earlier one is; a reader reads a group only while bytes
// remain, and ignores the bytes after the last group it knows.
type appended int

const (
	appendedNone         appended = iota // the first format
	appendedFacts                        // process facts, in the meta and final records
	appendedFDMap                        // the final record's fd_map drop counter, after its facts
	appendedFutexOps                     // the final record's futex operation classes, after fd_map
	appendedCost                         // the final record's cost of the trace, after the ops
	appendedBacklog                      // the final record's backlog drop counter, after the cost
	appendedStackBacklog                 // the final record's stack backlog drop counter, after the backlog
	appendedCgroups                      // the final record's process cgroups, after the stack backlog
	appendedUntimed                      // the final record's aggregates counted but not timed, after the cgroups
	appendedAll          = appendedUntimed
)

// NewWriter writes the header and a metadata record taken from t: Source,
// Arch, Target, Processes with their runtimes, Threads known at attach,
// Start, StartNS, Threshold, Sockets, Blocked, Files and the epoll sets
// read at the attach. It does not write t.Events; pass each to Event.
func NewWriter(w io.Writer, t *model.Trace) (*Writer, error) {
	return newWriter(w, t, appendedAll)
}

// newWriter is NewWriter writing the appended fields up to upTo only, as
// the writers before the later groups did.
func newWriter(w io.Writer, t *model.Trace, upTo appended) (*Writer, error) {
	var hdr [headerSize]byte
	copy(hdr[:], Magic)
	binary.LittleEndian.PutUint16(hdr[len(Magic):], Version)
	// The flags word (the last two bytes) is reserved and written as zero.
	if _, err := w.Write(hdr[:]); err != nil {
		return nil, fmt.Errorf("write recording header: %w", err)
	}
	enc, err := zstd.NewWriter(w,
		zstd.WithEncoderConcurrency(1), // synchronous: no goroutines, output in call order
		zstd.WithWindowSize(windowSize),
		// The fastest level halves the CPU per event of the default one and
		// costs about 3% in size on syscall events (BenchmarkWriteEvent).
		zstd.WithEncoderLevel(zstd.SpeedFastest),
	)
	if err != nil {
		return nil, fmt.Errorf("create zstd encoder: %w", err)
	}
	rw := &Writer{
		enc:    enc,
		out:    make([]byte, 0, drainAt+4096),
		strs:   map[string]uint64{"": 0},
		frames: map[model.Frame]uint64{},
		upTo:   upTo,
	}
	rw.scratch = rw.appendMeta(rw.scratch[:0], t)
	rw.record(kindMeta, rw.scratch)
	if err := rw.Flush(); err != nil {
		return nil, err
	}
	return rw, nil
}

// Event appends one event. It is buffered; Flush or Close writes it out.
func (w *Writer) Event(e *model.Event) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("write event: recording closed")
	}
	w.scratch = w.appendEvent(w.scratch[:0], e)
	w.record(kindEvent, w.scratch)
	if len(w.out) >= drainAt {
		w.drain()
	}
	return w.err
}

// Flush makes everything written so far decodable from the underlying
// writer: it ends the current zstd block and follows the records with a
// checksum the reader verifies. When the underlying writer buffers, flush
// it too.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return nil
	}
	w.sync()
	if err := w.enc.Flush(); err != nil {
		w.err = fmt.Errorf("flush recording: %w", err)
	}
	return w.err
}

// Close writes the final record from t (Duration, Threads, Syscalls with
// their histograms, Drops, Processes with their exit state and runtimes,
// the epoll sets read at the end, Listeners, Cost) and ends the zstd
// stream. It does not close the underlying writer.
func (w *Writer) Close(t *model.Trace) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return nil
	}
	if w.scratch = w.appendListen(w.scratch[:0], t); len(w.scratch) > 0 {
		w.record(kindListen, w.scratch)
	}
	w.scratch = w.appendFinal(w.scratch[:0], t)
	w.record(kindFinal, w.scratch)
	w.sync()
	w.closed = true
	if w.err != nil {
		return w.err
	}
	if err := w.enc.Close(); err != nil {
		w.err = fmt.Errorf("close recording: %w", err)
	}
	return w.err
}

// Write records t in one go: its metadata, every event and the final
// record.
func Write(dst io.Writer, t *model.Trace) error {
	w, err := NewWriter(dst, t)
	if err != nil {
		return err
	}
	for i := range t.Events {
		if err := w.Event(&t.Events[i]); err != nil {
			return err
		}
	}
	return w.Close(t)
}

// record appends one record to the output buffer.
func (w *Writer) record(kind byte, payload []byte) {
	w.out = append(w.out, kind)
	w.out = appendUvarint(w.out, uint64(len(payload)))
	w.out = append(w.out, payload...)
}

// drain hands the buffered records to the compressor.
func (w *Writer) drain() {
	if w.err != nil || len(w.out) == 0 {
		return
	}
	w.crc = crc32.Update(w.crc, castagnoli, w.out)
	if _, err := w.enc.Write(w.out); err != nil {
		w.err = fmt.Errorf("write recording: %w", err)
	}
	w.out = w.out[:0]
}

// sync drains the buffer and appends a sync record carrying the checksum
// of every record since the previous one.
func (w *Writer) sync() {
	w.drain()
	if w.err != nil {
		return
	}
	var rec [6]byte
	rec[0] = kindSync
	rec[1] = 4
	binary.LittleEndian.PutUint32(rec[2:], w.crc)
	w.crc = 0
	if _, err := w.enc.Write(rec[:]); err != nil {
		w.err = fmt.Errorf("write recording: %w", err)
	}
}

// str returns the string table id of s, defining it first if new.
func (w *Writer) str(s string) uint64 {
	if id, ok := w.strs[s]; ok {
		return id
	}
	id := uint64(len(w.strs))
	w.strs[s] = id
	w.out = append(w.out, kindString)
	w.out = appendUvarint(w.out, uint64(len(s)))
	w.out = append(w.out, s...)
	return id
}

// syscallName returns the string id of a syscall's name through the
// per-number cache.
func (w *Writer) syscallName(nr int, name string) uint64 {
	c := &w.nrName[nrSlot(nr)]
	if c.ok && c.name == name {
		return c.id
	}
	id := w.str(name)
	c.name, c.id, c.ok = name, id, true
	return id
}

// frame returns the dictionary id of f, defining it first if new.
func (w *Writer) frame(f *model.Frame) uint64 {
	if id, ok := w.frames[*f]; ok {
		return id
	}
	// Strings first: their definitions must precede the frame's.
	fn, mod, path, bid := w.str(f.Function), w.str(f.Module), w.str(f.Path), w.str(f.BuildID)
	b := w.frameB[:0]
	b = appendUvarint(b, f.Addr)
	b = appendUvarint(b, fn)
	b = appendUvarint(b, f.Offset)
	b = appendUvarint(b, mod)
	b = appendUvarint(b, path)
	b = appendUvarint(b, bid)
	b = append(b, byte(f.Kind))
	if f.Line > 0 {
		b = appendUvarint(b, uint64(f.Line))
	}
	w.record(kindFrame, b)
	w.frameB = b
	id := uint64(len(w.frames))
	w.frames[*f] = id
	return id
}

// Event flag bits. The common ones sit in the low seven bits so that a
// typical event's flags take one byte.
const (
	evFDKindMask = 0x7 // FDKind; fdKindEscape means a byte follows
	evSameThread = 1 << 3
	evFDKnown    = 1 << 4
	evNonBlock   = 1 << 5
	evPeer       = 1 << 6
	evLocal      = 1 << 7
	evPoll       = 1 << 8
	evThread     = 1 << 9
	evChild      = 1 << 10
	evComm       = 1 << 11
	evFilename   = 1 << 12
	evExitCode   = 1 << 13
	evStack      = 1 << 14
	evData       = 1 << 15
	evPartial    = 1 << 16

	fdKindEscape = evFDKindMask
)

// Address family codes.
const (
	addrNone  = 0
	addrInet  = 1
	addrInet6 = 2
	addrUnix  = 3
	addrOther = 4 // a family string outside the known ones follows
)

// IP tags.
const (
	ipNone   = 0
	ipV4     = 4
	ipV6     = 6
	ipV6Zone = 7 // a zone string follows the 16 bytes
)

// Start time flags.
const (
	timeZero  = 0 // Trace.Start is the zero time
	timeValue = 1 // seconds and nanoseconds follow
)

func (w *Writer) appendEvent(b []byte, e *model.Event) []byte {
	var flags uint64
	if e.FDKind < fdKindEscape {
		flags |= uint64(e.FDKind)
	} else {
		flags |= fdKindEscape
	}
	if e.PID == w.prevPID && e.TID == w.prevTID {
		flags |= evSameThread
	}
	if e.FDKnown {
		flags |= evFDKnown
	}
	if e.NonBlock {
		flags |= evNonBlock
	}
	if e.Peer != (model.Addr{}) {
		flags |= evPeer
	}
	if e.Local != (model.Addr{}) {
		flags |= evLocal
	}
	if e.PollNFDs != 0 || e.PollFD != 0 || e.PollTimeout != 0 {
		flags |= evPoll
	}
	if e.Thread {
		flags |= evThread
	}
	if e.ChildPID != 0 {
		flags |= evChild
	}
	if e.Comm != "" {
		flags |= evComm
	}
	if e.Filename != "" {
		flags |= evFilename
	}
	if e.ExitCode != 0 {
		flags |= evExitCode
	}
	if len(e.Stack) > 0 {
		flags |= evStack
	}
	if len(e.Data) > 0 {
		flags |= evData
	}
	if e.Partial {
		flags |= evPartial
	}
	if e.Signal != 0 || e.Sender != 0 || e.SenderComm != "" {
		flags |= evSignal
	}

	b = append(b, byte(e.Kind))
	b = appendUvarint(b, flags)
	b = appendVarint(b, int64(e.Time-w.prevTime))
	w.prevTime = e.Time
	b = appendVarint(b, int64(e.Duration))
	if flags&evSameThread == 0 {
		b = appendVarint(b, int64(e.PID))
		b = appendVarint(b, int64(e.TID))
		w.prevPID, w.prevTID = e.PID, e.TID
	}
	b = appendVarint(b, int64(e.Nr))
	b = appendUvarint(b, w.syscallName(e.Nr, e.Syscall))
	b = appendVarint(b, e.Ret)

	// Arguments as differences from the previous call of the same syscall:
	// a loop reusing one buffer and fd costs a zero mask byte.
	prev := &w.prevArgs[nrSlot(e.Nr)]
	var mask byte
	for i, a := range e.Args {
		if a != prev[i] {
			mask |= 1 << i
		}
	}
	b = append(b, mask)
	for i, a := range e.Args {
		if mask&(1<<i) != 0 {
			b = appendVarint(b, int64(a-prev[i]))
		}
	}
	*prev = e.Args

	b = appendVarint(b, int64(e.FD))
	if flags&evFDKindMask == fdKindEscape {
		b = append(b, byte(e.FDKind))
	}
	if flags&evPoll != 0 {
		b = appendVarint(b, int64(e.PollNFDs))
		b = appendVarint(b, int64(e.PollFD))
		b = appendVarint(b, e.PollTimeout)
	}
	if flags&evPeer != 0 {
		b = w.appendAddr(b, &e.Peer)
	}
	if flags&evLocal != 0 {
		b = w.appendAddr(b, &e.Local)
	}
	if flags&evChild != 0 {
		b = appendVarint(b, int64(e.ChildPID))
	}
	if flags&evComm != 0 {
		b = appendUvarint(b, w.str(e.Comm))
	}
	if flags&evFilename != 0 {
		b = appendUvarint(b, w.str(e.Filename))
	}
	if flags&evExitCode != 0 {
		b = appendVarint(b, int64(e.ExitCode))
	}
	if flags&evStack != 0 {
		b = appendUvarint(b, uint64(len(e.Stack)))
		for i := range e.Stack {
			b = appendUvarint(b, w.frame(&e.Stack[i]))
		}
	}
	if flags&evData != 0 {
		b = appendUvarint(b, uint64(len(e.Data)))
		b = append(b, e.Data...)
	}
	if flags&evSignal != 0 {
		b = w.appendSignal(b, e)
	}
	return b
}

func (w *Writer) appendAddr(b []byte, a *model.Addr) []byte {
	if *a == (model.Addr{}) {
		return append(b, addrNone)
	}
	switch a.Family {
	case model.FamilyInet:
		b = append(b, addrInet)
	case model.FamilyInet6:
		b = append(b, addrInet6)
	case model.FamilyUnix:
		b = append(b, addrUnix)
	default:
		b = append(b, addrOther)
		b = appendUvarint(b, w.str(string(a.Family)))
	}
	switch {
	case !a.IP.IsValid():
		b = append(b, ipNone)
	case a.IP.Is4():
		ip := a.IP.As4()
		b = append(b, ipV4)
		b = append(b, ip[:]...)
	case a.IP.Zone() == "":
		ip := a.IP.As16()
		b = append(b, ipV6)
		b = append(b, ip[:]...)
	default:
		ip := a.IP.As16()
		b = append(b, ipV6Zone)
		b = append(b, ip[:]...)
		b = appendUvarint(b, w.str(a.IP.Zone()))
	}
	b = appendUvarint(b, uint64(a.Port))
	return appendUvarint(b, w.str(a.Path))
}

func (w *Writer) appendStrings(b []byte, ss []string) []byte {
	b = appendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendUvarint(b, w.str(s))
	}
	return b
}

func (w *Writer) appendMeta(b []byte, t *model.Trace) []byte {
	b = appendUvarint(b, w.str(t.Source))
	b = appendUvarint(b, w.str(t.Arch))
	b = appendVarint(b, int64(t.Target.PID))
	b = appendUvarint(b, w.str(t.Target.Comm))
	b = w.appendStrings(b, t.Target.Cmdline)
	b = appendUvarint(b, w.str(t.Target.Exe))
	if t.Start.IsZero() {
		b = append(b, timeZero)
	} else {
		b = append(b, timeValue)
		b = appendVarint(b, t.Start.Unix())
		b = appendUvarint(b, uint64(t.Start.Nanosecond()))
	}
	b = appendUvarint(b, t.StartNS)
	b = appendVarint(b, int64(t.Threshold))
	b = w.appendProcesses(b, t.Processes)
	b = w.appendThreads(b, t.Threads)

	b = appendUvarint(b, uint64(len(t.Sockets)))
	for i := range t.Sockets {
		s := &t.Sockets[i]
		b = appendVarint(b, int64(s.PID))
		b = appendVarint(b, int64(s.FD))
		b = appendUvarint(b, s.Inode)
		b = appendUvarint(b, w.str(s.Proto))
		b = w.appendAddr(b, &s.Local)
		b = w.appendAddr(b, &s.Peer)
		b = appendUvarint(b, w.str(s.State))
	}

	b = appendUvarint(b, uint64(len(t.Blocked)))
	for i := range t.Blocked {
		s := &t.Blocked[i]
		b = appendVarint(b, int64(s.PID))
		b = appendVarint(b, int64(s.TID))
		b = appendBool(b, s.Running)
		b = appendVarint(b, int64(s.Nr))
		b = appendUvarint(b, w.str(s.Syscall))
		for _, a := range s.Args {
			b = appendUvarint(b, a)
		}
		b = appendUvarint(b, w.str(s.Wchan))
		b = appendVarint(b, int64(s.FD))
		b = w.appendAddr(b, &s.Peer)
	}
	if w.upTo < appendedFacts {
		return b
	}
	// Appended fields (FORMAT.md, "process facts"): older readers stop
	// before them.
	b = w.appendRuntimes(b, t.Processes)
	b = appendUvarint(b, uint64(len(t.Files)))
	for i := range t.Files {
		f := &t.Files[i]
		b = appendVarint(b, int64(f.PID))
		b = appendVarint(b, int64(f.FD))
		b = appendUvarint(b, w.str(f.Path))
	}
	return w.appendEpoll(b, t.Epoll, false)
}

// appendRuntimes writes the runtime of each process that has one.
func (w *Writer) appendRuntimes(b []byte, ps []model.Process) []byte {
	n := 0
	for i := range ps {
		if ps[i].Runtime != (model.Runtime{}) {
			n++
		}
	}
	b = appendUvarint(b, uint64(n))
	for i := range ps {
		p := &ps[i]
		if p.Runtime == (model.Runtime{}) {
			continue
		}
		b = appendVarint(b, int64(p.PID))
		b = appendUvarint(b, w.str(p.Runtime.Name))
		b = appendUvarint(b, w.str(p.Runtime.Version))
		b = appendUvarint(b, w.str(p.Runtime.Loop))
	}
	return b
}

// appendEpoll writes the epoll sets read at the end (end) or at the attach.
func (w *Writer) appendEpoll(b []byte, sets []model.EpollSet, end bool) []byte {
	n := 0
	for i := range sets {
		if sets[i].End == end {
			n++
		}
	}
	b = appendUvarint(b, uint64(n))
	for i := range sets {
		s := &sets[i]
		if s.End != end {
			continue
		}
		b = appendVarint(b, int64(s.PID))
		b = appendVarint(b, int64(s.EPFD))
		b = appendUvarint(b, uint64(len(s.FDs)))
		for j := range s.FDs {
			f := &s.FDs[j]
			b = appendVarint(b, int64(f.FD))
			b = append(b, byte(f.Kind))
			b = appendBool(b, f.Listening)
			b = w.appendAddr(b, &f.Peer)
			b = appendUvarint(b, w.str(f.Path))
		}
	}
	return b
}

func (w *Writer) appendProcesses(b []byte, ps []model.Process) []byte {
	b = appendUvarint(b, uint64(len(ps)))
	for i := range ps {
		p := &ps[i]
		b = appendVarint(b, int64(p.PID))
		b = appendVarint(b, int64(p.PPID))
		b = appendUvarint(b, w.str(p.Comm))
		b = w.appendStrings(b, p.Cmdline)
		b = appendUvarint(b, w.str(p.Exe))
		b = appendBool(b, p.Exited)
		b = appendVarint(b, int64(p.ExitCode))
	}
	return b
}

func (w *Writer) appendThreads(b []byte, ts []model.Thread) []byte {
	b = appendUvarint(b, uint64(len(ts)))
	for i := range ts {
		t := &ts[i]
		b = appendVarint(b, int64(t.PID))
		b = appendVarint(b, int64(t.TID))
		b = appendUvarint(b, w.str(t.Name))
		b = appendVarint(b, int64(t.OnCPU))
		var f byte
		if t.Started {
			f |= 1
		}
		if t.Exited {
			f |= 2
		}
		b = append(b, f)
	}
	return b
}

func (w *Writer) appendFinal(b []byte, t *model.Trace) []byte {
	b = appendVarint(b, int64(t.Duration))
	b = appendUvarint(b, t.Drops.RingBuffer)
	b = appendUvarint(b, t.Drops.AggregateMap)
	b = appendUvarint(b, t.Drops.InFlightMap)
	b = appendUvarint(b, t.Drops.StackRead)
	b = appendUvarint(b, t.Drops.Unparsed)
	b = w.appendProcesses(b, t.Processes)
	b = w.appendThreads(b, t.Threads)
	b = appendUvarint(b, uint64(len(t.Syscalls)))
	for i := range t.Syscalls {
		s := &t.Syscalls[i]
		b = appendVarint(b, int64(s.PID))
		b = appendVarint(b, int64(s.TID))
		b = appendVarint(b, int64(s.Nr))
		b = appendUvarint(b, w.str(s.Name))
		b = appendUvarint(b, s.Count)
		b = appendUvarint(b, s.Errors)
		b = appendVarint(b, int64(s.Total))
		b = appendVarint(b, int64(s.Max))
		b = appendHist(b, &s.Hist)
	}
	// Appended fields (FORMAT.md, "appended"), in their order: older
	// readers stop before those they do not know.
	if w.upTo < appendedFacts {
		return b
	}
	b = w.appendRuntimes(b, t.Processes)
	b = w.appendEpoll(b, t.Epoll, true)
	b = appendUvarint(b, uint64(len(t.Listeners)))
	for i := range t.Listeners {
		l := &t.Listeners[i]
		b = w.appendAddr(b, &l.Addr)
		b = appendVarint(b, int64(l.PID))
		b = appendUvarint(b, w.str(l.Comm))
	}
	if w.upTo < appendedFDMap {
		return b
	}
	b = appendUvarint(b, t.Drops.FDMap)
	if w.upTo < appendedFutexOps {
		return b
	}
	// The futex operation of each aggregate that has one.
	n := 0
	for i := range t.Syscalls {
		if t.Syscalls[i].Op != "" {
			n++
		}
	}
	b = appendUvarint(b, uint64(n))
	for i := range t.Syscalls {
		if op := t.Syscalls[i].Op; op != "" {
			b = appendUvarint(b, uint64(i))
			b = appendUvarint(b, w.str(op))
		}
	}
	if w.upTo < appendedCost {
		return b
	}
	b = w.appendCost(b, &t.Cost)
	if w.upTo < appendedBacklog {
		return b
	}
	b = appendUvarint(b, t.Drops.Backlog)
	if w.upTo < appendedStackBacklog {
		return b
	}
	b = appendUvarint(b, t.Drops.StackBacklog)
	if w.upTo < appendedCgroups {
		return b
	}
	// The cgroup path only: what it names is read from it again.
	n = 0
	for i := range t.Processes {
		if t.Processes[i].Cgroup != "" {
			n++
		}
	}
	b = appendUvarint(b, uint64(n))
	for i := range t.Processes {
		if p := &t.Processes[i]; p.Cgroup != "" {
			b = appendVarint(b, int64(p.PID))
			b = appendUvarint(b, w.str(p.Cgroup))
		}
	}
	if w.upTo < appendedUntimed {
		return b
	}
	n = 0
	for i := range t.Syscalls {
		if t.Syscalls[i].Untimed {
			n++
		}
	}
	b = appendUvarint(b, uint64(n))
	for i := range t.Syscalls {
		if t.Syscalls[i].Untimed {
			b = appendUvarint(b, uint64(i))
		}
	}
	return b
}

// appendCost writes what the trace cost: a known flag, then the rest only
// when known.
func (w *Writer) appendCost(b []byte, c *model.Cost) []byte {
	b = appendBool(b, c.Known)
	if !c.Known {
		return b
	}
	b = appendUvarint(b, c.Syscalls)
	b = appendUvarint(b, c.Events)
	b = appendVarint(b, int64(c.SnagCPU))
	b = appendUvarint(b, c.SnagPeakRSS)
	b = appendUvarint(b, w.str(c.StatsError))
	b = appendUvarint(b, uint64(len(c.Programs)))
	for i := range c.Programs {
		p := &c.Programs[i]
		b = appendUvarint(b, w.str(p.Name))
		b = appendBool(b, p.Syscall)
		b = appendVarint(b, int64(p.RunTime))
		b = appendUvarint(b, p.Runs)
	}
	return b
}

// appendHist writes the non-empty buckets as (gap, count) pairs, the gap
// being the number of empty buckets skipped since the previous one.
func appendHist(b []byte, h *model.Histogram) []byte {
	b = appendUvarint(b, uint64(h.Len()))
	next := 0
	h.ForEach(func(i int, c uint64) {
		b = appendUvarint(b, uint64(i-next))
		b = appendUvarint(b, c)
		next = i + 1
	})
	return b
}
