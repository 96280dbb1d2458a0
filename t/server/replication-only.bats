#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# Through the real Plakar, a role with REPLICATION and nothing more, and
# pg_hba.conf's replication line only, as the user's page sets it up: the
# backup still holds a slot, still reads the server's clock (so Plakar's
# cache works), restores, verifies and starts.  With the client's clock
# skewed by faketime, the fresh-file rule still follows the server's.

setup_file() {
	load ../helpers/common
	load ../helpers/plakar
	plakar_suite secret 2
	# the replication line alone: no SQL for this role
	cat > "$T/src/data/pg_hba.conf" <<-HBA
		local all postgres trust
		local replication postgres trust
		host replication replonly 127.0.0.1/32 scram-sha-256
	HBA
	psql -qX -v ON_ERROR_STOP=1 <<-'SQL'
		SET password_encryption = 'scram-sha-256';
		CREATE ROLE replonly LOGIN REPLICATION PASSWORD 'secret';
		SELECT pg_reload_conf();
		CHECKPOINT;
	SQL
}

teardown_file() {
	plakar_suite_end
}

setup() {
	load ../helpers/common
	load ../helpers/plakar
	plakar_test
	plakar pkg add "$PTAR" >/dev/null
	plakar at "$W/store" create -plaintext >/dev/null
	plakar source add rp "postgres+bin://replonly:secret@127.0.0.1:$PORT"
}

teardown() {
	pg_stop "$W"
	plakar_stop
	rm -rf "$W"
}

snapshots() {
	plakar at "$W/store" ls | awk '{ print $2 }'
}

# The C programs of the plugin, not Plakar (a static Go program), run
# with the client's clock off by $1.  libfaketime comes before ASan's
# runtime in LD_PRELOAD: the sanitizer build is told to let it.
skewed() {
	local skew=$1
	shift
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
		FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "$skew" "$@"
}

@test "a replication-only role: the slot held during the run, the cache on the second backup, restore, verify, start, same data" {
	# SQL is refused to this role, so the test knows what it tests
	run ! env PGPASSWORD=secret psql -h 127.0.0.1 -U replonly -d postgres -tAXc "SELECT 1"
	# slow enough to see the slot, the same for both backups
	plakar source add rps "postgres+bin://replonly:secret@127.0.0.1:$PORT" max_rate=8M
	run -0 plakar source check rps
	pg_dump_of "$T/src" "$PORT" > before.sql
	# the dump's hint bits written out now, not by the backup's own
	# checkpoint, which would make every file new to the first backup
	psql -qXc CHECKPOINT
	sleep 3
	plakar at "$W/store" backup @rps > first.out 2> first.err &
	pid=$!
	wait_sql "SELECT count(*) FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid WHERE s.temporary AND s.slot_name ~ '^plakar_pg_' AND r.usename = 'replonly'" 1 ||
		fail "no slot held during the backup"
	wait "$pid" || fail "$(cat first.err)"
	grep -q "backup completed without errors" first.out || fail "$(cat first.out first.err)"
	! grep -q "warning: cannot read the server's clock" first.err ||
		fail "$(cat first.err)"
	sleep 3
	run -0 --separate-stderr plakar at "$W/store" backup @rps
	cache_share "$stderr" || fail "the second backup read (almost) every file again"
	snap=$(snapshots | head -n 1)
	run -0 plakar at "$W/store" restore -to "$W/data" "$snap"
	[ "$(id -u)" != 0 ] || chown -R postgres: "$W/data"
	run -0 as_pg pg_verifybackup -i manifest.json "$W/data"
	pg_start "$W" "-p 5433"
	pg_dump_of "$W" 5433 > after.sql
	run -0 diff before.sql after.sql
}

@test "the client's clock an hour ahead (faketime): a page changed in place under an unchanged mtime and size is read again" {
	# a minute ahead of the server's clock (this host's, unskewed): fresh
	# by the server's clock, stale by the skewed client's
	assert_page_read_again rp $(($(date +%s) + 60)) skewed +1h
}

@test "the client's clock an hour behind (faketime): an idle cluster's second backup still takes most files from the cache" {
	# the skew is real: the programs see it
	run -0 skewed -1h date +%s
	[ $(($(date +%s) - output)) -ge 3500 ] || fail "faketime did not skew: $output"
	run -0 skewed -1h plakar at "$W/store" backup @rp
	sleep 3
	run -0 --separate-stderr skewed -1h plakar at "$W/store" backup @rp
	cache_share "$stderr" || fail "the second backup read (almost) every file again"
}
