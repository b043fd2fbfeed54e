//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/snagtrace/snag/internal/testutil"
)

// snag serve as an agent, scraped by a real Prometheus: the gevent app
// with MySQLdb and its PyMySQL control, both selected by --cmdline in one
// agent. The stall must show for the MySQLdb app alone, in the metrics,
// the finding lines, the profile and the flight recorder.
//
// It needs the continuous source (tracer.Config.Select and Interval):
// where the tracer in this tree does not follow selectors yet, snag serve
// says "nothing to trace" and the test says so as it skips.
func TestServePrometheus(t *testing.T) {
	requireGevent(t)
	testutil.RequireCommands(t, testutil.Command{Name: "prometheus", Package: "prometheus"})
	const load = 40 * time.Second
	mysqldb := geventAppLoaded(t, "mysqldb", load)
	pymysql := geventAppLoaded(t, "pymysql", load)

	// These two apps' own command lines, ports included: other app.py
	// processes on the host are not this test's.
	var cmdlines []string
	for _, pid := range []int{mysqldb, pymysql} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			t.Fatal(err)
		}
		cmdlines = append(cmdlines, regexp.QuoteMeta(strings.Join(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), " ")))
	}
	listen, recDir := freePort(t), t.TempDir()
	agent := startServe(t, "--cmdline", "^("+strings.Join(cmdlines, "|")+")$", "--interval", "3s", "--listen", listen,
		"--record-dir", recDir, "--record-keep", "1m")
	prom := startPrometheus(t, listen)

	// The stall appears once a window ended and was scraped.
	var stalls []promSample
	isMySQLdbStall := func(s promSample) bool {
		return s.Metric["pid"] == strconv.Itoa(mysqldb) && s.Metric["library"] == "libmariadb.so.3" &&
			s.Metric["syscall"] == "poll" && s.Metric["peer"] == dbPeer && s.Metric["severity"] == "high" &&
			s.Metric["comm"] == "python3"
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		agent.checkAlive(t)
		stalls = prom.query(t, `snag_finding_active{kind="loop-stall"} == 1`)
		if slices.ContainsFunc(stalls, isMySQLdbStall) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no high loop-stall in libmariadb.so.3 for the MySQLdb app (pid %d) in Prometheus: %+v", mysqldb, stalls)
		}
		time.Sleep(time.Second)
	}
	for _, s := range stalls {
		if s.Metric["pid"] == strconv.Itoa(pymysql) {
			t.Errorf("a loop stall for the PyMySQL control (pid %d): %v", pymysql, s.Metric)
		}
	}

	// The latency of poll: SELECT SLEEP(0.05) per call. The counters are
	// cumulative, so the quantile of their latest values is the agent's
	// whole run.
	p50 := prom.query(t, `histogram_quantile(0.5, sum by (le) (snag_syscall_duration_seconds_bucket{syscall="poll",comm="python3"}))`)
	if len(p50) != 1 {
		t.Fatalf("p50 of poll: %+v, want one value", p50)
	}
	t.Logf("p50 of poll from Prometheus: %.4fs", p50[0].value(t))
	if v := p50[0].value(t); v < 0.045 || v > 0.060 {
		t.Errorf("p50 of poll %.4fs, want about SELECT SLEEP(0.05)'s 50ms", v)
	}
	for _, q := range []string{
		`snag_blocked_seconds_total{peer="` + dbPeer + `"} > 1`,
		`snag_bpf_runs_total{program="sys_enter"} > 0`,
		`snag_build_info == 1`,
	} {
		if got := prom.query(t, q); len(got) == 0 {
			t.Errorf("Prometheus has nothing for %s", q)
		}
	}

	// The profile of the last window, as Pyroscope or Parca scrape it.
	resp, err := http.Get("http://" + listen + "/debug/pprof/blocked")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/debug/pprof/blocked: %d, %v", resp.StatusCode, err)
	}
	p, err := profile.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/debug/pprof/blocked is not a pprof profile: %v", err)
	}
	var inMariaDB int64
	for _, s := range p.Sample {
		for _, l := range s.Location {
			if l.Mapping != nil && strings.HasSuffix(l.Mapping.File, "libmariadb.so.3") {
				inMariaDB += s.Value[0]
				break
			}
		}
	}
	if inMariaDB < int64(time.Second) {
		t.Errorf("the profile has %v blocked under libmariadb.so.3, want most of a 3s window", time.Duration(inMariaDB))
	}

	// SIGTERM ends the agent cleanly.
	out := agent.stop(t)
	var started bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l struct {
			Event, Kind, Library string
			PID                  int
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("stdout line %q is not JSON: %v", sc.Text(), err)
		}
		if l.Event == "finding-start" && l.Kind == "loop-stall" && l.PID == mysqldb && l.Library == "libmariadb.so.3" {
			started = true
		}
	}
	if !started {
		t.Errorf("no finding-start line for the MySQLdb stall on stdout:\n%s", out)
	}

	// And the flight recorder explains it after the fact.
	recs, _ := filepath.Glob(filepath.Join(recDir, "snag-*.snag"))
	if len(recs) < 2 {
		t.Fatalf("flight recorder files %v, want one per window", recs)
	}
	r, _ := snag(t, "analyze", recs[len(recs)-1], "--format", "json")
	if f := r.find("loop-stall", dbPeer); f == nil || f.TID != mysqldb || f.Library != "libmariadb.so.3" {
		t.Errorf("snag analyze of the last window's recording: stall %+v, want the MySQLdb app's in libmariadb", f)
	}
}

// serveProc is a running snag serve.
type serveProc struct {
	cmd     *exec.Cmd
	stdout  bytes.Buffer
	stderr  syncBuffer
	done    chan struct{}
	waitErr error
}

func startServe(t *testing.T, args ...string) *serveProc {
	t.Helper()
	s := &serveProc{cmd: exec.Command(bin("snag"), append([]string{"serve"}, args...)...), done: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.cmd.Process.Kill(); <-s.done })
	return s
}

// checkAlive fails the test when the agent exited, with what it said.
func (s *serveProc) checkAlive(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
	default:
		return
	}
	t.Fatalf("snag serve exited: %v\nstderr: %s", s.waitErr, s.stderr.String())
}

// stop sends SIGTERM, requires a clean exit within 5 s and returns stdout.
func (s *serveProc) stop(t *testing.T) string {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("snag serve still runs 5s after SIGTERM\nstderr: %s", s.stderr.String())
	}
	if s.waitErr != nil {
		t.Errorf("snag serve after SIGTERM: %v\nstderr: %s", s.waitErr, s.stderr.String())
	}
	return s.stdout.String()
}

// promServer is a Prometheus started for one test.
type promServer struct{ addr string }

// startPrometheus runs Debian's prometheus on loopback, scraping target
// every second.
func startPrometheus(t *testing.T, target string) *promServer {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	conf := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: snag\n    static_configs:\n      - targets: [%q]\n", target)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	path, _ := testutil.LookCommand("prometheus")
	addr := freePort(t)
	cmd := exec.Command(path, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if i == 100 {
			t.Fatalf("prometheus not ready after 10s: %v\n%s", err, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &promServer{addr: addr}
}

// promSample is one element of an instant vector.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) value(t *testing.T) float64 {
	t.Helper()
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		t.Fatalf("sample value %v: %v", s.Value, err)
	}
	return v
}

// query runs an instant query through /api/v1/query.
func (p *promServer) query(t *testing.T, q string) []promSample {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     []promSample `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	if r.Status != "success" {
		t.Fatalf("query %s: %s", q, r.Error)
	}
	return r.Data.Result
}
