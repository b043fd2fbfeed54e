package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat. The kernel always
// reports them in USER_HZ, which is 100 on every Linux arch snag supports,
// whatever CONFIG_HZ is.
const userHZ = 100

// readFile reads a /proc file. A process that exits between open and read
// makes the read fail with ESRCH; that is reported as fs.ErrNotExist too,
// so callers can tell "gone" from "broken" with one check.
func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, syscall.ESRCH) {
		return nil, fmt.Errorf("%w: %w", os.ErrNotExist, err)
	}
	return b, err
}

func (fs FS) taskPath(pid, tid int, elem ...string) string {
	return fs.path(pid, append([]string{"task", strconv.Itoa(tid)}, elem...)...)
}

// Exists reports whether a process (or thread) with this id is visible.
func (fs FS) Exists(pid int) bool {
	if pid <= 0 {
		return false
	}
	_, err := os.Stat(fs.path(pid))
	return err == nil
}

func (fs FS) readLine(pid int, what, path string) (string, error) {
	b, err := readFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s of pid %d: %w", what, pid, err)
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

// Comm returns the process name (at most 15 bytes, as the kernel keeps it).
func (fs FS) Comm(pid int) (string, error) {
	return fs.readLine(pid, "comm", fs.path(pid, "comm"))
}

// ThreadName returns the name of thread tid of process pid.
func (fs FS) ThreadName(pid, tid int) (string, error) {
	return fs.readLine(pid, "thread name", fs.taskPath(pid, tid, "comm"))
}

// Cmdline returns the process arguments. It is empty for kernel threads and
// zombies. A process that rewrote its arguments with spaces instead of NULs
// (setproctitle) comes back as one element.
func (fs FS) Cmdline(pid int) ([]string, error) {
	b, err := readFile(fs.path(pid, "cmdline"))
	if err != nil {
		return nil, fmt.Errorf("read cmdline of pid %d: %w", pid, err)
	}
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil, nil
	}
	return strings.Split(string(b), "\x00"), nil
}

// Exe returns the path of the process's executable as the kernel reports it
// (with " (deleted)" appended if the file was removed since exec). To open
// the file itself, even in another mount namespace, use Root/PID/exe.
func (fs FS) Exe(pid int) (string, error) {
	p, err := os.Readlink(fs.path(pid, "exe"))
	if err != nil {
		return "", fmt.Errorf("read exe of pid %d: %w", pid, err)
	}
	return p, nil
}

// stat holds the fields of /proc/PID/stat that snag uses.
type stat struct {
	Comm         string
	State        byte
	PPID         int
	UTime, STime uint64 // clock ticks (USER_HZ)
}

// parseStat parses /proc/PID/stat. The comm field is in parentheses but may
// itself contain spaces and ')', so the fields start after the last ')'.
func parseStat(b []byte) (stat, error) {
	var st stat
	s := strings.TrimSuffix(string(b), "\n")
	open := strings.IndexByte(s, '(')
	closing := strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return st, fmt.Errorf("no (comm) in %q", truncate(s))
	}
	st.Comm = s[open+1 : closing]
	// Fields after comm: state(3) ppid(4) … utime(14) stime(15).
	f := strings.Fields(s[closing+1:])
	if len(f) < 13 {
		return st, fmt.Errorf("want at least 15 fields, got %d", len(f)+2)
	}
	if len(f[0]) != 1 {
		return st, fmt.Errorf("bad state %q", f[0])
	}
	st.State = f[0][0]
	var err error
	if st.PPID, err = strconv.Atoi(f[1]); err != nil {
		return st, fmt.Errorf("bad ppid: %w", err)
	}
	if st.UTime, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return st, fmt.Errorf("bad utime: %w", err)
	}
	if st.STime, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return st, fmt.Errorf("bad stime: %w", err)
	}
	return st, nil
}

func truncate(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

func (fs FS) readStat(pid int, path string) (stat, error) {
	b, err := readFile(path)
	if err != nil {
		return stat{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	st, err := parseStat(b)
	if err != nil {
		return stat{}, fmt.Errorf("parse %s: %w", path, err)
	}
	return st, nil
}

// Zombie reports whether process pid has exited and waits to be reaped:
// every one of its threads is a zombie (a leader that called pthread_exit
// shows Z while its other threads run).
func (fs FS) Zombie(pid int) (bool, error) {
	tids, err := fs.Tasks(pid)
	if err != nil {
		return false, err
	}
	for _, tid := range tids {
		st, err := fs.readStat(pid, fs.taskPath(pid, tid, "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		if st.State != 'Z' && st.State != 'X' {
			return false, nil
		}
	}
	return true, nil
}

// PPID returns the parent's process id.
func (fs FS) PPID(pid int) (int, error) {
	st, err := fs.readStat(pid, fs.path(pid, "stat"))
	if err != nil {
		return 0, err
	}
	return st.PPID, nil
}

// Tasks returns the thread ids of process pid, sorted.
func (fs FS) Tasks(pid int) ([]int, error) {
	entries, err := os.ReadDir(fs.path(pid, "task"))
	if err != nil {
		return nil, fmt.Errorf("list threads of pid %d: %w", pid, err)
	}
	tids := make([]int, 0, len(entries))
	for _, e := range entries {
		if tid, err := strconv.Atoi(e.Name()); err == nil && tid > 0 {
			tids = append(tids, tid)
		}
	}
	slices.Sort(tids)
	return tids, nil
}

// TaskCPU returns the user plus system CPU time thread tid has consumed, at
// the 10 ms resolution the kernel reports it in.
func (fs FS) TaskCPU(pid, tid int) (time.Duration, error) {
	st, err := fs.readStat(pid, fs.taskPath(pid, tid, "stat"))
	if err != nil {
		return 0, err
	}
	return time.Duration(st.UTime+st.STime) * (time.Second / userHZ), nil
}

// Children returns the ids of the processes whose parent is pid, sorted.
// It reads task/*/children where the kernel has it (CONFIG_PROC_CHILDREN)
// and otherwise scans every process's stat for its parent.
func (fs FS) Children(pid int) ([]int, error) {
	tids, err := fs.Tasks(pid)
	if err != nil {
		return nil, err
	}
	var kids []int
	for i, tid := range tids {
		b, err := readFile(fs.taskPath(pid, tid, "children"))
		if errors.Is(err, os.ErrNotExist) {
			if i == 0 && fs.Exists(pid) {
				// The process is there but the file is not: no
				// CONFIG_PROC_CHILDREN.
				return fs.childrenByScan(pid)
			}
			continue // this thread ended meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("read children of pid %d: %w", pid, err)
		}
		for _, f := range strings.Fields(string(b)) {
			c, err := strconv.Atoi(f)
			if err != nil {
				return nil, fmt.Errorf("parse children of pid %d task %d: %w", pid, tid, err)
			}
			kids = append(kids, c)
		}
	}
	slices.Sort(kids)
	return slices.Compact(kids), nil
}

func (fs FS) childrenByScan(pid int) ([]int, error) {
	pids, err := fs.PIDs()
	if err != nil {
		return nil, fmt.Errorf("children of pid %d: %w", pid, err)
	}
	var kids []int
	for _, c := range pids {
		if c <= 0 || c == pid {
			continue
		}
		st, err := fs.readStat(c, fs.path(c, "stat"))
		if err != nil {
			continue // exited while scanning, or not a process directory
		}
		if st.PPID == pid {
			kids = append(kids, c)
		}
	}
	slices.Sort(kids)
	return kids, nil
}
