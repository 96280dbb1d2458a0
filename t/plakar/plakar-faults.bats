#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# Faults through the real Plakar: each ends with plakar's exit status and
# reason, no new snapshot, and within 10 seconds no WAL sender, slot or
# program of ours left, and the password in no file but Plakar's own
# sources.yml.

setup_file() {
	load ../helpers/common
	load ../helpers/plakar
	PW=fault-pw-$RANDOM$RANDOM
	export PW
	plakar_suite "$PW" 3
	psql -qX -c "CREATE ROLE plain LOGIN PASSWORD '$PW'"
}

teardown_file() {
	plakar_suite_end
}

setup() {
	load ../helpers/common
	load ../helpers/plakar
	plakar_test
	export TMPDIR=$W/tmp
	mkdir "$TMPDIR"
	plakar pkg add "$PTAR" >/dev/null
	plakar at "$W/store" create -plaintext >/dev/null
	# slow enough to be caught in the middle
	plakar source add mypg "postgres+bin://replicator:$PW@127.0.0.1:$PORT" max_rate=8M
}

teardown() {
	[ -z "${PLAKAR_PID:-}" ] || kill -9 "$PLAKAR_PID" 2>/dev/null || true
	plakar_stop
	[ -f "$T/src/data/postmaster.pid" ] || pg_start "$T/src" "-c listen_addresses=127.0.0.1 -p $PORT"
	rm -rf "$W"
}

OURS='plakar-pg-importer$|plakar-pg _?backup|runpipe -F|pgprobe -F|tarsplit -F|basetar -F'

# plakar at STORE backup @mypg in its own process group, as a terminal
# would run it; PLAKAR_PID; returns once basetar streams.
start_backup() {
	setsid plakar at "$W/store" backup @mypg >"$W/out" 2>&1 &
	PLAKAR_PID=$!
	# (the preflight's replication connection comes and goes before)
	for _ in $(seq 200); do
		pgrep -f 'basetar -F [0-9]+ -X fetch' >/dev/null &&
			[ "$(psql -tAXc "SELECT count(*) FROM pg_stat_replication WHERE state = 'backup'")" -ge 1 ] &&
			return 0
		sleep 0.1
	done
	fail "no backup under way: $(cat "$W/out")"
}

# STATUS: plakar's, once it has ended.
finish_backup() {
	STATUS=0
	wait "$PLAKAR_PID" || STATUS=$?
	PLAKAR_PID=
}

assert_nothing_left() {
	local left=''
	for _ in $(seq 100); do
		left=$(pgrep -af "$OURS" || true)
		[ -z "$left" ] &&
			[ "$(psql -tAXc 'SELECT (SELECT count(*) FROM pg_stat_replication) + (SELECT count(*) FROM pg_replication_slots)' 2>/dev/null)" = 0 ] &&
			break
		sleep 0.1
	done
	[ -z "$left" ] || fail "still running after 10 s: $left"
	run -0 psql -tAXc "SELECT (SELECT count(*) FROM pg_stat_replication), (SELECT count(*) FROM pg_replication_slots)"
	assert_output '0|0'
	run -0 plakar at "$W/store" ls
	assert_output ''
	run bash -c "grep -rl -e '$PW' '$W' '$XDG_CACHE_HOME' '$XDG_DATA_HOME' '$XDG_CONFIG_HOME' | sort -u"
	assert_output "$XDG_CONFIG_HOME/plakar/sources.yml"
}

@test "server down: plakar exits 1 with the reason" {
	plakar source add down "postgres+bin://replicator:$PW@127.0.0.1:1"
	run -1 plakar at "$W/store" backup @down
	assert_output --partial "pgprobe: cannot connect: "
	assert_nothing_left
}

@test "wrong password, no REPLICATION: plakar exits 1 with the reason" {
	plakar source add wrong "postgres+bin://replicator:nope@127.0.0.1:$PORT"
	run -1 plakar at "$W/store" backup @wrong
	assert_output --partial 'password authentication failed for user "replicator"'
	plakar source add plain "postgres+bin://plain:$PW@127.0.0.1:$PORT"
	run -1 plakar at "$W/store" backup @plain
	assert_output --partial "role plain has no REPLICATION privilege"
	assert_nothing_left
}

@test "the server stopped mid-backup" {
	start_backup
	pg_stop "$T/src" fast
	finish_backup
	assert_equal "$STATUS" 1
	run cat "$W/out"
	assert_output --partial "failed to backup source"
	pg_start "$T/src" "-c listen_addresses=127.0.0.1 -p $PORT"
	assert_nothing_left
}

@test "basetar killed mid-backup" {
	start_backup
	pkill -KILL -f 'basetar -F [0-9]+ -X fetch'
	finish_backup
	assert_equal "$STATUS" 1
	run cat "$W/out"
	assert_output --partial "code = Aborted desc = runpipe: basetar was killed by signal 9"
	assert_nothing_left
}

@test "the wrapper SIGKILLed mid-backup" {
	start_backup
	# the wrapper ends as runpipe (plakar-pg(7))
	pkill -KILL -f '^runpipe -F 3 basetar'
	finish_backup
	assert_equal "$STATUS" 1
	run cat "$W/out"
	assert_output --partial "plakar-pg died in the middle of the backup"
	assert_nothing_left
}

@test "the importer SIGKILLed mid-backup" {
	start_backup
	pkill -KILL -f 'plakar-pg-importer$'
	finish_backup
	assert_equal "$STATUS" 1
	echo "# $(tail -n 1 "$W/out")" >&3
	assert_nothing_left
}

@test "plakar SIGINTed and SIGTERMed, to its pid and to its process group" {
	for target in pid group; do
		for sig in INT TERM; do
			start_backup
			if [ "$target" = pid ]; then
				kill -s "$sig" "$PLAKAR_PID"
			else
				kill -s "$sig" -- "-$PLAKAR_PID"
			fi
			finish_backup
			[ "$STATUS" != 0 ] || fail "plakar exited 0 after SIG$sig to its $target"
			echo "# SIG$sig to plakar's $target: exit $STATUS, $(tail -n 1 "$W/out")" >&3
			assert_nothing_left
		done
	done
}

@test "plakar SIGKILLed mid-backup" {
	start_backup
	kill -KILL "$PLAKAR_PID"
	finish_backup
	assert_equal "$STATUS" 137
	assert_nothing_left
}
