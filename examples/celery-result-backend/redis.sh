#!/usr/bin/env bash
# A throwaway Redis for the example's broker, on 127.0.0.1 only, with no
# persistence and its files under DIR.
#   redis.sh start|stop [--port 16380] [--dir DIR]
set -euo pipefail

# The state directory is fixed between start and stop, so it must not be a
# guessable path in a shared directory that another user could plant (a
# symlink there would have this script, perhaps as root, write and delete
# through it): by default it lives in the user's runtime directory, and
# whatever it is, it must be a real directory owned by the caller and
# writable by nobody else.
default_dir() {
	local base=${XDG_RUNTIME_DIR:-}
	if [[ -z $base || ! -d $base ]]; then
		if [[ $(id -u) == 0 ]]; then base=/run; else base=/run/user/$(id -u); fi
	fi
	[[ -d $base && -O $base ]] || base=$HOME
	echo "$base/snag-redis"
}
check_dir() {
	if [[ -L $dir ]]; then
		echo "$0: $dir is a symlink; refusing to use it (give --dir)" >&2
		exit 1
	fi
	if [[ ! -e $dir ]]; then
		mkdir -p "$(dirname "$dir")"
		mkdir -m 0700 "$dir"
	fi
	if [[ ! -d $dir || ! -O $dir || -n $(find "$dir" -maxdepth 0 -perm /022) ]]; then
		echo "$0: $dir is not a directory of $(id -un)'s alone; refusing to use it (give --dir)" >&2
		exit 1
	fi
}

port=${SNAG_REDIS_PORT:-16380}
dir=${SNAG_REDIS_DIR:-$(default_dir)}
usage() { echo "usage: $0 start|stop [--port PORT] [--dir DIR]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
cmd=$1; shift
while [[ $# -gt 0 ]]; do
	case $1 in
	--port) [[ $# -ge 2 ]] || usage; port=$2; shift 2 ;;
	--dir) [[ $# -ge 2 ]] || usage; dir=$2; shift 2 ;;
	*) usage ;;
	esac
done
check_dir
pidfile=$dir/redis.pid

running() { [[ -s $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case $cmd in
start)
	if running; then
		echo "redis already running: pid $(cat "$pidfile"), 127.0.0.1:$port"
		exit 0
	fi
	command -v redis-server >/dev/null || { echo "redis.sh: redis-server not installed (apt-get install redis-server)" >&2; exit 1; }
	redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
		--daemonize yes --pidfile "$pidfile" --dir "$dir" --logfile "$dir/redis.log"
	for _ in $(seq 50); do
		redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && { echo "redis started: pid $(cat "$pidfile"), 127.0.0.1:$port"; exit 0; }
		sleep 0.1
	done
	echo "redis.sh: redis did not answer on 127.0.0.1:$port; see $dir/redis.log" >&2
	exit 1
	;;
stop)
	if running; then
		pid=$(cat "$pidfile")
		kill "$pid"
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -f "$pidfile"
	;;
*) usage ;;
esac
