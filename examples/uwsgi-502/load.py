#!/usr/bin/env python3
"""Closed-loop HTTP load with think time, bounded in requests and time.

Each of -c clients sends a GET, waits for the answer, thinks for --think
seconds, and does it again, until -n requests were sent in all or -d
seconds passed. It then prints one JSON line: requests, status counts
("200": …, "502": …), connection errors, the 502 share and the elapsed
time. Python standard library only.
"""
import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:19080/")
    ap.add_argument("-c", "--clients", type=int, default=16)
    ap.add_argument("-n", "--requests", type=int, default=2000, help="stop after this many requests in all")
    ap.add_argument("-d", "--duration", type=float, default=3.0, help="stop after this many seconds")
    ap.add_argument("--think", type=float, default=0.05, help="seconds between a client's answer and its next request")
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()

    u = urllib.parse.urlsplit(args.url)
    host, port, path = u.hostname, u.port or 80, u.path or "/"
    lock = threading.Lock()
    status = {}
    errors = 0
    sent = 0
    start = time.monotonic()
    deadline = start + args.duration

    def client():
        nonlocal errors, sent
        while True:
            with lock:
                if sent >= args.requests or time.monotonic() >= deadline:
                    return
                sent += 1
            try:
                conn = http.client.HTTPConnection(host, port, timeout=args.timeout)
                conn.request("GET", path, headers={"Connection": "close"})
                resp = conn.getresponse()
                resp.read()
                conn.close()
                with lock:
                    status[resp.status] = status.get(resp.status, 0) + 1
            except (OSError, http.client.HTTPException):
                with lock:
                    errors += 1
            time.sleep(args.think)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.duration + args.timeout + 5)
    elapsed = time.monotonic() - start
    done = sum(status.values())
    out = {
        "requests": done + errors,
        "status": {str(k): v for k, v in sorted(status.items())},
        "502": status.get(502, 0),
        "errors": errors,
        "share_502": round(status.get(502, 0) / max(done, 1), 4),
        "elapsed_s": round(elapsed, 3),
        "rate": round((done + errors) / max(elapsed, 1e-9), 1),
    }
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
