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
// rather than a pool. Its severity follows what a connection costs, not the
// count alone: a unix socket or a loopback peer with a cheap handshake
// (nginx's uwsgi_pass opens one per request, in microseconds) is low; a
// remote peer or a costly handshake (a database's authentication and
// backend start, TLS) is medium, and high from churnHighRate per second or
// when connecting takes StallShare of the wall time.
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
	libSeen   map[string]int // connects and slow calls per library on their stacks
	owners    map[int]bool   // processes holding a socket to the peer since before the attach
}

// noteStack counts the library on one call's stack; the connection's
// library is the one seen most, its stack that of the first such call.
func (c *conn) noteStack(st []model.Frame) {
	lib := library(st)
	if lib == "" {
		return
	}
	if c.libSeen == nil {
		c.libSeen = map[string]int{}
	}
	c.libSeen[lib]++
	if c.stackLib == "" || c.libSeen[lib] > c.libSeen[c.stackLib] {
		if c.stackLib != lib {
			c.stack = c.stack[:0]
			for _, f := range st {
				c.stack = append(c.stack, f.String())
			}
		}
		c.stackLib = lib
	}
}

// owner is the lowest pid holding a socket to the peer since before the
// attach, 0 when none.
func (c *conn) owner() int {
	best := 0
	for pid := range c.owners {
		if best == 0 || pid < best {
			best = pid
		}
	}
	return best
}

// connectedDuringTrace maps (pid, fd) to the peer of a connect the trace
// saw on that fd before any other event on it.
func (s *session) connectedDuringTrace() map[[2]int]model.Addr {
	out := map[[2]int]model.Addr{}
	used := map[[2]int]bool{}
	for _, ev := range s.sortedEvents() {
		if ev.FD < 0 {
			continue
		}
		k := [2]int{ev.PID, ev.FD}
		if ev.Kind == model.EvConnect && !used[k] {
			out[k] = ev.Peer
		}
		used[k] = true
	}
	return out
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
			c.noteStack(ev.Stack)
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
			c := get(ev.Peer, ev.Local, isServerSide(ev.PID, ev.Local, ev.Peer))
			seen(c, ev)
			c.noteStack(ev.Stack)
		}
	}
	madeDuring := s.connectedDuringTrace()
	for _, so := range t.Sockets {
		if so.State == "LISTEN" || !usable(so.Peer) {
			continue
		}
		c := get(so.Peer, so.Local, isServerSide(so.PID, so.Local, so.Peer))
		if madeDuring[[2]int{so.PID, so.FD}] == so.Peer {
			// The socket list is read just after tracing starts: this one
			// is a connect the trace saw.
			continue
		}
		c.BeforeAttach = true
		if c.owners == nil {
			c.owners = map[int]bool{}
		}
		c.owners[so.PID] = true
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

// closeIndex finds when each fd of each process was closed, from close
// events (present when the tracer's threshold is 0, as in recordings).
type closeIndex map[[2]int][]uint64

// isClose reports whether ev closed an fd: a close event, or a close call
// slow enough to be an event (strace logs hold every one).
func isClose(ev *model.Event) bool {
	return ev.Kind == model.EvClose || ev.Kind == model.EvSyscall && ev.Syscall == "close" && !ev.Failed()
}

func (s *session) closeIndex() closeIndex {
	idx := closeIndex{}
	for i := range s.t.Events {
		ev := &s.t.Events[i]
		if !isClose(ev) {
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
		} else if owner := c.owner(); owner != 0 {
			// Open since before the attach and quiet since: the process
			// holding the socket is who it belongs to.
			pid, name = owner, s.procName[owner]
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
			if churn && s.churnSeverity(c) >= model.SeverityMedium {
				f.Severity = model.SeverityHigh // a costly connection per request to a peer nobody expected
			}
			f.Title = "unexpected connection to " + s.svc.label(c.Peer)
			f.Detail = s.unexpectedDetail(c)
			out = append(out, f)
		}
		if churn {
			f := base
			f.Kind = model.KindConnectionChurn
			rate := s.connectRate(c)
			f.Severity = s.churnSeverity(c)
			f.Title = fmt.Sprintf("connection churn to %s: %.1f connects/s", s.svc.label(c.Peer), rate)
			f.Detail = fmt.Sprintf("%s to %s in %s (%.1f/s) from %s; %s spent in connect()",
				plural(c.Connects, "connect"), s.svc.label(c.Peer), model.FormatDuration(s.wall), rate,
				threadList(c.TIDs), model.FormatDuration(c.ConnectTime))
			if len(c.lifetimes) > 0 {
				f.Detail += fmt.Sprintf("; each connection lived a median %s (%d closes seen)",
					model.FormatDuration(c.MedianLifetime), len(c.lifetimes))
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
		if pid := c.owner(); pid != 0 {
			what += fmt.Sprintf(", held by pid %d (%s)", pid, s.procName[pid])
		}
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

// churnSeverity rates a churning peer by what its connections cost.
func (s *session) churnSeverity(c *conn) model.Severity {
	switch {
	case share(c.ConnectTime, s.wall) >= s.cfg.stallShare():
		return model.SeverityHigh
	case !costlyConnect(c.Peer, c.Service):
		return model.SeverityLow
	case s.connectRate(c) >= churnHighRate:
		return model.SeverityHigh
	}
	return model.SeverityMedium
}

// costlyHandshakes are services whose connection setup costs the server
// real work: authentication, a backend process or thread, key exchange.
var costlyHandshakes = map[string]bool{
	"mysql": true, "postgresql": true, "mongodb": true, "https": true, "tls": true,
	"amqp": true, "amqps": true, "kafka": true, "ldap": true, "ldaps": true, "elasticsearch": true,
}

// costlyConnect reports whether a new connection to peer costs more than a
// few microseconds: any remote peer (a round trip at least), or a local one
// with a costly handshake.
func costlyConnect(peer model.Addr, service string) bool {
	switch peer.Family {
	case model.FamilyUnix:
		return costlyHandshakes[service]
	case model.FamilyInet, model.FamilyInet6:
		return !peer.IP.IsLoopback() || costlyHandshakes[service]
	}
	return true
}
