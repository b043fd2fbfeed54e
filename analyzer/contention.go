package analyzer

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/syscalls"
)

// Lock contention. A pool worker waiting for work also sits in futex, so
// futex time alone proves nothing. Contention looks different: several
// threads of one process each lose a real share of their time in short,
// frequent futex waits (they hand a lock around), where an idle pool worker
// shows a few long waits. A thread contends when futex waits take at least
// contendMinShare of its life, their median is at most contendMaxP50 and
// they happen at least contendMinRate times a second, and between the waits
// the thread has work: it spends at least contendMinBusy of its life on CPU
// or blocked in something other than futex. Idle runtime threads (Go's Ms
// parking between goroutines) wait often and briefly too, but do nothing
// in between, so without that last test they look like contention. A
// process with
// contendMinThreads such threads gets a finding, high when they lose
// contendHighShare of their time on average.
const (
	contendMinShare   = 0.10
	contendMaxP50     = 20 * time.Millisecond
	contendMinRate    = 20.0
	contendMinThreads = 2
	contendHighShare  = 0.30
	contendMinBusy    = 0.20
)

// contendMinWakes: a thread handing a lock on wakes a waiter about once per
// wait of its own; a pool worker woken for work seldom wakes anyone.
const contendMinWakes = 0.25

func (c *contender) add(st *model.SyscallStat) {
	c.count += st.Count
	c.total += st.Total
	c.max = max(c.max, st.Max)
	c.hist.Merge(&st.Hist)
}

type contender struct {
	th    *thread
	count uint64
	total time.Duration
	max   time.Duration
	hist  model.Histogram
}

func (s *session) lockContention() []model.Finding {
	byPID := map[int][]*contender{}
	for _, th := range s.threads {
		if th.role == model.RoleIdle || th.life <= 0 {
			continue
		}
		c := &contender{th: th}
		if th.futexOps != nil && th.proc.runtime.Name != model.RuntimeGo {
			// The operation says what a wait is: glibc's mutexes wait in
			// FUTEX_WAIT (PI ones in LOCK_PI), condition variables and
			// semaphores (a pool waiting for work, a JVM parking) in
			// FUTEX_WAIT_BITSET. Only the first are a lock handed around;
			// and a thread handing a lock on wakes the next waiter as
			// often as it waits.
			var wakes uint64
			for op, st := range th.futexOps {
				switch op {
				case syscalls.FutexOpWait, syscalls.FutexOpLockPI:
					c.add(st)
				case syscalls.FutexOpWake:
					wakes += st.Count
				}
			}
			if c.count == 0 || float64(wakes) < contendMinWakes*float64(c.count) {
				continue
			}
		} else {
			if rt := th.proc.runtime; rt.Name == model.RuntimeNode || rt.Name == model.RuntimeJVM {
				// Their pools wait for work on condition variables: without
				// the operation, short frequent waits are jobs arriving.
				continue
			}
			for name, st := range th.stats {
				if syscalls.ClassOf(name) == syscalls.ClassFutex {
					c.add(st)
				}
			}
		}
		if c.count == 0 {
			continue
		}
		p50 := time.Duration(c.hist.Quantile(0.5))
		rate := float64(c.count) / th.life.Seconds()
		// Work between the waits: CPU, and calls that are neither futex
		// nor the thread's idle wait (a worker's idle is its futex time,
		// which must not be taken off twice).
		busy := th.onCPU
		for name, st := range th.stats {
			if syscalls.ClassOf(name) == syscalls.ClassFutex || th.isIdleSyscall(name) ||
				waitsInReadiness(th.role) && name == th.loopWait {
				continue
			}
			busy += st.Total
		}
		if share(c.total, th.life) >= contendMinShare && p50 <= contendMaxP50 && rate >= contendMinRate &&
			share(busy, th.life) >= contendMinBusy {
			byPID[th.pid] = append(byPID[th.pid], c)
		}
	}
	pids := make([]int, 0, len(byPID))
	for pid := range byPID {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	var out []model.Finding
	for _, pid := range pids {
		cs := byPID[pid]
		if len(cs) < contendMinThreads {
			continue
		}
		out = append(out, s.contentionFinding(pid, cs))
	}
	return out
}

func (s *session) contentionFinding(pid int, cs []*contender) model.Finding {
	var (
		count     uint64
		total     time.Duration
		maxWait   time.Duration
		lives     time.Duration
		hist      model.Histogram
		top       *contender
		tids      []int
		addrTime  = map[uint64]time.Duration{}
		evFutexNs time.Duration
	)
	for _, c := range cs {
		count += c.count
		total += c.total
		maxWait = max(maxWait, c.max)
		lives += c.th.life
		hist.Merge(&c.hist)
		tids = append(tids, c.th.tid)
		if top == nil || c.total > top.total {
			top = c
		}
		for _, ev := range c.th.events {
			if ev.Syscall != "futex" {
				continue
			}
			switch syscalls.FutexOpOf(ev.Args[1]) {
			case syscalls.FutexOpWait, syscalls.FutexOpLockPI:
			default:
				continue // a condition variable's wait, or a wake
			}
			addrTime[ev.Args[0]] += ev.Duration
			evFutexNs += ev.Duration
		}
	}
	avg := share(total, lives)
	sev := model.SeverityMedium
	if avg >= contendHighShare {
		sev = model.SeverityHigh
	}
	f := model.Finding{
		Kind: model.KindLockContention, Severity: sev,
		PID: pid, TID: top.th.tid, Thread: top.th.name, Syscall: "futex",
		Count: count, Total: total, P50: time.Duration(hist.Quantile(0.5)), Max: maxWait,
		Share: share(total, s.wall),
	}
	f.Title = fmt.Sprintf("lock contention: %d threads of pid %d wait %s of their time in futex", len(cs), pid, pct(avg))
	f.Detail = fmt.Sprintf("%s each lost on average %s of their time in %d short futex waits (p50 %s, max %s, %s in all): they take turns on a lock",
		threadList(tids), pct(avg), count, model.FormatDuration(f.P50), model.FormatDuration(maxWait), model.FormatDuration(total))
	seen := fmt.Sprintf("seen: %d threads with frequent short futex waits", len(cs))
	if len(addrTime) > 0 {
		addrs := make([]uint64, 0, len(addrTime))
		for a := range addrTime {
			addrs = append(addrs, a)
		}
		slices.SortFunc(addrs, func(x, y uint64) int {
			if c := cmp.Compare(addrTime[y], addrTime[x]); c != 0 {
				return c
			}
			return cmp.Compare(x, y)
		})
		parts := make([]string, 0, len(addrs))
		for _, a := range addrs {
			parts = append(parts, fmt.Sprintf("0x%x (%s)", a, pct(share(addrTime[a], evFutexNs))))
		}
		f.Detail += "; slow waits by futex address: " + joinMax(parts, 3)
		f.Title += " 0x" + strconv.FormatUint(addrs[0], 16)
		seen += fmt.Sprintf(", most slow waits on futex 0x%x", addrs[0])
	}
	if s.isPython(pid) {
		f.Hint = seen + ". This is a Python process: futex waits shared by several threads are usually the GIL, " +
			"CPU-bound threads taking turns (every sys.getswitchinterval(), 5ms by default); move CPU-bound work to processes " +
			"or to C code that releases the GIL. If it is not the GIL, the stacks of the waits name the lock"
	} else {
		f.Hint = seen + ". Find the lock from the stacks of the waits; shorten its critical section, shard it, or use fewer threads"
	}
	return f
}
