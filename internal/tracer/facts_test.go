//go:build linux

package tracer

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/testutil"
)

// A Python loop watches its listener and a pipe at the attach; during the
// trace it imports asyncio, watches an accepted connection and connects
// to its own listener again. The trace must carry its runtime (the loop
// known only at the end), its files, both epoll readings and who serves
// the local peer.
const pythonLoop = `
import os, select, socket, sys
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
cli = socket.create_connection(srv.getsockname()); conn, _ = srv.accept()
r, w = os.pipe()
log = open(sys.argv[1], "w")
ep = select.epoll()
ep.register(srv.fileno(), select.EPOLLIN)
ep.register(r, select.EPOLLIN)
print(srv.getsockname()[1], ep.fileno(), srv.fileno(), r, conn.fileno(), log.fileno(), flush=True)
sys.stdin.readline()
import asyncio
ep.register(conn.fileno(), select.EPOLLIN)
again = socket.create_connection(srv.getsockname())
print("ok", flush=True)
sys.stdin.readline()
`

func TestProcessFactsOfAPythonLoop(t *testing.T) {
	testutil.RequireBPF(t)
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	logPath := filepath.Join(t.TempDir(), "app.log")
	cmd := exec.Command(py, "-c", pythonLoop, logPath)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var n [6]int // port, epfd, listener fd, pipe read fd, accepted fd, log fd
	for i, f := range strings.Fields(line) {
		n[i], _ = strconv.Atoi(f)
	}
	port, epfd, srvFD, pipeFD, connFD, logFD := n[0], n[1], n[2], n[3], n[4], n[5]
	pid := cmd.Process.Pid

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr, err := Run(ctx, Config{PIDs: []int{pid}, Threshold: 10 * time.Millisecond},
		KeepEvents(0), started(func() {
			go func() {
				stdin.Write([]byte("go\n"))
				if l, err := out.ReadString('\n'); err != nil || l != "ok\n" {
					t.Errorf("python: %q, %v", l, err)
				}
				time.Sleep(200 * time.Millisecond)
				cancel()
			}()
		}))
	if err != nil {
		t.Fatal(err)
	}

	rt := tr.Processes[0].Runtime
	if rt.Name != model.RuntimeCPython || rt.Version == "" || rt.Loop != model.LoopAsyncio {
		t.Errorf("runtime %+v, want CPython with its version and asyncio (imported after the attach)", rt)
	}
	if !slices.Contains(tr.Files, model.OpenFile{PID: pid, FD: logFD, Path: logPath}) {
		t.Errorf("files %+v lack fd %d %s", tr.Files, logFD, logPath)
	}
	for _, f := range tr.Files {
		if strings.HasPrefix(f.Path, "socket:") {
			t.Errorf("socket %+v among the files", f)
		}
	}
	var atAttach, atEnd *model.EpollSet
	for i := range tr.Epoll {
		if s := &tr.Epoll[i]; s.PID == pid && s.EPFD == epfd {
			if s.End {
				atEnd = s
			} else {
				atAttach = s
			}
		}
	}
	if atAttach == nil || atEnd == nil {
		t.Fatalf("epoll sets %+v, want epfd %d at the attach and at the end", tr.Epoll, epfd)
	}
	watch := func(s *model.EpollSet, fd int) (model.EpollFD, bool) {
		i := slices.IndexFunc(s.FDs, func(w model.EpollFD) bool { return w.FD == fd })
		if i < 0 {
			return model.EpollFD{}, false
		}
		return s.FDs[i], true
	}
	if w, ok := watch(atAttach, srvFD); !ok || !w.Listening || w.Kind != model.FDSocket {
		t.Errorf("listener fd %d at the attach: %+v, %v", srvFD, w, ok)
	}
	if w, ok := watch(atAttach, pipeFD); !ok || w.Kind != model.FDPipe || !strings.HasPrefix(w.Path, "pipe:[") {
		t.Errorf("pipe fd %d at the attach: %+v, %v", pipeFD, w, ok)
	}
	if _, ok := watch(atAttach, connFD); ok {
		t.Errorf("connection fd %d watched before it was added", connFD)
	}
	if w, ok := watch(atEnd, connFD); !ok || w.Peer.IsZero() || w.Listening {
		t.Errorf("connection fd %d at the end: %+v, %v", connFD, w, ok)
	}
	i := slices.IndexFunc(tr.Listeners, func(l model.Listener) bool { return l.Addr.Port == uint16(port) })
	if i < 0 || tr.Listeners[i].PID != pid || tr.Listeners[i].Comm == "" {
		t.Errorf("listeners %+v, want 127.0.0.1:%d served by pid %d", tr.Listeners, port, pid)
	}
}
