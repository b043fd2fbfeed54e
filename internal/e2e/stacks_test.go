//go:build linux

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snagtrace/snag/internal/testutil"
)

const pollProgram = `#include <poll.h>
__attribute__((noinline)) int c(int n) { int r = 0; for (int i = 0; i < n; i++) r += poll(0, 0, 30); return r; }
__attribute__((noinline)) int b(int n) { return c(n) + 1; }
__attribute__((noinline)) int a(int n) { return b(n) + 1; }
int main(void) { return a(5) == 2 ? 0 : 1; }
`

// A program without frame pointers blocking in poll through libc: the
// kernel's frame-pointer walk cannot get past libc, so the frames above it
// come from unwinding the copied stack with .eh_frame.
func TestStackThroughCodeWithoutFramePointers(t *testing.T) {
	testutil.RequireBPF(t)
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed")
	}
	dir := t.TempDir()
	src, prog := filepath.Join(dir, "prog.c"), filepath.Join(dir, "prog")
	os.WriteFile(src, []byte(pollProgram), 0o644)
	if out, err := exec.Command("gcc", "-O1", "-fomit-frame-pointer", "-fasynchronous-unwind-tables", "-o", prog, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	folded := filepath.Join(dir, "out.folded")
	if out, err := exec.Command(bin("snag"), "run", "-o", folded, "--", prog).CombinedOutput(); err != nil {
		t.Fatalf("snag run: %v\n%s", err, out)
	}
	b, err := os.ReadFile(folded)
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, ";poll ") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no poll stack in the folded output:\n%s", b)
	}
	want := "main (prog);a (prog);b (prog);c (prog);poll (libc.so.6);poll "
	if !strings.Contains(line, want) {
		t.Errorf("poll's stack is\n  %s\nwant it to contain\n  %s", line, want)
	}
}
