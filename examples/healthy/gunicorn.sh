#!/usr/bin/env bash
# gunicorn with gthread workers: two worker processes of four threads each
# running app.py (nginx.sh proxies /gthread here).
#   gunicorn.sh start [--port 20084] | stop DIR   (SNAG_DB_PORT: MariaDB, 23306)
source "$(dirname "$0")/lib.sh"
parse_args 20084 "$@"
[[ $cmd == stop ]] && { stop_all; exit; }

need gunicorn gunicorn
here=$(cd "$(dirname "$0")" && pwd)
new_dir gunicorn
drop=()
[[ $(id -u) == 0 ]] && drop=(--user nobody --group nogroup)
SNAG_DB_PORT=${SNAG_DB_PORT:-23306} setsid gunicorn --worker-class gthread --workers 2 --threads 4 \
	--bind "127.0.0.1:$port" --chdir "$here" --worker-tmp-dir "$dir" "${drop[@]}" app:application \
	</dev/null >"$dir/gunicorn.log" 2>&1 &
pid=$!
remember "$pid"
wait_tcp "$port" "$pid" || { cat "$dir/gunicorn.log" >&2; stop_all; exit 1; }
started "$pid"
