//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/snagtrace/snag/internal/testutil"
)

// pythonStalls blocks an asyncio loop, three Python calls below its
// coroutine, in time.sleep (line 6) and in a socket's recv (line 10): on
// the main thread, then on a thread of its own. Line numbers are asserted:
// keep them where they are.
const pythonStalls = `import asyncio, socket, threading, time


def inner(kind):
    if kind == "sleep":
        time.sleep(0.2)
    else:
        a, b = socket.socketpair()
        threading.Timer(0.2, b.send, (b"x",)).start()
        a.recv(1)


def middle(kind):
    inner(kind)


def outer(kind):
    middle(kind)


async def main():
    for kind in ["sleep", "recv", "sleep", "recv"]:
        outer(kind)
        await asyncio.sleep(0.01)


asyncio.run(main())
t = threading.Thread(target=asyncio.run, args=(main(),))
t.start()
t.join()
`

// pythonFrames are the Python frames each stall's stack must hold,
// innermost first and with no other Python frame between them. time.sleep
// waits in clock_nanosleep, or in select before 3.11.
var pythonFrames = map[string][]string{
	"clock_nanosleep": {"inner (prog.py:6)", "middle (prog.py:14)", "outer (prog.py:18)", "main (prog.py:23)"},
	"pselect6":        {"inner (prog.py:6)", "middle (prog.py:14)", "outer (prog.py:18)", "main (prog.py:23)"},
	"recvfrom":        {"inner (prog.py:10)", "middle (prog.py:14)", "outer (prog.py:18)", "main (prog.py:23)"},
}

// sleepCall names both of time.sleep's syscalls in what the test saw.
func sleepCall(syscall string) string {
	if syscall == "pselect6" {
		return "clock_nanosleep"
	}
	return syscall
}

// asyncioTask is the coroutine each stall names: the task asyncio.run made
// of main(). A stripped, statically linked interpreter (the 3.14 build)
// has no names for the C frames that tell its task step from a callback.
const (
	asyncioTask       = "asyncio task main()"
	asyncioTaskOrCall = "asyncio task or callback main"
)

// checkPythonStalls runs pythonStalls under snag with python and asserts
// the Python frames and lines of both stalls, on both threads, and the
// coroutine they ran in.
func checkPythonStalls(t *testing.T, python, coroutine string) {
	t.Helper()
	dir := t.TempDir()
	prog := filepath.Join(dir, "prog.py")
	if err := os.WriteFile(prog, []byte(pythonStalls), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(dir, "prog.snag")
	r, code := snag(t, "run", "--format", "json", "--record", rec, "--", python, prog)
	if code != 0 {
		t.Fatalf("snag run: exit %d", code)
	}
	checkPythonReport(t, r, coroutine)
	// The recording, analysed once the interpreter is gone (here as on
	// another machine), names the same frames: they are resolved before
	// they are written.
	analyzed, code := snag(t, "analyze", "--format", "json", rec)
	if code != 0 {
		t.Fatalf("snag analyze: exit %d", code)
	}
	checkPythonReport(t, analyzed, coroutine)
	if !slices.EqualFunc(r.Findings, analyzed.Findings, func(a, b finding) bool { return slices.Equal(a.Stack, b.Stack) }) {
		t.Errorf("the recording's stacks differ from the live trace's:\nlive:\n%sanalyzed:\n%s", findingsText(r), findingsText(analyzed))
	}
}

func checkPythonReport(t *testing.T, r *report, coroutine string) {
	t.Helper()
	seen := map[string]bool{}
	for _, f := range r.Findings {
		want, ok := pythonFrames[f.Syscall]
		if f.Kind != "loop-stall" || !ok {
			continue
		}
		where := "main"
		if f.TID != r.Target.PID {
			where = "thread"
		}
		seen[sleepCall(f.Syscall)+" on "+where] = true
		if !containsRun(pythonOnly(f.Stack), want) {
			t.Errorf("%s on the %s thread (tid %d): stack\n  %s\nwant it to hold\n  %s", f.Syscall, where, f.TID,
				strings.Join(f.Stack, "\n  "), strings.Join(want, "\n  "))
		}
		if f.Coroutine != coroutine || !strings.Contains(f.Detail, "in "+coroutine) {
			t.Errorf("%s on the %s thread: coroutine %q, detail %q: want %s in both", f.Syscall, where, f.Coroutine, f.Detail, coroutine)
		}
	}
	for _, want := range []string{"clock_nanosleep on main", "recvfrom on main", "clock_nanosleep on thread", "recvfrom on thread"} {
		if !seen[want] {
			t.Errorf("no loop-stall for %s; findings:\n%s", want, findingsText(r))
		}
	}
	if t.Failed() && len(r.Notes) > 0 {
		t.Logf("notes: %s", strings.Join(r.Notes, "; "))
	}
}

// pythonOnly keeps the Python frames of a stack: in 3.10 each runs in a
// C call of its own, between native frames.
func pythonOnly(stack []string) []string {
	var out []string
	for _, f := range stack {
		if strings.Contains(f, ".py:") {
			out = append(out, f)
		}
	}
	return out
}

// containsRun tells whether want appears in stack as consecutive frames.
func containsRun(stack, want []string) bool {
	for i := range stack {
		if len(stack)-i >= len(want) && slices.Equal(stack[i:i+len(want)], want) {
			return true
		}
	}
	return false
}

func findingsText(r *report) string {
	var b strings.Builder
	for _, f := range r.Findings {
		b.WriteString("  " + f.Kind + " " + f.Syscall + " tid " + strconv.Itoa(f.TID) + ": " + strings.Join(f.Stack, "; ") + "\n")
	}
	return b.String()
}

// Debian's own CPython 3.11: offsets generated from its headers.
func TestPython311Lines(t *testing.T) {
	testutil.RequireBPF(t)
	const python = "/usr/bin/python3.11"
	if _, err := os.Stat(python); err != nil {
		t.Skip("python3.11 not installed")
	}
	checkPythonStalls(t, python, asyncioTask)
}

// Real CPython builds of other versions, fetched through the Go module
// proxy: 3.10 from generated offsets, 3.13 and 3.14 from _Py_DebugOffsets.
// The proxy refuses the 3.12 build: 3.12 runs where a local interpreter
// is (SNAG_TEST_PYTHON312, or pyenv's), a python3.12 over libpython3.12.so.
func TestPythonVersionsLines(t *testing.T) {
	testutil.RequireBPF(t)
	for _, minor := range []string{"3.10", "3.12", "3.13", "3.14"} {
		t.Run(minor, func(t *testing.T) {
			if minor == "3.12" {
				checkPythonStalls(t, localPython312(t), asyncioTask)
				return
			}
			coroutine := asyncioTask
			if minor == "3.14" {
				coroutine = asyncioTaskOrCall
			}
			checkPythonStalls(t, testutil.EmbeddedPython(t, minor), coroutine)
		})
	}
}

func localPython312(t *testing.T) string {
	if p := os.Getenv("SNAG_TEST_PYTHON312"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	found, _ := filepath.Glob(filepath.Join(home, ".pyenv", "versions", "3.12.*", "bin", "python3.12"))
	if len(found) == 0 {
		t.Skip("no CPython 3.12 here (SNAG_TEST_PYTHON312 unset, no pyenv 3.12) and the module proxy refuses its build")
	}
	return found[len(found)-1]
}
