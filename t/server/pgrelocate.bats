#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# pgrelocate, the restore step: a snapshot is hostile input to the
# restore host.  Copies restored from a real backup, then edited as a
# server could make them (their backup_manifest forged to vouch for the
# edit, t/helpers/reforge.py); each refused with nothing outside the copy
# changed and no program of the copy run; and a step killed at every
# phase leaves a copy that cannot start and that a second run finishes.

setup_file() {
	load ../helpers/common
	pg_suite_cluster
	# a tablespace whose path holds a space and an '='
	mkdir "$T/ts1" "$T/ts a=b"
	[ "$(id -u)" != 0 ] || chown postgres: "$T/ts1" "$T/ts a=b"
	psql -qX -c "CREATE TABLESPACE ts1 LOCATION '$T/ts1'"
	psql -qX -c "CREATE TABLESPACE ts2 LOCATION '$T/ts a=b'"
	psql -qX -c "CREATE TABLE one TABLESPACE ts1 AS SELECT i FROM generate_series(1, 1000) i" \
		-c "CREATE TABLE two TABLESPACE ts2 AS SELECT md5(i::text) m FROM generate_series(1, 1000) i"
	basetar | tarsplit > "$T/ts.frames"
	dump_of "$T/src" > "$T/before.sql"
	export OID1 OID2
	OID1=$(psql -tAXc "SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'")
	OID2=$(psql -tAXc "SELECT oid FROM pg_tablespace WHERE spcname = 'ts2'")
}

teardown_file() {
	pg_cleanup "$T"
}

setup() {
	load ../helpers/common
	pg_env "$T/src"
	W=$(pg_tmpdir)
	# the copy listens on a socket in its own directory only
	PORT=5432
	cd "$W"
}

teardown() {
	[ ! -f "$W/copy/data/postmaster.pid" ] || pg_stop "$W/copy"
	rm -rf "$W"
}

# A fresh copy, as plakar-pg restore writes it, in $W/copy/data.
fresh_copy() {
	mkdir -p "$W/copy"
	[ "$(id -u)" != 0 ] || chown postgres: "$W/copy"
	as_pg tarjoin -C "$W/copy/data" < "$T/ts.frames"
}

# The targets of both tablespaces, the second's '=' written \=.
targets() {
	printf '%s\n' -T "$T/ts1=$W/new1" -T "$T/ts a\\=b=$W/new a=b"
}

# pg_dumpall of a cluster, tablespace locations, which differ by design,
# left out.
dump_of() {
	pg_dump_of "$1" | sed "s/ LOCATION '[^']*';\$/ LOCATION (placed);/"
}

# Checksums of every file below a directory.
digest_of() {
	(cd "$1" && find . -type f -exec sha256sum {} + | sort)
}

# The copy does not start.
refuses_to_start() {
	run ! as_pg pg_ctl -D "$W/copy/data" -l "$W/copy/start.log" -o "-k $W/copy -c listen_addresses= -p $PORT" -w -t 20 start
	[ ! -f "$W/copy/data/postmaster.pid" ] || { pg_stop "$W/copy"; fail "it started"; }
}

@test "a tablespace whose path holds a space and an '=': placed with -T (\\=), every file checked, started, same data" {
	fresh_copy
	mapfile -t t < <(targets)
	run -0 --separate-stderr pgrelocate -n "${t[@]}" "$W/copy/data"
	assert_line "move pg_tblspc/$OID2 to $W/new a=b; link pg_tblspc/$OID2 to it"
	# the plan changed nothing
	[ -f "$W/copy/data/global/pg_control" ] && [ ! -e "$W/new1" ]
	run -0 --separate-stderr pgrelocate -F 3 "${t[@]}" "$W/copy/data" 3>st
	assert_equal "$(first_failure st)" ok
	[[ $stderr == *"every file checked against backup_manifest"* ]] || fail "$stderr"
	assert_equal "$(readlink "$W/copy/data/pg_tblspc/$OID2")" "$W/new a=b"
	[ ! -e "$W/copy/data/tablespace_map" ] && [ ! -e "$W/copy/data/global/pgrelocate.journal" ]
	# the start command it prints is the one that starts it
	start=$(tail -n 1 <<<"$stderr" | sed 's/^  //')
	[[ $start == *"pg_ctl -D $W/copy/data -l $W/copy/data.log start" ]] || fail "$start"
	pg_start "$W/copy" "-p $PORT"
	dump_of "$W/copy" > after.sql
	run -0 diff "$T/before.sql" after.sql
}

