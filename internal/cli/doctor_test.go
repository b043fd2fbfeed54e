//go:build linux

package cli

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/procfs"
)

// startIdle starts a command that waits, and returns its pid once it has
// exec'd the program (its comm is no longer the test's).
func startIdle(t *testing.T, name string, args ...string) int {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = t.TempDir() // for what it leaves behind (V8's isolate logs)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := cmd.Process.Pid
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		maps, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/maps")
		if bytes.Contains(maps, []byte(name)) {
			time.Sleep(100 * time.Millisecond) // its libraries mapped too
			return pid
		}
	}
	t.Fatalf("%s did not start", name)
	return 0
}

// startGo builds and starts a Go program that waits.
func startGo(t *testing.T, flags ...string) int {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(dir+"/main.go", []byte("package main\n\nimport \"time\"\n\nfunc main() { time.Sleep(30 * time.Second) }\n"), 0o644)
	os.WriteFile(dir+"/go.mod", []byte("module idle\n\ngo 1.22\n"), 0o644)
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", dir+"/idlego", ".")...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return startIdle(t, dir+"/idlego")
}

func TestDoctorPID(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) int
		want  []string // lines, in order, that the report contains
	}{
		{"node", func(t *testing.T) int { return startIdle(t, "node", "-e", "setTimeout(() => {}, 30000)") },
			[]string{"(node): Node.js v", "OK       native frames", "OK       JavaScript frames: V8 metadata (v8dbg_* symbols) in "}},
		{"python", func(t *testing.T) int {
			// Debian's interpreter, whose layout snag knows, when installed.
			name := "python3.11"
			if _, err := os.Stat("/usr/bin/python3.11"); err == nil {
				name = "/usr/bin/python3.11"
			}
			return startIdle(t, name, "-c", "import time; time.sleep(30)")
		}, []string{"CPython 3.11.", "OK       native frames", "OK       Python frames: CPython 3.11.", "offsets generated from the 3.11 headers"}},
		{"go", func(t *testing.T) int { return startGo(t) },
			[]string{": Go go1.", "OK       native frames", "OK       Go function names: .symtab names "}},
		{"stripped go", func(t *testing.T) int { return startGo(t, "-ldflags=-s") },
			[]string{": Go go1.", "OK       native frames", "NO       Go function names: the executable is stripped"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid := tc.start(t)
			var out bytes.Buffer
			doctorProcess(&out, procfs.Default, pid)
			t.Logf("%s", out.String())
			rest := out.String()
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("report lacks %q (in order):\n%s", w, out.String())
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// Without the metadata, the perf map is the way, and doctor says which is
// missing.
func TestDoctorPIDNodeWithPerfMap(t *testing.T) {
	pid := startIdle(t, "node", "--perf-basic-prof", "-e", "function f() {} for (let i = 0; i < 1e5; i++) f(); setTimeout(() => {}, 30000)")
	mapFile := "/tmp/perf-" + strconv.Itoa(pid) + ".map"
	t.Cleanup(func() { os.Remove(mapFile) })
	// node writes its map as it compiles: wait for the first lines on a
	// slow machine.
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if st, err := os.Stat(mapFile); err == nil && st.Size() > 0 {
			break
		}
	}
	rep := examineProcess(procfs.Default, pid)
	var js *frameCheck
	for i := range rep.Checks {
		if rep.Checks[i].What == "JavaScript frames" {
			js = &rep.Checks[i]
		}
	}
	if js == nil || !js.OK || !strings.Contains(js.How, "perf map /tmp/perf-"+strconv.Itoa(pid)+".map names ") {
		t.Errorf("JavaScript frames check %+v, want it to name the perf map", js)
	}
}

func TestDoctorPIDUsage(t *testing.T) {
	for _, args := range [][]string{{"--pid", "0"}, {"--pid", "-3"}, {"--pid", "x"}, {"extra"}} {
		var out, errb bytes.Buffer
		if code := Main(append([]string{"doctor"}, args...), Env{Stdout: &out, Stderr: &errb}); code != ExitUsage {
			t.Errorf("doctor %v: exit %d, want %d (%s)", args, code, ExitUsage, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"doctor", "--pid", "999999999"}, Env{Stdout: &out, Stderr: &errb}); code != ExitUsage || !strings.Contains(errb.String(), "999999999") {
		t.Errorf("doctor --pid of no process: exit %d, %s", code, errb.String())
	}
}
