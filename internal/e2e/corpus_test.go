//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/procfs"
	"github.com/snagtrace/snag/internal/testutil"
)

// The healthy-server corpus (examples/healthy): real servers from Debian
// packages, each under its own load tool, one per concurrency model. A
// verdict an on-call engineer can trust says nothing of medium or high
// severity about any of them and gives each thread the role a person would.
//
// SNAG_CORPUS_OUT=DIR also keeps each case's JSON report and a recording of
// the same trace (snag record, run alongside) in DIR as CASE.json and
// CASE.snag.

const (
	corpusTrace = "4s"
	// corpusLoad is how long a load started before the attach runs: a
	// second of warm-up, the attach, and the trace, with room to spare; the
	// load is stopped as soon as the trace ends.
	corpusLoad = 10
)

// Roles as the JSON names them.
const (
	roleLoop       = "event-loop"
	roleWorker     = "worker"
	roleSyncWorker = "sync-worker"
	roleAcceptor   = "acceptor"
	roleIdle       = "idle"
	roleOther      = "other"
)

var (
	// background threads (timers, housekeeping, a master that only
	// supervises) serve no requests.
	background = []string{roleIdle, roleOther}
	// poolThread waits on a condition variable or futex for work.
	poolThread = []string{roleWorker, roleIdle}
	// runtimeThread is a runtime's own thread (GC, JIT, signals): it waits
	// for work as a pool thread does, or on a timer.
	runtimeThread = []string{roleWorker, roleIdle, roleOther}
)

func healthyDir() string { return filepath.Join(repoRoot(), "examples", "healthy") }

// A healthyServer is one examples/healthy script's server, started once for
// the whole run.
type healthyServer struct {
	once sync.Once
	err  error
	dir  string
	pid  int
}

var healthy = struct {
	sync.Mutex
	servers map[string]*healthyServer
	order   []string // started, in order
}{servers: map[string]*healthyServer{}}

// startHealthy starts examples/healthy/NAME.sh once and returns its server.
func startHealthy(t *testing.T, name string) *healthyServer {
	t.Helper()
	healthy.Lock()
	s := healthy.servers[name]
	if s == nil {
		s = &healthyServer{}
		healthy.servers[name] = s
	}
	healthy.Unlock()
	s.once.Do(func() {
		cmd := exec.Command("./"+name+".sh", "start")
		cmd.Dir = healthyDir()
		cmd.Env = append(os.Environ(), "GOHTTP="+bin("gohttp"))
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			s.err = fmt.Errorf("%s.sh start: %w\n%s%s", name, err, out.String(), errb.String())
			return
		}
		// The last line is "dir=DIR pid=PID port=PORT".
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		for _, kv := range strings.Fields(lines[len(lines)-1]) {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "dir":
				s.dir = v
			case "pid":
				s.pid, _ = strconv.Atoi(v)
			}
		}
		if s.dir == "" || s.pid <= 0 {
			s.err = fmt.Errorf("%s.sh start said %q", name, out.String())
			return
		}
		healthy.Lock()
		healthy.order = append(healthy.order, name)
		healthy.Unlock()
	})
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s
}

// stopHealthy stops the servers these tests started, last first.
func stopHealthy() {
	healthy.Lock()
	defer healthy.Unlock()
	for i := len(healthy.order) - 1; i >= 0; i-- {
		name := healthy.order[i]
		cmd := exec.Command("./"+name+".sh", "stop", healthy.servers[name].dir)
		cmd.Dir = healthyDir()
		cmd.Stderr = os.Stderr
		cmd.Run()
	}
	healthy.order = nil
}

// requireCorpus skips without root, BPF or the programs a case needs (and
// fails in CI when one is missing).
func requireCorpus(t *testing.T, cmds ...testutil.Command) {
	t.Helper()
	testutil.RequireBPF(t)
	if testing.Short() {
		t.Skip("runs real servers and workloads")
	}
	testutil.RequireCommands(t, cmds...)
}

var (
	cmdAB       = testutil.Command{Name: "ab", Package: "apache2-utils"}
	cmdNginx    = testutil.Command{Name: "nginx", Package: "nginx"}
	cmdMariaDB  = testutil.Command{Name: "mariadbd", Package: "mariadb-server"}
	cmdPostgres = testutil.Command{Name: "pgbench", Package: "postgresql"}
)

