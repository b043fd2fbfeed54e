package recording

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"net/netip"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/snagtrace/snag/internal/cgroup"
	"github.com/snagtrace/snag/internal/model"
)

// maxWindow bounds the zstd window a recording may ask the reader for, so
// a hostile header cannot make it reserve gigabytes.
const maxWindow = 64 << 20

// ReadStats describes how a recording was read.
type ReadStats struct {
	Records uint64 // records decoded, of every kind
	Events  uint64 // events kept
	// Truncated reports that the stream did not end cleanly after a final
	// record: the recorder was killed, the file was cut, or a corrupt
	// stretch ended reading. Everything before it was kept.
	Truncated bool
	Skipped   uint64 // records of kinds this reader does not know
	Reason    string // why reading stopped early, one line
	// Rebuilt reports that the final record was missing and the aggregates
	// (Syscalls, Threads, Duration) were rebuilt from the events.
	Rebuilt bool
}

// Read decodes a recording. A file that is not a recording, has another
// format version or lacks a readable metadata record is an error. A cut or
// corrupt tail is not: Read keeps what precedes it and reports it in the
// stats. The returned trace's Source is "recording".
func Read(r io.Reader) (*model.Trace, *ReadStats, error) {
	var hdr [headerSize]byte
	if n, err := io.ReadFull(r, hdr[:]); err != nil {
		if n < len(Magic) || !Looks(hdr[:n]) {
			return nil, nil, errors.New("not a snag recording: file too short")
		}
		return nil, nil, errors.New("truncated recording header")
	}
	if !Looks(hdr[:]) {
		return nil, nil, errors.New("not a snag recording: bad magic")
	}
	if v := binary.LittleEndian.Uint16(hdr[len(Magic):]); v != Version {
		return nil, nil, fmt.Errorf("unsupported recording format version %d (this snag reads version %d)", v, Version)
	}

	dec, err := zstd.NewReader(r,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(maxWindow),
		zstd.WithDecoderMaxMemory(maxWindow),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("open recording stream: %w", err)
	}
	defer dec.Close()

	d := &decoder{
		br:   bufio.NewReaderSize(dec, 64<<10),
		strs: []string{""},
	}
	d.run()
	if d.trace == nil {
		reason := d.stats.Reason
		if reason == "" {
			reason = "stream ends before it"
		}
		return nil, nil, fmt.Errorf("recording has no readable metadata record: %s", reason)
	}
	t := d.trace
	if d.final != nil {
		d.applyFinal()
		d.applyListen(t)
	} else {
		rebuild(t)
		d.stats.Rebuilt = true
		d.applyListen(t)
		if !d.stats.Truncated {
			d.stats.Truncated = true
			d.stats.Reason = "stream ends without a final record"
		}
	}
	t.Source = "recording"
	if len(t.Events) == 0 {
		t.Events = nil // as a recording without events reads
	}
	d.stats.Events = uint64(len(t.Events))
	return t, &d.stats, nil
}

// decoder holds the state of one Read.
type decoder struct {
	br      *bufio.Reader
	payload []byte
	hdr     [1 + binary.MaxVarintLen64]byte // a record's kind and length, for the checksum
	crc     uint32

	strs   []string
	frames []model.Frame
	// stacks are the stacks read so far by their frame ids' bytes; ids
	// is the scratch the ids are read into.
	stacks map[string][]model.Frame
	ids    []uint64

	prevTime         uint64
	prevPID, prevTID int
	prevArgs         [nrSlots][6]uint64

	trace *model.Trace
	// committed is how many events a sync record has verified; on a
	// checksum mismatch the events after it are dropped.
	committed int
	// final is the final record, pending until a sync verifies it.
	final, pendingFinal *finalRecord
	// listen is the kind 7 record, pending like final.
	listen, pendingListen *listenRecord

	stats ReadStats
}

type finalRecord struct {
	duration  time.Duration
	drops     model.Drops
	processes []model.Process
	threads   []model.Thread
	syscalls  []model.SyscallStat
	runtimes  map[int]model.Runtime
	cgroups   map[int]string
	epoll     []model.EpollSet
	listeners []model.Listener
	cost      model.Cost
}

