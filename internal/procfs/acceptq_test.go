//go:build linux

package procfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snagtrace/snag/internal/model"
)

// inetDiagMsg builds a struct inet_diag_msg as the kernel sends it.
func inetDiagMsg(family uint8, src []byte, port uint16, depth, limit, inode uint32) []byte {
	m := make([]byte, inetDiagMsgSz)
	m[0], m[1] = family, tcpListenState
	binary.BigEndian.PutUint16(m[4:], port)
	copy(m[8:24], src)
	ne := binary.NativeEndian
	ne.PutUint32(m[56:], depth)
	ne.PutUint32(m[60:], limit)
	ne.PutUint32(m[68:], inode)
	return m
}

// nlAttr appends one netlink attribute, padded.
func nlAttr(b []byte, typ uint16, val []byte) []byte {
	a := make([]byte, nlAlign(unix.SizeofNlAttr+len(val)))
	binary.NativeEndian.PutUint16(a[0:], uint16(unix.SizeofNlAttr+len(val)))
	binary.NativeEndian.PutUint16(a[2:], typ)
	copy(a[unix.SizeofNlAttr:], val)
	return append(b, a...)
}

func unixDiagListenMsg(inode uint32, name string, rq *[2]uint32) []byte {
	m := make([]byte, unixDiagMsgSz)
	m[0], m[1], m[2] = unix.AF_UNIX, unix.SOCK_STREAM, tcpListenState
	binary.NativeEndian.PutUint32(m[4:], inode)
	if name != "" {
		m = nlAttr(m, unixDiagName, []byte(name))
	}
	if rq != nil {
		v := make([]byte, 8)
		binary.NativeEndian.PutUint32(v[0:], rq[0])
		binary.NativeEndian.PutUint32(v[4:], rq[1])
		m = nlAttr(m, unixDiagRQLen, v)
	}
	return m
}

func TestParseInetDiagListener(t *testing.T) {
	v4 := netip.MustParseAddr("127.0.0.1").As4()
	mapped := netip.MustParseAddr("::ffff:10.0.0.1").As16()
	v6 := netip.MustParseAddr("::1").As16()
	for _, tc := range []struct {
		name string
		msg  []byte
		want AcceptQueue
		full bool
		bad  bool
	}{
		{"ipv4 full", inetDiagMsg(unix.AF_INET, v4[:], 8000, 9, 8, 4242), AcceptQueue{Inode: 4242, Addr: model.Addr{Family: model.FamilyInet, IP: netip.AddrFrom4(v4), Port: 8000}, Depth: 9, Limit: 8}, true, false},
		{"ipv4 at the limit", inetDiagMsg(unix.AF_INET, v4[:], 8000, 8, 8, 1), AcceptQueue{Inode: 1, Addr: model.Addr{Family: model.FamilyInet, IP: netip.AddrFrom4(v4), Port: 8000}, Depth: 8, Limit: 8}, true, false},
		{"ipv4 idle", inetDiagMsg(unix.AF_INET, v4[:], 80, 0, 4096, 7), AcceptQueue{Inode: 7, Addr: model.Addr{Family: model.FamilyInet, IP: netip.AddrFrom4(v4), Port: 80}, Depth: 0, Limit: 4096}, false, false},
		{"backlog 0, empty, is not full", inetDiagMsg(unix.AF_INET, v4[:], 80, 0, 0, 7), AcceptQueue{Inode: 7, Addr: model.Addr{Family: model.FamilyInet, IP: netip.AddrFrom4(v4), Port: 80}}, false, false},
		{"ipv6", inetDiagMsg(unix.AF_INET6, v6[:], 443, 1, 511, 9), AcceptQueue{Inode: 9, Addr: model.Addr{Family: model.FamilyInet6, IP: netip.AddrFrom16(v6), Port: 443}, Depth: 1, Limit: 511}, false, false},
		{"v4-mapped is ipv4", inetDiagMsg(unix.AF_INET6, mapped[:], 443, 0, 5, 9), AcceptQueue{Inode: 9, Addr: model.Addr{Family: model.FamilyInet, IP: netip.MustParseAddr("10.0.0.1"), Port: 443}, Limit: 5}, false, false},
		{"short", make([]byte, inetDiagMsgSz-1), AcceptQueue{}, false, true},
		{"other family", inetDiagMsg(unix.AF_UNIX, nil, 0, 0, 0, 0), AcceptQueue{}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := parseInetDiagListener(tc.msg)
			if (err != nil) != tc.bad {
				t.Fatalf("err %v, want error %v", err, tc.bad)
			}
			if tc.bad {
				return
			}
			if q != tc.want || q.Full() != tc.full {
				t.Errorf("got %+v full %v, want %+v full %v", q, q.Full(), tc.want, tc.full)
			}
		})
	}
}

