"""Tests for app.py that need no database: the pool and the WSGI app."""

import io
import unittest
import unittest.mock

import app  # patches the standard library for gevent first


class FakeConn:
    def __init__(self, fail=False):
        self.fail = fail
        self.closed = False
        self.queries = []

    def cursor(self):
        return FakeCursor(self)

    def close(self):
        self.closed = True


class FakeCursor:
    def __init__(self, conn):
        self.conn = conn

    def execute(self, query):
        if self.conn.fail:
            raise RuntimeError("server has gone away")
        self.conn.queries.append(query)

    def fetchall(self):
        return [(0,)]

    def close(self):
        pass


class PoolTest(unittest.TestCase):
    def test_reuses_idle_connection(self):
        made = []
        pool = app.Pool(lambda: made.append(FakeConn()) or made[-1], 4)
        for _ in range(3):
            with pool.connection() as conn:
                conn.cursor().execute("q")
        self.assertEqual(len(made), 1)
        self.assertEqual(made[0].queries, ["q", "q", "q"])

    def test_failed_connection_is_closed_not_reused(self):
        made = []
        pool = app.Pool(lambda: made.append(FakeConn()) or made[-1], 4)
        with self.assertRaises(ValueError):
            with pool.connection():
                raise ValueError("boom")
        self.assertTrue(made[0].closed)
        with pool.connection() as conn:
            self.assertIsNot(conn, made[0])

    def test_close_closes_idle(self):
        conn = FakeConn()
        pool = app.Pool(lambda: conn, 1)
        with pool.connection():
            pass
        pool.close()
        self.assertTrue(conn.closed)


def call(wsgi, path):
    got = {}

    def start_response(status, headers):
        got["status"] = status

    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
    body = b"".join(wsgi(environ, start_response))
    return got["status"], body.decode()


class AppTest(unittest.TestCase):
    def test_query(self):
        conn = FakeConn()
        status, body = call(app.make_app(app.Pool(lambda: conn, 1), "pymysql", 0.05), "/")
        self.assertEqual(status, "200 OK")
        self.assertIn("pymysql: SELECT SLEEP(0.05)", body)
        self.assertEqual(conn.queries, ["SELECT SLEEP(0.05)"])

    def test_not_found(self):
        status, _ = call(app.make_app(app.Pool(FakeConn, 1), "mysqldb", 0.05), "/x")
        self.assertEqual(status, "404 Not Found")

    def test_database_error_is_502(self):
        conn = FakeConn(fail=True)
        with unittest.mock.patch("sys.stderr", io.StringIO()):
            status, body = call(app.make_app(app.Pool(lambda: conn, 1), "mysqldb", 0.05), "/")
        self.assertEqual(status, "502 Bad Gateway")
        self.assertIn("server has gone away", body)
        self.assertTrue(conn.closed)

    def test_args(self):
        a = app.parse_args(["--driver", "pymysql"])
        self.assertEqual((a.port, a.db_port, a.sleep), (18081, 13306, 0.05))
        for bad in (["--driver", "psycopg"], ["--driver", "mysqldb", "--pool-size", "0"], []):
            with self.subTest(args=bad), unittest.mock.patch("sys.stderr", io.StringIO()):
                with self.assertRaises(SystemExit):
                    app.parse_args(bad)


if __name__ == "__main__":
    unittest.main()
