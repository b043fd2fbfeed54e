#!/usr/bin/python3
"""A gevent WSGI app whose requests each run SELECT SLEEP(0.05) on MariaDB.

With --driver pymysql the driver is pure Python, its sockets are
monkey-patched, and greenlets overlap while MariaDB sleeps. With --driver
mysqldb the driver is a C extension (libmariadb): its blocking poll/recv run
on the hub thread that gevent never sees, and every greenlet waits behind the
one in the database. Same code, same database, a several-fold throughput gap.
"""

# Patch before anything else imports socket, threading or time.
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from gevent.lock import BoundedSemaphore  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402
from gevent.queue import Empty, LifoQueue  # noqa: E402

DB_USER = "snag"
DB_PASSWORD = "snag"
CONNECT_TIMEOUT = 10  # seconds; a missing database fails fast, not forever


def connect_mysqldb(host, port):
    import MySQLdb

    return MySQLdb.connect(host=host, port=port, user=DB_USER, passwd=DB_PASSWORD,
                           connect_timeout=CONNECT_TIMEOUT)


def connect_pymysql(host, port):
    import pymysql

    return pymysql.connect(host=host, port=port, user=DB_USER, password=DB_PASSWORD,
                           connect_timeout=CONNECT_TIMEOUT)


DRIVERS = {"mysqldb": connect_mysqldb, "pymysql": connect_pymysql}


class Pool:
    """A lazily filled connection pool shared by all greenlets.

    At most size connections exist; a greenlet that finds none idle opens one
    if it may, else waits. A connection that failed is closed, not reused.
    """

    def __init__(self, connect, size):
        self._connect = connect
        self._slots = BoundedSemaphore(size)
        self._idle = LifoQueue()

    @contextlib.contextmanager
    def connection(self):
        with self._slots:
            try:
                conn = self._idle.get_nowait()
            except Empty:
                conn = self._connect()
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.close()
                raise
            self._idle.put(conn)

    def close(self):
        while True:
            try:
                conn = self._idle.get_nowait()
            except Empty:
                return
            with contextlib.suppress(Exception):
                conn.close()


def make_app(pool, driver, sleep):
    query = "SELECT SLEEP(%s)" % float(sleep)

    def app(environ, start_response):
        if environ.get("PATH_INFO", "/") != "/":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        started = time.monotonic()
        try:
            with pool.connection() as conn:
                cur = conn.cursor()
                try:
                    cur.execute(query)
                    cur.fetchall()
                finally:
                    cur.close()
        except Exception as exc:  # any driver error becomes a 502, logged
            print("query failed: %r" % (exc,), file=sys.stderr)
            start_response("502 Bad Gateway", [("Content-Type", "text/plain")])
            return [("database error: %s\n" % exc).encode()]
        body = "%s: %s took %.3fs\n" % (driver, query, time.monotonic() - started)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body.encode()]

    return app


def write_ready_file(path, pid):
    """Write the pid atomically, so a watcher never reads half a file."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".ready-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write("%d\n" % pid)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--driver", choices=sorted(DRIVERS), required=True)
    p.add_argument("--port", type=int, default=18081, help="HTTP port on 127.0.0.1")
    p.add_argument("--db-host", default="127.0.0.1")
    p.add_argument("--db-port", type=int, default=13306)
    p.add_argument("--sleep", type=float, default=0.05,
                   help="seconds each query sleeps in MariaDB")
    p.add_argument("--pool-size", type=int, default=32,
                   help="most database connections open at once")
    p.add_argument("--ready-file", help="write the pid here once listening")
    args = p.parse_args(argv)
    if args.pool_size < 1:
        p.error("--pool-size must be at least 1")
    if args.sleep < 0:
        p.error("--sleep must not be negative")
    return args


def main(argv=None):
    args = parse_args(argv)
    connect = DRIVERS[args.driver]
    pool = Pool(lambda: connect(args.db_host, args.db_port), args.pool_size)
    server = WSGIServer(("127.0.0.1", args.port), make_app(pool, args.driver, args.sleep),
                        log=None)
    server.start()  # bound and listening from here on

    # server.stop waits for requests in flight, so run it in a greenlet, not
    # in the hub's signal callback.
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, lambda: gevent.spawn(server.stop, timeout=5))

    print("serving http://127.0.0.1:%d/ with %s, MariaDB at %s:%d, pid %d"
          % (args.port, args.driver, args.db_host, args.db_port, os.getpid()), file=sys.stderr)
    if args.ready_file:
        write_ready_file(args.ready_file, os.getpid())
    try:
        server.serve_forever()
    finally:
        pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
