#!/usr/bin/python3
"""Concurrent HTTP load generator, standard library only.

Runs -c client threads, each on its own keep-alive connection, until -n
requests are done or -d has passed, whichever comes first, then prints the
throughput and latency percentiles.
"""

import argparse
import http.client
import json
import math
import re
import signal
import sys
import threading
import time
import urllib.parse

REQUEST_TIMEOUT = 10.0  # seconds; bounds a run's overshoot past -d
COUNT_RUN_CAP = 60.0  # seconds a run given only -n may last

_DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(ms|s|m)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


def parse_duration(text):
    """Parse "5s", "500ms", "2m" or a bare number of seconds."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError("bad duration %r (want e.g. 5s, 500ms, 2m)" % text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def percentile(sorted_values, p):
    """Nearest-rank p-th percentile (0 < p <= 100); 0 for no values."""
    if not sorted_values or p <= 0:
        return 0.0
    rank = math.ceil(len(sorted_values) * p / 100.0)
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


class Result:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = []
        self.errors = 0
        self.first_error = None
        self.elapsed = 0.0

    def summary(self, url, concurrency):
        lat = sorted(self.latencies)
        return {
            "url": url,
            "concurrency": concurrency,
            "requests": len(lat),
            "errors": self.errors,
            "elapsed_s": round(self.elapsed, 3),
            "rate_per_s": round(len(lat) / self.elapsed, 1) if self.elapsed > 0 else 0.0,
            "p50_ms": round(percentile(lat, 50) * 1000, 1),
            "p90_ms": round(percentile(lat, 90) * 1000, 1),
            "p99_ms": round(percentile(lat, 99) * 1000, 1),
            "max_ms": round(percentile(lat, 100) * 1000, 1),
            "first_error": self.first_error,
        }


class Tickets:
    """Hands out at most limit request tickets (unlimited when limit is 0)."""

    def __init__(self, limit):
        self._limit = limit
        self._issued = 0
        self._lock = threading.Lock()

    def take(self):
        if not self._limit:
            return True
        with self._lock:
            if self._issued >= self._limit:
                return False
            self._issued += 1
            return True


def worker(url, deadline, tickets, result):
    target = urllib.parse.urlsplit(url)
    path = target.path or "/"
    if target.query:
        path += "?" + target.query
    conn = None
    lat, errors, first_error = [], 0, None
    while time.monotonic() < deadline and tickets.take():
        if conn is None:
            conn = http.client.HTTPConnection(target.hostname, target.port or 80,
                                              timeout=REQUEST_TIMEOUT)
        started = time.monotonic()
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError("status %d: %r" % (resp.status, body[:200]))
            if resp.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException, RuntimeError) as exc:
            errors += 1
            first_error = first_error or "%s: %s" % (type(exc).__name__, exc)
            if conn is not None:
                conn.close()
                conn = None
            continue
        lat.append(time.monotonic() - started)
    if conn is not None:
        conn.close()
    with result.lock:
        result.latencies.extend(lat)
        result.errors += errors
        result.first_error = result.first_error or first_error


def run(url, concurrency, duration, requests):
    result = Result()
    tickets = Tickets(requests)
    started = time.monotonic()
    deadline = started + duration
    threads = [threading.Thread(target=worker, args=(url, deadline, tickets, result), daemon=True)
               for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.elapsed = time.monotonic() - started
    return result


def format_summary(s):
    rows = [
        ("url", s["url"]),
        ("concurrency", s["concurrency"]),
        ("requests", s["requests"]),
        ("errors", s["errors"]),
        ("elapsed", "%.3fs" % s["elapsed_s"]),
        ("rate", "%.1f req/s" % s["rate_per_s"]),
        ("latency p50", "%.1fms" % s["p50_ms"]),
        ("latency p90", "%.1fms" % s["p90_ms"]),
        ("latency p99", "%.1fms" % s["p99_ms"]),
        ("latency max", "%.1fms" % s["max_ms"]),
    ]
    if s["first_error"]:
        rows.append(("first error", s["first_error"]))
    return "".join("%-13s%s\n" % (k, v) for k, v in rows)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:18081/")
    p.add_argument("-c", "--concurrency", type=int, default=16)
    p.add_argument("-d", "--duration", type=parse_duration, default=None,
                   help="stop after this long (default 5s, or %ds with -n)" % COUNT_RUN_CAP)
    p.add_argument("-n", "--requests", type=int, default=0,
                   help="stop after this many requests")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    target = urllib.parse.urlsplit(args.url)
    if target.scheme != "http" or not target.hostname:
        p.error("--url must be an http:// URL")
    if args.concurrency < 1:
        p.error("-c must be at least 1")
    if args.requests < 0:
        p.error("-n must not be negative")
    if args.duration is None:
        args.duration = COUNT_RUN_CAP if args.requests else 5.0
    if args.duration <= 0:
        p.error("-d must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)
    result = run(args.url, args.concurrency, args.duration, args.requests)
    summary = result.summary(args.url, args.concurrency)
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_summary(summary))
    # Fail only when nothing worked, so a partial outage still reports.
    return 1 if summary["requests"] == 0 and summary["errors"] else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
