#!/usr/bin/env bash
# The 502 incident: nginx in front of uWSGI, whose workers each spend 50 ms
# per request in MariaDB.
#
#   run.sh db-start|db-stop                 the example's MariaDB (127.0.0.1:19306)
#   run.sh start incident|control [--http-port 19080]
#                                           nginx + uWSGI in a new mktemp -d directory;
#                                           prints dir=, nginx_pid=, uwsgi_pid= lines
#   run.sh stop DIR                         stop what start started there, by PID
#   run.sh demo incident|control            db-start, start, load, stop
#
# incident: 2 sync workers, listen backlog 8; control: 16 workers, backlog
# 128. Both: max-requests 50 (workers recycle), harakiri 2 s. Everything
# listens on 127.0.0.1 only; nothing outside the directory is written but
# MariaDB's own (see ../gevent-mysqldb/mariadb.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
db_port=${SNAG_UWSGI502_DB_PORT:-19306}
db_dir=${SNAG_UWSGI502_DB_DIR:-/tmp/snag-uwsgi502-mariadb}
python=${PYTHON:-/usr/bin/python3}

usage() {
	sed -n '2,15p' "$0" >&2
	exit 2
}

db() { "$here/../gevent-mysqldb/mariadb.sh" "$1" --port "$db_port" --dir "$db_dir"; }

find_bin() {
	local name=$1
	if command -v "$name" >/dev/null 2>&1; then
		command -v "$name"
	elif [[ -x /usr/sbin/$name ]]; then
		echo "/usr/sbin/$name"
	else
		echo "$name not found: apt-get install -y nginx uwsgi uwsgi-plugin-python3 python3-pymysql" >&2
		return 1
	fi
}

# wait_for TEST SECONDS WHAT: poll TEST every 0.1 s.
wait_for() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		if eval "$1"; then return 0; fi
		sleep 0.1
	done
	echo "$3 not ready after $2 s" >&2
	return 1
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

do_start() {
	local mode=$1 http_port=$2 workers backlog dir
	case $mode in
	incident) workers=2 backlog=8 ;;
	control) workers=16 backlog=128 ;;
	*) usage ;;
	esac
	local nginx uwsgi
	nginx=$(find_bin nginx)
	uwsgi=$(find_bin uwsgi)
	if listening "$http_port"; then
		echo "127.0.0.1:$http_port is taken: stop what runs there or use --http-port" >&2
		return 1
	fi
	dir=$(mktemp -d /tmp/snag-uwsgi502.XXXXXX)
	# nginx's workers drop root to nobody, and must reach the socket in here.
	chmod 755 "$dir"
	cat >"$dir/uwsgi.ini" <<-INI
		[uwsgi]
		plugins = python3
		master = true
		processes = $workers
		listen = $backlog
		socket = $dir/uwsgi.sock
		chmod-socket = 666
		chdir = $here
		wsgi-file = $here/app.py
		need-app = true
		max-requests = 50
		harakiri = 2
		die-on-term = true
		vacuum = true
		env = SNAG_DB_PORT=$db_port
		logto = $dir/uwsgi.log
	INI
	cat >"$dir/nginx.conf" <<-CONF
		daemon off;
		worker_processes 1;
		pid $dir/nginx.pid;
		error_log $dir/nginx-error.log;
		events { worker_connections 1024; }
		http {
		    access_log $dir/nginx-access.log;
		    client_body_temp_path $dir/client_body;
		    proxy_temp_path $dir/proxy;
		    fastcgi_temp_path $dir/fastcgi;
		    uwsgi_temp_path $dir/uwsgi;
		    scgi_temp_path $dir/scgi;
		    server {
		        listen 127.0.0.1:$http_port backlog=4096;
		        location / {
		            uwsgi_param REQUEST_METHOD \$request_method;
		            uwsgi_param REQUEST_URI \$request_uri;
		            uwsgi_param PATH_INFO \$document_uri;
		            uwsgi_param QUERY_STRING \$query_string;
		            uwsgi_param SERVER_PROTOCOL \$server_protocol;
		            uwsgi_param SERVER_NAME \$server_name;
		            uwsgi_param SERVER_PORT \$server_port;
		            uwsgi_param REMOTE_ADDR \$remote_addr;
		            uwsgi_param CONTENT_TYPE \$content_type;
		            uwsgi_param CONTENT_LENGTH \$content_length;
		            uwsgi_pass unix:$dir/uwsgi.sock;
		        }
		    }
		}
	CONF
	# setsid, closed descriptors: the servers outlive this script and hold
	# none of its caller's pipes. Both stay in the foreground of their
	# own session, so $! is each master's PID.
	setsid "$uwsgi" --ini "$dir/uwsgi.ini" </dev/null >/dev/null 2>&1 &
	echo $! >"$dir/uwsgi.pid"
	wait_for "[[ -S $dir/uwsgi.sock ]] && [[ \$(grep -c 'spawned uWSGI worker' $dir/uwsgi.log 2>/dev/null) -ge $workers ]]" 20 "uWSGI" ||
		{ tail -n 20 "$dir/uwsgi.log" >&2; do_stop "$dir"; return 1; }
	setsid "$nginx" -p "$dir" -c "$dir/nginx.conf" -e "$dir/nginx-error.log" </dev/null >/dev/null 2>&1 &
	echo $! >"$dir/nginx.master"
	wait_for "listening $http_port" 20 "nginx" || { cat "$dir/nginx-error.log" >&2; do_stop "$dir"; return 1; }
	echo "dir=$dir"
	echo "nginx_pid=$(<"$dir/nginx.master")"
	echo "uwsgi_pid=$(<"$dir/uwsgi.pid")"
	echo "url=http://127.0.0.1:$http_port/"
}

# stop_pid PID NAME: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
	local pid=$1 i
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	echo "$2 $pid ignored SIGTERM for 10 s, killing it" >&2
	kill -KILL "$pid" 2>/dev/null || true
}

do_stop() {
	local dir=$1
	[[ -d $dir && -f $dir/uwsgi.ini ]] || { echo "$dir is not a directory run.sh start made" >&2; return 1; }
	[[ -f $dir/nginx.master ]] && stop_pid "$(<"$dir/nginx.master")" nginx
	[[ -f $dir/uwsgi.pid ]] && stop_pid "$(<"$dir/uwsgi.pid")" uwsgi
	rm -rf "$dir"
}

[[ $# -ge 1 ]] || usage
cmd=$1
shift
case $cmd in
db-start) db start ;;
db-stop) db stop ;;
start)
	[[ $# -ge 1 ]] || usage
	mode=$1
	shift
	http_port=19080
	while [[ $# -gt 0 ]]; do
		case $1 in
		--http-port) [[ $# -ge 2 ]] || usage; http_port=$2; shift 2 ;;
		*) usage ;;
		esac
	done
	do_start "$mode" "$http_port"
	;;
stop)
	[[ $# -eq 1 ]] || usage
	do_stop "$1"
	;;
demo)
	[[ $# -eq 1 ]] || usage
	db start >/dev/null
	out=$(do_start "$1" 19080)
	dir=$(sed -n 's/^dir=//p' <<<"$out")
	echo "$out"
	"$python" "$here/load.py" --url http://127.0.0.1:19080/ -c 16 -d 3 -n 5000
	do_stop "$dir"
	;;
*) usage ;;
esac
