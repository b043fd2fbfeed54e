#!/usr/bin/env bash
# Node.js: an HTTP server whose handler reads a 64 KiB file with
# fs.promises.readFile (libuv's thread pool).
#   node.sh start [--port 20087] | stop DIR
source "$(dirname "$0")/lib.sh"
parse_args 20087 "$@"
[[ $cmd == stop ]] && { stop_all; exit; }

need node nodejs
here=$(cd "$(dirname "$0")" && pwd)
new_dir node
head -c 65536 /dev/urandom >"$dir/data.bin"
setsid node "$here/server.js" "$port" "$dir/data.bin" </dev/null >"$dir/node.log" 2>&1 &
pid=$!
remember "$pid"
wait_tcp "$port" "$pid" || { cat "$dir/node.log" >&2; stop_all; exit 1; }
started "$pid"
