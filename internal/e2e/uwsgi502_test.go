//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/procfs"
	"github.com/snagtrace/snag/internal/testutil"
)

// The 502 incident (DESIGN incident 3) with the example's own script:
// nginx in front of uWSGI, each request 50 ms in MariaDB. These tests
// assert what the sources guarantee: the accept queue at its limit, the
// refused connects behind the 502s, and a killed worker's signal and
// sender.

const uwsgi502HTTPPort = "19080"

func uwsgi502Dir() string { return filepath.Join(repoRoot(), "examples", "uwsgi-502") }

// chainReport is the part of snag/v1 the 502 chain adds.
type chainReport struct {
	Processes []struct {
		PID    int    `json:"pid"`
		PPID   int    `json:"ppid"`
		Comm   string `json:"comm"`
		Exited bool   `json:"exited"`
		Signal int    `json:"signal"`
	} `json:"processes"`
	ListenQueues []struct {
		PID       int     `json:"pid"`
		Addr      string  `json:"addr"`
		Limit     uint32  `json:"limit"`
		Samples   int     `json:"samples"`
		Full      int     `json:"full"`
		Max       uint32  `json:"max"`
		MeanDepth float64 `json:"mean_depth"`
	} `json:"listen_queues"`
	Signals []struct {
		PID        int    `json:"pid"`
		Signal     int    `json:"signal"`
		Name       string `json:"name"`
		Sender     int    `json:"sender"`
		SenderComm string `json:"sender_comm"`
	} `json:"signals"`
}

type loadResult struct {
	Requests int            `json:"requests"`
	Status   map[string]int `json:"status"`
	N502     int            `json:"502"`
	Errors   int            `json:"errors"`
}

// requireUwsgi502 skips without the example's programs, and starts its
// MariaDB for the test, stopped when the test ends.
func requireUwsgi502(t *testing.T) {
	t.Helper()
	testutil.RequireBPF(t)
	if testing.Short() {
		t.Skip("starts MariaDB, uWSGI and nginx")
	}
	for _, bin := range []string{"/usr/sbin/nginx", "/usr/bin/uwsgi", "/usr/lib/uwsgi/plugins/python3_plugin.so", "/usr/sbin/mariadbd"} {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("%s missing: apt-get install nginx uwsgi uwsgi-plugin-python3 mariadb-server", bin)
		}
	}
	if err := exec.Command(python, "-c", "import pymysql").Run(); err != nil {
		t.Skip("python3-pymysql not installed")
	}
	run502(t, "db-start")
	t.Cleanup(func() { exec.Command("./run.sh", "db-stop").Run() })
}

func run502(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("./run.sh", args...)
	cmd.Dir = uwsgi502Dir()
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("run.sh %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

type servers struct{ dir, nginx, uwsgi string }

func start502(t *testing.T, mode string) servers {
	t.Helper()
	kv := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(run502(t, "start", mode, "--http-port", uwsgi502HTTPPort)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			kv[k] = v
		}
	}
	s := servers{kv["dir"], kv["nginx_pid"], kv["uwsgi_pid"]}
	if s.dir == "" || s.nginx == "" || s.uwsgi == "" {
		t.Fatalf("run.sh start said %v", kv)
	}
	t.Cleanup(func() { exec.Command(filepath.Join(uwsgi502Dir(), "run.sh"), "stop", s.dir).Run() })
	return s
}

// trace502 attaches snag to both masters with --follow-forks for 6 s, runs
// 3 s of load inside that window (during calls kill after a second, when
// set) and returns the report, its chain fields and the load's result.
func trace502(t *testing.T, s servers, kill func()) (*report, *chainReport, loadResult) {
	t.Helper()
	var out, errb bytes.Buffer
	snagCmd := exec.Command(bin("snag"), "attach", "--follow-forks", "-p", s.nginx+","+s.uwsgi, "-d", "6s", "--format", "json")
	snagCmd.Stdout, snagCmd.Stderr = &out, &errb
	if err := snagCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { snagCmd.Process.Kill(); snagCmd.Wait() }()
	waitAttached(t, snagCmd.Process.Pid)
	time.Sleep(300 * time.Millisecond) // the accept queue sampler's first reading
	load := exec.Command(python, "load.py", "--url", "http://127.0.0.1:"+uwsgi502HTTPPort+"/", "-c", "16", "-d", "3", "-n", "5000")
	load.Dir = uwsgi502Dir()
	var loadOut bytes.Buffer
	load.Stdout, load.Stderr = &loadOut, os.Stderr
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	if kill != nil {
		time.Sleep(time.Second)
		kill()
	}
	if err := load.Wait(); err != nil {
		t.Fatalf("load: %v", err)
	}
	var lr loadResult
	if err := json.Unmarshal(loadOut.Bytes(), &lr); err != nil {
		t.Fatalf("load output %q: %v", loadOut.String(), err)
	}
	if err := snagCmd.Wait(); err != nil {
		t.Fatalf("snag: %v\n%s", err, errb.String())
	}
	var r report
	var c chainReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("snag output not JSON: %v\nstderr: %s", err, errb.String())
	}
	json.Unmarshal(out.Bytes(), &c)
	t.Logf("load: %+v; snag dropped %d events", lr, r.Dropped)
	return &r, &c, lr
}

