#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# The restore step through the real Plakar: the local form (pgrelocate
# -a -s) restores a snapshot with a tablespace and gives it to the
# server's user; a hostile snapshot, made as a server could make one (a
# restored copy edited, its manifest forged, backed up with plakar backup
# DIR), is refused after plakar restore -to, with nothing outside the
# copy changed.

setup_file() {
	load ../helpers/common
	load ../helpers/plakar
	plakar_suite secret 1
	# the second tablespace's path holds a space and an '='
	mkdir "$T/ts" "$T/ts b=c"
	[ "$(id -u)" != 0 ] || chown postgres: "$T/ts" "$T/ts b=c"
	psql -qX -c "CREATE TABLESPACE tsp LOCATION '$T/ts'"
	psql -qX -c "CREATE TABLESPACE tsq LOCATION '$T/ts b=c'"
	psql -qX -c "CREATE TABLE spread TABLESPACE tsp AS SELECT i FROM generate_series(1, 5000) i" \
		-c "CREATE TABLE other TABLESPACE tsq AS SELECT i FROM generate_series(1, 500) i"
}

teardown_file() {
	psql -qX -c "DROP TABLE spread" -c "DROP TABLE other" -c "DROP TABLESPACE tsp" \
		-c "DROP TABLESPACE tsq" || true
	plakar_suite_end
}

setup() {
	load ../helpers/common
	load ../helpers/plakar
	plakar_test
	plakar pkg add "$PTAR" >/dev/null
	plakar at "$W/store" create -plaintext >/dev/null
	plakar at "$W/store" backup "postgres+bin://replicator:secret@127.0.0.1:$PORT" >/dev/null
	SNAP=$(plakar at "$W/store" ls | awk '{ print $2 }' | head -n 1)
}

teardown() {
	[ ! -f "$W/copy/data/postmaster.pid" ] || pg_stop "$W/copy"
	plakar_stop
	rm -rf "$W"
}

@test "the local form: plakar restore run by the step into an empty directory, the tablespace placed, the copy the server's, started, same data" {
	[ "$(id -u)" = 0 ] || skip "-U is root's"
	mkdir -p "$W/copy" "$W/full/x"
	run -1 --separate-stderr pgrelocate -a "$W/store" -s "$SNAP" -U postgres -T "$T/ts=$W/newts" -T "$T/ts b\\=c=$W/new b=c" "$W/full"
	[[ $stderr == *"not empty"* ]] || fail "$stderr"
	run -1 pgrelocate -a "$W/store" -s "-x" -O "$W/copy/data"
	run -0 --separate-stderr pgrelocate -a "$W/store" -s "$SNAP" -U postgres -T "$T/ts=$W/newts" -T "$T/ts b\\=c=$W/new b=c" "$W/copy/data"
	[[ $stderr == *"pgrelocate: plakar at $W/store restore -to $W/copy/data $SNAP"* ]] || fail "$stderr"
	assert_equal "$(find "$W/copy/data" "$W/newts" "$W/new b=c" ! -user postgres | wc -l)" 0
	# the snapshot's root gave no group access: 0700
	assert_equal "$(stat -c %a "$W/copy/data")" 700
	chown postgres: "$W/copy"
	pg_dump_of "$T/src" "$PORT" | sed "s/ LOCATION '[^']*';\$//" > before.sql
	pg_start "$W/copy" "-p 5432"
	pg_dump_of "$W/copy" | sed "s/ LOCATION '[^']*';\$//" > after.sql
	run -0 diff before.sql after.sql
}

@test "through Plakar, a snapshot whose configuration archives (ARCHIVE_MODE = On, as the server reads it) is warned about" {
	plakar at "$W/store" restore -to "$W/arch" "$SNAP" >/dev/null
	printf "ARCHIVE_MODE = On\narchive_command = '/bin/true'\n" >> "$W/arch/postgresql.conf"
	python3 "$BATS_TEST_DIRNAME/../helpers/reforge.py" "$W/arch" postgresql.conf
	plakar at "$W/store" backup "$W/arch" >/dev/null
	arch=$(plakar at "$W/store" ls | awk '{ print $2 }' | grep -vx "$SNAP" | head -n 1)
	mkdir -p "$W/copy"
	plakar at "$W/store" restore -to "$W/copy/data" "$arch" >/dev/null
	[ "$(id -u)" != 0 ] || chown -R postgres: "$W/copy"
	run -0 --separate-stderr pgrelocate -T "$T/ts=$W/a1" -T "$T/ts b\\=c=$W/a2" "$W/copy/data"
	[[ $stderr == *"warning: the copy archives WAL (archive_mode = on)"* ]] || fail "$stderr"
}

