package analyzer

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// Worker saturation: when every thread of a pool that serves requests
// (event loops, sync workers, acceptors, pool workers) was busy, not waiting
// for work, for at least saturatedShare of its life, new requests queue;
// from saturatedHighShare (every worker, even the least busy) it is high.
// The finding says what the busy time went to, because adding workers only
// helps when they compute, not when they all wait on the same database.
const (
	saturatedShare     = 0.80
	saturatedHighShare = 0.90
)

// saturatedMinExplained: a worker's busy time must be at least this much
// observed CPU or blocking. A thread whose wait began before the attach and
// never returned looks busy only because its wait was never seen.
const saturatedMinExplained = 0.5

// peerSteady: a peer whose median call time in the second half of the
// trace is within this factor of the first half's did not slow down under
// the load: it is not the limit.
const peerSteady = 1.25

// pool is the serving threads of one kind of process: a prefork master's
// children with the same name form one pool, a standalone process another.
// Saturation is judged per pool, so a proxy's idle threads traced beside an
// app server do not hide the app server's saturated workers.
type pool struct {
	key       poolKey
	pids      map[int]bool
	threads   []*thread
	saturated bool
	busyShare float64
}

type poolKey struct {
	parent int // the traced parent of prefork children, else 0
	comm   string
}

func (p *pool) holds(pid int) bool { return p.pids[pid] }

func (p *pool) noun() string {
	if len(p.threads) == 1 {
		return "its worker"
	}
	return fmt.Sprintf("all %d workers", len(p.threads))
}

// indexPools groups the serving threads.
func (s *session) indexPools() {
	parent := map[int]int{}
	for _, p := range s.t.Processes {
		parent[p.PID] = p.PPID
	}
	for i := range s.t.Events {
		if ev := &s.t.Events[i]; ev.Kind == model.EvFork && !ev.Thread {
			parent[ev.ChildPID] = ev.PID
		}
	}
	byKey := map[poolKey]*pool{}
	for _, th := range s.threads {
		switch th.role {
		case model.RoleEventLoop, model.RoleSyncWorker, model.RoleAcceptor, model.RoleWorker:
		default:
			continue
		}
		if share(th.onCPU+th.busyBlk, th.busy()) < saturatedMinExplained {
			continue
		}
		// Processes of one name whose parent is not traced are one pool
		// (workers attached by pid); children of a traced master of the
		// same name are another, apart from the master.
		k := poolKey{comm: s.procName[th.pid]}
		if pp := parent[th.pid]; pp != 0 && s.procs[pp] != nil && s.procName[pp] == k.comm {
			k.parent = pp
		}
		p := byKey[k]
		if p == nil {
			p = &pool{key: k, pids: map[int]bool{}}
			byKey[k] = p
			s.pools = append(s.pools, p)
		}
		p.pids[th.pid] = true
		p.threads = append(p.threads, th)
	}
	slices.SortFunc(s.pools, func(x, y *pool) int {
		if c := cmp.Compare(x.key.parent, y.key.parent); c != 0 {
			return c
		}
		return cmp.Compare(x.key.comm, y.key.comm)
	})
}

func (s *session) workerSaturation() []model.Finding {
	s.indexPools()
	s.saturated = map[int]float64{}
	var out []model.Finding
	for _, p := range s.pools {
		if f, ok := s.poolSaturation(p); ok {
			out = append(out, f)
		}
	}
	return out
}

