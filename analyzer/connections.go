package analyzer

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// Connection churn: at least churnMinConnects connects to one peer at
// churnMinRate per second or more is a connection per request or task
// rather than a pool; from churnHighRate per second, or when connecting
// takes StallShare of the wall time, it is high.
const (
	churnMinConnects = 10
	churnMinRate     = 1.0
	churnHighRate    = 10.0
)

const enoent = 2

// conn is one peer while the inventory is built.
type conn struct {
	model.Connection
	inbound   bool
	tids      map[int]uint64 // connects (or sightings) per thread
	lifetimes []time.Duration
	stackLib  string
	stack     []string
}

// isInbound tells accepted clients apart in a finished inventory: they are
// listed per client address with port 0, since their ports are ephemeral.
func isInbound(c model.Connection) bool {
	return (c.Peer.Family == model.FamilyInet || c.Peer.Family == model.FamilyInet6) && c.Peer.Port == 0
}

func usable(a model.Addr) bool {
	switch a.Family {
	case model.FamilyInet, model.FamilyInet6:
		return a.IP.IsValid()
	case model.FamilyUnix:
		return a.Path != ""
	}
	return false
}

// connections builds the inventory of every peer seen.
func (s *session) connections() []*conn {
	t := s.t
	listening := map[int]map[uint16]bool{} // pid → local ports in LISTEN
	for _, so := range t.Sockets {
		if so.State == "LISTEN" && so.Local.Port != 0 {
			if listening[so.PID] == nil {
				listening[so.PID] = map[uint16]bool{}
			}
			listening[so.PID][so.Local.Port] = true
		}
	}
	accepted := map[model.Addr]bool{}
	for i := range t.Events {
		if ev := &t.Events[i]; ev.Kind == model.EvAccept && usable(ev.Peer) {
			accepted[ev.Peer] = true
		}
	}
	isServerSide := func(pid int, local, peer model.Addr) bool {
		return accepted[peer] || local.Port != 0 && listening[pid][local.Port]
	}

	byPeer := map[model.Addr]*conn{}
	get := func(peer, local model.Addr, inbound bool) *conn {
		svc := s.svc.of(peer)
		if inbound {
			// One entry per client host; the service is ours, from the
			// listening port.
			peer = model.Addr{Family: peer.Family, IP: peer.IP}
			svc = Service(local)
		}
		c := byPeer[peer]
		if c == nil {
			c = &conn{Connection: model.Connection{Peer: peer, Service: svc}, inbound: inbound, tids: map[int]uint64{}}
			byPeer[peer] = c
		}
		if c.Service == "" {
			c.Service = svc
		}
		return c
	}
	seen := func(c *conn, ev *model.Event) {
		c.tids[ev.TID] += 0 // records the thread without counting a connect
		if c.FirstSeen == 0 || ev.Time < c.FirstSeen {
			c.FirstSeen = ev.Time
		}
		c.LastSeen = max(c.LastSeen, ev.Time)
	}

	closes := s.closeIndex()
	for i := range t.Events {
		ev := &t.Events[i]
		if !usable(ev.Peer) {
			continue
		}
		switch ev.Kind {
		case model.EvConnect:
			if ev.Peer.Family == model.FamilyUnix && ev.Ret == -enoent {
				// No socket at that path: nothing was reached. glibc probes
				// nscd's socket like this on every name lookup.
				continue
			}
			c := get(ev.Peer, ev.Local, false)
			seen(c, ev)
			c.Connects++
			c.tids[ev.TID]++
			c.ConnectTime += ev.Duration
			if d, ok := closes.lifetime(ev); ok {
				c.lifetimes = append(c.lifetimes, d)
			}
			if c.stackLib == "" && len(ev.Stack) > 0 {
				c.stackLib = library(ev.Stack)
				for _, f := range ev.Stack {
					c.stack = append(c.stack, f.String())
				}
			}
		case model.EvAccept:
			c := get(ev.Peer, ev.Local, true)
			seen(c, ev)
			c.Accepts++
			c.tids[ev.TID]++
		case model.EvSendTo:
			c := get(ev.Peer, ev.Local, false)
			seen(c, ev)
			c.Sends++
			c.tids[ev.TID]++
		case model.EvSyscall:
			seen(get(ev.Peer, ev.Local, isServerSide(ev.PID, ev.Local, ev.Peer)), ev)
		}
	}
	for _, so := range t.Sockets {
		if so.State == "LISTEN" || !usable(so.Peer) {
			continue
		}
		c := get(so.Peer, so.Local, isServerSide(so.PID, so.Local, so.Peer))
		c.BeforeAttach = true
		if c.FirstSeen == 0 || t.StartNS < c.FirstSeen {
			c.FirstSeen = t.StartNS
		}
		c.LastSeen = max(c.LastSeen, t.StartNS)
	}

	m := newMatcher(s.cfg.Expect, s.cfg.Resolve)
	out := make([]*conn, 0, len(byPeer))
	for _, c := range byPeer {
		c.Expected = true
		if !c.inbound {
			if s.cfg.Expect != nil && !m.match(c.Peer) {
				c.Expected = false
			}
			if s.cfg.Baseline != nil && !s.cfg.Baseline.contains(c.Peer) {
				c.Expected = false
			}
		}
		for tid := range c.tids {
			c.TIDs = append(c.TIDs, tid)
		}
		slices.Sort(c.TIDs)
		c.MedianLifetime = median(c.lifetimes)
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y *conn) int {
		if x.inbound != y.inbound {
			if x.inbound {
				return 1
			}
			return -1
		}
		ax, ay := x.Connects+x.Accepts+x.Sends, y.Connects+y.Accepts+y.Sends
		if c := cmp.Compare(ay, ax); c != 0 {
			return c
		}
		return cmp.Compare(x.Peer.String(), y.Peer.String())
	})
	return out
}

