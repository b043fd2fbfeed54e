package runtimes

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/procfs"
)

const (
	libc     = "/usr/lib/x86_64-linux-gnu/libc.so.6"
	dynload  = "/usr/lib/python3.11/lib-dynload/"
	sitePkgs = "/srv/app/venv/lib/python3.11/site-packages/"
)

func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   Input
		want model.Runtime
	}{
		{"nothing known", Input{}, model.Runtime{}},
		{"native", Input{Exe: "/usr/sbin/mariadbd", Objects: []string{"/usr/sbin/mariadbd", libc}},
			model.Runtime{Name: model.RuntimeNative}},
		{"python exe", Input{Exe: "/usr/bin/python3.11", Objects: []string{"/usr/bin/python3.11", libc}},
			model.Runtime{Name: model.RuntimeCPython, Version: "3.11"}},
		{"libpython in uwsgi", Input{Exe: "/usr/bin/uwsgi-core", Objects: []string{"/usr/bin/uwsgi-core", "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", libc}},
			model.Runtime{Name: model.RuntimeCPython, Version: "3.11"}},
		{"python 2 debug build", Input{Exe: "/usr/bin/python2.7dm"},
			model.Runtime{Name: model.RuntimeCPython, Version: "2.7"}},
		{"gevent compiled modules", Input{Exe: "/usr/bin/python3.11", Objects: []string{
			"/usr/bin/python3.11", sitePkgs + "greenlet/_greenlet.cpython-311-x86_64-linux-gnu.so",
			sitePkgs + "gevent/_gevent_c_hub_local.cpython-311-x86_64-linux-gnu.so",
			dynload + "_asyncio.cpython-311-x86_64-linux-gnu.so"}},
			model.Runtime{Name: model.RuntimeCPython, Version: "3.11", Loop: model.LoopGevent}},
		{"gevent libev loop only", Input{Exe: "/usr/bin/python3.11", Objects: []string{
			sitePkgs + "gevent/libev/corecext.cpython-311-x86_64-linux-gnu.so"}},
			model.Runtime{Name: model.RuntimeCPython, Version: "3.11", Loop: model.LoopGevent}},
		{"gevent cffi loop", Input{Exe: "/usr/bin/python3.11", Objects: []string{
			sitePkgs + "gevent/libev/_corecffi.abi3.so"}},
			model.Runtime{Name: model.RuntimeCPython, Version: "3.11", Loop: model.LoopGevent}},
		{"greenlet alone is gevent", Input{Exe: "/usr/bin/python3.11", Objects: []string{
			sitePkgs + "greenlet/_greenlet.cpython-311-x86_64-linux-gnu.so"}},
			model.Runtime{Name: model.RuntimeCPython, Version: "3.11", Loop: model.LoopGevent}},
		{"greenlet under an eventlet worker", Input{Exe: "/usr/bin/python3.11",
			Objects: []string{sitePkgs + "greenlet/_greenlet.cpython-311-x86_64-linux-gnu.so"},
			Cmdline: []string{"/srv/app/venv/bin/python3", "gunicorn", "-k", "eventlet", "app:wsgi"}},
			model.Runtime{Name: model.RuntimeCPython, Version: "3.11", Loop: model.LoopEventlet}},
		{"uvloop over asyncio", Input{Exe: "/usr/bin/python3.11", Objects: []string{
			dynload + "_asyncio.cpython-311-x86_64-linux-gnu.so",
			sitePkgs + "uvloop/loop.cpython-311-x86_64-linux-gnu.so"}},
			model.Runtime{Name: model.RuntimeCPython, Version: "3.11", Loop: model.LoopUvloop}},
		{"asyncio", Input{Exe: "/usr/bin/python3.11", Objects: []string{dynload + "_asyncio.cpython-311-x86_64-linux-gnu.so"}},
			model.Runtime{Name: model.RuntimeCPython, Version: "3.11", Loop: model.LoopAsyncio}},
		{"gevent module in a non-Python process is no loop", Input{Exe: "/usr/bin/foo", Objects: []string{
			sitePkgs + "gevent/_gevent_c_hub_local.cpython-311-x86_64-linux-gnu.so"}},
			model.Runtime{Name: model.RuntimeNative}},
		{"python3 executed, its library opened", Input{Exe: "/usr/bin/python3", Objects: []string{
			"/usr/lib/python3.11/encodings/__init__.py", sitePkgs + "gevent/__init__.py"}},
			model.Runtime{Name: model.RuntimeCPython, Version: "3.11", Loop: model.LoopGevent}},
		{"eventlet's python files", Input{Exe: "/usr/bin/python3", Objects: []string{sitePkgs + "eventlet/__init__.py"}},
			model.Runtime{Name: model.RuntimeCPython, Version: "3.11", Loop: model.LoopEventlet}},
		{"asyncio package imported", Input{Exe: "/usr/bin/python3.11", Objects: []string{"/usr/lib/python3.11/asyncio/__init__.py"}},
			model.Runtime{Name: model.RuntimeCPython, Version: "3.11", Loop: model.LoopAsyncio}},
		{"python on the command line only", Input{Cmdline: []string{"python3.12", "app.py"}},
			model.Runtime{Name: model.RuntimeCPython, Version: "3.12"}},
		{"python without version on the command line", Input{Cmdline: []string{"/usr/bin/python3", "app.py"}},
			model.Runtime{Name: model.RuntimeCPython}},
		{"command line is the last resort", Input{Exe: "/usr/sbin/nginx", Cmdline: []string{"python3", "x"}},
			model.Runtime{Name: model.RuntimeNative}},
		{"node", Input{Exe: "/usr/bin/node", Objects: []string{"/usr/bin/node", libc}},
			model.Runtime{Name: model.RuntimeNode, Loop: model.LoopLibuv}},
		{"node from nvm", Input{Exe: "/home/u/.nvm/versions/node/v18.19.0/bin/node"},
			model.Runtime{Name: model.RuntimeNode, Version: "v18.19.0", Loop: model.LoopLibuv}},
		{"node tarball", Input{Exe: "/opt/node-v20.11.1-linux-x64/bin/node"},
			model.Runtime{Name: model.RuntimeNode, Version: "v20.11.1", Loop: model.LoopLibuv}},
		{"libnode", Input{Exe: "/usr/bin/electron-app", Objects: []string{"/usr/lib/x86_64-linux-gnu/libnode.so.108"}},
			model.Runtime{Name: model.RuntimeNode, Loop: model.LoopLibuv}},
		{"jvm", Input{Exe: "/usr/lib/jvm/java-17-openjdk-amd64/bin/java", Objects: []string{
			"/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so"}},
			model.Runtime{Name: model.RuntimeJVM, Version: "17"}},
		{"jvm with netty's epoll transport", Input{Exe: "/opt/jdk-21.0.2/bin/java", Objects: []string{
			"/opt/jdk-21.0.2/lib/server/libjvm.so", "/tmp/libnetty_transport_native_epoll_x86_644419283765.so"}},
			model.Runtime{Name: model.RuntimeJVM, Version: "21.0.2", Loop: model.LoopNetty}},
		{"ruby library", Input{Exe: "/usr/bin/ruby3.1", Objects: []string{"/usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1"}},
			model.Runtime{Name: model.RuntimeRuby, Version: "3.1"}},
		{"ruby static", Input{Exe: "/usr/local/bin/ruby"},
			model.Runtime{Name: model.RuntimeRuby}},
		{"ruby so version", Input{Exe: "/usr/local/bin/puma", Objects: []string{"/usr/local/lib/libruby.so.3.2.2"}},
			model.Runtime{Name: model.RuntimeRuby, Version: "3.2"}},
		{"a file called pythonic is not python", Input{Exe: "/usr/bin/pythonic", Objects: []string{"/opt/lib/python3.11/notes.txt"}},
			model.Runtime{Name: model.RuntimeNative}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.in); got != tt.want {
				t.Errorf("Classify = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPythonObject(t *testing.T) {
	for path, want := range map[string]string{
		"/usr/bin/python3.11":                              "3.11",
		"/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0":   "3.11",
		"/root/.pyenv/versions/3.12.1/bin/python3.12":      "3.12",
		"/usr/lib/python3.11/lib-dynload/_ssl.cpython.so":  "",
		"/usr/bin/python3":                                 "",
		"/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0.x": "",
	} {
		got, ok := PythonObject(path)
		if got != want || ok != (want != "") {
			t.Errorf("PythonObject(%q) = %q, %v, want %q", path, got, ok, want)
		}
	}
}

func TestMerge(t *testing.T) {
	py := model.Runtime{Name: model.RuntimeCPython, Version: "3.11.7"}
	gev := model.Runtime{Name: model.RuntimeCPython, Version: "3.11.7", Loop: model.LoopGevent}
	node := model.Runtime{Name: model.RuntimeNode, Loop: model.LoopLibuv}
	for _, tt := range []struct {
		name          string
		was, now, out model.Runtime
	}{
		{"gevent imported after the attach", py, gev, gev},
		{"gone by the end", gev, model.Runtime{}, gev},
		{"end knows less of the version", gev, model.Runtime{Name: model.RuntimeCPython, Version: ""}, gev},
		{"exec'd into another runtime", gev, node, node},
		{"first seen at the end", model.Runtime{}, py, py},
	} {
		if got := Merge(tt.was, tt.now); got != tt.out {
			t.Errorf("%s: Merge = %+v, want %+v", tt.name, got, tt.out)
		}
	}
}

// TestDetectSelf reads this test binary: Go, at the toolchain's version.
func TestDetectSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/maps"); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	rt, err := Detect(procfs.Default, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rt.Name != model.RuntimeGo || rt.Version != runtime.Version() {
		t.Errorf("Detect(self) = %+v, want go %s", rt, runtime.Version())
	}
}

