"""The WSGI app behind uWSGI and gunicorn: each request runs one ~20 ms
query (SELECT SLEEP(0.02)) on MariaDB through PyMySQL, on a connection the
process (or thread) opens once and keeps."""

import os
import threading

import pymysql

DB_PORT = int(os.environ.get("SNAG_DB_PORT", "23306"))
local = threading.local()


def connection():
    conn = getattr(local, "conn", None)
    if conn is None:
        conn = pymysql.connect(host="127.0.0.1", port=DB_PORT, user="snag", password="snag",
                               database="snag", autocommit=True)
        local.conn = conn
    return conn


def application(environ, start_response):
    with connection().cursor() as cur:
        cur.execute("SELECT SLEEP(0.02)")
        cur.fetchall()
    body = b"ok\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
