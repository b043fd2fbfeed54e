#!/usr/bin/env bash
# A Go net/http server (gohttp/), built into DIR with the go tool, or taken
# from $GOHTTP when set.
#   gohttp.sh start [--port 20086] | stop DIR
source "$(dirname "$0")/lib.sh"
parse_args 20086 "$@"
[[ $cmd == stop ]] && { stop_all; exit; }

here=$(cd "$(dirname "$0")" && pwd)
new_dir gohttp
bin=${GOHTTP:-}
if [[ -z $bin ]]; then
	need go golang
	bin=$dir/gohttp
	(cd "$here/gohttp" && CGO_ENABLED=0 go build -o "$bin" .) || { rm -rf "$dir"; exit 1; }
fi
setsid "$bin" -addr "127.0.0.1:$port" </dev/null >"$dir/gohttp.log" 2>&1 &
pid=$!
remember "$pid"
wait_tcp "$port" "$pid" || { cat "$dir/gohttp.log" >&2; stop_all; exit 1; }
started "$pid"
