package perfmap

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/procfs"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		addr    uint64
		want    string // "" for no symbol
		skipped int
	}{
		{"v8 line", "7f7e75fc5b80 1b4 JS:*handleRequest /srv/app.js:5:24\n", 0x7f7e75fc5c00, "JS:*handleRequest /srv/app.js:5:24", 0},
		{"0x prefixes", "0x1000 0x10 foo\n", 0x100f, "foo", 0},
		{"end is exclusive", "1000 10 foo\n", 0x1010, "", 0},
		{"before the first", "1000 10 foo\n", 0xfff, "", 0},
		{"name with spaces", "1000 10 Lcom/acme/Foo;::bar (int)\n", 0x1000, "Lcom/acme/Foo;::bar (int)", 0},
		{"crlf", "1000 10 foo\r\n", 0x1000, "foo", 0},
		{"no trailing newline", "1000 10 foo", 0x1000, "foo", 0},
		{"later line wins", "1000 100 old\n1000 80 new\n", 0x1010, "new", 0},
		{"later overlapping line wins", "1000 100 old\n1040 10 new\n", 0x1044, "new", 0},
		{"earlier long symbol still found", "1000 1000 long\n1100 10 short\n", 0x1800, "long", 0},
		{"bad hex", "zz 10 foo\n1000 10 ok\n", 0x1000, "ok", 1},
		{"zero size", "1000 0 foo\n", 0x1000, "", 1},
		{"wraps around", "ffffffffffffff00 1000 foo\n", 0xffffffffffffff10, "", 1},
		{"no name", "1000 10\n1000 10 \n", 0x1000, "", 2},
		{"control characters", "1000 10 foo\x1b[31m\n", 0x1000, "", 1},
		{"blank lines", "\n\n1000 10 foo\n\n", 0x1000, "foo", 0},
		{"overlong line skipped", "1000 10 " + strings.Repeat("x", MaxLine) + "\n2000 10 ok\n", 0x2000, "ok", 0},
		{"line longer than the buffer", "1000 10 " + strings.Repeat("x", 200<<10) + "\n2000 10 ok\n", 0x1000, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := Parse(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			s, ok := tab.Find(tc.addr)
			if got := map[bool]string{true: s.Name}[ok]; got != tc.want {
				t.Errorf("Find(%#x) = %q, want %q", tc.addr, got, tc.want)
			}
			if tab.Skipped != tc.skipped {
				t.Errorf("skipped %d lines, want %d", tab.Skipped, tc.skipped)
			}
		})
	}
}