// run reads records until the stream ends or stops making sense.
func (d *decoder) run() {
	for {
		kind, err := d.br.ReadByte()
		if err == io.EOF {
			d.endOfStream()
			return
		}
		if err != nil {
			d.stop("record %d: %v", d.stats.Records+1, err)
			return
		}
		n, err := binary.ReadUvarint(d.br)
		if err != nil {
			d.stop("record %d: length: %v", d.stats.Records+1, unexpected(err))
			return
		}
		if n > maxRecord {
			d.stop("record %d: length %d over the %d limit", d.stats.Records+1, n, maxRecord)
			return
		}
		if err := d.readPayload(n); err != nil {
			d.stop("record %d: %v", d.stats.Records+1, unexpected(err))
			return
		}
		if kind != kindSync {
			d.hdr[0] = kind
			hl := 1 + binary.PutUvarint(d.hdr[1:], n)
			d.crc = crc32.Update(d.crc, castagnoli, d.hdr[:hl])
			d.crc = crc32.Update(d.crc, castagnoli, d.payload)
		}
		d.stats.Records++
		if err := d.record(kind); err != nil {
			d.stop("record %d (kind %d): %v", d.stats.Records, kind, err)
			return
		}
	}
}

// readPayload reads n bytes. Small records reuse one buffer; big ones grow
// with the data actually read, never with the length field alone.
func (d *decoder) readPayload(n uint64) error {
	if n <= 64<<10 {
		if uint64(cap(d.payload)) < n {
			d.payload = make([]byte, 64<<10)
		}
		d.payload = d.payload[:n]
		_, err := io.ReadFull(d.br, d.payload)
		return err
	}
	buf := make([]byte, 0, 64<<10)
	for uint64(len(buf)) < n {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m := min(uint64(cap(buf)), n)
		k, err := io.ReadFull(d.br, buf[len(buf):m])
		buf = buf[:len(buf)+k]
		if err != nil {
			return err
		}
	}
	d.payload = buf
	return nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// stop ends reading early and records why.
func (d *decoder) stop(format string, args ...any) {
	d.stats.Truncated = true
	d.stats.Reason = fmt.Sprintf(format, args...)
}

func (d *decoder) endOfStream() {
	// Records after the last sync decoded cleanly but cannot be verified;
	// a killed recorder leaves such a tail, so keep it.
	if d.pendingFinal != nil {
		d.final = d.pendingFinal
	}
	if d.pendingListen != nil {
		d.listen = d.pendingListen
	}
}

func (d *decoder) record(kind byte) error {
	c := cursor{b: d.payload}
	switch kind {
	case kindString:
		d.strs = append(d.strs, string(c.b))
		return nil
	case kindFrame:
		f := model.Frame{
			Addr:     c.uvarint(),
			Function: d.str(&c),
			Offset:   c.uvarint(),
			Module:   d.str(&c),
			Path:     d.str(&c),
			BuildID:  d.str(&c),
			Kind:     model.FrameKind(c.byte()),
		}
		if len(c.b) > 0 {
			f.Line = int(min(c.uvarint(), math.MaxInt32))
		}
		if c.err != nil {
			return fmt.Errorf("frame: %w", c.err)
		}
		d.frames = append(d.frames, f)
		return nil
	case kindMeta:
		if d.trace != nil {
			return errors.New("second metadata record")
		}
		t, err := d.meta(&c)
		if err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
		d.trace = t
		return nil
	case kindEvent:
		if d.trace == nil {
			return errors.New("event before the metadata record")
		}
		if len(d.trace.Events) == cap(d.trace.Events) {
			// Doubling keeps the copying of these large structs to about
			// one extra pass, where append's gentler growth makes several.
			grown := make([]model.Event, len(d.trace.Events), max(1024, 2*cap(d.trace.Events)))
			copy(grown, d.trace.Events)
			d.trace.Events = grown
		}
		d.trace.Events = append(d.trace.Events, model.Event{})
		e := &d.trace.Events[len(d.trace.Events)-1]
		if err := d.event(&c, e); err != nil {
			d.trace.Events = d.trace.Events[:len(d.trace.Events)-1]
			return fmt.Errorf("event: %w", err)
		}
		return nil
	case kindFinal:
		if d.trace == nil {
			return errors.New("final record before the metadata record")
		}
		f, err := d.finalRec(&c)
		if err != nil {
			return fmt.Errorf("final: %w", err)
		}
		d.pendingFinal = f
		return nil
	case kindListen:
		if d.trace == nil {
			return errors.New("listen record before the metadata record")
		}
		l, err := d.listenRec(&c)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		d.pendingListen = l
		return nil
	case kindSync:
		if len(d.payload) < 4 {
			return errors.New("sync record too short")
		}
		want := binary.LittleEndian.Uint32(d.payload)
		got := d.crc
		d.crc = 0
		if got != want {
			dropped := 0
			if d.trace != nil {
				dropped = len(d.trace.Events) - d.committed
				d.trace.Events = d.trace.Events[:d.committed]
			}
			d.pendingFinal, d.pendingListen = nil, nil
			return fmt.Errorf("checksum mismatch, dropped the %d events since the previous sync", dropped)
		}
		if d.trace != nil {
			d.committed = len(d.trace.Events)
		}
		if d.pendingFinal != nil {
			d.final = d.pendingFinal
			d.pendingFinal = nil
		}
		if d.pendingListen != nil {
			d.listen, d.pendingListen = d.pendingListen, nil
		}
		return nil
	}
	d.stats.Skipped++
	return nil
}

// str reads a string table reference.
func (d *decoder) str(c *cursor) string {
	id := c.uvarint()
	if c.err != nil {
		return ""
	}
	if id >= uint64(len(d.strs)) {
		c.fail(fmt.Errorf("string %d not defined (table has %d)", id, len(d.strs)))
		return ""
	}
	return d.strs[id]
}

func (d *decoder) strings(c *cursor) []string {
	n := c.count("string list")
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.str(c)
	}
	return ss
}

