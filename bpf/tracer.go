//go:build linux

package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/snagtrace/snag/internal/cpython"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/syscalls"
)

// Defaults sized for one busy service. Each is a flag in the CLI.
const (
	// DefaultRingBytes holds ~7000 plain events or ~200 with stacks between
	// two reader wake-ups; a power of two as the kernel requires.
	DefaultRingBytes = 8 << 20
	// DefaultMaxSlots bounds the (thread, syscall) aggregates live at once:
	// 512 threads using 32 distinct syscalls each. The kernel allocates
	// them up front, 2.5 KiB each (40 MiB); exited threads' are reused.
	DefaultMaxSlots = 16384
	// maxSlotsLimit: a thread's row indexes its aggregates with 16 bits.
	maxSlotsLimit = 1 << 16
	// DefaultStackBytes copies the top 16 KiB of the user stack for slow
	// calls: deep enough for CPython's frames above a C library.
	DefaultStackBytes = 16 << 10
	pageSize          = 4096
)

// Options configure what the kernel side records.
type Options struct {
	// PIDs to trace. With one PID and neither FollowForks nor ArmedPID,
	// untraced processes pay a single compare per syscall.
	PIDs        []int
	FollowForks bool
	// ArmedPID starts tracing that process at its next exec (snag run).
	ArmedPID int
	// WatchExecs reports every exec on the host, traced or not, so that
	// user space can add the processes a selector matches (AddPID). The
	// traced set may then start empty.
	WatchExecs bool
	// Cgroups are cgroup v2 ids whose tasks are traced; more can be added
	// with AddCgroup. With none at load, cgroups cost nothing.
	Cgroups []uint64
	// Threshold: syscalls at least this slow become events. 0 records every call.
	Threshold time.Duration
	// StackThreshold: events at least this slow carry a user stack.
	StackThreshold time.Duration
	StackBytes     int // user stack copy per slow event, rounded up to pages; 0 disables
	// Python lists CPython processes whose frames to walk from the start,
	// before the first event; more can be added with TracePython.
	Python    []*cpython.Process
	RingBytes int
	MaxSlots  int
	// TimeAll times the calls that never wait too; by default they are
	// only counted (see Untimed).
	TimeAll bool
	// RunStats turns the kernel's BPF run-time statistics on for the
	// trace, so ProgramCosts can say what the programs cost. They are
	// global and add two clock reads to every run of every program, about
	// as much as snag's own work on a cheap syscall: off by default.
	RunStats bool
}

// Tracer is a loaded and attached set of snag's BPF programs.
type Tracer struct {
	objs    snagObjects
	links   []link.Link
	reader  *ringbuf.Reader
	arch    string
	rec     ringbuf.Record
	startNS uint64
	// tracked mirrors the kernel's fds map from the records that fill and
	// empty it, so a process's entries can be forgotten when it exits.
	tracked map[int]map[int]bool // pid → fds
	// progs are the attached programs, whose run time stats measure.
	progs []attachedProg
	stats runStats
	// mu guards exited, the aggregates of threads whose rows were freed,
	// and exitedRows, the row each of them was read from (for Cut).
	mu         sync.Mutex
	exited     []model.SyscallStat
	exitedRows []uint32
	// cutCalls counts the calls of exited aggregates Cut handed over.
	cutCalls uint64
	cutBuf   []model.SyscallStat
	// untimed marks the syscall numbers the kernel side counts without
	// timing them.
	untimed [MaxSyscalls]bool
}

// Record is one decoded ring-buffer record. Stack and FPStack alias the
// Tracer's buffers and are valid until the next Read.
type Record struct {
	Event   model.Event
	Regs    Regs
	Stack   []byte   // user memory from Regs.SP upward
	FPStack []uint64 // the kernel's frame-pointer walk, leaf first
	// PyCode holds the CPython code objects of the thread's frames,
	// innermost first, and PyLasti the byte offset of each one's
	// instruction; bit i of PyEntry marks a frame entered from C.
	PyCode  []uint64
	PyLasti []uint32
	PyEntry uint32
}

// Regs are the user registers at the syscall.
type Regs struct{ IP, SP, FP, LR uint64 }