func TestFrame(t *testing.T) {
	for _, tc := range []struct {
		name string
		sym  string
		want model.Frame
	}{
		{"turbofan", "JS:*handleRequest /srv/app.js:5:24",
			model.Frame{Addr: 0x1010, Offset: 0x10, Function: "handleRequest", Module: "app.js", Path: "/srv/app.js", Line: 5, Kind: model.FrameInterpreter}},
		{"sparkplug, node's own script", "JS:^guessHandleType node:internal/util:886:25",
			model.Frame{Addr: 0x1010, Offset: 0x10, Function: "guessHandleType", Module: "node:internal/util", Path: "node:internal/util", Line: 886, Kind: model.FrameInterpreter}},
		{"anonymous", "JS:~ /srv/app.js:1:1",
			model.Frame{Addr: 0x1010, Offset: 0x10, Function: "(anonymous)", Module: "app.js", Path: "/srv/app.js", Line: 1, Kind: model.FrameInterpreter}},
		{"older V8", "LazyCompile:*serve /srv/app.js:12",
			model.Frame{Addr: 0x1010, Offset: 0x10, Function: "serve", Module: "app.js", Path: "/srv/app.js", Line: 12, Kind: model.FrameInterpreter}},
		{"getter", "JS:*get body /srv/req.js:40:3",
			model.Frame{Addr: 0x1010, Offset: 0x10, Function: "get body", Module: "req.js", Path: "/srv/req.js", Line: 40, Kind: model.FrameInterpreter}},
		{"not javascript", "Lcom/acme/Foo;::bar",
			model.Frame{Addr: 0x1010, Offset: 0x10, Function: "Lcom/acme/Foo;::bar", Module: "[jit]", Kind: model.FrameNative}},
		{"v8 stub", "Builtin:CEntry",
			model.Frame{Addr: 0x1010, Offset: 0x10, Function: "Builtin:CEntry", Module: "[jit]", Kind: model.FrameNative}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Frame(Symbol{Start: 0x1000, End: 0x1100, Name: tc.sym}, 0x1010)
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// fakeProc lays out root/PID/{status,root/tmp/perf-NSPID.map}.
func fakeProc(t *testing.T, pid, nspid int) (procfs.FS, string) {
	root := t.TempDir()
	dir := filepath.Join(root, strconv.Itoa(pid))
	os.MkdirAll(filepath.Join(dir, "root", "tmp"), 0o755)
	os.WriteFile(filepath.Join(dir, "status"), []byte(fmt.Sprintf("Name:\tnode\nNSpid:\t%d\t%d\n", pid, nspid)), 0o644)
	return procfs.FS{Root: root}, filepath.Join(dir, "root", "tmp", fmt.Sprintf("perf-%d.map", nspid))
}

func TestMapsReadsInNamespaceAndOnlyAppendedLines(t *testing.T) {
	fs, path := fakeProc(t, 4242, 7)
	os.WriteFile(path, []byte("1000 10 first\n2000 10 half"), 0o644)
	defer func(d time.Duration) { RefreshInterval = d }(RefreshInterval)
	RefreshInterval = 0
	m := New(fs)
	if s, ok := m.Lookup(4242, 0x1004); !ok || s.Name != "first" {
		t.Fatalf("Lookup = %v %v, want first", s, ok)
	}
	if _, ok := m.Lookup(4242, 0x2004); ok {
		t.Fatal("a line still being written was parsed")
	}
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("-done\n3000 10 third\n")
	f.Close()
	if s, ok := m.Lookup(4242, 0x2004); !ok || s.Name != "half-done" {
		t.Errorf("after the append Lookup = %v %v, want half-done", s, ok)
	}
	if s, ok := m.Lookup(4242, 0x3000); !ok || s.Name != "third" {
		t.Errorf("Lookup = %v %v, want third", s, ok)
	}
	if got := m.procs[4242].t.Len(); got != 3 {
		t.Errorf("%d symbols after re-reads, want 3 (each line parsed once)", got)
	}
}

func TestMapsRefreshAtMostOncePerInterval(t *testing.T) {
	fs, path := fakeProc(t, 4242, 4242)
	os.WriteFile(path, []byte("1000 10 first\n"), 0o644)
	defer func(d time.Duration) { RefreshInterval = d }(RefreshInterval)
	RefreshInterval = time.Hour
	m := New(fs)
	m.Lookup(4242, 0x1000)
	os.WriteFile(path, []byte("1000 10 first\n2000 10 second\n"), 0o644)
	if _, ok := m.Lookup(4242, 0x2000); ok {
		t.Error("a miss re-read the map within the interval")
	}
}

func TestMapsRefuseWhatIsNotARegularFile(t *testing.T) {
	fs, path := fakeProc(t, 4242, 4242)
	if err := os.Symlink("/etc/passwd", path); err != nil {
		t.Fatal(err)
	}
	m := New(fs)
	if _, ok := m.Lookup(4242, 0x1000); ok {
		t.Error("found a symbol through a symlink leading out of the root")
	}
	if m.Err(4242) == nil {
		t.Error("no error for a map leading out of the process's root")
	}
	os.Remove(path)
	os.Mkdir(path, 0o755)
	m = New(fs)
	m.Lookup(4242, 0x1000)
	if m.Err(4242) == nil {
		t.Error("no error for a directory in place of the map")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("7f7e75fc5b80 1b4 JS:*handleRequest /srv/app.js:5:24\n0x1000 0x10 foo\n"))
	f.Add([]byte("1000 100 old\n1000 80 new\nzz\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, err := Parse(strings.NewReader(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range tab.syms {
			if s.End <= s.Start {
				t.Fatalf("empty or wrapped range %+v", s)
			}
			got, ok := tab.Find(s.Start)
			if !ok || got.Start > s.Start || got.End <= s.Start {
				t.Fatalf("Find(%#x) = %+v %v, want a symbol covering it", s.Start, got, ok)
			}
			Frame(got, s.Start)
		}
	})
}