func (d *decoder) addr(c *cursor) model.Addr {
	var a model.Addr
	switch fam := c.byte(); fam {
	case addrNone:
		return a
	case addrInet:
		a.Family = model.FamilyInet
	case addrInet6:
		a.Family = model.FamilyInet6
	case addrUnix:
		a.Family = model.FamilyUnix
	case addrOther:
		a.Family = model.Family(d.str(c))
	default:
		c.fail(fmt.Errorf("unknown address family code %d", fam))
		return a
	}
	switch tag := c.byte(); tag {
	case ipNone:
	case ipV4:
		a.IP = netip.AddrFrom4([4]byte(c.bytesOr(4)))
	case ipV6, ipV6Zone:
		a.IP = netip.AddrFrom16([16]byte(c.bytesOr(16)))
		if tag == ipV6Zone {
			a.IP = a.IP.WithZone(d.str(c))
		}
	default:
		c.fail(fmt.Errorf("unknown address IP tag %d", tag))
	}
	port := c.uvarint()
	if port > 0xffff {
		c.fail(fmt.Errorf("port %d out of range", port))
	}
	a.Port = uint16(port)
	a.Path = d.str(c)
	return a
}

func (d *decoder) event(c *cursor, e *model.Event) error {
	e.Kind = model.EventKind(c.byte())
	flags := c.uvarint()
	d.prevTime += uint64(c.varint())
	e.Time = d.prevTime
	e.Duration = time.Duration(c.varint())
	if flags&evSameThread == 0 {
		d.prevPID, d.prevTID = c.int(), c.int()
	}
	e.PID, e.TID = d.prevPID, d.prevTID
	e.Nr = c.int()
	e.Syscall = d.str(c)
	e.Ret = c.varint()
	prev := &d.prevArgs[nrSlot(e.Nr)]
	mask := c.byte()
	for i := range e.Args {
		e.Args[i] = prev[i]
		if mask&(1<<i) != 0 {
			e.Args[i] += uint64(c.varint())
		}
	}
	if c.err == nil {
		*prev = e.Args
	}
	e.FD = c.int()
	e.FDKind = model.FDKind(flags & evFDKindMask)
	if e.FDKind == fdKindEscape {
		e.FDKind = model.FDKind(c.byte())
	}
	e.FDKnown = flags&evFDKnown != 0
	e.NonBlock = flags&evNonBlock != 0
	e.Thread = flags&evThread != 0
	if flags&evPoll != 0 {
		e.PollNFDs = c.int()
		e.PollFD = c.int()
		e.PollTimeout = c.varint()
	}
	if flags&evPeer != 0 {
		e.Peer = d.addr(c)
	}
	if flags&evLocal != 0 {
		e.Local = d.addr(c)
	}
	if flags&evChild != 0 {
		e.ChildPID = c.int()
	}
	if flags&evComm != 0 {
		e.Comm = d.str(c)
	}
	if flags&evFilename != 0 {
		e.Filename = d.str(c)
	}
	if flags&evExitCode != 0 {
		e.ExitCode = c.int()
	}
	if flags&evStack != 0 {
		e.Stack = d.stack(c)
	}
	e.Partial = flags&evPartial != 0
	if flags&evData != 0 {
		if b := c.bytes(uint64(c.count("data byte"))); len(b) > 0 {
			e.Data = bytes.Clone(b)
		}
	}
	if flags&evSignal != 0 {
		d.signal(c, e)
	}
	return c.err
}

