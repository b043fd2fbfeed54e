package procfs

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/syscalls"
)

// The testdata tree was copied from a python3 process (pid 14822) that had
// renamed itself "py (srv) x", ran a thread "worker) x" blocked in recvfrom
// on fd 5, had one child (14825) and one socket of each kind.
var testFS = FS{Root: "testdata/proc"}

const (
	fixturePID    = 14822
	fixtureWorker = 14824
	fixtureChild  = 14825
)

func TestProcessFields(t *testing.T) {
	if !testFS.Exists(fixturePID) || testFS.Exists(99999) || testFS.Exists(0) {
		t.Error("Exists is wrong about the fixture")
	}
	comm, err := testFS.Comm(fixturePID)
	if err != nil || comm != "py (srv) x" {
		t.Errorf("Comm = %q, %v", comm, err)
	}
	name, err := testFS.ThreadName(fixturePID, fixtureWorker)
	if err != nil || name != "worker) x" {
		t.Errorf("ThreadName = %q, %v", name, err)
	}
	args, err := testFS.Cmdline(fixturePID)
	if err != nil || !slices.Equal(args, []string{"/usr/bin/python3", "fixture.py"}) {
		t.Errorf("Cmdline = %q, %v", args, err)
	}
	exe, err := testFS.Exe(fixturePID)
	if err != nil || exe != "/usr/bin/python3.11" {
		t.Errorf("Exe = %q, %v", exe, err)
	}
	tasks, err := testFS.Tasks(fixturePID)
	if err != nil || !slices.Equal(tasks, []int{fixturePID, fixtureWorker}) {
		t.Errorf("Tasks = %v, %v", tasks, err)
	}
	cpu, err := testFS.TaskCPU(fixturePID, fixturePID)
	if err != nil || cpu != 20*time.Millisecond { // utime 2, stime 0
		t.Errorf("TaskCPU = %v, %v", cpu, err)
	}
	// The testdata has no task/*/children files, like a kernel without
	// CONFIG_PROC_CHILDREN, so this takes the scanning path.
	kids, err := testFS.Children(fixturePID)
	if err != nil || !slices.Equal(kids, []int{fixtureChild}) {
		t.Errorf("Children = %v, %v", kids, err)
	}
}

func TestPPID(t *testing.T) {
	for _, tt := range []struct{ pid, want int }{{fixturePID, 1}, {fixtureChild, fixturePID}} {
		got, err := testFS.PPID(tt.pid)
		if err != nil || got != tt.want {
			t.Errorf("PPID(%d) = %d, %v, want %d", tt.pid, got, err, tt.want)
		}
	}
}

