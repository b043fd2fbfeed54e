package symbolize

import (
	"crypto/sha1"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/elfx"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/procfs"
)

const libSrc = `
static int __attribute__((noinline)) hidden_helper(int x) { return x * 3 + 1; }
int __attribute__((noinline)) exported_first(int x) { return hidden_helper(x) + 2; }
int __attribute__((noinline)) exported_second(int x) { return exported_first(x) - 1; }
`

const base = 0x7f0000000000

// buildLib compiles libSrc into dir/name, stripped or not, and returns its
// path and its function symbols from .symtab of an unstripped build.
func buildLib(t *testing.T, dir, name string, strip bool) (string, map[string]elf.Symbol) {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed")
	}
	src := filepath.Join(dir, "lib.c")
	if err := os.WriteFile(src, []byte(libSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, name+".full")
	// Each library gets its own build ID: the same code stripped and
	// unstripped would otherwise share one, and with it a cache entry.
	args := []string{"-O1", "-shared", "-fPIC", fmt.Sprintf("-Wl,--build-id=0x%x", sha1.Sum([]byte(name))), "-o", full, src}
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	f, err := elf.Open(full)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	bySym := make(map[string]elf.Symbol)
	for _, s := range syms {
		bySym[s.Name] = s
	}
	out := filepath.Join(dir, name)
	if strip {
		if o, err := exec.Command("strip", "-o", out, full).CombinedOutput(); err != nil {
			t.Fatalf("strip: %v\n%s", err, o)
		}
	} else if err := os.Rename(full, out); err != nil {
		t.Fatal(err)
	}
	return out, bySym
}

// fakeProc is a /proc with processes whose maps and root files the test
// controls.
type fakeProc struct {
	t    *testing.T
	root string
}

func newFakeProc(t *testing.T) *fakeProc { return &fakeProc{t: t, root: t.TempDir()} }

func (p *fakeProc) fs() procfs.FS { return procfs.FS{Root: p.root} }

