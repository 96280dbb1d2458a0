#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# Clusters with user tablespaces, through basetar(1) and the real Plakar;
# plakar-pg relocate; a hot standby as the source; basetar beside
# pg_basebackup.

setup_file() {
	load ../helpers/common
	load ../helpers/plakar
	T=$(pg_tmpdir)
	export T
	pg_tcp_cluster "$T/src" replicator secret
	pg_env "$T/src"
	export PGPORT=$PORT
	mkdir "$T/ts1" "$T/ts2"
	[ "$(id -u)" != 0 ] || chown postgres: "$T/ts1" "$T/ts2"
	psql -qX -v ON_ERROR_STOP=1 <<-SQL
		CREATE TABLESPACE ts1 LOCATION '$T/ts1';
		CREATE TABLESPACE ts2 LOCATION '$T/ts2';
		CREATE TABLE spread (id int PRIMARY KEY USING INDEX TABLESPACE ts2, v text) TABLESPACE ts1;
		INSERT INTO spread SELECT i, md5(i::text) FROM generate_series(1, 20000) i;
		CREATE INDEX spread_v ON spread (v) TABLESPACE ts2;
		CREATE DATABASE elsewhere TABLESPACE ts2;
		CREATE DATABASE load TABLESPACE ts1;
	SQL
	psql -qX -d elsewhere -c "CREATE TABLE there AS SELECT generate_series(1, 3000) AS n"
	pgbench -i -s 1 -q load >/dev/null 2>&1
	psql -qX -c CHECKPOINT
	plakar_suite_plakar
}

teardown_file() {
	plakar_suite_end
}

setup() {
	load ../helpers/common
	load ../helpers/plakar
	plakar_test
	LOC="postgres+bin://postgres@localhost"
}

