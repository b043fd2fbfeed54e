#!/usr/bin/env bash
# MariaDB for the uWSGI and gunicorn apps, through the gevent example's
# script: its own datadir under a fresh directory, user snag/snag.
#   mariadb.sh start [--port 23306] | stop DIR
source "$(dirname "$0")/lib.sh"
parse_args 23306 "$@"
script=$(dirname "$0")/../gevent-mysqldb/mariadb.sh
if [[ $cmd == stop ]]; then
	[[ -d $dir ]] && "$script" stop --dir "$dir" --port "$(cat "$dir/port" 2>/dev/null || echo 0)" >/dev/null
	rm -rf "$dir"
	exit
fi
new_dir mariadb
"$script" start --dir "$dir" --port "$port" >"$dir/start.log" 2>&1 || { cat "$dir/start.log" >&2; rm -rf "$dir"; exit 1; }
started "$(cat "$dir/mariadb.pid")"