@test "a hostile snapshot through Plakar: tablespace_map naming a victim by a path as OID, its manifest forged: refused after plakar restore -to, the victim unchanged" {
	mkdir -p "$W/victim" && echo precious > "$W/victim/file"
	before=$(sha256sum "$W/victim/file")
	plakar at "$W/store" restore -to "$W/evil" "$SNAP" >/dev/null
	printf '../../../../%s %s\n' "$W/victim" "$T/ts" > "$W/evil/tablespace_map"
	python3 "$BATS_TEST_DIRNAME/../helpers/reforge.py" "$W/evil" tablespace_map
	plakar at "$W/store" backup "$W/evil" >/dev/null
	evil=$(plakar at "$W/store" ls | awk '{ print $2 }' | head -n 1)
	[ "$evil" != "$SNAP" ] || evil=$(plakar at "$W/store" ls | awk '{ print $2 }' | sed -n 2p)
	mkdir -p "$W/copy"
	plakar at "$W/store" restore -to "$W/copy/data" "$evil" >/dev/null
	[ "$(id -u)" != 0 ] || chown -R postgres: "$W/copy"
	run -8 --separate-stderr pgrelocate -O "$W/copy/data"
	assert_equal "$stderr" "pgrelocate: tablespace_map: an OID that is not digits"
	assert_equal "$(sha256sum "$W/victim/file")" "$before"
	[ -f "$W/copy/data/global/pg_control" ] && [ -f "$W/copy/data/tablespace_map" ]
}

@test "a hostile snapshot through Plakar: PG_VERSION naming a directory of the copy that holds programs: refused, no program of the copy run" {
	plakar at "$W/store" restore -to "$W/evil" "$SNAP" >/dev/null
	mkdir -p "$W/evil/pgdata/bin"
	for p in pg_verifybackup postgres; do
		printf '#!/bin/sh\ntouch %s/marker\n' "$W" > "$W/evil/pgdata/bin/$p"
		chmod 755 "$W/evil/pgdata/bin/$p"
	done
	printf '../../../proc/self/cwd/pgdata\n' > "$W/evil/PG_VERSION"
	python3 "$BATS_TEST_DIRNAME/../helpers/reforge.py" "$W/evil" PG_VERSION pgdata/bin/pg_verifybackup pgdata/bin/postgres
	plakar at "$W/store" backup "$W/evil" >/dev/null
	evil=$(plakar at "$W/store" ls | awk '{ print $2 }' | grep -vx "$SNAP" | head -n 1)
	mkdir -p "$W/copy"
	plakar at "$W/store" restore -to "$W/copy/data" "$evil" >/dev/null
	[ "$(id -u)" != 0 ] || chown -R postgres: "$W/copy"
	(cd "$W/copy/data" && run -8 pgrelocate -O .)
	run -8 --separate-stderr pgrelocate -O "$W/copy/data"
	assert_equal "$stderr" "pgrelocate: PG_VERSION: larger than 16 bytes"
	[ ! -e "$W/marker" ]
}

@test "a hostile snapshot through Plakar: a symbolic link to a directory outside the copy, its manifest untouched: refused before any change" {
	plakar at "$W/store" restore -to "$W/evil" "$SNAP" >/dev/null
	mkdir -p "$W/outside" && echo precious > "$W/outside/file"
	ln -s "$W/outside" "$W/evil/base/evil"
	plakar at "$W/store" backup "$W/evil" >/dev/null
	evil=$(plakar at "$W/store" ls | awk '{ print $2 }' | grep -vx "$SNAP" | head -n 1)
	mkdir -p "$W/copy"
	plakar at "$W/store" restore -to "$W/copy/data" "$evil" >/dev/null
	[ -L "$W/copy/data/base/evil" ] || skip "Plakar did not restore the link"
	[ "$(id -u)" != 0 ] || chown -R -h postgres: "$W/copy"
	run -8 --separate-stderr pgrelocate -T "$T/ts=$W/l1" -T "$T/ts b\\=c=$W/l2" "$W/copy/data"
	assert_equal "$stderr" "pgrelocate: base/evil: a symbolic link: a restored copy holds only files and directories"
	[ -f "$W/copy/data/global/pg_control" ] && [ ! -e "$W/l1" ]
	assert_equal "$(cat "$W/outside/file")" precious
}
