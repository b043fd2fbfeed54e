"""The WSGI app of the 502 example: every request runs one query that
takes 50 ms in MariaDB (SELECT SLEEP(0.05)) through PyMySQL, on a
connection each worker opens once and keeps.

The database's latency does not grow with load: SLEEP uses no CPU, so 2
workers or 16, each query takes 50 ms. What limits the 2-worker setup is
the workers, not the database.
"""
import os

import pymysql

DB_PORT = int(os.environ.get("SNAG_DB_PORT", "19306"))
QUERY_SECONDS = float(os.environ.get("SNAG_QUERY_SECONDS", "0.05"))

_conn = None


def _db():
    global _conn
    if _conn is None:
        _conn = pymysql.connect(host="127.0.0.1", port=DB_PORT, user="snag", password="snag",
                                database="snag", autocommit=True, connect_timeout=5)
    return _conn


def application(environ, start_response):
    global _conn
    try:
        with _db().cursor() as cur:
            cur.execute("SELECT SLEEP(%s)", (QUERY_SECONDS,))
            cur.fetchall()
    except pymysql.Error:
        _conn = None  # reconnect on the next request
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"database error\n"]
    body = b"ok\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
