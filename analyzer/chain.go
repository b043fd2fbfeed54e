package analyzer

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// The 502 chain: requests arrive faster than the workers finish them, the
// listen queue fills, and a proxy's connect to the app server fails at
// once. Each link is measured on its own; the findings name each other.
const (
	// overflowFullShare: a queue at its limit in this share of the samples
	// turned connections away (or would have, for a client that waits).
	overflowFullShare = 0.05
	// overflowHighShare: full this often, it is the bottleneck.
	overflowHighShare = 0.25
	// refusedHighShare: this share of a proxy's connects failing is a
	// visible error rate.
	refusedHighShare = 0.05
)

// Errors a connect returns at once when nobody takes the connection.
const (
	eagain       = 11  // a unix socket's accept queue is full
	econnrefused = 111 // nothing listens, or a TCP queue is full and the SYN was reset
	etimedout    = 110 // the SYN or the accept queue never answered
)

var refusedErrno = map[int64]string{-eagain: "EAGAIN", -econnrefused: "ECONNREFUSED", -etimedout: "ETIMEDOUT"}

// acceptQueueOverflows finds listeners whose queue sat at its limit.
func (s *session) acceptQueueOverflows() []model.Finding {
	var out []model.Finding
	for _, q := range s.t.ListenQueues {
		if q.Samples == 0 || q.Limit == 0 {
			continue
		}
		full := float64(q.Full) / float64(q.Samples)
		if full < overflowFullShare {
			continue
		}
		sev := model.SeverityMedium
		if full >= overflowHighShare {
			sev = model.SeverityHigh
		}
		mean := float64(q.Sum) / float64(q.Samples)
		f := model.Finding{
			Kind: model.KindAcceptQueueOverflow, Severity: sev,
			Title: fmt.Sprintf("accept queue of %s full in %s of samples (limit %d)", q.Addr, pct(full), q.Limit),
			PID:   q.PID, Thread: s.procName[q.PID], Peer: q.Addr.String(), Service: Service(q.Addr),
			Count: uint64(q.Full), Share: full,
		}
		f.Detail = fmt.Sprintf("the listen queue of %s held its limit of %d connections in %d of %d samples (mean depth %.1f, max %d): "+
			"connections arriving then were refused (a unix socket: EAGAIN at once) or dropped (TCP: the SYN is retried after a second)",
			q.Addr, q.Limit, q.Full, q.Samples, mean, q.Max)
		if s.t.TCPListen.Known && s.t.TCPListen.Overflows > 0 && q.Addr.Family != model.FamilyUnix {
			f.Detail += fmt.Sprintf("; the network namespace counted %d listen overflows and %d drops during the trace",
				s.t.TCPListen.Overflows, s.t.TCPListen.Drops)
		}
		if pool := s.poolBehind(q.PID); pool != "" {
			f.Detail += "; " + pool
		}
		f.Hint = fmt.Sprintf("seen: %s full in %s of samples, limit %d. The workers behind it take connections more slowly than they arrive. "+
			"More workers help if they mostly compute; if they mostly wait on a peer, that peer (or an async worker) is the fix. "+
			"A longer queue (the server's listen/backlog setting, capped by net.core.somaxconn) only buys time for bursts",
			q.Addr, pct(full), q.Limit)
		out = append(out, f)
	}
	// A TCP overflow the samples missed is still an overflow, but the
	// counters are the whole network namespace's: said only when the
	// traced processes listen at all, and only as context.
	if len(out) == 0 && len(s.t.ListenQueues) > 0 && s.t.TCPListen.Known && s.t.TCPListen.Overflows > 0 {
		out = append(out, model.Finding{
			Kind: model.KindAcceptQueueOverflow, Severity: model.SeverityLow,
			Title: fmt.Sprintf("%d TCP listen overflows during the trace", s.t.TCPListen.Overflows),
			Count: s.t.TCPListen.Overflows,
			Detail: fmt.Sprintf("the target's network namespace counted %d listen overflows and %d drops (TcpExt ListenOverflows, ListenDrops); "+
				"no sampled queue of the traced processes was at its limit, so the overflowing listener may be another process's", s.t.TCPListen.Overflows, s.t.TCPListen.Drops),
			Hint: "seen: ListenOverflows grew. Find the listener with `ss -ltn` (Recv-Q at Send-Q); more workers, or a faster peer behind them",
		})
	}
	return out
}

// poolBehind describes the workers of the process holding a listener, when
// they were saturated.
func (s *session) poolBehind(pid int) string {
	for _, p := range s.pools {
		if !p.holds(pid) && p.key.parent != pid || !p.saturated {
			continue
		}
		return fmt.Sprintf("behind it %s were busy %s of the time (worker-saturation)", p.noun(), pct(p.busyShare))
	}
	return ""
}

type refusal struct {
	peer   model.Addr
	count  uint64
	errnos map[string]uint64
	tids   map[int]bool
	pid    int
}

