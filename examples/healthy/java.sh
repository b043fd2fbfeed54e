#!/usr/bin/env bash
# The JVM with a fixed thread pool behind com.sun.net.httpserver
# (PoolServer.java, run from source).
#   java.sh start [--port 20085] | stop DIR
source "$(dirname "$0")/lib.sh"
parse_args 20085 "$@"
[[ $cmd == stop ]] && { stop_all; exit; }

need java openjdk-17-jdk-headless
here=$(cd "$(dirname "$0")" && pwd)
new_dir java
setsid java -Xmx64m -Xss512k -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dsun.net.httpserver.nodelay=true "$here/PoolServer.java" "$port" \
	</dev/null >"$dir/java.log" 2>&1 &
pid=$!
remember "$pid"
wait_tcp "$port" "$pid" || { cat "$dir/java.log" >&2; stop_all; exit 1; }
started "$pid"
