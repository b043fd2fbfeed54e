#!/usr/bin/env bash
# A single-threaded event loop: redis-server, no persistence.
#   redis.sh start [--port 21379] | stop DIR
source "$(dirname "$0")/lib.sh"
parse_args 21379 "$@"
[[ $cmd == stop ]] && { stop_all; exit; }

need redis-server redis-server
new_dir redis
setsid redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
	--dir "$dir" --logfile "$dir/redis.log" </dev/null >/dev/null 2>&1 &
pid=$!
remember "$pid"
wait_tcp "$port" "$pid" || { cat "$dir/redis.log" >&2; stop_all; exit 1; }
started "$pid"
