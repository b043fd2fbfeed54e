package procfs

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/snagtrace/snag/internal/model"
)

// netEntry is one socket of /proc/net/{tcp,tcp6,udp,udp6,unix}.
type netEntry struct {
	Local, Peer model.Addr
	State       string
	Inode       uint64
}

// tcpStates names the kernel's TCP states (include/net/tcp_states.h), as
// /proc/net/tcp prints them in hex.
var tcpStates = [...]string{
	1:  "ESTABLISHED",
	2:  "SYN_SENT",
	3:  "SYN_RECV",
	4:  "FIN_WAIT1",
	5:  "FIN_WAIT2",
	6:  "TIME_WAIT",
	7:  "CLOSE",
	8:  "CLOSE_WAIT",
	9:  "LAST_ACK",
	10: "LISTEN",
	11: "CLOSING",
	12: "NEW_SYN_RECV",
}

func tcpStateName(code uint64) string {
	if code < uint64(len(tcpStates)) && tcpStates[code] != "" {
		return tcpStates[code]
	}
	return "UNKNOWN(" + strconv.FormatUint(code, 16) + ")"
}

// UDP sockets reuse the TCP state codes; like ss, name the two that occur
// by what they mean for a datagram socket.
func udpStateName(code uint64) string {
	switch code {
	case 1:
		return "ESTABLISHED" // connect()ed to a peer
	case 7:
		return "UNCONN"
	}
	return tcpStateName(code)
}

// parseInetLine parses one data line of /proc/net/{tcp,tcp6,udp,udp6}:
//
//	sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …
//	0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 1000 0 12345 …
func parseInetLine(line string, udp bool) (netEntry, error) {
	var e netEntry
	f := strings.Fields(line)
	if len(f) < 10 {
		return e, fmt.Errorf("want at least 10 fields, got %d", len(f))
	}
	var err error
	if e.Local, err = parseInetAddr(f[1]); err != nil {
		return e, fmt.Errorf("local address: %w", err)
	}
	if e.Peer, err = parseInetAddr(f[2]); err != nil {
		return e, fmt.Errorf("remote address: %w", err)
	}
	if e.Peer.IP.IsUnspecified() && e.Peer.Port == 0 {
		e.Peer = model.Addr{} // listening or unconnected: no peer
	}
	st, err := strconv.ParseUint(f[3], 16, 8)
	if err != nil {
		return e, fmt.Errorf("bad state %q", f[3])
	}
	if udp {
		e.State = udpStateName(st)
	} else {
		e.State = tcpStateName(st)
	}
	if e.Inode, err = strconv.ParseUint(f[9], 10, 64); err != nil {
		return e, fmt.Errorf("bad inode %q", f[9])
	}
	return e, nil
}

// parseInetAddr parses "0100007F:0CEA" or a 32-digit IPv6 form. The kernel
// prints the address as 32-bit words in host byte order, so each word's
// bytes come out reversed on little-endian machines; the port is printed
// after ntohs, as a plain number.
func parseInetAddr(s string) (model.Addr, error) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return model.Addr{}, fmt.Errorf("no port in %q", s)
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return model.Addr{}, fmt.Errorf("bad port %q", hexPort)
	}
	if len(hexIP) != 8 && len(hexIP) != 32 {
		return model.Addr{}, fmt.Errorf("bad address length %d in %q", len(hexIP), s)
	}
	var raw [16]byte
	for i := 0; i < len(hexIP)/8; i++ {
		w, err := strconv.ParseUint(hexIP[i*8:i*8+8], 16, 32)
		if err != nil {
			return model.Addr{}, fmt.Errorf("bad address %q", hexIP)
		}
		binary.NativeEndian.PutUint32(raw[i*4:], uint32(w))
	}
	a := model.Addr{Port: uint16(port)}
	if len(hexIP) == 8 {
		a.Family, a.IP = model.FamilyInet, netip.AddrFrom4([4]byte(raw[:4]))
		return a, nil
	}
	a.Family, a.IP = model.FamilyInet6, netip.AddrFrom16(raw)
	// A dual-stack socket talking IPv4 shows ::ffff:a.b.c.d; report the
	// IPv4 address so it matches what the peer is called everywhere else.
	if a.IP.Is4In6() {
		a.Family, a.IP = model.FamilyInet, a.IP.Unmap()
	}
	return a, nil
}

// Flags and states of /proc/net/unix (include/linux/net.h, net/unix).
const (
	unixAcceptCon = 1 << 16 // __SO_ACCEPTCON: listening
)

var unixStates = [...]string{
	1: "UNCONN",
	2: "CONNECTING",
	3: "ESTABLISHED",
	4: "DISCONNECTING",
}