// stack reads a stack's frame ids. Events with the same ids share one
// slice of frames: a blocking call repeats from the same place thousands
// of times, and a copy of its frames each would outweigh the events.
func (d *decoder) stack(c *cursor) []model.Frame {
	n := c.count("stack frame")
	if n == 0 || c.err != nil {
		return nil
	}
	raw := c.b
	d.ids = d.ids[:0]
	for range n {
		id := c.uvarint()
		if c.err == nil && id >= uint64(len(d.frames)) {
			c.fail(fmt.Errorf("frame %d not defined (dictionary has %d)", id, len(d.frames)))
		}
		if c.err != nil {
			return nil
		}
		d.ids = append(d.ids, id)
	}
	key := raw[:len(raw)-len(c.b)]
	if s, ok := d.stacks[string(key)]; ok {
		return s
	}
	s := make([]model.Frame, n)
	for i, id := range d.ids {
		s[i] = d.frames[id]
	}
	if d.stacks == nil {
		d.stacks = map[string][]model.Frame{}
	}
	d.stacks[string(key)] = s
	return s
}

func (d *decoder) meta(c *cursor) (*model.Trace, error) {
	t := &model.Trace{}
	t.Source = d.str(c)
	t.Arch = d.str(c)
	t.Target.PID = c.int()
	t.Target.Comm = d.str(c)
	t.Target.Cmdline = d.strings(c)
	t.Target.Exe = d.str(c)
	switch flag := c.byte(); flag {
	case timeZero:
	case timeValue:
		sec := c.varint()
		nsec := c.uvarint()
		if nsec >= 1e9 {
			c.fail(fmt.Errorf("start nanoseconds %d out of range", nsec))
		}
		t.Start = time.Unix(sec, int64(nsec))
	default:
		c.fail(fmt.Errorf("unknown start time flag %d", flag))
	}
	t.StartNS = c.uvarint()
	t.Threshold = time.Duration(c.varint())
	t.Processes = d.processes(c)
	t.Threads = d.threads(c)

	if n := c.count("socket"); n > 0 {
		t.Sockets = make([]model.Socket, n)
		for i := range t.Sockets {
			s := &t.Sockets[i]
			s.PID = c.int()
			s.FD = c.int()
			s.Inode = c.uvarint()
			s.Proto = d.str(c)
			s.Local = d.addr(c)
			s.Peer = d.addr(c)
			s.State = d.str(c)
		}
	}
	if n := c.count("blocked thread"); n > 0 {
		t.Blocked = make([]model.BlockedState, n)
		for i := range t.Blocked {
			s := &t.Blocked[i]
			s.PID = c.int()
			s.TID = c.int()
			s.Running = c.bool()
			s.Nr = c.int()
			s.Syscall = d.str(c)
			for j := range s.Args {
				s.Args[j] = c.uvarint()
			}
			s.Wchan = d.str(c)
			s.FD = c.int()
			s.Peer = d.addr(c)
		}
	}
	// Process facts, appended to the first format: absent from older
	// recordings.
	if c.err == nil && len(c.b) > 0 {
		setRuntimes(t.Processes, d.runtimes(c))
		if n := c.count("open file"); n > 0 {
			t.Files = make([]model.OpenFile, n)
			for i := range t.Files {
				f := &t.Files[i]
				f.PID = c.int()
				f.FD = c.int()
				f.Path = d.str(c)
			}
		}
		t.Epoll = d.epoll(c, false)
	}
	// Bytes after the known fields belong to newer writers: ignored.
	return t, c.err
}

