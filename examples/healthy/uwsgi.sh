#!/usr/bin/env bash
# uWSGI in prefork mode: a master and four sync worker processes running
# app.py, on the uwsgi protocol for nginx (nginx.sh proxies /app here).
#   uwsgi.sh start [--port 20082] | stop DIR      (SNAG_DB_PORT: MariaDB, 23306)
source "$(dirname "$0")/lib.sh"
parse_args 20082 "$@"
[[ $cmd == stop ]] && { stop_all; exit; }

need uwsgi "uwsgi uwsgi-plugin-python3"
here=$(cd "$(dirname "$0")" && pwd)
new_dir uwsgi
drop=()
[[ $(id -u) == 0 ]] && drop=(--uid nobody --gid nogroup)
setsid uwsgi --plugin python3 --master --processes 4 --socket "127.0.0.1:$port" \
	--chdir "$here" --wsgi-file app.py --need-app --die-on-term --disable-logging \
	--env "SNAG_DB_PORT=${SNAG_DB_PORT:-23306}" "${drop[@]}" \
	</dev/null >"$dir/uwsgi.log" 2>&1 &
pid=$!
remember "$pid"
wait_tcp "$port" "$pid" || { cat "$dir/uwsgi.log" >&2; stop_all; exit 1; }
started "$pid"
