// Package model is the one representation of a trace. Every source (live
// eBPF, a recording, an strace log) produces a Trace; the analyzer and every
// report read it and never learn where it came from.
package model

import (
	"net/netip"
	"strconv"
	"time"
)

// Schema names the JSON document version the reports write.
const Schema = "snag/v1"

// Trace is everything observed about the traced processes over one window.
type Trace struct {
	Source    string        // "ebpf", "recording" or "strace"
	Arch      string        // GOARCH whose syscall numbers Nr fields use
	Target    Target        // the process the user named
	Processes []Process     // every traced process, the target first
	Start     time.Time     // wall clock when tracing began
	StartNS   uint64        // the same instant on the event clock (Event.Time)
	Duration  time.Duration // wall time traced
	Threshold time.Duration // syscalls at least this slow arrive as events

	Threads  []Thread
	Syscalls []SyscallStat // exact aggregates per (pid, tid, syscall, futex op)
	Events   []Event       // slow syscalls, connections, process lifecycle

	// What was already there when tracing began.
	Sockets []Socket       // socket fds of each traced process
	Blocked []BlockedState // the syscall each thread was in at attach
	Files   []OpenFile     // non-socket fds of each traced process with their paths

	// Epoll holds the interest lists of the traced processes' epoll fds,
	// read at attach and again at the end: what a readiness wait watches
	// tells an event loop (connections, pipes carrying work) from a
	// prefork worker waiting only for its listening socket.
	Epoll []EpollSet
	// Listeners are listening sockets of processes on the host (in the
	// target's network namespace), so a local peer is named by the process
	// serving it: "127.0.0.1:23081 (mariadbd, pid 4242)".
	Listeners []Listener

	// ListenQueues are the accept queues of the traced processes'
	// listening sockets, sampled during the trace; TCPListen counts the
	// connections the network namespace's listeners overflowed or dropped.
	ListenQueues []ListenQueue
	TCPListen    ListenCounters

	Drops Drops
	// Cost is what tracing cost the host and the target; unknown for
	// strace logs and recordings made before snag measured it.
	Cost Cost

	// Notes say, one line each, what the source could not read or do: a
	// mapped file that could not be opened for symbols, a target that was
	// already a zombie. The report prints them; analysis ignores them.
	Notes []string
}

// Target identifies the traced process.
type Target struct {
	PID     int
	Comm    string
	Cmdline []string
	Exe     string
}

// Process is one traced process (the target, or a child with --follow-forks).
type Process struct {
	PID, PPID int
	Comm      string
	Cmdline   []string
	Exe       string
	Exited    bool
	ExitCode  int
	Signal    int // the signal that killed it, 0 when it exited or runs
	// Runtime is what runs the process's code, detected once by the
	// source; every rule and hint that depends on it asks this field.
	Runtime Runtime
	// Cgroup is the process's cgroup v2 path; Container (an id), Pod (a
	// Kubernetes pod's UID) and Unit (a systemd service or scope) are what
	// it names, each empty when it names none (internal/cgroup).
	Cgroup    string
	Container string
	Pod       string
	Unit      string
}

// Thread is one traced thread.
type Thread struct {
	PID, TID int
	Name     string
	// OnCPU is user plus system CPU time consumed during the trace window,
	// measured from /proc (or unknown, zero, for strace logs).
	OnCPU   time.Duration
	Started bool // created while tracing
	Exited  bool // ended while tracing
}

// SyscallStat aggregates every call of one syscall by one thread. Counts are
// exact even when events were dropped. Futex calls are split further by
// operation, so one thread may have several futex stats, one per Op.
type SyscallStat struct {
	PID, TID int
	Nr       int
	Name     string
	// Op is the futex operation class (syscalls.FutexOpWait, FutexOpWaitBitset,
	// FutexOpLockPI, FutexOpWake) for futex, and "" for every other syscall,
	// futex_waitv and futex_wait included. Name stays "futex" whatever Op is.
	Op     string
	Count  uint64
	Errors uint64
	// Untimed: the calls were counted but not timed (they never wait, and
	// timing them would cost more than they do), so Total, Max and Hist
	// say nothing about them.
	Untimed bool
	Total   time.Duration
	Max     time.Duration
	Hist    Histogram
}

