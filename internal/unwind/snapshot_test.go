package unwind

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/snagtrace/snag/internal/procfs"
)

// snapshot is a recorded stop of the fixture: registers, the copied top of
// its stack, its maps, and gdb's backtrace as the truth to compare with.
type snapshot struct {
	PC, SP, FP uint64
	Exe        string   // path of the fixture binary at capture time
	Backtrace  []string // gdb's function names, innermost first
	Maps       string   `json:"-"`
	Stack      []byte   `json:"-"`
}

const stackCopySize = 16 << 10

// gdbScript stops the inferior with stop (gdb commands), then dumps state
// to dir through gdb's Python.
func gdbScript(stop, dir string) string {
	return stop + `
run
python
import gdb, json
inf = gdb.selected_inferior()
sp = int(gdb.parse_and_eval("$sp")) & (2**64-1)
maps = open("/proc/%d/maps" % inf.pid).read()
end = sp + ` + fmt.Sprint(stackCopySize) + `
for line in maps.splitlines():
    lo, hi = [int(x, 16) for x in line.split()[0].split("-")]
    if lo <= sp < hi:
        end = min(end, hi)
mem = bytes(inf.read_memory(sp, end - sp))
bt = []
f = gdb.newest_frame()
while f is not None:
    bt.append(f.name() or "??")
    f = f.older()
d = {"PC": int(gdb.parse_and_eval("$pc")) & (2**64-1), "SP": sp,
     "FP": int(gdb.parse_and_eval("$rbp")) & (2**64-1), "Backtrace": bt,
     "Exe": inf.progspace.filename}
open("` + dir + `/snapshot.json", "w").write(json.dumps(d, indent=1))
open("` + dir + `/maps", "w").write(maps)
open("` + dir + `/stack.bin", "wb").write(mem)
end
kill
`
}

// capture builds testdata/fixture.c with cflags into dir/fixture, runs it
// under gdb stopped by stop, and loads the snapshot. It skips when the
// tools or ptrace are not available.
func capture(t testing.TB, dir string, cflags []string, stop string) *snapshot {
	t.Helper()
	for _, tool := range []string{"gcc", "gdb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	src, err := filepath.Abs("testdata/fixture.c")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "fixture")
	args := append(append([]string{}, cflags...), "-o", bin, src)
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %v: %v\n%s", args, err, out)
	}
	script := filepath.Join(dir, "script.gdb")
	if err := os.WriteFile(script, []byte(gdbScript(stop, dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("gdb", "-nx", "--batch", "-ex", "set debuginfod enabled off", "-ex", "set pagination off", "-ex", "set backtrace past-main on", "-x", script, bin)
	out, err := cmd.CombinedOutput()
	if _, serr := os.Stat(filepath.Join(dir, "snapshot.json")); serr != nil {
		t.Skipf("gdb could not capture a snapshot (ptrace not permitted?): %v\n%s", err, out)
	}
	return loadSnapshot(t, dir)
}

func loadSnapshot(t testing.TB, dir string) *snapshot {
	t.Helper()
	var s snapshot
	b, err := os.ReadFile(filepath.Join(dir, "snapshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	maps, err := os.ReadFile(filepath.Join(dir, "maps"))
	if err != nil {
		t.Fatal(err)
	}
	s.Maps = string(maps)
	if s.Stack, err = os.ReadFile(filepath.Join(dir, "stack.bin")); err != nil {
		t.Fatal(err)
	}
	return &s
}

// procRoot lays out a fake /proc for the snapshot as pid 1: its maps, and
// map_files/ links, as the kernel's, from each file mapping to exe (the
// binary of the snapshot) for the fixture and to the same path on this
// host for every other file. (The maps name the inodes the snapshot saw,
// so the paths under root/ would not pass as the mapped files.)
func procRoot(t testing.TB, s *snapshot, exe string) procfs.FS {
	t.Helper()
	root := t.TempDir()
	pdir := filepath.Join(root, "1")
	if err := os.MkdirAll(filepath.Join(pdir, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pdir, "maps"), []byte(s.Maps), 0o644); err != nil {
		t.Fatal(err)
	}
	exe, err := filepath.Abs(exe)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(s.Maps))
	for sc.Scan() {
		m, err := procfs.ParseMaps(strings.NewReader(sc.Text()))
		if err != nil || len(m) != 1 || !strings.HasPrefix(m[0].Path, "/") {
			continue
		}
		link := filepath.Join(pdir, "map_files", fmt.Sprintf("%x-%x", m[0].Start, m[0].End))
		target := m[0].Path
		if m[0].Path == s.Exe {
			target = exe
		}
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	return procfs.FS{Root: root}
}

var fixtureFuncs = regexp.MustCompile(`^(a|b|c|main)$`)

// fixtureFrames keeps the fixture's own function names, in order.
func fixtureFrames(names []string) []string {
	var out []string
	for _, n := range names {
		if fixtureFuncs.MatchString(n) {
			out = append(out, n)
		}
	}
	return out
}