func TestParseUnixDiagListener(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  []byte
		want AcceptQueue
		ok   bool
		bad  bool
	}{
		{"path", unixDiagListenMsg(11, "/run/app/uwsgi.sock", &[2]uint32{9, 8}), AcceptQueue{Inode: 11, Addr: model.Addr{Family: model.FamilyUnix, Path: "/run/app/uwsgi.sock"}, Depth: 9, Limit: 8}, true, false},
		{"abstract", unixDiagListenMsg(12, "\x00app", &[2]uint32{0, 128}), AcceptQueue{Inode: 12, Addr: model.Addr{Family: model.FamilyUnix, Path: "@app"}, Limit: 128}, true, false},
		{"unnamed", unixDiagListenMsg(13, "", &[2]uint32{1, 2}), AcceptQueue{Inode: 13, Addr: model.Addr{Family: model.FamilyUnix}, Depth: 1, Limit: 2}, true, false},
		{"no queue lengths", unixDiagListenMsg(14, "/x", nil), AcceptQueue{}, false, false},
		{"short", make([]byte, unixDiagMsgSz-1), AcceptQueue{}, false, true},
		{"bad attribute", append(make([]byte, unixDiagMsgSz), 0xff, 0x00, 0x04, 0x00), AcceptQueue{}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, ok, err := parseUnixDiagListener(tc.msg)
			if (err != nil) != tc.bad || ok != tc.ok {
				t.Fatalf("ok %v err %v, want ok %v error %v", ok, err, tc.ok, tc.bad)
			}
			if ok && q != tc.want {
				t.Errorf("got %+v, want %+v", q, tc.want)
			}
		})
	}
}

func TestWalkNetlink(t *testing.T) {
	msg := func(typ uint16, seq uint32, body []byte) []byte {
		m := make([]byte, nlAlign(unix.SizeofNlMsghdr+len(body)))
		binary.NativeEndian.PutUint32(m[0:], uint32(unix.SizeofNlMsghdr+len(body)))
		binary.NativeEndian.PutUint16(m[4:], typ)
		binary.NativeEndian.PutUint32(m[8:], seq)
		copy(m[unix.SizeofNlMsghdr:], body)
		return m
	}
	var got int
	count := func([]byte) error { got++; return nil }
	var dgram []byte
	dgram = append(dgram, msg(unix.SOCK_DIAG_BY_FAMILY, 3, []byte{1, 2, 3})...)
	dgram = append(dgram, msg(unix.SOCK_DIAG_BY_FAMILY, 2, nil)...) // an older request's
	dgram = append(dgram, msg(unix.SOCK_DIAG_BY_FAMILY, 3, nil)...)
	done, err := walkNetlink(dgram, 3, count)
	if done || err != nil || got != 2 {
		t.Errorf("done %v err %v messages %d, want false, nil, 2", done, err, got)
	}
	if done, err := walkNetlink(msg(unix.NLMSG_DONE, 3, make([]byte, 4)), 3, count); !done || err != nil {
		t.Errorf("NLMSG_DONE: done %v err %v", done, err)
	}
	errBody := make([]byte, 4)
	eperm := -int32(unix.EPERM)
	binary.NativeEndian.PutUint32(errBody, uint32(eperm))
	if _, err := walkNetlink(msg(unix.NLMSG_ERROR, 3, errBody), 3, count); !errors.Is(err, unix.EPERM) {
		t.Errorf("NLMSG_ERROR: %v, want EPERM", err)
	}
	bad := msg(unix.SOCK_DIAG_BY_FAMILY, 3, nil)
	binary.NativeEndian.PutUint32(bad[0:], 1000)
	if _, err := walkNetlink(bad, 3, count); err == nil {
		t.Error("a length past the datagram parsed")
	}
}

func TestParseListenCounters(t *testing.T) {
	for _, tc := range []struct {
		name           string
		in             string
		overflow, drop uint64
		bad            bool
	}{
		{"kernel order", "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPHPHits\nTcpExt: 0 12 15 99\nIpExt: InNoRoutes\nIpExt: 0\n", 12, 15, false},
		{"after IpExt", "IpExt: InNoRoutes ListenOverflows\nIpExt: 5 6\nTcpExt: ListenDrops ListenOverflows\nTcpExt: 3 2\n", 2, 3, false},
		{"missing", "TcpExt: SyncookiesSent\nTcpExt: 0\n", 0, 0, true},
		{"ragged", "TcpExt: ListenOverflows ListenDrops\nTcpExt: 1\n", 0, 0, true},
		{"not a number", "TcpExt: ListenOverflows ListenDrops\nTcpExt: x 1\n", 0, 0, true},
		{"empty", "", 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, d, err := ParseListenCounters([]byte(tc.in))
			if (err != nil) != tc.bad {
				t.Fatalf("err %v, want error %v", err, tc.bad)
			}
			if o != tc.overflow || d != tc.drop {
				t.Errorf("overflows %d drops %d, want %d %d", o, d, tc.overflow, tc.drop)
			}
		})
	}
}

