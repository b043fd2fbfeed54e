#!/usr/bin/env bash
# Start, stop or check a throwaway MariaDB server for the gevent example.
#
#   mariadb.sh start|stop|status [--port 13306] [--dir DIR]
#
# The server has its own datadir, socket, pid file and logs under DIR
# (default $XDG_RUNTIME_DIR/snag-mariadb, /run/snag-mariadb as root), reads no option files (--no-defaults), listens
# on 127.0.0.1 only, and has a user snag/snag. The system's own MariaDB
# instance and /etc/mysql are never touched. start and stop are idempotent;
# status exits 0 when the server answers, 3 when it is not running, and 1
# when it runs on another port than --port.
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
	echo "$base/snag-mariadb"
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

usage() {
	echo "usage: $0 start|stop|status [--port PORT] [--dir DIR]" >&2
	exit 2
}

[[ $# -ge 1 ]] || usage
cmd=$1
shift
port=${SNAG_MARIADB_PORT:-13306}
dir=${SNAG_MARIADB_DIR:-$(default_dir)}
while [[ $# -gt 0 ]]; do
	case $1 in
	--port) [[ $# -ge 2 ]] || usage; port=$2; shift 2 ;;
	--port=*) port=${1#*=}; shift ;;
	--dir) [[ $# -ge 2 ]] || usage; dir=$2; shift 2 ;;
	--dir=*) dir=${1#*=}; shift ;;
	*) usage ;;
	esac
done
check_dir
[[ $port =~ ^[0-9]+$ ]] || { echo "bad port: $port" >&2; exit 2; }

datadir=$dir/data
sock=$dir/mariadb.sock
pidfile=$dir/mariadb.pid
errlog=$dir/error.log
user=$(id -un)

find_bin() {
	local name
	for name in "$@"; do
		if command -v "$name" >/dev/null 2>&1; then
			command -v "$name"
			return 0
		fi
		if [[ -x /usr/sbin/$name ]]; then
			echo "/usr/sbin/$name"
			return 0
		fi
	done
	echo "none of $* found: apt-get install -y mariadb-server" >&2
	return 1
}

# server_pid prints the pid of our server if it is alive.
server_pid() {
	local pid
	[[ -s $pidfile ]] || return 1
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	# The pid may have been reused after a crash: check it is our server.
	grep -qF -- "--datadir=$datadir" "/proc/$pid/cmdline" 2>/dev/null || return 1
	echo "$pid"
}

ping_root() {
	"$admin" --no-defaults --socket="$sock" --user=root --connect-timeout=2 ping >/dev/null 2>&1
}

# running_port prints the port the server in DIR was started with.
running_port() {
	cat "$dir/port" 2>/dev/null || echo "$port"
}

# check_port fails when the server in DIR listens on another port than asked:
# answering "running" then would send clients to a port nobody serves.
check_port() {
	local p
	p=$(running_port)
	if [[ $p != "$port" ]]; then
		echo "mariadb in $dir runs on port $p, not $port: stop it or use another --dir" >&2
		return 1
	fi
}

do_status() {
	local pid
	if pid=$(server_pid) && ping_root; then
		echo "mariadb running: pid $pid, 127.0.0.1:$(running_port), dir $dir"
		check_port
		return
	fi
	echo "mariadb not running (dir $dir)"
	return 3
}

do_start() {
	local pid i
	if pid=$(server_pid); then
		echo "mariadb already running: pid $pid, 127.0.0.1:$(running_port), dir $dir"
		check_port
		return
	fi
	if [[ ! -d $datadir/mysql ]]; then
		rm -rf "$datadir"
		# Root gets password authentication with an empty password, so the
		# script can manage the server whichever OS user runs it.
		if ! "$installdb" --no-defaults --datadir="$datadir" --user="$user" \
			--auth-root-authentication-method=normal --skip-test-db \
			--skip-name-resolve >"$dir/install.log" 2>&1; then
			echo "mariadb-install-db failed, see $dir/install.log:" >&2
			tail -n 20 "$dir/install.log" >&2
			return 1
		fi
	fi
	: >"$errlog"
	echo "$port" >"$dir/port"
	# setsid and closed descriptors: the server outlives this script and
	# holds none of its caller's pipes open.
	setsid "$mariadbd" --no-defaults --datadir="$datadir" --socket="$sock" \
		--pid-file="$pidfile" --port="$port" --bind-address=127.0.0.1 \
		--user="$user" --log-error="$errlog" --skip-name-resolve --skip-log-bin \
		--innodb-buffer-pool-size=32M --max-connections=512 \
		</dev/null >/dev/null 2>&1 9>&- &
	local launched=$!
	for ((i = 0; i < 300; i++)); do
		if ping_root; then
			break
		fi
		if ! kill -0 "$launched" 2>/dev/null; then
			echo "mariadbd exited during startup, see $errlog:" >&2
			tail -n 20 "$errlog" >&2
			return 1
		fi
		sleep 0.1
	done
	if ! ping_root; then
		echo "mariadbd did not answer within 30s, see $errlog" >&2
		return 1
	fi
	"$client" --no-defaults --socket="$sock" --user=root -e "
		CREATE USER IF NOT EXISTS 'snag'@'127.0.0.1' IDENTIFIED BY 'snag';
		CREATE USER IF NOT EXISTS 'snag'@'localhost' IDENTIFIED BY 'snag';
		CREATE DATABASE IF NOT EXISTS snag;
		GRANT ALL ON snag.* TO 'snag'@'127.0.0.1';
		GRANT ALL ON snag.* TO 'snag'@'localhost';"
	# The clients connect over TCP; check that path, not just the socket.
	"$admin" --no-defaults --host=127.0.0.1 --port="$port" --user=snag --password=snag \
		--connect-timeout=5 ping >/dev/null
	echo "mariadb started: pid $(server_pid), 127.0.0.1:$port, user snag/snag, dir $dir"
}

do_stop() {
	local pid i
	if ! pid=$(server_pid); then
		echo "mariadb not running (dir $dir)"
		rm -f "$pidfile"
		return 0
	fi
	kill -TERM "$pid"
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "mariadbd $pid ignored SIGTERM for 30s, killing it" >&2
		kill -KILL "$pid"
		while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	fi
	rm -f "$pidfile"
	echo "mariadb stopped (dir $dir)"
}

mariadbd=$(find_bin mariadbd mysqld)
installdb=$(find_bin mariadb-install-db mysql_install_db)
admin=$(find_bin mariadb-admin mysqladmin)
client=$(find_bin mariadb mysql)

# lock allows one start or stop at a time per DIR; the server never holds fd 9.
lock() {
	mkdir -p "$dir"
	exec 9>"$dir/lock"
	flock 9
}

case $cmd in
start) lock; do_start ;;
stop) lock; do_stop ;;
status) do_status ;;
*) usage ;;
esac
