//go:build linux

package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/testutil"
)

// The gevent + MySQLdb incident (DESIGN incident 1) against a real MariaDB
// started by the example's own script, with PyMySQL as the control.

const (
	python = "/usr/bin/python3"
	dbPort = "13306"
	dbPeer = "127.0.0.1:" + dbPort
)

var mariadbOnce struct {
	sync.Once
	err     error
	started bool // by these tests, so they stop it too
}

// stopMariaDB stops the server if these tests started it.
func stopMariaDB() {
	if mariadbOnce.started {
		cmd := exec.Command("./mariadb.sh", "stop", "--port", dbPort)
		cmd.Dir = exampleDir()
		cmd.Run()
	}
}

func exampleDir() string { return filepath.Join(repoRoot(), "examples", "gevent-mysqldb") }

// requireGevent skips unless MariaDB and the Python packages are installed,
// and starts the example's MariaDB once for the whole run.
func requireGevent(t *testing.T) {
	t.Helper()
	testutil.RequireBPF(t)
	if testing.Short() {
		t.Skip("starts MariaDB")
	}
	if _, err := exec.LookPath("mariadbd"); err != nil {
		if _, err := os.Stat("/usr/sbin/mariadbd"); err != nil {
			t.Skip("mariadb-server not installed")
		}
	}
	if err := exec.Command(python, "-c", "import gevent, MySQLdb, pymysql").Run(); err != nil {
		t.Skip("python3-gevent, python3-mysqldb or python3-pymysql not installed")
	}
	mariadbOnce.Do(func() {
		status := exec.Command("./mariadb.sh", "status", "--port", dbPort)
		status.Dir = exampleDir()
		running := status.Run() == nil
		cmd := exec.Command("./mariadb.sh", "start", "--port", dbPort)
		cmd.Dir = exampleDir()
		out, err := cmd.CombinedOutput()
		if err != nil {
			mariadbOnce.err = &startError{string(out), err}
			return
		}
		mariadbOnce.started = !running
	})
	if mariadbOnce.err != nil {
		t.Fatal(mariadbOnce.err)
	}
}

type startError struct {
	out string
	err error
}

func (e *startError) Error() string { return "start MariaDB: " + e.err.Error() + "\n" + e.out }

// geventApp starts the app with a driver and a load generator; it returns the app's pid.
func geventApp(t *testing.T, driver string) int {
	t.Helper()
	return geventAppLoaded(t, driver, 20*time.Second)
}

// geventAppLoaded is geventApp with a load that lasts d.
func geventAppLoaded(t *testing.T, driver string, d time.Duration) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	ready := filepath.Join(t.TempDir(), "ready")
	app := exec.Command(python, "app.py", "--driver", driver, "--port", port, "--db-port", dbPort, "--ready-file", ready)
	app.Dir = exampleDir()
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Process.Kill(); app.Wait() })
	waitFile(t, ready)
	load := exec.Command(python, "load.py", "--url", "http://127.0.0.1:"+port+"/", "-c", "16", "-d", strconv.Itoa(int(d.Seconds()))+"s")
	load.Dir = exampleDir()
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { load.Process.Kill(); load.Wait() })
	time.Sleep(time.Second)
	return app.Process.Pid
}

