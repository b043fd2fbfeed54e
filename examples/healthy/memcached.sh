#!/usr/bin/env bash
# memcached: a listener thread and four libevent worker threads, each its
# own event loop.
#   memcached.sh start [--port 21211] | stop DIR
source "$(dirname "$0")/lib.sh"
parse_args 21211 "$@"
[[ $cmd == stop ]] && { stop_all; exit; }

need memcached memcached
new_dir memcached
# memcached refuses to run as root without -u.
user=$(id -u)
[[ $user == 0 ]] && user=nobody || user=$(id -un)
setsid memcached -l 127.0.0.1 -p "$port" -U 0 -t 4 -m 64 -c 1024 -u "$user" \
	</dev/null >"$dir/memcached.log" 2>&1 &
pid=$!
remember "$pid"
wait_tcp "$port" "$pid" || { cat "$dir/memcached.log" >&2; stop_all; exit 1; }
started "$pid"
