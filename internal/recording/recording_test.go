package recording

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// richTrace exercises every field the format stores.
func richTrace() *model.Trace {
	libmaria := model.Frame{Addr: 0x7f00_0000_1234, Function: "mysql_real_query", Offset: 0x34,
		Module: "libmariadb.so.3", Path: "/usr/lib/x86_64-linux-gnu/libmariadb.so.3", BuildID: "ab12cd34", Kind: model.FrameNative}
	poll := model.Frame{Addr: 0x7f00_0000_0042, Function: "poll", Offset: 2, Module: "libc.so.6",
		Path: "/usr/lib/x86_64-linux-gnu/libc.so.6", BuildID: "ffee", Kind: model.FrameNative}
	py := model.Frame{Function: "execute", Module: "cursors.py", Path: "/app/MySQLdb/cursors.py", Kind: model.FrameInterpreter, Line: 319}
	kern := model.Frame{Addr: 0xffffffff81000000, Function: "do_sys_poll", Kind: model.FrameKernel}
	trunc := model.Frame{Kind: model.FrameTruncated}
	mysql := model.Addr{Family: model.FamilyInet, IP: netip.MustParseAddr("10.1.2.3"), Port: 3306}
	v6 := model.Addr{Family: model.FamilyInet6, IP: netip.MustParseAddr("fe80::1%eth0"), Port: 6379}
	mapped := model.Addr{Family: model.FamilyInet6, IP: netip.MustParseAddr("::ffff:127.0.0.1"), Port: 11211}
	unix := model.Addr{Family: model.FamilyUnix, Path: "@/tmp/.X11-unix/X0"}
	unixUnnamed := model.Addr{Family: model.FamilyUnix}
	odd := model.Addr{Family: "netlink", Port: 7}

	return &model.Trace{
		Source: "ebpf",
		Arch:   "amd64",
		Target: model.Target{PID: 4242, Comm: "python3", Cmdline: []string{"python3", "app.py", ""}, Exe: "/usr/bin/python3.11"},
		Processes: []model.Process{
			{PID: 4242, PPID: 1, Comm: "python3", Cmdline: []string{"python3", "app.py"}, Exe: "/usr/bin/python3.11",
				Runtime: model.Runtime{Name: model.RuntimeCPython, Version: "3.11.7", Loop: model.LoopGevent}},
			{PID: 5000, PPID: 4242, Comm: "sh", Exited: true, ExitCode: -9, Runtime: model.Runtime{Name: model.RuntimeNative}},
			{PID: 5001, PPID: 4242, Comm: "cat"},
		},
		Start:     time.Unix(1_700_000_000, 123_456_789),
		StartNS:   5_000_000_000,
		Duration:  30 * time.Second,
		Threshold: 0,
		Threads: []model.Thread{
			{PID: 4242, TID: 4242, Name: "python3", OnCPU: 1234 * time.Millisecond},
			{PID: 4242, TID: 4243, Name: "worker-1", Started: true, Exited: true},
		},
		Syscalls: []model.SyscallStat{
			{PID: 4242, TID: 4242, Nr: 7, Name: "poll", Count: 3, Errors: 1, Total: 3 * time.Millisecond, Max: 2 * time.Millisecond,
				Hist: func() model.Histogram {
					var h model.Histogram
					h.AddBucket(0, 1)
					h.AddBucket(100, 5)
					h.AddBucket(model.HistBuckets-1, 1<<40)
					return h
				}()},
			{PID: 4242, TID: 4243, Nr: 202, Name: "futex", Op: "wait_bitset", Count: 1},
		},
		Events: []model.Event{
			{Kind: model.EvSyscall, Time: 5_000_001_000, Duration: 2 * time.Millisecond, PID: 4242, TID: 4242, Nr: 7, Syscall: "poll",
				Ret: 1, Args: [6]uint64{0x7ffc_0000_1000, 1, 1 << 63, 0, 0, ^uint64(0)}, FD: 5, FDKnown: true, FDKind: model.FDSocket,
				PollNFDs: 1, PollFD: 5, PollTimeout: -1, Peer: mysql, Local: model.Addr{Family: model.FamilyInet, IP: netip.MustParseAddr("10.0.0.9"), Port: 51000},
				Stack: []model.Frame{kern, poll, libmaria, py, trunc}},
			// Same syscall, same args: the delta coding's zero case.
			{Kind: model.EvSyscall, Time: 5_000_002_000, Duration: time.Millisecond, PID: 4242, TID: 4242, Nr: 7, Syscall: "poll",
				Ret: -4, Args: [6]uint64{0x7ffc_0000_1000, 1, 1 << 63, 0, 0, ^uint64(0)}, FD: 5, FDKnown: true, NonBlock: true, FDKind: model.FDSocket,
				PollNFDs: 1, PollFD: 5, PollTimeout: 1000, Peer: mysql, Stack: []model.Frame{poll, libmaria, py}},
			// Time going backwards (events from another CPU), an unknown fd kind.
			{Kind: model.EvConnect, Time: 5_000_001_500, Duration: 300 * time.Microsecond, PID: 4242, TID: 4243, Nr: 42, Syscall: "connect",
				Ret: -115, FD: 7, FDKnown: true, FDKind: model.FDKind(9), Peer: v6},
			{Kind: model.EvAccept, Time: 5_000_003_000, PID: 4242, TID: 4243, Nr: 288, Syscall: "accept4", Ret: 8, FD: 3, Peer: mapped, Local: unixUnnamed},
			{Kind: model.EvBind, Time: 5_000_003_100, PID: 4242, TID: 4243, Nr: 49, Syscall: "bind", FD: 9, Local: unix},
			{Kind: model.EvSendTo, Time: 5_000_003_200, PID: 4242, TID: 4243, Nr: 44, Syscall: "sendto", Ret: 12, FD: 10, Peer: odd, FDKind: model.FDOther},
			{Kind: model.EvFork, Time: 5_000_004_000, PID: 4242, TID: 4242, Nr: -1, FD: -1, ChildPID: 4244, Thread: true, Comm: "worker-2"},
			{Kind: model.EvExec, Time: 5_000_005_000, PID: 5000, TID: 5000, Nr: -1, FD: -1, Comm: "sh", Filename: "/bin/sh"},
			{Kind: model.EvExit, Time: 5_000_006_000, PID: 5000, TID: 5000, Nr: -1, FD: -1, ExitCode: -9},
			{Kind: model.EvSyscall, Time: 5_000_006_500, PID: 5000, TID: 5000, Nr: 7, Syscall: "poll", FD: -1, Partial: true, Duration: 3 * time.Second},
			{Kind: model.EvPeek, Time: 5_000_007_000, PID: 5000, TID: 5000, Nr: 0, Syscall: "read", FD: 3, Ret: 78,
				Data: []byte("N\x00\x00\x00\n5.5.5-10.11.19-MariaDB")},
			// Opens and closes as strace logs give them (an open's fd in Ret
			// only, a close's in its argument) and as the tracer does (the fd
			// known from the kernel, a close of a tracked socket).
			{Kind: model.EvOpen, Time: 5_000_007_100, PID: 4242, TID: 4242, Nr: 257, Syscall: "openat", Ret: 11, FD: -1,
				Args: [6]uint64{^uint64(99), 0x7ffc_0000_2000, 0x80000}, Filename: "/var/lib/app/db.sqlite", Duration: 40 * time.Microsecond},
			{Kind: model.EvClose, Time: 5_000_007_200, PID: 4242, TID: 4242, Nr: 3, Syscall: "close", FD: 11, FDKind: model.FDFile, Args: [6]uint64{11}},
			{Kind: model.EvOpen, Time: 5_000_007_300, PID: 4242, TID: 4242, Nr: 257, Syscall: "openat", Ret: 12, FD: 12, FDKnown: true, FDKind: model.FDFile,
				Args: [6]uint64{^uint64(99), 0x7ffc_0000_2100, 0x80000}, Filename: "/var/lib/app/ledger.db", Duration: 40 * time.Microsecond},
			{Kind: model.EvClose, Time: 5_000_007_400, PID: 4242, TID: 4243, Nr: 3, Syscall: "close", FD: 7, FDKnown: true, FDKind: model.FDSocket, Duration: 9 * time.Microsecond},
			// Out-of-table syscall numbers share the last delta slot.
			{Kind: model.EvSyscall, Time: 5_000_007_000, PID: 4242, TID: 4242, Nr: 5000, Syscall: "mystery", Args: [6]uint64{1, 2, 3, 4, 5, 6}, FD: -1},
			{Kind: model.EvSyscall, Time: 0, PID: 0, TID: 0, Nr: -7, Syscall: "", Args: [6]uint64{6, 5, 4, 3, 2, 1}, Duration: -1},
		},
		Sockets: []model.Socket{
			{PID: 4242, FD: 5, Inode: 123456, Proto: "tcp", Local: model.Addr{Family: model.FamilyInet, IP: netip.MustParseAddr("10.0.0.9"), Port: 51000}, Peer: mysql, State: "ESTABLISHED"},
			{PID: 4242, FD: 6, Inode: 99, Proto: "unix", Local: unix, State: "LISTEN"},
		},
		Blocked: []model.BlockedState{
			{PID: 4242, TID: 4242, Nr: 7, Syscall: "poll", Args: [6]uint64{1, 2, 3, 4, 5, 6}, Wchan: "do_sys_poll", FD: 5, Peer: mysql},
			{PID: 4242, TID: 4243, Running: true, Nr: -1, FD: -1},
		},
		Files: []model.OpenFile{
			{PID: 4242, FD: 0, Path: "/dev/null"},
			{PID: 4242, FD: 4, Path: "pipe:[123]"},
			{PID: 4242, FD: 12, Path: "/var/log/app log.txt"},
		},
		Epoll: []model.EpollSet{
			{PID: 4242, EPFD: 3, FDs: []model.EpollFD{
				{FD: 6, Kind: model.FDSocket, Listening: true},
				{FD: 4, Kind: model.FDPipe, Path: "pipe:[123]"},
			}},
			{PID: 4242, EPFD: 3, End: true, FDs: []model.EpollFD{
				{FD: 6, Kind: model.FDSocket, Listening: true},
				{FD: 5, Kind: model.FDSocket, Peer: mysql},
				{FD: 4, Kind: model.FDPipe, Path: "pipe:[123]"},
				{FD: 99},
			}},
			{PID: 5000, EPFD: 7, End: true, FDs: []model.EpollFD{{FD: 8, Kind: model.FDOther, Path: "anon_inode:[eventfd]"}}},
		},
		Listeners: []model.Listener{
			{Addr: mapped, PID: 777, Comm: "memcached"},
			{Addr: unix},
		},
		Drops: model.Drops{RingBuffer: 1, AggregateMap: 2, InFlightMap: 3, StackRead: 4, Unparsed: 5, FDMap: 6, Backlog: 7},
	}
}

