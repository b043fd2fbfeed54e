package stracelog

import (
	"bytes"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/syscalls"
)

// maxFrames bounds one -k stack.
const maxFrames = 128

// clock says how the log stamps its lines.
type clock uint8

const (
	clockNone      clock = iota
	clockTimeOfDay       // -t, -tt: since midnight
	clockEpoch           // -ttt
	clockRelative        // -r: since the previous line
)

type thread struct {
	tid     int
	seq     int // order of first appearance
	started bool
	exited  bool

	// The call printed "<unfinished ...>" and not yet resumed.
	pending   bool
	pendName  string
	pendStart uint64
	pendTS    bool
	pendArgs  []byte

	stats map[string]*model.SyscallStat // by name, futex by futexKeys
}

type process struct {
	comm, exe string
	cmdline   []string
	exited    bool
	exitCode  int
	signal    int // that killed it
	fds       map[int]*fdInfo

	// Runtime evidence: opened files that name an interpreter or a loop.
	objects    []string
	objectKeys map[string]bool
	// epoll holds the interest list of each epoll fd, by fd.
	epoll map[int]*epollSet
}

type parser struct {
	opt   Options
	arch  string
	stats Stats
	tr    model.Trace

	names   map[string]string // interned names, paths, functions
	nrs     map[string]int
	futex   map[string]uint64 // op words by their text in the log
	threads map[int]*thread
	last    *thread
	// threadOf maps a tid created with CLONE_THREAD to its creator;
	// createdBy maps every child tid or pid to the thread that forked it.
	threadOf  map[int]int
	createdBy map[int]int
	procs     map[int]*process
	sigSeen   map[sigKey]int // signals.go

	// Per file.
	lineNo      int
	noPrefixTID int
	aliasable   bool // unprefixed lines may be renamed to the first pid seen
	clock       clock
	rel         uint64
	dayBase     uint64
	lastTOD     uint64

	minT, maxT uint64
	haveT      bool
	recognized uint64
	lastEvent  int
	firstLine  string

	argBuf          [][]byte
	partial, joined []byte
	attached        map[int]bool // tids strace reported attaching to
}

func newParser(opt Options) *parser {
	if opt.MaxBadLines <= 0 {
		opt.MaxBadLines = 5
	}
	arch := opt.Arch
	if arch == "" {
		arch = "amd64"
	}
	return &parser{
		opt:       opt,
		arch:      arch,
		names:     make(map[string]string),
		nrs:       make(map[string]int),
		threads:   make(map[int]*thread),
		threadOf:  make(map[int]int),
		createdBy: make(map[int]int),
		procs:     make(map[int]*process),
		attached:  make(map[int]bool),
		lastEvent: -1,
	}
}

func (p *parser) beginFile(defaultTID int) {
	p.lineNo = 0
	p.noPrefixTID = defaultTID
	p.aliasable = defaultTID == 0
	p.rel, p.dayBase, p.lastTOD = 0, 0, 0
	p.lastEvent = -1
	p.partial = p.partial[:0]
	for _, th := range p.threads {
		th.pending = false
	}
}

func (p *parser) intern(b []byte) string {
	if s, ok := p.names[string(b)]; ok {
		return s
	}
	s := string(b)
	p.names[s] = s
	return s
}

func (p *parser) nr(name string) int {
	if n, ok := p.nrs[name]; ok {
		return n
	}
	n, ok := syscalls.Number(p.arch, name)
	if !ok {
		n = -1
	}
	p.nrs[name] = n
	return n
}

func (p *parser) thread(tid int) *thread {
	if p.last != nil && p.last.tid == tid {
		return p.last
	}
	th := p.threads[tid]
	if th == nil {
		th = &thread{tid: tid, seq: len(p.threads), stats: make(map[string]*model.SyscallStat)}
		p.threads[tid] = th
	}
	p.last = th
	return th
}

// pidOf follows CLONE_THREAD evidence from a tid to its process.
func (p *parser) pidOf(tid int) int {
	for range 64 {
		parent, ok := p.threadOf[tid]
		if !ok {
			break
		}
		tid = parent
	}
	return tid
}

func (p *parser) proc(pid int) *process {
	pr := p.procs[pid]
	if pr == nil {
		pr = &process{}
		p.procs[pid] = pr
	}
	return pr
}

func (p *parser) bad() {
	p.stats.Unparsed++
	if len(p.stats.FirstBad) < p.opt.MaxBadLines {
		p.stats.FirstBad = append(p.stats.FirstBad, p.lineNo)
	}
}

func (p *parser) noteFirst(b []byte) {
	if p.stats.Lines == 1 {
		if len(b) > 200 {
			b = b[:200]
		}
		p.firstLine = string(bytes.TrimRight(b, "\r\n"))
	}
}

func trimSpaceLeft(b []byte) []byte {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	return b
}

