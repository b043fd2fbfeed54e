#!/usr/bin/env bash
# nginx: a master and two event-loop workers. / serves static files from DIR;
# /app goes to uWSGI (127.0.0.1:20082) and /gthread to gunicorn
# (127.0.0.1:20084).
#   nginx.sh start [--port 20080] | stop DIR
source "$(dirname "$0")/lib.sh"
parse_args 20080 "$@"
[[ $cmd == stop ]] && { stop_all; exit; }

need nginx nginx
new_dir nginx
mkdir -p "$dir/static" "$dir/tmp"
head -c 16384 /dev/urandom | base64 >"$dir/static/page.html"
echo ok >"$dir/static/index.html"
user=""
[[ $(id -u) == 0 ]] && user="user nobody nogroup;"
cat >"$dir/nginx.conf" <<CONF
$user
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $dir/tmp/body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
	upstream uwsgi { server 127.0.0.1:20082; }
	upstream gthread { server 127.0.0.1:20084; }
	server {
		listen 127.0.0.1:$port;
		root $dir/static;
		location /app { include /etc/nginx/uwsgi_params; uwsgi_pass uwsgi; }
		location /gthread { proxy_pass http://gthread; }
	}
}
CONF
# daemon off and setsid: $! is the master, as for the other servers.
setsid nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g "daemon off;" </dev/null >/dev/null 2>&1 &
pid=$!
remember "$pid"
wait_tcp "$port" "$pid" || { cat "$dir/error.log" >&2; stop_all; exit 1; }
started "$pid"
