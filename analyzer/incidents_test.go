package analyzer

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

var mariadbStack = frames(
	"__poll@libc.so.6",
	"pvio_socket_wait_io_or_timeout@libmariadb.so.3",
	"ma_net_safe_read@libmariadb.so.3",
	"mysql_real_query@libmariadb.so.3",
	"_mysql_ConnectionObject_query@_mysql.cpython-311-x86_64-linux-gnu.so",
	"_PyEval_EvalFrameDefault@libpython3.11.so.1.0",
)

// geventHub is DESIGN incident 1: a gevent hub (epoll_wait via libev) whose
// MySQL queries go through libmariadb's blocking poll on one socket.
func geventHub() *model.Trace {
	b := newTrace(10*time.Second).process(100, "gunicorn: worker [app]").runtime(100, geventRuntime).thread(100, 100, "gunicorn", 500*ms)
	b.calls(100, 100, "epoll_wait", 190, time.Millisecond)
	b.slow(10, model.Event{PID: 100, TID: 100, Syscall: "epoll_wait", FD: 5, FDKnown: true, FDKind: model.FDOther, Duration: 20 * ms})
	b.slow(500, model.Event{PID: 100, TID: 100, Syscall: "poll", FD: 7, PollNFDs: 1, PollFD: 7, PollTimeout: -1,
		FDKnown: true, FDKind: model.FDSocket, Peer: inet("127.0.0.1:3306"), Duration: 18 * ms, Ret: 1, Stack: mariadbStack})
	b.calls(100, 100, "recvfrom", 1000, 20*time.Microsecond)
	b.calls(100, 100, "sendto", 500, 15*time.Microsecond)
	b.t.Sockets = append(b.t.Sockets, model.Socket{PID: 100, FD: 7, Proto: "tcp", State: "ESTABLISHED",
		Local: inet("127.0.0.1:50000"), Peer: inet("127.0.0.1:3306")})
	return b.t
}

func TestIncidentGeventHubBlockedByLibmariadb(t *testing.T) {
	a := Analyze(geventHub(), Config{})
	hub := threadOf(t, a, 100)
	if hub.Role != model.RoleEventLoop || hub.LoopWait != "epoll_wait" {
		t.Fatalf("hub role = %s/%q, want event-loop/epoll_wait", hub.Role, hub.LoopWait)
	}
	stalls := findingsOf(a, model.KindLoopStall)
	if len(stalls) != 1 {
		t.Fatalf("got %d loop stalls, want 1: %+v", len(stalls), stalls)
	}
	f := stalls[0]
	if f.Severity != model.SeverityHigh || f.Syscall != "poll" || f.Peer != "127.0.0.1:3306" ||
		f.Service != "mysql" || f.Library != "libmariadb.so.3" || f.Count != 500 || f.Total != 9*time.Second {
		t.Errorf("stall = %+v", f)
	}
	if f.Share < 0.89 || f.Share > 0.91 {
		t.Errorf("share = %v, want 0.9", f.Share)
	}
	for _, want := range []string{"PyMySQL", "seen: poll on 127.0.0.1:3306 from libmariadb.so.3"} {
		if !strings.Contains(f.Hint, want) {
			t.Errorf("hint %q lacks %q", f.Hint, want)
		}
	}
	if !strings.Contains(f.Detail, "blocked outside its event loop") || !strings.Contains(f.Detail, "90%") {
		t.Errorf("detail = %q", f.Detail)
	}
	if len(f.Stack) != len(mariadbStack) || f.Stack[1] != "pvio_socket_wait_io_or_timeout (libmariadb.so.3)" {
		t.Errorf("stack = %q", f.Stack)
	}
	// The hub is also saturated (busy 96%) for the same cause: one finding,
	// the stall, which says so.
	if sat := findingsOf(a, model.KindWorkerSaturation); len(sat) != 0 {
		t.Errorf("saturation = %+v, want it folded into the stall", sat)
	}
	if !strings.Contains(f.Detail, "busy 96% of the time") || !strings.HasPrefix(f.Title, "gevent hub blocked in poll") {
		t.Errorf("stall = %q / %q, want the saturation as its consequence and the hub named", f.Title, f.Detail)
	}
	if got := budgetOf(hub, "peer 127.0.0.1:3306 (mysql)"); got != 9*time.Second {
		t.Errorf("budget for mysql = %v, want 9s", got)
	}
	if hub.Idle != 390*ms {
		t.Errorf("idle = %v, want the 390ms in epoll_wait", hub.Idle)
	}
	c, ok := connOf(a, "127.0.0.1:3306")
	if !ok || !c.BeforeAttach || c.Service != "mysql" || !reflect.DeepEqual(c.TIDs, []int{100}) {
		t.Errorf("connection = %+v, %v", c, ok)
	}
	if MaxSeverity(a) != model.SeverityHigh {
		t.Errorf("max severity = %v", MaxSeverity(a))
	}
}

