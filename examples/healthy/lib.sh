# Shared by the healthy-server scripts: a state directory per server, pid
# files that survive pid reuse, and waiting for a port.
#
# Every script is NAME.sh start [--port PORT] | stop DIR. start makes a
# fresh directory with mktemp -d, starts the server listening on 127.0.0.1
# only and prints one line "dir=DIR pid=PID port=PORT" (pid: the process to
# trace, a master where there is one). stop kills what start started, by
# the pids it recorded, and removes DIR.

set -euo pipefail

usage() {
	echo "usage: $0 start [--port PORT] | stop DIR" >&2
	exit 2
}

# parse_args sets cmd, port (default $1) and dir from the script's arguments.
parse_args() {
	port=$1
	shift
	[[ $# -ge 1 ]] || usage
	cmd=$1
	shift
	dir=""
	case $cmd in
	start)
		while [[ $# -gt 0 ]]; do
			case $1 in
			--port) [[ $# -ge 2 ]] || usage; port=$2; shift 2 ;;
			*) usage ;;
			esac
		done
		[[ $port =~ ^[0-9]+$ ]] || { echo "bad port: $port" >&2; exit 2; }
		# Someone already listening (a server an interrupted run left) would
		# answer for the server this start is about to fail to launch.
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "127.0.0.1:$port is in use; a server from an earlier run? (ls -d /tmp/snag-healthy-*, then $0 stop DIR)" >&2
			exit 1
		fi
		;;
	stop) [[ $# -eq 1 ]] || usage; dir=$1 ;;
	*) usage ;;
	esac
}

# need NAME PACKAGE fails with the package to install when NAME is missing.
need() {
	command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 ]] || {
		echo "$1 not found: apt-get install -y $2" >&2
		exit 1
	}
}

new_dir() {
	dir=$(mktemp -d "/tmp/snag-healthy-$1.XXXXXX")
	chmod 755 "$dir"
}

# starttime prints a process's start time in clock ticks (field 22 of
# /proc/PID/stat), which tells a pid from a later process reusing it.
starttime() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	set -- $stat
	echo "${20}"
}

# remember PID records a process start started, for stop.
remember() {
	echo "$1 $(starttime "$1")" >>"$dir/pids"
}

alive() {
	local t
	t=$(starttime "$1") && [[ $t == "$2" ]]
}

# stop_all stops the recorded processes, last started first: TERM, then
# KILL after 10 s.
stop_all() {
	local pid t i
	[[ -d $dir && -f $dir/pids ]] || { rm -rf "$dir"; return 0; }
	tac "$dir/pids" | while read -r pid t; do
		alive "$pid" "$t" || continue
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			alive "$pid" "$t" || break
			sleep 0.1
		done
		if alive "$pid" "$t"; then
			echo "pid $pid ignored SIGTERM for 10s, killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	rm -rf "$dir"
}

# wait_tcp PORT PID waits up to 30 s for 127.0.0.1:PORT to accept while
# PID lives.
wait_tcp() {
	local i
	for ((i = 0; i < 300; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		kill -0 "$2" 2>/dev/null || { echo "pid $2 exited before listening on $1" >&2; return 1; }
		sleep 0.1
	done
	echo "nothing listens on 127.0.0.1:$1 after 30s" >&2
	return 1
}

# wait_pidfile FILE waits up to 30 s for a daemon's pid file.
wait_pidfile() {
	local i
	for ((i = 0; i < 300; i++)); do
		[[ -s $1 ]] && return 0
		sleep 0.1
	done
	echo "$1 never appeared" >&2
	return 1
}

started() {
	echo "dir=$dir pid=$1 port=$port"
}