func (s *session) poolSaturation(p *pool) (model.Finding, bool) {
	workers := p.threads
	var busy, life, cpu, blocked time.Duration
	least := 1.0
	var leastTh *thread
	cats := map[string]time.Duration{}
	var tids []int
	loops, syncs := 0, 0
	for _, th := range workers {
		b := share(th.busy(), th.life)
		if b < saturatedShare {
			return model.Finding{}, false
		}
		switch th.role {
		case model.RoleEventLoop:
			loops++
		case model.RoleSyncWorker:
			syncs++
		}
		if leastTh == nil || b < least {
			least, leastTh = b, th
		}
		busy += th.busy()
		life += th.life
		cpu += th.onCPU
		blocked += th.busyBlk
		tids = append(tids, th.tid)
		for _, it := range th.budget {
			if it.Category != catIdle && it.Category != catCPU {
				cats[it.Category] += it.Time
			}
		}
	}
	avg := share(busy, life)
	p.saturated, p.busyShare = true, avg
	for _, th := range workers {
		s.saturated[th.tid] = share(th.busy(), th.life)
	}
	names := make([]string, 0, len(cats))
	for c := range cats {
		names = append(names, c)
	}
	slices.SortFunc(names, func(x, y string) int {
		if c := cmp.Compare(cats[y], cats[x]); c != 0 {
			return c
		}
		return cmp.Compare(x, y)
	})
	var parts []string
	for _, c := range names {
		if c != catUnaccounted {
			parts = append(parts, fmt.Sprintf("%s %s", c, pct(share(cats[c], busy))))
		}
	}
	sev := model.SeverityMedium
	if least >= saturatedHighShare {
		sev = model.SeverityHigh
	}
	noun := "worker"
	if len(workers) > 1 {
		noun = fmt.Sprintf("all %d workers", len(workers))
	}
	f := model.Finding{
		Kind: model.KindWorkerSaturation, Severity: sev,
		Title: fmt.Sprintf("%s busy %s of the time: requests queue", capitalize(noun), pct(avg)),
		PID:   leastTh.pid, TID: leastTh.tid, Thread: leastTh.name,
		Count: uint64(len(workers)), Total: busy, Share: avg,
	}
	if rt := s.runtimeOf(leastTh.pid); !rt.IsZero() {
		f.Runtime = rt.String()
	}
	blockedShare, cpuShare := share(blocked, busy), share(cpu, busy)
	verb := "were"
	if len(workers) == 1 {
		verb = "was"
	}
	f.Detail = fmt.Sprintf("%s (%s) %s busy, not waiting for work, %s of the time on average (least busy %s). Of the busy time %s was blocked",
		noun, threadList(tids), verb, pct(avg), pct(least), pct(blockedShare))
	if len(parts) > 0 {
		f.Detail += " (" + joinMax(parts, 4) + ")"
	}
	f.Detail += fmt.Sprintf(" and %s on CPU", pct(cpuShare))
	capacity := s.capacity(p, busy)
	if capacity != "" {
		f.Detail += "; " + capacity
	}
	var top string
	if len(names) > 0 {
		top = names[0]
	}
	if strings.HasPrefix(top, "peer ") {
		f.Peer = strings.TrimPrefix(top, "peer ")
	}
	seen := "seen: busy " + pct(avg) + ", blocked " + pct(blockedShare) + " of that, on CPU " + pct(cpuShare)
	switch {
	case blockedShare >= 0.5 && top != "" && loops == len(workers):
		f.Hint = seen + ". The loop mostly waits on " + top + " outside its own wait: nothing else runs meanwhile. " +
			"Make those calls non-blocking for the loop, or move them to " + offload(s.runtimeOf(leastTh.pid))
	case blockedShare >= 0.5 && top != "" && s.peerSteady(p, top):
		f.Hint = seen + ". The workers mostly wait on " + top + ", but its calls took as long at the end of the trace as at the start: " +
			"it is not the limit, the number of workers is. More workers (or an async worker, so a wait does not hold one) raise the ceiling"
	case blockedShare >= 0.5 && top != "":
		f.Hint = seen + ". The workers mostly wait on " + top + " rather than compute: more workers add load there. " +
			"Make those calls fewer or faster (pooling, caching, indexes), or serve with an async/greenlet worker so a wait does not hold a worker"
	case cpuShare >= 0.5 && loops == len(workers):
		f.Hint = seen + ". The loop is CPU-bound: it runs on one core however many the host has; profile where the CPU goes, " +
			"or run more processes (one loop per core)"
	case cpuShare >= 0.5:
		f.Hint = seen + ". The workers are CPU-bound: add workers up to the core count, or profile where the CPU goes"
	default:
		f.Hint = seen + ". Time is split between CPU and waits: look at the thread budgets for the largest slice"
	}
	_ = syncs
	return f, true
}

// capacity applies Little's law to a pool that accepts its own
// connections: workers ÷ mean busy time per request is the most it can
// serve, next to the rate it accepted.
func (s *session) capacity(p *pool, busy time.Duration) string {
	var accepts uint64
	for i := range s.t.Events {
		if ev := &s.t.Events[i]; ev.Kind == model.EvAccept && p.pids[ev.PID] {
			accepts++
		}
	}
	if accepts == 0 || s.wall <= 0 {
		return ""
	}
	per := busy / time.Duration(accepts)
	if per <= 0 {
		return ""
	}
	ceiling := float64(len(p.threads)) / per.Seconds()
	return fmt.Sprintf("capacity by Little's law: %d workers × 1 request per %s ≈ %.0f requests/s, against %.1f accepted/s",
		len(p.threads), model.FormatDuration(per), ceiling, float64(accepts)/s.wall.Seconds())
}

// peerSteady reports whether the pool's calls to the peer behind budget
// category cat took as long in the second half of the trace as in the first.
func (s *session) peerSteady(p *pool, cat string) bool {
	mid := s.t.StartNS + uint64(s.wall/2)
	var first, second []time.Duration
	for _, th := range p.threads {
		for _, ev := range th.events {
			if ev.Peer.IsZero() || "peer "+s.svc.label(ev.Peer) != cat {
				continue
			}
			if ev.Time < mid {
				first = append(first, ev.Duration)
			} else {
				second = append(second, ev.Duration)
			}
		}
	}
	if len(first) < 5 || len(second) < 5 {
		return false
	}
	a, b := median(first), median(second)
	return a > 0 && float64(b) <= float64(a)*peerSteady
}

// oneCause folds a saturation into the loop stalls that explain it: when
// every saturated thread of a pool is a loop with a stall, the stall is the
// cause and the saturation its consequence, said inside the stall, not as
// a second finding.
func (s *session) oneCause(stalls, sat []model.Finding) ([]model.Finding, []model.Finding) {
	top := map[int]int{} // tid -> index of its largest medium-or-high stall
	for i, f := range stalls {
		if f.Severity < model.SeverityMedium {
			continue
		}
		if j, ok := top[f.TID]; !ok || f.Total > stalls[j].Total {
			top[f.TID] = i
		}
	}
	var keep []model.Finding
	for _, f := range sat {
		p := s.poolOf(f.TID)
		explained := p != nil
		if p != nil {
			for _, th := range p.threads {
				if _, ok := top[th.tid]; !ok {
					explained = false
				}
			}
		}
		if !explained {
			keep = append(keep, f)
			continue
		}
		for _, th := range p.threads {
			st := &stalls[top[th.tid]]
			st.Detail += fmt.Sprintf("; this is also why the loop was busy %s of the time, not waiting for work: requests queue behind it", pct(s.saturated[th.tid]))
		}
	}
	return stalls, keep
}

func (s *session) poolOf(tid int) *pool {
	for _, p := range s.pools {
		for _, th := range p.threads {
			if th.tid == tid {
				return p
			}
		}
	}
	return nil
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
