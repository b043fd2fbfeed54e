package recording

import (
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// mix returns n events shaped like a recording of a gevent web worker: a
// hub thread polling, reading and writing sockets to a few peers, worker
// threads on futexes and files, durations spread over five decades.
func mix(n int) []model.Event {
	rng := rand.New(rand.NewPCG(42, 7))
	peers := []model.Addr{
		{Family: model.FamilyInet, IP: netip.MustParseAddr("10.0.0.5"), Port: 3306},
		{Family: model.FamilyInet, IP: netip.MustParseAddr("10.0.0.6"), Port: 11211},
		{Family: model.FamilyInet, IP: netip.MustParseAddr("10.0.0.7"), Port: 51712},
	}
	type call struct {
		nr      int
		name    string
		fd      int
		kind    model.FDKind
		peer    int // index into peers, -1 for none
		buf     uint64
		size    uint64
		tid     int
		retSize bool
	}
	calls := []call{
		{nr: 232, name: "epoll_wait", fd: 4, kind: model.FDOther, peer: -1, buf: 0x7ffd_1234_5000, size: 64, tid: 100},
		{nr: 45, name: "recvfrom", fd: 7, kind: model.FDSocket, peer: 0, buf: 0x5555_7777_0000, size: 16384, tid: 100, retSize: true},
		{nr: 44, name: "sendto", fd: 7, kind: model.FDSocket, peer: 0, buf: 0x5555_7777_8000, size: 120, tid: 100, retSize: true},
		{nr: 7, name: "poll", fd: 7, kind: model.FDSocket, peer: 0, buf: 0x7ffd_1234_6000, size: 1, tid: 100},
		{nr: 0, name: "read", fd: 9, kind: model.FDSocket, peer: 1, buf: 0x5555_7777_0000, size: 8192, tid: 100, retSize: true},
		{nr: 1, name: "write", fd: 10, kind: model.FDSocket, peer: 2, buf: 0x5555_9999_0000, size: 512, tid: 100, retSize: true},
		{nr: 202, name: "futex", fd: -1, peer: -1, buf: 0x5555_aaaa_0010, size: 128, tid: 101},
		{nr: 0, name: "read", fd: 3, kind: model.FDFile, peer: -1, buf: 0x5555_bbbb_0000, size: 4096, tid: 102, retSize: true},
	}
	evs := make([]model.Event, n)
	now := uint64(10_000_000_000)
	for i := range evs {
		c := calls[rng.IntN(len(calls))]
		d := time.Duration(200 + rng.ExpFloat64()*float64(time.Microsecond)*float64(1+rng.IntN(100)))
		now += uint64(d) + uint64(rng.IntN(2000))
		e := model.Event{
			Kind: model.EvSyscall, Time: now, Duration: d, PID: 100, TID: c.tid, Nr: c.nr, Syscall: c.name,
			Args: [6]uint64{uint64(c.fd), c.buf, c.size}, FD: c.fd, FDKnown: c.fd >= 0, FDKind: c.kind, NonBlock: c.kind == model.FDSocket,
		}
		if c.fd < 0 {
			e.Args = [6]uint64{c.buf, 128, 0, 0, c.buf + 8, 0}
		}
		switch {
		case c.retSize:
			e.Ret = int64(rng.IntN(int(c.size)) + 1)
			if rng.IntN(10) == 0 {
				e.Ret = -11 // EAGAIN
			}
		case c.nr == 232:
			e.Ret = int64(rng.IntN(4))
		}
		if c.nr == 7 {
			e.PollNFDs, e.PollFD, e.PollTimeout = 1, c.fd, -1
		}
		if c.peer >= 0 {
			e.Peer = peers[c.peer]
		}
		evs[i] = e
	}
	return evs
}