// parseUnixLine parses one data line of /proc/net/unix:
//
//	Num       RefCount Protocol Flags    Type St Inode Path
//	0000000000000000: 00000002 00000000 00010000 0001 01 12345 /run/x.sock
//
// The path is the rest of the line and may contain spaces; the kernel shows
// abstract names with a leading '@'. The peer is not in this file.
func parseUnixLine(line string) (netEntry, error) {
	var e netEntry
	f := strings.Fields(line)
	if len(f) < 7 {
		return e, fmt.Errorf("want at least 7 fields, got %d", len(f))
	}
	flags, err := strconv.ParseUint(f[3], 16, 32)
	if err != nil {
		return e, fmt.Errorf("bad flags %q", f[3])
	}
	st, err := strconv.ParseUint(f[5], 16, 8)
	if err != nil {
		return e, fmt.Errorf("bad state %q", f[5])
	}
	if e.Inode, err = strconv.ParseUint(f[6], 10, 64); err != nil {
		return e, fmt.Errorf("bad inode %q", f[6])
	}
	switch {
	case flags&unixAcceptCon != 0:
		e.State = "LISTEN"
	case st < uint64(len(unixStates)) && unixStates[st] != "":
		e.State = unixStates[st]
	default:
		e.State = "UNKNOWN(" + f[5] + ")"
	}
	e.Local = model.Addr{Family: model.FamilyUnix}
	e.Local.Path = afterFields(line, 7)
	return e, nil
}

// netTables are the socket tables Sockets joins, in lookup order.
var netTables = []struct {
	proto string
	parse func(string) (netEntry, error)
	// lenient skips lines that do not parse. A unix socket path may
	// contain a newline, which the kernel prints as is, so in the unix
	// table a bad line is someone's path, not a broken file.
	lenient bool
}{
	{"tcp", func(s string) (netEntry, error) { return parseInetLine(s, false) }, false},
	{"tcp6", func(s string) (netEntry, error) { return parseInetLine(s, false) }, false},
	{"udp", func(s string) (netEntry, error) { return parseInetLine(s, true) }, false},
	{"udp6", func(s string) (netEntry, error) { return parseInetLine(s, true) }, false},
	{"unix", parseUnixLine, true},
}

type protoEntry struct {
	proto string
	netEntry
}

// Sockets returns the socket file descriptors of process pid, ordered by
// fd, with addresses and states from the socket tables of its own network
// namespace (PID/net/…). Sockets found in none of those tables (netlink,
// packet, raw, or a TCP/UDP socket neither bound nor connected yet) are
// listed with an empty Proto and no addresses. A unix socket's Local is
// its bound path; its Peer is not available from /proc and stays empty.
func (fs FS) Sockets(pid int) ([]model.Socket, error) {
	fdDir := fs.path(pid, "fd")
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, fmt.Errorf("list fds of pid %d: %w", pid, err)
	}
	var socks []model.Socket
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := fs.FDTarget(pid, fd)
		if errors.Is(err, os.ErrNotExist) && fs.Exists(pid) {
			continue // closed since the listing
		}
		if err != nil {
			return nil, err
		}
		if ino, ok := socketInode(target); ok {
			socks = append(socks, model.Socket{PID: pid, FD: fd, Inode: ino})
		}
	}
	if len(socks) == 0 {
		return nil, nil
	}
	slices.SortFunc(socks, func(a, b model.Socket) int { return a.FD - b.FD })

	byInode := make(map[uint64]protoEntry)
	for _, t := range netTables {
		path := fs.path(pid, "net", t.proto)
		b, err := readFile(path)
		if errors.Is(err, os.ErrNotExist) && fs.Exists(pid) {
			continue // e.g. no tcp6 with IPv6 disabled
		}
		if err != nil {
			return nil, fmt.Errorf("read sockets of pid %d: %w", pid, err)
		}
		if err := parseNetTable(b, t.parse, t.lenient, func(e netEntry) {
			if e.Inode != 0 { // TIME_WAIT and other socket-less entries
				byInode[e.Inode] = protoEntry{t.proto, e}
			}
		}); err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
	}
	for i := range socks {
		if e, ok := byInode[socks[i].Inode]; ok {
			socks[i].Proto, socks[i].Local, socks[i].Peer, socks[i].State = e.proto, e.Local, e.Peer, e.State
		}
	}
	return socks, nil
}

// parseNetTable calls fn for each data line of a /proc/net socket table.
func parseNetTable(b []byte, parse func(string) (netEntry, error), lenient bool, fn func(netEntry)) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if n == 1 || strings.TrimSpace(sc.Text()) == "" {
			continue // header
		}
		e, err := parse(sc.Text())
		if err != nil && lenient {
			continue
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		fn(e)
	}
	return sc.Err()
}
