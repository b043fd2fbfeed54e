#!/usr/bin/env bash
# Load for one case of the corpus with its server's standard load tool,
# bounded both in requests and in time: it stops by itself after SECONDS
# (default 8) or its request count, whichever comes first.
#   load.sh CASE [SECONDS]
# CASE is one of the names in README.md; the ports are the scripts' defaults.
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 CASE [SECONDS]" >&2; exit 2; }
case=$1
secs=${2:-8}
[[ $secs =~ ^[0-9]+$ ]] || { echo "bad SECONDS: $secs" >&2; exit 2; }
limit=$((secs + 5)) # a hard stop in case the tool ignores its own limit

# ab: -t before -n, since -t resets -n to 50000.
ab_load() { timeout "$limit" ab -q -r -t "$secs" "$@" >/dev/null; }

case $case in
redis) timeout "$secs" redis-benchmark -h 127.0.0.1 -p 21379 -c 8 -n 5000000 -t get,set -q >/dev/null ;;
memcached) timeout "$secs" memcslap -s 127.0.0.1:21211 -c 4 -e 200000 -t get >/dev/null ;;
postgres) timeout "$limit" pgbench -n -S -c 4 -j 2 -T "$secs" -R 400 -h 127.0.0.1 -p 25432 -U postgres postgres >/dev/null ;;
# Two clients for four uWSGI workers, 20 ms each: the workers idle half the time.
uwsgi) ab_load -n 100000 -c 2 http://127.0.0.1:20080/app ;;
gunicorn-gthread) ab_load -n 100000 -c 2 -k http://127.0.0.1:20080/gthread ;;
nginx-static) ab_load -n 200000 -c 4 -k http://127.0.0.1:20080/page.html ;;
java-pool) ab_load -n 200000 -c 4 -k http://127.0.0.1:20085/ ;;
go-http) ab_load -n 200000 -c 8 -k http://127.0.0.1:20086/ ;;
node-fs) ab_load -n 200000 -c 4 -k http://127.0.0.1:20087/ ;;
*) echo "no load for case $case" >&2; exit 2 ;;
esac || {
	rc=$?
	[[ $rc == 124 ]] || exit "$rc" # timeout's stop is the expected end
}
