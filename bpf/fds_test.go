//go:build linux

package bpf

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/testutil"
)

// envFDWorkload makes the test binary the fd workload: "PORT N PATH".
const envFDWorkload = "SNAG_TEST_FD_WORKLOAD"

// maybeRunFDWorkload connects to 127.0.0.1:PORT and closes the socket N
// times, opens and closes PATH, then opens PATH again and leaves it open
// until it exits. It prints the fds it used. Raw syscalls on one locked
// thread: no runtime poller, no fds but these.
func maybeRunFDWorkload() {
	spec := os.Getenv(envFDWorkload)
	if spec == "" {
		return
	}
	var port, n int
	var path string
	if _, err := fmt.Sscanf(spec, "%d %d %s", &port, &n, &path); err != nil {
		fmt.Fprintln(os.Stderr, "bad fd workload spec:", err)
		os.Exit(2)
	}
	runtime.LockOSThread()
	in := bufio.NewReader(os.Stdin)
	fmt.Println("ready")
	if _, err := in.ReadString('\n'); err != nil {
		os.Exit(3)
	}
	fail := func(what string, err error) {
		fmt.Fprintln(os.Stderr, what+":", err)
		os.Exit(4)
	}
	var socks []string
	for i := 0; i < n; i++ {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			fail("socket", err)
		}
		if err := unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			fail("connect", err)
		}
		if err := unix.Close(fd); err != nil {
			fail("close", err)
		}
		socks = append(socks, strconv.Itoa(fd))
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fail("open", err)
	}
	if err := unix.Close(fd); err != nil {
		fail("close", err)
	}
	leaked, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fail("open", err)
	}
	fmt.Printf("done %s %d %d\n", strings.Join(socks, ","), fd, leaked)
	io.Copy(io.Discard, in)
	os.Exit(0)
}

// Every close of a socket or file opened while tracing is an event, fast
// or not, and every open names its path; an exited process's fds are
// forgotten.
func TestOpenAndCloseEvents(t *testing.T) {
	testutil.RequireBPF(t)
	const n = 25
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	path := filepath.Join(t.TempDir(), "ledger.db")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d %d %s", envFDWorkload, ln.Addr().(*net.TCPAddr).Port, n, path))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	out := bufio.NewReader(stdout)
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("workload said %q: %v", line, err)
	}
	pid := cmd.Process.Pid

	tr, err := Load(Options{PIDs: []int{pid}, Threshold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	io.WriteString(stdin, "go\n")
	line, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("workload ended early: %v", err)
	}
	var socks string
	var fileFD, leaked int
	if _, err := fmt.Sscanf(line, "done %s %d %d", &socks, &fileFD, &leaked); err != nil {
		t.Fatalf("workload said %q: %v", line, err)
	}
	stdin.Close() // the workload exits with one file still open
	cmd.Wait()

	var connects, opens, closes []model.Event
	var exited bool
	var rec Record
	for !exited {
		err := tr.Read(&rec, time.Now().Add(2*time.Second))
		if err == ErrTimeout {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ev := rec.Event
		if ev.PID != pid {
			continue
		}
		switch ev.Kind {
		case model.EvConnect:
			connects = append(connects, ev)
		case model.EvOpen:
			opens = append(opens, ev)
		case model.EvClose:
			closes = append(closes, ev)
		case model.EvExit:
			exited = !ev.Thread
		}
	}
	if !exited {
		t.Fatal("no exit event for the workload")
	}

	var sockFDs []int
	for _, s := range strings.Split(socks, ",") {
		fd, _ := strconv.Atoi(s)
		sockFDs = append(sockFDs, fd)
	}
	if len(connects) != n {
		for _, c := range connects {
			t.Logf("connect %+v", c)
		}
		t.Errorf("%d connect events, want %d", len(connects), n)
	}
	var sockCloses, fileCloses []model.Event
	for _, ev := range closes {
		if ev.FDKind == model.FDSocket {
			sockCloses = append(sockCloses, ev)
		} else {
			fileCloses = append(fileCloses, ev)
		}
	}
	if len(sockCloses) != n {
		t.Fatalf("%d socket close events, want one per connect (%d): %+v", len(sockCloses), n, sockCloses)
	}
	for i, ev := range sockCloses {
		if ev.FD != sockFDs[i] || ev.Syscall != "close" || ev.Ret != 0 {
			t.Errorf("close %d: fd %d %s = %d, want close(%d) = 0", i, ev.FD, ev.Syscall, ev.Ret, sockFDs[i])
		}
		if i < len(connects) && (connects[i].FD != ev.FD || connects[i].Time > ev.Time) {
			t.Errorf("close %d of fd %d at %d does not follow connect of fd %d at %d", i, ev.FD, ev.Time, connects[i].FD, connects[i].Time)
		}
	}

	var named []model.Event
	for _, ev := range opens {
		if ev.Filename == path {
			named = append(named, ev)
		}
	}
	if len(named) != 2 {
		t.Fatalf("%d open events of %s, want 2; opens: %+v", len(named), path, opens)
	}
	if ev := named[0]; ev.FD != fileFD || ev.Ret != int64(fileFD) || ev.FDKind != model.FDFile || !strings.HasPrefix(ev.Syscall, "open") {
		t.Errorf("open event fd %d ret %d kind %v syscall %q, want an open returning fd %d of a file", ev.FD, ev.Ret, ev.FDKind, ev.Syscall, fileFD)
	}
	if named[1].FD != leaked {
		t.Errorf("second open has fd %d, want %d", named[1].FD, leaked)
	}
	if !slices.ContainsFunc(fileCloses, func(ev model.Event) bool { return ev.FD == fileFD && ev.FDKind == model.FDFile }) {
		t.Errorf("no close event of the file's fd %d: %+v", fileFD, fileCloses)
	}

	// The leaked fd closed with the process: its entry is gone too.
	var key snagFdKey
	var kind uint8
	it := tr.objs.Fds.Iterate()
	for it.Next(&key, &kind) {
		if int(key.Tgid) == pid {
			t.Errorf("fd %d of exited pid %d still tracked", key.Fd, pid)
		}
	}
	d, err := tr.Drops()
	if err != nil {
		t.Fatal(err)
	}
	if d.Total() != 0 {
		t.Errorf("drops %+v, want none", d)
	}
}
