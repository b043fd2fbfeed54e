package cpython

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/procfs"
)

const python = "/usr/bin/python3.11"

// A live CPython 3.11 prints the addresses of two code objects (id() is
// the address in CPython); the reader must name them from its memory.
func TestReadCodeObjectsOfALiveInterpreter(t *testing.T) {
	if _, err := os.Stat(python); err != nil {
		t.Skip("python3.11 not installed")
	}
	script := `
import sys, time
class Cursor:
    def exécuter(self): pass
def handle_request(): pass
print(id(Cursor.exécuter.__code__), id(handle_request.__code__), flush=True)
sys.stdin.read()
`
	cmd := exec.Command(python, "-c", script)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	var method, fn uint64
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscan(line, &method, &fn); err != nil {
		t.Fatalf("python said %q: %v", line, err)
	}

	p, err := Detect(procfs.Default, cmd.Process.Pid)
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	if p.Version != "3.11" {
		t.Errorf("version %q, want 3.11", p.Version)
	}
	if want := symbol(t, python, "_PyRuntime"); p.Runtime != want {
		t.Errorf("_PyRuntime at %#x, want %#x", p.Runtime, want)
	}
	r := NewReader(procfs.Default)
	r.Add(p)
	got := r.Frames(p.PID, []uint64{method, fn}, nil)
	if got[0].Function != "Cursor.exécuter" || got[0].Module != "<string>" {
		t.Errorf("method frame %+v, want Cursor.exécuter in <string> (a non-ASCII name)", got[0])
	}
	if got[1].Function != "handle_request" || got[1].Line != 5 {
		t.Errorf("function frame %+v, want handle_request defined at line 5", got[1])
	}
	r.Forget(p.PID)
	if f := r.Frames(p.PID, []uint64{fn}, nil); f != nil {
		t.Errorf("frames of a forgotten process: %+v", f)
	}
}

func TestDetectNotPython(t *testing.T) {
	if _, err := Detect(procfs.Default, os.Getpid()); err != ErrNotPython {
		t.Errorf("Detect(the test itself) = %v, want ErrNotPython", err)
	}
}

func symbol(t *testing.T, path, name string) uint64 {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, _ := f.DynamicSymbols()
	for _, s := range syms {
		if s.Name == name {
			return s.Value
		}
	}
	t.Fatalf("no %s in %s", name, path)
	return 0
}

// A process whose mapped python3.11 path now leads to a FIFO (with no
// map_files to fall back on, as in this fake /proc) is reported at once:
// opening the FIFO for reading would wait for a writer forever.
func TestDetectFIFOInsteadOfPython(t *testing.T) {
	root := t.TempDir()
	pdir := filepath.Join(root, "7")
	if err := os.MkdirAll(filepath.Join(pdir, "root/usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	maps := "555555554000-555555556000 r-xp 00000000 00:00 0 /usr/bin/python3.11\n"
	if err := os.WriteFile(filepath.Join(pdir, "maps"), []byte(maps), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(pdir, "root/usr/bin/python3.11"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := Detect(procfs.FS{Root: root}, 7)
	if time.Since(start) > time.Second {
		t.Errorf("Detect took %s", time.Since(start))
	}
	if err == nil || errors.Is(err, ErrNotPython) || !strings.Contains(err.Error(), "FIFO") {
		t.Errorf("Detect = %v, want an error naming the FIFO", err)
	}
}

// A version with neither generated offsets nor a known _Py_DebugOffsets
// layout is refused with a reason the report shows, not walked.
func TestUnknownVersionRefused(t *testing.T) {
	for _, v := range []string{"3.9", "3.15"} {
		p := &Process{PID: os.Getpid(), Version: v}
		err := p.layout(procfs.Default, 0)
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "no layout known for "+v) {
			t.Errorf("python %s: %v, want ErrUnsupported naming the version", v, err)
		}
	}
}