@test "hostile tablespace_map: a path as OID, an OID twice, a path twice, a last line without its end: hostile, 8; nothing outside the copy changed" {
	mkdir -p "$W/victim/sub" && echo precious > "$W/victim/sub/file"
	before=$(digest_of "$W/victim")
	for map in "../../../../$W/victim $T/ts1\n" "$OID1 $T/ts1\n$OID1 $T/ts a=b\n" \
		"$OID1 $T/ts1\n$OID2 $T/ts1\n" "$OID1 $T/ts1\n$OID2 $T/ts a=b"; do
		rm -rf "$W/copy"
		fresh_copy
		printf "$map" > "$W/copy/data/tablespace_map"
		python3 "$BATS_TEST_DIRNAME/../helpers/reforge.py" "$W/copy/data" tablespace_map
		run -8 --separate-stderr pgrelocate -F 3 -O -T "$T/ts1=$W/n1" "$W/copy/data" 3>st
		assert_equal "$(first_failure st)" "pgrelocate hostile 8"
		[[ $stderr == "pgrelocate: tablespace_map: "* ]] || fail "$map: $stderr"
		# refused before the first change
		[ -f "$W/copy/data/global/pg_control" ] && [ ! -e "$W/n1" ]
	done
	assert_equal "$(digest_of "$W/victim")" "$before"
	[ -d "$T/ts1" ] && [ ! -L "$T/ts1" ]
}

@test "hostile PG_VERSION and programs: nothing of the copy runs; a link, a FIFO, an unlisted pg_tblspc entry refused" {
	fresh_copy
	# a program the copy carries, which would leave a marker if run
	mkdir -p "$W/copy/data/bin"
	printf '#!/bin/sh\ntouch %s/marker\n' "$W" > "$W/copy/data/bin/pg_verifybackup"
	cp "$W/copy/data/bin/pg_verifybackup" "$W/copy/data/bin/postgres"
	chmod 755 "$W/copy/data/bin/"*
	printf '../../../proc/self/cwd/pgdata\n' > "$W/copy/data/PG_VERSION"
	run -8 --separate-stderr pgrelocate -O "$W/copy/data"
	assert_equal "$stderr" "pgrelocate: PG_VERSION: larger than 16 bytes"
	printf '9999\n' > "$W/copy/data/PG_VERSION"
	run -8 --separate-stderr pgrelocate -O "$W/copy/data"
	assert_equal "$stderr" "pgrelocate: PG_VERSION: not a major version of PostgreSQL 10 or later on one line"
	# -B naming a place inside the copy: refused, not run
	cp "$T/src/data/PG_VERSION" "$W/copy/data/PG_VERSION"
	mapfile -t t < <(targets)
	run -8 --separate-stderr pgrelocate -B "$W/copy/data/bin" "${t[@]}" "$W/copy/data"
	[[ $stderr == *"inside the copy: it is not run" ]] || fail "$stderr"
	[ ! -e "$W/marker" ]
	rm -r "$W/copy/data/bin"
	ln -s /etc "$W/copy/data/base/evil"
	run -8 --separate-stderr pgrelocate "${t[@]}" "$W/copy/data"
	assert_equal "$stderr" "pgrelocate: base/evil: a symbolic link: a restored copy holds only files and directories"
	rm "$W/copy/data/base/evil"
	mkfifo "$W/copy/data/fifo"
	run -8 pgrelocate "${t[@]}" "$W/copy/data"
	rm "$W/copy/data/fifo"
	ln -s /etc "$W/copy/data/pg_tblspc/99999"
	run -8 --separate-stderr pgrelocate "${t[@]}" "$W/copy/data"
	assert_equal "$stderr" "pgrelocate: pg_tblspc/99999: not a tablespace of tablespace_map"
	[ -f "$W/copy/data/global/pg_control" ] && [ ! -e "$W/new1" ] && [ ! -e "$W/marker" ]
}

@test "-O only makes absent places; a target inside the copy, a source tablespace or another target refused" {
	fresh_copy
	# the source's own places exist: -O refuses them, changing nothing
	run -1 --separate-stderr pgrelocate -O "$W/copy/data"
	[[ $stderr == "pgrelocate: $T/ts"* ]] || fail "$stderr"
	run -1 --separate-stderr pgrelocate -T "$T/ts1=$T/ts1/inside" -T "$T/ts a\\=b=$W/x" "$W/copy/data"
	[[ $stderr == *"inside the place of a tablespace of the map"* ]] || fail "$stderr"
	run -1 --separate-stderr pgrelocate -T "$T/ts1=$W/copy/data/../data/in" -T "$T/ts a\\=b=$W/x" "$W/copy/data"
	[[ $stderr == *"inside the copy"* ]] || fail "$stderr"
	ln -s "$W/copy/data" "$W/alias"
	run -1 --separate-stderr pgrelocate -T "$T/ts1=$W/alias/in" -T "$T/ts a\\=b=$W/x" "$W/copy/data"
	[[ $stderr == *"inside the copy"* ]] || fail "$stderr"
	[ -f "$W/copy/data/global/pg_control" ] && [ ! -e "$W/x" ]
}

