package tracer

import (
	"cmp"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/procfs"
)

const (
	// queueSampleInterval is 5 samples a second: a queue that stays full
	// for a fifth of a second is seen, and each sample costs three
	// sock_diag dumps (IPv4, IPv6, unix listeners), whatever the number of
	// sockets or processes.
	queueSampleInterval = 200 * time.Millisecond
	// ownerRescan is how often the traced processes' fd tables are read
	// again to learn which listeners they hold: listeners come and go far
	// less often than their queues change.
	ownerRescan = time.Second
)

// queueSampler samples the accept queues of the traced processes'
// listening sockets in a goroutine of its own, from the start of the trace
// to its end, and reads the namespace's listen overflow counters at both
// ends. Sockets are matched to processes by the inodes in their fd tables.
// It queries the network namespace of the trace's target only; listeners
// of traced processes in another namespace are not seen.
type queueSampler struct {
	proc procfs.FS
	ns   *procfs.NetNS
	diag *procfs.DiagSocket

	mu   sync.Mutex
	pids map[int]bool // traced processes; the session adds forks

	stopOnce sync.Once
	stopc    chan struct{}
	done     chan struct{}

	// Owned by the sampling goroutine until done is closed.
	queues    map[uint64]*model.ListenQueue // by inode
	owners    map[uint64]int                // socket inode → lowest traced pid holding it
	lastScan  time.Time
	counters  model.ListenCounters
	overflow0 uint64
	drops0    uint64
}

// startQueueSampler starts sampling for pids in the network namespace of
// target. It returns nil, having logged why, when the namespace or
// sock_diag cannot be opened: the trace goes on without accept queues.
func startQueueSampler(proc procfs.FS, target int, pids []int) *queueSampler {
	ns, err := proc.OpenNetNS(target)
	if err != nil {
		slog.Debug("no accept queues", "pid", target, "error", err)
		return nil
	}
	q := &queueSampler{
		proc:   proc,
		ns:     ns,
		pids:   map[int]bool{},
		stopc:  make(chan struct{}),
		done:   make(chan struct{}),
		queues: map[uint64]*model.ListenQueue{},
	}
	for _, pid := range pids {
		q.pids[pid] = true
	}
	if o, d, err := ns.TCPListen(); err == nil {
		q.overflow0, q.drops0, q.counters.Known = o, d, true
	} else {
		slog.Debug("no listen overflow counters", "pid", target, "error", err)
	}
	if q.diag, err = ns.OpenDiag(); err != nil {
		slog.Debug("no accept queues", "pid", target, "error", err)
	}
	go q.run()
	return q
}

// add traces the listeners of a process that appeared while tracing.
func (q *queueSampler) add(pid int) {
	if q == nil {
		return
	}
	q.mu.Lock()
	q.pids[pid] = true
	q.mu.Unlock()
}

func (q *queueSampler) run() {
	defer close(q.done)
	if q.diag == nil {
		<-q.stopc
		return
	}
	defer q.diag.Close()
	tick := time.NewTicker(queueSampleInterval)
	defer tick.Stop()
	for {
		if err := q.sample(); err != nil {
			slog.Debug("accept queue sampling stopped", "error", err)
			<-q.stopc
			return
		}
		select {
		case <-q.stopc:
			return
		case <-tick.C:
		}
	}
}

// sample takes one reading of every listener the traced processes hold.
func (q *queueSampler) sample() error {
	if time.Since(q.lastScan) >= ownerRescan {
		q.scanOwners()
	}
	if len(q.owners) == 0 {
		return nil
	}
	all, err := q.diag.Listeners()
	if err != nil {
		return err
	}
	for _, s := range all {
		pid, ok := q.owners[s.Inode]
		if !ok {
			continue
		}
		lq := q.queues[s.Inode]
		if lq == nil {
			lq = &model.ListenQueue{PID: pid, Addr: s.Addr, Inode: s.Inode}
			q.queues[s.Inode] = lq
		}
		lq.Limit = s.Limit // listen(2) again may change it; the last one holds
		lq.Samples++
		if s.Full() {
			lq.Full++
		}
		lq.Max = max(lq.Max, s.Depth)
		lq.Sum += uint64(s.Depth)
	}
	return nil
}

// scanOwners learns which socket inodes the traced processes hold, and
// forgets the processes that are gone.
func (q *queueSampler) scanOwners() {
	q.lastScan = time.Now()
	q.mu.Lock()
	pids := make([]int, 0, len(q.pids))
	for pid := range q.pids {
		pids = append(pids, pid)
	}
	q.mu.Unlock()
	slices.Sort(pids)
	owners := map[uint64]int{}
	var gone []int
	for _, pid := range pids {
		inodes, err := q.proc.SocketInodes(pid)
		if err != nil {
			if !q.proc.Exists(pid) {
				gone = append(gone, pid)
			}
			continue
		}
		for _, ino := range inodes {
			if _, ok := owners[ino]; !ok {
				owners[ino] = pid // pids are sorted: the lowest holder, usually the parent
			}
		}
	}
	// A socket held before and not found now (its holders exited) keeps
	// its entry in queues; it is no longer sampled.
	q.owners = owners
	if len(gone) > 0 {
		q.mu.Lock()
		for _, pid := range gone {
			delete(q.pids, pid)
		}
		q.mu.Unlock()
	}
}

// stop ends sampling, reads the counters again and returns what was seen,
// ordered by process and address. It may be called more than once; only
// the first call returns the result.
func (q *queueSampler) stop() ([]model.ListenQueue, model.ListenCounters) {
	if q == nil {
		return nil, model.ListenCounters{}
	}
	var (
		out []model.ListenQueue
		c   model.ListenCounters
	)
	q.stopOnce.Do(func() {
		close(q.stopc)
		<-q.done
		defer q.ns.Close()
		if q.counters.Known {
			o, d, err := q.ns.TCPListen()
			if err == nil && o >= q.overflow0 && d >= q.drops0 {
				c = model.ListenCounters{Known: true, Overflows: o - q.overflow0, Drops: d - q.drops0}
			}
		}
		for _, lq := range q.queues {
			out = append(out, *lq)
		}
		slices.SortFunc(out, func(a, b model.ListenQueue) int {
			return cmp.Or(cmp.Compare(a.PID, b.PID), cmp.Compare(a.Addr.String(), b.Addr.String()), cmp.Compare(a.Inode, b.Inode))
		})
	})
	return out, c
}

// startQueues starts the accept queue sampler for the traced processes
// (the child, for snag run).
func (s *session) startQueues(pids []int) {
	target := s.trace.Target.PID
	if s.child != nil {
		pids = []int{s.child.pid}
	}
	s.enr.queues = startQueueSampler(s.cfg.Proc, target, pids)
}