// TestDetectPython reads a live python3 if the machine has one: CPython at
// its full version (Py_Version, 3.11+), or major.minor before 3.11.
func TestDetectPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	out, err := exec.Command(py, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])").Output()
	if err != nil {
		t.Skipf("python3: %v", err)
	}
	want := strings.TrimSpace(string(out))
	cmd := exec.Command(py, "-c", "import sys; sys.stdout.write('up\\n'); sys.stdout.flush(); sys.stdin.read()")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	buf := make([]byte, 3)
	if _, err := stdout.Read(buf); err != nil {
		t.Fatal(err)
	}
	var rt model.Runtime
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if rt, err = Detect(procfs.Default, cmd.Process.Pid); err == nil && rt.Name != "" {
			break
		}
	}
	if rt.Name != model.RuntimeCPython || rt.Version != want && !strings.HasPrefix(want, rt.Version+".") {
		t.Errorf("Detect(python3) = %+v, %v, want cpython %s", rt, err, want)
	}
	t.Logf("python3 is %s", rt)
}

// procTree builds a proc root holding one process with the given maps
// paths, executable and root directory.
func procTree(t *testing.T, exe, root string, objects ...string) (procfs.FS, int) {
	t.Helper()
	dir := t.TempDir()
	const pid = 31337
	p := filepath.Join(dir, strconv.Itoa(pid))
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	var maps strings.Builder
	for i, o := range objects {
		fmt.Fprintf(&maps, "%x-%x r-xp 00000000 fd:01 %d                      %s\n", 0x400000+i*0x1000, 0x401000+i*0x1000, 100+i, o)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(p, "maps"), []byte(maps.String()), 0o644))
	must(os.WriteFile(filepath.Join(p, "cmdline"), []byte("gunicorn\x00app:wsgi\x00"), 0o644))
	must(os.Symlink(exe, filepath.Join(p, "exe")))
	if root != "" {
		must(os.Symlink(root, filepath.Join(p, "root")))
	}
	return procfs.FS{Root: dir}, pid
}