// uwsgiQueue is the sampled queue of the example's uWSGI socket.
func (c *chainReport) uwsgiQueue(s servers) (limit uint32, samples, full int, ok bool) {
	for _, q := range c.ListenQueues {
		if q.Addr == "unix:"+s.dir+"/uwsgi.sock" {
			return q.Limit, q.Samples, q.Full, true
		}
	}
	return 0, 0, 0, false
}

// workers counts the uWSGI processes the trace covers below the master:
// with --follow-forks those already running are traced.
func (c *chainReport) workers(s servers) int {
	n := 0
	for _, p := range c.Processes {
		if strconv.Itoa(p.PPID) == s.uwsgi {
			n++
		}
	}
	return n
}

func TestUwsgi502(t *testing.T) {
	requireUwsgi502(t)

	t.Run("incident", func(t *testing.T) {
		s := start502(t, "incident")
		r, c, lr := trace502(t, s, nil)
		if r.Dropped != 0 {
			t.Errorf("snag dropped %d events: the refused connects cannot be counted", r.Dropped)
		}
		limit, samples, full, ok := c.uwsgiQueue(s)
		t.Logf("uwsgi queue: limit %d, full in %d of %d samples", limit, full, samples)
		if !ok {
			t.Fatalf("no accept queue for %s/uwsgi.sock in %+v", s.dir, c.ListenQueues)
		}
		if limit != 8 || samples < 20 || full*5 < samples {
			t.Errorf("uwsgi queue: limit %d, full %d of %d samples; want limit 8, ≥ 20 samples, full in ≥ 20%%", limit, full, samples)
		}
		if n := c.workers(s); n < 2 {
			t.Errorf("%d uWSGI workers traced, want the 2 running at the attach at least", n)
		}
		if lr.N502 < 20 {
			t.Fatalf("the load got %d 502s: the incident did not happen", lr.N502)
		}
		peer := "unix:" + s.dir + "/uwsgi.sock"
		f := r.find("upstream-refused", peer)
		if f == nil {
			t.Fatalf("no upstream-refused on %s; findings: %+v", peer, r.Findings)
		}
		if !strings.Contains(f.Detail, "EAGAIN") {
			t.Errorf("refusals %q are not EAGAIN", f.Detail)
		}
		diff := int(f.Count) - lr.N502
		t.Logf("refused connects seen by snag: %d; 502s the load counted: %d", f.Count, lr.N502)
		if diff < 0 {
			diff = -diff
		}
		if diff > max(2, lr.N502*3/100) {
			t.Errorf("snag saw %d refused connects, the load got %d 502s: more than 3%% apart", f.Count, lr.N502)
		}
	})

	t.Run("control", func(t *testing.T) {
		s := start502(t, "control")
		r, c, lr := trace502(t, s, nil)
		limit, samples, full, ok := c.uwsgiQueue(s)
		t.Logf("uwsgi queue: limit %d, full in %d of %d samples", limit, full, samples)
		if !ok || limit != 128 || full != 0 {
			t.Errorf("uwsgi queue: limit %d, full %d of %d samples (found %v); want limit 128, never full", limit, full, samples, ok)
		}
		if lr.N502 != 0 || lr.Errors != 0 {
			t.Errorf("the control got %d 502s and %d errors", lr.N502, lr.Errors)
		}
		if f := r.find("upstream-refused", ""); f != nil {
			t.Errorf("refusals in the control: %+v", f)
		}
		if n := c.workers(s); n < 16 {
			t.Errorf("%d uWSGI workers traced, want the 16 running at the attach", n)
		}
	})

	t.Run("killed worker", func(t *testing.T) {
		s := start502(t, "control")
		master, _ := strconv.Atoi(s.uwsgi)
		var victim int
		r, c, _ := trace502(t, s, func() {
			kids, _ := procfs.Default.Children(master)
			if len(kids) == 0 {
				t.Error("the uWSGI master has no workers")
				return
			}
			victim = kids[0]
			if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
				t.Error(err)
			}
		})
		if victim == 0 {
			return
		}
		var exited bool
		for _, p := range c.Processes {
			if p.PID == victim {
				exited = p.Exited && p.Signal == 9
			}
		}
		if !exited {
			t.Errorf("worker %d is not reported killed by signal 9: %+v", victim, c.Processes)
		}
		var sent bool
		for _, sg := range c.Signals {
			sent = sent || sg.PID == victim && sg.Signal == 9 && sg.Name == "SIGKILL" && sg.Sender == os.Getpid()
		}
		if !sent {
			t.Errorf("no SIGKILL to %d from this test (pid %d) among %+v", victim, os.Getpid(), c.Signals)
		}
		if f := r.find("worker-killed", ""); f != nil {
			t.Logf("finding: %s — %s", f.Title, f.Detail)
		}
		if c.workers(s) < 17 {
			t.Errorf("%d workers: the respawned one is not traced", c.workers(s))
		}
	})
}