// celeryWorker is DESIGN incident 2: a Celery worker whose result backend
// opens a MySQL connection after every task.
func celeryWorker() *model.Trace {
	b := newTrace(10*time.Second).process(200, "celery", "-A", "proj", "worker").thread(200, 200, "celery", 300*ms)
	b.calls(200, 200, "epoll_wait", 400, 20*ms)
	b.t.Sockets = append(b.t.Sockets, model.Socket{PID: 200, FD: 6, Proto: "tcp", State: "ESTABLISHED",
		Local: inet("127.0.0.1:40000"), Peer: inet("127.0.0.1:5672")})
	for i := range 30 {
		fd := 10 + i%3
		b.event(model.Event{Kind: model.EvConnect, PID: 200, TID: 200, Syscall: "connect", FD: fd,
			Peer: inet("127.0.0.1:3306"), Duration: 200 * time.Microsecond})
		b.calls(200, 200, "connect", 1, 200*time.Microsecond)
		b.now += uint64(15 * ms)
		b.event(model.Event{PID: 200, TID: 200, Syscall: "close", FD: fd, Duration: 50 * time.Microsecond})
		b.calls(200, 200, "close", 1, 50*time.Microsecond)
	}
	return b.t
}

func TestIncidentCeleryResultBackend(t *testing.T) {
	amqp := func(host string) []netip.Addr {
		if host == "amqp" {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		}
		return nil
	}
	expect, err := ParseExpect("amqp:5672")
	if err != nil {
		t.Fatal(err)
	}
	a := Analyze(celeryWorker(), Config{Expect: expect, Resolve: amqp})

	un := findingsOf(a, model.KindUnexpectedConnection)
	if len(un) != 1 || un[0].Peer != "127.0.0.1:3306" || un[0].Service != "mysql" || un[0].Severity != model.SeverityHigh {
		t.Fatalf("unexpected-connection findings = %+v", un)
	}
	if !strings.Contains(un[0].Hint, "ignore_result") || !strings.Contains(un[0].Detail, "amqp:5672") {
		t.Errorf("unexpected-connection hint/detail = %q / %q", un[0].Hint, un[0].Detail)
	}
	churn := findingsOf(a, model.KindConnectionChurn)
	if len(churn) != 1 || churn[0].Count != 30 || churn[0].Peer != "127.0.0.1:3306" {
		t.Fatalf("churn findings = %+v", churn)
	}
	if !strings.Contains(churn[0].Hint, "ignore_result") || !strings.Contains(churn[0].Title, "3.0 connects/s") {
		t.Errorf("churn = %q / %q", churn[0].Title, churn[0].Hint)
	}
	c, _ := connOf(a, "127.0.0.1:3306")
	if c.Connects != 30 || c.Expected || c.MedianLifetime < 16*ms || c.MedianLifetime > 17*ms || c.ConnectTime != 6*ms {
		t.Errorf("mysql connection = %+v", c)
	}
	if amqpConn, ok := connOf(a, "127.0.0.1:5672"); !ok || !amqpConn.Expected || !amqpConn.BeforeAttach {
		t.Errorf("amqp connection = %+v, %v", amqpConn, ok)
	}
	if len(findingsOf(a, model.KindLoopStall)) != 0 {
		t.Errorf("non-blocking connects made a loop stall: %+v", findingsOf(a, model.KindLoopStall))
	}
}