// Load loads the programs with opts and attaches them. Close releases them.
func Load(opts Options) (*Tracer, error) {
	if len(opts.PIDs) == 0 && opts.ArmedPID == 0 && !opts.WatchExecs && len(opts.Cgroups) == 0 {
		return nil, errors.New("load tracer: no process to trace")
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raise the memlock limit: %w", err)
	}
	spec, err := loadSnag()
	if err != nil {
		return nil, fmt.Errorf("load BPF object: %w", err)
	}

	useCgroups := len(opts.Cgroups) > 0
	useMap := len(opts.PIDs) != 1 || opts.FollowForks || opts.ArmedPID != 0 || opts.WatchExecs || useCgroups
	var target uint32
	if len(opts.PIDs) == 1 {
		target = uint32(opts.PIDs[0])
	}
	pages := uint32((opts.StackBytes + pageSize - 1) / pageSize)
	if max := uint32(StackCopyMax / pageSize); pages > max {
		pages = max
	}
	// Bound through the generated specs: a variable or map renamed in the
	// C source fails to compile here instead of at run time.
	var specs snagSpecs
	if err := spec.Assign(&specs); err != nil {
		return nil, fmt.Errorf("bind BPF object: %w", err)
	}
	for _, v := range []struct {
		spec *ebpf.VariableSpec
		val  any
	}{
		{specs.TargTgid, target},
		{specs.UseTracedMap, useMap},
		{specs.FollowForks, opts.FollowForks},
		{specs.WatchExecs, opts.WatchExecs},
		{specs.UseCgroups, useCgroups},
		{specs.SlowNs, uint64(opts.Threshold)},
		{specs.StackPages, pages},
		{specs.StackNs, uint64(opts.StackThreshold)},
		{specs.FutexNr, futexNr(syscalls.Native())},
	} {
		if err := v.spec.Set(v.val); err != nil {
			return nil, fmt.Errorf("set %s: %w", v.spec.Name, err)
		}
	}
	ring := opts.RingBytes
	if ring <= 0 {
		ring = DefaultRingBytes
	}
	if ring&(ring-1) != 0 || ring < pageSize {
		return nil, fmt.Errorf("ring buffer size %d is not a power of two of at least %d bytes", ring, pageSize)
	}
	specs.Events.MaxEntries = uint32(ring)
	// Wake the reader when a quarter is pending; it also polls on a timer.
	if err := specs.WakeupBytes.Set(uint64(ring / 4)); err != nil {
		return nil, fmt.Errorf("set wakeup_bytes: %w", err)
	}
	slots := opts.MaxSlots
	if slots <= 0 {
		slots = DefaultMaxSlots
	}
	if slots > maxSlotsLimit {
		return nil, fmt.Errorf("at most %d aggregate slots, not %d", maxSlotsLimit, slots)
	}
	// One row per traced thread, a quarter of the slots: a thread makes
	// a handful of distinct syscalls at least.
	rows := max(slots/4, 256)
	specs.AggVals.MaxEntries = uint32(slots)
	specs.FreeVals.MaxEntries = uint32(slots)
	specs.Rows.MaxEntries = uint32(rows)
	specs.FreeRows.MaxEntries = uint32(rows)
	specs.ThreadSlot.MaxEntries = uint32(rows)

	t := &Tracer{arch: syscalls.Native(), tracked: map[int]map[int]bool{}}
	// Before the load, so every run of the new programs is timed.
	t.stats = runStats{err: ErrRunStatsOff}
	if opts.RunStats {
		t.stats = enableRunStats()
	}
	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		t.stats.close()
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("the kernel's verifier rejected snag's programs (run with --debug for its log): %w", err)
		}
		return nil, fmt.Errorf("load BPF programs: %w", err)
	}
	if err := t.setup(opts); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

