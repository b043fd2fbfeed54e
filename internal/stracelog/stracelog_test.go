package stracelog

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/stracelog/loggen"
)

const ms = time.Millisecond

func parseFile(t *testing.T, name string, opt Options) (*model.Trace, *Stats) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, st, err := Parse(f, opt)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return tr, st
}

func parseString(t *testing.T, log string, opt Options) (*model.Trace, *Stats) {
	t.Helper()
	tr, st, err := Parse(strings.NewReader(log), opt)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return tr, st
}

func findEvent(tr *model.Trace, kind model.EventKind, syscall string) *model.Event {
	for i := range tr.Events {
		if e := &tr.Events[i]; e.Kind == kind && (syscall == "" || e.Syscall == syscall) {
			return e
		}
	}
	return nil
}

func findStat(tr *model.Trace, tid int, name string) *model.SyscallStat {
	for i := range tr.Syscalls {
		if s := &tr.Syscalls[i]; s.TID == tid && s.Name == name {
			return s
		}
	}
	return nil
}

// sumStats sums the stats of one thread and syscall, which for futex are
// one per operation class; nil when there are none.
func sumStats(tr *model.Trace, tid int, name string) *model.SyscallStat {
	var sum *model.SyscallStat
	for i := range tr.Syscalls {
		s := &tr.Syscalls[i]
		if s.TID != tid || s.Name != name {
			continue
		}
		if sum == nil {
			sum = &model.SyscallStat{PID: s.PID, TID: s.TID, Nr: s.Nr, Name: s.Name}
		}
		sum.Count += s.Count
		sum.Errors += s.Errors
		sum.Total += s.Total
		sum.Max = max(sum.Max, s.Max)
		sum.Hist.Merge(&s.Hist)
	}
	return sum
}

func inet(s string) model.Addr {
	ap := netip.MustParseAddrPort(s)
	fam := model.FamilyInet
	if ap.Addr().Is6() {
		fam = model.FamilyInet6
	}
	return model.Addr{Family: fam, IP: ap.Addr(), Port: ap.Port()}
}

// countLines counts, independently of the parser, the calls of name by tid
// in a -f log: complete lines plus resumed ones.
func countLines(t *testing.T, file string, tid, name string) uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, tid+" ") {
			continue
		}
		f := strings.SplitN(l, " ", 3)
		if len(f) < 3 {
			continue
		}
		body := f[2]
		switch {
		case strings.HasPrefix(body, name+"(") && !strings.HasSuffix(body, "<unfinished ...>"):
			n++
		case strings.HasPrefix(body, "<... "+name+" resumed>"):
			n++
		}
	}
	return n
}

