package procfs

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/syscalls"
)

// Blocked reads what thread tid of process pid is doing right now from
// task/TID/syscall and task/TID/wchan. Syscalls that began before tracing
// are otherwise invisible until they return. Reading another process's
// syscall file needs ptrace access to it (same user, or CAP_SYS_PTRACE).
//
// Peer is left empty: JoinPeers fills it from Sockets(pid).
func (fs FS) Blocked(pid, tid int) (model.BlockedState, error) {
	path := fs.taskPath(pid, tid, "syscall")
	b, err := readFile(path)
	if err != nil {
		return model.BlockedState{}, fmt.Errorf("read syscall of pid %d thread %d: %w", pid, tid, err)
	}
	bs, err := ParseSyscall(string(b), syscalls.Native())
	if err != nil {
		return model.BlockedState{}, fmt.Errorf("parse %s: %w", path, err)
	}
	bs.PID, bs.TID = pid, tid
	// wchan is best effort: it reads "0" unless the kernel allows showing it.
	if w, err := readFile(fs.taskPath(pid, tid, "wchan")); err == nil {
		if s := strings.TrimSpace(string(w)); s != "0" {
			bs.Wchan = s
		}
	}
	return bs, nil
}

// ParseSyscall parses the content of /proc/PID/task/TID/syscall, whose
// syscall numbers are those of arch:
//
//	running                        on CPU, not in a syscall
//	-1 SP PC                       blocked in the kernel outside a syscall
//	NR A1 A2 A3 A4 A5 A6 SP PC     in syscall NR (decimal), the rest in hex
//	0 0x0 … 0x0                    a kernel thread: in no syscall
func ParseSyscall(s, arch string) (model.BlockedState, error) {
	bs := model.BlockedState{Nr: -1, FD: -1}
	f := strings.Fields(s)
	switch {
	case len(f) == 1 && f[0] == "running":
		bs.Running = true
		return bs, nil
	case len(f) == 3 && f[0] == "-1":
		return bs, nil
	case len(f) != 9:
		return bs, fmt.Errorf("want 1, 3 or 9 fields, got %d in %q", len(f), truncate(s))
	}
	nr, err := strconv.Atoi(f[0])
	if err != nil || nr < 0 {
		return bs, fmt.Errorf("bad syscall number %q", f[0])
	}
	bs.Nr = nr
	for i := range bs.Args {
		v, err := strconv.ParseUint(strings.TrimPrefix(f[1+i], "0x"), 16, 64)
		if err != nil {
			return bs, fmt.Errorf("bad argument %d: %w", i+1, err)
		}
		bs.Args[i] = v
	}
	if sp, pc := f[7], f[8]; (sp == "0x0" || sp == "0") && (pc == "0x0" || pc == "0") {
		// No user stack or PC: a kernel thread, whose line reads as
		// syscall 0 (read on amd64) with zero arguments. It is in no
		// system call.
		return model.BlockedState{Nr: -1, FD: -1}, nil
	}
	bs.Syscall = syscalls.Name(arch, nr)
	if i := syscalls.FDArg(bs.Syscall); i >= 0 {
		// fds are C ints: the upper half of the register is not part of it.
		bs.FD = int(int32(bs.Args[i]))
	}
	return bs, nil
}

// JoinPeers sets the Peer of each blocked state whose fd is one of socks
// (matched by pid and fd).
func JoinPeers(blocked []model.BlockedState, socks []model.Socket) {
	type key struct{ pid, fd int }
	peers := make(map[key]model.Addr, len(socks))
	for _, s := range socks {
		peers[key{s.PID, s.FD}] = s.Peer
	}
	for i := range blocked {
		b := &blocked[i]
		if b.FD < 0 {
			continue
		}
		if p, ok := peers[key{b.PID, b.FD}]; ok {
			b.Peer = p
		}
	}
}

// PollFD reads the first fd of the pollfd array a thread blocked in
// poll/ppoll passed (its first argument), from /proc/PID/mem: the array
// lives in user memory, so /proc/PID/task/TID/syscall alone cannot name
// the fd a hung client library waits on.
func (fs FS) PollFD(pid int, array uint64) (int, error) {
	f, err := os.Open(fs.path(pid, "mem"))
	if err != nil {
		return -1, fmt.Errorf("read poll set of pid %d: %w", pid, err)
	}
	defer f.Close()
	var b [4]byte // struct pollfd starts with an int fd
	if _, err := f.ReadAt(b[:], int64(array)); err != nil {
		return -1, fmt.Errorf("read poll set of pid %d at %#x: %w", pid, array, err)
	}
	return int(int32(binary.NativeEndian.Uint32(b[:]))), nil
}
