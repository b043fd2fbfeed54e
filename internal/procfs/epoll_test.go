package procfs

import (
	"github.com/snagtrace/snag/internal/safefile"

	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snagtrace/snag/internal/model"
)

func TestParseEpollFDInfo(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     []EpollEntry
		wantErr  bool
	}{
		{name: "empty set", in: "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\n"},
		{
			name: "listener and edge-triggered pipe",
			in: "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\n" +
				"tfd:        4 events:       19 data:                4  pos:0 ino:6e4e sdev:9\n" +
				"tfd:        5 events: 80000019 data:     7f3a00001234  pos:0 ino:6e4f sdev:f\n",
			want: []EpollEntry{{FD: 4, Events: 0x19, Data: 4}, {FD: 5, Events: 0x80000019, Data: 0x7f3a00001234}},
		},
		{
			name: "older kernels without pos, ino, sdev",
			in:   "tfd:       12 events:        1 data:  ffffffffffffffff\n",
			want: []EpollEntry{{FD: 12, Events: 1, Data: 1<<64 - 1}},
		},
		{name: "events not hex", in: "tfd: 4 events: zz data: 4\n", wantErr: true},
		{name: "negative fd", in: "tfd: -4 events: 1 data: 4\n", wantErr: true},
		{name: "missing data", in: "tfd: 4 events: 1\n", wantErr: true},
		{name: "data overflows", in: "tfd: 4 events: 1 data: 1ffffffffffffffff\n", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEpollFDInfo([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseEpollFDInfoBounded(t *testing.T) {
	var b strings.Builder
	for i := range maxEpollEntries + 10 {
		b.WriteString("tfd: " + strconv.Itoa(i) + " events: 1 data: 0\n")
	}
	got, err := ParseEpollFDInfo([]byte(b.String()))
	if err != nil || len(got) != maxEpollEntries {
		t.Fatalf("got %d entries, %v; want %d", len(got), err, maxEpollEntries)
	}
}

func FuzzParseEpollFDInfo(f *testing.F) {
	f.Add("pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\ntfd:        4 events:       19 data:                4  pos:0 ino:6e4e sdev:9\n")
	f.Add("tfd: 5 events: 80000019 data: 5\n")
	f.Fuzz(func(t *testing.T, s string) {
		es, err := ParseEpollFDInfo([]byte(s))
		if len(es) > maxEpollEntries {
			t.Fatalf("%d entries", len(es))
		}
		for _, e := range es {
			if e.FD < 0 {
				t.Fatalf("negative fd in %+v", e)
			}
		}
		if err == nil && len(es) > 0 && !strings.Contains(s, "tfd:") {
			t.Fatal("entries without a tfd line")
		}
	})
}

func TestKindOf(t *testing.T) {
	for target, want := range map[string]model.FDKind{
		"":                       model.FDUnknown,
		"socket:[25020]":         model.FDSocket,
		"pipe:[25009]":           model.FDPipe,
		"/dev/null":              model.FDFile,
		"/var/lib/app db.sqlite": model.FDFile,
		"anon_inode:[eventfd]":   model.FDOther,
		"anon_inode:[eventpoll]": model.FDOther,
	} {
		if got := KindOf(target); got != want {
			t.Errorf("KindOf(%q) = %v, want %v", target, got, want)
		}
	}
}

func TestOpenFilesFixture(t *testing.T) {
	fds, err := testFS.FDs(fixturePID)
	if err != nil {
		t.Fatal(err)
	}
	if len(fds) != 21 || fds[0].FD != 0 || fds[len(fds)-1].FD != 251 {
		t.Fatalf("FDs = %+v", fds)
	}
	got := OpenFiles(fixturePID, fds)
	want := []model.OpenFile{
		{PID: fixturePID, FD: 0, Path: "/dev/null"},
		{PID: fixturePID, FD: 1, Path: "/tmp/h1cap/out.txt"},
		{PID: fixturePID, FD: 2, Path: "/tmp/h1cap/err.txt"},
		{PID: fixturePID, FD: 10, Path: "/dev/null"},
		{PID: fixturePID, FD: 251, Path: "pipe:[25009]"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("OpenFiles = %+v, want %+v", got, want)
	}
}

func TestOpenFilesBounded(t *testing.T) {
	fds := make([]FD, MaxOpenFiles+5)
	for i := range fds {
		fds[i] = FD{FD: i, Target: "/f"}
	}
	fds[3].Target = "socket:[1]"
	got := OpenFiles(1, fds)
	if len(got) != MaxOpenFiles || got[3].FD != 4 {
		t.Fatalf("kept %d files, fourth is fd %d", len(got), got[3].FD)
	}
}

// epollTree builds a proc root with one process whose fd 7 is an epoll
// instance watching a listening socket, a connection, a pipe, an eventfd
// and an fd closed since it was added.
func epollTree(t *testing.T) (FS, int) {
	t.Helper()
	root := t.TempDir()
	const pid = 4242
	dir := filepath.Join(root, strconv.Itoa(pid))
	for _, d := range []string{"fd", "fdinfo"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[int]string{
		3: "socket:[100]", 4: "socket:[101]", 5: "pipe:[55]", 6: "anon_inode:[eventfd]",
		7: "anon_inode:[eventpoll]", 8: "/var/log/app.log",
	}
	for fd, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, "fd", strconv.Itoa(fd))); err != nil {
			t.Fatal(err)
		}
	}
	info := "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1057\n" +
		"tfd:        3 events:       19 data:                3  pos:0 ino:64 sdev:8\n" +
		"tfd:        4 events:       19 data:                4  pos:0 ino:65 sdev:8\n" +
		"tfd:        5 events: 80000019 data:                5  pos:0 ino:37 sdev:f\n" +
		"tfd:        6 events:       19 data:                6  pos:0 ino:41 sdev:f\n" +
		"tfd:       99 events:       19 data:               63  pos:0 ino:42 sdev:f\n"
	if err := os.WriteFile(filepath.Join(dir, "fdinfo", "7"), []byte(info), 0o644); err != nil {
		t.Fatal(err)
	}
	return FS{Root: root}, pid
}

func TestEpollSets(t *testing.T) {
	fs, pid := epollTree(t)
	fds, err := fs.FDs(pid)
	if err != nil {
		t.Fatal(err)
	}
	peer := model.Addr{Family: model.FamilyInet, IP: netip.MustParseAddr("10.0.0.5"), Port: 3306}
	socks := []model.Socket{
		{PID: pid, FD: 3, Inode: 100, Proto: "tcp", State: "LISTEN"},
		{PID: pid, FD: 4, Inode: 101, Proto: "tcp", State: "ESTABLISHED", Peer: peer},
		{PID: pid + 1, FD: 5, Inode: 102, Proto: "tcp", State: "LISTEN"}, // another process's fd 5
	}
	sets, err := fs.EpollSets(pid, fds, socks, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []model.EpollSet{{PID: pid, EPFD: 7, End: true, FDs: []model.EpollFD{
		{FD: 3, Kind: model.FDSocket, Listening: true},
		{FD: 4, Kind: model.FDSocket, Peer: peer},
		{FD: 5, Kind: model.FDPipe, Path: "pipe:[55]"},
		{FD: 6, Kind: model.FDOther, Path: "anon_inode:[eventfd]"},
		{FD: 99},
	}}}
	if !reflect.DeepEqual(sets, want) {
		t.Errorf("EpollSets =\n%+v\nwant\n%+v", sets, want)
	}
	files := OpenFiles(pid, fds)
	if len(files) != 4 || files[3].Path != "/var/log/app.log" {
		t.Errorf("OpenFiles = %+v", files)
	}
}

func TestEpollSetsUnreadable(t *testing.T) {
	fs, pid := epollTree(t)
	fds := []FD{{FD: 9, Target: "anon_inode:[eventpoll]"}} // no fdinfo/9
	sets, err := fs.EpollSets(pid, fds, nil, false)
	if len(sets) != 0 || err != nil {
		// The process exists, so a missing fdinfo is an fd closed meanwhile.
		t.Errorf("got %+v, %v", sets, err)
	}
	os.WriteFile(filepath.Join(fs.Root, strconv.Itoa(pid), "fdinfo", "9"), []byte("tfd: x events: 1 data: 1\n"), 0o644)
	if _, err := fs.EpollSets(pid, fds, nil, false); err == nil || !strings.Contains(err.Error(), "fdinfo/9") {
		t.Errorf("err = %v, want the bad file named", err)
	}
}

func TestListenersFixture(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	addrs := []model.Addr{
		{Family: model.FamilyInet, IP: lo, Port: 0x93F5},                               // 127.0.0.1:37877, fd 3 of the fixture
		{Family: model.FamilyInet6, IP: netip.MustParseAddr("::1"), Port: 0x930D},      // [::1]:37645, fd 6
		{Family: model.FamilyUnix, Path: "/tmp/h1cap/snag fixture.sock"},               // fd 13
		{Family: model.FamilyInet, IP: lo, Port: 0x88C8},                               // a client's port: nothing listens
		{Family: model.FamilyInet, IP: netip.MustParseAddr("192.0.2.1"), Port: 0x93F5}, // not local
		{Family: model.FamilyUnix, Path: "/run/elsewhere.sock"},                        // no such listener
		{Family: model.FamilyInet, IP: lo, Port: 0x46A0},                               // listens, held by no process here
	}
	got, err := testFS.Listeners(fixturePID, addrs)
	if err != nil {
		t.Fatal(err)
	}
	const comm = "py (srv) x"
	want := []model.Listener{
		{Addr: addrs[0], PID: fixturePID, Comm: comm},
		{Addr: addrs[1], PID: fixturePID, Comm: comm},
		{Addr: addrs[2], PID: fixturePID, Comm: comm},
		{Addr: addrs[6]},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Listeners =\n%+v\nwant\n%+v", got, want)
	}
}

func TestListenerFor(t *testing.T) {
	v4 := func(s string, port uint16) model.Addr {
		ip := netip.MustParseAddr(s)
		fam := model.FamilyInet
		if ip.Is6() {
			fam = model.FamilyInet6
		}
		return model.Addr{Family: fam, IP: ip, Port: port}
	}
	listen := []netEntry{
		{Local: v4("0.0.0.0", 80), State: "LISTEN", Inode: 1},
		{Local: v4("127.0.0.1", 80), State: "LISTEN", Inode: 2},
		{Local: v4("::", 6379), State: "LISTEN", Inode: 3},
		{Local: v4("10.1.2.3", 5432), State: "LISTEN", Inode: 4},
		{Local: model.Addr{Family: model.FamilyUnix, Path: "@abstract"}, State: "LISTEN", Inode: 5},
	}
	local := map[netip.Addr]bool{netip.MustParseAddr("10.1.2.3"): true}
	for _, tt := range []struct {
		name string
		a    model.Addr
		want uint64
	}{
		{"exact beats wildcard", v4("127.0.0.1", 80), 2},
		{"wildcard serves another loopback", v4("127.0.0.2", 80), 1},
		{"wildcard serves a local address", v4("10.1.2.3", 80), 1},
		{"IPv6 wildcard serves IPv4", v4("127.0.0.1", 6379), 3},
		{"IPv4-mapped peer", v4("::ffff:127.0.0.1", 6379), 3},
		{"IPv4 wildcard does not serve IPv6", v4("::1", 80), 0},
		{"specific address", v4("10.1.2.3", 5432), 4},
		{"remote address", v4("10.9.9.9", 80), 0},
		{"no port", v4("127.0.0.1", 0), 0},
		{"abstract unix", model.Addr{Family: model.FamilyUnix, Path: "@abstract"}, 5},
		{"unnamed unix", model.Addr{Family: model.FamilyUnix}, 0},
		{"no address", model.Addr{}, 0},
	} {
		got, ok := listenerFor(tt.a, listen, local)
		if got != tt.want || ok != (tt.want != 0) {
			t.Errorf("%s: listenerFor(%v) = %d, %v, want %d", tt.name, tt.a, got, ok, tt.want)
		}
	}
}

func TestOpenInRootLive(t *testing.T) {
	requireProc(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "lib.so")
	if err := os.WriteFile(file, []byte("ELF"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.so")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	self := os.Getpid()
	f, err := Default.OpenInRoot(self, file)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	// A FIFO nobody writes to would block a plain open for ever.
	done := make(chan error, 1)
	go func() {
		f, err := Default.OpenInRoot(self, fifo)
		if f != nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, safefile.ErrNotRegular) {
			t.Errorf("FIFO: err = %v, want safefile.ErrNotRegular", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("opening a FIFO blocked")
	}
	if _, err := Default.OpenInRoot(self, dir); !errors.Is(err, safefile.ErrNotRegular) {
		t.Errorf("directory: err = %v, want safefile.ErrNotRegular", err)
	}
	exe, err := Default.OpenExe(self)
	if err != nil {
		t.Fatal(err)
	}
	exe.Close()
}

func TestFDsLive(t *testing.T) {
	requireProc(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fds, err := Default.FDs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(fds, func(f FD) bool { return f.FD == int(r.Fd()) })
	if i < 0 || KindOf(fds[i].Target) != model.FDPipe {
		t.Errorf("pipe fd %d not listed as a pipe in %+v", r.Fd(), fds)
	}
}