func TestRealLogTT(t *testing.T) {
	tr, st := parseFile(t, "tt.log", Options{Threshold: 10 * ms})
	if st.Unparsed != 0 || st.Parsed != st.Lines {
		t.Fatalf("stats %+v", st)
	}
	if tr.Source != "strace" || tr.Arch != "amd64" || tr.Threshold != 10*ms {
		t.Errorf("source/arch/threshold = %q %q %v", tr.Source, tr.Arch, tr.Threshold)
	}
	if tr.Target.PID != 12655 || tr.Target.Comm != "python3" || tr.Target.Exe != "/usr/bin/python3" ||
		strings.Join(tr.Target.Cmdline, " ") != "/usr/bin/python3 srv.py" {
		t.Errorf("target %+v", tr.Target)
	}
	if tr.StartNS != 18322096916000 || tr.Start.Hour() != 5 || tr.Start.Minute() != 5 {
		t.Errorf("start %v / %d", tr.Start, tr.StartNS)
	}
	if tr.Duration < 150*ms || tr.Duration > 200*ms {
		t.Errorf("duration %v", tr.Duration)
	}

	// The thread made with CLONE_THREAD belongs to the process; the fork
	// is a process of its own.
	want := []model.Thread{
		{PID: 12655, TID: 12655, Name: "python3", Exited: true},
		{PID: 12655, TID: 12656, Name: "python3", Started: true, Exited: true},
		{PID: 12657, TID: 12657, Name: "python3", Started: true, Exited: true},
	}
	if len(tr.Threads) != len(want) {
		t.Fatalf("threads %+v", tr.Threads)
	}
	for i := range want {
		if tr.Threads[i] != want[i] {
			t.Errorf("thread %d = %+v, want %+v", i, tr.Threads[i], want[i])
		}
	}
	if len(tr.Processes) != 2 || tr.Processes[1].PPID != 12655 || tr.Processes[1].ExitCode != 3 || !tr.Processes[1].Exited {
		t.Errorf("processes %+v", tr.Processes)
	}

	// Aggregates are exact.
	for _, c := range []struct {
		tid  int
		name string
	}{{12655, "futex"}, {12656, "futex"}, {12655, "close"}, {12655, "read"}, {12656, "recvfrom"}} {
		s := sumStats(tr, c.tid, c.name) // futex: over its ops
		n := countLines(t, "tt.log", strconv.Itoa(c.tid), c.name)
		if s == nil || s.Count != n || s.Hist.Count() != n {
			t.Errorf("%d %s: stat %+v, want count %d", c.tid, c.name, s, n)
		}
	}
	if s := findStat(tr, 12655, "recvfrom"); s == nil || s.Max != 20458*time.Microsecond || s.Nr != 45 || s.PID != 12655 {
		t.Errorf("recvfrom stat %+v", s)
	}
	if s := findStat(tr, 12655, "connect"); s == nil || s.Count != 3 || s.Errors != 2 {
		t.Errorf("connect stat %+v", s)
	}

	// The slow recvfrom resumed on the main thread, with its socket's peer.
	e := findEvent(tr, model.EvSyscall, "recvfrom")
	if e == nil {
		t.Fatal("no slow recvfrom")
	}
	if e.Duration != 20458*time.Microsecond || e.FD != 5 || e.FDKind != model.FDSocket || e.Ret != 4 ||
		e.Peer != inet("127.0.0.1:39049") || e.Local != inet("127.0.0.1:34672") || e.TID != 12655 || e.PID != 12655 {
		t.Errorf("recvfrom event %+v", e)
	}
	// Start from the unfinished line, duration from the resumed one.
	if e.Time != 18322199116000+20458000 {
		t.Errorf("recvfrom time %d", e.Time)
	}
	// socket() without SOCK_NONBLOCK: known blocking.
	if !e.FDKnown || e.NonBlock {
		t.Errorf("recvfrom fd known=%v nonblock=%v", e.FDKnown, e.NonBlock)
	}

	var connects []model.Event
	for _, e := range tr.Events {
		if e.Kind == model.EvConnect {
			connects = append(connects, e)
		}
	}
	if len(connects) != 3 {
		t.Fatalf("connects %+v", connects)
	}
	if c := connects[0]; c.Peer != inet("127.0.0.1:39049") || c.Ret != 0 || c.FD != 5 || c.Duration != 275*time.Microsecond {
		t.Errorf("connect 0 %+v", c)
	}
	if c := connects[1]; c.Peer != (model.Addr{Family: model.FamilyUnix, Path: "/run/nonexistent.sock"}) || c.Ret != -2 {
		t.Errorf("connect 1 %+v", c)
	}
	// setblocking(False) went through ioctl(FIONBIO).
	if c := connects[2]; c.Ret != -115 || !c.FDKnown || !c.NonBlock || c.Peer != inet("127.0.0.1:1") {
		t.Errorf("connect 2 %+v", c)
	}
	if a := findEvent(tr, model.EvAccept, "accept4"); a == nil || a.TID != 12656 || a.FD != 4 || a.Ret != 4 ||
		a.Peer != inet("127.0.0.1:34672") || a.Local != inet("127.0.0.1:39049") || a.Duration != 13435*time.Microsecond {
		t.Errorf("accept %+v", a)
	}
	if s := findEvent(tr, model.EvSendTo, ""); s == nil || s.Peer != inet("[::1]:9") || s.FD != 4 {
		t.Errorf("sendto %+v", s)
	}
	if b := findEvent(tr, model.EvBind, ""); b == nil || b.Local != inet("127.0.0.1:0") || !b.Peer.IsZero() {
		t.Errorf("bind %+v", b)
	}
	if p := findEvent(tr, model.EvSyscall, "poll"); p == nil || p.PollTimeout != 30 || p.PollNFDs != 0 || p.PollFD != -1 || p.Ret != 0 {
		t.Errorf("poll %+v", p)
	}
	var forks, exits int
	for _, e := range tr.Events {
		switch e.Kind {
		case model.EvFork:
			forks++
			if e.Nr != -1 || e.PID != 12655 || (e.ChildPID == 12656) != e.Thread {
				t.Errorf("fork %+v", e)
			}
		case model.EvExit:
			exits++
			if e.TID == 12657 && e.ExitCode != 3 || e.TID == 12656 && !e.Thread {
				t.Errorf("exit %+v", e)
			}
		}
	}
	if forks != 2 || exits != 3 {
		t.Errorf("forks %d exits %d", forks, exits)
	}
	if x := findEvent(tr, model.EvExec, ""); x == nil || x.Comm != "python3" || x.Filename != "/usr/bin/python3" {
		t.Errorf("exec %+v", x)
	}
	for i := 1; i < len(tr.Events); i++ {
		if tr.Events[i].Time < tr.Events[i-1].Time {
			t.Errorf("events out of order at %d", i)
		}
	}
}