// checkMySQLdbStall asserts the incident's finding: a high loop-stall on
// the main (hub) thread, poll on the MariaDB peer, p50 ≈ 50 ms, ≥ 50% of
// the wall time; with stacks, from libmariadb under _mysql and never from
// the hub's own libev.
func checkMySQLdbStall(t *testing.T, r *report, pid int, stacks bool) {
	t.Helper()
	f := r.find("loop-stall", dbPeer)
	if f == nil {
		t.Fatalf("no loop-stall on %s; findings: %+v", dbPeer, r.Findings)
	}
	if f.Severity != "high" || f.Syscall != "poll" || f.TID != pid {
		t.Errorf("stall %s/%s on tid %d, want high/poll on the main thread %d", f.Severity, f.Syscall, f.TID, pid)
	}
	if p50 := time.Duration(f.P50); p50 < 45*time.Millisecond || p50 > 60*time.Millisecond {
		t.Errorf("stall p50 %v, want about SELECT SLEEP(0.05)'s 50ms", p50)
	}
	if f.Share < 0.5 {
		t.Errorf("stall share %.2f of wall time, want ≥ 0.5", f.Share)
	}
	if !stacks {
		return
	}
	if f.Library != "libmariadb.so.3" {
		t.Errorf("library %q, want libmariadb.so.3", f.Library)
	}
	stack := strings.Join(f.Stack, "\n")
	for _, want := range []string{"libmariadb.so.3", "_mysql.cpython-311-x86_64-linux-gnu.so"} {
		if !strings.Contains(stack, want) {
			t.Errorf("stack lacks %s:\n%s", want, stack)
		}
	}
	for _, not := range []string{"libev", "corecext"} {
		if strings.Contains(stack, not) {
			t.Errorf("stack has the hub's %s: the poll is attributed to the loop itself:\n%s", not, stack)
		}
	}
	if i, j := strings.Index(stack, "libmariadb.so.3"), strings.Index(stack, "_mysql.cpython"); i < 0 || j < i {
		t.Errorf("libmariadb must be nearer the leaf than _mysql:\n%s", stack)
	}
	// And the Python code that made the query, under the C extension: the
	// installed MySQLdb's line, and the example's own cur.execute line.
	for _, want := range []string{"BaseCursor.execute (cursors.py:", "make_app.<locals>.app (app.py:100)"} {
		if !strings.Contains(stack, want) {
			t.Errorf("stack lacks the Python frame %s:\n%s", want, stack)
		}
	}
	if i, j := strings.Index(stack, "_mysql.cpython"), strings.Index(stack, "BaseCursor.execute"); j < i {
		t.Errorf("the Python frames must sit below the C extension that they call:\n%s", stack)
	}
	// The server's greenlet runs its handler, which runs the application.
	const greenlet = "greenlet make_app.<locals>.app"
	if f.Coroutine != greenlet || !strings.Contains(f.Detail, "in "+greenlet) {
		t.Errorf("coroutine %q, detail %q: want %s in both", f.Coroutine, f.Detail, greenlet)
	}
}

func TestGeventMySQLdbLoopStall(t *testing.T) {
	requireGevent(t)
	pid := geventApp(t, "mysqldb")
	r, _ := snag(t, "attach", "-p", strconv.Itoa(pid), "-d", "3s", "--format", "json")
	checkMySQLdbStall(t, r, pid, true)

	// strace -k unwinds the same process its own way (libdw): the
	// libmariadb frames under poll must be the same addresses snag found.
	f := r.find("loop-stall", dbPeer)
	if f == nil {
		return
	}
	ours := moduleOffsets(f.Stack, "libmariadb.so.3+0x")
	log := straceLog(t, pid, "-k", "-e", "trace=poll")
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	theirs := straceKOffsets(string(b), "libmariadb.so.3")
	if len(ours) < 3 || len(theirs) < 3 {
		t.Fatalf("too few libmariadb frames to compare: snag %v, strace -k %v", ours, theirs)
	}
	for i := 0; i < 3; i++ {
		if ours[i] != theirs[i] {
			t.Errorf("libmariadb frame %d: snag 0x%s, strace -k 0x%s", i, ours[i], theirs[i])
		}
	}
	// And strace -k's stacks flow through snag analyze into its reports.
	folded := filepath.Join(t.TempDir(), "k.folded")
	if out, err := exec.Command(bin("snag"), "analyze", log, "-o", folded).CombinedOutput(); err != nil {
		t.Fatalf("snag analyze of the -k log: %v\n%s", err, out)
	}
	if fb, _ := os.ReadFile(folded); !strings.Contains(string(fb), "libmariadb.so.3") {
		t.Errorf("strace -k stacks missing from the folded report:\n%.1000s", fb)
	}
}

