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
		if f.Kind != model.FrameInterpreter || f.Function == "" {
			continue
		}
		if strings.Contains(f.Path, "-packages/") || strings.HasPrefix(f.Path, "/usr/lib/python") ||
			strings.HasPrefix(f.Path, "<frozen ") {
			continue
		}
		return f.String()
	}
	return ""
}

// libraryHints is the knowledge base for C libraries found blocking an event
// loop. Each is keyed by a prefix of the shared object's file name.
var libraryHints = []struct{ prefix, hint string }{
	{"libmariadb", "MySQLdb (mysqlclient) is a C extension gevent cannot patch: use PyMySQL, or run queries in a thread pool (gevent.threadpool)"},
	{"libmysqlclient", "MySQLdb (mysqlclient) is a C extension gevent cannot patch: use PyMySQL, or run queries in a thread pool (gevent.threadpool)"},
	{"libmemcached", "pylibmc wraps libmemcached, which gevent cannot patch: use a pure-Python memcached client (python-memcached or pymemcache)"},
	{"libpq", "psycopg2 wraps libpq, which blocks unless told otherwise: install psycogreen (psycogreen.gevent.patch_psycopg()) or use psycopg 3's async API"},
	{"librdkafka", "confluent-kafka's librdkafka blocks the calling thread: call poll/flush with timeout 0 from the loop, or run the producer in a thread"},
	{"libcurl", "pycurl blocks the calling thread: use the loop's HTTP client, or run the transfer in a thread pool"},
	{"libzmq", "pyzmq's blocking sockets stall the loop: use zmq.green (gevent) or zmq.asyncio"},
	{"libgrpc", "grpcio's C core blocks the loop: call grpc.experimental.gevent.init_gevent() under gevent, or use grpc.aio"},
	{"cygrpc", "grpcio's C core blocks the loop: call grpc.experimental.gevent.init_gevent() under gevent, or use grpc.aio"},
	{"libldap", "python-ldap wraps libldap, which gevent cannot patch: use ldap3 (pure Python) or a thread pool"},
	{"libsasl", "a SASL handshake in C blocks the loop: move it to a thread pool"},
}

// serviceHints: what usually makes blocking I/O to a service on a loop when
// no stack names the library.
var serviceHints = map[string]string{
	"mysql":      "blocking MySQL I/O on a loop usually comes from a C driver the loop cannot patch (MySQLdb/mysqlclient): PyMySQL is the pure-Python alternative",
	"postgresql": "blocking PostgreSQL I/O on a loop usually comes from psycopg2 without psycogreen",
	"memcached":  "blocking memcached I/O on a loop usually comes from pylibmc (libmemcached): pymemcache or python-memcached are pure Python",
	"redis":      "blocking Redis I/O on a loop comes from a client the loop did not patch (monkey-patching applied too late, or a C client)",
	"kafka":      "blocking Kafka I/O on a loop usually comes from librdkafka (confluent-kafka)",
}

// stallHint says what to change about a loop stall, and what it is based on.
func stallHint(name string, peer model.Addr, svc, lib string, hasStack bool) string {
	seen := "seen: " + name
	if !peer.IsZero() {
		seen += " on " + peer.String()
	}
	if lib != "" {
		seen += " from " + lib
	}
	var advice string
	for _, h := range libraryHints {
		if lib != "" && strings.HasPrefix(lib, h.prefix) {
			advice = h.hint
			break
		}
	}
	if advice == "" {
		switch {
		case svc == "dns":
			advice = "name resolution on the loop: resolve asynchronously (gevent's ares resolver, GEVENT_RESOLVER=ares; asyncio's loop.getaddrinfo) and cache the answers"
		case syscalls.ClassOf(name) == syscalls.ClassSync:
			advice = "fsync on the loop: move file writes to a thread pool (gevent.threadpool, loop.run_in_executor) or batch them"
		case syscalls.ClassOf(name) == syscalls.ClassFileIO && peer.IsZero():
			advice = "file I/O on the loop: move it to a thread pool (gevent.threadpool, loop.run_in_executor)"
		case syscalls.ClassOf(name) == syscalls.ClassSleep:
			advice = "a blocking sleep on the loop (time.sleep before monkey-patching, or in C code): use the loop's sleep (gevent.sleep, asyncio.sleep)"
		case syscalls.ClassOf(name) == syscalls.ClassProcWait:
			advice = "waiting for a child process on the loop: use gevent.subprocess or asyncio's subprocess support"
		case syscalls.ClassOf(name) == syscalls.ClassConnect:
			advice = "a blocking connect on the loop: the socket was created outside the loop's patched socket module, or by a C library"
		case serviceHints[svc] != "":
			advice = serviceHints[svc]
		default:
			advice = "a blocking call on the loop thread: move it to a thread pool or use the loop's non-blocking equivalent"
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
