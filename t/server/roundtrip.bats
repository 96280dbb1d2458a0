#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# The round trip on a real PostgreSQL: pg_basebackup | tarsplit, tarjoin
# into a fresh directory, pg_verifybackup, start it, pg_dumpall equal.

setup_file() {
	load ../helpers/common
	pg_suite_cluster
	pgbench -i -s 1 -q >/dev/null 2>&1
	psql -qX -v ON_ERROR_STOP=1 <<-'SQL'
		CREATE DATABASE other;
		CREATE TABLE notes (id serial PRIMARY KEY, body text, at timestamptz DEFAULT now());
		INSERT INTO notes (body) SELECT repeat(md5(i::text), 200) FROM generate_series(1, 2000) i;
		CREATE UNLOGGED TABLE scratch AS SELECT generate_series(1, 1000) AS n;
		CREATE INDEX ON notes (body);
		CREATE MATERIALIZED VIEW notes_count AS SELECT count(*) FROM notes;
		SELECT lo_from_bytea(0, 'a large object');
	SQL
	# Odd files in the data directory: pg_basebackup sends them too.
	LONG=$(printf 'n%.0s' $(seq 99))
	export LONG
	as_pg sh -c "printf 'ninety-nine' > '$T/src/data/$LONG'"
	as_pg sh -c ": > '$T/src/data/empty_file'"
	as_pg sh -c "printf 'latin-1' > '$T/src/data/caf$(printf '\351')'"
}

teardown_file() {
	pg_cleanup "$T"
}

setup() {
	load ../helpers/common
	pg_env "$T/src"
}

@test "round trip: backup, restore, pg_verifybackup, start, pg_dumpall equal" {
	# An unlogged table comes back empty, as PostgreSQL defines it.
	pg_dump_of "$T/src" | sed '/^COPY public.scratch /,/^\\\.$/d' > "$T/before.sql"
	pg_basebackup -D - -F tar -X fetch -c fast | tarsplit > "$T/frames"
	assert_equal "$(last_type "$T/frames")" end

	mkdir "$T/dst"
	tarjoin -C "$T/dst/data" < "$T/frames"
	[ "$(id -u)" != 0 ] || chown -R postgres: "$T/dst"
	run -0 pg_verifybackup "$T/dst/data"
	assert_output "backup successfully verified"

	pg_start "$T/dst"
	pg_dump_of "$T/dst" | sed '/^COPY public.scratch /,/^\\\.$/d' > "$T/after.sql"
	run -0 diff "$T/before.sql" "$T/after.sql" || { echo "$output" | head -20; false; }
	[ "$(wc -l < "$T/after.sql")" -gt 100 ]
	run -0 psql -h "$T/dst" -tAXc 'SELECT count(*) FROM pgbench_accounts'
	assert_output 100000
	run -0 psql -h "$T/dst" -tAXc 'SELECT count(*) FROM notes'
	assert_output 2000
	run -0 psql -h "$T/dst" -tAXc 'SELECT count(*) FROM scratch'
	assert_output 0
	pg_stop "$T/dst"
}

@test "odd names and empty files come back byte for byte" {
	pg_basebackup -D - -F tar -X fetch -c fast | tarsplit > "$T/frames2"
	headers "$T/frames2" > "$T/h"
	run -0 jq -r "select(.path == \"/data/$LONG\") | .size" "$T/h"
	assert_output 11
	run -0 jq -r 'select(.path == "/data/empty_file") | .size' "$T/h"
	assert_output 0
	run -0 jq -r 'select(.path_hex) | .path_hex' "$T/h"
	assert_output "$(printf '/data/caf\351' | od -An -tx1 | tr -d ' \n')"

	mkdir "$T/odd"
	tarjoin -C "$T/odd/data" < "$T/frames2"
	assert_equal "$(cat "$T/odd/data/$LONG")" ninety-nine
	[ -f "$T/odd/data/empty_file" ] && [ ! -s "$T/odd/data/empty_file" ]
	assert_equal "$(cat "$T/odd/data/caf$(printf '\351')")" latin-1
	run -0 pg_verifybackup "$T/odd/data"
}

@test "a restore cut short does not start" {
	size=$(stat -c %s "$T/frames")
	head -c $((size * 9 / 10)) "$T/frames" > "$T/cut"
	mkdir "$T/part"
	run -1 tarjoin -C "$T/part/data" < "$T/cut"
	[ ! -e "$T/part/data/global/pg_control" ]
	[ "$(id -u)" != 0 ] || chown -R postgres: "$T/part"
	run pg_start "$T/part"
	[ "$status" -ne 0 ]
	run pg_verifybackup "$T/part/data"
	[ "$status" -ne 0 ]
}