func TestTimestampModes(t *testing.T) {
	for _, c := range []struct {
		file      string
		startNS   uint64
		wantDur   bool // timestamps precise enough to span the run
		wantSlow  bool // -T durations present
		wantEpoch bool
	}{
		{"tt.log", 18322096916000, true, true, false},
		{"ttt.log", 1795496722268803000, true, true, true},
		{"t.log", 18322000000000, false, false, false},
		{"r.log", 0, true, true, false},
		{"none.log", 0, false, false, false},
		{"pidform.log", 18806287662000, true, true, false},
	} {
		t.Run(c.file, func(t *testing.T) {
			tr, st := parseFile(t, c.file, Options{Threshold: 10 * ms})
			if st.Unparsed != 0 {
				t.Fatalf("unparsed lines %v", st.FirstBad)
			}
			if tr.StartNS != c.startNS {
				t.Errorf("StartNS %d, want %d", tr.StartNS, c.startNS)
			}
			if (tr.Duration > 50*ms) != c.wantDur {
				t.Errorf("duration %v", tr.Duration)
			}
			if c.wantEpoch && tr.Start.Year() < 2020 {
				t.Errorf("start %v", tr.Start)
			}
			slow := findEvent(tr, model.EvSyscall, "")
			if (slow != nil) != c.wantSlow {
				t.Errorf("slow event %+v", slow)
			}
			if findEvent(tr, model.EvConnect, "connect") == nil && c.file != "pidform.log" {
				t.Error("no connect event")
			}
			if len(tr.Syscalls) == 0 {
				t.Error("no aggregates")
			}
		})
	}
}

func TestRelativeClock(t *testing.T) {
	tr, _ := parseFile(t, "r.log", Options{Threshold: 10 * ms})
	e := findEvent(tr, model.EvSyscall, "recvfrom")
	if e == nil || e.Duration != 20322*time.Microsecond {
		t.Fatalf("recvfrom %+v", e)
	}
	// Each -r stamp is the gap since the previous line: the clock is their
	// sum, and the connect came about 20.7ms before the reply arrived.
	c := findEvent(tr, model.EvConnect, "")
	if gap := time.Duration(e.Time - c.Time); gap < 20*ms || gap > 21*ms {
		t.Errorf("connect→reply %v", gap)
	}
}

func TestNoPrefixNoTimestamps(t *testing.T) {
	tr, _ := parseFile(t, "none.log", Options{Threshold: 10 * ms})
	if tr.Target.PID != 0 || tr.Target.Comm != "python3" {
		t.Errorf("target %+v", tr.Target)
	}
	c := findEvent(tr, model.EvConnect, "")
	if c == nil || c.Time != 0 || c.Duration != 0 || c.Peer != inet("127.0.0.1:38803") {
		t.Errorf("connect %+v", c)
	}
}

func TestStderrPidForm(t *testing.T) {
	// `strace -f` to stderr: unprefixed lines until a second task exists,
	// "[pid N]" after, a clone line cut by "strace: Process N attached".
	tr, st := parseFile(t, "pidform.log", Options{Threshold: 10 * ms})
	if st.Unparsed != 0 {
		t.Fatalf("unparsed %v", st.FirstBad)
	}
	if tr.Target.PID != 1870 || len(tr.Processes) != 1 || len(tr.Threads) != 2 {
		t.Fatalf("target %+v threads %+v", tr.Target, tr.Threads)
	}
	if th := tr.Threads[1]; th.TID != 1880 || th.PID != 1870 || !th.Started {
		t.Errorf("thread %+v", th)
	}
	f := findEvent(tr, model.EvFork, "")
	if f == nil || f.ChildPID != 1880 || !f.Thread || f.TID != 1870 {
		t.Errorf("fork %+v", f)
	}
	if s := findStat(tr, 1870, "exit_group"); s == nil || s.Count != 1 {
		t.Errorf("unprefixed lines after the thread exit: %+v", s)
	}
}