// Add merges o's calls into s; the sum is untimed when either side is, as
// its times would leave out calls.
func (s *SyscallStat) Add(o *SyscallStat) {
	if o.Count > 0 && (o.Untimed || s.Count == 0) {
		s.Untimed = o.Untimed
	}
	s.Count += o.Count
	s.Errors += o.Errors
	s.Total += o.Total
	s.Max = max(s.Max, o.Max)
	s.Hist.Merge(&o.Hist)
}

// Since turns s, a reading of cumulative counters, into the calls made
// after earlier, a reading of the same counters. Max is exact when the
// slowest call so far is among them; otherwise it is the upper bound of
// the slowest of their histogram buckets (at most 1/8 over the truth),
// capped at the slowest call so far.
func (s *SyscallStat) Since(earlier *SyscallStat) {
	s.Count -= earlier.Count
	s.Errors -= earlier.Errors
	s.Total -= earlier.Total
	s.Hist.Sub(&earlier.Hist)
	if s.Max > earlier.Max {
		return
	}
	if i := s.Hist.Last(); i >= 0 {
		_, hi := HistBounds(i)
		s.Max = min(s.Max, time.Duration(hi-1))
		return
	}
	s.Max = 0
}

// AddCall counts one call of duration d.
func (s *SyscallStat) AddCall(d time.Duration, failed bool) {
	s.Count++
	if failed {
		s.Errors++
	}
	s.Total += d
	s.Max = max(s.Max, d)
	if d >= 0 {
		s.Hist.Add(uint64(d))
	}
}

// Quantile returns the q-quantile of this syscall's latency, capped at Max.
func (s *SyscallStat) Quantile(q float64) time.Duration {
	d := time.Duration(s.Hist.Quantile(q))
	if s.Max > 0 && d > s.Max {
		d = s.Max
	}
	return d
}

// EventKind says what an Event records.
type EventKind uint8

const (
	EvSyscall EventKind = iota + 1 // a syscall at or over the threshold
	EvConnect                      // connect(2), whatever its duration
	EvAccept                       // accept(2)/accept4(2) returning a socket
	EvBind                         // bind(2)
	EvSendTo                       // sendto/sendmsg with an explicit address
	EvFork                         // a new traced process or thread
	EvExec                         // execve completed
	EvExit                         // a thread or process ended
	EvPeek                         // the first read or write on a connection opened while tracing
	EvOpen                         // a file opened while tracing: Filename is its path, Ret its fd
	EvClose                        // close(2) of a socket or file opened while tracing: FD
	EvSignal                       // a fatal signal generated for a traced process: PID/TID the target, Signal, Sender
)

