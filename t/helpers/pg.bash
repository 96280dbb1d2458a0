# Test helpers: a real PostgreSQL in a temporary directory, listening on a
# Unix socket inside it, run as the postgres user when the tests run as
# root.  Sourced by the .bats files (load pg) and by dev/bench.bash.

PGBIN=${PGBIN:-$(pg_config --bindir)}
PLAKAR_PG_BIN=${PLAKAR_PG_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../bin" && pwd)}
# Servers of other majors (dev/install-servers.sh): PLAKAR_SERVERS/NN/bin.
PLAKAR_SERVERS=${PLAKAR_SERVERS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/servers}
export PLAKAR_SERVERS
PATH=$PLAKAR_PG_BIN:$PGBIN:$PATH
export PGBIN PLAKAR_PG_BIN PATH

# Run a command as the owner of the clusters.
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# As root, the programs under test where the postgres user can run them
# (the tests run plakar-pg restore as that user): from a checkout it cannot
# enter, /root (0700) say, they are copied into a directory of their own,
# whose name is printed; nothing is printed when none is needed.
pg_reachable_bin() {
	local d
	[ "$(id -u)" = 0 ] || return 0
	(cd / && runuser -u postgres -- test -x "$PLAKAR_PG_BIN/plakar-pg") && return 0
	d=$(mktemp -d /tmp/plakar-pg-bin.XXXXXX)
	cp -a "$PLAKAR_PG_BIN"/. "$d"/
	chmod 755 "$d"
	printf '%s\n' "$d"
}

# A scratch directory the postgres user can use.
pg_tmpdir() {
	local d
	d=$(mktemp -d /tmp/plakar-pg-test.XXXXXX)
	chmod 755 "$d"
	[ "$(id -u)" != 0 ] || chown postgres: "$d"
	printf '%s\n' "$d"
}

# pg_init DIR [initdb options...]: a new cluster in DIR/data with its
# socket in DIR, set for base backups.
pg_init() {
	local dir=$1
	shift
	as_pg initdb -D "$dir/data" -U postgres --auth=trust -E UTF8 \
		--locale=C "$@" >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		return 1
	}
	cat >>"$dir/data/postgresql.conf" <<-EOF
		listen_addresses = ''
		unix_socket_directories = '$dir'
		wal_level = replica
		max_wal_senders = 4
		fsync = off
	EOF
}

# pg_start DIR [postgres options]: start the cluster in DIR/data, its
# socket in DIR (which may differ from the one in its postgresql.conf, as
# for a restored copy).
pg_start() {
	local dir=$1
	shift
	as_pg pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-k $dir -c listen_addresses= $*" start >/dev/null || {
		cat "$dir/server.log" >&2
		return 1
	}
}

pg_stop() {
	local dir=$1 mode=${2:-fast}
	[ -f "$dir/data/postmaster.pid" ] || return 0
	as_pg pg_ctl -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null 2>&1 || true
}

# pg_cluster DIR [initdb options...]: DIR made for the postgres user, a
# new cluster in it, started.
pg_cluster() {
	local dir=$1
	shift
	mkdir -p "$dir"
	[ "$(id -u)" != 0 ] || chown postgres: "$dir"
	pg_init "$dir" "$@"
	pg_start "$dir"
}

# For setup_file: T, a scratch directory exported to the tests, with a
# started cluster in $T/src that libpq points at.
pg_suite_cluster() {
	T=$(pg_tmpdir)
	export T
	pg_cluster "$T/src" "$@"
	pg_env "$T/src"
}

# Point libpq at the cluster in DIR.
pg_env() {
	export PGHOST=$1 PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
}

# pg_dumpall of the cluster whose socket is in DIR (port PORT, 5432 by
# default), without the random \restrict lines of recent minor versions.
pg_dump_of() {
	PGHOST=$1 PGPORT=${2:-5432} PGUSER=postgres pg_dumpall --no-password |
		grep -v -e '^\\restrict ' -e '^\\unrestrict '
}

# pg_tcp_cluster DIR ROLE PASSWORD [initdb options...]: a started cluster
# in DIR that also listens on 127.0.0.1:$PORT (PORT set to a free port),
# where every role, ROLE (with REPLICATION) among them, is admitted only
# with its scram-sha-256 password; the socket in DIR trusts postgres.
pg_tcp_cluster() {
	local dir=$1 role=$2 pw=$3
	shift 3
	mkdir -p "$dir"
	[ "$(id -u)" != 0 ] || chown postgres: "$dir"
	PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	export PORT
	pg_init "$dir" "$@"
	cat > "$dir/data/pg_hba.conf" <<-HBA
		local all postgres trust
		local replication postgres trust
		host all all 127.0.0.1/32 scram-sha-256
		host replication all 127.0.0.1/32 scram-sha-256
	HBA
	pg_start "$dir" "-c listen_addresses=127.0.0.1 -p $PORT"
	psql -h "$dir" -p "$PORT" -U postgres -d postgres -qX -v ON_ERROR_STOP=1 \
		-v role="$role" -v pw="$pw" <<-'SQL'
		SET password_encryption = 'scram-sha-256';
		CREATE ROLE :"role" LOGIN REPLICATION PASSWORD :'pw';
		GRANT pg_read_all_settings, pg_read_all_stats TO :"role";
	SQL
}

# Stop every cluster below DIR and remove DIR.
pg_cleanup() {
	local dir=$1 d
	[ -n "$dir" ] && [ -d "$dir" ] || return 0
	for d in "$dir" "$dir"/*/; do
		d=${d%/}
		[ -f "$d/data/postmaster.pid" ] && pg_stop "$d" immediate
	done
	rm -rf "$dir"
}

# wait_sql QUERY VALUE: until QUERY answers VALUE, 10 seconds at most.
wait_sql() {
	for _ in $(seq 100); do
		[ "$(psql -tAXc "$1" 2>/dev/null)" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
