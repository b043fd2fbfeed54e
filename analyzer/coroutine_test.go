package analyzer

import (
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// Stacks as snag captures them, leaf first: c is a C frame ("function" or
// "module+" when unnamed), py a Python frame.
func c(s string) model.Frame {
	if m, ok := strings.CutSuffix(s, "+"); ok {
		return model.Frame{Module: m, Kind: model.FrameNative}
	}
	return model.Frame{Function: s, Module: "libpython3.13.so.1.0", Kind: model.FrameNative}
}

func py(fn, path string) model.Frame {
	return model.Frame{Function: fn, Path: path, Module: path[strings.LastIndex(path, "/")+1:], Kind: model.FrameInterpreter}
}

const (
	dist     = "/usr/lib/python3/dist-packages/"
	stdlib   = "/usr/lib/python3.11/"
	embedded = "/root/.cache/snag-test-python/v0.0.0-3.13.1-20241219-1/lib/python3.13/"
)

// loopBase is what runs an asyncio loop's callbacks, innermost first.
func loopBase(lib string) []model.Frame {
	return []model.Frame{py("Handle._run", lib+"asyncio/events.py"), py("BaseEventLoop._run_once", lib+"asyncio/base_events.py"),
		py("BaseEventLoop.run_forever", lib+"asyncio/base_events.py"), py("run", lib+"asyncio/runners.py"), py("<module>", "/srv/prog.py")}
}

func stack(parts ...[]model.Frame) []model.Frame {
	var out []model.Frame
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestCoroutine(t *testing.T) {
	app := []model.Frame{py("inner", "/srv/prog.py"), py("outer", "/srv/prog.py"), py("main", "/srv/prog.py")}
	for _, tc := range []struct {
		name  string
		stack []model.Frame
		want  string
	}{
		{"gevent's WSGI server greenlet names the application", []model.Frame{
			c("poll"), c("_mysql.cpython-311-x86_64-linux-gnu.so+"), c("PyObject_Vectorcall"),
			py("BaseCursor.execute", dist+"MySQLdb/cursors.py"),
			py("make_app.<locals>.app", "/srv/examples/gevent-mysqldb/app.py"),
			py("WSGIHandler.run_application", dist+"gevent/pywsgi.py"),
			py("WSGIServer.handle", dist+"gevent/pywsgi.py"),
			py("_handle_and_close_when_done", dist+"gevent/baseserver.py"),
			c("_gevent_cgreenlet.cpython-311-x86_64-linux-gnu.so+"),
			c("greenlet::UserGreenlet::inner_bootstrap"), c("greenlet::UserGreenlet::g_initialstub"),
		}, "greenlet make_app.<locals>.app"},
		{"the outermost application function of a spawned worker", []model.Frame{
			c("recv"), py("fetch", "/srv/app/client.py"), py("poll_upstream", "/srv/app/worker.py"),
			c("_gevent_cgreenlet.cpython-311-x86_64-linux-gnu.so+"), c("greenlet::UserGreenlet::g_initialstub"),
		}, "greenlet poll_upstream"},
		{"only library code: the function spawned", []model.Frame{
			c("epoll_wait"), py("Hub.run", dist+"gevent/hub.py"), c("g_initialstub"),
		}, "greenlet Hub.run"},
		{"uncompiled gevent's Greenlet.run", []model.Frame{
			c("recv"), py("work", "/srv/app/jobs.py"), py("Greenlet.run", dist+"gevent/greenlet.py"),
			py("Greenlet._Greenlet__run", dist+"gevent/greenlet.py"),
		}, "greenlet work"},
		{"eventlet's GreenThread.main", []model.Frame{
			c("recv"), py("handle", "/srv/app/server.py"), py("GreenThread.main", dist+"eventlet/greenthread.py"),
		}, "greenlet handle"},
		{"the main greenlet is no spawned one", []model.Frame{
			c("recv"), py("main", "/srv/app/cli.py"), py("<module>", "/srv/app/cli.py"), c("Py_RunMain"),
		}, ""},
		{"a greenlet without Python frames", []model.Frame{c("recv"), c("g_initialstub")}, ""},
		{"asyncio 3.11: the C task step of Debian's _asyncio module", stack(app, []model.Frame{
			c("PyIter_Send"), c("_asyncio.cpython-311-x86_64-linux-gnu.so+"), c("_asyncio.cpython-311-x86_64-linux-gnu.so+"),
			c("_PyObject_MakeTpCall"), c("python3.11+"),
		}, loopBase(stdlib)), "asyncio task main()"},
		{"asyncio 3.10: co_name only, task_step named", stack(app, []model.Frame{
			c("gen_send_ex2"), c("task_step_impl"), c("task_step"), c("task_wakeup"), c("context_run"),
			py("_run", embedded+"asyncio/events.py"), py("_run_once", embedded+"asyncio/base_events.py"),
		}), "asyncio task main()"},
		{"the pure-Python task step", stack(app, []model.Frame{
			py("Task.__step_run_and_handle_result", stdlib+"asyncio/tasks.py"), py("Task.__step", stdlib+"asyncio/tasks.py"),
			c("context_run"),
		}, loopBase(stdlib)), "asyncio task main()"},
		{"a task whose coroutine is asyncio's own", stack([]model.Frame{
			c("accept4"), py("Server.serve_forever", stdlib+"asyncio/base_events.py"), c("task_step"),
		}, loopBase(stdlib)), "asyncio task Server.serve_forever()"},
		{"a plain callback, every C frame named", stack([]model.Frame{
			c("clock_nanosleep"), py("tick", "/srv/app/timers.py"), c("_PyFunction_Vectorcall"), c("context_run"),
		}, loopBase(stdlib)), "asyncio callback tick"},
		{"nameless C frames: a task or a callback", stack(app, []model.Frame{
			c("python3.14+"), c("python3.14+"), c("PyEval_EvalCode"), c("_start"),
		}, loopBase(embedded)), "asyncio task or callback main"},
		{"a transport's callback is the loop's, no task", stack([]model.Frame{
			c("recvfrom"), py("Proto.data_received", "/srv/app/proto.py"),
			py("_SelectorSocketTransport._read_ready", stdlib+"asyncio/selector_events.py"), c("context_run"),
		}, loopBase(stdlib)), ""},
		{"a thread's own stack", stack(app, []model.Frame{
			py("Thread.run", stdlib+"threading.py"), c("libc.so.6+"),
		}), ""},
		{"no stack", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := coroutine(tc.stack); got != tc.want {
				t.Errorf("coroutine = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStallNamesItsCoroutine(t *testing.T) {
	stack := append(append([]model.Frame{}, mariadbStack[:5]...),
		py("BaseCursor.execute", dist+"MySQLdb/cursors.py"),
		py("make_app.<locals>.app", "/srv/app/app.py"),
		py("WSGIHandler.run_application", dist+"gevent/pywsgi.py"),
		py("_handle_and_close_when_done", dist+"gevent/baseserver.py"),
		c("greenlet::UserGreenlet::g_initialstub"))
	b := newTrace(4*time.Second).process(100, "python3 app.py").thread(100, 100, "python3", 90*ms)
	b.calls(100, 100, "epoll_wait", 4, 12*time.Microsecond)
	b.slow(78, model.Event{PID: 100, TID: 100, Syscall: "poll", FD: 7, PollNFDs: 1, PollFD: 7, PollTimeout: -1,
		FDKnown: true, FDKind: model.FDSocket, Peer: inet("127.0.0.1:3306"), Duration: 50 * ms, Ret: 1, Stack: stack})
	stalls := findingsOf(Analyze(b.t, Config{}), model.KindLoopStall)
	if len(stalls) != 1 {
		t.Fatalf("stalls = %+v, want one", stalls)
	}
	if f := stalls[0]; f.Coroutine != "greenlet make_app.<locals>.app" ||
		!strings.Contains(f.Detail, "the call comes from make_app.<locals>.app (app.py), in greenlet make_app.<locals>.app") {
		t.Errorf("stall coroutine %q, detail %q: want the greenlet named in both", f.Coroutine, f.Detail)
	}
}
