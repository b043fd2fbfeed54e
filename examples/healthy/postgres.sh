#!/usr/bin/env bash
# PostgreSQL: the postmaster forks one backend process per connection. Runs
# as the postgres user (it refuses root), trusts 127.0.0.1, and has pgbench's
# tables (scale 1) loaded.
#   postgres.sh start [--port 25432] | stop DIR
source "$(dirname "$0")/lib.sh"
parse_args 25432 "$@"
[[ $cmd == stop ]] && { stop_all; exit; }

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -x $pgbin/postgres ]] || { echo "postgres not found: apt-get install -y postgresql" >&2; exit 1; }
need pgbench postgresql-contrib
user=$(id -un)
[[ $user == root ]] && user=postgres
runas=()
[[ $(id -un) == "$user" ]] || runas=(setpriv --reuid="$user" --regid="$user" --init-groups)

new_dir postgres
chown "$user" "$dir"
"${runas[@]}" "$pgbin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
	{ cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1; }
# setsid and setpriv exec (no fork), so $! is the postmaster.
setsid "${runas[@]}" "$pgbin/postgres" -D "$dir/data" -c listen_addresses=127.0.0.1 -c port="$port" \
	-c unix_socket_directories="$dir" -c max_connections=100 -c shared_buffers=32MB \
	-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c autovacuum=off \
	</dev/null >"$dir/postgres.log" 2>&1 &
pid=$!
remember "$pid"
wait_tcp "$port" "$pid" || { cat "$dir/postgres.log" >&2; stop_all; exit 1; }
for ((i = 0; i < 100; i++)); do
	pgbench -i -s 1 -q -h 127.0.0.1 -p "$port" -U postgres postgres >"$dir/pgbench-init.log" 2>&1 && break
	sleep 0.2 # the server accepts before it is ready
done
[[ $i -lt 100 ]] || { cat "$dir/pgbench-init.log" >&2; stop_all; exit 1; }
started "$pid"
