//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/procfs"
)

// The Celery result-backend incident (DESIGN incident 2): a worker whose
// tasks touch no database writes every result to MySQL.

const brokerPeer = "127.0.0.1:16380"

var redisOnce struct {
	sync.Once
	err error
}

func celeryDir() string { return filepath.Join(repoRoot(), "examples", "celery-result-backend") }

func requireCelery(t *testing.T) {
	t.Helper()
	requireGevent(t) // root, BPF, MariaDB, MySQLdb
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	if err := exec.Command(python, "-c", "import celery, redis, sqlalchemy").Run(); err != nil {
		t.Skip("python3-celery, python3-redis or python3-sqlalchemy not installed")
	}
	redisOnce.Do(func() {
		cmd := exec.Command("./redis.sh", "start")
		cmd.Dir = celeryDir()
		if out, err := cmd.CombinedOutput(); err != nil {
			redisOnce.err = &startError{string(out), err}
		}
	})
	if redisOnce.err != nil {
		t.Fatal(redisOnce.err)
	}
}

func stopRedis() {
	cmd := exec.Command("./redis.sh", "stop")
	cmd.Dir = celeryDir()
	cmd.Run()
}

// celeryRun starts a worker, attaches snag to it with args, sends tasks
// while snag traces, and returns snag's report.
func celeryRun(t *testing.T, ignoreResult bool, args ...string) *report {
	t.Helper()
	worker := exec.Command(python, "-m", "celery", "-A", "tasks", "worker", "--pool", "prefork", "--concurrency", "2", "--loglevel", "WARNING")
	worker.Dir = celeryDir()
	worker.Env = os.Environ()
	if ignoreResult {
		worker.Env = append(worker.Env, "IGNORE_RESULT=1")
	}
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { worker.Process.Kill(); worker.Wait() }()
	// Ready once its two pool children exist (a slow machine takes longer).
	for i := 0; ; i++ {
		kids, _ := procfs.Default.Children(worker.Process.Pid)
		if len(kids) >= 2 {
			break
		}
		if i == 200 {
			t.Fatal("the Celery worker started no pool children in 20s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // the children connect to the broker

	var out, errb bytes.Buffer
	snagCmd := exec.Command(bin("snag"), append([]string{"attach", "-p", strconv.Itoa(worker.Process.Pid),
		"--follow-forks", "-d", "5s", "--format", "json"}, args...)...)
	snagCmd.Stdout, snagCmd.Stderr = &out, &errb
	if err := snagCmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitAttached(t, snagCmd.Process.Pid)
	producer := exec.Command(python, "producer.py", "-n", "100", "-r", "40")
	producer.Dir = celeryDir()
	if b, err := producer.CombinedOutput(); err != nil {
		t.Fatalf("producer: %v\n%s", err, b)
	}
	snagCmd.Wait()
	var r report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("snag: %v\nstderr: %s", err, errb.String())
	}
	return &r
}

func TestCeleryResultBackendIsUnexpected(t *testing.T) {
	requireCelery(t)
	r := celeryRun(t, false, "--expect", brokerPeer)
	f := r.find("unexpected-connection", dbPeer)
	if f == nil {
		t.Fatalf("no unexpected-connection to the result backend %s; findings: %+v", dbPeer, r.Findings)
	}
	if !strings.Contains(f.Hint, "ignore_result") {
		t.Errorf("hint %q does not point at ignore_result", f.Hint)
	}
	for _, c := range r.Connections {
		if c.Peer == dbPeer && c.Service != "mysql" {
			t.Errorf("the backend on port %s is named %q, want mysql from its greeting", dbPort, c.Service)
		}
	}
	if u := r.find("unexpected-connection", brokerPeer); u != nil {
		t.Errorf("the expected broker is flagged: %+v", u)
	}
}

// Without knowing what to expect: the peers of the fixed worker are the
// baseline, and the broken one's extra peer is what is new.
func TestCeleryBaselineFindsTheBackend(t *testing.T) {
	requireCelery(t)
	base := filepath.Join(t.TempDir(), "baseline.json")
	good := celeryRun(t, true, "--baseline-out", base)
	if f := good.find("unexpected-connection", ""); f != nil {
		t.Errorf("with ignore_result, unexpected connection %+v", f)
	}
	for _, c := range good.Connections {
		if c.Peer == dbPeer {
			t.Errorf("with ignore_result the worker still talks to %s", dbPeer)
		}
	}
	bad := celeryRun(t, false, "--baseline", base)
	if f := bad.find("unexpected-connection", dbPeer); f == nil {
		t.Errorf("the result backend is not new against the baseline; findings: %+v", bad.Findings)
	}
}

// waitAttached waits until snag holds its BPF links: from then on it traces.
func waitAttached(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 200; i++ {
		links := 0
		fds, _ := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
		for _, fd := range fds {
			if target, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "fd", fd.Name())); strings.Contains(target, "bpf_link") {
				links++
			}
		}
		if links >= 6 { // sys_enter, sys_exit, the process lifecycle and signal_generate
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("snag did not attach within 20s")
}