func TestParseFiles(t *testing.T) {
	paths, _ := filepath.Glob("testdata/ff.*")
	tr, st, err := ParseFiles(paths, Options{Threshold: 10 * ms})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 3 || st.Unparsed != 0 {
		t.Errorf("stats %+v", st)
	}
	pids := map[int]int{}
	for _, th := range tr.Threads {
		pids[th.TID] = th.PID
	}
	if pids[12685] != 12685 || pids[12686] != 12685 || pids[12687] != 12687 {
		t.Errorf("tid→pid %v", pids)
	}
	if tr.Target.PID != 12685 || len(tr.Processes) != 2 {
		t.Errorf("target %+v processes %+v", tr.Target, tr.Processes)
	}
	a := findEvent(tr, model.EvAccept, "")
	if a == nil || a.TID != 12686 || a.PID != 12685 {
		t.Errorf("accept %+v", a)
	}
	for i := 1; i < len(tr.Events); i++ {
		if tr.Events[i].Time < tr.Events[i-1].Time {
			t.Fatalf("events not merged in time order at %d", i)
		}
	}
}

func TestStacks(t *testing.T) {
	tr, st := parseFile(t, "k.log", Options{Threshold: 10 * ms})
	if st.Unparsed != 0 {
		t.Fatalf("unparsed %v", st.FirstBad)
	}
	c := findEvent(tr, model.EvConnect, "")
	if c == nil || len(c.Stack) < 5 {
		t.Fatalf("connect %+v", c)
	}
	want := model.Frame{Function: "__connect", Module: "libc.so.6", Path: "/usr/lib/x86_64-linux-gnu/libc.so.6"}
	f := c.Stack[0]
	if f.Function != want.Function || f.Module != want.Module || f.Path != want.Path || f.Addr == 0 {
		t.Errorf("leaf frame %+v", f)
	}
	if c.Stack[len(c.Stack)-1].Module != "python3.11" {
		t.Errorf("outer frame %+v", c.Stack[len(c.Stack)-1])
	}
	// Stacks of calls that made no event are skipped, not misattributed.
	for _, e := range tr.Events {
		if e.Kind == model.EvSyscall && len(e.Stack) == 0 {
			t.Errorf("slow %s without its stack", e.Syscall)
		}
	}
}

func TestParseFrame(t *testing.T) {
	for _, c := range []struct {
		in   string
		want model.Frame
	}{
		{"/lib/x86_64-linux-gnu/libc.so.6(poll+0x4f) [0xfc26f]",
			model.Frame{Function: "poll", Offset: 0x4f, Module: "libc.so.6", Path: "/lib/x86_64-linux-gnu/libc.so.6", Addr: 0xfc26f}},
		{"/usr/lib/libmariadb.so.3(unknown+0x1234) [0x5678]",
			model.Frame{Offset: 0x5678, Module: "libmariadb.so.3", Path: "/usr/lib/libmariadb.so.3", Addr: 0x5678}},
		{"/usr/lib/libmariadb.so.3() [0x5678]",
			model.Frame{Offset: 0x5678, Module: "libmariadb.so.3", Path: "/usr/lib/libmariadb.so.3", Addr: 0x5678}},
		{"unexpected_backtracing_error [0x7f00aa]", model.Frame{Addr: 0x7f00aa, Offset: 0x7f00aa}},
		{"backtrace_error", model.Frame{Kind: model.FrameTruncated}},
	} {
		got, ok := parseFrame([]byte(c.in), func(b []byte) string { return string(b) })
		if !ok || got != c.want {
			t.Errorf("parseFrame(%q) = %+v %v, want %+v", c.in, got, ok, c.want)
		}
	}
}