func (t *Tracer) setup(opts Options) error {
	if err := t.fillSyscallInfo(opts); err != nil {
		return err
	}
	// Hand every row and value but the 0th to the kernel side.
	for _, q := range []*ebpf.Map{t.objs.FreeRows, t.objs.FreeVals} {
		for i := uint32(1); i < q.MaxEntries(); i++ {
			if err := q.Update(nil, i, ebpf.UpdateAny); err != nil {
				return fmt.Errorf("fill aggregate free list: %w", err)
			}
		}
	}
	for _, pid := range opts.PIDs {
		if err := t.AddPID(pid); err != nil {
			return err
		}
	}
	if len(opts.Cgroups) > 0 {
		// snag's own calls would feed on themselves.
		st := uint32(snagTraceStateTRACE_IGNORED)
		if err := t.objs.Traced.Put(uint32(os.Getpid()), st); err != nil {
			return fmt.Errorf("leave snag itself untraced: %w", err)
		}
	}
	for _, id := range opts.Cgroups {
		if err := t.AddCgroup(id); err != nil {
			return err
		}
	}
	for _, p := range opts.Python {
		if err := t.TracePython(p.PID, p.Runtime, p.Off); err != nil {
			return err
		}
	}
	if opts.ArmedPID != 0 {
		st := uint32(snagTraceStateTRACE_ARMED)
		if err := t.objs.Traced.Put(uint32(opts.ArmedPID), st); err != nil {
			return fmt.Errorf("arm pid %d: %w", opts.ArmedPID, err)
		}
	}
	var err error
	if t.reader, err = ringbuf.NewReader(t.objs.Events); err != nil {
		return fmt.Errorf("open ring buffer: %w", err)
	}
	// Lifecycle programs first, so no thread created between the two
	// attaches escapes, then the syscall pair, exit before enter so no
	// call is half seen.
	for _, p := range []struct {
		name string
		prog *ebpf.Program
	}{
		{"sched_process_fork", t.objs.SchedFork},
		{"sched_process_exec", t.objs.SchedExec},
		{"sched_process_exit", t.objs.SchedExit},
		{"signal_generate", t.objs.SignalGenerate},
		{"sys_exit", t.objs.SysExit},
		{"sys_enter", t.objs.SysEnter},
	} {
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: p.name, Program: p.prog})
		if err != nil {
			return fmt.Errorf("attach raw tracepoint %s: %w", p.name, err)
		}
		t.links = append(t.links, l)
		t.progs = append(t.progs, attachedProg{p.name, p.prog})
	}
	t.startNS = monotonicNow()
	if err := t.objs.AttachNs.Set(t.startNS); err != nil {
		return fmt.Errorf("set attach time: %w", err)
	}
	return nil
}

// StartNS is when tracing began, on the clock of Event.Time.
func (t *Tracer) StartNS() uint64 { return t.startNS }

// AddPID starts tracing another process (when the map filter is in use).
func (t *Tracer) AddPID(pid int) error {
	st := uint32(snagTraceStateTRACE_ACTIVE)
	if err := t.objs.Traced.Put(uint32(pid), st); err != nil {
		return fmt.Errorf("trace pid %d: %w", pid, err)
	}
	return nil
}

// RemovePID stops tracing a process that exited. Entries already gone
// are no error.
func (t *Tracer) RemovePID(pid int) error {
	key := uint32(pid)
	for _, m := range []*ebpf.Map{t.objs.Traced, t.objs.PyProcs} {
		if err := m.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("stop tracing pid %d: %w", pid, err)
		}
	}
	return nil
}

// SweepExited forgets the processes whose threads have all exited and
// that gone is true of (no longer in /proc), so that a long trace does not
// fill the traced set and a process given their pid later is not traced.
// It returns how many it forgot.
func (t *Tracer) SweepExited(gone func(pid int) bool) (int, error) {
	var (
		pid  uint32
		st   uint32
		pids []uint32
	)
	it := t.objs.Traced.Iterate()
	for it.Next(&pid, &st) {
		if st == uint32(snagTraceStateTRACE_EXITING) && gone(int(pid)) {
			pids = append(pids, pid)
		}
	}
	if err := it.Err(); err != nil {
		return 0, fmt.Errorf("read traced processes: %w", err)
	}
	for _, p := range pids {
		if err := t.RemovePID(int(p)); err != nil {
			return 0, err
		}
	}
	return len(pids), nil
}

// AddCgroup traces the tasks of a cgroup v2, given its id, from their next
// syscall. Load must have been given at least one cgroup.
func (t *Tracer) AddCgroup(id uint64) error {
	if err := t.objs.TracedCgroups.Put(id, uint8(1)); err != nil {
		return fmt.Errorf("trace cgroup %d: %w", id, err)
	}
	return nil
}

// RemoveCgroup forgets a cgroup that was removed.
func (t *Tracer) RemoveCgroup(id uint64) error {
	if err := t.objs.TracedCgroups.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("forget cgroup %d: %w", id, err)
	}
	return nil
}