// closeIndex finds when each fd of each process was closed: from close
// events of fds opened while tracing (live), and from close calls seen as
// syscalls (strace logs, recordings at threshold 0, slow closes).
type closeIndex map[[2]int][]uint64

func (s *session) closeIndex() closeIndex {
	idx := closeIndex{}
	for i := range s.t.Events {
		ev := &s.t.Events[i]
		switch {
		case ev.Kind == model.EvClose:
		case ev.Kind == model.EvSyscall && ev.Syscall == "close" && !ev.Failed():
		default:
			continue
		}
		fd := ev.FD
		if fd < 0 {
			fd = int(int32(ev.Args[0]))
		}
		k := [2]int{ev.PID, fd}
		idx[k] = append(idx[k], ev.Time)
	}
	for _, ts := range idx {
		slices.Sort(ts)
	}
	return idx
}

// lifetime is from a connect to the first close of its fd after it.
func (idx closeIndex) lifetime(ev *model.Event) (time.Duration, bool) {
	fd := ev.FD
	if fd < 0 {
		fd = int(int32(ev.Args[0]))
	}
	ts := idx[[2]int{ev.PID, fd}]
	i, _ := slices.BinarySearch(ts, ev.Time+1)
	if i >= len(ts) {
		return 0, false
	}
	return time.Duration(ts[i] - ev.Time), true
}

func (s *session) isChurn(c *conn) bool {
	return !c.inbound && c.Connects >= churnMinConnects && s.connectRate(c) >= churnMinRate
}

func (s *session) connectRate(c *conn) float64 {
	if s.wall <= 0 {
		return 0
	}
	return float64(c.Connects) / s.wall.Seconds()
}

// topThread is the thread that connected most (lowest TID on ties).
func (c *conn) topThread() int {
	best, n := 0, uint64(0)
	for _, tid := range c.TIDs {
		if k := c.tids[tid]; best == 0 || k > n {
			best, n = tid, k
		}
	}
	return best
}

