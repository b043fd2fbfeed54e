//go:build linux

package procfs

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/snagtrace/snag/internal/model"
)

// AcceptQueue is one listening socket's accept queue at one instant, as
// sock_diag reports it: for a listener, inet_diag's idiag_rqueue is the
// connections waiting for accept(2) and idiag_wqueue the backlog, and
// unix_diag's UNIX_DIAG_RQLEN carries the same pair.
type AcceptQueue struct {
	Inode uint64
	Addr  model.Addr
	Depth uint32 // connections waiting to be accepted
	Limit uint32 // the listen(2) backlog, capped by net.core.somaxconn
}

// Full reports whether the queue is at its limit. The kernel still queues
// one more (it refuses once the depth exceeds the backlog), so a full
// queue is one connection away from refusing, or already refusing.
func (q AcceptQueue) Full() bool { return q.Depth > 0 && q.Depth >= q.Limit }

// Constants of linux/inet_diag.h and linux/unix_diag.h that x/sys/unix
// does not carry.
const (
	inetDiagReqSz   = 56 // struct inet_diag_req_v2
	inetDiagMsgSz   = 72 // struct inet_diag_msg
	udiagShowRQLen  = 0x10
	unixDiagRQLen   = 4 // attribute: struct unix_diag_rqlen
	tcpListenState  = 10
	listenStateMask = 1 << tcpListenState
)

// DiagSocket is a NETLINK_SOCK_DIAG socket bound to one network namespace.
// A netlink socket answers for the namespace it was created in, whichever
// thread uses it later, so OpenDiag creates it from a thread that entered
// the target's namespace and leaves the namespace at once: the dumps that
// follow, several times a second, need no setns.
type DiagSocket struct {
	fd  int
	seq uint32
	buf []byte
}

// NetNS is a handle on a process's network namespace that outlives the
// process: it keeps /proc/PID/ns/net open.
type NetNS struct {
	f    *os.File
	same bool // snag's own namespace: no setns needed
}

// OpenNetNS opens the network namespace of pid.
func (fs FS) OpenNetNS(pid int) (*NetNS, error) {
	f, err := os.Open(fs.path(pid, "ns", "net"))
	if err != nil {
		return nil, fmt.Errorf("open network namespace of pid %d: %w", pid, err)
	}
	ns := &NetNS{f: f}
	var mine, theirs unix.Stat_t
	if unix.Stat("/proc/thread-self/ns/net", &mine) == nil && unix.Fstat(int(f.Fd()), &theirs) == nil {
		ns.same = mine.Ino == theirs.Ino && mine.Dev == theirs.Dev
	}
	return ns, nil
}

// Close releases the namespace.
func (ns *NetNS) Close() error { return ns.f.Close() }