func TestAnalyzeIsDeterministic(t *testing.T) {
	for _, tr := range []*model.Trace{geventHub(), celeryWorker()} {
		cfg := Config{Expect: []Endpoint{{Host: "127.0.0.1", Port: 5672}}}
		first := Analyze(tr, cfg)
		for range 5 {
			if got := Analyze(tr, cfg); !reflect.DeepEqual(first, got) {
				t.Fatal("two analyses of the same trace differ")
			}
		}
	}
}

func TestAnalyzeNilAndEmpty(t *testing.T) {
	for _, tr := range []*model.Trace{nil, {}} {
		a := Analyze(tr, Config{})
		if a == nil || len(a.Findings) != 0 || MaxSeverity(a) != 0 {
			t.Errorf("Analyze(%v) = %+v", tr, a)
		}
	}
	if MaxSeverity(nil) != 0 {
		t.Error("MaxSeverity(nil) != 0")
	}
}

// A hub so stalled that it barely reaches its loop: under load a gevent hub
// blocked in MySQLdb made 4 epoll_wait calls in 4 s, each returning at once
// with work pending, between 78 polls of 50 ms. It is still the loop, the
// stall is high, and it is listed before the saturation it causes.
func TestIncidentHubTooStalledToIdle(t *testing.T) {
	b := newTrace(4*time.Second).process(100, "python3 app.py").thread(100, 100, "python3", 90*ms)
	b.calls(100, 100, "epoll_wait", 4, 12*time.Microsecond)
	b.slow(78, model.Event{PID: 100, TID: 100, Syscall: "poll", FD: 7, PollNFDs: 1, PollFD: 7, PollTimeout: -1,
		FDKnown: true, FDKind: model.FDSocket, Peer: inet("127.0.0.1:13306"), Duration: 50 * ms, Ret: 1, Stack: mariadbStack})
	b.calls(100, 100, "recvfrom", 283, 4*time.Microsecond)
	a := Analyze(b.t, Config{})
	if hub := threadOf(t, a, 100); hub.Role != model.RoleEventLoop || hub.LoopWait != "epoll_wait" {
		t.Fatalf("hub role = %s/%q, want event-loop/epoll_wait", hub.Role, hub.LoopWait)
	}
	if len(a.Findings) == 0 || a.Findings[0].Kind != model.KindLoopStall || a.Findings[0].Severity != model.SeverityHigh {
		t.Fatalf("first finding = %+v, want the high loop stall", a.Findings)
	}
}

func TestStallNamesTheApplicationFrame(t *testing.T) {
	py := func(fn, path string) model.Frame {
		return model.Frame{Function: fn, Path: path, Module: path[strings.LastIndex(path, "/")+1:], Kind: model.FrameInterpreter}
	}
	stack := append(append([]model.Frame{}, mariadbStack[:5]...),
		py("BaseCursor.execute", "/usr/lib/python3/dist-packages/MySQLdb/cursors.py"),
		py("get_user", "/srv/app/views.py"),
		py("WSGIHandler.run_application", "/usr/lib/python3/dist-packages/gevent/pywsgi.py"))
	b := newTrace(4*time.Second).process(100, "python3 app.py").thread(100, 100, "python3", 90*ms)
	b.calls(100, 100, "epoll_wait", 4, 12*time.Microsecond)
	b.slow(78, model.Event{PID: 100, TID: 100, Syscall: "poll", FD: 7, PollNFDs: 1, PollFD: 7, PollTimeout: -1,
		FDKnown: true, FDKind: model.FDSocket, Peer: inet("127.0.0.1:3306"), Duration: 50 * ms, Ret: 1, Stack: stack})
	stalls := findingsOf(Analyze(b.t, Config{}), model.KindLoopStall)
	if len(stalls) != 1 || !strings.Contains(stalls[0].Detail, "the call comes from get_user (views.py)") {
		t.Errorf("stall detail does not name the application's frame: %+v", stalls)
	}
}
