//go:build linux

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/testutil"
)

// Positive controls (examples/controls): next to the healthy corpus, the
// problems snag exists for must still be found.

func controlsDir() string { return filepath.Join(repoRoot(), "examples", "controls") }

// churnClient runs churn.py with a driver against port, 20 connections a
// second for longer than a trace; it returns the client's pid.
func churnClient(t *testing.T, driver, port string) int {
	t.Helper()
	cmd := exec.Command(python, "churn.py", "--driver", driver, "--port", port, "--rate", "20", "--seconds", "10")
	cmd.Dir = controlsDir()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	time.Sleep(500 * time.Millisecond) // past the imports
	return cmd.Process.Pid
}

// checkChurn asserts a connection-churn finding on peer whose library is the
// C client library that made the connects.
func checkChurn(t *testing.T, r *report, peer, library string) {
	t.Helper()
	f := r.find("connection-churn", peer)
	if f == nil {
		t.Fatalf("no connection-churn to %s\n%s", peer, r.summary())
	}
	if f.Severity != "medium" && f.Severity != "high" {
		t.Errorf("churn of 20 connects/s is %s, want medium or high\n%s", f.Severity, r.summary())
	}
	// The mapped file may carry the full version (libpq.so.5.15).
	if !strings.HasPrefix(f.Library, library) {
		t.Errorf("churn's library is %q, want %s (the client library that connects)\n%s", f.Library, library, r.summary())
	}
}

// (a) psycopg2 opening a connection per transaction to PostgreSQL.
func TestControlChurnPsycopg2(t *testing.T) {
	requirePostgres(t)
	requirePython(t, "psycopg2", "python3-psycopg2")
	startHealthy(t, "postgres")
	pid := churnClient(t, "psycopg2", "25432")
	r := traceCase(t, "control-churn-psycopg2", []int{pid}, false, nil)
	checkChurn(t, r, "127.0.0.1:25432", "libpq.so.5")
}

// (a) MySQLdb opening a connection per transaction to MariaDB.
func TestControlChurnMySQLdb(t *testing.T) {
	requireCorpus(t, cmdMariaDB)
	requirePython(t, "MySQLdb", "python3-mysqldb")
	startHealthy(t, "mariadb")
	pid := churnClient(t, "mysqldb", "23306")
	r := traceCase(t, "control-churn-mysqldb", []int{pid}, false, nil)
	checkChurn(t, r, "127.0.0.1:23306", "libmariadb.so.3")
}

// (b) Four threads handing one pthread mutex around.
func TestControlLockContention(t *testing.T) {
	requireCorpus(t, testutil.Command{Name: "gcc", Package: "gcc"})
	exe := filepath.Join(t.TempDir(), "mutex")
	if out, err := exec.Command("gcc", "-O2", "-Wall", "-pthread", "-o", exe, filepath.Join(controlsDir(), "mutex.c")).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	cmd := exec.Command(exe, "4", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	time.Sleep(200 * time.Millisecond)
	pid := cmd.Process.Pid
	r := traceCase(t, "control-mutex", []int{pid}, false, nil)
	f := r.find("lock-contention", "")
	if f == nil {
		t.Fatalf("no lock-contention\n%s", r.summary())
	}
	if f.Severity != "medium" && f.Severity != "high" {
		t.Errorf("lock-contention is %s, want medium or high\n%s", f.Severity, r.summary())
	}
	// The four threads contend; the main thread only joins them.
	checkRoles(t, r, nil,
		roleRule{"the main thread", mainThread(pid), []string{roleIdle}, 1},
		roleRule{"a contending thread", inProcess(pid), []string{roleWorker, roleOther}, 4})
}
