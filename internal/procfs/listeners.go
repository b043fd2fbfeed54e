package procfs

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"

	"github.com/snagtrace/snag/internal/model"
)

// maxOwnerReadlinks bounds the fd links Listeners reads to find the
// processes holding listening sockets: a host with a hundred thousand
// open fds is scanned in about a second, past that the owners stay
// unnamed (PID 0) rather than the trace's end waiting on /proc.
const maxOwnerReadlinks = 200_000

// listenTables are the socket tables a local peer's listener is looked up in.
var listenTables = []struct {
	proto string
	parse func(string) (netEntry, error)
	unix  bool
}{
	{"tcp", func(s string) (netEntry, error) { return parseInetLine(s, false) }, false},
	{"tcp6", func(s string) (netEntry, error) { return parseInetLine(s, false) }, false},
	{"unix", parseUnixLine, true},
}

// Listeners finds, for each address in addrs that a process in pid's
// network namespace listens on, the listening socket (in pid's
// /proc/PID/net/{tcp,tcp6,unix}) and the process holding it (by a scan of
// every process's fds for the socket's inode, which stops once each is
// found). An inet address is local when a socket of the namespace is bound
// to its IP, or it is a loopback one; a wildcard listener (0.0.0.0, ::) on
// its port serves it. A unix address matches a listener bound to its path.
//
// Each Listener carries the address as given, so a peer looks itself up
// exactly; PID is 0 when no visible process holds the socket (another pid
// namespace, or the scan's bound was reached). Addresses nothing listens
// on are left out.
func (fs FS) Listeners(pid int, addrs []model.Addr) ([]model.Listener, error) {
	if len(addrs) == 0 {
		return nil, nil
	}
	var listen []netEntry
	localIPs := map[netip.Addr]bool{}
	for _, t := range listenTables {
		path := fs.path(pid, "net", t.proto)
		b, err := readFile(path)
		if errors.Is(err, os.ErrNotExist) && fs.Exists(pid) {
			continue // no tcp6 with IPv6 disabled
		}
		if err != nil {
			return nil, fmt.Errorf("read listeners of pid %d: %w", pid, err)
		}
		if err := parseNetTable(b, t.parse, t.unix, func(e netEntry) {
			if !t.unix && e.Local.IP.IsValid() && !e.Local.IP.IsUnspecified() {
				localIPs[e.Local.IP] = true
			}
			if e.State == "LISTEN" && e.Inode != 0 {
				listen = append(listen, e)
			}
		}); err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
	}

	type found struct {
		addr  model.Addr
		inode uint64
	}
	var hits []found
	want := map[uint64]bool{}
	for _, a := range addrs {
		if ino, ok := listenerFor(a, listen, localIPs); ok {
			hits = append(hits, found{a, ino})
			want[ino] = true
		}
	}
	if len(hits) == 0 {
		return nil, nil
	}
	owners, err := fs.socketOwners(want)
	out := make([]model.Listener, 0, len(hits))
	for _, h := range hits {
		l := model.Listener{Addr: h.addr}
		if o, ok := owners[h.inode]; ok {
			l.PID = o
			l.Comm, _ = fs.Comm(o)
		}
		out = append(out, l)
	}
	return out, err
}

// listenerFor returns the inode of the listening socket serving a.
func listenerFor(a model.Addr, listen []netEntry, localIPs map[netip.Addr]bool) (uint64, bool) {
	switch a.Family {
	case model.FamilyUnix:
		if a.Path == "" {
			return 0, false
		}
		for _, e := range listen {
			if e.Local.Family == model.FamilyUnix && e.Local.Path == a.Path {
				return e.Inode, true
			}
		}
		return 0, false
	case model.FamilyInet, model.FamilyInet6:
	default:
		return 0, false
	}
	ip := a.IP.Unmap()
	if !ip.IsValid() || a.Port == 0 || !ip.IsLoopback() && !localIPs[ip] {
		return 0, false
	}
	var wildcard uint64
	for _, e := range listen {
		if e.Local.Family == model.FamilyUnix || e.Local.Port != a.Port {
			continue
		}
		switch {
		case e.Local.IP == ip:
			return e.Inode, true
		case e.Local.IP.IsUnspecified() && (e.Local.IP.Is6() || ip.Is4()) && wildcard == 0:
			// 0.0.0.0 serves IPv4; :: serves both unless IPV6_V6ONLY,
			// which /proc does not show.
			wildcard = e.Inode
		}
	}
	return wildcard, wildcard != 0
}

// socketOwners maps each inode in want to a process holding a socket fd
// on it, scanning /proc/*/fd until every inode is found or
// maxOwnerReadlinks links were read.
func (fs FS) socketOwners(want map[uint64]bool) (map[uint64]int, error) {
	out := make(map[uint64]int, len(want))
	dir, err := os.Open(fs.Root)
	if err != nil {
		return out, fmt.Errorf("list processes: %w", err)
	}
	defer dir.Close()
	links := 0
	for {
		names, err := dir.Readdirnames(256)
		for _, name := range names {
			p, err := strconv.Atoi(name)
			if err != nil || p <= 0 {
				continue
			}
			fds, err := os.ReadDir(fs.path(p, "fd"))
			if err != nil {
				continue // exited, or not ours to read
			}
			for _, e := range fds {
				if links >= maxOwnerReadlinks {
					return out, nil
				}
				links++
				t, err := os.Readlink(fs.path(p, "fd", e.Name()))
				if err != nil {
					continue
				}
				if ino, ok := socketInode(t); ok && want[ino] {
					if _, seen := out[ino]; !seen {
						out[ino] = p
					}
					if len(out) == len(want) {
						return out, nil
					}
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return out, nil // every process seen
		}
		if err != nil {
			return out, fmt.Errorf("list processes: %w", err)
		}
	}
}
