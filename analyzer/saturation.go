package analyzer

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// Worker saturation: when every thread that serves requests (event loops,
// acceptors, pool workers) was busy, not waiting for work, for at least
// saturatedShare of its life, new requests queue; from saturatedHighShare
// (every worker, even the least busy) it is high. The finding says what
// the busy time went to, because adding workers only helps when they
// compute, not when they all wait on the same database.
const (
	saturatedShare     = 0.80
	saturatedHighShare = 0.90
)

// saturatedMinExplained: a worker's busy time must be at least this much
// observed CPU or blocking. A thread whose wait began before the attach and
// never returned looks busy only because its wait was never seen.
const saturatedMinExplained = 0.5

func (s *session) workerSaturation() []model.Finding {
	var workers []*thread
	for _, th := range s.threads {
		switch th.role {
		case model.RoleEventLoop, model.RoleSyncWorker, model.RoleAcceptor, model.RoleWorker:
			if share(th.onCPU+th.busyBlk, th.busy()) >= saturatedMinExplained {
				workers = append(workers, th)
			}
		}
	}
	if len(workers) == 0 {
		return nil
	}
	var busy, life, cpu, blocked time.Duration
	s.saturated = map[int]float64{}
	least := 1.0
	var leastTh *thread
	cats := map[string]time.Duration{}
	var tids []int
	loops := 0
	for _, th := range workers {
		if th.role == model.RoleEventLoop {
			loops++
		}
		b := share(th.busy(), th.life)
		if b < saturatedShare {
			s.saturated = nil
			return nil
		}
		s.saturated[th.tid] = b
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
	avg := share(busy, life)
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
	if len(names) > 0 && strings.HasPrefix(names[0], "peer ") {
		f.Peer = strings.TrimPrefix(names[0], "peer ")
	}
	seen := "seen: busy " + pct(avg) + ", blocked " + pct(blockedShare) + " of that, on CPU " + pct(cpuShare)
	switch {
	case blockedShare >= 0.5 && len(names) > 0 && loops == len(workers):
		f.Hint = seen + ". The loop mostly waits on " + names[0] + " outside its own wait: nothing else runs meanwhile. " +
			"Make those calls non-blocking for the loop, or move them to " + offload(s.runtimeOf(leastTh.pid))
	case blockedShare >= 0.5 && len(names) > 0:
		f.Hint = seen + ". The workers mostly wait on " + names[0] + " rather than compute: more workers add load there. " +
			"Make those calls fewer or faster (pooling, caching, indexes), or serve with an async/greenlet worker so a wait does not hold a worker"
	case cpuShare >= 0.5 && loops == len(workers):
		f.Hint = seen + ". The loop is CPU-bound: it runs on one core however many the host has; profile where the CPU goes, " +
			"or run more processes (one loop per core)"
	case cpuShare >= 0.5:
		f.Hint = seen + ". The workers are CPU-bound: add workers up to the core count, or profile where the CPU goes"
	default:
		f.Hint = seen + ". Time is split between CPU and waits: look at the thread budgets for the largest slice"
	}
	return []model.Finding{f}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// oneCause folds a saturation into the loop stalls that explain it: when
// every saturated thread is a loop with a stall, the stall is the cause and
// the saturation its consequence, said inside the stall, not as a second
// finding.
func (s *session) oneCause(stalls, sat []model.Finding) ([]model.Finding, []model.Finding) {
	if len(sat) == 0 || len(s.saturated) == 0 {
		return stalls, sat
	}
	top := map[int]int{} // tid -> index of its largest medium-or-high stall
	for i, f := range stalls {
		if f.Severity < model.SeverityMedium {
			continue
		}
		if j, ok := top[f.TID]; !ok || f.Total > stalls[j].Total {
			top[f.TID] = i
		}
	}
	for tid := range s.saturated {
		if _, ok := top[tid]; !ok {
			return stalls, sat
		}
	}
	for tid, b := range s.saturated {
		f := &stalls[top[tid]]
		f.Detail += fmt.Sprintf("; this is also why the loop was busy %s of the time, not waiting for work: requests queue behind it", pct(b))
	}
	return stalls, nil
}