// upstreamRefusals groups connects that failed at once per peer.
func (s *session) upstreamRefusals() []model.Finding {
	all := map[model.Addr]uint64{}
	byPeer := map[model.Addr]*refusal{}
	for i := range s.t.Events {
		ev := &s.t.Events[i]
		if ev.Kind != model.EvConnect || ev.Peer.IsZero() {
			continue
		}
		all[ev.Peer]++
		name, ok := refusedErrno[ev.Ret]
		if !ok {
			continue
		}
		r := byPeer[ev.Peer]
		if r == nil {
			r = &refusal{peer: ev.Peer, errnos: map[string]uint64{}, tids: map[int]bool{}, pid: ev.PID}
			byPeer[ev.Peer] = r
		}
		r.count++
		r.errnos[name]++
		r.tids[ev.TID] = true
	}
	peers := make([]model.Addr, 0, len(byPeer))
	for p := range byPeer {
		peers = append(peers, p)
	}
	slices.SortFunc(peers, func(x, y model.Addr) int { return cmp.Compare(x.String(), y.String()) })
	var out []model.Finding
	for _, p := range peers {
		r := byPeer[p]
		sh := float64(r.count) / float64(all[p])
		rate := float64(r.count) / max(s.wall.Seconds(), 1e-9)
		sev := model.SeverityMedium
		if sh >= refusedHighShare {
			sev = model.SeverityHigh
		}
		var errs []string
		for name, n := range r.errnos {
			errs = append(errs, fmt.Sprintf("%s %d", name, n))
		}
		slices.Sort(errs)
		proxy := s.procName[r.pid]
		f := model.Finding{
			Kind: model.KindUpstreamRefused, Severity: sev,
			Title: fmt.Sprintf("%d connects to %s refused (%s of %d, %.1f/s)", r.count, s.svc.label(p), pct(sh), all[p], rate),
			PID:   r.pid, Thread: proxy, Syscall: "connect", Count: r.count, Share: sh,
			Peer: p.String(), Service: s.svc.of(p),
		}
		for tid := range r.tids {
			f.TID = max(f.TID, tid)
		}
		f.Detail = fmt.Sprintf("%s's connects to %s failed at once %d times (%s) out of %d: nobody took the connection",
			proxy, s.svc.label(p), r.count, strings.Join(errs, ", "), all[p])
		if what := proxyError(proxy); what != "" {
			f.Detail += "; " + what
		}
		if q := s.listenQueueOf(p); q != nil {
			f.Detail += fmt.Sprintf("; the listener %s behind it was full in %s of samples (accept-queue-overflow)", q.Addr, pct(float64(q.Full)/float64(q.Samples)))
			if pool := s.poolBehind(q.PID); pool != "" {
				f.Detail += ", and " + pool
			}
		}
		f.Hint = fmt.Sprintf("seen: %s. ", strings.Join(errs, ", ")) + refusedHint(r.errnos)
		out = append(out, f)
	}
	return out
}

func refusedHint(errnos map[string]uint64) string {
	switch {
	case errnos["EAGAIN"] > 0:
		return "EAGAIN on a unix socket means its accept queue was full: the app server's workers are all busy; see what they wait on, then add workers or raise the listen backlog for bursts"
	case errnos["ECONNREFUSED"] > 0:
		return "ECONNREFUSED: nothing listened there at that moment (the server restarting, workers dying) or a full TCP queue with tcp_abort_on_overflow"
	}
	return "ETIMEDOUT: the server accepted too slowly or the network dropped the handshake"
}

// proxyError says what a known proxy turns a refused upstream into.
func proxyError(comm string) string {
	switch {
	case strings.HasPrefix(comm, "nginx"):
		return "nginx answers each with 502 Bad Gateway (\"connect() to ... failed (11: Resource temporarily unavailable)\" in its error log)"
	case strings.HasPrefix(comm, "haproxy"):
		return "HAProxy retries, then answers 503 Service Unavailable"
	case strings.HasPrefix(comm, "envoy"):
		return "Envoy answers 503 (upstream connect error)"
	}
	return ""
}

// listenQueueOf is the sampled queue of the listener peer connects to.
func (s *session) listenQueueOf(peer model.Addr) *model.ListenQueue {
	for i := range s.t.ListenQueues {
		q := &s.t.ListenQueues[i]
		if q.Samples == 0 {
			continue
		}
		if q.Addr == peer || q.Addr.Port == peer.Port && q.Addr.Family == peer.Family && q.Addr.Port != 0 && q.Addr.IP.IsUnspecified() {
			return q
		}
	}
	return nil
}

