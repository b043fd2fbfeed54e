package report

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// Build ids of the fixture's shared objects.
const (
	buildIDLibc     = "c047672cae7964324658491e7dee26748ae5d2f8"
	buildIDMariaDB  = "9f1e0c2f4b7d2d1a5b6e8c0a3f4e5d6c7b8a9f00"
	buildIDPython   = "5b2a1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a49"
	buildIDMySQLExt = "1a2b3c4d5e6f708192a3b4c5d6e7f80912a3b4c5"
)

func libcFrame(fn string, addr uint64) model.Frame {
	return model.Frame{Addr: addr, Function: fn, Module: "libc.so.6", Path: "/usr/lib/x86_64-linux-gnu/libc.so.6", BuildID: buildIDLibc}
}

func mariadbFrame(fn string, addr uint64) model.Frame {
	return model.Frame{Addr: addr, Function: fn, Module: "libmariadb.so.3", Path: "/usr/lib/x86_64-linux-gnu/libmariadb.so.3", BuildID: buildIDMariaDB}
}

func pythonFrame(fn string, addr uint64) model.Frame {
	return model.Frame{Addr: addr, Function: fn, Module: "python3.11", Path: "/usr/bin/python3.11", BuildID: buildIDPython}
}

func pyFrame(fn, file string) model.Frame {
	return model.Frame{Function: fn, Module: file, Path: "/srv/app/" + file, Kind: model.FrameInterpreter}
}

// withLine has an interpreter frame executing the given line.
func withLine(f model.Frame, line int) model.Frame {
	f.Line = line
	return f
}

// mysqlStack is a gevent hub blocked in libmariadb's poll under the MySQLdb
// C extension, leaf first, as the unwinder reports it.
func mysqlStack() []model.Frame {
	return []model.Frame{
		libcFrame("poll", 0x7f3a1c51ab2f),
		mariadbFrame("pvio_socket_wait_io_or_timeout", 0x7f3a1b2f4d11),
		mariadbFrame("pvio_socket_read", 0x7f3a1b2f50a2),
		mariadbFrame("ma_pvio_read", 0x7f3a1b2f2c47),
		mariadbFrame("ma_net_safe_read", 0x7f3a1b2e8a93),
		mariadbFrame("mthd_my_read_one_row", 0x7f3a1b2e9f10),
		{Addr: 0x7f3a1b6a3e55, Function: "_mysql_ConnectionObject_query", Module: "_mysql.cpython-311-x86_64-linux-gnu.so",
			Path: "/usr/lib/python3/dist-packages/MySQLdb/_mysql.cpython-311-x86_64-linux-gnu.so", BuildID: buildIDMySQLExt},
		pythonFrame("cfunction_call", 0x5630f2a1c3b0),
		pyFrame("execute", "MySQLdb/cursors.py"),
		withLine(pyFrame("get_user", "app/views.py"), 42),
		pythonFrame("_PyEval_EvalFrameDefault", 0x5630f2a0e5d1),
		pythonFrame("PyEval_EvalCode", 0x5630f2b11a20),
		pythonFrame("main", 0x5630f29f8c1d),
		libcFrame("__libc_start_call_main", 0x7f3a1c4a9d8f),
	}
}

func memcachedStack() []model.Frame {
	lib := func(fn string, addr uint64) model.Frame {
		return model.Frame{Addr: addr, Function: fn, Module: "libmemcached.so.11", Path: "/usr/lib/x86_64-linux-gnu/libmemcached.so.11"}
	}
	return []model.Frame{
		libcFrame("recv", 0x7f3a1c52e1a0),
		lib("memcached_io_read", 0x7f3a1a8c2b31),
		lib("memcached_read_one_response", 0x7f3a1a8c4e72),
		lib("memcached_mget_by_key", 0x7f3a1a8c7f03),
		{Addr: 0x7f3a1a9e1c44, Function: "PylibMC_Client_get", Module: "_pylibmc.cpython-311-x86_64-linux-gnu.so"},
		pythonFrame("_PyEval_EvalFrameDefault", 0x5630f2a0e5d1),
		pythonFrame("main", 0x5630f29f8c1d),
	}
}