func TestMissingPID(t *testing.T) {
	const gone = 99999
	calls := map[string]func() error{
		"Comm":       func() error { _, err := testFS.Comm(gone); return err },
		"ThreadName": func() error { _, err := testFS.ThreadName(gone, gone); return err },
		"Cmdline":    func() error { _, err := testFS.Cmdline(gone); return err },
		"Exe":        func() error { _, err := testFS.Exe(gone); return err },
		"PPID":       func() error { _, err := testFS.PPID(gone); return err },
		"Tasks":      func() error { _, err := testFS.Tasks(gone); return err },
		"TaskCPU":    func() error { _, err := testFS.TaskCPU(gone, gone); return err },
		"Children":   func() error { _, err := testFS.Children(gone); return err },
		"Blocked":    func() error { _, err := testFS.Blocked(gone, gone); return err },
		"Sockets":    func() error { _, err := testFS.Sockets(gone); return err },
		"FDFlags":    func() error { _, err := testFS.FDFlags(gone, 0); return err },
		"FDTarget":   func() error { _, err := testFS.FDTarget(gone, 0); return err },
		"Maps":       func() error { _, err := testFS.Maps(gone); return err },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: err = %v, want fs.ErrNotExist", name, err)
			continue
		}
		if !strings.Contains(err.Error(), "99999") {
			t.Errorf("%s: error %q does not name the pid", name, err)
		}
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    stat
		wantErr bool
	}{
		{
			name: "plain",
			in:   "13695 (cat) R 13693 13693 4277 0 -1 4194304 99 0 0 0 7 3 0 0 20 0 1 0 66954\n",
			want: stat{Comm: "cat", State: 'R', PPID: 13693, UTime: 7, STime: 3},
		},
		{
			name: "comm with spaces and parens",
			in:   "14824 (worker) x) S 1 14815 4277 0 -1 4194368 49 0 0 0 5 6 0 0 20 0 2 0 69147",
			want: stat{Comm: "worker) x", State: 'S', PPID: 1, UTime: 5, STime: 6},
		},
		{
			name: "comm that looks like fields",
			in:   "7 (a) R 1 2 3) Z 42 1 1 0 -1 0 0 0 0 0 9 9 0 0 20 0 1 0 1",
			want: stat{Comm: "a) R 1 2 3", State: 'Z', PPID: 42, UTime: 9, STime: 9},
		},
		{name: "empty", in: "", wantErr: true},
		{name: "no comm", in: "1 cat R 0", wantErr: true},
		{name: "truncated", in: "1 (cat) R 0 1 1", wantErr: true},
		{name: "bad ppid", in: "1 (cat) R x 1 1 0 -1 0 0 0 0 0 1 1 0", wantErr: true},
		{name: "bad state", in: "1 (cat) RR 0 1 1 0 -1 0 0 0 0 0 1 1 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBlockedFixture(t *testing.T) {
	if syscalls.Native() != "amd64" {
		t.Skip("the fixture's syscall numbers are amd64's")
	}
	bs, err := testFS.Blocked(fixturePID, fixtureWorker)
	if err != nil {
		t.Fatal(err)
	}
	if bs.PID != fixturePID || bs.TID != fixtureWorker || bs.Running || bs.Nr != 45 ||
		bs.Syscall != "recvfrom" || bs.FD != 5 || bs.Wchan != "wait_woken" || bs.Args[2] != 0xa {
		t.Errorf("worker: %+v", bs)
	}
	bs, err = testFS.Blocked(fixturePID, fixturePID)
	if err != nil {
		t.Fatal(err)
	}
	if bs.Syscall != "clock_nanosleep" || bs.FD != -1 || bs.Wchan != "hrtimer_nanosleep" {
		t.Errorf("main thread: %+v", bs)
	}
}

func TestParseSyscall(t *testing.T) {
	tests := []struct {
		name     string
		in, arch string
		running  bool
		nr       int
		syscall  string
		fd       int
		arg0     uint64
		wantErr  bool
	}{
		{name: "running", in: "running\n", arch: "amd64", running: true, nr: -1, fd: -1},
		{name: "outside a syscall", in: "-1 0x7ffd1000 0x401000\n", arch: "amd64", nr: -1, fd: -1},
		{
			name: "amd64 poll", in: "7 0x7ffe5c0 0x1 0xffffffffffffffff 0x0 0x0 0x0 0x7ffe5b8 0x7f0a1c2\n",
			arch: "amd64", nr: 7, syscall: "poll", fd: -1, arg0: 0x7ffe5c0,
		},
		{
			name: "arm64 recvfrom", in: "207 0x9 0xffff8000 0x4000 0x0 0x0 0x0 0xffffe000 0xffff1234",
			arch: "arm64", nr: 207, syscall: "recvfrom", fd: 9, arg0: 9,
		},
		{
			name: "fd keeps only the int", in: "0 0xffffffff00000003 0x0 0x0 0x0 0x0 0x0 0x7ffe5b8 0x7f0a1c2",
			arch: "amd64", nr: 0, syscall: "read", fd: 3, arg0: 0xffffffff00000003,
		},
		{
			name: "unknown number", in: "999 0x1 0x0 0x0 0x0 0x0 0x0 0x7ffe5b8 0x7f0a1c2",
			arch: "amd64", nr: 999, syscall: "", fd: -1, arg0: 1,
		},
		// /proc/2/syscall: not "blocked in read fd 0".
		{name: "kernel thread", in: "0 0x0 0x0 0x0 0x0 0x0 0x0 0x0 0x0\n", arch: "amd64", nr: -1, fd: -1},
		{name: "empty", in: "", arch: "amd64", wantErr: true},
		{name: "short", in: "0 0x1 0x2", arch: "amd64", wantErr: true},
		{name: "bad nr", in: "x 0x1 0x0 0x0 0x0 0x0 0x0 0x0 0x0", arch: "amd64", wantErr: true},
		{name: "negative nr with args", in: "-5 0x1 0x0 0x0 0x0 0x0 0x0 0x0 0x0", arch: "amd64", wantErr: true},
		{name: "bad arg", in: "0 0xzz 0x0 0x0 0x0 0x0 0x0 0x0 0x0", arch: "amd64", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs, err := ParseSyscall(tt.in, tt.arch)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if bs.Running != tt.running || bs.Nr != tt.nr || bs.Syscall != tt.syscall ||
				bs.FD != tt.fd || bs.Args[0] != tt.arg0 {
				t.Errorf("got %+v", bs)
			}
		})
	}
}

func TestFDs(t *testing.T) {
	const oNonblock = 0o4000
	for _, tt := range []struct {
		fd       int
		target   string
		nonblock bool
	}{
		{1, "/tmp/h1cap/out.txt", false},
		{3, "socket:[25020]", false},
		{19, "socket:[25037]", true},
	} {
		target, err := testFS.FDTarget(fixturePID, tt.fd)
		if err != nil || target != tt.target {
			t.Errorf("FDTarget(%d) = %q, %v, want %q", tt.fd, target, err, tt.target)
		}
		flags, err := testFS.FDFlags(fixturePID, tt.fd)
		if err != nil || (flags&oNonblock != 0) != tt.nonblock {
			t.Errorf("FDFlags(%d) = %#o, %v, want nonblock %v", tt.fd, flags, err, tt.nonblock)
		}
	}
	if _, err := testFS.FDFlags(fixturePID, 4); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("FDFlags of an fd without fdinfo: %v", err)
	}
}

func TestParseFDInfoFlags(t *testing.T) {
	tests := []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"pos:\t0\nflags:\t02004002\nmnt_id:\t10\n", 0o2004002, false},
		{"flags:\t0100001\n", 0o100001, false},
		{"pos:\t0\n", 0, true},
		{"flags:\t09\n", 0, true},
	}
	for _, tt := range tests {
		got, err := parseFDInfoFlags([]byte(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseFDInfoFlags(%q) = %#o, %v", tt.in, got, err)
		}
	}
}
