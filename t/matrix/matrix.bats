#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# The version matrix (make check-matrix): for Debian's PostgreSQL 15 and
# the npm registry's 13, 14, 16, 17 and 18 (dev/install-servers.sh), a
# cluster with a tablespace backed up by plakar-pg, restored, relocated,
# started with that major's binaries: the same rows in every table, and
# /manifest.json with 15's keys.

setup() {
	load ../helpers/common
	W=$(pg_tmpdir)
	cd "$W"
}

teardown() {
	pg_cleanup "$W"
}

# The binaries of MAJOR: Debian's for its own, else the npm packages'.
bindir_of() {
	if [ -x "/usr/lib/postgresql/$1/bin/postgres" ]; then
		printf '%s\n' "/usr/lib/postgresql/$1/bin"
	else
		printf '%s\n' "$PLAKAR_SERVERS/$1/bin"
	fi
}

# Every user table's rows, as one digest a table: what "the same data"
# means where pg_dump 15 cannot dump a newer server.
fingerprint() {
	psql -h "$1" -d "$2" -tAX <<-'SQL'
		SELECT format('SELECT %L || '' '' || count(*) || '' '' || coalesce(md5(string_agg(t::text, '','' ORDER BY t::text)), '''') FROM %I.%I t',
			n.nspname || '.' || c.relname, n.nspname, c.relname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		ORDER BY 1 \gexec
	SQL
}

# The /manifest.json of a frame stream: the first record's payload.
manifest_of() {
	python3 -c 'import json, sys
d = sys.stdin.buffer
d.readline()
h = json.loads(d.readline())
assert h["path"] == "/manifest.json"
sys.stdout.buffer.write(d.read(h["size"]))' < "$1"
}

# The key paths of a JSON document, array indexes as [].
keys_of() {
	jq -r '[paths | map(if type == "number" then "[]" else . end) | join(".")] | unique | .[]' "$1"
}

# Keys a major's /manifest.json has that 15's has not, or lacks: listed
# in pgmeta(1) (PER-MAJOR DIFFERENCES).  None so far.
MAJOR_KEY_DIFFERENCES=''

matrix() {
	major=$1
	bindir=$(bindir_of "$major")
	[ -x "$bindir/postgres" ] ||
		fail "no PostgreSQL $major at $bindir: dev/install-servers.sh (make check-matrix runs it)"
	PATH=$bindir:$PATH
	mkdir -p "$W/src" "$W/ts" "$W/copy"
	[ "$(id -u)" != 0 ] || chown postgres: "$W/src" "$W/ts" "$W/copy"
	pg_init "$W/src"
	pg_start "$W/src"
	pg_env "$W/src"
	run -0 psql -tAXc "SHOW server_version_num"
	[ "$((output / 10000))" = "$major" ] || fail "server $output, not $major"
	psql -qX -v ON_ERROR_STOP=1 <<-SQL
		CREATE TABLESPACE spc LOCATION '$W/ts';
		CREATE DATABASE inspc TABLESPACE spc;
		CREATE TABLE here (id serial PRIMARY KEY, v text);
		INSERT INTO here (v) SELECT md5(i::text) FROM generate_series(1, 5000) i;
		CREATE TABLE there (id int, v text) TABLESPACE spc;
		INSERT INTO there SELECT i, repeat('x', i % 50) FROM generate_series(1, 8000) i;
		CREATE INDEX there_v ON there (v) TABLESPACE spc;
		CREATE MATERIALIZED VIEW summary AS SELECT count(*) AS n FROM there;
	SQL
	psql -qX -d inspc -c "CREATE TABLE inside AS SELECT generate_series(1, 300) AS n"
	fingerprint "$W/src" postgres > before.txt
	fingerprint "$W/src" inspc >> before.txt

	run -0 --separate-stderr sh -c "plakar-pg backup postgres+bin://postgres@localhost host='$W/src' > f.frames"
	assert_equal "$(last_type f.frames)" end
	# no warning: the slot on basetar's connection and the server's
	# clock over replication (pgprobe -k) work on this major
	[[ $stderr != *warning* ]] || fail "$stderr"
	run -0 pgprobe -r -k "SHOW server_version_num"
	assert_line -n 1 --regexp '^[0-9]{10}$'
	pg_stop "$W/src"
	as_pg plakar-pg restore "$W/copy/data" < f.frames
	run -0 plakar-pg relocate -B "$bindir" -T "$W/ts=$W/newts" "$W/copy/data"
	# every file checked in C; pg_verifybackup too where one reads it
	assert_line "pgrelocate: every file checked against backup_manifest"
	case $major in
	15) assert_line "pgrelocate: verified by pg_verifybackup 15" ;;
	13|14|16) assert_line "pgrelocate: verified by pg_verifybackup 15 (files only)" ;;
	*) assert_line --partial "cannot read this manifest (version 2)" ;;
	esac
	pg_start "$W/copy"
	fingerprint "$W/copy" postgres > after.txt
	fingerprint "$W/copy" inspc >> after.txt
	run -0 diff before.txt after.txt
	[ "$(wc -l < after.txt)" -eq 4 ]
	run -0 psql -h "$W/copy" -tAXc "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'spc'"
	assert_output "$W/newts"
	pg_stop "$W/copy"

	# /manifest.json: 15's key set, with the differences pgmeta(1) lists
	manifest_of f.frames > manifest.json
	keys_of manifest.json > keys.txt
	if [ "$major" = 15 ]; then
		cp keys.txt "$BATS_FILE_TMPDIR/keys15.txt"
	else
		[ -f "$BATS_FILE_TMPDIR/keys15.txt" ] || skip "15's keys not read yet"
		run diff "$BATS_FILE_TMPDIR/keys15.txt" keys.txt
		assert_output "$MAJOR_KEY_DIFFERENCES"
	fi
	[ "$(jq -r .server_version_num manifest.json)" -ge $((major * 10000)) ]
	[[ $(jq -r .basetar_version manifest.json) == "basetar "* ]]
}

@test "PostgreSQL 15 (Debian's): backup, restore, relocate, start, same data" { matrix 15; }
@test "PostgreSQL 13: backup, restore, relocate, start, same data, 15's manifest keys" { matrix 13; }
@test "PostgreSQL 14: backup, restore, relocate, start, same data, 15's manifest keys" { matrix 14; }
@test "PostgreSQL 16: backup, restore, relocate, start, same data, 15's manifest keys" { matrix 16; }
@test "PostgreSQL 17: backup, restore, relocate, start, same data, 15's manifest keys" { matrix 17; }
@test "PostgreSQL 18: backup, restore, relocate, start, same data, 15's manifest keys" { matrix 18; }