var eventKindNames = [...]string{"", "syscall", "connect", "accept", "bind", "sendto", "fork", "exec", "exit", "peek", "open", "close", "signal"}

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && k != 0 {
		return eventKindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one thing the analyzer needs individually. A trace holds tens of
// thousands: the one-byte fields share a word at the top rather than each
// padding one of its own.
type Event struct {
	Kind EventKind
	// Partial: the call began before tracing did; Duration is the time
	// since the attach, a lower bound. Aggregates leave such calls out.
	Partial bool
	// FDKnown reports that NonBlock and FDKind were read from the fd.
	FDKnown  bool
	NonBlock bool
	FDKind   FDKind
	Thread   bool // EvFork/EvExit: a thread rather than a process

	Time     uint64        // event clock, ns; for syscalls the time of return
	Duration time.Duration // syscall duration (0 for lifecycle events)
	PID, TID int
	Nr       int    // syscall number, -1 for lifecycle events
	Syscall  string // syscall name
	Ret      int64  // return value, -errno on failure
	Args     [6]uint64

	// FD is the file descriptor the call operated on, -1 when none.
	FD int

	// For poll/ppoll/select: number of fds, the first fd and the timeout
	// in milliseconds (-1 for none).
	PollNFDs    int
	PollFD      int
	PollTimeout int64

	Peer  Addr // remote address: the connect/sendto target or the fd's peer
	Local Addr // local address of the fd, where known

	ChildPID int    // EvFork: the new process or thread
	Comm     string // EvExec: new comm; EvFork: child's comm
	Filename string // EvExec: the executed file; EvOpen: the opened path
	ExitCode int    // EvExit: the exit status, 128+signal when killed
	// Signal: EvExit, the signal that killed the task (0: it exited);
	// EvSignal, the signal sent.
	Signal int
	// Sender and SenderComm: EvSignal, the process that sent the signal.
	// When the kernel did, Sender is 0 and SenderComm says how:
	// "oom-killer", or "kernel" (a fault, a kernel thread).
	Sender     int
	SenderComm string

	Stack []Frame // leaf first; empty when not captured

	// Data holds the first bytes read or written on a connection opened
	// while tracing (EvPeek, or a slow first call): its protocol names the
	// service better than its port does.
	Data []byte
}

// Failed reports whether a syscall returned an error.
func (e *Event) Failed() bool { return e.Ret < 0 && e.Ret > -4096 }

// FDKind classifies what a file descriptor refers to.
type FDKind uint8

const (
	FDUnknown FDKind = iota
	FDSocket
	FDFile
	FDPipe
	FDOther // eventfd, epoll, timerfd, …
)

var fdKindNames = [...]string{"unknown", "socket", "file", "pipe", "other"}

func (k FDKind) String() string {
	if int(k) < len(fdKindNames) {
		return fdKindNames[k]
	}
	return "unknown"
}

// Family is a socket address family.
type Family string

const (
	FamilyNone  Family = ""
	FamilyInet  Family = "inet"
	FamilyInet6 Family = "inet6"
	FamilyUnix  Family = "unix"
)

// Addr is a socket address.
type Addr struct {
	Family Family
	IP     netip.Addr // inet and inet6
	Port   uint16
	Path   string // unix; a leading '@' marks the abstract namespace
}

// IsZero reports whether no address is known.
func (a Addr) IsZero() bool { return a.Family == FamilyNone }

// String renders "127.0.0.1:3306", "[::1]:6379" or "unix:/run/x.sock".
func (a Addr) String() string {
	switch a.Family {
	case FamilyInet, FamilyInet6:
		return netip.AddrPortFrom(a.IP, a.Port).String()
	case FamilyUnix:
		if a.Path == "" {
			return "unix:(unnamed)"
		}
		return "unix:" + a.Path
	}
	return ""
}

// Frame is one symbolized stack frame.
type Frame struct {
	Addr     uint64
	Function string // "" when no symbol covers Addr
	Offset   uint64 // Addr minus the function's start, or the module offset when Function is ""
	Module   string // file name of the mapped object, e.g. "libmariadb.so.3"
	Path     string // its full path
	BuildID  string
	Kind     FrameKind
	Line     int // source line, 0 when unknown
}

// FrameKind tells what sort of code a frame belongs to.
type FrameKind uint8

const (
	FrameNative      FrameKind = iota // machine code in a shared object or executable
	FrameKernel                       // kernel code
	FrameInterpreter                  // an interpreter-level frame (Python function)
	FrameTruncated                    // the stack ended early: copy exhausted or no unwind rule
)

// String renders "function (module)", "function (module:line)" when the
// source line is known, or "module+0xoffset".
func (f Frame) String() string {
	switch {
	case f.Kind == FrameTruncated:
		return "[truncated]"
	case f.Function != "" && f.Module != "" && f.Line > 0:
		return f.Function + " (" + f.Module + ":" + strconv.Itoa(f.Line) + ")"
	case f.Function != "" && f.Module != "":
		return f.Function + " (" + f.Module + ")"
	case f.Function != "":
		return f.Function
	case f.Module != "":
		return f.Module + "+0x" + strconv.FormatUint(f.Offset, 16)
	}
	return "[unknown 0x" + strconv.FormatUint(f.Addr, 16) + "]"
}

// Socket is a socket fd open in a traced process when tracing began.
type Socket struct {
	PID   int
	FD    int
	Inode uint64
	Proto string // "tcp", "tcp6", "udp", "udp6", "unix"
	Local Addr
	Peer  Addr
	State string // "ESTABLISHED", "LISTEN", …
}

// OpenFile is a non-socket fd open in a traced process: a file, pipe or
// anon inode, named as /proc/PID/fd names it ("/var/lib/app/db.sqlite",
// "pipe:[123]", "anon_inode:[eventfd]").
type OpenFile struct {
	PID  int
	FD   int
	Path string
}

// EpollSet is the interest list of one epoll fd (/proc/PID/fdinfo/EPFD).
type EpollSet struct {
	PID  int
	EPFD int
	End  bool // read at the end of the trace; false: at attach
	FDs  []EpollFD
}

// EpollFD is one fd an epoll instance watches, with what it is.
type EpollFD struct {
	FD        int
	Kind      FDKind
	Listening bool   // a listening socket: the wait is for new connections
	Peer      Addr   // a connected socket's peer
	Local     Addr   // a socket's local address: an accepted unix connection has only this
	Path      string // what /proc/PID/fd names it: "pipe:[..]", "anon_inode:[eventfd]"
}

// ListenQueue is one listening socket's accept queue, sampled a few times a
// second (sock_diag: idiag_rqueue is the depth, idiag_wqueue the limit).
type ListenQueue struct {
	PID     int  // a traced process holding it
	Addr    Addr // "127.0.0.1:8000", "unix:/run/app/uwsgi.sock"
	Inode   uint64
	Limit   uint32 // the backlog the queue holds at most
	Samples int    // times it was read
	Full    int    // samples with the queue at its limit
	Max     uint32 // deepest queue seen
	Sum     uint64 // depths summed over the samples: the mean is Sum/Samples
}

// ListenCounters are the TcpExt ListenOverflows and ListenDrops of the
// target's network namespace over the trace (end minus start).
type ListenCounters struct {
	Known     bool
	Overflows uint64
	Drops     uint64
}

// Listener is a listening socket on the host and the process that owns it.
type Listener struct {
	Addr Addr
	PID  int // 0 when no visible process holds it
	Comm string
}

// BlockedState is what a thread was doing at the moment of attach, read from
// /proc/PID/task/TID/{syscall,wchan}: calls that began before the attach are
// otherwise invisible until they return.
type BlockedState struct {
	PID, TID int
	Running  bool // on CPU or runnable, not in a syscall
	Nr       int
	Syscall  string
	Args     [6]uint64
	Wchan    string
	FD       int  // -1 when the syscall has no fd argument
	Peer     Addr // the fd's peer when it is a socket
}

// Drops counts what tracing could not keep. Nothing is lost silently: every
// counter here reaches the reports.
type Drops struct {
	RingBuffer   uint64 // events that found the ring buffer full
	AggregateMap uint64 // (thread, syscall) slots that found the map full
	InFlightMap  uint64 // syscall entries whose in-flight record could not be stored
	StackRead    uint64 // user stack copies that failed
	FDMap        uint64 // fds opened while tracing that found the tracked-fd map full: their close goes unreported
	Unparsed     uint64 // input lines or records that could not be read
	// Backlog: records snag read from the ring buffer but dropped because
	// the enrichment behind it was too far behind (its queue was full).
	Backlog uint64
	// StackBacklog: slow calls whose user stack copy snag let go, the
	// enrichment being behind with its share of copies queued; their
	// stacks come from the kernel's frame-pointer walk alone.
	StackBacklog uint64
	// OverLimit: events received but not kept for the report once a live
	// trace held its maximum (aggregates still count them).
	OverLimit uint64
}

// Since is what d counted after an earlier reading of the same counters.
func (d Drops) Since(earlier Drops) Drops {
	return Drops{
		RingBuffer:   d.RingBuffer - earlier.RingBuffer,
		AggregateMap: d.AggregateMap - earlier.AggregateMap,
		InFlightMap:  d.InFlightMap - earlier.InFlightMap,
		StackRead:    d.StackRead - earlier.StackRead,
		FDMap:        d.FDMap - earlier.FDMap,
		Unparsed:     d.Unparsed - earlier.Unparsed,
		Backlog:      d.Backlog - earlier.Backlog,
		OverLimit:    d.OverLimit - earlier.OverLimit,
	}
}

// Total is the number of dropped events of every kind.
func (d Drops) Total() uint64 {
	return d.RingBuffer + d.AggregateMap + d.InFlightMap + d.StackRead + d.FDMap + d.Unparsed + d.Backlog + d.StackBacklog + d.OverLimit
}

// DropCause is one cause of dropped events and its count.
type DropCause struct {
	Name  string // as snag/v1's drops object names it: "ring_buffer", "over_limit"
	Count uint64
}

// Causes lists every counter of d with its name, in a fixed order, zeros
// included, for outputs that label drops by cause (the agent's metrics).
func (d Drops) Causes() []DropCause {
	return []DropCause{
		{"ring_buffer", d.RingBuffer}, {"aggregate_map", d.AggregateMap},
		{"in_flight_map", d.InFlightMap}, {"stack_read", d.StackRead},
		{"fd_map", d.FDMap}, {"unparsed", d.Unparsed},
		{"backlog", d.Backlog}, {"over_limit", d.OverLimit},
	}
}

// Cost is what one live trace cost, measured while it ran.
type Cost struct {
	Known bool
	// Programs are snag's BPF programs with the run time and runs the
	// kernel's BPF statistics (BPF_ENABLE_STATS) measured over the trace.
	// Empty when the statistics could not be enabled; StatsError says why.
	Programs   []ProgramCost
	StatsError string
	// StatsSampled says the statistics ran in samples, not for the whole
	// trace (they add two clock reads to every program run), and
	// SampledSyscalls how many of the traced syscalls they saw: Scaled
	// extrapolates Programs from those to all.
	StatsSampled    bool
	SampledSyscalls uint64

	Syscalls uint64 // syscalls traced: the sum of the aggregates' counts
	Events   uint64 // records read from the kernel, dropped ones not included

	SnagCPU     time.Duration // snag's own user and system CPU time over the trace
	SnagPeakRSS uint64        // snag's peak resident set, in bytes
}

// Since is what c measured after earlier, a reading of the same counters
// (programs matched by name). SnagPeakRSS stays c's: a peak, not a count.
func (c Cost) Since(earlier Cost) Cost {
	d := c
	d.Syscalls -= earlier.Syscalls
	d.SampledSyscalls -= earlier.SampledSyscalls
	d.Events -= earlier.Events
	d.SnagCPU -= earlier.SnagCPU
	d.Programs = make([]ProgramCost, len(c.Programs))
	for i, p := range c.Programs {
		for _, e := range earlier.Programs {
			if e.Name == p.Name {
				p.RunTime -= e.RunTime
				p.Runs -= e.Runs
			}
		}
		d.Programs[i] = p
	}
	return d
}

// Scaled extrapolates programs measured in samples (StatsSampled) from
// the syscalls the samples saw to all those traced; without a traced
// syscall in any sample there is nothing to scale, and StatsError says so.
func (c Cost) Scaled() Cost {
	if !c.StatsSampled || c.SampledSyscalls >= c.Syscalls {
		return c
	}
	if c.SampledSyscalls == 0 {
		c.Programs = nil
		c.StatsError = "no traced syscall ran while BPF statistics were sampled (--bpf-stats measures every run)"
		return c
	}
	f := float64(c.Syscalls) / float64(c.SampledSyscalls)
	progs := make([]ProgramCost, len(c.Programs))
	for i, p := range c.Programs {
		p.RunTime = time.Duration(float64(p.RunTime) * f)
		p.Runs = uint64(float64(p.Runs) * f)
		progs[i] = p
	}
	c.Programs = progs
	return c
}

// ProgramCost is one BPF program's share of the cost.
type ProgramCost struct {
	Name    string // the raw tracepoint it is attached to: sys_enter, sched_switch
	Syscall bool   // it runs at every syscall's entry or exit
	RunTime time.Duration
	Runs    uint64
}

// RunTime is the run time and runs of every program, or of the syscall
// programs only.
func (c *Cost) RunTime(syscallOnly bool) (time.Duration, uint64) {
	var d time.Duration
	var n uint64
	for _, p := range c.Programs {
		if p.Syscall || !syscallOnly {
			d += p.RunTime
			n += p.Runs
		}
	}
	return d, n
}

// PerSyscall is the run time of the syscall programs (an entry and an exit
// per call) divided by the syscalls traced; 0 when either is unknown. The
// programs also run, and return after the filter, for the calls of every
// untraced process on the host, so on a busy host this is an upper bound;
// it leaves out the cost of the tracepoint's dispatch to the program,
// which the kernel does not measure.
func (c *Cost) PerSyscall() time.Duration {
	d, _ := c.RunTime(true)
	if c.Syscalls == 0 || d == 0 {
		return 0
	}
	return d / time.Duration(c.Syscalls)
}

// UntracedCalls is how many calls of other processes the syscall
// programs also ran for: the entry program's runs beyond the calls traced.
// PerSyscall counts their time, so it is an upper bound when they are many.
func (c *Cost) UntracedCalls() uint64 {
	for _, p := range c.Programs {
		if p.Name == "sys_enter" && p.Runs > c.Syscalls {
			return p.Runs - c.Syscalls
		}
	}
	return 0
}