// line handles one line of the log.
func (p *parser) line(b []byte) {
	p.lineNo++
	p.stats.Lines++
	p.noteFirst(b)
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		p.stats.Parsed++
		return
	}
	if b[0] == ' ' || b[0] == '>' {
		if s := trimSpaceLeft(b); len(s) > 1 && s[0] == '>' && s[1] == ' ' {
			if p.frame(s[2:]) {
				p.ok()
			} else {
				p.bad()
			}
			return
		}
	}
	p.lastEvent = -1
	if len(p.partial) > 0 {
		// The rest of a line that an strace message cut in two.
		p.joined = append(append(p.joined[:0], p.partial...), b...)
		p.partial = p.partial[:0]
		b = p.joined
	}
	if i := bytes.Index(b, []byte("strace: ")); i >= 0 {
		// Written to stderr, strace's own messages may land mid-line:
		// "clone3({…}strace: Process 1880 attached\n => {…}) = 1880".
		p.message(b[i+len("strace: "):])
		if i > 0 {
			p.partial = append(p.partial[:0], b[:i]...)
		}
		p.ok()
		return
	}
	if p.statement(b) {
		p.ok()
	} else {
		p.bad()
	}
}

// message notes what strace says about the tracing itself.
func (p *parser) message(m []byte) {
	if rest, ok := bytes.CutPrefix(m, []byte("Process ")); ok {
		if v, n := atoi(rest); n > 0 && bytes.HasPrefix(rest[n:], []byte(" attached")) && v > 0 && v < 1<<30 {
			if len(p.attached) < 1<<16 {
				p.attached[int(v)] = true
			}
		}
	}
}

func (p *parser) ok() {
	p.stats.Parsed++
	p.recognized++
}

// statement parses "[pid N] TIME body" with every part optional.
func (p *parser) statement(s []byte) bool {
	tid, hasPID := p.noPrefixTID, false
	if s[0] == '[' {
		if !bytes.HasPrefix(s, []byte("[pid ")) {
			return false
		}
		s = trimSpaceLeft(s[5:])
		v, n := atoi(s)
		if n == 0 || n >= len(s) || s[n] != ']' || v <= 0 || v > 1<<30 {
			return false
		}
		tid, hasPID, s = int(v), true, s[n+1:]
	} else if isDigit(s[0]) {
		// A pid is all digits; a timestamp has ':' or '.'.
		if v, n := atoi(s); n < len(s) && s[n] == ' ' {
			if v <= 0 || v > 1<<30 {
				return false
			}
			tid, hasPID, s = int(v), true, s[n:]
		}
	}
	s = trimSpaceLeft(s)
	var ts uint64
	hasTS := false
	if len(s) > 0 && isDigit(s[0]) {
		end := bytes.IndexByte(s, ' ')
		if end < 0 {
			return false
		}
		t, ok := p.timestamp(s[:end])
		if !ok {
			return false
		}
		ts, hasTS, s = t, true, trimSpaceLeft(s[end:])
	}
	if len(s) == 0 {
		return false
	}
	if s[0] != '-' && s[0] != '+' && s[0] != '<' {
		// Reject garbage before it creates any thread state.
		if open := bytes.IndexByte(s, '('); open <= 0 || !validName(s[:open]) {
			return false
		}
	}
	if hasPID && p.aliasable {
		p.sawPID(tid)
	}
	th := p.thread(tid)
	var ok bool
	switch s[0] {
	case '-':
		ok = bytes.HasPrefix(s, []byte("--- ")) && p.signalLine(th, ts, s[4:]) // a signal or a stop
	case '+':
		ok = bytes.HasPrefix(s, []byte("+++ ")) && p.exitLine(th, ts, s[4:])
	case '<':
		ok = bytes.HasPrefix(s, []byte("<... ")) && p.resumed(th, ts, hasTS, s[5:])
	default:
		ok = p.syscall(th, ts, hasTS, s)
	}
	if ok && hasTS {
		p.seeTime(ts)
	}
	return ok
}

func (p *parser) seeTime(t uint64) {
	if !p.haveT || t < p.minT {
		p.minT = t
	}
	if !p.haveT || t > p.maxT {
		p.maxT = t
	}
	p.haveT = true
}

// sawPID renames the unprefixed thread 0 to the first prefixed pid that it
// did not fork: strace only starts printing "[pid N]" once a second process
// exists, and from then on prints the first one's pid too.
func (p *parser) sawPID(tid int) {
	th0, ok := p.threads[0]
	if !ok {
		p.aliasable = false // every line so far had a pid
		return
	}
	if parent, child := p.createdBy[tid]; child && parent == 0 || p.attached[tid] {
		return
	}
	if _, exists := p.threads[tid]; exists {
		return
	}
	p.aliasable = false
	delete(p.threads, 0)
	th0.tid = tid
	p.threads[tid] = th0
	p.noPrefixTID = tid
	for i := range p.tr.Events {
		if p.tr.Events[i].TID == 0 {
			p.tr.Events[i].TID = tid
		}
	}
	for child, parent := range p.createdBy {
		if parent == 0 {
			p.createdBy[child] = tid
		}
	}
	for child, parent := range p.threadOf {
		if parent == 0 {
			p.threadOf[child] = tid
		}
	}
	if pr, ok := p.procs[0]; ok {
		delete(p.procs, 0)
		p.procs[tid] = pr
	}
}