// requirePostgres also finds the server, which Debian keeps out of PATH.
func requirePostgres(t *testing.T) {
	t.Helper()
	requireCorpus(t, cmdPostgres)
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres"); len(m) == 0 {
		testutil.RequireCommands(t, testutil.Command{Name: "postgres", Package: "postgresql"})
	}
}

func requirePython(t *testing.T, modules, pkgs string) {
	t.Helper()
	if err := exec.Command(python, "-c", "import "+modules).Run(); err != nil {
		msg := pkgs + " not installed"
		if testutil.InCI() {
			t.Fatal(msg + ": CI installs it")
		}
		t.Skip(msg)
	}
}

// startLoad runs load.sh CASE for secs in its own process group, stopped
// (the group, which holds only the load tool) when the test ends.
func startLoad(t *testing.T, name string, secs int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("./load.sh", name, strconv.Itoa(secs))
	cmd.Dir = healthyDir()
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		cmd.Wait()
	})
	return cmd
}

// withChildren returns pid and its children.
func withChildren(t *testing.T, pid int) []int {
	t.Helper()
	kids, err := procfs.Default.Children(pid)
	if err != nil {
		t.Fatalf("children of %d: %v", pid, err)
	}
	return append([]int{pid}, kids...)
}

// waitChildren waits until pid has at least n children.
func waitChildren(t *testing.T, pid, n int) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if kids, _ := procfs.Default.Children(pid); len(kids) >= n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("pid %d has not %d children after 10s", pid, n)
}

// traceCase attaches snag to pids for the corpus's trace length and returns
// its report. Once snag holds its links, during (a function the test gives)
// runs: a load that must begin inside the trace starts there. With
// SNAG_CORPUS_OUT set, a recording runs alongside and both are kept.
func traceCase(t *testing.T, name string, pids []int, followForks bool, during func()) *report {
	t.Helper()
	ps := make([]string, len(pids))
	for i, p := range pids {
		ps[i] = strconv.Itoa(p)
	}
	args := []string{"-p", strings.Join(ps, ","), "-d", corpusTrace}
	if followForks {
		args = append(args, "--follow-forks")
	}
	var out, errb bytes.Buffer
	attach := exec.Command(bin("snag"), append(append([]string{"attach"}, args...), "--format", "json")...)
	attach.Stdout, attach.Stderr = &out, &errb
	keep := os.Getenv("SNAG_CORPUS_OUT")
	var record *exec.Cmd
	var recErr bytes.Buffer
	if keep != "" {
		if err := os.MkdirAll(keep, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(keep, name+".snag"))
		record = exec.Command(bin("snag"), append(append([]string{"record"}, args...), "-o", filepath.Join(keep, name+".snag"))...)
		record.Stderr = &recErr
		if err := record.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { record.Process.Kill(); record.Wait() })
		waitAttached(t, record.Process.Pid)
	}
	if err := attach.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { attach.Process.Kill(); attach.Wait() })
	waitAttached(t, attach.Process.Pid)
	if during != nil {
		during()
	}
	err := attach.Wait()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	var r report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("snag attach %s: output not JSON: %v\nstdout: %.2000s\nstderr: %s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	if testing.Verbose() {
		t.Logf("snag attach %s:\n%s", strings.Join(args, " "), r.summary())
	}
	if record != nil {
		if err := record.Wait(); err != nil {
			t.Errorf("snag record: %v\n%s", err, recErr.String())
		}
		if err := os.WriteFile(filepath.Join(keep, name+".json"), out.Bytes(), 0o644); err != nil {
			t.Error(err)
		}
	}
	return &r
}

