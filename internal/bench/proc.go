package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// procRoot is where the readers below look; tests point it elsewhere.
var procRoot = "/proc"

// fdinfoFields returns the "key:\tvalue" pairs of a /proc/PID/fdinfo file.
func fdinfoFields(data []byte) map[string]string {
	fields := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		fields[string(bytes.TrimSpace(k))] = string(bytes.TrimSpace(v))
	}
	return fields
}

// rawTracepointLink reads one fdinfo file and reports the tracepoint name
// and program id when the descriptor is a BPF raw tracepoint link.
func rawTracepointLink(data []byte) (tp string, progID uint32, ok bool) {
	f := fdinfoFields(data)
	if f["link_type"] != "raw_tracepoint" || f["tp_name"] == "" {
		return "", 0, false
	}
	id, err := strconv.ParseUint(f["prog_id"], 10, 32)
	if err != nil || id == 0 {
		return "", 0, false
	}
	return f["tp_name"], uint32(id), true
}

// rawTracepointLinks lists the raw tracepoint links process pid holds open,
// by tracepoint name. A tracer that holds links on sys_enter and sys_exit
// is attached: that is how the driver knows snag has started tracing.
func rawTracepointLinks(pid int) (map[string]uint32, error) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid), "fdinfo")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list fds of %d: %w", pid, err)
	}
	links := make(map[string]uint32)
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed since the listing
		}
		if tp, id, ok := rawTracepointLink(data); ok {
			links[tp] = id
		}
	}
	return links, nil
}

// parseSchedstat returns the first field of /proc/.../schedstat: the time
// the task has run on a CPU, in nanoseconds.
func parseSchedstat(data []byte) (uint64, error) {
	f := bytes.Fields(data)
	if len(f) == 0 {
		return 0, errors.New("empty schedstat")
	}
	ns, err := strconv.ParseUint(string(f[0]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("schedstat run time: %w", err)
	}
	return ns, nil
}

// cpuTime is the CPU time pid's live threads have used so far. It sums the
// per-thread schedstat counters, which count nanoseconds where
// /proc/PID/stat counts clock ticks too coarse for a few seconds' window.
func cpuTime(pid int) (time.Duration, error) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid), "task")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("list threads of %d: %w", pid, err)
	}
	var total uint64
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
		if err != nil {
			continue // the thread exited
		}
		ns, err := parseSchedstat(data)
		if err != nil {
			return 0, fmt.Errorf("thread %s of %d: %w", e.Name(), pid, err)
		}
		total += ns
	}
	return time.Duration(total), nil
}

// parseTracerPid returns the TracerPid field of a /proc/.../status file.
func parseTracerPid(status []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		v, ok := bytes.CutPrefix(sc.Bytes(), []byte("TracerPid:"))
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(string(bytes.TrimSpace(v)))
		if err != nil {
			return 0, fmt.Errorf("TracerPid: %w", err)
		}
		return pid, nil
	}
	return 0, errors.New("no TracerPid in status")
}

// tracedBy reports whether every thread of pid is ptrace-attached to tracer.
func tracedBy(pid, tracer int) (bool, error) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid), "task")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("list threads of %d: %w", pid, err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name(), "status"))
		if err != nil {
			continue
		}
		tp, err := parseTracerPid(data)
		if err != nil {
			return false, fmt.Errorf("thread %s of %d: %w", e.Name(), pid, err)
		}
		if tp != tracer {
			return false, nil
		}
	}
	return len(ents) > 0, nil
}

// pinThreads binds every current thread of pid to cpu; the threads a
// process starts later inherit the mask of the thread that starts them.
func pinThreads(pid, cpu int) error {
	dir := filepath.Join(procRoot, strconv.Itoa(pid), "task")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list threads of %d: %w", pid, err)
	}
	var set unix.CPUSet
	set.Set(cpu)
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("pin thread %d to cpu %d: %w", tid, cpu, err)
		}
	}
	return nil
}
