#!/usr/bin/env bash
# The demo: the stalled-loop example serves HTTP under load while snag
# attaches to it for a few seconds and reports what its loop waits for.
set -euo pipefail
BIN=${BIN:-bin}
# Below the ephemeral port range, away from the other examples' defaults.
HTTP=127.0.0.1:17380 DB=127.0.0.1:17381 STORE=127.0.0.1:17382

ready=$(mktemp)
server="" load=""
cleanup() {
	[ -n "$load" ] && kill "$load" 2>/dev/null || true
	[ -n "$server" ] && kill "$server" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -f "$ready"
}
trap cleanup EXIT

"$BIN/stalledloop" serve --addr "$HTTP" --db-addr "$DB" --store-addr "$STORE" --ready-file "$ready" &
server=$!
for _ in $(seq 50); do [ -s "$ready" ] && break; sleep 0.1; done
[ -s "$ready" ] || { echo "demo: the example did not start" >&2; exit 1; }

"$BIN/stalledloop" load --url "http://$HTTP/" -c 8 -d 10s >/dev/null &
load=$!
sleep 1

echo "demo: snag attach -p $server -d 5s --expect $DB   (the database is expected; nothing else is)" >&2
"$BIN/snag" attach -p "$server" -d 5s --expect "$DB"