func TestUnfinishedAcrossThreads(t *testing.T) {
	log := `100 10:00:00.000000 poll([{fd=5<TCP:[10.0.0.1:4040->10.0.0.5:3306]>, events=POLLIN}], 1, 1000 <unfinished ...>
101 10:00:00.000100 recvfrom(6<TCPv6:[[::1]:4040->[::1]:6379]>,  <unfinished ...>
100 10:00:00.000200 <... poll resumed>) = 1 ([{fd=5, revents=POLLIN}]) <0.050000>
102 10:00:00.000300 <... read resumed>"x", 1) = 1 <0.020000>
101 10:00:00.000400 <... recvfrom resumed>"+PONG\r\n", 8192, 0, NULL, NULL) = 7 <0.030000>
100 10:00:00.100000 ppoll([{fd=7<UNIX-STREAM:[1->2,"/run/x.sock"]>, events=POLLIN}], 1, {tv_sec=2, tv_nsec=500000000}, NULL, 8) = 0 (Timeout) <2.500000>
100 10:00:03.000000 ppoll([{fd=7, events=POLLIN}], 1, NULL, NULL, 8) = 1 <0.015000>
100 10:00:04.000000 epoll_wait(4<anon_inode:[eventpoll]>, [], 1024, 5000) = 0 <5.000000>
100 10:00:10.000000 select(8, [5 7], NULL, NULL, {tv_sec=0, tv_usec=20000}) = 0 (Timeout) <0.020000>
`
	tr, st := parseString(t, log, Options{Threshold: 10 * ms})
	if st.Unparsed != 0 {
		t.Fatalf("unparsed %v", st.FirstBad)
	}
	p := findEvent(tr, model.EvSyscall, "poll")
	if p == nil || p.TID != 100 || p.Duration != 50*ms || p.Time != 36000*uint64(time.Second)+50*uint64(ms) ||
		p.FD != 5 || p.PollFD != 5 || p.PollNFDs != 1 || p.PollTimeout != 1000 || p.Peer != inet("10.0.0.5:3306") ||
		p.Local != inet("10.0.0.1:4040") || p.FDKind != model.FDSocket || p.FDKnown {
		t.Errorf("poll %+v", p)
	}
	r := findEvent(tr, model.EvSyscall, "recvfrom")
	if r == nil || r.TID != 101 || r.Duration != 30*ms || r.FD != 6 || r.Peer != inet("[::1]:6379") || r.Ret != 7 {
		t.Errorf("recvfrom %+v", r)
	}
	// A resumed line without its start still counts, stamped at return.
	rd := findEvent(tr, model.EvSyscall, "read")
	if rd == nil || rd.Time != 36000*uint64(time.Second)+300*uint64(time.Microsecond) {
		t.Errorf("read %+v", rd)
	}
	var pp []model.Event
	for _, e := range tr.Events {
		if e.Syscall == "ppoll" {
			pp = append(pp, e)
		}
	}
	if len(pp) != 2 || pp[0].PollTimeout != 2500 || pp[1].PollTimeout != -1 || pp[0].FDKind != model.FDSocket ||
		pp[0].Local != (model.Addr{Family: model.FamilyUnix, Path: "/run/x.sock"}) || pp[0].Peer.Family != model.FamilyUnix {
		t.Errorf("ppoll %+v", pp)
	}
	if e := findEvent(tr, model.EvSyscall, "epoll_wait"); e == nil || e.FD != 4 || e.FDKind != model.FDOther || e.PollTimeout != 5000 {
		t.Errorf("epoll_wait %+v", e)
	}
	if e := findEvent(tr, model.EvSyscall, "select"); e == nil || e.PollNFDs != 8 || e.PollFD != 5 || e.PollTimeout != 20 {
		t.Errorf("select %+v", e)
	}
	if s := findStat(tr, 100, "poll"); s == nil || s.Count != 1 || s.Total != 50*ms {
		t.Errorf("poll stat %+v", s)
	}
}

func TestGarbageLines(t *testing.T) {
	clean, err := os.ReadFile("testdata/tt.log")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(clean), "\n")
	var b strings.Builder
	var bad []int
	for i, l := range lines {
		b.WriteString(l)
		if i%50 == 10 {
			b.WriteString("\x00\x01garbage ¿ (((\n")
			bad = append(bad, strings.Count(b.String(), "\n"))
		}
	}
	want, _ := parseString(t, string(clean), Options{Threshold: 10 * ms})
	got, st := parseString(t, b.String(), Options{Threshold: 10 * ms, MaxBadLines: 3})
	if st.Unparsed != uint64(len(bad)) || got.Drops.Unparsed != st.Unparsed {
		t.Errorf("unparsed %d (drops %d), want %d", st.Unparsed, got.Drops.Unparsed, len(bad))
	}
	if len(st.FirstBad) != 3 || st.FirstBad[0] != bad[0] || st.FirstBad[2] != bad[2] {
		t.Errorf("first bad %v, want %v", st.FirstBad, bad[:3])
	}
	if len(got.Events) != len(want.Events) || len(got.Syscalls) != len(want.Syscalls) {
		t.Errorf("garbage changed the result: %d/%d events, %d/%d stats",
			len(got.Events), len(want.Events), len(got.Syscalls), len(want.Syscalls))
	}
}