// TracePython lets the kernel side walk pid's CPython frames for slow
// calls: runtime is the address of its _PyRuntime, off its struct layout.
func (t *Tracer) TracePython(pid int, runtime uint64, off cpython.Offsets) error {
	var flags snagPyFlag
	for _, f := range []struct {
		py  cpython.Flags
		bpf snagPyFlag
	}{
		{cpython.FlagCFrame, snagPyFlagPY_CFRAME},
		{cpython.FlagIsEntry, snagPyFlagPY_IS_ENTRY},
		{cpython.FlagOwner, snagPyFlagPY_OWNER},
		{cpython.FlagTagged, snagPyFlagPY_TAGGED},
		{cpython.FlagFrameObject, snagPyFlagPY_FRAME_OBJECT},
	} {
		if off.Flags&f.py != 0 {
			flags |= f.bpf
		}
	}
	p := snagPyProc{
		Runtime:            runtime,
		InterpretersHead:   off.InterpretersHead,
		ThreadsHead:        off.ThreadsHead,
		TstateNext:         off.TstateNext,
		TstateThreadId:     off.TstateThreadID,
		TstateFrame:        off.TstateFrame,
		CframeCurrentFrame: off.CframeCurrentFrame,
		FrameCode:          off.FrameCode,
		FramePrevious:      off.FramePrevious,
		FrameIsEntry:       off.FrameIsEntry,
		FrameOwner:         off.FrameOwner,
		FrameInstr:         off.FrameInstr,
		CodeAdaptive:       off.CodeAdaptive,
		Flags:              uint32(flags),
	}
	if err := t.objs.PyProcs.Put(uint32(pid), p); err != nil {
		return fmt.Errorf("walk python frames of pid %d: %w", pid, err)
	}
	return nil
}

// dropShims removes, in place, the frames the kernel side recorded as
// code 0: the C stack's shims of CPython 3.12 on, each below the first
// frame of a _PyEval_EvalFrameDefault call, which it marks as entered
// from C.
func dropShims(code []uint64, lasti []uint32, entry uint32) ([]uint64, []uint32, uint32) {
	n := 0
	var out uint32
	for i, c := range code {
		if c == 0 {
			if n > 0 {
				out |= 1 << (n - 1)
			}
			continue
		}
		code[n], lasti[n] = c, lasti[i]
		if entry&(1<<i) != 0 {
			out |= 1 << n
		}
		n++
	}
	return code[:n], lasti[:n], out
}

// sysFlags are the kernel side's flags for a call whose arguments are a.
func sysFlags(a syscalls.Arg) uint32 {
	var f uint32
	for _, m := range []struct {
		arg  syscalls.Arg
		flag snagSysFlag
	}{
		{syscalls.ArgConnect, snagSysFlagSYS_CONNECT},
		{syscalls.ArgAccept, snagSysFlagSYS_ACCEPT},
		{syscalls.ArgBind, snagSysFlagSYS_BIND},
		{syscalls.ArgSendTo, snagSysFlagSYS_SENDTO},
		{syscalls.ArgSendMsg, snagSysFlagSYS_SENDMSG},
		{syscalls.ArgEpoll, snagSysFlagSYS_EPOLL},
		{syscalls.ArgFDSets, snagSysFlagSYS_SELECT},
		{syscalls.ArgData, snagSysFlagSYS_PEEK},
		{syscalls.ArgClose, snagSysFlagSYS_CLOSE},
		{syscalls.ArgPath, snagSysFlagSYS_OPEN},
		{syscalls.ArgPathAt, snagSysFlagSYS_OPENAT},
		{syscalls.ArgFork, snagSysFlagSYS_FORK},
	} {
		if a&m.arg != 0 {
			f |= uint32(m.flag)
		}
	}
	switch { // poll's timeout is in milliseconds, ppoll's a timespec
	case a&syscalls.ArgPollFDs != 0 && a&syscalls.ArgTimespec != 0:
		f |= uint32(snagSysFlagSYS_PPOLL)
	case a&syscalls.ArgPollFDs != 0:
		f |= uint32(snagSysFlagSYS_POLL)
	}
	return f
}

// Untimed reports whether the kernel side, loaded with opts, counts the
// named call and its errors without timing it: a call that never waits
// (syscalls.ClassNoWait), whose two clock reads would cost more than the
// call itself, and that needs no decoding (no connect, bind or fd event).
// With a zero threshold every call is an event, so every call is timed.
func Untimed(name string, opts Options) bool {
	return !opts.TimeAll && opts.Threshold > 0 && syscalls.ClassOf(name) == syscalls.ClassNoWait &&
		sysFlags(syscalls.ArgsOf(name)) == 0
}