// Do runs fn on an OS thread inside the namespace. The thread is locked
// for the call and, if it cannot return to snag's namespace afterwards,
// stays locked so the Go runtime discards it rather than reuse it.
func (ns *NetNS) Do(fn func() error) error {
	if ns.same {
		return fn()
	}
	runtime.LockOSThread()
	home, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open own network namespace: %w", err)
	}
	defer home.Close()
	if err := unix.Setns(int(ns.f.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace: %w", err)
	}
	ferr := fn()
	if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
		return errors.Join(ferr, fmt.Errorf("return to own network namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// OpenDiag opens a sock_diag socket in the namespace.
func (ns *NetNS) OpenDiag() (*DiagSocket, error) {
	var fd int
	err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open sock_diag socket: %w", err)
	}
	return &DiagSocket{fd: fd, buf: make([]byte, 64*1024)}, nil
}

// TCPListen reads the namespace's TcpExt counters (ListenOverflows,
// ListenDrops) through /proc/thread-self/net/netstat, which shows the
// reading thread's namespace, so it works after the process is gone.
func (ns *NetNS) TCPListen() (overflows, drops uint64, err error) {
	var b []byte
	err = ns.Do(func() error {
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/netstat")
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("read netstat: %w", err)
	}
	return ParseListenCounters(b)
}

// ParseListenCounters finds TcpExt ListenOverflows and ListenDrops in a
// /proc/net/netstat file: pairs of lines, names then values, each starting
// with the same "Prefix:".
func ParseListenCounters(b []byte) (overflows, drops uint64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 16*1024), 1<<20)
	var names []string
	found := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "TcpExt:" {
			names = nil
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		vals := f[1:]
		if len(vals) != len(names) {
			return 0, 0, fmt.Errorf("netstat: TcpExt has %d names and %d values", len(names), len(vals))
		}
		for i, n := range names {
			var dst *uint64
			switch n {
			case "ListenOverflows":
				dst = &overflows
			case "ListenDrops":
				dst = &drops
			default:
				continue
			}
			v, err := strconv.ParseUint(vals[i], 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("netstat: bad %s %q", n, vals[i])
			}
			*dst = v
			found++
		}
		names = nil
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if found != 2 {
		return 0, 0, errors.New("netstat: no TcpExt ListenOverflows and ListenDrops")
	}
	return overflows, drops, nil
}

// Close closes the socket.
func (d *DiagSocket) Close() error { return unix.Close(d.fd) }

// Listeners dumps the accept queues of every listening TCP (IPv4, IPv6)
// and unix socket of the namespace: one dump per family, whatever the
// number of sockets, with the kernel filtering on the LISTEN state.
func (d *DiagSocket) Listeners() ([]AcceptQueue, error) {
	var out []AcceptQueue
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		req := make([]byte, inetDiagReqSz)
		req[0] = family
		req[1] = unix.IPPROTO_TCP
		binary.NativeEndian.PutUint32(req[4:], listenStateMask)
		if err := d.dump(req, func(msg []byte) error {
			q, err := parseInetDiagListener(msg)
			if err == nil {
				out = append(out, q)
			}
			return err
		}); err != nil {
			return nil, fmt.Errorf("tcp listeners: %w", err)
		}
	}
	req := make([]byte, unixDiagReqSz)
	req[0] = unix.AF_UNIX
	binary.NativeEndian.PutUint32(req[4:], listenStateMask)
	binary.NativeEndian.PutUint32(req[12:], udiagShowName|udiagShowRQLen)
	if err := d.dump(req, func(msg []byte) error {
		q, ok, err := parseUnixDiagListener(msg)
		if ok {
			out = append(out, q)
		}
		return err
	}); err != nil {
		return nil, fmt.Errorf("unix listeners: %w", err)
	}
	return out, nil
}

// dump sends one SOCK_DIAG_BY_FAMILY dump request and calls fn with the
// body of every reply message until NLMSG_DONE.
func (d *DiagSocket) dump(body []byte, fn func([]byte) error) error {
	d.seq++
	req := make([]byte, unix.SizeofNlMsghdr+len(body))
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], d.seq)
	copy(req[unix.SizeofNlMsghdr:], body)
	if err := unix.Sendto(d.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("send sock_diag request: %w", err)
	}
	for {
		n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
		if err != nil {
			return fmt.Errorf("read sock_diag reply: %w", err)
		}
		done, err := walkNetlink(d.buf[:n], d.seq, fn)
		if err != nil || done {
			return err
		}
	}
}

// walkNetlink calls fn with each SOCK_DIAG_BY_FAMILY message body of one
// netlink datagram and reports whether the dump is complete.
func walkNetlink(b []byte, seq uint32, fn func([]byte) error) (bool, error) {
	ne := binary.NativeEndian
	for len(b) >= unix.SizeofNlMsghdr {
		l := int(ne.Uint32(b[0:]))
		typ := ne.Uint16(b[4:])
		if l < unix.SizeofNlMsghdr || l > len(b) {
			return false, fmt.Errorf("sock_diag: bad message length %d", l)
		}
		msgSeq := ne.Uint32(b[8:])
		msg := b[unix.SizeofNlMsghdr:l]
		b = b[min(nlAlign(l), len(b)):]
		if msgSeq != seq {
			continue // not ours
		}
		switch typ {
		case unix.NLMSG_DONE:
			return true, nil
		case unix.NLMSG_ERROR:
			if len(msg) >= 4 {
				if errno := int32(ne.Uint32(msg)); errno < 0 {
					return false, fmt.Errorf("sock_diag: %w", unix.Errno(-errno))
				}
			}
			return false, fmt.Errorf("sock_diag: error reply")
		case unix.SOCK_DIAG_BY_FAMILY:
			if err := fn(msg); err != nil {
				return false, err
			}
		}
	}
	return false, nil
}

