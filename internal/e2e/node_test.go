//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/testutil"
)

// nodeServer serves /sync with a readFileSync of its stdin (a pipe the test
// writes to late: the event loop stalls in read) and /async with an
// fs.readFile of $SLOW_PIPE (another late pipe, the test's end opened
// through /proc: libuv's threadpool waits, the loop does not). Its client
// is itself.
const nodeServer = `'use strict';
const http = require('http');
const fs = require('fs');

function handleRequest(req, res) {
  if (req.url === '/async') {
    fs.readFile(process.env.SLOW_PIPE, (err, b) => res.end(err ? 'error' : String(b.length)));
    return;
  }
  res.end(String(fs.readFileSync(0).length));
}

const server = http.createServer(handleRequest);
server.listen(0, '127.0.0.1', async () => {
  const { port } = server.address();
  console.error('ready');
  for (const path of ['/sync', '/async']) {
    await new Promise((resolve, reject) => {
      http.get({ port, host: '127.0.0.1', path }, (res) => { res.resume(); res.on('end', resolve); }).on('error', reject);
    });
  }
  // Live on a moment: snag names JavaScript frames from the live process.
  setTimeout(() => server.close(), 1000);
});
`

// handlerLine is the line of "function handleRequest" in nodeServer.
const handlerLine = 5

// traceNodeServer runs nodeServer under snag run with node's extra args,
// feeding each pipe 300ms late, and returns the JSON report and the folded
// stacks.
func traceNodeServer(t *testing.T, nodeArgs ...string) (*report, string) {
	t.Helper()
	testutil.RequireBPF(t)
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "server.js")
	os.WriteFile(script, []byte(nodeServer), 0o644)
	js, folded := filepath.Join(dir, "out.json"), filepath.Join(dir, "out.folded")
	stdinR, stdinW, _ := os.Pipe()
	fd3R, fd3W, _ := os.Pipe()
	defer fd3R.Close()
	args := append([]string{"run", "-o", js, "-o", folded, "--", "node"}, nodeArgs...)
	cmd := exec.Command(bin("snag"), append(args, script)...)
	cmd.Dir = dir
	cmd.Stdin = stdinR
	cmd.Env = append(os.Environ(), fmt.Sprintf("SLOW_PIPE=/proc/%d/fd/%d", os.Getpid(), fd3R.Fd()))
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdinR.Close()
	go func() {
		// The readFileSync waits for its pipe's end, then the readFile
		// for the other's; the server says when it starts asking (node
		// starts slowly on a loaded machine).
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "ready") && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		stdinW.Write([]byte("hello\n"))
		stdinW.Close()
		time.Sleep(300 * time.Millisecond)
		fd3W.Write([]byte("hello\n"))
		fd3W.Close()
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("snag run: %v\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("snag run did not end\n%s", out.String())
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	f, err := os.ReadFile(folded)
	if err != nil {
		t.Fatal(err)
	}
	return &r, string(f)
}

// checkNodeStacks asserts the loop stall in read names the handler with its
// script and line, and the threadpool's read names libuv's worker and no
// JavaScript.
func checkNodeStacks(t *testing.T, r *report, folded string) {
	t.Helper()
	var stall *finding
	for i := range r.Findings {
		if f := &r.Findings[i]; f.Kind == "loop-stall" && f.Syscall == "read" {
			stall = f
		}
	}
	if stall == nil {
		t.Fatalf("no loop stall in read; findings %+v\nfolded:\n%s", r.Findings, folded)
	}
	want := fmt.Sprintf("handleRequest (server.js:%d)", handlerLine)
	if !containsFrame(stall.Stack, want) {
		t.Errorf("the stall's stack lacks %q:\n  %s", want, strings.Join(stall.Stack, "\n  "))
	}
	for _, f := range stall.Stack {
		if strings.HasPrefix(f, "[unknown") {
			t.Errorf("the stall's stack has an unnamed frame %s:\n  %s", f, strings.Join(stall.Stack, "\n  "))
		}
	}
	// The threadpool's read of fd 3: a worker's stack, no JavaScript.
	var worker string
	for _, l := range strings.Split(folded, "\n") {
		// "node (PID);node (TID);…": a thread other than the main one.
		parts := strings.SplitN(l, ";", 3)
		if len(parts) == 3 && parts[0] != parts[1] && strings.Contains(l, "uv__fs_work") && strings.Contains(l, ";read ") {
			worker = l
		}
	}
	if worker == "" {
		t.Fatalf("no threadpool read in the folded stacks:\n%s", folded)
	}
	if !strings.Contains(worker, "worker (node)") || strings.Contains(worker, ".js") || strings.Contains(worker, "handleRequest") {
		t.Errorf("the threadpool read's stack should be libuv's worker alone:\n  %s", worker)
	}
}

func containsFrame(stack []string, want string) bool {
	for _, f := range stack {
		if f == want {
			return true
		}
	}
	return false
}

// Without a restart or any flag: V8's v8dbg_* metadata in node's binary.
func TestNodeStallNamesHandlerFromV8Metadata(t *testing.T) {
	r, folded := traceNodeServer(t)
	checkNodeStacks(t, r, folded)
}

// With --perf-basic-prof node writes /tmp/perf-PID.map; JIT frames are
// named from it, interpreted ones from the metadata.
func TestNodeStallNamesHandlerWithPerfMap(t *testing.T) {
	r, folded := traceNodeServer(t, "--perf-basic-prof")
	t.Cleanup(func() { os.Remove(fmt.Sprintf("/tmp/perf-%d.map", r.Target.PID)) })
	checkNodeStacks(t, r, folded)
}

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