func FuzzParseDiagListeners(f *testing.F) {
	v4 := netip.MustParseAddr("127.0.0.1").As4()
	f.Add(inetDiagMsg(unix.AF_INET, v4[:], 8000, 9, 8, 4242))
	f.Add(unixDiagListenMsg(11, "/run/app/uwsgi.sock", &[2]uint32{9, 8}))
	f.Add(unixDiagListenMsg(12, "\x00app", nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := parseInetDiagListener(b); err == nil && q.Addr.Family != model.FamilyInet && q.Addr.Family != model.FamilyInet6 {
			t.Fatalf("inet listener of family %q", q.Addr.Family)
		}
		if q, ok, _ := parseUnixDiagListener(b); ok && q.Addr.Family != model.FamilyUnix {
			t.Fatalf("unix listener of family %q", q.Addr.Family)
		}
		walkNetlink(b, 1, func([]byte) error { return nil })
	})
}

func FuzzParseListenCounters(f *testing.F) {
	if b, err := os.ReadFile("/proc/net/netstat"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("TcpExt: ListenOverflows ListenDrops\nTcpExt: 1 2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseListenCounters(b)
	})
}

// TestAcceptQueuesLive fills a TCP listener's backlog of 4 and a unix
// listener's backlog of 2 without ever accepting, and expects sock_diag to
// show both at their limit, found by inode from this process's fd table.
func TestAcceptQueuesLive(t *testing.T) {
	requireProc(t)
	ns, err := Default.OpenNetNS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	d, err := ns.OpenDiag()
	if err != nil {
		t.Skipf("no sock_diag: %v", err)
	}
	defer d.Close()

	tcpFD, port := listenTCP(t, 4)
	for i := 0; i < 20; i++ {
		connectNonblock(t, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
	}
	path := filepath.Join(t.TempDir(), "app.sock")
	unixFD := listenUnix(t, path, 2)
	for i := 0; i < 3; i++ {
		connectNonblock(t, &unix.SockaddrUnix{Name: path})
	}
	var st unix.Stat_t
	if err := unix.Fstat(tcpFD, &st); err != nil {
		t.Fatal(err)
	}
	tcpIno := st.Ino
	if err := unix.Fstat(unixFD, &st); err != nil {
		t.Fatal(err)
	}
	unixIno := st.Ino
	inodes, err := Default.SocketInodes(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	mine := map[uint64]bool{}
	for _, ino := range inodes {
		mine[ino] = true
	}
	if !mine[tcpIno] || !mine[unixIno] {
		t.Fatalf("socket inodes %v miss the listeners %d, %d", inodes, tcpIno, unixIno)
	}

	// The handshakes complete in softirq context: give them a moment.
	var tcpQ, unixQ AcceptQueue
	for i := 0; i < 50; i++ {
		qs, err := d.Listeners()
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			switch q.Inode {
			case tcpIno:
				tcpQ = q
			case unixIno:
				unixQ = q
			}
		}
		if tcpQ.Full() && unixQ.Full() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if tcpQ.Limit != 4 || !tcpQ.Full() || tcpQ.Addr.Port != uint16(port) {
		t.Errorf("tcp listener %+v: want limit 4, full, port %d", tcpQ, port)
	}
	if unixQ.Limit != 2 || !unixQ.Full() || unixQ.Addr.Path != path {
		t.Errorf("unix listener %+v: want limit 2, full, path %s", unixQ, path)
	}
	o, dr, err := ns.TCPListen()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tcp %+v unix %+v; ListenOverflows %d ListenDrops %d", tcpQ, unixQ, o, dr)
}

func listenTCP(t *testing.T, backlog int) (fd, port int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, sa.(*unix.SockaddrInet4).Port
}

func listenUnix(t *testing.T, path string, backlog int) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatal(err)
	}
	return fd
}

// connectNonblock starts a connection and leaves it pending or queued; a
// unix connect to a full backlog fails with EAGAIN, which is fine here.
func connectNonblock(t *testing.T, sa unix.Sockaddr) {
	t.Helper()
	family := unix.AF_INET
	if _, ok := sa.(*unix.SockaddrUnix); ok {
		family = unix.AF_UNIX
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS && err != unix.EAGAIN {
		t.Fatal(err)
	}
}

// TestNetNSOther queries a process in a network namespace of its own:
// the sock_diag socket and the counters are that namespace's, not ours.
func TestNetNSOther(t *testing.T) {
	requireProc(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to enter another network namespace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed")
	}
	cmd := exec.Command("unshare", "--net", "sh", "-c", "ip link set lo up 2>/dev/null; exec python3 -c 'import socket,time; s=socket.socket(); s.bind((\"127.0.0.1\", 19999)); s.listen(3); time.sleep(30)'")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	// Once python3 runs, unshare has made the namespace.
	for i := 0; i < 100; i++ {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)); strings.HasPrefix(string(b), "python3") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	ns, err := Default.OpenNetNS(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if ns.same {
		t.Fatal("the unshared process is in our namespace")
	}
	var qs []AcceptQueue
	for i := 0; i < 100; i++ {
		d, err := ns.OpenDiag()
		if err != nil {
			t.Fatal(err)
		}
		qs, err = d.Listeners()
		d.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(qs) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(qs) != 1 || qs[0].Addr.Port != 19999 || qs[0].Limit != 3 {
		t.Errorf("listeners in the new namespace: %+v, want only 127.0.0.1:19999 with backlog 3", qs)
	}
	if _, _, err := ns.TCPListen(); err != nil {
		t.Error(err)
	}
}