// fillSyscallInfo tells the kernel side, per syscall number, which argument
// is the fd, which calls need their addresses or poll sets decoded and
// which are counted without timing.
func (t *Tracer) fillSyscallInfo(opts Options) error {
	var keys []uint32
	var vals []snagSysinfo
	for nr := 0; nr < MaxSyscalls; nr++ {
		name := syscalls.Name(t.arch, nr)
		if name == "" {
			continue
		}
		flags := sysFlags(syscalls.ArgsOf(name))
		if t.untimed[nr] = Untimed(name, opts); t.untimed[nr] {
			flags |= uint32(snagSysFlagSYS_UNTIMED)
		}
		keys = append(keys, uint32(nr))
		vals = append(vals, snagSysinfo{Flags: flags, FdArg: int32(syscalls.FDArg(name))})
	}
	if _, err := t.objs.SyscallInfo.BatchUpdate(keys, vals, nil); err != nil {
		// Batch ops on arrays arrived in 5.6; fall back to single updates.
		for i := range keys {
			if err := t.objs.SyscallInfo.Put(keys[i], vals[i]); err != nil {
				return fmt.Errorf("fill syscall table: %w", err)
			}
		}
	}
	return nil
}

// Close detaches and unloads everything.
func (t *Tracer) Close() error {
	for i := len(t.links) - 1; i >= 0; i-- {
		t.links[i].Close()
	}
	t.links = nil
	if t.reader != nil {
		t.reader.Close()
	}
	t.stats.close()
	return t.objs.Close()
}

// Detach stops recording new syscalls but keeps maps and pending records
// readable, so the report reflects exactly the traced window.
func (t *Tracer) Detach() {
	for i := len(t.links) - 1; i >= 0; i-- {
		t.links[i].Close()
	}
	t.links = nil
}

// CloseReader unmaps the ring buffer once its last records are read. The
// kernel maps its data pages twice, so the default 8 MiB counts 16 MiB
// against snag's RSS while the report is built; the maps stay readable.
// Read fails after it.
func (t *Tracer) CloseReader() error {
	if t.reader == nil {
		return nil
	}
	err := t.reader.Close()
	t.reader, t.rec = nil, ringbuf.Record{}
	return err
}

// errReaderClosed is what Read returns after CloseReader.
var errReaderClosed = errors.New("ring buffer reader closed")

// ErrTimeout is returned by Read when no record arrived before the deadline.
var ErrTimeout = os.ErrDeadlineExceeded

// Read waits until deadline for the next record and decodes it into rec.
func (t *Tracer) Read(rec *Record, deadline time.Time) error {
	if t.reader == nil {
		return errReaderClosed
	}
	t.reader.SetDeadline(deadline)
	if err := t.reader.ReadInto(&t.rec); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return ErrTimeout
		}
		return err
	}
	if err := t.decode(t.rec.RawSample, rec); err != nil {
		return err
	}
	t.track(&rec.Event)
	if rec.Event.Kind == model.EvExit {
		e := (*snagEvent)(unsafe.Pointer(&t.rec.RawSample[0]))
		if e.AggSlot != 0 {
			return t.freeRow(e.AggSlot)
		}
	}
	return nil
}

// track follows the fds the kernel side tracks. An exiting process closes
// its fds without close(2): its entries are deleted here, or they would
// fill the map over a long trace.
func (t *Tracer) track(ev *model.Event) {
	switch ev.Kind {
	case model.EvConnect:
		if ev.Ret != 0 && ev.Ret != -int64(unix.EINPROGRESS) {
			return
		}
	case model.EvAccept, model.EvOpen:
		if ev.Ret < 0 {
			return
		}
	case model.EvClose:
		delete(t.tracked[ev.PID], ev.FD)
		return
	case model.EvExit:
		if fds := t.tracked[ev.PID]; !ev.Thread && fds != nil {
			for fd := range fds {
				k := snagFdKey{Tgid: uint32(ev.PID), Fd: int32(fd)}
				_ = t.objs.Fds.Delete(&k) // ErrKeyNotExist: closed, its record lost
			}
			delete(t.tracked, ev.PID)
		}
		return
	default:
		return
	}
	if ev.FD < 0 {
		return
	}
	if t.tracked[ev.PID] == nil {
		t.tracked[ev.PID] = map[int]bool{}
	}
	t.tracked[ev.PID][ev.FD] = true
}

const eventSize = int(unsafe.Sizeof(snagEvent{}))