// parseInetDiagListener decodes a struct inet_diag_msg:
//
//	u8 family, state, timer, retrans; inet_diag_sockid id (sport, dport
//	big-endian u16; src, dst 16 bytes; if u32; cookie 2×u32);
//	u32 expires, rqueue, wqueue, uid, inode
func parseInetDiagListener(msg []byte) (AcceptQueue, error) {
	var q AcceptQueue
	if len(msg) < inetDiagMsgSz {
		return q, fmt.Errorf("sock_diag: short inet message of %d bytes", len(msg))
	}
	ne := binary.NativeEndian
	port := binary.BigEndian.Uint16(msg[4:])
	src := msg[8:24]
	switch msg[0] {
	case unix.AF_INET:
		q.Addr = model.Addr{Family: model.FamilyInet, IP: netip.AddrFrom4([4]byte(src[:4])), Port: port}
	case unix.AF_INET6:
		ip := netip.AddrFrom16([16]byte(src))
		q.Addr = model.Addr{Family: model.FamilyInet6, IP: ip, Port: port}
		if ip.Is4In6() {
			q.Addr.Family, q.Addr.IP = model.FamilyInet, ip.Unmap()
		}
	default:
		return q, fmt.Errorf("sock_diag: inet message of family %d", msg[0])
	}
	q.Depth = ne.Uint32(msg[56:])
	q.Limit = ne.Uint32(msg[60:])
	q.Inode = uint64(ne.Uint32(msg[68:]))
	return q, nil
}

// parseUnixDiagListener decodes a struct unix_diag_msg (u8 family, type,
// state, pad; u32 ino; u32 cookie[2]) and its UNIX_DIAG_NAME and
// UNIX_DIAG_RQLEN attributes. A message without the queue lengths (a
// kernel that ignored UDIAG_SHOW_RQLEN) is skipped: ok is false.
func parseUnixDiagListener(msg []byte) (q AcceptQueue, ok bool, err error) {
	if len(msg) < unixDiagMsgSz {
		return q, false, fmt.Errorf("sock_diag: short unix message of %d bytes", len(msg))
	}
	ne := binary.NativeEndian
	q.Inode = uint64(ne.Uint32(msg[4:]))
	q.Addr = model.Addr{Family: model.FamilyUnix}
	for attrs := msg[unixDiagMsgSz:]; len(attrs) >= unix.SizeofNlAttr; {
		al := int(ne.Uint16(attrs[0:]))
		at := ne.Uint16(attrs[2:]) & nlaTypeMask
		if al < unix.SizeofNlAttr || al > len(attrs) {
			return q, false, fmt.Errorf("sock_diag: bad attribute length %d", al)
		}
		val := attrs[unix.SizeofNlAttr:al]
		switch {
		case at == unixDiagName:
			q.Addr.Path = unixName(val)
		case at == unixDiagRQLen && len(val) >= 8:
			q.Depth = ne.Uint32(val[0:])
			q.Limit = ne.Uint32(val[4:])
			ok = true
		}
		attrs = attrs[min(nlAlign(al), len(attrs)):]
	}
	return q, ok, nil
}

// SocketInodes returns the inodes of pid's socket file descriptors: a
// readlink per fd, no socket table read, cheap enough to repeat.
func (fs FS) SocketInodes(pid int) ([]uint64, error) {
	dir := fs.path(pid, "fd")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list fds of pid %d: %w", pid, err)
	}
	var out []uint64
	for _, e := range entries {
		t, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue // closed since the listing
		}
		if ino, ok := socketInode(t); ok {
			out = append(out, ino)
		}
	}
	return out, nil
}