// timestamp reads "05:05:22.096916", "05:05:22", "1795496722.268803" or
// the relative "0.000386", returning nanoseconds on the event clock.
func (p *parser) timestamp(tok []byte) (uint64, bool) {
	var whole [3]uint64
	fields, i := 0, 0
	for {
		start := i
		var v uint64
		for i < len(tok) && isDigit(tok[i]) && i-start < 12 {
			v = v*10 + uint64(tok[i]-'0')
			i++
		}
		if i == start {
			return 0, false
		}
		whole[fields] = v
		fields++
		if i < len(tok) && tok[i] == ':' && fields < 3 {
			i++
			continue
		}
		break
	}
	var frac uint64
	if i < len(tok) && tok[i] == '.' {
		i++
		digits := 0
		for i < len(tok) && isDigit(tok[i]) {
			if digits < 9 {
				frac = frac*10 + uint64(tok[i]-'0')
				digits++
			}
			i++
		}
		for ; digits < 9; digits++ {
			frac *= 10
		}
	}
	if i != len(tok) {
		return 0, false
	}
	switch fields {
	case 3:
		if whole[0] > 23 || whole[1] > 59 || whole[2] > 60 {
			return 0, false
		}
		t := ((whole[0]*60+whole[1])*60+whole[2])*1e9 + frac + p.dayBase
		// Past midnight the time of day starts over.
		if p.clock == clockTimeOfDay && t+12*3600*1e9 < p.lastTOD {
			p.dayBase += 24 * 3600 * 1e9
			t += 24 * 3600 * 1e9
		}
		p.clock, p.lastTOD = clockTimeOfDay, t
		return t, true
	case 1:
		t := whole[0]*1e9 + frac
		// Epoch stamps are large; relative ones (-r) are gaps between lines.
		if whole[0] >= 1e8 {
			p.clock = clockEpoch
			return t, true
		}
		p.clock = clockRelative
		p.rel += t
		return p.rel, true
	}
	return 0, false
}

// call is one completed syscall.
type call struct {
	th       *thread
	name     string
	decode   syscalls.Arg // what of its arguments is decoded
	futexOp  uint64       // futex's op word, when opKnown
	opKnown  bool
	start    uint64
	hasTS    bool
	dur      time.Duration
	ret      int64
	retText  []byte
	args     []byte
	parts    [][]byte
	splitted bool
	data     []byte // first bytes on a fresh connection
}

func (c *call) arg(p *parser, i int) []byte {
	if !c.splitted {
		c.parts = splitArgs(c.args, p.argBuf[:0])
		p.argBuf = c.parts
		c.splitted = true
	}
	if i < len(c.parts) {
		return c.parts[i]
	}
	return nil
}

