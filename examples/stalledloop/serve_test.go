//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testDelay is the database delay in tests: long enough to tell apart from
// a request that skipped the database, short enough to keep tests quick.
const testDelay = 30 * time.Millisecond

func startTestServer(t *testing.T) *server {
	t.Helper()
	srv, err := startServer(serveConfig{
		addr: "127.0.0.1:0", dbAddr: "127.0.0.1:0", storeAddr: "127.0.0.1:0", dbDelay: testDelay,
	})
	if err != nil {
		t.Fatalf("startServer: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv
}

func get(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, string(body)
}

func TestServeEachRequestWaitsForTheDatabase(t *testing.T) {
	srv := startTestServer(t)
	client := &http.Client{Timeout: 10 * time.Second}

	for i := 1; i <= 3; i++ {
		start := time.Now()
		status, body := get(t, client, srv.url())
		// A lower bound: the loop cannot answer before the database does.
		if took := time.Since(start); took < testDelay {
			t.Errorf("request %d took %v, less than the database delay %v", i, took, testDelay)
		}
		if want := fmt.Sprintf("job %d done\n", i); status != http.StatusOK || body != want {
			t.Errorf("request %d: %d %q, want 200 %q", i, status, body, want)
		}
	}

	// Concurrent requests queue behind each other's database call, as they
	// would behind a C driver on an event loop.
	const parallel = 4
	var wg sync.WaitGroup
	start := time.Now()
	for range parallel {
		wg.Go(func() {
			resp, err := client.Get(srv.url())
			if err != nil {
				t.Errorf("GET: %v", err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if took := time.Since(start); took < parallel*testDelay {
		t.Errorf("%d concurrent requests took %v, less than %v: they were not serialised", parallel, took, parallel*testDelay)
	}

	const total = 3 + parallel
	if got := srv.db.accepted.Load(); got != 1 {
		t.Errorf("database accepted %d connections, want 1 persistent one", got)
	}
	if got := srv.db.queries.Load(); got != total {
		t.Errorf("database got %d queries, want %d", got, total)
	}
	if got := srv.store.accepted.Load(); got != total {
		t.Errorf("result store accepted %d connections, want one per request (%d)", got, total)
	}
	if got := srv.store.results.Load(); got != total {
		t.Errorf("result store got %d results, want %d", got, total)
	}
}

func TestServeHTTP(t *testing.T) {
	srv := startTestServer(t)
	conn, err := net.Dial("tcp", srv.loop.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)

	// Pipelined on one connection: answered in order, the last one closes.
	reqs := "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi" +
		"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(conn, reqs); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		method string
		status int
		body   string
	}{
		{"GET", http.StatusNotFound, "not found\n"},
		{"POST", http.StatusMethodNotAllowed, "method not allowed\n"},
		{"HEAD", http.StatusOK, ""},
		{"GET", http.StatusOK, "job 2 done\n"},
	}
	for i, w := range want {
		resp, err := http.ReadResponse(r, &http.Request{Method: w.method})
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", i, err)
		}
		if resp.StatusCode != w.status || string(body) != w.body {
			t.Errorf("response %d: %d %q, want %d %q", i, resp.StatusCode, body, w.status, w.body)
		}
	}
	if n, err := r.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after Connection: close got %d bytes, %v; want EOF", n, err)
	}

	// A malformed request gets a 400 and the connection is closed.
	bad, err := net.Dial("tcp", srv.loop.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	bad.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(bad, "NONSENSE\r\n\r\n")
	out, err := io.ReadAll(bad)
	if err != nil {
		t.Fatalf("read after bad request: %v", err)
	}
	if !bytes.HasPrefix(out, []byte("HTTP/1.1 400 ")) {
		t.Errorf("bad request answered %q", out)
	}
}

func TestServeDatabaseGoneGives502(t *testing.T) {
	srv := startTestServer(t)
	if err := srv.db.Close(); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	if status, body := get(t, client, srv.url()); status != http.StatusBadGateway || !strings.Contains(body, "database") {
		t.Errorf("got %d %q, want 502 naming the database", status, body)
	}
	// The loop survives and keeps answering.
	if status, _ := get(t, client, srv.url()); status != http.StatusBadGateway {
		t.Errorf("second request: %d, want 502", status)
	}
}

func TestLoadAgainstServer(t *testing.T) {
	srv := startTestServer(t)
	var out bytes.Buffer
	if code := run(context.Background(), []string{"load", "--url", srv.url(), "-c", "2", "-n", "5"}, &out, io.Discard); code != exitOK {
		t.Fatalf("load exit %d, output:\n%s", code, &out)
	}
	for _, want := range []string{"requests     5\n", "errors       0\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &out)
		}
	}
	if got := srv.store.results.Load(); got != 5 {
		t.Errorf("server did %d jobs, want 5", got)
	}
}

// TestMain lets the subprocess test run the real main in a child process.
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv("STALLEDLOOP_MAIN_ARGS"); ok {
		os.Args = append([]string{"stalledloop"}, strings.Fields(args)...)
		main()
		return
	}
	os.Exit(m.Run())
}

func TestServeProcess(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "STALLEDLOOP_MAIN_ARGS=serve --addr 127.0.0.1:0 --ready-file "+ready)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})

	var pidText []byte
	for pidText == nil {
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v\n%s", err, &stderr)
		case <-time.After(10 * time.Millisecond):
		}
		b, err := os.ReadFile(ready)
		if err == nil {
			pidText = b
		}
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(pidText))); err != nil || pid != cmd.Process.Pid {
		t.Fatalf("ready file holds %q, want pid %d", pidText, cmd.Process.Pid)
	}

	// Thread names: a report names the loop thread, so check it is visible.
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/comm", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	named := 0
	for _, comm := range tasks {
		if b, err := os.ReadFile(comm); err == nil && strings.TrimSpace(string(b)) == loopThreadName {
			named++
		}
	}
	if named != 1 {
		t.Errorf("%d threads named %q, want 1", named, loopThreadName)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("serve after SIGTERM: %v\n%s", err, &stderr)
	}
	done <- nil // for the cleanup
}
