package analyzer

import (
	"strings"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/syscalls"
)

// systemLibs make syscalls on someone else's behalf; the library that
// matters is the first object above them on the stack.
var systemLibs = []string{"libc.so", "libc-", "libpthread", "ld-linux", "ld-musl", "libc.musl", "[vdso]", "linux-vdso"}

// library is the first shared object above the C library on a leaf-first
// stack: the code that made the call. "" when the stack has none.
func library(stack []model.Frame) string {
	for _, f := range stack {
		if f.Kind != model.FrameNative || f.Module == "" {
			continue
		}
		sys := false
		for _, s := range systemLibs {
			if strings.HasPrefix(f.Module, s) {
				sys = true
				break
			}
		}
		if !sys {
			return f.Module
		}
	}
	return ""
}

// appFrame names the innermost interpreter frame of the application's own
// code: the first Python frame not in an installed package or the standard
// library. That is where an engineer starts reading.
func appFrame(stack []model.Frame) string {
	for _, f := range stack {
		if f.Kind == model.FrameInterpreter && f.Function != "" && !pythonLibrary(f) {
			return f.String()
		}
	}
	return ""
}

// pythonLibrary reports whether a Python frame runs code of an installed
// package or of the standard library rather than the application's.
func pythonLibrary(f model.Frame) bool {
	return strings.Contains(f.Path, "-packages/") || strings.HasPrefix(f.Path, "/usr/lib/python") ||
		strings.HasPrefix(f.Path, "<frozen ")
}

// libraryHints is the knowledge base for C libraries found blocking an event
// loop, keyed by a prefix of the shared object's file name: what the library
// is, and what replaces it under a greenlet hub and under asyncio.
var libraryHints = []struct{ prefix, what, green, async string }{
	{"libmariadb", "MySQLdb (mysqlclient) is a C extension over libmariadb", "PyMySQL (pure Python)", "aiomysql or asyncmy"},
	{"libmysqlclient", "MySQLdb (mysqlclient) is a C extension over libmysqlclient", "PyMySQL (pure Python)", "aiomysql or asyncmy"},
	{"libmemcached", "pylibmc wraps libmemcached", "pymemcache or python-memcached (pure Python)", "aiomcache"},
	{"libpq", "psycopg2 wraps libpq, which blocks unless told otherwise", "psycogreen (psycogreen.gevent.patch_psycopg())", "psycopg 3's async API or asyncpg"},
	{"librdkafka", "confluent-kafka's librdkafka blocks the calling thread", "poll/flush with timeout 0 from the loop", "aiokafka"},
	{"libcurl", "pycurl blocks the calling thread", "the hub's patched HTTP client (requests, urllib3)", "aiohttp or httpx's async client"},
	{"libzmq", "pyzmq's blocking sockets block the thread", "zmq.green", "zmq.asyncio"},
	{"libgrpc", "grpcio's C core blocks the thread", "grpc.experimental.gevent.init_gevent()", "grpc.aio"},
	{"cygrpc", "grpcio's C core blocks the thread", "grpc.experimental.gevent.init_gevent()", "grpc.aio"},
	{"libldap", "python-ldap wraps libldap", "ldap3 (pure Python)", "ldap3 in a thread (asyncio.to_thread)"},
	{"libsasl", "a SASL handshake in C blocks the thread", "", ""},
}

// offload is how the runtime moves a blocking call off its loop.
func offload(r model.Runtime) string {
	switch {
	case r.Loop == model.LoopGevent:
		return "gevent's thread pool (gevent.get_hub().threadpool)"
	case r.Loop == model.LoopEventlet:
		return "eventlet.tpool.execute"
	case r.Loop == model.LoopAsyncio || r.Loop == model.LoopUvloop:
		return "asyncio.to_thread or loop.run_in_executor"
	case r.Name == model.RuntimeNode:
		return "a worker thread (worker_threads) or the asynchronous API, which runs on the libuv threadpool"
	case r.Name == model.RuntimeJVM:
		return "a separate executor, never the event-loop thread (Netty, Vert.x)"
	}
	return "a thread pool"
}

// green reports whether the runtime is a greenlet hub (monkey-patching).
func green(r model.Runtime) bool { return r.Loop == model.LoopGevent || r.Loop == model.LoopEventlet }

// asyncioLoop reports whether the runtime runs asyncio (or uvloop).
func asyncioLoop(r model.Runtime) bool {
	return r.Loop == model.LoopAsyncio || r.Loop == model.LoopUvloop
}

// libraryAdvice says what to do about a C library blocking the loop, for
// this runtime only.
func libraryAdvice(lib string, r model.Runtime) string {
	for _, h := range libraryHints {
		if !strings.HasPrefix(lib, h.prefix) {
			continue
		}
		switch {
		case green(r) && h.green != "":
			return h.what + ", which " + r.Loop + " cannot patch: use " + h.green + ", or run the calls in " + offload(r)
		case asyncioLoop(r) && h.async != "":
			return h.what + ", which blocks the asyncio loop: use " + h.async + ", or run the calls in " + offload(r)
		case r.Name == model.RuntimeCPython && r.Loop == "" && h.green != "":
			// A Python loop snag could not name: say which fix fits which.
			return h.what + ": its calls block the loop thread; under gevent or eventlet use " + h.green +
				", under asyncio " + h.async + ", or run the calls in a thread pool"
		}
		return h.what + ": its calls block the loop thread; run them in " + offload(r)
	}
	return ""
}