// stackFixture is a gevent worker whose hub blocks in MySQL and memcached C
// drivers, a thread pool waiting on a futex, and a few odd stacks.
func stackFixture() (*model.Trace, *model.Analysis) {
	mysql := model.Addr{Family: model.FamilyInet, IP: netip.MustParseAddr("10.0.0.5"), Port: 3306}
	memcached := model.Addr{Family: model.FamilyInet, IP: netip.MustParseAddr("127.0.0.1"), Port: 11211}
	t := &model.Trace{
		Source:    "ebpf",
		Arch:      "amd64",
		Target:    model.Target{PID: 4242, Comm: "python3", Cmdline: []string{"/usr/bin/python3", "-m", "gunicorn", "-k", "gevent", "app.wsgi"}},
		Processes: []model.Process{{PID: 4242, PPID: 1, Comm: "python3"}},
		Start:     time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC),
		Duration:  10 * time.Second,
		Threshold: time.Millisecond,
		Threads: []model.Thread{
			{PID: 4242, TID: 4242, Name: "python3"},
			{PID: 4242, TID: 4250, Name: "ThreadPoolExec"},
		},
	}
	ev := func(tid int, sc string, d time.Duration, peer model.Addr, stack []model.Frame) model.Event {
		return model.Event{Kind: model.EvSyscall, PID: 4242, TID: tid, Syscall: sc, Nr: -1, Duration: d, FD: 7, Peer: peer, Stack: stack}
	}
	for i := range 40 {
		t.Events = append(t.Events, ev(4242, "poll", 20*time.Millisecond+time.Duration(i)*250*time.Microsecond, mysql, mysqlStack()))
	}
	for range 20 {
		t.Events = append(t.Events, ev(4242, "recvfrom", 10*time.Millisecond, memcached, memcachedStack()))
	}
	for range 10 {
		t.Events = append(t.Events, ev(4250, "futex", 50*time.Millisecond, model.Addr{}, nil))
	}
	t.Events = append(t.Events,
		ev(4242, "read", 5*time.Millisecond, mysql, []model.Frame{
			{Function: "tcp_recvmsg", Kind: model.FrameKernel},
			{Function: "inet_recvmsg", Kind: model.FrameKernel},
			libcFrame("read", 0x7f3a1c51d0e1),
			{Addr: 0x7f3a1b2f1000, Offset: 0x1f000, Module: "libmariadb.so.3", Path: "/usr/lib/x86_64-linux-gnu/libmariadb.so.3", BuildID: buildIDMariaDB},
			{Kind: model.FrameTruncated},
		}),
		ev(4242, "epoll_wait", 100*time.Millisecond, model.Addr{}, []model.Frame{libcFrame("epoll_wait", 0x7f3a1c52a3c6)}),
		ev(4242, "epoll_wait", 100*time.Millisecond, model.Addr{}, []model.Frame{libcFrame("epoll_wait", 0x7f3a1c52a3c6)}),
		// Not a syscall sample: connect events are for the inventory.
		model.Event{Kind: model.EvConnect, PID: 4242, TID: 4242, Syscall: "connect", Duration: time.Second, Peer: mysql},
	)
	a := &model.Analysis{Threads: []model.ThreadSummary{
		{PID: 4242, TID: 4242, Name: "python3", Role: model.RoleEventLoop, LoopWait: "epoll_wait"},
		{PID: 4242, TID: 4250, Name: "ThreadPoolExec", Role: model.RoleWorker},
	}}
	return t, a
}

// fixtureTotals sums the EvSyscall events of t per syscall.
func fixtureTotals(t *model.Trace) (blocked map[string]time.Duration, calls map[string]int64) {
	blocked, calls = map[string]time.Duration{}, map[string]int64{}
	for _, e := range t.Events {
		if e.Kind == model.EvSyscall {
			blocked[e.Syscall] += e.Duration
			calls[e.Syscall]++
		}
	}
	return blocked, calls
}

func pathNames(p []pathFrame) []string {
	out := make([]string, len(p))
	for i, f := range p {
		out[i] = f.name
	}
	return out
}