// runtimes reads the runtimes of the processes that have one, by pid.
func (d *decoder) runtimes(c *cursor) map[int]model.Runtime {
	n := c.count("runtime")
	if n == 0 {
		return nil
	}
	out := make(map[int]model.Runtime, n)
	for range n {
		pid := c.int()
		out[pid] = model.Runtime{Name: d.str(c), Version: d.str(c), Loop: d.str(c)}
	}
	return out
}

// setRuntimes gives each process its runtime from rts, where it has one.
func setRuntimes(ps []model.Process, rts map[int]model.Runtime) {
	for i := range ps {
		if rt, ok := rts[ps[i].PID]; ok {
			ps[i].Runtime = rt
		}
	}
}

func (d *decoder) epoll(c *cursor, end bool) []model.EpollSet {
	n := c.count("epoll set")
	if n == 0 {
		return nil
	}
	sets := make([]model.EpollSet, n)
	for i := range sets {
		s := &sets[i]
		s.PID = c.int()
		s.EPFD = c.int()
		s.End = end
		if m := c.count("epoll fd"); m > 0 {
			s.FDs = make([]model.EpollFD, m)
			for j := range s.FDs {
				f := &s.FDs[j]
				f.FD = c.int()
				f.Kind = model.FDKind(c.byte())
				f.Listening = c.bool()
				f.Peer = d.addr(c)
				f.Path = d.str(c)
			}
		}
		if c.err != nil {
			break
		}
	}
	return sets
}

func (d *decoder) processes(c *cursor) []model.Process {
	n := c.count("process")
	if n == 0 {
		return nil
	}
	ps := make([]model.Process, n)
	for i := range ps {
		p := &ps[i]
		p.PID = c.int()
		p.PPID = c.int()
		p.Comm = d.str(c)
		p.Cmdline = d.strings(c)
		p.Exe = d.str(c)
		p.Exited = c.bool()
		p.ExitCode = c.int()
	}
	return ps
}

func (d *decoder) threads(c *cursor) []model.Thread {
	n := c.count("thread")
	if n == 0 {
		return nil
	}
	ts := make([]model.Thread, n)
	for i := range ts {
		t := &ts[i]
		t.PID = c.int()
		t.TID = c.int()
		t.Name = d.str(c)
		t.OnCPU = time.Duration(c.varint())
		f := c.byte()
		t.Started = f&1 != 0
		t.Exited = f&2 != 0
	}
	return ts
}