func (t *Tracer) decode(raw []byte, rec *Record) error {
	if len(raw) < eventSize {
		return fmt.Errorf("short ring buffer record: %d bytes, want %d", len(raw), eventSize)
	}
	// The record is laid out by the same compiler rules as snagEvent.
	e := (*snagEvent)(unsafe.Pointer(&raw[0]))
	ev := &rec.Event
	*ev = model.Event{
		Kind:        model.EventKind(e.Kind),
		Time:        e.Ts,
		Duration:    time.Duration(e.DurationNs),
		PID:         int(e.Tgid),
		TID:         int(e.Tid),
		Nr:          int(int32(e.Nr)),
		Ret:         e.Ret,
		Args:        e.Args,
		FD:          int(e.Fd),
		FDKnown:     e.FdKnown != 0,
		NonBlock:    e.Nonblock != 0,
		FDKind:      model.FDKind(e.FdKind),
		PollNFDs:    int(e.PollNfds),
		PollFD:      int(e.PollFd),
		PollTimeout: int64(e.PollTimeoutMs),
		ChildPID:    int(e.Child),
		Thread:      e.Thread != 0,
		Partial:     e.Partial != 0,
		ExitCode:    int(e.ExitCode),
	}
	if ev.Nr >= 0 {
		ev.Syscall = syscalls.Name(t.arch, ev.Nr)
	}
	switch ev.Kind {
	case model.EvFork, model.EvExec, model.EvExit:
		ev.Comm = cString(e.Comm[:])
		ev.Filename = cString(e.Path[:])
		if ev.Kind == model.EvExit {
			ev.ExitCode = exitStatus(int(e.ExitCode))
			ev.Signal = int(e.Signal)
		}
	case model.EvOpen:
		ev.Filename = cString(e.Path[:]) // FD and Ret are the new fd
	case model.EvSignal:
		decodeSignal(e, ev)
	}
	ev.Peer = sockAddr(e.Peer.Family, e.Peer.Port, e.Peer.Addr)
	ev.Local = sockAddr(e.Local.Family, e.Local.Port, e.Local.Addr)
	if e.SaLen > 0 {
		sa := DecodeSockaddr(e.Sa[:min(int(e.SaLen), len(e.Sa))])
		switch {
		case sa.IsZero():
		case ev.Kind == model.EvBind:
			ev.Local = sa // bind names our own address
		default:
			ev.Peer = sa // the address the call named wins over the fd's
		}
	}
	if e.DataLen > 0 {
		// Copied: events outlive the record, and peeks are rare.
		ev.Data = bytes.Clone(e.Data[:min(int(e.DataLen), len(e.Data))])
	}
	if ev.Kind == model.EvConnect && ev.FD < 0 {
		ev.FD = int(e.Args[0])
	}

	rec.Regs = Regs{IP: e.Regs.Ip, SP: e.Regs.Sp, FP: e.Regs.Fp, LR: e.Regs.Lr}
	rec.PyCode, rec.PyLasti, rec.PyEntry = dropShims(e.PyCode[:min(int(e.PyDepth), len(e.PyCode))], e.PyLasti[:], e.PyEntry)
	depth := min(int(e.FpDepth), len(e.FpStack))
	rec.FPStack = e.FpStack[:depth]
	rec.Stack = nil
	if e.StackLen > 0 {
		end := eventSize + int(e.StackLen)
		if end > len(raw) {
			return fmt.Errorf("ring buffer record claims %d stack bytes, has %d", e.StackLen, len(raw)-eventSize)
		}
		rec.Stack = raw[eventSize:end]
	}
	return nil
}

// monotonicNow reads the clock bpf_ktime_get_ns uses.
func monotonicNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// exitStatus turns task->exit_code into a shell-style status.
func exitStatus(code int) int {
	if sig := code & 0x7f; sig != 0 {
		return 128 + sig
	}
	return (code >> 8) & 0xff
}

func cString(b []int8) string {
	u := unsafe.Slice((*byte)(unsafe.Pointer(&b[0])), len(b))
	if i := bytes.IndexByte(u, 0); i >= 0 {
		u = u[:i]
	}
	return string(u)
}

const (
	afUnix  = 1
	afInet  = 2
	afInet6 = 10
)

func sockAddr(family, port uint16, addr [16]uint8) model.Addr {
	if port == 0 && addr == [16]uint8{} && family != afUnix {
		return model.Addr{} // an unconnected socket: no peer yet
	}
	switch family {
	case afInet:
		return model.Addr{Family: model.FamilyInet, IP: netip.AddrFrom4([4]byte(addr[:4])), Port: port}
	case afInet6:
		return model.Addr{Family: model.FamilyInet6, IP: netip.AddrFrom16(addr).Unmap(), Port: port}
	case afUnix:
		return model.Addr{Family: model.FamilyUnix}
	}
	return model.Addr{}
}