func TestNotStrace(t *testing.T) {
	bin := make([]byte, 64<<10)
	for i := range bin {
		bin[i] = byte(i*131 + i>>7)
	}
	for name, in := range map[string][]byte{
		"binary": bin,
		"text":   []byte(strings.Repeat("hello world, this is not strace\n", 2000)),
		"empty":  nil,
	} {
		_, _, err := Parse(bytes.NewReader(in), Options{})
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "no strace lines") {
			t.Errorf("%s: error %q", name, msg)
		}
	}
}

func TestLooks(t *testing.T) {
	for _, f := range []string{"tt.log", "ttt.log", "t.log", "r.log", "none.log", "k.log", "pidform.log", "ff.12686"} {
		b, _ := os.ReadFile(filepath.Join("testdata", f))
		if !Looks(b[:min(len(b), 4096)]) {
			t.Errorf("%s does not look like strace", f)
		}
	}
	for _, s := range []string{"", "SNAG\x00\x01\x02", "{\"schema\": \"snag/v1\"}\n", "hello\nworld\n"} {
		if Looks([]byte(s)) {
			t.Errorf("%q looks like strace", s)
		}
	}
}

func TestThresholdZeroKeepsEveryCall(t *testing.T) {
	tr, st := parseFile(t, "tt.log", Options{})
	var calls uint64
	for _, s := range tr.Syscalls {
		calls += s.Count
	}
	var evs uint64
	for _, e := range tr.Events {
		if e.Nr >= 0 || e.Kind == model.EvSyscall || e.Kind == model.EvConnect {
			evs++
		}
	}
	if evs != calls || st.Unparsed != 0 {
		t.Errorf("%d call events for %d calls", evs, calls)
	}
}

func TestSplitTail(t *testing.T) {
	for _, c := range []struct {
		in, args, ret string
		dur           time.Duration
	}{
		{`3, "a) = b", 5) = 5 <0.000010>`, `3, "a) = b", 5`, "5", 10 * time.Microsecond},
		{`)           = ?`, ``, "?", 0},
		{`AF_INET, SOCK_STREAM, 0) = 3<TCP:[1]>`, `AF_INET, SOCK_STREAM, 0`, "3<TCP:[1]>", 0},
		{`"/x = y", O_RDONLY) = 3</x = y> <1.500000>`, `"/x = y", O_RDONLY`, "3</x = y>", 1500 * ms},
	} {
		args, ret, dur, ok := splitTail([]byte(c.in))
		if !ok || string(args) != c.args || string(ret) != c.ret || dur != c.dur {
			t.Errorf("splitTail(%q) = %q %q %v %v", c.in, args, ret, dur, ok)
		}
	}
}

func TestParseRet(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"3", 3},
		{"-1 EAGAIN (Resource temporarily unavailable)", -11},
		{"-1 EINPROGRESS (Operation now in progress)", -115},
		{"? ERESTARTSYS (To be restarted if SA_RESTART is set)", -512},
		{"?", 0},
		{"0x7f7d6d623050", 0x7f7d6d623050},
		{"1 ([{fd=3, revents=POLLIN}])", 1},
		{"0 (Timeout)", 0},
		{"4<TCP:[127.0.0.1:39049->127.0.0.1:34672]>", 4},
		{"-1 EBOGUS (x)", -1},
	} {
		if got, ok := parseRet([]byte(c.in)); !ok || got != c.want {
			t.Errorf("parseRet(%q) = %d %v, want %d", c.in, got, ok, c.want)
		}
	}
}

func TestDecodeAnnot(t *testing.T) {
	for _, c := range []struct {
		in          string
		kind        model.FDKind
		local, peer model.Addr
	}{
		{"TCP:[10.0.0.1:4040->10.0.0.5:3306]", model.FDSocket, inet("10.0.0.1:4040"), inet("10.0.0.5:3306")},
		{"TCPv6:[[::1]:4040->[::1]:6379]", model.FDSocket, inet("[::1]:4040"), inet("[::1]:6379")},
		{"TCPv6:[[::ffff:10.0.0.1]:4040->[::ffff:10.0.0.5]:3306]", model.FDSocket,
			model.Addr{Family: model.FamilyInet6, IP: netip.MustParseAddr("10.0.0.1"), Port: 4040},
			model.Addr{Family: model.FamilyInet6, IP: netip.MustParseAddr("10.0.0.5"), Port: 3306}},
		{"UDP:[10.0.0.1:53]", model.FDSocket, inet("10.0.0.1:53"), model.Addr{}},
		{"TCP:[20811]", model.FDSocket, model.Addr{}, model.Addr{}},
		{`UNIX:[12345->12346,"/run/x.sock"]`, model.FDSocket, model.Addr{Family: model.FamilyUnix, Path: "/run/x.sock"}, model.Addr{Family: model.FamilyUnix}},
		{`UNIX-STREAM:[43569,@"abstractname"]`, model.FDSocket, model.Addr{Family: model.FamilyUnix, Path: "@abstractname"}, model.Addr{}},
		{"/var/log/app.log", model.FDFile, model.Addr{}, model.Addr{}},
		{"/dev/null<char 1:3>", model.FDOther, model.Addr{}, model.Addr{}},
		{"pipe:[1234]", model.FDPipe, model.Addr{}, model.Addr{}},
		{"anon_inode:[eventpoll]", model.FDOther, model.Addr{}, model.Addr{}},
		{"socket:[123]", model.FDSocket, model.Addr{}, model.Addr{}},
		{"", model.FDUnknown, model.Addr{}, model.Addr{}},
	} {
		got := decodeAnnot([]byte(c.in))
		if got.kind != c.kind || got.local != c.local || got.peer != c.peer {
			t.Errorf("decodeAnnot(%q) = %+v", c.in, got)
		}
	}
}