func encode(t testing.TB, tr *model.Trace) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, tr); err != nil {
		t.Fatalf("write: %v", err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	want := richTrace()
	data := encode(t, want)
	if !Looks(data) {
		t.Fatalf("Looks rejects a recording")
	}
	got, st, err := Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if st.Truncated || st.Rebuilt || st.Reason != "" {
		t.Errorf("stats = %+v, want a clean read", st)
	}
	if st.Events != uint64(len(want.Events)) {
		t.Errorf("stats.Events = %d, want %d", st.Events, len(want.Events))
	}
	want.Source = "recording" // a read trace names its source
	if !reflect.DeepEqual(got, want) {
		for i := range min(len(got.Events), len(want.Events)) {
			if !reflect.DeepEqual(got.Events[i], want.Events[i]) {
				t.Errorf("event %d:\n got %+v\nwant %+v", i, got.Events[i], want.Events[i])
			}
		}
		got.Events, want.Events = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("trace:\n got %+v\nwant %+v", got, want)
		}
	}
}

func TestRoundTripZeroTrace(t *testing.T) {
	got, st, err := Read(bytes.NewReader(encode(t, &model.Trace{})))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if st.Truncated {
		t.Errorf("truncated: %s", st.Reason)
	}
	if !reflect.DeepEqual(got, &model.Trace{Source: "recording"}) {
		t.Errorf("got %+v", got)
	}
}