// DecodeSockaddr decodes a struct sockaddr as user space passed it to the
// kernel: sockaddr_in, sockaddr_in6 or sockaddr_un (pathname, abstract or
// unnamed). Anything else, or too short, yields the zero Addr.
func DecodeSockaddr(b []byte) model.Addr {
	if len(b) < 2 {
		return model.Addr{}
	}
	family := binary.NativeEndian.Uint16(b)
	switch family {
	case afInet:
		if len(b) < 8 {
			return model.Addr{}
		}
		return model.Addr{Family: model.FamilyInet, IP: netip.AddrFrom4([4]byte(b[4:8])), Port: binary.BigEndian.Uint16(b[2:4])}
	case afInet6:
		if len(b) < 24 {
			return model.Addr{}
		}
		return model.Addr{Family: model.FamilyInet6, IP: netip.AddrFrom16([16]byte(b[8:24])), Port: binary.BigEndian.Uint16(b[2:4])}
	case afUnix:
		path := b[2:]
		if len(path) == 0 {
			return model.Addr{Family: model.FamilyUnix}
		}
		if path[0] == 0 { // abstract: the name is every byte given, NULs included
			return model.Addr{Family: model.FamilyUnix, Path: "@" + string(bytes.TrimRight(path[1:], "\x00"))}
		}
		if i := bytes.IndexByte(path, 0); i >= 0 {
			path = path[:i]
		}
		return model.Addr{Family: model.FamilyUnix, Path: string(path)}
	}
	return model.Addr{}
}

// futexNr is arch's futex syscall number, which the kernel side splits by
// operation; an impossible number when the arch has none.
func futexNr(arch string) uint32 {
	if nr, ok := syscalls.Number(arch, "futex"); ok {
		return uint32(nr)
	}
	return ^uint32(0)
}

// aggSyscall turns an aggregate's number back into a syscall: the kernel
// side keys futex calls by FutexNrBase + the class of their operation.
func (t *Tracer) aggSyscall(nr uint32) (n int, name, op string) {
	if c := nr - FutexNrBase; nr >= FutexNrBase && c < uint32(snagFutexClassFUTEX_CLASSES) {
		return int(futexNr(t.arch)), "futex", syscalls.FutexOps[c]
	}
	n, name = int(nr), syscalls.Name(t.arch, int(nr))
	if name == "" {
		name = fmt.Sprintf("syscall_%d", nr)
	}
	return n, name, ""
}

// rowStats reads the aggregates of row, a thread's, whose tid is given.
func (t *Tracer) rowStats(row *snagThreadAggs, tid uint32, out []model.SyscallStat) ([]model.SyscallStat, error) {
	var val snagAggVal
	for nr, i := range row.Idx {
		if i == 0 {
			continue
		}
		if err := t.objs.AggVals.Lookup(uint32(i), &val); err != nil {
			return out, fmt.Errorf("read aggregate %d: %w", i, err)
		}
		s := model.SyscallStat{
			PID:    int(row.Tgid),
			TID:    int(tid),
			Count:  val.Count,
			Errors: val.Errors,
			Total:  time.Duration(val.TotalNs),
			Max:    time.Duration(val.MaxNs),
		}
		s.Nr, s.Name, s.Op = t.aggSyscall(uint32(nr))
		s.Untimed = nr < MaxSyscalls && t.untimed[nr]
		s.Hist.AddCounts(val.Hist[:])
		out = append(out, s)
	}
	return out, nil
}

// freeRow keeps the aggregates of an exited thread, whose row the kernel
// side has let go of, and hands its row and values back for reuse.
func (t *Tracer) freeRow(slot uint32) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var row snagThreadAggs
	if err := t.objs.Rows.Lookup(slot, &row); err != nil {
		return fmt.Errorf("read aggregate row %d: %w", slot, err)
	}
	if row.Tid != 0 || row.Exited == 0 {
		return nil // already freed, or taken again
	}
	n := len(t.exited)
	var err error
	if t.exited, err = t.rowStats(&row, row.Exited, t.exited); err != nil {
		return err
	}
	for range t.exited[n:] {
		t.exitedRows = append(t.exitedRows, slot)
	}
	var zero snagAggVal
	for _, i := range row.Idx {
		if i == 0 {
			continue
		}
		if err := t.objs.AggVals.Put(uint32(i), &zero); err != nil {
			return fmt.Errorf("clear aggregate %d: %w", i, err)
		}
		if err := t.objs.FreeVals.Update(nil, uint32(i), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("free aggregate %d: %w", i, err)
		}
	}
	if err := t.objs.Rows.Put(slot, &snagThreadAggs{}); err != nil {
		return fmt.Errorf("clear aggregate row %d: %w", slot, err)
	}
	if err := t.objs.FreeRows.Update(nil, slot, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("free aggregate row %d: %w", slot, err)
	}
	return nil
}

