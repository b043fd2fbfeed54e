package procfs

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snagtrace/snag/internal/model"
)

func inet(s string) model.Addr {
	ap := netip.MustParseAddrPort(s)
	f := model.FamilyInet
	if ap.Addr().Is6() {
		f = model.FamilyInet6
	}
	return model.Addr{Family: f, IP: ap.Addr(), Port: ap.Port()}
}

func unixAddr(path string) model.Addr { return model.Addr{Family: model.FamilyUnix, Path: path} }

func TestSocketsFixture(t *testing.T) {
	const sockPath = "/tmp/h1cap/snag fixture.sock"
	want := []model.Socket{
		{FD: 3, Inode: 25020, Proto: "tcp", State: "LISTEN", Local: inet("127.0.0.1:37877")},
		{FD: 4, Inode: 25023, Proto: "tcp", State: "ESTABLISHED", Local: inet("127.0.0.1:35016"), Peer: inet("127.0.0.1:37877")},
		{FD: 5, Inode: 25024, Proto: "tcp", State: "ESTABLISHED", Local: inet("127.0.0.1:37877"), Peer: inet("127.0.0.1:35016")},
		{FD: 6, Inode: 25025, Proto: "tcp6", State: "LISTEN", Local: inet("[::1]:37645")},
		{FD: 7, Inode: 25026, Proto: "tcp6", State: "ESTABLISHED", Local: inet("[::1]:38628"), Peer: inet("[::1]:37645")},
		{FD: 8, Inode: 25027, Proto: "tcp6", State: "ESTABLISHED", Local: inet("[::1]:37645"), Peer: inet("[::1]:38628")},
		{FD: 9, Inode: 25028, Proto: "udp", State: "UNCONN", Local: inet("127.0.0.1:34980")},
		{FD: 11, Inode: 25029, Proto: "udp", State: "ESTABLISHED", Local: inet("127.0.0.1:60048"), Peer: inet("127.0.0.1:34980")},
		{FD: 12, Inode: 25030, Proto: "udp6", State: "UNCONN", Local: inet("[::1]:57441")},
		{FD: 13, Inode: 25031, Proto: "unix", State: "LISTEN", Local: unixAddr(sockPath)},
		{FD: 14, Inode: 25032, Proto: "unix", State: "ESTABLISHED", Local: unixAddr("")},
		{FD: 15, Inode: 25033, Proto: "unix", State: "ESTABLISHED", Local: unixAddr(sockPath)},
		{FD: 16, Inode: 25034, Proto: "unix", State: "UNCONN", Local: unixAddr("@snag-abstract")},
		{FD: 17, Inode: 25035, Proto: "unix", State: "ESTABLISHED", Local: unixAddr("")},
		{FD: 18, Inode: 25036, Proto: "unix", State: "ESTABLISHED", Local: unixAddr("")},
		{FD: 19, Inode: 25037}, // a TCP socket never bound: in no table
	}
	got, err := testFS.Sockets(fixturePID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d sockets, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		want[i].PID = fixturePID
		if got[i] != want[i] {
			t.Errorf("fd %d:\n got %+v\nwant %+v", want[i].FD, got[i], want[i])
		}
	}
}