func TestDetectTree(t *testing.T) {
	fs, pid := procTree(t, "/usr/bin/python3.11", "", "/usr/bin/python3.11",
		sitePkgs+"gevent/_gevent_c_greenlet_primitives.cpython-311-x86_64-linux-gnu.so")
	rt, err := Detect(fs, pid)
	want := model.Runtime{Name: model.RuntimeCPython, Version: "3.11", Loop: model.LoopGevent}
	if err != nil || rt != want {
		t.Errorf("Detect = %+v, %v, want %+v", rt, err, want)
	}
	if _, err := Detect(fs, pid+1); err == nil {
		t.Error("Detect of a missing process succeeded")
	}
}

// TestDetectHostileObject: a process naming a FIFO as its libpython must
// not make detection block, nor lose what the name says.
func TestDetectHostileObject(t *testing.T) {
	root := t.TempDir()
	lib := filepath.Join(root, "usr/lib")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(lib, "libpython3.11.so.1.0"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// And a symlink pointing out of the root, at this machine's own file.
	if err := os.Symlink("/proc/self/exe", filepath.Join(lib, "libpython3.12.so.1.0")); err != nil {
		t.Fatal(err)
	}
	fs, pid := procTree(t, "/usr/bin/uwsgi", root, "/usr/bin/uwsgi", "/usr/lib/libpython3.11.so.1.0")
	done := make(chan model.Runtime, 1)
	go func() { rt, _ := Detect(fs, pid); done <- rt }()
	select {
	case rt := <-done:
		if want := (model.Runtime{Name: model.RuntimeCPython, Version: "3.11"}); rt != want {
			t.Errorf("Detect = %+v, want %+v", rt, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Detect blocked on a FIFO")
	}
}