// Aggregates reads the exact per-(thread, syscall) counters, futex calls
// split by operation: those of exited threads kept when their rows were
// freed, then the kernel side's rows.
func (t *Tracer) Aggregates() ([]model.SyscallStat, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var (
		slot uint32
		row  snagThreadAggs
		err  error
	)
	// Sized by a count first: a stat is some 2.5 KiB with its histogram,
	// and growing the slice by doubling would hold up to three times the
	// aggregates of 2,000 threads at once.
	n := len(t.exited)
	count := t.objs.Rows.Iterate()
	for count.Next(&slot, &row) {
		if row.Tid == 0 && row.Exited == 0 {
			continue
		}
		for _, i := range row.Idx {
			if i != 0 {
				n++
			}
		}
	}
	if err := count.Err(); err != nil {
		return nil, fmt.Errorf("read aggregates: %w", err)
	}
	out := make([]model.SyscallStat, 0, n)
	out = append(out, t.exited...)
	it := t.objs.Rows.Iterate()
	for it.Next(&slot, &row) {
		tid := row.Tid
		if tid == 0 {
			tid = row.Exited // its exit record was lost: the row was never freed
		}
		if tid == 0 {
			continue
		}
		if out, err = t.rowStats(&row, tid, out); err != nil {
			return nil, err
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read aggregates: %w", err)
	}
	return out, nil
}

// Cut reads the aggregates for a window of a continuous trace. fn gets
// every aggregate with the row it was read from, cumulative since the
// row's thread took it: first those of threads that exited since the last
// Cut, whose rows were freed (exited true: Cut hands them over and forgets
// them, so they are read once), then those of the rows in use. st is valid
// only during the call. A caller that keeps each row's last reading gets
// every call exactly once as the difference of two readings.
func (t *Tracer) Cut(fn func(row uint32, exited bool, st *model.SyscallStat)) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.exited {
		t.cutCalls += t.exited[i].Count
		fn(t.exitedRows[i], true, &t.exited[i])
	}
	clear(t.exited) // their names are strings held by nothing else
	t.exited, t.exitedRows = t.exited[:0], t.exitedRows[:0]
	var (
		slot uint32
		row  snagThreadAggs
		err  error
	)
	it := t.objs.Rows.Iterate()
	for it.Next(&slot, &row) {
		tid := row.Tid
		if tid == 0 {
			tid = row.Exited // exited, its row not freed yet
		}
		if tid == 0 {
			continue
		}
		if t.cutBuf, err = t.rowStats(&row, tid, t.cutBuf[:0]); err != nil {
			return err
		}
		for i := range t.cutBuf {
			fn(slot, false, &t.cutBuf[i])
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read aggregates: %w", err)
	}
	return nil
}

// Calls is how many syscalls the aggregates have counted so far, read
// into one reused value: the live status line asks every second, and
// Aggregates would build some 2.5 KiB per thread and syscall to answer.
func (t *Tracer) Calls() (uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	calls := t.cutCalls
	for i := range t.exited {
		calls += t.exited[i].Count
	}
	var (
		slot uint32
		row  snagThreadAggs
		val  snagAggVal
	)
	it := t.objs.Rows.Iterate()
	for it.Next(&slot, &row) {
		if row.Tid == 0 && row.Exited == 0 {
			continue
		}
		for _, i := range row.Idx {
			if i == 0 {
				continue
			}
			if err := t.objs.AggVals.Lookup(uint32(i), &val); err != nil {
				return 0, fmt.Errorf("read aggregate %d: %w", i, err)
			}
			calls += val.Count
		}
	}
	if err := it.Err(); err != nil {
		return 0, fmt.Errorf("read aggregates: %w", err)
	}
	return calls, nil
}

// Drops sums the per-CPU drop counters.
func (t *Tracer) Drops() (model.Drops, error) {
	var d model.Drops
	var per []uint64
	for reason, dst := range map[snagDropReason]*uint64{
		snagDropReasonDROP_RINGBUF:       &d.RingBuffer,
		snagDropReasonDROP_AGG_FULL:      &d.AggregateMap,
		snagDropReasonDROP_INFLIGHT_FULL: &d.InFlightMap,
		snagDropReasonDROP_STACK_READ:    &d.StackRead,
		snagDropReasonDROP_FDS_FULL:      &d.FDMap,
	} {
		if err := t.objs.Drops.Lookup(uint32(reason), &per); err != nil {
			return d, fmt.Errorf("read drop counter %d: %w", reason, err)
		}
		for _, v := range per {
			*dst += v
		}
	}
	return d, nil
}