func TestDecodeSockaddr(t *testing.T) {
	for _, c := range []struct {
		in   string
		want model.Addr
	}{
		{`{sa_family=AF_INET, sin_port=htons(3306), sin_addr=inet_addr("10.0.0.5")}`, inet("10.0.0.5:3306")},
		{`{sa_family=AF_INET6, sin6_port=htons(6379), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}`, inet("[::1]:6379")},
		{`{sa_family=AF_UNIX, sun_path="/run/x.sock"}`, model.Addr{Family: model.FamilyUnix, Path: "/run/x.sock"}},
		{`{sa_family=AF_UNIX, sun_path=@"abs\x41"}`, model.Addr{Family: model.FamilyUnix, Path: "@absA"}},
		{`{sa_family=AF_UNIX}`, model.Addr{Family: model.FamilyUnix}},
		{`{sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}`, model.Addr{}},
		{`NULL`, model.Addr{}},
	} {
		if got := decodeSockaddr([]byte(c.in)); got != c.want {
			t.Errorf("decodeSockaddr(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestTimeOfDayWrapsAtMidnight(t *testing.T) {
	log := "1 23:59:59.990000 read(3, \"\", 1) = 0 <0.000010>\n1 00:00:00.010000 read(3, \"\", 1) = 0 <0.000010>\n"
	tr, _ := parseString(t, log, Options{Day: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)})
	if tr.Duration != 20*ms+10*time.Microsecond {
		t.Errorf("duration %v", tr.Duration)
	}
	if want := time.Date(2024, 3, 1, 23, 59, 59, 990000000, time.UTC); !tr.Start.Equal(want) {
		t.Errorf("start %v, want %v", tr.Start, want)
	}
}

func TestExitAndSignals(t *testing.T) {
	log := `7 10:00:00.000000 execve("/opt/app/bin/celery-worker-main", ["celery", "worker"], 0x7ffd /* 3 vars */) = 0 <0.000100>
7 10:00:00.001000 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=9, si_uid=0, si_status=0, si_utime=0, si_stime=0} ---
7 10:00:00.002000 fork() = 9 <0.000200>
9 10:00:00.003000 +++ killed by SIGKILL +++
7 10:00:00.004000 wait4(-1, NULL, 0, NULL) = ? ERESTARTSYS (To be restarted if SA_RESTART is set) <0.000010>
7 10:00:00.005000 +++ killed by SIGSEGV (core dumped) +++
`
	tr, st := parseString(t, log, Options{Threshold: 10 * ms})
	if st.Unparsed != 0 {
		t.Fatalf("unparsed %v", st.FirstBad)
	}
	if tr.Target.Comm != "celery-worker-m" || len(tr.Target.Cmdline) != 2 {
		t.Errorf("target %+v", tr.Target)
	}
	codes := map[int]int{}
	for _, e := range tr.Events {
		if e.Kind == model.EvExit {
			codes[e.TID] = e.ExitCode
		}
	}
	if codes[9] != 137 || codes[7] != 139 {
		t.Errorf("exit codes %v", codes)
	}
	if s := findStat(tr, 7, "wait4"); s == nil || s.Errors != 1 {
		t.Errorf("wait4 %+v", s)
	}
	if len(tr.Processes) != 2 || tr.Processes[1].PPID != 7 || tr.Processes[1].ExitCode != 137 {
		t.Errorf("processes %+v", tr.Processes)
	}
}

func TestNonBlockTracking(t *testing.T) {
	log := `1 10:00:00.000000 socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, IPPROTO_TCP) = 3 <0.000010>
1 10:00:00.000100 recvfrom(3, 0x7f, 100, 0, NULL, NULL) = -1 EAGAIN (Resource temporarily unavailable) <0.020000>
1 10:00:00.030000 fcntl(3, F_SETFL, O_RDWR) = 0 <0.000010>
1 10:00:00.030100 recvfrom(3, "x", 100, 0, NULL, NULL) = 1 <0.020000>
1 10:00:00.060000 accept4(8, {sa_family=AF_INET, sin_port=htons(5000), sin_addr=inet_addr("10.1.1.1")}, [16], SOCK_CLOEXEC|SOCK_NONBLOCK) = 9 <0.000010>
1 10:00:00.060100 read(9, "x", 1) = 1 <0.020000>
1 10:00:00.090000 close(9) = 0 <0.000010>
1 10:00:00.090100 read(9, "x", 1) = 1 <0.020000>
`
	tr, _ := parseString(t, log, Options{Threshold: 10 * ms})
	var got []string
	for _, e := range tr.Events {
		if e.Kind == model.EvSyscall {
			got = append(got, e.Syscall+":"+boolStr(e.FDKnown)+boolStr(e.NonBlock)+":"+e.Peer.String())
		}
	}
	want := []string{"recvfrom:TT:", "recvfrom:TF:", "read:TT:10.1.1.1:5000", "read:FF:"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v, want %v", got, want)
	}
	if e := findEvent(tr, model.EvSyscall, "recvfrom"); e.Ret != -11 || !e.Failed() {
		t.Errorf("recvfrom %+v", e)
	}
}

func boolStr(b bool) string {
	if b {
		return "T"
	}
	return "F"
}

func TestGeneratedLogParses(t *testing.T) {
	var buf bytes.Buffer
	if err := loggen.GenerateLog(&buf, 1<<20, 1); err != nil {
		t.Fatal(err)
	}
	tr, st := parseString(t, buf.String(), Options{Threshold: 10 * ms})
	if st.Unparsed != 0 || len(tr.Events) == 0 || findEvent(tr, model.EvConnect, "") == nil {
		t.Fatalf("stats %+v events %d", st, len(tr.Events))
	}
	if e := findEvent(tr, model.EvSyscall, "poll"); e != nil && e.Peer != inet("10.0.0.5:3306") {
		t.Errorf("poll %+v", e)
	}
}

func BenchmarkParse(b *testing.B) {
	var buf bytes.Buffer
	if err := loggen.GenerateLog(&buf, 64<<20, 42); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, _, err := Parse(bytes.NewReader(data), Options{Threshold: 10 * ms}); err != nil {
			b.Fatal(err)
		}
	}
	// Wall-clock MB/s suffers on a shared machine; throughput per CPU
	// second (GC included) is the figure that compares across runs.
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(len(data))*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestFirstBytesOfAFreshConnection(t *testing.T) {
	log := `100 10:00:00.000000 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 3 <0.000010>
100 10:00:00.000100 connect(3, {sa_family=AF_INET, sin_port=htons(13306), sin_addr=inet_addr("127.0.0.1")}, 16) = 0 <0.000100>
100 10:00:00.000300 read(3, "[\0\0\0\n5.5.5-10.11.19-MariaDB\0", 16384) = 91 <0.000050>
100 10:00:00.000400 write(3, "\24\0\0\1\3SELECT 1", 24) = 24 <0.000020>
100 10:00:00.000500 read(4, "not a fresh connection", 100) = 22 <0.000020>
`
	tr, _, err := Parse(strings.NewReader(log), Options{Threshold: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var peeks []model.Event
	for _, e := range tr.Events {
		if len(e.Data) > 0 {
			peeks = append(peeks, e)
		}
	}
	if len(peeks) != 1 {
		t.Fatalf("%d events with data, want only the first read on the connection: %+v", len(peeks), peeks)
	}
	e := peeks[0]
	if e.Kind != model.EvPeek || e.Syscall != "read" || e.Peer.String() != "127.0.0.1:13306" {
		t.Errorf("peek %s %s on %s, want a read peek on 127.0.0.1:13306", e.Kind, e.Syscall, e.Peer)
	}
	if want := "[\x00\x00\x00\n5.5.5-10.11.19-MariaDB\x00"; string(e.Data) != want {
		t.Errorf("data %q, want %q", e.Data, want)
	}
}