// summary renders the findings and the threads' roles for a failure message.
func (r *report) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "findings (%d):\n", len(r.Findings))
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "  %-6s %-22s %s", f.Severity, f.Kind, f.Title)
		if f.TID != 0 {
			fmt.Fprintf(&b, " [tid %d %s]", f.TID, f.Thread)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "threads (%d):\n", len(r.Threads))
	for _, th := range r.Threads {
		fmt.Fprintf(&b, "  pid %-7d tid %-7d %-16q %-11s cpu %v", th.PID, th.TID, th.Name, th.Role, time.Duration(th.OnCPUNS).Round(time.Millisecond))
		if th.Started {
			b.WriteString(" (started during the trace)")
		}
		if top := r.topSyscalls(th.TID, 3); top != "" {
			b.WriteString("  " + top)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// topSyscalls names a thread's n syscalls with the most time.
func (r *report) topSyscalls(tid, n int) string {
	type sc struct {
		name  string
		count uint64
		total time.Duration
	}
	var all []sc
	for _, s := range r.Syscalls {
		if s.TID == tid {
			all = append(all, sc{s.Name, s.Count, time.Duration(s.TotalNS)})
		}
	}
	slices.SortFunc(all, func(a, b sc) int { return int(b.total - a.total) })
	var parts []string
	for i := 0; i < len(all) && i < n; i++ {
		parts = append(parts, fmt.Sprintf("%s×%d %v", all[i].name, all[i].count, all[i].total.Round(time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}

// severeFindings lists the findings of medium or high severity.
func severeFindings(r *report) []string {
	var bad []string
	for _, f := range r.Findings {
		if f.Severity == "medium" || f.Severity == "high" {
			bad = append(bad, fmt.Sprintf("a healthy server got a %s %s: %s", f.Severity, f.Kind, f.Title))
		}
	}
	return bad
}

// A roleRule says which roles the threads it matches may have, and how many
// such threads there must be at least.
type roleRule struct {
	what  string
	match func(th thread) bool
	roles []string
	min   int
}

func mainThread(pid int) func(thread) bool {
	return func(th thread) bool { return th.TID == pid }
}

func named(re string) func(thread) bool {
	rx := regexp.MustCompile(re)
	return func(th thread) bool { return rx.MatchString(th.Name) }
}

func inProcess(pids ...int) func(thread) bool {
	return func(th thread) bool { return slices.Contains(pids, th.PID) }
}

// calls matches the threads that made syscall during the trace.
func (r *report) calls(syscall string) func(thread) bool {
	return func(th thread) bool {
		for _, s := range r.Syscalls {
			if s.TID == th.TID && s.Name == syscall && s.Count > 0 {
				return true
			}
		}
		return false
	}
}

func busy(th thread) bool { return th.OnCPUNS > 0 }

func and(fs ...func(thread) bool) func(thread) bool {
	return func(th thread) bool {
		for _, f := range fs {
			if !f(th) {
				return false
			}
		}
		return true
	}
}

// roleProblems applies the first matching rule to every thread; a thread
// no rule matches must have one of others (nil: any role).
func roleProblems(r *report, others []string, rules ...roleRule) []string {
	if len(r.Threads) == 0 {
		return []string{"no threads in the report"}
	}
	counts := make([]int, len(rules))
	var bad []string
	for _, th := range r.Threads {
		what, roles := "any other thread", others
		for i, rule := range rules {
			if rule.match(th) {
				what, roles = rule.what, rule.roles
				counts[i]++
				break
			}
		}
		if roles != nil && !slices.Contains(roles, th.Role) {
			bad = append(bad, fmt.Sprintf("tid %d %q (%s) is %q, want %s", th.TID, th.Name, what, th.Role, strings.Join(roles, " or ")))
		}
	}
	for i, rule := range rules {
		if counts[i] < rule.min {
			bad = append(bad, fmt.Sprintf("%d threads are %s, want at least %d", counts[i], rule.what, rule.min))
		}
	}
	return bad
}

// checkRoles fails with the role problems, the findings and the roles.
func checkRoles(t *testing.T, r *report, others []string, rules ...roleRule) {
	t.Helper()
	if bad := roleProblems(r, others, rules...); len(bad) > 0 {
		t.Errorf("%s\n%s", strings.Join(bad, "\n"), r.summary())
	}
}

// checkHealthy fails on any finding of medium or high severity and on any
// role that is not the expected one, printing the findings and the roles.
func checkHealthy(t *testing.T, r *report, others []string, rules ...roleRule) {
	t.Helper()
	bad := append(severeFindings(r), roleProblems(r, others, rules...)...)
	if len(bad) > 0 {
		t.Errorf("%s\n%s", strings.Join(bad, "\n"), r.summary())
	}
}

// checkQuiet is checkHealthy for an idle process: no finding at all.
func checkQuiet(t *testing.T, r *report, others []string, rules ...roleRule) {
	t.Helper()
	var bad []string
	for _, f := range r.Findings {
		bad = append(bad, fmt.Sprintf("an idle process got a %s %s: %s", f.Severity, f.Kind, f.Title))
	}
	bad = append(bad, roleProblems(r, others, rules...)...)
	if len(bad) > 0 {
		t.Errorf("%s\n%s", strings.Join(bad, "\n"), r.summary())
	}
}

// warm starts a case's load and gives the server a second to settle under it.
func warm(t *testing.T, name string) {
	t.Helper()
	startLoad(t, name, corpusLoad)
	time.Sleep(time.Second)
}

// 1. A single-threaded event loop: redis-server under redis-benchmark.
func TestCorpusRedis(t *testing.T) {
	requireCorpus(t, testutil.Command{Name: "redis-server", Package: "redis-server"},
		testutil.Command{Name: "redis-benchmark", Package: "redis-tools"})
	s := startHealthy(t, "redis")
	warm(t, "redis")
	r := traceCase(t, "redis", []int{s.pid}, false, nil)
	checkHealthy(t, r, poolThread, // bio_* and jemalloc's background thread wait for work
		roleRule{"the main thread", mainThread(s.pid), []string{roleLoop}, 1})
}

// 2. A process per connection: PostgreSQL backends under pgbench, traced
// from the postmaster with --follow-forks; pgbench connects once the trace
// runs, so every backend is forked inside it.
func TestCorpusPostgres(t *testing.T) {
	requirePostgres(t)
	s := startHealthy(t, "postgres")
	existing := withChildren(t, s.pid)
	r := traceCase(t, "postgres", []int{s.pid}, true, func() { startLoad(t, "postgres", 3) })
	backend := func(th thread) bool { return th.PID != s.pid && !slices.Contains(existing, th.PID) }
	checkHealthy(t, r, background, // checkpointer, background writer, walwriter, launchers
		roleRule{"the postmaster", mainThread(s.pid), []string{roleAcceptor}, 1},
		roleRule{"a backend forked for a pgbench connection", backend, []string{roleSyncWorker}, 4})
}

// 3. Prefork sync workers behind a proxy: four uWSGI workers behind nginx,
// each request a 20 ms query on MariaDB through PyMySQL, two clients.
func TestCorpusUWSGI(t *testing.T) {
	requireCorpus(t, cmdAB, cmdNginx, cmdMariaDB, testutil.Command{Name: "uwsgi", Package: "uwsgi"})
	requirePython(t, "pymysql", "python3-pymysql")
	startHealthy(t, "mariadb")
	s := startHealthy(t, "uwsgi")
	startHealthy(t, "nginx")
	waitChildren(t, s.pid, 4)
	warm(t, "uwsgi")
	pids := withChildren(t, s.pid)
	r := traceCase(t, "uwsgi", pids, false, nil)
	checkHealthy(t, r, nil,
		roleRule{"the uWSGI master", mainThread(s.pid), background, 1},
		roleRule{"a uWSGI worker", inProcess(pids[1:]...), []string{roleSyncWorker}, 4})
}

// 4 and 5. A thread pool in the JVM: com.sun.net.httpserver's dispatcher
// hands requests to eight pool threads.
func TestCorpusJavaPool(t *testing.T) {
	requireCorpus(t, cmdAB, testutil.Command{Name: "java", Package: "openjdk-17-jdk-headless"},
		testutil.Command{Name: "javac", Package: "openjdk-17-jdk-headless"}) // java runs the source file
	s := startHealthy(t, "java")
	warm(t, "java-pool")
	r := traceCase(t, "java-pool", []int{s.pid}, false, nil)
	checkHealthy(t, r, runtimeThread,
		roleRule{"the dispatcher", named(`^HTTP-Dispatcher$`), []string{roleLoop}, 1},
		roleRule{"a pool thread", named(`^handler-\d+$`), poolThread, 8},
		roleRule{"the launcher's main thread", mainThread(s.pid), []string{roleIdle}, 1})
}

// 5. A runtime-managed scheduler: a Go net/http server. Its threads are the
// runtime's: one waits in the netpoller, the others park in futex.
func TestCorpusGoHTTP(t *testing.T) {
	requireCorpus(t, cmdAB)
	s := startHealthy(t, "gohttp")
	warm(t, "go-http")
	r := traceCase(t, "go-http", []int{s.pid}, false, nil)
	// Any runtime thread may be the one in the netpoller: at least one is
	// the loop and none is more than the runtime's roles.
	checkHealthy(t, r, nil,
		roleRule{"a thread in the netpoller", func(th thread) bool { return th.Role == roleLoop }, []string{roleLoop}, 1},
		roleRule{"a runtime thread", func(thread) bool { return true }, runtimeThread, 0})
}

// 6. Node.js: the main thread runs libuv's loop, fs.promises.readFile runs
// on libuv's thread pool.
func TestCorpusNodeFS(t *testing.T) {
	requireCorpus(t, cmdAB, testutil.Command{Name: "node", Package: "nodejs"})
	s := startHealthy(t, "node")
	warm(t, "node-fs")
	r := traceCase(t, "node-fs", []int{s.pid}, false, nil)
	// Node 18 leaves its threads unnamed: libuv's pool threads are the
	// ones that open the file.
	checkHealthy(t, r, runtimeThread, // V8's platform threads, the inspector's and signals' threads
		roleRule{"the main thread", mainThread(s.pid), []string{roleLoop}, 1},
		roleRule{"a libuv pool thread (it opens the file)", r.calls("openat"), poolThread, 4})
}

// 7. An idle process: nothing to find, nothing to do.
func TestCorpusIdleSleep(t *testing.T) {
	requireCorpus(t)
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	r := traceCase(t, "idle-sleep", []int{sleeper.Process.Pid}, false, nil)
	checkQuiet(t, r, nil, roleRule{"the sleeping thread", mainThread(sleeper.Process.Pid), []string{roleIdle}, 1})
}

// 7. An idle server: memcached with no clients. Its loops wait, nothing
// else happens.
func TestCorpusIdleMemcached(t *testing.T) {
	requireCorpus(t, testutil.Command{Name: "memcached", Package: "memcached"})
	s := startHealthy(t, "memcached")
	r := traceCase(t, "idle-memcached", []int{s.pid}, false, nil)
	checkQuiet(t, r, background,
		roleRule{"the listener", mainThread(s.pid), []string{roleAcceptor, roleIdle}, 1},
		roleRule{"a worker loop", named(`^mc-worker$`), []string{roleLoop, roleIdle}, 4})
}

// 8. memcached under memcslap: a listener thread hands connections to four
// libevent worker loops.
func TestCorpusMemcached(t *testing.T) {
	requireCorpus(t, testutil.Command{Name: "memcached", Package: "memcached"},
		testutil.Command{Name: "memcslap", Package: "libmemcached-tools"})
	s := startHealthy(t, "memcached")
	warm(t, "memcached")
	r := traceCase(t, "memcached", []int{s.pid}, false, nil)
	// memcslap's connections were accepted before the trace; a worker
	// loop whose connections sit on another worker may see nothing.
	checkHealthy(t, r, background, // mc-log, LRU and slab maintainers, crawler
		roleRule{"the listener", mainThread(s.pid), []string{roleAcceptor, roleIdle}, 1},
		roleRule{"a worker loop serving memcslap", and(named(`^mc-worker$`), busy), []string{roleLoop}, 1},
		roleRule{"a worker loop", named(`^mc-worker$`), []string{roleLoop, roleIdle}, 0})
}

// 8. nginx serving static files: a master and two event-loop workers.
func TestCorpusNginxStatic(t *testing.T) {
	requireCorpus(t, cmdAB, cmdNginx)
	s := startHealthy(t, "nginx")
	waitChildren(t, s.pid, 2)
	warm(t, "nginx-static")
	pids := withChildren(t, s.pid)
	r := traceCase(t, "nginx-static", pids, false, nil)
	checkHealthy(t, r, nil,
		roleRule{"the master", mainThread(s.pid), []string{roleIdle}, 1},
		roleRule{"a worker", inProcess(pids[1:]...), []string{roleLoop}, 2})
}

// 8. gunicorn with gthread workers behind nginx: each worker's main thread
// runs a selector loop that accepts connections and hands them to its pool
// of four threads (an acceptor when it only accepted during the trace).
func TestCorpusGunicornGthread(t *testing.T) {
	requireCorpus(t, cmdAB, cmdNginx, cmdMariaDB, testutil.Command{Name: "gunicorn", Package: "gunicorn"})
	requirePython(t, "pymysql", "python3-pymysql")
	startHealthy(t, "mariadb")
	s := startHealthy(t, "gunicorn")
	startHealthy(t, "nginx")
	waitChildren(t, s.pid, 2)
	warm(t, "gunicorn-gthread")
	pids := withChildren(t, s.pid)
	workers := pids[1:]
	isWorkerMain := func(th thread) bool { return slices.Contains(workers, th.TID) }
	r := traceCase(t, "gunicorn-gthread", pids, false, nil)
	checkHealthy(t, r, nil,
		roleRule{"the arbiter", mainThread(s.pid), background, 1},
		roleRule{"a worker's main thread serving requests", and(isWorkerMain, busy), []string{roleLoop, roleAcceptor}, 1},
		roleRule{"a worker's main thread", isWorkerMain, []string{roleLoop, roleAcceptor, roleIdle}, 0},
		roleRule{"a worker's pool thread", inProcess(workers...), poolThread, 2})
}