// maps writes pid's maps, one line per mapping of a whole file from offset 0.
func (p *fakeProc) maps(pid int, lines ...string) {
	dir := filepath.Join(p.root, fmt.Sprint(pid))
	if err := os.MkdirAll(filepath.Join(dir, "root"), 0o755); err != nil {
		p.t.Fatal(err)
	}
	var text string
	for _, l := range lines {
		text += l + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "maps"), []byte(text), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// link makes path (as pid sees it) lead to file; rel is relative to the
// pid's directory ("root/usr/lib/x.so", "map_files/…"). Under root/ the
// file itself is put in place (a hard link): paths resolve inside the
// process's root, where a symlink to a host path leads nowhere. map_files
// entries are symlinks, as the kernel's are.
func (p *fakeProc) link(pid int, rel, file string) {
	l := filepath.Join(p.root, fmt.Sprint(pid), rel)
	if err := os.MkdirAll(filepath.Dir(l), 0o755); err != nil {
		p.t.Fatal(err)
	}
	link := os.Symlink
	if strings.HasPrefix(rel, "root/") {
		link = os.Link
	}
	if err := link(file, l); err != nil {
		p.t.Fatal(err)
	}
}

func mapsLine(start uint64, path string) string {
	// No inode: the fake files are not checked against the maps line.
	return fmt.Sprintf("%x-%x r-xp 00000000 00:00 0 %s", start, start+0x10000, path)
}

func TestFrames(t *testing.T) {
	dir := t.TempDir()
	full, syms := buildLib(t, dir, "libfull.so", false)
	stripped, _ := buildLib(t, dir, "libstripped.so", true)
	first, second, helper := syms["exported_first"], syms["exported_second"], syms["hidden_helper"]
	if first.Value == 0 || second.Value == 0 || helper.Value == 0 {
		t.Fatalf("fixture symbols missing: %v %v %v", first, second, helper)
	}
	// The address right after exported_first's last byte is where a call
	// ending that function would return to.
	endOfFirst := first.Value + first.Size

	p := newFakeProc(t)
	p.maps(1, mapsLine(base, "/usr/lib/libfull.so"), mapsLine(base+0x100000, "/usr/lib/libstripped.so"),
		mapsLine(base+0x200000, "/usr/lib/libgone.so (deleted)"), mapsLine(base+0x300000, "[vdso]"))
	p.link(1, "root/usr/lib/libfull.so", full)
	p.link(1, "root/usr/lib/libstripped.so", stripped)
	p.link(1, fmt.Sprintf("map_files/%x-%x", base+0x200000, base+0x210000), full)

	tests := []struct {
		name string
		pcs  []uint64
		want model.Frame // of the last pc
	}{
		{"symtab function", []uint64{base + first.Value + 2},
			model.Frame{Function: "exported_first", Offset: 2, Module: "libfull.so", Path: "/usr/lib/libfull.so"}},
		{"symtab local function", []uint64{base + helper.Value},
			model.Frame{Function: "hidden_helper", Module: "libfull.so", Path: "/usr/lib/libfull.so"}},
		{"dynsym when stripped", []uint64{base + 0x100000 + second.Value + 1},
			model.Frame{Function: "exported_second", Offset: 1, Module: "libstripped.so", Path: "/usr/lib/libstripped.so"}},
		{"local function gone when stripped", []uint64{base + 0x100000 + helper.Value},
			model.Frame{Offset: helper.Value, Module: "libstripped.so", Path: "/usr/lib/libstripped.so"}},
		{"leaf at a boundary is the next function", []uint64{base + endOfFirst},
			model.Frame{Function: symAt(syms, endOfFirst), Module: "libfull.so", Path: "/usr/lib/libfull.so"}},
		{"return address at a boundary is the caller", []uint64{0, base + endOfFirst},
			model.Frame{Function: "exported_first", Offset: first.Size, Module: "libfull.so", Path: "/usr/lib/libfull.so"}},
		{"deleted file through map_files", []uint64{base + 0x200000 + second.Value},
			model.Frame{Function: "exported_second", Module: "libgone.so", Path: "/usr/lib/libgone.so"}},
		{"special mapping", []uint64{base + 0x300010},
			model.Frame{Module: "[vdso]", Offset: 0x10}},
		{"no mapping", []uint64{0x1234},
			model.Frame{}},
	}
	s := New(p.fs())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frames := s.Frames(1, tt.pcs)
			if len(frames) != len(tt.pcs) {
				t.Fatalf("got %d frames for %d pcs", len(frames), len(tt.pcs))
			}
			got := frames[len(frames)-1]
			want := tt.want
			want.Addr, want.Kind = tt.pcs[len(tt.pcs)-1], model.FrameNative
			got.BuildID = "" // checked below
			if got != want {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
	if f := s.Frames(1, []uint64{base + first.Value})[0]; len(f.BuildID) != 40 {
		t.Errorf("build id %q, want 20 bytes of hex", f.BuildID)
	}
}

// symAt names the function starting at v, for the boundary cases whose
// neighbour depends on how gcc laid out the code.
func symAt(syms map[string]elf.Symbol, v uint64) string {
	for n, s := range syms {
		if s.Value == v && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			return n
		}
	}
	return ""
}

func TestFramesRefreshOnMiss(t *testing.T) {
	defer func(d time.Duration) { elfx.MissRefreshInterval = d }(elfx.MissRefreshInterval)
	elfx.MissRefreshInterval = 0 // the simulated dlopen comes right after the first read
	dir := t.TempDir()
	full, syms := buildLib(t, dir, "libfull.so", false)
	p := newFakeProc(t)
	p.maps(1, mapsLine(base, "/usr/lib/libfull.so"))
	p.link(1, "root/usr/lib/libfull.so", full)
	p.link(1, "root/usr/lib/libdl.so", full)
	s := New(p.fs())
	pc := base + 0x100000 + syms["exported_first"].Value
	if f := s.Frames(1, []uint64{pc})[0]; f.Module != "" {
		t.Fatalf("before dlopen: %+v", f)
	}
	// The process dlopen()s a library: the next miss re-reads the maps.
	p.maps(1, mapsLine(base, "/usr/lib/libfull.so"), mapsLine(base+0x100000, "/usr/lib/libdl.so"))
	if f := s.Frames(1, []uint64{pc})[0]; f.Function != "exported_first" || f.Module != "libdl.so" {
		t.Fatalf("after dlopen: %+v", f)
	}
	// After Forget the process's maps are read afresh.
	s.Forget(1)
	p.maps(1, mapsLine(base, "/usr/lib/libfull.so"))
	if f := s.Frames(1, []uint64{pc})[0]; f.Module != "" {
		t.Fatalf("after Forget and unmap: %+v", f)
	}
}

func TestCacheByBuildID(t *testing.T) {
	dir := t.TempDir()
	full, syms := buildLib(t, dir, "libfull.so", false)
	// A copy is another inode with the same build ID, as the same library
	// in two containers is.
	b, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(dir, "copy.so")
	if err := os.WriteFile(cp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	p := newFakeProc(t)
	p.maps(1, mapsLine(base, "/usr/lib/libfull.so"))
	p.link(1, "root/usr/lib/libfull.so", full)
	p.maps(2, mapsLine(base, "/lib/libother.so"))
	p.link(2, "root/lib/libother.so", cp)
	s := New(p.fs())
	pc := base + syms["exported_second"].Value
	f1 := s.Frames(1, []uint64{pc})[0]
	f2 := s.Frames(2, []uint64{pc})[0]
	if f1.Function != "exported_second" || f2.Function != "exported_second" || f2.Module != "libother.so" {
		t.Fatalf("frames %+v %+v", f1, f2)
	}
	if s.res.Parsed != 1 {
		t.Errorf("parsed %d files, want 1 (second hit by build id)", s.res.Parsed)
	}
	s.Frames(1, []uint64{pc})
	if s.res.Parsed != 1 {
		t.Errorf("parsed %d files after a repeat, want 1", s.res.Parsed)
	}
}

func TestFunctionsTable(t *testing.T) {
	fn := func(name string, v, size uint64, bind elf.SymBind) elf.Symbol {
		return elf.Symbol{Name: name, Value: v, Size: size, Info: elf.ST_INFO(bind, elf.STT_FUNC), Section: 1}
	}
	tab := &symtab{syms: functions([]elf.Symbol{
		fn("__poll", 0x100, 0x20, elf.STB_GLOBAL),
		fn("poll", 0x100, 0x20, elf.STB_WEAK),
		fn("local_alias", 0x100, 0x20, elf.STB_LOCAL),
		fn("sizeless", 0x200, 0, elf.STB_GLOBAL),
		fn("next", 0x280, 0x10, elf.STB_GLOBAL),
		{Name: "data", Value: 0x300, Size: 8, Info: elf.ST_INFO(elf.STB_GLOBAL, elf.STT_OBJECT), Section: 1},
		{Name: "undef", Value: 0, Info: elf.ST_INFO(elf.STB_GLOBAL, elf.STT_FUNC)},
	})}
	tests := []struct {
		v    uint64
		want string
	}{
		{0xff, ""}, {0x100, "poll"}, {0x11f, "poll"}, {0x120, ""}, {0x200, "sizeless"},
		{0x27f, "sizeless"}, {0x280, "next"}, {0x290, ""}, {0x300, ""},
	}
	for _, tt := range tests {
		s, _ := tab.find(tt.v)
		if s.name != tt.want {
			t.Errorf("find(%#x) = %q, want %q", tt.v, s.name, tt.want)
		}
	}
}
