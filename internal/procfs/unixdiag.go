//go:build linux

package procfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/snagtrace/snag/internal/model"
)

// ErrOtherNetNS reports that a process is in another network namespace than
// snag, where the sock_diag dump cannot see its sockets.
var ErrOtherNetNS = errors.New("process is in another network namespace")

// Constants of linux/unix_diag.h, which x/sys/unix does not carry.
const (
	udiagShowName = 0x1
	udiagShowPeer = 0x4
	unixDiagName  = 0 // attribute: the bound address
	unixDiagPeer  = 2 // attribute: the peer's inode
	unixDiagReqSz = 24
	unixDiagMsgSz = 16
	nlaTypeMask   = 0x3fff // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
)

type unixDiag struct {
	name string // bound address; '@' starts an abstract one
	peer uint32 // inode of the connected peer, 0 if none
}

// ResolveUnixPeers fills the Peer of the unix sockets in socks, which
// /proc/net/unix does not show: for a client connected to
// /run/mysqld/mysqld.sock, Peer becomes that path. It asks the kernel
// through a NETLINK_SOCK_DIAG dump, which sees only snag's own network
// namespace, so pid (the owner of socks) must share it; ErrOtherNetNS
// otherwise. It only makes sense on the live /proc.
func (fs FS) ResolveUnixPeers(pid int, socks []model.Socket) error {
	mine, err := os.Readlink(fs.Root + "/self/ns/net")
	if err != nil {
		return fmt.Errorf("read own network namespace: %w", err)
	}
	theirs, err := os.Readlink(fs.path(pid, "ns", "net"))
	if err != nil {
		return fmt.Errorf("read network namespace of pid %d: %w", pid, err)
	}
	if mine != theirs {
		return fmt.Errorf("unix socket peers of pid %d: %w", pid, ErrOtherNetNS)
	}
	need := false
	for _, s := range socks {
		need = need || s.Proto == "unix"
	}
	if !need {
		return nil
	}
	diag, err := dumpUnixSockets()
	if err != nil {
		return fmt.Errorf("unix socket peers of pid %d: %w", pid, err)
	}
	for i := range socks {
		s := &socks[i]
		if s.Proto != "unix" || s.Inode > 0xffffffff {
			continue
		}
		me, ok := diag[uint32(s.Inode)]
		if !ok || me.peer == 0 {
			continue
		}
		// An accepted socket carries its listener's name, so the peer's
		// own name is what the client connected to.
		s.Peer = model.Addr{Family: model.FamilyUnix, Path: diag[me.peer].name}
	}
	return nil
}

// dumpUnixSockets lists every unix socket of the caller's network namespace.
func dumpUnixSockets() (map[uint32]unixDiag, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("open sock_diag socket: %w", err)
	}
	defer unix.Close(fd)

	const seq = 1
	req := make([]byte, unix.SizeofNlMsghdr+unixDiagReqSz)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], seq)
	body := req[unix.SizeofNlMsghdr:]
	body[0] = unix.AF_UNIX
	ne.PutUint32(body[4:], 0xffffffff) // every state
	ne.PutUint32(body[12:], udiagShowName|udiagShowPeer)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("send sock_diag request: %w", err)
	}

	out := make(map[uint32]unixDiag)
	buf := make([]byte, 64*1024)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("read sock_diag reply: %w", err)
		}
		done, err := parseUnixDiag(buf[:n], seq, out)
		if err != nil {
			return nil, err
		}
		if done {
			return out, nil
		}
	}
}

// parseUnixDiag adds the sockets of one netlink datagram to out and reports
// whether the dump is complete.
func parseUnixDiag(b []byte, seq uint32, out map[uint32]unixDiag) (bool, error) {
	ne := binary.NativeEndian
	return walkNetlink(b, seq, func(msg []byte) error {
		if len(msg) < unixDiagMsgSz {
			return fmt.Errorf("sock_diag: short message of %d bytes", len(msg))
		}
		ino := ne.Uint32(msg[4:])
		var d unixDiag
		for attrs := msg[unixDiagMsgSz:]; len(attrs) >= unix.SizeofNlAttr; {
			al := int(ne.Uint16(attrs[0:]))
			at := ne.Uint16(attrs[2:]) & nlaTypeMask
			if al < unix.SizeofNlAttr || al > len(attrs) {
				return fmt.Errorf("sock_diag: bad attribute length %d", al)
			}
			val := attrs[unix.SizeofNlAttr:al]
			switch {
			case at == unixDiagName:
				d.name = unixName(val)
			case at == unixDiagPeer && len(val) >= 4:
				d.peer = ne.Uint32(val)
			}
			attrs = attrs[min(nlAlign(al), len(attrs)):]
		}
		out[ino] = d
		return nil
	})
}

func nlAlign(n int) int { return (n + 3) &^ 3 }

// unixName renders a sun_path as /proc/net/unix does: an abstract name's
// NUL bytes become '@'; a path name ends at its first NUL.
func unixName(b []byte) string {
	if len(b) > 0 && b[0] == 0 {
		return strings.ReplaceAll(string(b), "\x00", "@")
	}
	s := string(b)
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s
}