func validName(b []byte) bool {
	if len(b) == 0 || len(b) > 64 {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

var (
	unfinished = []byte("<unfinished ...>")
	detached   = []byte("<detached ...>")
)

func (p *parser) syscall(th *thread, ts uint64, hasTS bool, s []byte) bool {
	open := bytes.IndexByte(s, '(')
	if open <= 0 || !validName(s[:open]) {
		return false
	}
	name, rest := s[:open], s[open+1:]
	if bytes.HasSuffix(rest, unfinished) {
		th.pending = true
		th.pendName = p.intern(name)
		th.pendStart, th.pendTS = ts, hasTS
		th.pendArgs = append(th.pendArgs[:0], rest[:len(rest)-len(unfinished)]...)
		return true
	}
	if bytes.HasSuffix(rest, detached) {
		th.pending = false
		return true
	}
	args, ret, dur, ok := splitTail(rest)
	if !ok {
		return false
	}
	th.pending = false
	c := call{th: th, name: p.intern(name), start: ts, hasTS: hasTS, dur: dur, args: args, retText: ret}
	return p.complete(&c)
}

func (p *parser) resumed(th *thread, ts uint64, hasTS bool, s []byte) bool {
	i := bytes.Index(s, []byte(" resumed>"))
	if i <= 0 || !validName(s[:i]) {
		return false
	}
	name, rest := s[:i], s[i+len(" resumed>"):]
	if bytes.HasSuffix(rest, detached) {
		th.pending = false
		return true
	}
	args, ret, dur, ok := splitTail(rest)
	if !ok {
		return false
	}
	c := call{th: th, start: ts, hasTS: hasTS, dur: dur, retText: ret, args: args}
	if th.pending && th.pendName == string(name) {
		c.name = th.pendName
		th.pendArgs = append(th.pendArgs, args...)
		c.args, c.start, c.hasTS = th.pendArgs, th.pendStart, th.pendTS
	} else {
		// The start was not in the log (trimmed, or strace attached
		// mid-call): the resumed line is stamped at the return.
		c.name = p.intern(name)
		if c.hasTS && uint64(dur) <= ts {
			c.start = ts - uint64(dur)
		}
	}
	th.pending = false
	return p.complete(&c)
}

// splitTail splits "ARGS) = RET <DUR>" into its parts. The argument text
// may itself hold " = " inside strings, so the last ") = " wins.
func splitTail(s []byte) (args, ret []byte, dur time.Duration, ok bool) {
	if n := len(s); n > 2 && s[n-1] == '>' {
		if lt := bytes.LastIndexByte(s, '<'); lt > 0 && s[lt-1] == ' ' {
			if d, ok := parseDuration(s[lt+1 : n-1]); ok {
				dur, s = d, s[:lt-1]
			}
		}
	}
	end := len(s)
	for {
		i := bytes.LastIndex(s[:end], []byte(" = "))
		if i < 0 {
			return nil, nil, 0, false
		}
		j := i
		for j > 0 && s[j-1] == ' ' {
			j--
		}
		if j > 0 && s[j-1] == ')' {
			return s[:j-1], s[i+3:], dur, true
		}
		end = i
	}
}

// parseDuration reads -T's "0.000123" (seconds).
func parseDuration(b []byte) (time.Duration, bool) {
	var sec, frac uint64
	i := 0
	for i < len(b) && isDigit(b[i]) && i < 10 {
		sec = sec*10 + uint64(b[i]-'0')
		i++
	}
	if i == 0 || i >= len(b) || b[i] != '.' {
		return 0, false
	}
	i++
	digits := 0
	for ; i < len(b) && isDigit(b[i]); i++ {
		if digits < 9 {
			frac = frac*10 + uint64(b[i]-'0')
			digits++
		}
	}
	if i != len(b) || digits == 0 {
		return 0, false
	}
	for ; digits < 9; digits++ {
		frac *= 10
	}
	return time.Duration(sec*1e9 + frac), true
}

// parseRet reads "3", "3<TCP:[…]>", "-1 EAGAIN (…)", "? ERESTARTSYS (…)",
// "0x7f12…", "1 ([{fd=3, revents=POLLIN}])", "0 (Timeout)".
func parseRet(r []byte) (int64, bool) {
	if len(r) == 0 {
		return 0, false
	}
	var v int64
	n := 0
	switch {
	case r[0] == '?':
		n = 1
	case len(r) > 2 && r[0] == '0' && r[1] == 'x':
		var u uint64
		n = 2
		for n < len(r) && n < 18 && hexVal(r[n]) >= 0 {
			u = u<<4 | uint64(hexVal(r[n]))
			n++
		}
		if n == 2 {
			return 0, false
		}
		v = int64(u)
	default:
		v, n = atoi(r)
		if n == 0 {
			return 0, false
		}
	}
	if (v < 0 || r[0] == '?') && n+2 < len(r) && r[n] == ' ' && r[n+1] == 'E' {
		e := r[n+1:]
		if sp := bytes.IndexByte(e, ' '); sp >= 0 {
			e = e[:sp]
		}
		if errno, ok := syscalls.ErrnoNumber(string(e)); ok {
			v = -errno
		}
	}
	return v, true
}

func (p *parser) complete(c *call) bool {
	ret, ok := parseRet(c.retText)
	if !ok {
		return false
	}
	c.ret = ret
	c.decode = syscalls.ArgsOf(c.name)
	th := c.th
	key, op := c.name, ""
	if c.name == "futex" {
		// Split by operation class, as the kernel side does.
		if c.futexOp, c.opKnown = p.futexOp(c.args); c.opKnown {
			op = syscalls.FutexOpOf(c.futexOp)
			key = futexKeys[op]
		}
	}
	st := th.stats[key]
	if st == nil {
		st = &model.SyscallStat{Name: c.name, Nr: p.nr(c.name), Op: op}
		th.stats[key] = st
	}
	st.AddCall(c.dur, ret < 0 && ret > -4096)
	if c.hasTS {
		p.seeTime(c.start + uint64(c.dur))
	}

	p.track(c)
	p.killCall(c)

	var kind model.EventKind
	switch a := c.decode; {
	case a&syscalls.ArgConnect != 0:
		kind = model.EvConnect
	case a&syscalls.ArgBind != 0:
		kind = model.EvBind
	case a&syscalls.ArgAccept != 0:
		if ret >= 0 {
			kind = model.EvAccept
		}
	case a&syscalls.ArgSendTo != 0:
		if bytes.Contains(c.args, []byte("sa_family=")) && bytes.HasPrefix(c.arg(p, 4), []byte{'{'}) {
			kind = model.EvSendTo
		}
	case a&syscalls.ArgSendMsg != 0:
		if bytes.Contains(c.args, []byte("msg_name={")) {
			kind = model.EvSendTo
		}
	case a&(syscalls.ArgPath|syscalls.ArgPathAt) != 0:
		if ret >= 0 {
			kind = model.EvOpen
		}
	case a&syscalls.ArgClose != 0:
		if ret == 0 {
			kind = model.EvClose
		}
	}
	if kind == 0 && c.dur >= p.opt.Threshold {
		kind = model.EvSyscall
	}
	if c.data = p.firstBytes(c); c.data != nil && kind == 0 {
		kind = model.EvPeek
	}
	if kind != 0 {
		p.event(kind, c)
	}
	if c.decode&syscalls.ArgClose != 0 {
		// After the event, which names what the fd was.
		p.closeFD(c)
	}
	return true
}

// futexKeys are the per-thread stats keys of futex's operation classes.
var futexKeys = func() map[string]string {
	m := make(map[string]string, len(syscalls.FutexOps))
	for _, op := range syscalls.FutexOps {
		m[op] = "futex " + op
	}
	return m
}()

// maxFutexTexts bounds the cache of op texts: a log has a handful.
const maxFutexTexts = 64

// futexOp reads futex's second argument, "FUTEX_WAIT_BITSET_PRIVATE|
// FUTEX_CLOCK_REALTIME" or a number, from its argument text. The first
// argument, the address, holds no comma.
func (p *parser) futexOp(args []byte) (uint64, bool) {
	i := bytes.IndexByte(args, ',')
	if i < 0 {
		return 0, false
	}
	a := bytes.TrimSpace(args[i+1:])
	if j := bytes.IndexByte(a, ','); j >= 0 {
		a = bytes.TrimSpace(a[:j])
	}
	if op, ok := p.futex[string(a)]; ok {
		return op, true
	}
	op, ok := syscalls.ParseFutexOp(string(a))
	if !ok {
		if op, ok = number(a); !ok {
			return 0, false
		}
	}
	if p.futex == nil {
		p.futex = map[string]uint64{}
	}
	if len(p.futex) < maxFutexTexts {
		p.futex[string(a)] = op
	}
	return op, true
}

// fdOf returns the fd table entry of (pid of th, fd), creating it if asked.
func (p *parser) fdOf(th *thread, fd int, create bool) *fdInfo {
	pr := p.proc(p.pidOf(th.tid))
	info := pr.fds[fd]
	if info == nil && create {
		if pr.fds == nil {
			pr.fds = make(map[int]*fdInfo)
		}
		info = &fdInfo{}
		pr.fds[fd] = info
	}
	return info
}

var (
	sockNonblock = []byte("SOCK_NONBLOCK")
	oNonblock    = []byte("O_NONBLOCK")
)

// track keeps the fd table and the process tree current.
func (p *parser) track(c *call) {
	th, ret := c.th, c.ret
	switch a := c.decode; {
	case c.name == "socket":
		if ret >= 0 {
			info := p.fdOf(th, int(ret), true)
			*info = fdInfo{kind: model.FDSocket, nbKnown: true, nb: bytes.Contains(c.args, sockNonblock)}
		}
	case a&syscalls.ArgAccept != 0:
		if ret >= 0 {
			info := p.fdOf(th, int(ret), true)
			*info = fdInfo{kind: model.FDSocket, nbKnown: true, nb: c.name == "accept4" && bytes.Contains(c.arg(p, 3), sockNonblock)}
			info.peer = decodeSockaddr(c.arg(p, 1))
			if _, annot, _ := parseFD(c.retText); annot != nil {
				a := decodeAnnot(annot)
				info.local = a.local
				if !a.peer.IsZero() && (info.peer.IsZero() || info.peer.Family != model.FamilyUnix) {
					info.peer = a.peer
				}
			}
		}
	case a&syscalls.ArgConnect != 0:
		if ret == 0 || ret == -115 /* EINPROGRESS */ {
			if fd, _, ok := parseFD(c.arg(p, 0)); ok {
				info := p.fdOf(th, fd, true)
				info.kind = model.FDSocket
				info.peer = decodeSockaddr(c.arg(p, 1))
				info.fresh = true
			}
		}
	case c.name == "fcntl" || c.name == "fcntl64":
		fd, _, ok := parseFD(c.arg(p, 0))
		if !ok || ret < 0 {
			return
		}
		switch cmd := c.arg(p, 1); {
		case bytes.Equal(cmd, []byte("F_SETFL")):
			info := p.fdOf(th, fd, true)
			info.nbKnown, info.nb = true, bytes.Contains(c.arg(p, 2), oNonblock)
		case bytes.Equal(cmd, []byte("F_GETFL")) && bytes.Contains(c.retText, []byte("(flags ")):
			info := p.fdOf(th, fd, true)
			info.nbKnown, info.nb = true, bytes.Contains(c.retText, oNonblock)
		}
	case c.name == "ioctl":
		if ret == 0 && bytes.Equal(c.arg(p, 1), []byte("FIONBIO")) {
			if fd, _, ok := parseFD(c.arg(p, 0)); ok {
				info := p.fdOf(th, fd, true)
				info.nbKnown, info.nb = true, !bytes.Equal(c.arg(p, 2), []byte("[0]"))
			}
		}
	case a&(syscalls.ArgPath|syscalls.ArgPathAt) != 0:
		if ret >= 0 {
			flags := c.arg(p, 1)
			if c.decode&syscalls.ArgPathAt != 0 {
				flags = c.arg(p, 2)
			}
			path := p.openedPath(c)
			info := p.fdOf(th, int(ret), true)
			*info = fdInfo{nbKnown: true, nb: bytes.Contains(flags, oNonblock), path: path}
			if strings.HasPrefix(path, "/") {
				info.kind = model.FDFile
			}
			p.proc(p.pidOf(th.tid)).noteObject(path)
		}
	case c.name == "listen":
		if ret == 0 {
			if fd, _, ok := parseFD(c.arg(p, 0)); ok {
				info := p.fdOf(th, fd, true)
				info.kind, info.listening = model.FDSocket, true
			}
		}
	case c.name == "epoll_ctl":
		if ret == 0 {
			p.epollCtl(c)
		}
	case c.name == "pipe" || c.name == "pipe2":
		if ret == 0 {
			fds := bytes.Trim(c.arg(p, 0), "[]")
			nb := bytes.Contains(c.arg(p, 1), oNonblock)
			for _, f := range bytes.Split(fds, []byte(", ")) {
				if fd, _, ok := parseFD(f); ok {
					*p.fdOf(th, fd, true) = fdInfo{kind: model.FDPipe, nbKnown: true, nb: nb}
				}
			}
		}
	case a&syscalls.ArgFork != 0:
		if ret > 0 && ret < 1<<30 {
			child := int(ret)
			thread := bytes.Contains(c.args, []byte("CLONE_THREAD")) // fork and vfork print no flags
			p.createdBy[child] = th.tid
			if thread {
				p.threadOf[child] = th.tid
			}
			p.thread(child).started = true
			p.last = nil
			pid := p.pidOf(th.tid)
			e := p.lifecycle(model.EvFork, th.tid, c.start+uint64(c.dur))
			e.ChildPID, e.Thread = child, thread
			e.Comm = p.proc(pid).comm
			if !thread {
				parent := p.proc(pid)
				childProc := p.proc(child)
				childProc.comm, childProc.exe = parent.comm, parent.exe
				childProc.cmdline = parent.cmdline
				// Same image, same runtime, until it execs.
				childProc.objects = slices.Clone(parent.objects)
				childProc.objectKeys = maps.Clone(parent.objectKeys)
			}
		}
	case c.name == "execve" || c.name == "execveat":
		if ret == 0 {
			fileArg, argvArg := 0, 1
			if c.name == "execveat" {
				fileArg, argvArg = 1, 2
			}
			file, _ := unquote(c.arg(p, fileArg))
			pr := p.proc(p.pidOf(th.tid))
			pr.exe = file
			pr.comm = commOf(file)
			pr.cmdline = parseArgv(c.arg(p, argvArg))
			pr.fds = nil // close-on-exec fds are gone; the rest are unknown to the new image's log anyway
			pr.epoll = nil
			pr.objects, pr.objectKeys = nil, nil // a new image: its own runtime
			e := p.lifecycle(model.EvExec, th.tid, c.start+uint64(c.dur))
			e.Comm, e.Filename = pr.comm, file
		}
	}
}

// commOf is the kernel's comm for an executed file: its base name cut to
// TASK_COMM_LEN-1 bytes.
func commOf(file string) string {
	c := path.Base(file)
	if c == "." || c == "/" {
		return ""
	}
	if len(c) > 15 {
		c = c[:15]
	}
	return c
}

// parseArgv reads ["/usr/bin/python3", "srv.py"] (possibly truncated).
func parseArgv(s []byte) []string {
	s = bytes.TrimSpace(s)
	if len(s) < 2 || s[0] != '[' {
		return nil
	}
	s = s[1:]
	var argv []string
	for len(argv) < 4096 {
		s = bytes.TrimLeft(s, ", ")
		if len(s) == 0 || s[0] != '"' {
			break
		}
		str, rest := unquote(s)
		argv = append(argv, str)
		s = bytes.TrimPrefix(rest, []byte("..."))
	}
	return argv
}

func (p *parser) lifecycle(kind model.EventKind, tid int, t uint64) *model.Event {
	p.tr.Events = append(p.tr.Events, model.Event{
		Kind: kind, Time: t, TID: tid, Nr: -1, FD: -1, PollFD: -1,
	})
	return &p.tr.Events[len(p.tr.Events)-1]
}

// exitLine handles "exited with 0 +++", "killed by SIGKILL (core dumped) +++".
func (p *parser) exitLine(th *thread, ts uint64, s []byte) bool {
	code, signal := 0, 0
	switch {
	case bytes.HasPrefix(s, []byte("exited with ")):
		v, n := atoi(s[len("exited with "):])
		if n == 0 {
			return false
		}
		code = int(v)
	case bytes.HasPrefix(s, []byte("killed by ")):
		sig := s[len("killed by "):]
		if sp := bytes.IndexByte(sig, ' '); sp >= 0 {
			sig = sig[:sp]
		}
		signal = syscalls.SignalNumber(string(sig))
		code = 128 + signal
	default:
		return true // "superseded by execve", and whatever else strace says about a process
	}
	th.exited, th.pending, th.pendArgs = true, false, nil
	pid := p.pidOf(th.tid)
	pr := p.proc(pid)
	e := p.lifecycle(model.EvExit, th.tid, ts)
	e.ExitCode, e.Signal = code, signal
	e.Comm = pr.comm
	if pid == th.tid {
		pr.exited, pr.exitCode, pr.signal, pr.fds = true, code, signal, nil
	}
	return true
}

func (p *parser) frame(s []byte) bool {
	if p.lastEvent < 0 || p.lastEvent >= len(p.tr.Events) {
		return true // a stack of a call that made no event
	}
	e := &p.tr.Events[p.lastEvent]
	if len(e.Stack) >= maxFrames {
		return true
	}
	f, ok := parseFrame(s, p.intern)
	if ok {
		e.Stack = append(e.Stack, f)
	}
	return ok
}

// event records one call as an Event the way the live tracer fills it.
func (p *parser) event(kind model.EventKind, c *call) {
	e := model.Event{
		Kind:     kind,
		Duration: c.dur,
		TID:      c.th.tid,
		Nr:       p.nr(c.name),
		Syscall:  c.name,
		Ret:      c.ret,
		FD:       -1, PollFD: -1, PollTimeout: -1,
	}
	if c.hasTS {
		e.Time = c.start + uint64(c.dur)
	}
	for i := range e.Args {
		a := c.arg(p, i)
		if a == nil {
			break
		}
		if v, ok := number(a); ok {
			e.Args[i] = v
		}
	}
	if c.name == "accept4" {
		// strace spells the flags; the analyzer reads accept4's
		// SOCK_NONBLOCK (O_NONBLOCK) bit.
		if a := c.arg(p, 3); bytes.Contains(a, []byte("SOCK_NONBLOCK")) {
			e.Args[3] |= 0x800
		}
	}
	if c.opKnown {
		e.Args[1] = c.futexOp // strace spells it out; live events carry the word
	}
	var annot []byte
	setFD := func(a []byte) {
		if fd, an, ok := parseFD(a); ok {
			e.FD, annot = fd, an
		}
	}
	switch a := c.decode; {
	case a&syscalls.ArgPollFDs != 0:
		if v, n := atoi(c.arg(p, 1)); n > 0 {
			e.PollNFDs = int(v)
		}
		if a, ok := after(c.arg(p, 0), "fd="); ok && e.PollNFDs > 0 {
			if fd, an, ok := parseFD(cutField(a)); ok {
				e.PollFD, e.FD, annot = fd, fd, an
			}
		}
		e.PollTimeout = timeoutMS(c.arg(p, 2))
	case a&syscalls.ArgEpoll != 0:
		setFD(c.arg(p, 0))
		e.PollTimeout = timeoutMS(c.arg(p, 3))
	case a&syscalls.ArgFDSets != 0:
		if v, n := atoi(c.arg(p, 0)); n > 0 {
			e.PollNFDs = int(v)
		}
		if set := c.arg(p, 1); len(set) > 1 && set[0] == '[' {
			if fd, an, ok := parseFD(cutField(set[1:])); ok {
				e.PollFD, annot = fd, an
			}
		}
		e.PollTimeout = timeoutMS(c.arg(p, 4))
	case a&syscalls.ArgAccept != 0:
		if c.ret >= 0 {
			setFD(c.retText)
		} else {
			setFD(c.arg(p, 0))
		}
	default:
		if i := syscalls.FDArg(c.name); i >= 0 {
			setFD(c.arg(p, i))
		}
	}
	switch kind {
	case model.EvConnect:
		e.Peer = decodeSockaddr(c.arg(p, 1))
		if e.FD < 0 {
			setFD(c.arg(p, 0))
		}
	case model.EvBind:
		e.Local = decodeSockaddr(c.arg(p, 1)) // bind names our own address
		if e.FD < 0 {
			setFD(c.arg(p, 0))
		}
	case model.EvSendTo:
		if c.decode&syscalls.ArgSendTo != 0 {
			e.Peer = decodeSockaddr(c.arg(p, 4))
		} else if a, ok := after(c.args, "msg_name="); ok {
			e.Peer = decodeSockaddr(a)
		}
	case model.EvAccept:
		e.Peer = decodeSockaddr(c.arg(p, 1))
	case model.EvOpen:
		e.Filename = p.openedPath(c)
	}
	if e.FD >= 0 || e.PollFD >= 0 {
		fd := e.FD
		if fd < 0 {
			fd = e.PollFD
		}
		a := decodeAnnot(annot)
		if t := p.fdOf(c.th, fd, false); t != nil {
			e.FDKnown, e.NonBlock = t.nbKnown, t.nb
			if a.kind == model.FDUnknown {
				a.kind = t.kind
			}
			// The table knows unix peers by path where -yy only says "unix".
			if a.peer.IsZero() || a.peer.Family == model.FamilyUnix && a.peer.Path == "" && !t.peer.IsZero() {
				a.peer = t.peer
			}
			if a.local.IsZero() {
				a.local = t.local
			}
		}
		if e.FD >= 0 {
			e.FDKind = a.kind
		}
		if e.Peer.IsZero() {
			e.Peer = a.peer
		}
		if e.Local.IsZero() {
			e.Local = a.local
		}
	}
	e.Data = c.data
	p.tr.Events = append(p.tr.Events, e)
	p.lastEvent = len(p.tr.Events) - 1
}

// peekLen matches the live tracer's copy of a connection's first bytes.
const peekLen = 64

// firstBytes returns the data of the first read or write on a connection
// opened in this log (strace prints it as the buffer argument).
func (p *parser) firstBytes(c *call) []byte {
	if c.decode&syscalls.ArgData == 0 {
		return nil
	}
	if c.ret <= 0 {
		return nil
	}
	fd, _, ok := parseFD(c.arg(p, 0))
	if !ok {
		return nil
	}
	info := p.fdOf(c.th, fd, false)
	if info == nil || !info.fresh {
		return nil
	}
	info.fresh = false
	buf := c.arg(p, 1)
	if len(buf) == 0 || buf[0] != '"' {
		return nil
	}
	s, _ := unquote(buf)
	return []byte(s[:min(len(s), peekLen)])
}

// cutField cuts "5<TCP:[…]>, events=POLLIN}…" or "5 6]" at the end of the
// first value.
func cutField(s []byte) []byte {
	depth := 0
	for i, c := range s {
		switch c {
		case '<':
			depth++
		case '>':
			if depth > 0 && (i == 0 || s[i-1] != '-') {
				depth--
			}
		case ',', ' ', ']', '}':
			if depth == 0 {
				return s[:i]
			}
		}
	}
	return s
}

// finish assembles the Trace.
func (p *parser) finish() *model.Trace {
	tr := &p.tr
	tr.Source = "strace"
	tr.Arch = p.arch
	tr.Threshold = p.opt.Threshold
	tr.Drops.Unparsed = p.stats.Unparsed

	for i := range tr.Events {
		e := &tr.Events[i]
		e.PID = p.pidOf(e.TID)
		if e.Kind == model.EvExit {
			e.Thread = e.TID != e.PID
		}
	}
	if p.haveT {
		sort.SliceStable(tr.Events, func(i, j int) bool { return tr.Events[i].Time < tr.Events[j].Time })
	}

	threads := make([]*thread, 0, len(p.threads))
	for _, th := range p.threads {
		threads = append(threads, th)
	}
	slices.SortFunc(threads, func(a, b *thread) int { return a.seq - b.seq })

	seenPID := make(map[int]bool)
	var pids []int
	for _, th := range threads {
		pid := p.pidOf(th.tid)
		if !seenPID[pid] {
			seenPID[pid] = true
			pids = append(pids, pid)
		}
		comm := ""
		if pr := p.procs[pid]; pr != nil {
			comm = pr.comm
		}
		tr.Threads = append(tr.Threads, model.Thread{
			PID: pid, TID: th.tid, Name: comm, Started: th.started, Exited: th.exited,
		})
		names := make([]string, 0, len(th.stats))
		for name := range th.stats {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			st := *th.stats[name]
			st.PID, st.TID = pid, th.tid
			tr.Syscalls = append(tr.Syscalls, st)
		}
	}
	for _, pid := range pids {
		proc := model.Process{PID: pid}
		if parent, ok := p.createdBy[pid]; ok {
			proc.PPID = p.pidOf(parent)
		}
		if pr := p.procs[pid]; pr != nil {
			proc.Comm, proc.Exe, proc.Cmdline = pr.comm, pr.exe, pr.cmdline
			proc.Exited, proc.ExitCode, proc.Signal = pr.exited, pr.exitCode, pr.signal
			proc.Runtime = pr.runtime()
			tr.Epoll = append(tr.Epoll, pr.epollSets(pid)...)
		}
		tr.Processes = append(tr.Processes, proc)
	}
	if len(tr.Processes) > 0 {
		t := tr.Processes[0]
		tr.Target = model.Target{PID: t.PID, Comm: t.Comm, Cmdline: t.Cmdline, Exe: t.Exe}
	}

	if p.haveT {
		tr.StartNS = p.minT
		tr.Duration = time.Duration(p.maxT - p.minT)
		switch p.clock {
		case clockEpoch:
			tr.Start = time.Unix(0, int64(p.minT))
		case clockTimeOfDay:
			day := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
			if !p.opt.Day.IsZero() {
				y, m, d := p.opt.Day.Date()
				day = time.Date(y, m, d, 0, 0, 0, 0, p.opt.Day.Location())
			}
			tr.Start = day.Add(time.Duration(p.minT))
		}
	}
	return tr
}
