#!/usr/bin/env bash
# Start the broker (Redis), the result backend (MariaDB), a Celery worker
# and a producer; optionally IGNORE_RESULT=1 for the fix. Leaves nothing
# running. Usage: run.sh [tasks] [rate]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tasks=${1:-200}
rate=${2:-40}
PYTHON=${PYTHON:-/usr/bin/python3}

"$here/redis.sh" start
"$here/../gevent-mysqldb/mariadb.sh" start

worker=""
cleanup() {
	if [ -n "$worker" ]; then
		kill "$worker" 2>/dev/null || true
		wait "$worker" 2>/dev/null || true
	fi
	"$here/redis.sh" stop
}
trap cleanup EXIT INT TERM

cd "$here"
"$PYTHON" -m celery -A tasks worker --pool prefork --concurrency 2 --loglevel WARNING &
worker=$!
sleep 3
echo "worker pid $worker (IGNORE_RESULT=${IGNORE_RESULT:-0}); try: snag attach -p $worker --follow-forks -d 5s --expect 127.0.0.1:16380" >&2
"$PYTHON" producer.py -n "$tasks" -r "$rate"
sleep 1