// moduleOffsets returns the hex offsets of frames rendered "module+0xOFF".
func moduleOffsets(stack []string, prefix string) []string {
	var out []string
	for _, fr := range stack {
		if off, ok := strings.CutPrefix(fr, prefix); ok {
			out = append(out, off)
		}
	}
	return out
}

// straceKOffsets returns the offsets of module's frames in the first stack
// of a poll in an strace -k log (" > /path/module() [0xOFF]").
func straceKOffsets(log, module string) []string {
	var out []string
	inPoll := false
	for _, line := range strings.Split(log, "\n") {
		switch {
		case strings.Contains(line, " poll(["):
			if len(out) > 0 {
				return out
			}
			inPoll = true
		case inPoll && strings.HasPrefix(line, " > ") && strings.Contains(line, "/"+module+"("):
			if i := strings.LastIndex(line, "[0x"); i >= 0 {
				out = append(out, strings.TrimSuffix(line[i+3:], "]"))
			}
		case !strings.HasPrefix(line, " > "):
			inPoll = false
		}
	}
	return out
}

func TestGeventPyMySQLNoStall(t *testing.T) {
	requireGevent(t)
	pid := geventApp(t, "pymysql")
	r, _ := snag(t, "attach", "-p", strconv.Itoa(pid), "-d", "3s", "--format", "json")
	if f := r.find("loop-stall", ""); f != nil {
		t.Errorf("pure-Python driver: loop-stall %+v, want none", f)
	}
}

func TestGeventMySQLdbRecording(t *testing.T) {
	requireGevent(t)
	pid := geventApp(t, "mysqldb")
	file := filepath.Join(t.TempDir(), "gevent.snag")
	if out, err := exec.Command(bin("snag"), "record", "-p", strconv.Itoa(pid), "-d", "3s", "-o", file).CombinedOutput(); err != nil {
		t.Fatalf("snag record: %v\n%s", err, out)
	}
	r, _ := snag(t, "analyze", file, "--format", "json")
	checkMySQLdbStall(t, r, pid, true)
}

// straceLog captures strace -f -tt -T -yy (and -k: stacks) of pid for 3 s.
func straceLog(t *testing.T, pid int, extra ...string) string {
	t.Helper()
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("strace not installed")
	}
	log := filepath.Join(t.TempDir(), "strace.log")
	args := append([]string{"-s", "INT", "3", "strace", "-f", "-tt", "-T", "-yy"}, extra...)
	args = append(args, "-p", strconv.Itoa(pid), "-o", log)
	exec.Command("timeout", args...).Run() // timeout's status is expected
	return log
}

func TestGeventStraceLogs(t *testing.T) {
	requireGevent(t)
	t.Run("mysqldb", func(t *testing.T) {
		pid := geventApp(t, "mysqldb")
		r, _ := snag(t, "analyze", straceLog(t, pid), "--format", "json")
		// strace -p names threads only by tid; the main thread's tid is the pid.
		checkMySQLdbStall(t, r, pid, false)
	})
	t.Run("pymysql", func(t *testing.T) {
		pid := geventApp(t, "pymysql")
		r, _ := snag(t, "analyze", straceLog(t, pid), "--format", "json")
		if f := r.find("loop-stall", ""); f != nil {
			t.Errorf("pure-Python driver's log: loop-stall %+v, want none", f)
		}
	})
}

// MariaDB listens on 13306 here, a port that names nothing: snag names the
// service from the greeting it sees on a new connection.
func TestServiceFromGreeting(t *testing.T) {
	requireGevent(t)
	script := `import socket; s = socket.create_connection(("127.0.0.1", ` + dbPort + `)); s.recv(128); s.close()`
	r, _ := snag(t, "run", "--format", "json", "--", python, "-c", script)
	for _, c := range r.Connections {
		if c.Peer == dbPeer {
			if c.Service != "mysql" {
				t.Errorf("service of %s is %q, want mysql from its greeting", dbPeer, c.Service)
			}
			return
		}
	}
	t.Errorf("no connection to %s in %+v", dbPeer, r.Connections)
}
