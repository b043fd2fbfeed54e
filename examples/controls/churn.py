"""Positive control for connection-churn: a client that opens a new database
connection for every transaction, through a C client library (libpq under
psycopg2, libmariadb under MySQLdb), RATE times a second for SECONDS.

    python3 churn.py --driver psycopg2 --port 25432 [--rate 20] [--seconds 8]
    python3 churn.py --driver mysqldb --port 23306
"""

import argparse
import sys
import time


def connect(driver, port):
    if driver == "psycopg2":
        import psycopg2
        return psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    import MySQLdb
    return MySQLdb.connect(host="127.0.0.1", port=port, user="snag", password="snag", database="snag")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--driver", choices=["psycopg2", "mysqldb"], required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rate", type=float, default=20)
    p.add_argument("--seconds", type=float, default=8)
    a = p.parse_args()
    if a.rate <= 0 or a.seconds <= 0:
        p.error("--rate and --seconds must be positive")
    n = int(a.rate * a.seconds)
    start = time.monotonic()
    for i in range(n):
        conn = connect(a.driver, a.port)
        cur = conn.cursor()
        cur.execute("SELECT 1")
        cur.fetchall()
        conn.close()
        # Paced to RATE: sleep until the next transaction's slot.
        delay = start + (i + 1) / a.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    print(f"{n} transactions, each on its own connection", file=sys.stderr)


if __name__ == "__main__":
    main()
