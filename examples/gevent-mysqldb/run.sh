#!/usr/bin/env bash
# Run the gevent app with one driver under load and print the result.
#
#   run.sh mysqldb|pymysql [seconds]
#
# Starts MariaDB through mariadb.sh unless it already runs (and then leaves
# it running), starts app.py, runs load.py for the given seconds (default
# 10), and stops whatever it started, also on failure or Ctrl-C.
# Environment: PYTHON (default /usr/bin/python3), APP_PORT (18081),
# SNAG_MARIADB_PORT (13306), SNAG_MARIADB_DIR, CONCURRENCY (16).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
driver=${1:-}
seconds=${2:-10}
case $driver in
mysqldb | pymysql) ;;
*)
	echo "usage: $0 mysqldb|pymysql [seconds]" >&2
	exit 2
	;;
esac
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "seconds must be a positive integer" >&2; exit 2; }

python=${PYTHON:-/usr/bin/python3}
app_port=${APP_PORT:-18081}
db_port=${SNAG_MARIADB_PORT:-13306}
concurrency=${CONCURRENCY:-16}
# mariadb.sh CMD runs the helper on this run's port and directory.
mariadb() {
	"$here/mariadb.sh" "$1" --port "$db_port" ${SNAG_MARIADB_DIR:+--dir "$SNAG_MARIADB_DIR"}
}

work=$(mktemp -d)
started_db=0
app_pid=
load_pid=

cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	for pid in $load_pid $app_pid; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	if ((started_db)); then
		mariadb stop >/dev/null || true
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! mariadb status >/dev/null; then
	mariadb start
	started_db=1
fi

"$python" "$here/app.py" --driver "$driver" --port "$app_port" --db-port "$db_port" \
	--ready-file "$work/ready" 2>"$work/app.log" &
app_pid=$!
for ((i = 0; i < 300; i++)); do
	[[ -s $work/ready ]] && break
	if ! kill -0 "$app_pid" 2>/dev/null; then
		echo "app.py exited during startup:" >&2
		cat "$work/app.log" >&2
		exit 1
	fi
	sleep 0.1
done
[[ -s $work/ready ]] || { echo "app.py not ready after 30s" >&2; exit 1; }

echo "driver $driver, app pid $app_pid, $concurrency clients for ${seconds}s"
# In the background so a signal to this script is handled at once rather
# than after the load run ends.
"$python" "$here/load.py" --url "http://127.0.0.1:$app_port/" -c "$concurrency" -d "${seconds}s" &
load_pid=$!
wait "$load_pid"