@test "archive_mode as the server reads it: On in an include file, overridden by postgresql.auto.conf; -A turns it off" {
	fresh_copy
	printf "include 'more.conf'\n" >> "$W/copy/data/postgresql.conf"
	printf "ARCHIVE_MODE = On\narchive_command = '/bin/true'\n" > "$W/copy/data/more.conf"
	python3 "$BATS_TEST_DIRNAME/../helpers/reforge.py" "$W/copy/data" postgresql.conf more.conf
	as_pg cp -a "$W/copy/data" "$W/copy/data2"
	as_pg cp -a "$W/copy/data" "$W/copy/data3"
	mapfile -t t < <(targets)
	run -0 --separate-stderr pgrelocate "${t[@]}" "$W/copy/data"
	[[ $stderr == *"warning: the copy archives WAL (archive_mode = on)"* ]] || fail "$stderr"
	# in the second copy, postgresql.auto.conf says off: no warning
	printf "archive_mode = 'off'\n" >> "$W/copy/data2/postgresql.auto.conf"
	python3 "$BATS_TEST_DIRNAME/../helpers/reforge.py" "$W/copy/data2" postgresql.auto.conf
	run -0 --separate-stderr pgrelocate -T "$T/ts1=$W/m1" -T "$T/ts a\\=b=$W/m2" "$W/copy/data2"
	[[ $stderr != *"archives WAL"* ]] || fail "$stderr"
	# -A, killed once its line is in: a second run takes it out to check
	# the file, puts it back, and the copy starts without archiving
	run env PGRELOCATE_STOP_AT=configured pgrelocate -A -T "$T/ts1=$W/k1" -T "$T/ts a\\=b=$W/k2" "$W/copy/data3"
	[ "$status" -eq 137 ] || fail "status $status"
	run -0 --separate-stderr pgrelocate -A -T "$T/ts1=$W/k1" -T "$T/ts a\\=b=$W/k2" "$W/copy/data3"
	[[ $stderr == *"pgrelocate: archive_mode = 'off' set in the copy's postgresql.auto.conf"* ]] || fail "$stderr"
	assert_equal "$(grep -c "^archive_mode = 'off'" "$W/copy/data3/postgresql.auto.conf")" 1
	rm -rf "$W/copy/data" && mv "$W/copy/data3" "$W/copy/data"
	pg_start "$W/copy" "-p $PORT"
	run -0 psql -h "$W/copy" -tAXc "SHOW archive_mode"
	assert_output off
}

@test "stopped at every phase, by SIGKILL or SIGTERM: the copy does not start, the source's tablespaces are untouched; a second run finishes; resume-needed when it cannot" {
	src_before=$(digest_of "$T/ts1"; digest_of "$T/ts a=b")
	mapfile -t t < <(targets)
	for phase in checked aside moved verified owned configured; do
		for sig in KILL TERM; do
			rm -rf "$W/copy" "$W/new1" "$W/new a=b"
			fresh_copy
			if [ "$sig" = TERM ]; then export PGRELOCATE_STOP_TERM=1; else unset PGRELOCATE_STOP_TERM; fi
			run env PGRELOCATE_STOP_AT=$phase pgrelocate -F 3 "${t[@]}" "$W/copy/data" 3>st
			# SIGKILL ends it where it is; SIGTERM at its next check,
			# with the interrupted status, 6
			if [ "$sig" = TERM ]; then
				[ "$status" -eq 6 ] || fail "$phase $sig: status $status"
				assert_equal "$(first_failure st)" "pgrelocate interrupted 6"
			else
				[ "$status" -eq 137 ] || fail "$phase $sig: status $status"
			fi
			unset PGRELOCATE_STOP_TERM
			[ "$phase" = checked ] || refuses_to_start
			run -0 pgrelocate "${t[@]}" "$W/copy/data"
		done
	done
	assert_equal "$(digest_of "$T/ts1"; digest_of "$T/ts a=b")" "$src_before"
	pg_start "$W/copy" "-p $PORT"
	dump_of "$W/copy" > after.sql
	run -0 diff "$T/before.sql" after.sql
	pg_stop "$W/copy"
	# a second run must be given the first one's targets
	rm -rf "$W/copy" "$W/new1" "$W/new a=b"
	fresh_copy
	run env PGRELOCATE_STOP_AT=aside pgrelocate "${t[@]}" "$W/copy/data"
	run -1 --separate-stderr pgrelocate -T "$T/ts1=$W/other" -T "$T/ts a\\=b=$W/new a=b" "$W/copy/data"
	[[ $stderr == *"a first run set out with other targets"* ]] || fail "$stderr"
	# a target that cannot be made after the first change: resume-needed
	: > "$W/new1"
	run -9 --separate-stderr pgrelocate -F 3 "${t[@]}" "$W/copy/data" 3>st
	assert_equal "$(first_failure st)" "pgrelocate resume-needed 9"
	refuses_to_start
	rm "$W/new1"
	run -0 pgrelocate "${t[@]}" "$W/copy/data"
}