// serviceHints: what usually makes blocking I/O to a service on a Python
// loop when no stack names the library.
var serviceHints = map[string]string{
	"mysql":      "blocking MySQL I/O on a loop usually comes from a C driver the loop cannot patch (MySQLdb/mysqlclient): PyMySQL is the pure-Python alternative",
	"postgresql": "blocking PostgreSQL I/O on a loop usually comes from psycopg2 without psycogreen",
	"memcached":  "blocking memcached I/O on a loop usually comes from pylibmc (libmemcached): pymemcache or python-memcached are pure Python",
	"redis":      "blocking Redis I/O on a loop comes from a client the loop did not patch (monkey-patching applied too late, or a C client)",
	"kafka":      "blocking Kafka I/O on a loop usually comes from librdkafka (confluent-kafka)",
}

// stallHint says what to change about a loop stall, for the runtime the
// process runs, and what it is based on.
func stallHint(name string, peer model.Addr, path, svc, lib string, hasStack bool, r model.Runtime) string {
	seen := "seen: " + name
	switch {
	case !peer.IsZero():
		seen += " on " + peer.String()
	case path != "":
		seen += " on " + path
	}
	if lib != "" {
		seen += " from " + lib
	}
	if !r.IsZero() {
		seen += " in " + r.String()
	}
	node := r.Name == model.RuntimeNode
	advice := libraryAdvice(lib, r)
	if advice == "" {
		class := syscalls.ClassOf(name)
		switch {
		case svc == "dns":
			switch {
			case green(r):
				advice = "name resolution on the hub: use gevent's ares resolver (GEVENT_RESOLVER=ares) and cache the answers"
			case asyncioLoop(r):
				advice = "name resolution on the loop: use loop.getaddrinfo (or aiodns) and cache the answers"
			case node:
				advice = "name resolution on the loop: dns.lookup runs on the libuv threadpool and dns.resolve* on c-ares; cache the answers"
			default:
				advice = "name resolution on the loop: resolve asynchronously and cache the answers"
			}
		case class == syscalls.ClassSync:
			advice = "fsync on the loop: batch the writes, or move them to " + offload(r)
		case class == syscalls.ClassFileIO && peer.IsZero() && node:
			advice = "synchronous file I/O on the Node.js event loop (fs.*Sync): use fs.promises or the callback API, which run on the libuv threadpool"
		case class == syscalls.ClassFileIO && peer.IsZero():
			advice = "file I/O on the loop: move it to " + offload(r)
		case class == syscalls.ClassSleep:
			switch {
			case green(r):
				advice = "a blocking sleep on the hub (time.sleep before monkey-patching, or in C code): use gevent.sleep"
			case asyncioLoop(r):
				advice = "a blocking sleep on the loop (time.sleep in a coroutine, or in C code): use await asyncio.sleep"
			case node:
				advice = "a blocking sleep on the Node.js event loop (Atomics.wait, a native addon): use timers (setTimeout, timers/promises)"
			default:
				advice = "a blocking sleep on the loop: use the loop's own timer"
			}
		case class == syscalls.ClassProcWait:
			switch {
			case green(r):
				advice = "waiting for a child process on the hub: use gevent.subprocess"
			case asyncioLoop(r):
				advice = "waiting for a child process on the loop: use asyncio.create_subprocess_exec"
			case node:
				advice = "waiting for a child process on the Node.js event loop (execSync, spawnSync): use child_process.spawn or execFile"
			default:
				advice = "waiting for a child process on the loop: use the loop's subprocess support"
			}
		case class == syscalls.ClassConnect:
			advice = "a blocking connect on the loop: the socket was created outside the loop's own socket API, or by a C library"
		case serviceHints[svc] != "" && (r.Name == model.RuntimeCPython || r.Name == ""):
			advice = serviceHints[svc]
		default:
			advice = "a blocking call on the loop thread: use the loop's non-blocking equivalent, or move it to " + offload(r)
		}
	}
	if lib == "" {
		if hasStack {
			advice += "; the stack names no library above libc"
		} else {
			advice += "; the library is unknown because no user stack was captured: capture stacks to confirm which code makes the call"
		}
	}
	return seen + ". " + advice
}

// backendServices are where Celery stores task results.
var backendServices = map[string]bool{
	"mysql": true, "postgresql": true, "redis": true, "amqp": true, "amqps": true,
	"mongodb": true, "memcached": true, "cassandra": true, "elasticsearch": true,
}

// connectionHint says what to change about an unexpected or churning peer.
func connectionHint(c *conn, churn, celery bool) string {
	seen := "seen: " + plural(c.Connects, "connect") + " to " + c.Peer.String()
	if c.Connects == 0 {
		seen = "seen: traffic to " + c.Peer.String()
	}
	svc := c.Service
	var advice string
	switch {
	case svc == "dns":
		advice = "name lookups at runtime: cache resolved addresses (nscd, systemd-resolved, or in the application) instead of resolving per request"
	case backendServices[svc] && celery:
		advice = "this process is a Celery worker: a connection to " + svc + " per task is typical of its result backend, written after every task; " +
			"if nobody reads the results set task_ignore_result = True (or @app.task(ignore_result=True)), else keep one persistent backend connection"
	case backendServices[svc] && churn:
		advice = "a new " + svc + " connection per request or task: keep connections open (a pool, persistent connections such as Django's CONN_MAX_AGE); " +
			"if this is a Celery worker, a per-task connection is its result backend: task_ignore_result = True"
	case churn:
		advice = "a connection per request: keep connections open (a pool, HTTP keep-alive, persistent connections)"
	default:
		advice = "find the code that opens it (see the stack, if captured); add it to --expect if it is legitimate"
	}
	if c.stackLib != "" {
		seen += " from " + c.stackLib
	}
	return seen + ". " + advice
}

func plural(n uint64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return itoa(n) + " " + word + "s"
}