func (d *decoder) finalRec(c *cursor) (*finalRecord, error) {
	f := &finalRecord{}
	f.duration = time.Duration(c.varint())
	f.drops.RingBuffer = c.uvarint()
	f.drops.AggregateMap = c.uvarint()
	f.drops.InFlightMap = c.uvarint()
	f.drops.StackRead = c.uvarint()
	f.drops.Unparsed = c.uvarint()
	f.processes = d.processes(c)
	f.threads = d.threads(c)
	if n := c.count("syscall"); n > 0 {
		f.syscalls = make([]model.SyscallStat, n)
		for i := range f.syscalls {
			s := &f.syscalls[i]
			s.PID = c.int()
			s.TID = c.int()
			s.Nr = c.int()
			s.Name = d.str(c)
			s.Count = c.uvarint()
			s.Errors = c.uvarint()
			s.Total = time.Duration(c.varint())
			s.Max = time.Duration(c.varint())
			readHist(c, &s.Hist)
			if c.err != nil {
				break
			}
		}
	}
	// Appended groups, in their order (FORMAT.md): each is absent from
	// recordings older than it, and present only after every earlier one.
	if c.err == nil && len(c.b) > 0 {
		f.runtimes = d.runtimes(c)
		f.epoll = d.epoll(c, true)
		if n := c.count("listener"); n > 0 {
			f.listeners = make([]model.Listener, n)
			for i := range f.listeners {
				l := &f.listeners[i]
				l.Addr = d.addr(c)
				l.PID = c.int()
				l.Comm = d.str(c)
			}
		}
	}
	if c.err == nil && len(c.b) > 0 {
		f.drops.FDMap = c.uvarint()
	}
	if c.err == nil && len(c.b) > 0 {
		for range c.count("syscall op") {
			i, ok := c.syscallIndex(len(f.syscalls), "op")
			if !ok {
				break
			}
			f.syscalls[i].Op = d.str(c)
		}
	}
	if c.err == nil && len(c.b) > 0 {
		f.cost = d.cost(c)
	}
	if c.err == nil && len(c.b) > 0 {
		f.drops.Backlog = c.uvarint()
	}
	if c.err == nil && len(c.b) > 0 {
		f.drops.StackBacklog = c.uvarint()
	}
	if c.err == nil && len(c.b) > 0 {
		n := c.count("cgroup")
		f.cgroups = make(map[int]string, n)
		for range n {
			pid := c.int()
			f.cgroups[pid] = d.str(c)
		}
	}
	if c.err == nil && len(c.b) > 0 {
		for range c.count("untimed syscall") {
			i, ok := c.syscallIndex(len(f.syscalls), "untimed mark")
			if !ok {
				break
			}
			f.syscalls[i].Untimed = true
		}
	}
	// Bytes after the known fields belong to newer writers: ignored.
	return f, c.err
}

func (d *decoder) cost(c *cursor) model.Cost {
	var k model.Cost
	if k.Known = c.bool(); !k.Known {
		return k
	}
	k.Syscalls = c.uvarint()
	k.Events = c.uvarint()
	k.SnagCPU = time.Duration(c.varint())
	k.SnagPeakRSS = c.uvarint()
	k.StatsError = d.str(c)
	if n := c.count("program"); n > 0 {
		k.Programs = make([]model.ProgramCost, n)
		for i := range k.Programs {
			p := &k.Programs[i]
			p.Name = d.str(c)
			p.Syscall = c.bool()
			p.RunTime = time.Duration(c.varint())
			p.Runs = c.uvarint()
		}
	}
	return k
}

func readHist(c *cursor, h *model.Histogram) {
	n := c.count("histogram bucket")
	next := uint64(0)
	for range n {
		i := next + c.uvarint()
		v := c.uvarint()
		if c.err != nil {
			return
		}
		if i >= model.HistBuckets {
			c.fail(fmt.Errorf("histogram bucket %d out of range", i))
			return
		}
		h.AddBucket(int(i), v)
		next = i + 1
	}
}

func (d *decoder) applyFinal() {
	t, f := d.trace, d.final
	t.Duration = f.duration
	t.Drops = f.drops
	// A process keeps the runtime read at the attach unless the end
	// knows it (better).
	atAttach := make(map[int]model.Runtime, len(t.Processes))
	for _, p := range t.Processes {
		if p.Runtime != (model.Runtime{}) {
			atAttach[p.PID] = p.Runtime
		}
	}
	setRuntimes(f.processes, atAttach)
	setRuntimes(f.processes, f.runtimes)
	for i := range f.processes {
		if path, ok := f.cgroups[f.processes[i].PID]; ok {
			cgroup.SetProcess(&f.processes[i], path)
		}
	}
	t.Processes = f.processes
	t.Epoll = append(t.Epoll, f.epoll...)
	t.Listeners = f.listeners
	t.Threads = f.threads
	t.Syscalls = f.syscalls
	t.Cost = f.cost
}