func TestParseInetLine(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		udp     bool
		want    netEntry
		wantErr bool
	}{
		{
			name: "tcp listen",
			line: "   3: 0100007F:93F5 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 25020 1 000000004e41eb51 100 0 0 10 0",
			want: netEntry{Local: inet("127.0.0.1:37877"), State: "LISTEN", Inode: 25020},
		},
		{
			name: "tcp established to mysql",
			line: "  12: 0A00020F:C350 0B00020A:0CEA 01 00000000:00000000 00:00000000 00000000  1000        0 777 1 0 20 4 30 10 -1",
			want: netEntry{Local: inet("15.2.0.10:50000"), Peer: inet("10.2.0.11:3306"), State: "ESTABLISHED", Inode: 777},
		},
		{
			name: "time wait has no socket",
			line: "   2: 0100007F:970B 0100007F:9D86 06 00000000:00000000 03:000015E4 00000000     0        0 0 3 0000000006b9bb7b",
			want: netEntry{Local: inet("127.0.0.1:38667"), Peer: inet("127.0.0.1:40326"), State: "TIME_WAIT"},
		},
		{
			name: "tcp6 loopback",
			line: "   1: 00000000000000000000000001000000:96E4 00000000000000000000000001000000:930D 01 00000000:00000000 00:00000000 00000000     0        0 25026 1 00000000c34ee331 20 0 0 10 -1",
			want: netEntry{Local: inet("[::1]:38628"), Peer: inet("[::1]:37645"), State: "ESTABLISHED", Inode: 25026},
		},
		{
			name: "tcp6 global address",
			line: "   0: B80D0120000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1 0 100 0 0 10 0",
			want: netEntry{Local: inet("[2001:db8::1]:443"), State: "LISTEN", Inode: 5},
		},
		{
			name: "tcp6 v4-mapped peer is reported as inet",
			line: "   0: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 6 1 0 20 0 0 10 -1",
			want: netEntry{Local: inet("127.0.0.1:8080"), Peer: inet("127.0.0.1:54321"), State: "ESTABLISHED", Inode: 6},
		},
		{
			name: "udp unconnected",
			line: " 9284: 0100007F:88A4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 25028 2 00000000eac07182 0",
			udp:  true,
			want: netEntry{Local: inet("127.0.0.1:34980"), State: "UNCONN", Inode: 25028},
		},
		{
			name: "unknown state code",
			line: "   0: 0100007F:0001 00000000:0000 1F 00000000:00000000 00:00000000 00000000     0        0 9 1 0",
			want: netEntry{Local: inet("127.0.0.1:1"), State: "UNKNOWN(1f)", Inode: 9},
		},
		{name: "header", line: "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode", wantErr: true},
		{name: "short", line: "0: 0100007F:0001 00000000:0000 0A", wantErr: true},
		{name: "odd address", line: "0: 0100007:0001 00000000:0000 0A 0:0 0:0 0 0 0 1", wantErr: true},
		{name: "no port", line: "0: 0100007F 00000000:0000 0A 0:0 0:0 0 0 0 1", wantErr: true},
		{name: "port too big", line: "0: 0100007F:10000 00000000:0000 0A 0:0 0:0 0 0 0 1", wantErr: true},
		{name: "bad inode", line: "0: 0100007F:0001 00000000:0000 0A 0:0 0:0 0 0 0 x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseInetLine(tt.line, tt.udp)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseUnixLine(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    netEntry
		wantErr bool
	}{
		{
			name: "listening, path with spaces",
			line: "000000005219b13f: 00000002 00000000 00010000 0001 01 25031 /tmp/a b  c.sock",
			want: netEntry{Local: unixAddr("/tmp/a b  c.sock"), State: "LISTEN", Inode: 25031},
		},
		{
			name: "connected, unbound, padded inode",
			line: "00000000e0472b75: 00000003 00000000 00000000 0001 03  1489",
			want: netEntry{Local: unixAddr(""), State: "ESTABLISHED", Inode: 1489},
		},
		{
			name: "abstract datagram",
			line: "0000000014f88600: 00000002 00000000 00000000 0002 01 25034 @snag-abstract",
			want: netEntry{Local: unixAddr("@snag-abstract"), State: "UNCONN", Inode: 25034},
		},
		{
			name: "unknown state",
			line: "0: 00000002 00000000 00000000 0001 09 7",
			want: netEntry{Local: unixAddr(""), State: "UNKNOWN(09)", Inode: 7},
		},
		{name: "header", line: "Num       RefCount Protocol Flags    Type St Inode Path", wantErr: true},
		{name: "short", line: "0: 00000002 00000000", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseUnixLine(tt.line)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// A broken tcp table is an error; a unix line that does not parse is a
// path with a newline in it and is skipped.
func TestSocketsTableErrors(t *testing.T) {
	root := t.TempDir()
	pidDir := filepath.Join(root, "7")
	for _, d := range []string{"fd", "net"} {
		if err := os.MkdirAll(filepath.Join(pidDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("socket:[42]", filepath.Join(pidDir, "fd", "3")); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(pidDir, "net", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("unix", "Num RefCount Protocol Flags Type St Inode Path\n"+
		"0: 00000002 00000000 00010000 0001 01 42 /tmp/new\n"+
		"line\n")
	sfs := FS{Root: root}
	socks, err := sfs.Sockets(7)
	if err != nil {
		t.Fatal(err)
	}
	if len(socks) != 1 || socks[0].Proto != "unix" || socks[0].Local.Path != "/tmp/new" {
		t.Errorf("got %+v", socks)
	}
	write("tcp", "header\n0: garbage\n")
	if _, err := sfs.Sockets(7); err == nil || !strings.Contains(err.Error(), "net/tcp") {
		t.Errorf("broken tcp table: err = %v", err)
	}
}

// TestSocketsLive reads this test process's own sockets from /proc.
func TestSocketsLive(t *testing.T) {
	if _, err := os.Stat("/proc/self/net/tcp"); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	lport := uint16(ln.Addr().(*net.TCPAddr).Port)
	cport := uint16(conn.LocalAddr().(*net.TCPAddr).Port)

	socks, err := Default.Sockets(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var sawListen, sawConn bool
	for _, s := range socks {
		switch {
		case s.Proto == "tcp" && s.State == "LISTEN" && s.Local == inet(ln.Addr().String()):
			sawListen = true
		case s.Proto == "tcp" && s.State == "ESTABLISHED" && s.Local.Port == cport && s.Peer.Port == lport &&
			s.Peer.IP == netip.MustParseAddr("127.0.0.1"):
			sawConn = true
			flags, err := Default.FDFlags(os.Getpid(), s.FD)
			// The Go runtime makes every socket non-blocking.
			if err != nil || flags&0o4000 == 0 {
				t.Errorf("FDFlags(%d) = %#o, %v, want O_NONBLOCK", s.FD, flags, err)
			}
		}
	}
	if !sawListen || !sawConn {
		t.Errorf("listener on port %d found: %v, client from port %d found: %v, in %+v", lport, sawListen, cport, sawConn, socks)
	}
}

func TestJoinPeers(t *testing.T) {
	socks, err := testFS.Sockets(fixturePID)
	if err != nil {
		t.Fatal(err)
	}
	blocked := []model.BlockedState{
		{PID: fixturePID, TID: fixtureWorker, Syscall: "recvfrom", FD: 5},
		{PID: fixturePID, TID: fixturePID, Syscall: "clock_nanosleep", FD: -1},
		{PID: fixtureChild, TID: fixtureChild, Syscall: "read", FD: 5}, // other process
	}
	JoinPeers(blocked, socks)
	if got := blocked[0].Peer; got != inet("127.0.0.1:35016") {
		t.Errorf("worker peer = %v", got)
	}
	if !blocked[1].Peer.IsZero() || !blocked[2].Peer.IsZero() {
		t.Errorf("peers set where no socket matches: %+v", blocked[1:])
	}
}

func BenchmarkSocketsFixture(b *testing.B) {
	for b.Loop() {
		if _, err := testFS.Sockets(fixturePID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseInetLine(b *testing.B) {
	const line = "   1: 00000000000000000000000001000000:96E4 00000000000000000000000001000000:930D 01 00000000:00000000 00:00000000 00000000     0        0 25026 1 00000000c34ee331 20 0 0 10 -1"
	for b.Loop() {
		if _, err := parseInetLine(line, false); err != nil {
			b.Fatal(err)
		}
	}
}