func (s *session) connectionFindings(conns []*conn) []model.Finding {
	var out []model.Finding
	for _, c := range conns {
		if c.inbound {
			continue
		}
		churn := s.isChurn(c)
		tid := c.topThread()
		pid, name := 0, ""
		if th := s.byTID[tid]; th != nil {
			pid, name = th.pid, th.name
		}
		celery := s.celery[pid] || pid == 0 && len(s.celery) > 0
		base := model.Finding{
			PID: pid, TID: tid, Thread: name, Syscall: "connect",
			Count: c.Connects, Total: c.ConnectTime, Share: share(c.ConnectTime, s.wall),
			Peer: c.Peer.String(), Service: c.Service, Library: c.stackLib, Stack: c.stack,
			Hint: connectionHint(c, churn, celery),
		}
		if c.Connects == 0 {
			base.Syscall, base.Count = "", c.Sends
		}
		if !c.Expected {
			f := base
			f.Kind = model.KindUnexpectedConnection
			f.Severity = model.SeverityMedium
			if churn {
				f.Severity = model.SeverityHigh
			}
			f.Title = "unexpected connection to " + s.svc.label(c.Peer)
			f.Detail = s.unexpectedDetail(c)
			out = append(out, f)
		}
		if churn {
			f := base
			f.Kind = model.KindConnectionChurn
			f.Severity = model.SeverityMedium
			rate := s.connectRate(c)
			if rate >= churnHighRate || share(c.ConnectTime, s.wall) >= s.cfg.stallShare() {
				f.Severity = model.SeverityHigh
			}
			f.Title = fmt.Sprintf("connection churn to %s: %.1f connects/s", s.svc.label(c.Peer), rate)
			f.Detail = fmt.Sprintf("%s to %s in %s (%.1f/s) from %s; %s spent in connect()",
				plural(c.Connects, "connect"), s.svc.label(c.Peer), s.wall.Round(time.Millisecond), rate,
				threadList(c.TIDs), c.ConnectTime.Round(time.Microsecond))
			if len(c.lifetimes) > 0 {
				f.Detail += fmt.Sprintf("; each connection lived a median %s (%d closes seen)",
					c.MedianLifetime.Round(time.Microsecond), len(c.lifetimes))
			}
			out = append(out, f)
		}
	}
	return out
}

func (s *session) unexpectedDetail(c *conn) string {
	var what string
	switch {
	case c.Connects > 0:
		what = fmt.Sprintf("%s during the trace from %s", plural(c.Connects, "connect"), threadList(c.TIDs))
	case c.Sends > 0:
		what = fmt.Sprintf("%s during the trace from %s", plural(c.Sends, "datagram"), threadList(c.TIDs))
	case c.BeforeAttach:
		what = "a connection already open when tracing began"
	default:
		what = "traffic during the trace"
	}
	var why []string
	if s.cfg.Expect != nil {
		eps := make([]string, len(s.cfg.Expect))
		for i, e := range s.cfg.Expect {
			eps[i] = e.String()
		}
		why = append(why, "not in the expected peers ("+joinMax(eps, 5)+")")
	}
	if s.cfg.Baseline != nil && !s.cfg.Baseline.contains(c.Peer) {
		why = append(why, "not seen in the baseline run")
	}
	return s.svc.label(c.Peer) + ": " + what + "; " + joinMax(why, 2)
}

func threadList(tids []int) string {
	s := make([]string, len(tids))
	for i, t := range tids {
		s[i] = strconv.Itoa(t)
	}
	if len(tids) == 1 {
		return "thread " + s[0]
	}
	return "threads " + joinMax(s, 8)
}

func joinMax(items []string, n int) string {
	if len(items) > n {
		return fmt.Sprintf("%s and %d more", joinMax(items[:n], n), len(items)-n)
	}
	out := ""
	for i, it := range items {
		if i > 0 {
			out += ", "
		}
		out += it
	}
	return out
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
