# Plakar in tests: the pinned build (dev/install-plakar.sh, into
# build/tools by make check), its own XDG directories per test, and the
# plakar cached helper it starts stopped by the test that caused it.
# shellcheck shell=bash

PLAKAR_PG_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PLAKAR_TOOLS=${PLAKAR_TOOLS:-$PLAKAR_PG_TOP/build/tools}
PATH=$PLAKAR_TOOLS:$PATH
export PATH PLAKAR_TOOLS

# plakar_env DIR: Plakar's configuration, cache and data under DIR, its
# update check off (it would go to the network).
plakar_env() {
	local dir=$1
	command -v plakar >/dev/null || {
		echo "plakar is not installed: make tools" >&2
		return 1
	}
	export XDG_CONFIG_HOME=$dir/config XDG_CACHE_HOME=$dir/cache XDG_DATA_HOME=$dir/data
	mkdir -p "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_DATA_HOME"
	plakar -disable-security-check >/dev/null
}

# The package of this build, made once into DIR: sets PTAR.
plakar_package() {
	local dir=$1
	make -s -C "$PLAKAR_PG_TOP" package PKGDIR="$dir/pkg" \
		OUT="$PLAKAR_PG_BIN" >/dev/null
	version=$(sed -n 's/^VERSION = //p' "$PLAKAR_PG_TOP/Makefile")
	(cd "$dir" && plakar pkg create "$dir/pkg/manifest.yaml" "v$version" >/dev/null)
	PTAR=$dir/postgresql-bin_v${version}_linux_amd64.ptar
	export PTAR
	[ -f "$PTAR" ]
}

# Plakar's Go postgres+bin importer, the binary BIN built by hand (its
# module is not served by the Go module proxy here), packaged into DIR
# with a manifest of ours and added to the current Plakar directories,
# which must be its own: it registers the same protocol as ours.
plakar_go_package() {
	local dir=$1 bin=$2
	mkdir -p "$dir/gopkg"
	cp "$bin" "$dir/gopkg/binimporter"
	cat > "$dir/gopkg/manifest.yaml" <<-YAML
		name: postgresql
		display_name: PostgreSQL (Plakar's Go importer)
		description: Plakar's postgres+bin importer, for comparisons.
		api_version: v1.1.0
		homepage: https://github.com/PlakarKorp/integrations
		license: ISC
		tier: official
		contact: mailto:help@plakar.io
		connectors:
		- type: importer
		  class: database
		  subclass: postgresql
		  protocols: [postgres+bin]
		  location_flags: [stream, needack]
		  executable: binimporter
	YAML
	(cd "$dir" && plakar pkg create "$dir/gopkg/manifest.yaml" v1.1.0-beta.9 >/dev/null) &&
		plakar pkg add "$dir"/postgresql_v1.1.0-beta.9_*.ptar >/dev/null
}

# Stop the plakar cached of this test's cache directory, by its pid.
plakar_stop() {
	local pid
	[ -n "${XDG_CACHE_HOME:-}" ] || return 0
	for pid in $(pgrep -f -- "-cachedir $XDG_CACHE_HOME/plakar cached"); do
		kill "$pid" 2>/dev/null || true
	done
}

# For setup_file: T, a scratch directory, with a pgbench cluster of SCALE
# in $T/src that admits replicator only with PASSWORD over TCP on $PORT
# (libpq pointed at its socket, as postgres), Plakar's directories for the
# file in $T/plakar, and the package of this build in $PTAR.
plakar_suite() {
	local password=$1 scale=$2
	T=$(pg_tmpdir)
	export T
	pg_tcp_cluster "$T/src" replicator "$password"
	pg_env "$T/src"
	export PGPORT=$PORT
	pgbench -i -s "$scale" -q >/dev/null 2>&1
	plakar_suite_plakar
}

# For setup_file: Plakar's directories for the file in $T/plakar, and the
# package of this build in $PTAR.
plakar_suite_plakar() {
	mkdir "$T/plakar"
	plakar_env "$T/plakar"
	plakar_package "$T"
}

# For teardown_file: the suite's Plakar helper and cluster gone.
plakar_suite_end() {
	plakar_stop
	pg_cleanup "$T"
}

# For setup: libpq at the suite's cluster; W, a scratch directory of the
# test's own that the postgres user can use, as the working directory;
# Plakar's directories in $W/plakar.
plakar_test() {
	pg_env "$T/src"
	export PGPORT=$PORT
	W=$(pg_tmpdir)
	cd "$W" || return 1
	plakar_env "$W/plakar"
}

# cache_share STDERR: the importer's count in a backup's stderr ("N files,
# M of them taken from Plakar's cache"), shown; true when more than 500
# files and at least 70% of them came from the cache.
cache_share() {
	local line files cached
	line=$(grep "files, .* of them taken from Plakar's cache" <<<"$1")
	files=$(awk '{ print $2 }' <<<"$line")
	cached=$(awk '{ print $4 }' <<<"$line")
	echo "# $line" >&3
	[ "$files" -gt 500 ] && [ $((cached * 10)) -ge $((files * 7)) ]
}

# assert_page_read_again SOURCE MTIME [COMMAND ...]: a page of a table
# changed in place between two backups of @SOURCE into $W/store, under
# the same mtime (MTIME, set before and after) and size, comes back
# changed from the second snapshot: Plakar's cache did not keep the old
# one.  COMMAND, if any, runs plakar (faketime, say).
assert_page_read_again() {
	local src=$1 mtime=$2 f size snap
	shift 2
	psql -qX -v ON_ERROR_STOP=1 <<-'SQL'
		CREATE TABLE stale (id int PRIMARY KEY, v int) WITH (fillfactor = 50);
		INSERT INTO stale SELECT i, 0 FROM generate_series(1, 20) i;
		CHECKPOINT;
	SQL
	f=$T/src/data/$(psql -tAXc "SELECT pg_relation_filepath('stale')")
	touch -d "@$mtime" "$f"
	run -0 "$@" plakar at "$W/store" backup "@$src"
	size=$(stat -c %s "$f")
	psql -qX -v ON_ERROR_STOP=1 -c "UPDATE stale SET v = 42 WHERE id = 1" -c CHECKPOINT
	touch -d "@$mtime" "$f"
	[ "$(stat -c %s "$f")" = "$size" ] || fail "the file changed size"
	run -0 "$@" plakar at "$W/store" backup "@$src"
	snap=$(plakar at "$W/store" ls | awk 'NR == 1 { print $2 }')
	run -0 plakar at "$W/store" restore -to "$W/data" "$snap"
	[ "$(id -u)" != 0 ] || chown -R postgres: "$W/data"
	pg_start "$W" "-p 5433"
	run -0 psql -h "$W" -p 5433 -tAXc "SELECT v FROM stale WHERE id = 1"
	pg_stop "$W"
	psql -qXc "DROP TABLE stale"
	assert_output 42
}
