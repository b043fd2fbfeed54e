package bpf

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/snagtrace/snag/internal/model"
)

func sockaddrIn(ip string, port uint16) []byte {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint16(b, afInet)
	binary.BigEndian.PutUint16(b[2:], port)
	a := netip.MustParseAddr(ip).As4()
	copy(b[4:], a[:])
	return b
}

func sockaddrIn6(ip string, port uint16) []byte {
	b := make([]byte, 28)
	binary.NativeEndian.PutUint16(b, afInet6)
	binary.BigEndian.PutUint16(b[2:], port)
	a := netip.MustParseAddr(ip).As16()
	copy(b[8:], a[:])
	return b
}

func sockaddrUn(path string, abstract bool) []byte {
	b := make([]byte, 2, 110)
	binary.NativeEndian.PutUint16(b, afUnix)
	if abstract {
		b = append(b, 0)
	}
	b = append(b, path...)
	if !abstract {
		b = append(b, 0, 0, 0) // NUL and trailing garbage within addrlen
	}
	return b
}

func TestDecodeSockaddr(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"inet", sockaddrIn("127.0.0.1", 3306), "127.0.0.1:3306"},
		{"inet6", sockaddrIn6("::1", 6379), "[::1]:6379"},
		{"inet6 v4-mapped", sockaddrIn6("::ffff:10.0.0.5", 5432), "[::ffff:10.0.0.5]:5432"},
		{"unix path", sockaddrUn("/run/mysqld/mysqld.sock", false), "unix:/run/mysqld/mysqld.sock"},
		{"unix abstract", sockaddrUn("snag-test", true), "unix:@snag-test"},
		{"unix unnamed", sockaddrUn("", false)[:2], "unix:(unnamed)"},
		{"inet too short", sockaddrIn("127.0.0.1", 80)[:6], ""},
		{"inet6 too short", sockaddrIn6("::1", 80)[:20], ""},
		{"unknown family", []byte{16, 0, 1, 2}, ""},
		{"empty", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DecodeSockaddr(tc.in).String(); got != tc.want {
				t.Errorf("DecodeSockaddr = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSockAddrFromKernel(t *testing.T) {
	var v4 [16]uint8
	copy(v4[:], []byte{127, 0, 0, 1})
	if got := sockAddr(afInet, 3306, v4); got.String() != "127.0.0.1:3306" {
		t.Errorf("inet: %v", got)
	}
	if got := sockAddr(afInet, 0, [16]uint8{}); !got.IsZero() {
		t.Errorf("an unconnected socket has no peer, got %v", got)
	}
	mapped := netip.MustParseAddr("::ffff:192.168.1.2").As16()
	if got := sockAddr(afInet6, 80, mapped); got.String() != "192.168.1.2:80" || got.Family != model.FamilyInet6 {
		t.Errorf("v4-mapped inet6 peer: %v (%s)", got, got.Family)
	}
}

func FuzzDecodeSockaddr(f *testing.F) {
	f.Add(sockaddrIn("127.0.0.1", 3306))
	f.Add(sockaddrIn6("::1", 6379))
	f.Add(sockaddrUn("/tmp/x", false))
	f.Add(sockaddrUn("x", true))
	f.Fuzz(func(t *testing.T, b []byte) {
		a := DecodeSockaddr(b)
		_ = a.String()
	})
}