// flushedRecording writes n events, flushes, then writes more without
// closing. It returns the file, the length after the flush and the
// events written before it.
func flushedRecording(t testing.TB, n int) ([]byte, int, []model.Event) {
	t.Helper()
	tr := richTrace()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, tr)
	if err != nil {
		t.Fatal(err)
	}
	evs := mix(n)
	for i := range evs {
		if err := w.Event(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	flushed := buf.Len()
	later := mix(2 * n)[n:]
	for i := range later {
		if err := w.Event(&later[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(tr); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), flushed, evs
}

func TestTruncatedAtEveryOffset(t *testing.T) {
	data, flushed, before := flushedRecording(t, 40)
	for cut := 0; cut <= len(data); cut++ {
		got, st, err := Read(bytes.NewReader(data[:cut]))
		if cut < flushed {
			// Before the first complete flush only the metadata may be
			// readable; a cut there is an error or a truncated read.
			if err == nil && !st.Truncated {
				t.Fatalf("cut %d: clean read of a cut file", cut)
			}
			continue
		}
		if err != nil {
			t.Fatalf("cut %d of %d (flushed at %d): %v", cut, len(data), flushed, err)
		}
		if cut < len(data) && !st.Truncated {
			t.Fatalf("cut %d: not reported truncated", cut)
		}
		if st.Truncated && st.Reason == "" || strings.Contains(st.Reason, "\n") {
			t.Fatalf("cut %d: reason %q", cut, st.Reason)
		}
		if len(got.Events) < len(before) || !reflect.DeepEqual(got.Events[:len(before)], before) {
			t.Fatalf("cut %d: kept %d events, want the %d flushed ones first", cut, len(got.Events), len(before))
		}
	}
}

func TestKilledRecordingRebuildsAggregates(t *testing.T) {
	meta := &model.Trace{Source: "ebpf", Arch: "amd64", StartNS: 1000,
		Threads: []model.Thread{{PID: 10, TID: 10, Name: "main"}}}
	evs := []model.Event{
		{Kind: model.EvSyscall, Time: 2000, Duration: 500, PID: 10, TID: 10, Nr: 7, Syscall: "poll", Ret: 1},
		{Kind: model.EvSyscall, Time: 3000, Duration: 1500, PID: 10, TID: 10, Nr: 7, Syscall: "poll", Ret: -4},
		{Kind: model.EvFork, Time: 3500, PID: 10, TID: 10, Nr: -1, ChildPID: 11, Thread: true, Comm: "worker"},
		{Kind: model.EvConnect, Time: 4000, Duration: 100, PID: 10, TID: 11, Nr: 42, Syscall: "connect", Ret: -111},
		// An open and a close come with their calls' own events, counted once.
		{Kind: model.EvOpen, Time: 4500, Duration: 50, PID: 10, TID: 11, Nr: 257, Syscall: "openat", Ret: 5, FD: 5, Filename: "/etc/hosts"},
		{Kind: model.EvSyscall, Time: 4500, Duration: 50, PID: 10, TID: 11, Nr: 257, Syscall: "openat", Ret: 5},
		{Kind: model.EvClose, Time: 4600, Duration: 20, PID: 10, TID: 11, Nr: 3, Syscall: "close", FD: 5},
		{Kind: model.EvSyscall, Time: 4600, Duration: 20, PID: 10, TID: 11, Nr: 3, Syscall: "close", Args: [6]uint64{5}},
		{Kind: model.EvExit, Time: 9000, PID: 10, TID: 11, Nr: -1, Thread: true},
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, meta)
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		if err := w.Event(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// No Close: the recorder was killed.
	got, st, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Truncated || !st.Rebuilt {
		t.Errorf("stats = %+v, want truncated and rebuilt", st)
	}
	if got.Duration != 8000 {
		t.Errorf("duration = %v, want 8µs", got.Duration)
	}
	var pollHist, connHist model.Histogram
	pollHist.Add(500)
	pollHist.Add(1500)
	connHist.Add(100)
	var openHist, closeHist model.Histogram
	openHist.Add(50)
	closeHist.Add(20)
	wantStats := []model.SyscallStat{
		{PID: 10, TID: 10, Nr: 7, Name: "poll", Count: 2, Errors: 1, Total: 2000, Max: 1500, Hist: pollHist},
		{PID: 10, TID: 11, Nr: 3, Name: "close", Count: 1, Total: 20, Max: 20, Hist: closeHist},
		{PID: 10, TID: 11, Nr: 42, Name: "connect", Count: 1, Errors: 1, Total: 100, Max: 100, Hist: connHist},
		{PID: 10, TID: 11, Nr: 257, Name: "openat", Count: 1, Total: 50, Max: 50, Hist: openHist},
	}
	if !reflect.DeepEqual(got.Syscalls, wantStats) {
		t.Errorf("syscalls:\n got %+v\nwant %+v", got.Syscalls, wantStats)
	}
	wantThreads := []model.Thread{
		{PID: 10, TID: 10, Name: "main"},
		{PID: 10, TID: 11, Name: "worker", Started: true, Exited: true},
	}
	if !reflect.DeepEqual(got.Threads, wantThreads) {
		t.Errorf("threads:\n got %+v\nwant %+v", got.Threads, wantThreads)
	}
}

func TestConcatenatedGarbage(t *testing.T) {
	want := richTrace()
	data := encode(t, want)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tail := range [][]byte{
		{0},
		[]byte("garbage after the end"),
		func() []byte { b := make([]byte, 4096); fillRandom(rng, b); return b }(),
		data, // a second recording's header is garbage to the zstd stream
	} {
		got, st, err := Read(bytes.NewReader(append(bytes.Clone(data), tail...)))
		if err != nil {
			t.Fatalf("tail %q: %v", tail[:min(len(tail), 8)], err)
		}
		if !st.Truncated || st.Reason == "" {
			t.Errorf("tail %q: stats %+v, want truncated with a reason", tail[:min(len(tail), 8)], st)
		}
		if st.Rebuilt || !reflect.DeepEqual(got.Events, want.Events) || !reflect.DeepEqual(got.Syscalls, want.Syscalls) {
			t.Errorf("tail %q: lost data before the garbage", tail[:min(len(tail), 8)])
		}
	}
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

func TestRejectsOtherFiles(t *testing.T) {
	valid := encode(t, richTrace())
	v2 := bytes.Clone(valid)
	binary.LittleEndian.PutUint16(v2[len(Magic):], 2)
	random := make([]byte, 1000)
	fillRandom(rand.New(rand.NewPCG(3, 4)), random)
	headerOnly := valid[:headerSize]
	badStream := append(bytes.Clone(valid[:headerSize]), random...)

	for _, tc := range []struct {
		name, data, wantErr string
	}{
		{"empty", "", "not a snag recording"},
		{"short", "SNAG", "not a snag recording"},
		{"text", "execve(\"/bin/ls\", [\"ls\"], 0x7ffd) = 0\n", "not a snag recording"},
		{"random", string(random), "not a snag recording"},
		{"version", string(v2), "version 2"},
		{"cut header", string(valid[:len(Magic)+1]), "truncated recording header"},
		{"header only", string(headerOnly), "no readable metadata"},
		{"garbage stream", string(badStream), "no readable metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Read(strings.NewReader(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error %q", err)
			}
		})
	}
}

func TestUnknownKindsAreSkipped(t *testing.T) {
	tr := richTrace()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, tr)
	if err != nil {
		t.Fatal(err)
	}
	w.record(200, []byte("a record kind from a newer writer"))
	w.record(201, nil)
	for i := range tr.Events {
		if err := w.Event(&tr.Events[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(tr); err != nil {
		t.Fatal(err)
	}
	got, st, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if st.Skipped != 2 || st.Truncated {
		t.Errorf("stats = %+v, want 2 skipped and a clean end", st)
	}
	if !reflect.DeepEqual(got.Events, tr.Events) {
		t.Errorf("events differ after skipped records")
	}
}

func TestChecksumMismatchDropsUnverifiedEvents(t *testing.T) {
	tr := richTrace()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, tr)
	if err != nil {
		t.Fatal(err)
	}
	evs := mix(30)
	for i := range evs[:10] {
		if err := w.Event(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range evs[10:] {
		if err := w.Event(&evs[10+i]); err != nil {
			t.Fatal(err)
		}
	}
	w.drain()
	w.crc ^= 1 // as if a byte of the chunk had changed on disk
	if err := w.Close(tr); err != nil {
		t.Fatal(err)
	}
	got, st, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Truncated || !strings.Contains(st.Reason, "checksum mismatch") || !st.Rebuilt {
		t.Errorf("stats = %+v, want a checksum mismatch and rebuilt aggregates", st)
	}
	if !reflect.DeepEqual(got.Events, evs[:10]) {
		t.Errorf("kept %d events, want the 10 verified ones", len(got.Events))
	}
}

func TestWriterAfterClose(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, &model.Trace{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(&model.Trace{}); err != nil {
		t.Fatal(err)
	}
	if err := w.Event(&model.Event{}); err == nil {
		t.Error("Event after Close succeeded")
	}
	if err := w.Flush(); err != nil {
		t.Errorf("Flush after Close: %v", err)
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after < len(p) {
		return 0, errFull
	}
	f.after -= len(p)
	return len(p), nil
}

var errFull = &fullError{}

type fullError struct{}

func (*fullError) Error() string { return "disk full" }

func TestWriterReportsWriteErrors(t *testing.T) {
	if _, err := NewWriter(&failWriter{after: 3}, &model.Trace{}); err == nil {
		t.Fatal("header write error not reported")
	}
	w, err := NewWriter(&failWriter{after: 200}, richTrace())
	if err != nil {
		t.Skipf("metadata already exceeds the budget: %v", err)
	}
	evs := mix(20000)
	var werr error
	for i := range evs {
		if werr = w.Event(&evs[i]); werr != nil {
			break
		}
	}
	if werr == nil {
		werr = w.Flush()
	}
	if werr == nil || !strings.Contains(werr.Error(), "disk full") {
		t.Fatalf("err = %v, want the write error", werr)
	}
	if err := w.Close(richTrace()); err == nil {
		t.Error("Close after a failure succeeded")
	}
}

// A frame defined before frames carried their line ends at its kind: it
// reads with line 0, and the line of a newer one is kept.
func TestFrameWithoutLine(t *testing.T) {
	d := &decoder{strs: []string{"", "outer", "prog.py"}}
	old := []byte{0x10, 1, 6, 2, 2, 0, byte(model.FrameInterpreter)}
	for _, payload := range [][]byte{old, append(old[:len(old):len(old)], 12)} {
		d.payload = payload
		if err := d.record(kindFrame); err != nil {
			t.Fatal(err)
		}
	}
	want := model.Frame{Addr: 0x10, Function: "outer", Offset: 6, Module: "prog.py", Path: "prog.py", Kind: model.FrameInterpreter}
	if d.frames[0] != want {
		t.Errorf("old frame %+v, want %+v", d.frames[0], want)
	}
	want.Line = 12
	if d.frames[1] != want {
		t.Errorf("new frame %+v, want %+v", d.frames[1], want)
	}
}