@test "what no backup holds, the manifest forged or not: a WAL segment beyond the range, another file in pg_wal, a stale standby.signal: verify-failed, 5, the copy does not start" {
	mapfile -t t < <(targets)
	seg=$(cd "$T/src/data" && ls pg_wal | grep -E '^[0-9A-F]{24}$' | head -n 1)
	for edit in "cp pg_wal/\$(ls pg_wal | grep -E '^[0-9A-F]{24}\$' | head -n 1) pg_wal/00000001000000FF000000FF" \
		"echo x > pg_wal/notes" "touch standby.signal"; do
		rm -rf "$W/copy" "$W/new1" "$W/new a=b"
		fresh_copy
		(cd "$W/copy/data" && eval "$edit")
		run -5 --separate-stderr pgrelocate -F 3 "${t[@]}" "$W/copy/data" 3>st
		assert_equal "$(first_failure st)" "pgrelocate verify-failed 5"
		refuses_to_start
	done
	[ -n "$seg" ]
}

@test "-U: as root, a copy restored as root given to the server's user, links not followed, started as that user" {
	[ "$(id -u)" = 0 ] || skip "root only"
	mkdir -p "$W/copy" && tarjoin -C "$W/copy/data" < "$T/ts.frames"
	[ "$(stat -c %U "$W/copy/data/PG_VERSION")" = root ]
	mkdir "$W/given" && chown nobody: "$W/given"
	run -1 --separate-stderr pgrelocate -U root -O "$W/copy/data"
	run -0 --separate-stderr pgrelocate -U postgres -T "$T/ts1=$W/new1" -T "$T/ts a\\=b=$W/given" "$W/copy/data"
	assert_equal "$(find "$W/copy/data" "$W/new1" ! -user postgres | wc -l)" 0
	assert_equal "$(stat -c '%U %a' "$W/copy/data")" "postgres 700"
	# the directory it was given keeps its owner; what went in is the user's
	assert_equal "$(stat -c %U "$W/given")" nobody
	assert_equal "$(find "$W/given" -mindepth 1 ! -user postgres | wc -l)" 0
	# a snapshot whose root gave its group access keeps it: 0750
	rm -rf "$W/copy2" && mkdir -p "$W/copy2" && tarjoin -C "$W/copy2/data" < "$T/ts.frames"
	chmod 750 "$W/copy2/data"
	run -0 --separate-stderr pgrelocate -U postgres -T "$T/ts1=$W/g1" -T "$T/ts a\\=b=$W/g2" "$W/copy2/data"
	assert_equal "$(stat -c '%U %a' "$W/copy2/data")" "postgres 750"
	chown postgres: "$W/copy" "$W/given"
	pg_start "$W/copy" "-p $PORT"
	dump_of "$W/copy" > after.sql
	run -0 diff "$T/before.sql" after.sql
}

@test "a target on another file system (/dev/shm): copied with its modes, synced, the source's entries removed; the copy starts" {
	[ -d /dev/shm ] && [ "$(stat -f -c %T /dev/shm)" != "$(stat -f -c %T "$W")" ] || skip "no other file system at /dev/shm"
	shm=$(mktemp -d /dev/shm/pgrelocate.XXXXXX)
	rmdir "$shm"
	fresh_copy
	run -0 --separate-stderr pgrelocate -T "$T/ts1=$shm" -T "$T/ts a\\=b=$W/new a=b" "$W/copy/data"
	assert_equal "$(readlink "$W/copy/data/pg_tblspc/$OID1")" "$shm"
	assert_equal "$(cd "$shm" && find . | sort)" "$(cd "$T/ts1" && find . | sort)"
	assert_equal "$(stat -c %a "$shm")" 700
	pg_start "$W/copy" "-p $PORT"
	dump_of "$W/copy" > after.sql
	pg_stop "$W/copy"
	rm -rf "$shm"
	run -0 diff "$T/before.sql" after.sql
}

@test "archive_mode however the file spells it (On, ON, 'on', true, yes, 1) is on" {
	mapfile -t t < <(targets)
	for v in On ON "'on'" true yes 1; do
		rm -rf "$W/copy" "$W/new1" "$W/new a=b"
		fresh_copy
		printf 'archive_mode = %s\n' "$v" >> "$W/copy/data/postgresql.conf"
		python3 "$BATS_TEST_DIRNAME/../helpers/reforge.py" "$W/copy/data" postgresql.conf
		run -0 --separate-stderr pgrelocate "${t[@]}" "$W/copy/data"
		[[ $stderr == *"warning: the copy archives WAL (archive_mode = on)"* ]] || fail "$v: $stderr"
	done
}
