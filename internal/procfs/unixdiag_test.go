//go:build linux

package procfs

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/snagtrace/snag/internal/model"
)

// TestResolveUnixPeersLive connects to a unix listener of this process and
// expects the client socket's peer to be the listener's path.
func TestResolveUnixPeersLive(t *testing.T) {
	requireProc(t)
	path := filepath.Join(t.TempDir(), "db.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	abstract, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "@snag-test-" + filepath.Base(t.TempDir()), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer abstract.Close()

	pid := os.Getpid()
	socks, err := Default.Sockets(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := Default.ResolveUnixPeers(pid, socks); err != nil {
		if errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.ENOENT) {
			t.Skipf("no unix sock_diag: %v", err)
		}
		t.Fatal(err)
	}
	var withPeer []model.Socket
	for _, s := range socks {
		if s.Proto == "unix" && s.Peer.Path == path {
			withPeer = append(withPeer, s)
		}
	}
	// The client's peer is the accepted socket, named after the listener.
	// The accepted socket's peer is the unnamed client, so only one.
	if len(withPeer) != 1 || withPeer[0].Local.Path != "" || withPeer[0].State != "ESTABLISHED" {
		t.Errorf("sockets with peer %q: %+v\nall: %+v", path, withPeer, socks)
	}
}

func TestParseUnixDiag(t *testing.T) {
	ne := binary.NativeEndian
	msg := func(typ uint16, seq uint32, body []byte) []byte {
		l := unix.SizeofNlMsghdr + len(body)
		b := make([]byte, nlAlign(l))
		ne.PutUint32(b[0:], uint32(l))
		ne.PutUint16(b[4:], typ)
		ne.PutUint32(b[8:], seq)
		copy(b[unix.SizeofNlMsghdr:], body)
		return b
	}
	attr := func(typ uint16, val []byte) []byte {
		b := make([]byte, nlAlign(4+len(val)))
		ne.PutUint16(b[0:], uint16(4+len(val)))
		ne.PutUint16(b[2:], typ)
		copy(b[4:], val)
		return b
	}
	sock := func(ino uint32, attrs ...[]byte) []byte {
		b := make([]byte, unixDiagMsgSz)
		b[0] = unix.AF_UNIX
		ne.PutUint32(b[4:], ino)
		for _, a := range attrs {
			b = append(b, a...)
		}
		return b
	}
	u32 := func(v uint32) []byte { return ne.AppendUint32(nil, v) }

	var dgram []byte
	dgram = append(dgram, msg(unix.SOCK_DIAG_BY_FAMILY, 1, sock(10, attr(unixDiagName, []byte("/run/db.sock\x00")), attr(unixDiagPeer, u32(11))))...)
	dgram = append(dgram, msg(unix.SOCK_DIAG_BY_FAMILY, 1, sock(11, attr(unixDiagPeer, u32(10))))...)
	dgram = append(dgram, msg(unix.SOCK_DIAG_BY_FAMILY, 1, sock(12, attr(unixDiagName, []byte("\x00abs\x00x"))))...)
	dgram = append(dgram, msg(unix.SOCK_DIAG_BY_FAMILY, 9, sock(13))...) // another request's
	out := map[uint32]unixDiag{}
	done, err := parseUnixDiag(dgram, 1, out)
	if err != nil || done {
		t.Fatalf("done %v, err %v", done, err)
	}
	want := map[uint32]unixDiag{
		10: {name: "/run/db.sock", peer: 11},
		11: {peer: 10},
		12: {name: "@abs@x"},
	}
	if len(out) != len(want) {
		t.Fatalf("got %+v", out)
	}
	for k, v := range want {
		if out[k] != v {
			t.Errorf("inode %d: got %+v, want %+v", k, out[k], v)
		}
	}
	if done, err := parseUnixDiag(msg(unix.NLMSG_DONE, 1, u32(0)), 1, out); !done || err != nil {
		t.Errorf("NLMSG_DONE: done %v, err %v", done, err)
	}
	if _, err := parseUnixDiag(msg(unix.NLMSG_ERROR, 1, u32(uint32(0xffffffff-uint32(unix.EPERM)+1))), 1, out); !errors.Is(err, unix.EPERM) {
		t.Errorf("NLMSG_ERROR: %v", err)
	}
	bad := msg(unix.SOCK_DIAG_BY_FAMILY, 1, sock(14))
	ne.PutUint32(bad[0:], 1000)
	if _, err := parseUnixDiag(bad, 1, out); err == nil {
		t.Error("accepted a message longer than the datagram")
	}
}

func FuzzParseUnixDiag(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{36, 0, 0, 0, 20, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseUnixDiag(b, 1, map[uint32]unixDiag{})
	})
}