func TestSamplePath(t *testing.T) {
	cases := []struct {
		name    string
		stack   []model.Frame
		want    []string
		classes []frameClass
	}{
		{
			name:    "no stack",
			want:    []string{"p (1)", "t (2)", "futex"},
			classes: []frameClass{classProcess, classThread, classSyscall},
		},
		{
			name:    "user stack reversed under the syscall",
			stack:   []model.Frame{libcFrame("poll", 1), mariadbFrame("pvio_socket_wait_io_or_timeout", 2), pythonFrame("main", 3)},
			want:    []string{"p (1)", "t (2)", "main (python3.11)", "pvio_socket_wait_io_or_timeout (libmariadb.so.3)", "poll (libc.so.6)", "futex"},
			classes: []frameClass{classProcess, classThread, classNative, classNative, classNative, classSyscall},
		},
		{
			name: "kernel frames above the syscall",
			stack: []model.Frame{
				{Function: "futex_wait", Kind: model.FrameKernel},
				{Function: "do_futex", Kind: model.FrameKernel},
				libcFrame("__futex_abstimed_wait_common", 4),
			},
			want:    []string{"p (1)", "t (2)", "__futex_abstimed_wait_common (libc.so.6)", "futex", "do_futex_[k]", "futex_wait_[k]"},
			classes: []frameClass{classProcess, classThread, classNative, classSyscall, classKernel, classKernel},
		},
		{
			name:    "truncated, unsymbolized and interpreter frames",
			stack:   []model.Frame{{Module: "libx.so", Offset: 0x10}, pyFrame("run", "app.py"), {Kind: model.FrameTruncated}},
			want:    []string{"p (1)", "t (2)", "[truncated]", "run (app.py)", "libx.so+0x10", "futex"},
			classes: []frameClass{classProcess, classThread, classUnknown, classInterpreter, classNative, classSyscall},
		},
		{
			name:    "separators in symbols",
			stack:   []model.Frame{{Function: "operator;\nweird", Module: "a;b.so"}},
			want:    []string{"p (1)", "t (2)", "operator: weird (a:b.so)", "futex"},
			classes: []frameClass{classProcess, classThread, classNative, classSyscall},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := samplePath("p (1)", "t (2)", "futex", tc.stack, nil)
			if names := pathNames(got); !reflect.DeepEqual(names, tc.want) {
				t.Errorf("names\n got %q\nwant %q", names, tc.want)
			}
			for i, f := range got {
				if i < len(tc.classes) && f.class != tc.classes[i] {
					t.Errorf("frame %d %q: class %d, want %d", i, f.name, f.class, tc.classes[i])
				}
			}
		})
	}
}

func TestSanitizeFrameName(t *testing.T) {
	cases := map[string]string{
		"poll (libc.so.6)": "poll (libc.so.6)",
		"a;b":              "a:b",
		"line\nbreak\r\t":  "line break  ",
		"":                 "[unknown]",
		";":                ":",
		"\n\n":             "[unknown]",
	}
	for in, want := range cases {
		if got := sanitizeFrameName(in); got != want {
			t.Errorf("sanitizeFrameName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBlockedSamplesNames(t *testing.T) {
	tr, a := stackFixture()
	tr.Events = append(tr.Events,
		model.Event{Kind: model.EvSyscall, PID: 4242, TID: 4300, Nr: 7, Duration: time.Millisecond},
		model.Event{Kind: model.EvSyscall, PID: 99, TID: 99, Syscall: "read", Duration: time.Millisecond},
	)
	samples := blockedSamples(tr, a)
	if len(samples) != 40+20+10+3+2 {
		t.Fatalf("%d samples, want only the EvSyscall events", len(samples))
	}
	first := samples[0]
	if first.process != "python3 (4242)" || first.thread != "python3 (4242)" || first.role != model.RoleEventLoop {
		t.Errorf("first sample: process %q thread %q role %q", first.process, first.thread, first.role)
	}
	unnamed := samples[len(samples)-2]
	if unnamed.thread != "python3 (4300)" || unnamed.path[len(unnamed.path)-1].name != "syscall_7" {
		t.Errorf("unnamed thread: thread %q path %q", unnamed.thread, pathNames(unnamed.path))
	}
	unknown := samples[len(samples)-1]
	if unknown.process != "pid (99)" || unknown.thread != "tid (99)" || unknown.role != "" {
		t.Errorf("unknown process: %q %q %q", unknown.process, unknown.thread, unknown.role)
	}
	if blockedSamples(nil, nil) != nil {
		t.Error("nil trace gave samples")
	}
}