// deaths finds worker processes killed by a signal.
func (s *session) workerDeaths() []model.Finding {
	type death struct {
		pid, ppid int
		sig       int
		at        uint64
		sender    string
	}
	ppid := map[int]int{}
	comm := map[int]string{}
	for _, p := range s.t.Processes {
		ppid[p.PID] = p.PPID
		comm[p.PID] = p.Comm
	}
	senders := map[int]string{}
	var deaths []death
	forksAfter := map[int][]uint64{} // parent -> times it forked a process
	for _, ev := range s.sortedEvents() {
		switch ev.Kind {
		case model.EvFork:
			if !ev.Thread {
				forksAfter[ev.PID] = append(forksAfter[ev.PID], ev.Time)
				ppid[ev.ChildPID] = ev.PID
			}
		case model.EvSignal:
			who := "the kernel"
			switch {
			case ev.SenderComm == "oom-killer":
				who = "the OOM killer"
			case ev.Sender != 0:
				who = fmt.Sprintf("%s (pid %d)", ev.SenderComm, ev.Sender)
			}
			senders[ev.PID] = who
		case model.EvExit:
			if ev.Thread || ev.Signal == 0 || !fatalSignal(ev.Signal) || ev.PID != ev.TID {
				continue
			}
			deaths = append(deaths, death{pid: ev.PID, ppid: ppid[ev.PID], sig: ev.Signal, at: ev.Time})
		}
	}
	if len(deaths) == 0 {
		return nil
	}
	byParent := map[int][]death{}
	for _, d := range deaths {
		d.sender = senders[d.pid]
		byParent[d.ppid] = append(byParent[d.ppid], d)
	}
	parents := make([]int, 0, len(byParent))
	for p := range byParent {
		parents = append(parents, p)
	}
	slices.Sort(parents)
	end := s.t.StartNS + uint64(s.wall)
	var out []model.Finding
	for _, parent := range parents {
		ds := byParent[parent]
		var parts []string
		var longest time.Duration
		respawned := 0
		for _, d := range ds {
			gap := time.Duration(end - d.at)
			for _, at := range forksAfter[parent] {
				if at >= d.at {
					gap = time.Duration(at - d.at)
					respawned++
					break
				}
			}
			longest = max(longest, gap)
			p := fmt.Sprintf("pid %d by %s", d.pid, signalName(d.sig))
			if d.sender != "" {
				p += " from " + d.sender
			}
			parts = append(parts, p)
		}
		kind, sev := model.KindWorkerKilled, model.SeverityMedium
		if len(ds) >= 3 {
			kind, sev = model.KindWorkerChurn, model.SeverityHigh
		}
		name := comm[ds[0].pid]
		if name == "" {
			name = s.procName[ds[0].pid]
		}
		f := model.Finding{
			Kind: kind, Severity: sev, PID: ds[0].pid, Thread: name, Count: uint64(len(ds)),
			Title: fmt.Sprintf("%s killed by %s: %d of the workers of pid %d", plural(uint64(len(ds)), "worker"), signalName(ds[0].sig), len(ds), parent),
			Total: longest,
		}
		f.Detail = fmt.Sprintf("%s; %d respawned by pid %d; the longest gap before a replacement started was %s",
			joinMax(parts, 4), respawned, parent, model.FormatDuration(longest))
		if n := s.acceptsBetween(parent, ds[0].pid, ds[0].at, ds[0].at+uint64(longest)); n >= 0 {
			f.Detail += fmt.Sprintf(", during which %s", plural(uint64(n), "connection was accepted by the others"))
		}
		f.Hint = "seen: " + signalName(ds[0].sig) + ". A worker killed by SIGKILL loses the requests it was serving. " +
			"A master's harakiri or reload-on-memory limit, or the OOM killer (dmesg), sends it; a graceful max-requests exit is a normal exit and not counted here"
		out = append(out, f)
	}
	return out
}

// acceptsBetween counts the accepts made in [from, to) by the dead
// worker's siblings (the parent's other children): the connections served
// while the pool was short. -1 when the pool made no accept at all.
func (s *session) acceptsBetween(parent, dead int, from, to uint64) int {
	siblings := map[int]bool{}
	for _, p := range s.t.Processes {
		if p.PPID == parent && p.PID != dead {
			siblings[p.PID] = true
		}
	}
	for i := range s.t.Events {
		if ev := &s.t.Events[i]; ev.Kind == model.EvFork && !ev.Thread && ev.PID == parent && ev.ChildPID != dead {
			siblings[ev.ChildPID] = true
		}
	}
	n, any := 0, false
	for i := range s.t.Events {
		ev := &s.t.Events[i]
		if ev.Kind != model.EvAccept || !siblings[ev.PID] {
			continue
		}
		any = true
		if ev.Time >= from && ev.Time < to {
			n++
		}
	}
	if !any {
		return -1
	}
	return n
}

func fatalSignal(sig int) bool {
	switch sig {
	// KILL and the crashes; TERM, INT and QUIT are how masters stop workers
	// on a reload, which is no death.
	case 9, 6, 7, 11, 4, 8, 31: // KILL ABRT BUS SEGV ILL FPE SYS
		return true
	}
	return false
}

var signalNames = map[int]string{1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE",
	9: "SIGKILL", 11: "SIGSEGV", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 31: "SIGSYS"}

func signalName(sig int) string {
	if n, ok := signalNames[sig]; ok {
		return n
	}
	return fmt.Sprintf("signal %d", sig)
}