teardown() {
	for d in "$W"/*/; do
		[ ! -f "$d/data/postmaster.pid" ] || pg_stop "${d%/}" immediate
	done
	plakar_stop
	rm -rf "$W"
}

# A cluster of the test's own in DIR, on the suite's port (its socket in
# DIR), so that libpq's PGPORT fits every cluster of this file.
own_cluster() {
	mkdir -p "$1"
	[ "$(id -u)" != 0 ] || chown postgres: "$1"
	pg_init "$1"
	pg_start "$1" "-p $PORT"
}

# A copy's directory, for the postgres user.
copy_dir() {
	mkdir -p "$1"
	[ "$(id -u)" != 0 ] || chown postgres: "$1"
}

# pg_dumpall but the load database; tablespace locations, which differ by
# design, left out (pg_tablespace_location is checked apart).
dump_without_load() {
	PGHOST=$1 PGPORT=$PORT PGUSER=postgres pg_dumpall --no-password --exclude-database=load |
		grep -v -e '^\\restrict ' -e '^\\unrestrict ' |
		sed "s/ LOCATION '[^']*';\$/ LOCATION (where relocate put it);/"
}

@test "basetar alone: one tar, each tablespace under pg_tblspc/OID as a directory, the manifest last, verified by tarsplit" {
	run -0 sh -c 'basetar > bt.tar'
	run -0 tar tvf bt.tar
	oid1=$(psql -tAXc "SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'")
	oid2=$(psql -tAXc "SELECT oid FROM pg_tablespace WHERE spcname = 'ts2'")
	assert_line --regexp "^d.* pg_tblspc/$oid1\$"
	assert_line --regexp "^d.* pg_tblspc/$oid2\$"
	refute_line --regexp '^l'
	assert_equal "$(tar tf bt.tar | tail -n 1)" backup_manifest
	rel=$(psql -tAXc "SELECT pg_relation_filepath('spread')")
	[[ $rel == pg_tblspc/$oid1/* ]]
	tar tf bt.tar | grep -qx "$rel"
	run -0 sh -c 'tarsplit -w < bt.tar > bt.frames'
	assert_equal "$(last_type bt.frames)" end
	run -0 tar xOf bt.tar tablespace_map
	assert_line "$oid1 $T/ts1"
	assert_line "$oid2 $T/ts2"
}

@test "basetar: a label with a quote stays a label; a newline in it is refused; bad options exit 1" {
	run -0 sh -c "basetar -X none -l \"x', VERIFY_CHECKSUMS 0\" > l.tar"
	run -0 tar xOf l.tar backup_label
	assert_line "LABEL: x', VERIFY_CHECKSUMS 0"
	run -1 basetar -l "$(printf 'a\nSTART TIMELINE: 7')"
	assert_output "basetar: -l (label): a control character (0x0a) is not allowed: a value is one line"
	run -1 basetar -r abc
	run -1 basetar -c slow
	run -1 basetar extra
}

@test "basetar: a connection refused says why with its SQLSTATE, exit 2; a killed basetar leaves a tar tarsplit refuses" {
	run -2 --separate-stderr sh -c "PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=replicator PGPASSWORD=wrong basetar -F 3 3>st > /dev/null"
	assert_equal "$stderr" "basetar: authentication failed for role replicator: password authentication failed for user \"replicator\" (SQLSTATE 28P01)"
	assert_equal "$(first_failure st)" "basetar auth-failed 2"
	: > empty
	chmod 600 empty
	run -2 --separate-stderr sh -c "PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=replicator PGPASSFILE=$PWD/empty basetar > /dev/null"
	assert_equal "$stderr" "basetar: no password supplied: the server wants one for role replicator; give it in the location, the password option or the Plakar source"
	basetar -r 1M > cut.tar &
	pid=$!
	sleep 2
	kill -KILL "$pid"
	wait "$pid" || true
	[ -s cut.tar ]
	run tarsplit -w < cut.tar
	[ "$status" -ne 0 ]
	refute_output --partial '"type":"end"'
}

@test "through Plakar under pgbench load: restore, relocate, verify, start beside the source; same data; nothing of the source's opened" {
	pgbench -n -c 2 -T 60 load >/dev/null 2>&1 &
	load=$!
	sleep 1
	plakar pkg add "$PTAR" >/dev/null
	plakar at "$W/store" create -plaintext >/dev/null
	run -0 plakar at "$W/store" backup "postgres+bin://replicator:secret@127.0.0.1:$PORT"
	assert_line --regexp '^[0-9a-f]{8}: backup completed without errors'
	kill "$load"; wait "$load" || true
	dump_without_load "$T/src" > before.sql
	snap=$(plakar at "$W/store" ls | awk '{ print $2 }' | head -n 1)
	run -0 plakar at "$W/store" cat "$snap:/manifest.json"
	[[ $(jq -r .basetar_version <<<"$output") == "basetar "* ]]
	assert_equal "$(jq -r '.tablespaces[] | "\(.name)=\(.location)"' <<<"$output" | sort | tr '\n' ' ')" \
		"pg_default= pg_global= ts1=$T/ts1 ts2=$T/ts2 "

	copy_dir "$W/copy"
	run -0 plakar at "$W/store" restore -to "$W/copy/data" "$snap"
	[ "$(id -u)" != 0 ] || chown -R postgres: "$W/copy/data"
	# before relocate it does not start, and opens nothing of the source's
	run ! as_pg pg_ctl -D "$W/copy/data" -l "$W/copy/early.log" -o "-k $W/copy -c listen_addresses= -p $PORT" -w -t 20 start
	run plakar-pg relocate -T "$T/ts1=$W/new1" -T "$T/ts2=$W/new2" "$W/copy/data"
	[ "$status" -eq 0 ] || fail "relocate: $status: $output"
	assert_line "pgrelocate: verified by pg_verifybackup $(cat "$W/copy/data/PG_VERSION")"
	[ ! -e "$W/copy/data/tablespace_map" ]
	[ "$(stat -c %a "$W/new1")" = 700 ] && [ "$(stat -c %U "$W/new1")" = "$(stat -c %U "$W/copy/data")" ]
	pg_start "$W/copy" "-p $PORT"
	dump_without_load "$W/copy" > after.sql
	run -0 diff before.sql after.sql
	run -0 psql -h "$W/copy" -d load -tAXc "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history), (SELECT count(*) FROM pgbench_history) > 0"
	assert_output 't|t'
	run -0 psql -h "$W/copy" -tAXc "SELECT spcname || '=' || pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname LIKE 'ts%' ORDER BY 1"
	assert_output "ts1=$W/new1
ts2=$W/new2"
	# a table made in the copy lands under NEW
	psql -h "$W/copy" -qX -c "CREATE TABLE fresh TABLESPACE ts1 AS SELECT 1 AS x" -c CHECKPOINT
	rel=$(psql -h "$W/copy" -tAXc "SELECT pg_relation_filepath('fresh')")
	[[ $(readlink -f "$W/copy/data/$rel") == "$W/new1/"* ]]
	# every process of the copy, a session among them reading both
	# tablespaces: no file open under the source's
	psql -h "$W/copy" -qX -c "SELECT count(*) FROM spread WHERE v > ''" -c "SELECT pg_sleep(3)" >/dev/null &
	reader=$!
	sleep 1
	pm=$(head -n 1 "$W/copy/data/postmaster.pid")
	open=$(for p in "$pm" $(pgrep -P "$pm"); do ls -l "/proc/$p/fd" "/proc/$p/cwd" 2>/dev/null; done)
	wait "$reader"
	[[ $open == *"$W/new1/"* ]] || fail "the reader had nothing of NEW open"
	[[ $open != *"$T/ts1"* && $open != *"$T/ts2"* ]] || fail "a source file is open: $open"
	pg_stop "$W/copy"
}

@test "relocate refuses a missing mapping, a non-empty target, a mapping that matches nothing, a second run: nothing starts" {
	run -0 sh -c 'basetar | tarsplit > ts.frames'
	copy_dir "$W/c"
	as_pg plakar-pg restore "$W/c/data" < ts.frames
	run -1 plakar-pg relocate -T "$T/ts1=$W/n1" "$W/c/data"
	assert_output "pgrelocate: tablespace $(psql -tAXc "SELECT oid FROM pg_tablespace WHERE spcname = 'ts2'") ($T/ts2): no -T $T/ts2=NEW for it (or -O to put it back there, if that is absent)"
	mkdir "$W/full" && touch "$W/full/x"
	run -1 plakar-pg relocate -T "$T/ts1=$W/n1" -T "$T/ts2=$W/full" "$W/c/data"
	assert_output "pgrelocate: $W/full: not an empty directory; a tablespace goes to a new or empty one (the source's own would be overwritten)"
	# -O, with the source's own directories there and full
	run -1 plakar-pg relocate -O "$W/c/data"
	assert_output --regexp "^pgrelocate: $T/ts[12]: not an empty directory"
	run -1 plakar-pg relocate -T "$T/ts1=$W/n1" -T "$T/ts2=$W/n2" -T /nowhere=/x "$W/c/data"
	assert_output "pgrelocate: -T /nowhere=/x: no tablespace of the copy was at /nowhere"
	run -1 plakar-pg relocate -T "$T/ts1=$W/n1" -T "$T/ts2=$W/n1" "$W/c/data"
	assert_output "pgrelocate: $W/n1: the target of two tablespaces, or inside another's"
	run -1 plakar-pg relocate -T "$T/ts1=$W/c/data/inside" -T "$T/ts2=$W/n2" "$W/c/data"
	assert_output --partial "$W/c/data/inside: inside the copy"
	# nothing moved by the refusals
	[ -f "$W/c/data/tablespace_map" ] && [ ! -e "$W/n1" ] && [ ! -e "$W/n2" ]
	run ! as_pg pg_ctl -D "$W/c/data" -l "$W/c/log" -o "-k $W/c -c listen_addresses= -p $PORT" -w -t 20 start
	run -0 plakar-pg relocate -T "$T/ts1=$W/n1" -T "$T/ts2=$W/n2" "$W/c/data"
	run -1 plakar-pg relocate -T "$T/ts1=$W/n1" -T "$T/ts2=$W/n2" "$W/c/data"
	assert_output "pgrelocate: $W/c/data: already relocated (tablespace_map is gone); nothing done"
	# another major's server binaries are refused
	if [ -x "$PLAKAR_SERVERS/16/bin/postgres" ]; then
		run -1 plakar-pg relocate -B "$PLAKAR_SERVERS/16/bin" "$W/c/data"
		assert_output --partial "is not PostgreSQL $(cat "$W/c/data/PG_VERSION")'s postgres"
	fi
}

@test "relocate: a copy that does not match its backup_manifest cannot start: verify-failed, 5; pg_control set aside" {
	run -0 sh -c 'basetar | tarsplit > ts.frames'
	copy_dir "$W/v"
	as_pg plakar-pg restore "$W/v/data" < ts.frames
	printf '#' >> "$W/v/data/postgresql.conf"
	run -5 --separate-stderr plakar-pg relocate -F 3 -T "$T/ts1=$W/v1" -T "$T/ts2=$W/v2" "$W/v/data" 3>st
	assert_equal "$(first_failure st)" "pgrelocate verify-failed 5"
	[[ $stderr == *"postgresql.conf"* ]] || fail "$stderr"
	[ ! -e "$W/v/data/global/pg_control" ] && [ -e "$W/v/data/global/pg_control.pgrelocate" ]
	run ! as_pg pg_ctl -D "$W/v/data" -l "$W/v/log" -o "-k $W/v -c listen_addresses= -p $PORT" -w -t 20 start
}

@test "relocate: a copy whose configuration archives WAL is warned about, or has archiving turned off with -A" {
	own_cluster "$W/arch"
	printf "archive_mode = on\narchive_command = '/bin/true'\n" >> "$W/arch/data/postgresql.conf"
	pg_stop "$W/arch"
	pg_start "$W/arch" "-p $PORT"
	run -0 sh -c "plakar-pg backup '$LOC' host='$W/arch' port=$PORT > a.frames"
	copy_dir "$W/ac"
	as_pg plakar-pg restore "$W/ac/data" < a.frames
	as_pg cp -a "$W/ac/data" "$W/ac/data2"
	pg_stop "$W/arch"
	run -0 plakar-pg relocate "$W/ac/data"
	assert_line --partial "warning: the copy archives WAL (archive_mode = on)"
	run -0 plakar-pg relocate -A "$W/ac/data2"
	assert_line "pgrelocate: archive_mode = 'off' set in the copy's postgresql.auto.conf"
	as_pg pg_ctl -D "$W/ac/data2" -l "$W/ac/log2" -o "-k $W/ac -c listen_addresses= -p $PORT" -w start >/dev/null
	run -0 psql -h "$W/ac" -tAXc "SHOW archive_mode"
	assert_output off
	as_pg pg_ctl -D "$W/ac/data2" -m immediate -w stop >/dev/null
}

@test "an in-place tablespace: refused by the preflight, and by basetar -t, which would leave its files out" {
	own_cluster "$W/ip"
	psql -h "$W/ip" -qX -c "SET allow_in_place_tablespaces = on" -c "CREATE TABLESPACE inplace LOCATION ''"
	run -2 --separate-stderr sh -c "plakar-pg backup -F 3 '$LOC' host='$W/ip' port=$PORT 3>st > /dev/null"
	assert_equal "$stderr" "pgprobe: tablespace inplace is in place (allow_in_place_tablespaces): a base backup would leave its files out; move its objects to a tablespace with an absolute location"
	assert_equal "$(first_failure st)" "pgprobe in-place-tablespace 2"
	oid=$(psql -h "$W/ip" -tAXc "SELECT oid FROM pg_tablespace WHERE spcname = 'inplace'")
	run -2 --separate-stderr sh -c "PGHOST='$W/ip' basetar -t $oid > /dev/null"
	assert_equal "$stderr" "basetar: tablespace $oid is not in the server's base backup: an in-place tablespace, whose files would be left out"
	pg_stop "$W/ip"
}

@test "basetar and pg_basebackup on one idle cluster: the same members and sizes but backup_label, backup_manifest and WAL; both verified" {
	own_cluster "$W/idle"
	pgbench -h "$W/idle" -i -s 1 -q postgres >/dev/null 2>&1
	psql -h "$W/idle" -qX -c CHECKPOINT
	PGHOST=$W/idle basetar > b.tar
	PGHOST=$W/idle pg_basebackup -w -D - -F tar -X fetch > p.tar
	list() {
		tar tvf "$1" | awk '{ print $6, ($1 ~ /^d/ ? 0 : $3) }' | sed 's|/ | |' |
			grep -v -e '^backup_label ' -e '^backup_manifest ' -e '^pg_wal/[0-9A-F]\{24\} ' \
			-e '^pg_wal/archive_status/[0-9A-F]\{24\}\.done ' | sort
	}
	list b.tar > b.list
	list p.tar > p.list
	run -0 diff p.list b.list
	[ "$(wc -l < b.list)" -gt 900 ]
	run -0 sh -c 'tarsplit -w < b.tar > /dev/null'
	run -0 sh -c 'tarsplit -w < p.tar > /dev/null'
	pg_stop "$W/idle"
}

@test "a hot standby as the source: backup, restore, start; the primary's data at that point" {
	copy_dir "$W/sb"
	copy_dir "$W/sbts1"
	copy_dir "$W/sbts2"
	as_pg pg_basebackup -h "$T/src" -p "$PORT" -U postgres -D "$W/sb/data" -R -X stream -c fast \
		-T "$T/ts1=$W/sbts1" -T "$T/ts2=$W/sbts2"
	pg_start "$W/sb" "-p $PORT"
	psql -qX -c "CREATE TABLE from_primary AS SELECT generate_series(1, 777) AS n"
	lsn=$(psql -tAXc "SELECT pg_current_wal_lsn()")
	for _ in $(seq 100); do
		[ "$(psql -h "$W/sb" -tAXc "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" = t ] && break
		sleep 0.1
	done
	run -0 psql -h "$W/sb" -tAXc "SELECT pg_is_in_recovery(), count(*) FROM from_primary"
	assert_output "t|777"
	dump_without_load "$T/src" > before.sql
	run -0 --separate-stderr sh -c "plakar-pg backup '$LOC' host='$W/sb' port=$PORT > sb.frames"
	assert_equal "$(last_type sb.frames)" end
	copy_dir "$W/sc"
	as_pg plakar-pg restore "$W/sc/data" < sb.frames
	run --separate-stderr plakar-pg relocate -T "$W/sbts1=$W/sc1" -T "$W/sbts2=$W/sc2" "$W/sc/data"
	[ "$status" -eq 0 ] || fail "$stderr"
	run -0 grep -x 'BACKUP FROM: standby' "$W/sc/data/backup_label"
	# the copy is a standby of the primary too, as its source was: it
	# starts and answers, with the primary's data
	pg_start "$W/sc" "-p $PORT"
	dump_without_load "$W/sc" > after.sql
	run diff before.sql after.sql
	[ "$status" -eq 0 ] || fail "$output"
	pg_stop "$W/sc"
	pg_stop "$W/sb"
	psql -qX -c "DROP TABLE from_primary"
}
