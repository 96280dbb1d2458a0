#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# Every outcome of lib/outcomes that a server can cause, caused, against
# a server whose lc_messages is German and with a German client locale:
# plakar-pg's status line and exit status, the importer's gRPC code (the
# table's), and Plakar's exit status 1 with the program's message.  No
# layer reads words: the same outcomes come out in any language.  The
# first test holds the table to the cases below.

OUTCOMES=$BATS_TEST_DIRNAME/../../lib/outcomes

# Outcomes that come once the backup runs, after Plakar's Init.
PAST_INIT='backup-failed checksum manifest-incomplete manifest-mismatch silence wal-removed'

# Outcomes no server causes, each with the test file that causes it.
ELSEWHERE='usage plakar-pg.bats
damaged plakar-pg.bats
query-failed pgprobe.bats
stream-broken ../cli/tarsplit.bats
verify-failed tablespace.bats
hostile pgrelocate.bats
resume-needed pgrelocate.bats'

setup_file() {
	load ../helpers/common
	load ../helpers/plakar
	locale -a | grep -qix 'de_DE.utf8' ||
		fail "locale de_DE.UTF-8 missing: sh dev/install.sh generates it"
	PW=outcome-pw-$RANDOM$RANDOM
	export PW
	T=$(pg_tmpdir)
	export T
	# page checksums for the checksum outcome; 1 MB segments and little
	# WAL kept, so that WAL no slot holds is removed within seconds
	pg_tcp_cluster "$T/src" replicator "$PW" --data-checksums --wal-segsize=1
	cat > "$T/src/data/pg_hba.conf" <<-HBA
		local all postgres trust
		local replication postgres trust
		host all all 127.0.0.1/32 scram-sha-256
		host replication replicator,plain,reponly 127.0.0.1/32 scram-sha-256
	HBA
	cat >> "$T/src/data/postgresql.conf" <<-CONF
		lc_messages = 'de_DE.UTF-8'
		max_wal_senders = 2
		max_wal_size = 4MB
		min_wal_size = 2MB
		wal_keep_size = 0
	CONF
	pg_stop "$T/src"
	pg_start "$T/src" "-c listen_addresses=127.0.0.1 -p $PORT"
	pg_env "$T/src"
	export PGPORT=$PORT
	psql -qX -v ON_ERROR_STOP=1 -v pw="$PW" <<-'SQL'
		SET password_encryption = 'scram-sha-256';
		CREATE ROLE plain LOGIN PASSWORD :'pw';
		CREATE ROLE other LOGIN REPLICATION PASSWORD :'pw';
		CREATE ROLE reponly LOGIN REPLICATION PASSWORD :'pw';
		CREATE TABLE churn (id int PRIMARY KEY, v text);
	SQL
	pgbench -i -s 1 -q >/dev/null 2>&1
	plakar_suite_plakar
}

teardown_file() {
	plakar_suite_end
}

setup() {
	load ../helpers/common
	load ../helpers/plakar
	plakar_test
	export LC_ALL=de_DE.UTF-8 LANG=de_DE.UTF-8
	plakar pkg add "$PTAR" >/dev/null
	plakar at "$W/store" create -plaintext >/dev/null
	LOC="postgres+bin://replicator:$PW@127.0.0.1:$PORT"
}

teardown() {
	[ -z "${HELPER:-}" ] || kill "$HELPER" 2>/dev/null || true
	plakar_stop
	# a test that started the server otherwise: as it was
	[ -z "${RESTARTED:-}" ] || pg_stop "$T/src"
	[ -f "$T/src/data/postmaster.pid" ] ||
		pg_start "$T/src" "-c listen_addresses=127.0.0.1 -p $PORT"
	wait_sql "SELECT count(*) FROM pg_stat_replication" 0 || true
	# what a failed case may leave: no later backup may trip on it
	psql -qX -c "DROP TABLE IF EXISTS victim" -c "DROP TABLESPACE IF EXISTS inplace" 2>/dev/null || true
	rm -rf "$W"
}

# restart_with OPTIONS: the server restarted with these, until teardown.
restart_with() {
	pg_stop "$T/src"
	pg_start "$T/src" "-c listen_addresses=127.0.0.1 -p $PORT $*"
	RESTARTED=yes
}

# The table's exit status and gRPC code of an outcome.
exit_of() {
	awk -F '\t' -v n="$1" '$1 == n { print $2 }' "$OUTCOMES"
}

grpc_of() {
	awk -F '\t' -v n="$1" '$1 == n { print $3 }' "$OUTCOMES"
}

# Plakar shows gRPC codes as grpc-go names them.
camel() {
	sed -E 's/(^|_)([A-Z])([A-Z]*)/\2\L\3/g' <<<"$1"
}

# by_wrapper OUTCOME PROGRAM LOCATION [key=value ...]: plakar-pg backup's
# status and exit status, and no end frame.
by_wrapper() {
	local outcome=$1 program=$2
	shift 2
	run --separate-stderr sh -c 'plakar-pg backup -F 3 "$@" 3>st >frames </dev/null' sh "$@"
	assert_equal "$status" "$(exit_of "$outcome")"
	assert_equal "$(first_failure st)" "$program $outcome $(exit_of "$outcome")"
	[ "$(last_type frames)" != end ] || fail "an end frame"
	printf '# %s: %s\n' "$outcome" "$(failure_message st)" >&3
}

# by_importer OUTCOME PROGRAM CONFIG_JSON: the importer's code for Plakar.
by_importer() {
	local outcome=$1 program=$2 config=$3
	mkdir -p "$W/grpc"
	run --separate-stderr "$GRPCCLIENT" "$PLAKAR_PG_BIN/plakar-pg-importer" import "$config" "$W/grpc/data"
	[ "$status" = 2 ] || fail "grpcclient: exit $status: $output $stderr"
	assert_line -n 0 --partial "grpc-error $(grpc_of "$outcome"): $program: "
	refute_output --partial finished
}

# by_plakar OUTCOME PROGRAM LOCATION [key=value ...]: plakar backup of a
# source with these options: exit 1, the program's message, no snapshot.
by_plakar() {
	local outcome=$1 program=$2
	shift 2
	plakar source add case "$@"
	run plakar at "$W/store" backup @case
	assert_equal "$status" 1
	assert_output --partial "$program: "
	# past Init, Plakar shows the code too
	if [[ " $PAST_INIT " == *" $outcome "* ]]; then
		assert_output --partial "code = $(camel "$(grpc_of "$outcome")") desc = $program: "
	fi
	run -0 plakar at "$W/store" ls
	assert_output ''
}

# json LOCATION [key=value ...]: the importer's config.
json() {
	local loc=$1 kv
	shift
	printf '{"location": "%s"' "$loc"
	for kv; do
		printf ', "%s": "%s"' "${kv%%=*}" "${kv#*=}"
	done
	printf '}\n'
}

# all_three OUTCOME PROGRAM LOCATION [key=value ...]
all_three() {
	by_wrapper "$@"
	by_importer "$1" "$2" "$(json "${@:3}")"
	by_plakar "$@"
}

@test "the table and the cases: every outcome is caused here or in the file named for it" {
	local name
	while IFS="$(printf '\t')" read -r name _; do
		case $name in '' | '#'*) continue ;; esac
		if grep -q "^@test \"$name:" "$BATS_TEST_FILENAME"; then
			continue
		fi
		file=$(awk -v n="$name" '$1 == n { print $2 }' <<<"$ELSEWHERE")
		[ -n "$file" ] || fail "$name: no case here, and none named elsewhere"
		grep -q -- "$name" "$BATS_TEST_DIRNAME/$file" || fail "$name: not in $file"
	done < "$OUTCOMES"
}

@test "ok: a backup, in German all along" {
	run --separate-stderr sh -c "plakar-pg backup -F 3 '$LOC' 3>st >frames"
	assert_equal "$status" 0
	assert_equal "$(first_failure st)" ok
	assert_equal "$(last_type frames)" end
	run -0 plakar source add case "$LOC"
	run -0 plakar at "$W/store" backup @case
}

@test "unreachable: nothing listens" {
	all_three unreachable pgprobe "postgres+bin://replicator:$PW@127.0.0.1:1"
}

@test "unreachable, by time: a server that takes the connection and never answers; connect_timeout=2 bounds it" {
	python3 "$BATS_TEST_DIRNAME/../helpers/relay.py" "$W/port" 127.0.0.1 "$PORT" mute &
	HELPER=$!
	for _ in $(seq 50); do [ -s "$W/port" ] && break; sleep 0.1; done
	local start
	start=$(date +%s)
	by_wrapper unreachable pgprobe "postgres+bin://replicator:$PW@127.0.0.1:$(cat "$W/port")" connect_timeout=2
	[ $(($(date +%s) - start)) -le 6 ] || fail "took $(($(date +%s) - start)) s"
	assert_equal "$(failure_message st)" "cannot connect: timeout expired after 2 s"
}

@test "no-password: none given, none in a pgpass file" {
	export PGPASSFILE=/nonexistent
	all_three no-password pgprobe "postgres+bin://replicator@127.0.0.1:$PORT"
}

@test "auth-failed: a wrong password" {
	all_three auth-failed pgprobe "postgres+bin://replicator:wrong@127.0.0.1:$PORT"
	# the server's own words, in German, in the message
	[[ $(failure_message "$W/st") == *"Passwort-Authentifizierung"*"(SQLSTATE 28P01)" ]] ||
		fail "$(cat "$W/st")"
}

@test "hba-rejected: no replication line for the role" {
	all_three hba-rejected pgprobe "postgres+bin://other:$PW@127.0.0.1:$PORT"
}

@test "no-replication: a role without REPLICATION" {
	all_three no-replication pgprobe "postgres+bin://plain:$PW@127.0.0.1:$PORT"
}

@test "no-wal-sender: both WAL senders in use" {
	PGHOST=$T/src basetar -X none -r 32 >/dev/null 2>&1 &
	local one=$!
	PGHOST=$T/src basetar -X none -r 32 >/dev/null 2>&1 &
	local two=$!
	wait_sql "SELECT count(*) FROM pg_stat_replication" 2 || fail "no hogs"
	all_three no-wal-sender pgprobe "$LOC"
	kill "$one" "$two"
	wait "$one" "$two" || true
	wait_sql "SELECT count(*) FROM pg_stat_replication" 0
}

@test "wal-level: wal_level minimal" {
	restart_with -c wal_level=minimal -c max_wal_senders=0
	all_three wal-level pgprobe "$LOC"
}

@test "server-too-old: a server that says it is 12" {
	mkdir "$W/fake"
	python3 "$BATS_TEST_DIRNAME/../helpers/fakepg.py" "$W/fake" 5432 12.22 &
	HELPER=$!
	for _ in $(seq 50); do [ -S "$W/fake/.s.PGSQL.5432" ] && break; sleep 0.1; done
	all_three server-too-old pgprobe "postgres+bin://replicator:$PW@localhost" host="$W/fake" port=5432
}

@test "slot-refused: max_replication_slots = 0, strict=on" {
	restart_with -c max_replication_slots=0
	all_three slot-refused pgprobe "$LOC" strict=on
	# basetar alone says it too, with the server's SQLSTATE
	run -2 sh -c "PGHOST='$T/src' PGPORT=$PORT basetar -F 3 -S -s 3>st >/dev/null"
	assert_equal "$(first_failure st)" "basetar slot-refused 2"
	assert_equal "$(jq -r .sqlstate st)" 53400
}

@test "clock-unknown: strict=on and a server whose clock never comes (a relay stops the probe's stream)" {
	python3 "$BATS_TEST_DIRNAME/../helpers/relay.py" "$W/port" 127.0.0.1 "$PORT" noclock &
	HELPER=$!
	for _ in $(seq 50); do [ -s "$W/port" ] && break; sleep 0.1; done
	all_three clock-unknown pgprobe "postgres+bin://replicator:$PW@127.0.0.1:$(cat "$W/port")" strict=on
}

@test "in-place-tablespace: one made with allow_in_place_tablespaces" {
	psql -qX -c "SET allow_in_place_tablespaces = on" -c "CREATE TABLESPACE inplace LOCATION ''"
	all_three in-place-tablespace pgprobe "$LOC"
	psql -qX -c "DROP TABLESPACE inplace"
}

@test "manifest-incomplete: strict=on and a role that cannot read the settings" {
	all_three manifest-incomplete plakar-pg "postgres+bin://reponly:$PW@127.0.0.1:$PORT" strict=on
}

@test "backup-failed: the backup's WAL sender ended (pg_terminate_backend)" {
	local outcome=backup-failed
	plakar-pg backup -F 3 "$LOC" max_rate=2M 3>st >frames 2>/dev/null &
	local pid=$!
	wait_sql "SELECT count(*) FROM pg_stat_replication WHERE state = 'backup'" 1 || fail "no backup"
	psql -qXAt -c "SELECT pg_terminate_backend(pid) FROM pg_stat_replication" >/dev/null
	status=0
	wait "$pid" || status=$?
	assert_equal "$status" "$(exit_of "$outcome")"
	assert_equal "$(first_failure st)" "basetar $outcome 3"
	assert_equal "$(jq -r 'select(.status != "ok") | .sqlstate' st)" 57P01
	printf '# %s: %s\n' "$outcome" "$(failure_message st)" >&3
}

@test "checksum: a corrupt page" {
	psql -qX -c "CREATE TABLE victim AS SELECT generate_series(1, 1000) AS n" -c CHECKPOINT
	rel=$(psql -tAXc "SELECT pg_relation_filepath('victim')")
	pg_stop "$T/src"
	printf 'X' | dd of="$T/src/data/$rel" bs=1 seek=4000 conv=notrunc 2>/dev/null
	pg_start "$T/src" "-c listen_addresses=127.0.0.1 -p $PORT"
	all_three checksum basetar "$LOC"
	assert_equal "$(jq -r 'select(.status != "ok") | .sqlstate' "$W/st")" XX001
	psql -qX -c "DROP TABLE victim"
}

@test "wal-removed: no slot, and the server recycles WAL under the backup" {
	churn() {
		for i in $(seq 12); do
			psql -qX -c "INSERT INTO churn SELECT g + $1 + $i * 10000, 'x' FROM generate_series(1, 2000) g" \
				-c "SELECT pg_switch_wal()" -c CHECKPOINT >/dev/null 2>&1
			sleep 0.2
		done
		psql -qX -c "TRUNCATE churn" >/dev/null 2>&1
	}
	churn 0 & local c=$!
	by_wrapper wal-removed basetar "$LOC" max_rate=4M hold_wal=off
	wait "$c"
	churn 0 & c=$!
	by_importer wal-removed basetar "$(json "$LOC" max_rate=4M hold_wal=off)"
	wait "$c"
	churn 0 & c=$!
	by_plakar wal-removed basetar "$LOC" max_rate=4M hold_wal=off
	wait "$c"
}

@test "manifest-mismatch: a server whose manifest does not match its files (a relay changes one checksum)" {
	python3 "$BATS_TEST_DIRNAME/../helpers/relay.py" "$W/port" 127.0.0.1 "$PORT" lie &
	HELPER=$!
	for _ in $(seq 50); do [ -s "$W/port" ] && break; sleep 0.1; done
	all_three manifest-mismatch tarsplit "postgres+bin://replicator:$PW@127.0.0.1:$(cat "$W/port")"
}

@test "interrupted: SIGTERM to plakar-pg mid-backup" {
	plakar-pg backup -F 3 "$LOC" max_rate=2M 3>st >frames 2>/dev/null &
	local pid=$!
	wait_sql "SELECT count(*) FROM pg_stat_replication WHERE state = 'backup'" 1 || fail "no backup"
	kill -TERM "$pid"
	status=0
	wait "$pid" || status=$?
	assert_equal "$status" "$(exit_of interrupted)"
	assert_equal "$(first_failure st)" "runpipe interrupted 6"
	[ "$(last_type frames)" != end ] || fail "an end frame"
	wait_sql "SELECT count(*) FROM pg_stat_replication" 0 || fail "a WAL sender left"
	# and during the preflight, at a server that never answers: once
	# its bounded step ends, the same status
	python3 "$BATS_TEST_DIRNAME/../helpers/relay.py" "$W/port" 127.0.0.1 "$PORT" mute &
	HELPER=$!
	for _ in $(seq 50); do [ -s "$W/port" ] && break; sleep 0.1; done
	plakar-pg backup -F 3 "postgres+bin://replicator:$PW@127.0.0.1:$(cat "$W/port")" connect_timeout=3 3>st2 >/dev/null 2>&1 &
	pid=$!
	sleep 1
	kill -TERM "$pid"
	status=0
	wait "$pid" || status=$?
	assert_equal "$status" "$(exit_of interrupted)"
	run -0 jq -r 'select(.program == "plakar-pg") | .status' st2
	assert_output interrupted
	# through Plakar: plakar-faults.bats
}

@test "interrupted, through Plakar: plakar source check at a server that never answers, SIGINTed; nothing of ours left once connect_timeout has passed" {
	python3 "$BATS_TEST_DIRNAME/../helpers/relay.py" "$W/port" 127.0.0.1 "$PORT" mute &
	HELPER=$!
	for _ in $(seq 50); do [ -s "$W/port" ] && break; sleep 0.1; done
	plakar source add case "postgres+bin://replicator:$PW@127.0.0.1:$(cat "$W/port")" connect_timeout=3
	setsid plakar source check case >/dev/null 2>&1 &
	local pid=$! left=''
	for _ in $(seq 50); do pgrep -f 'pgprobe -F 3 -p' >/dev/null && break; sleep 0.1; done
	pgrep -f 'pgprobe -F 3 -p' >/dev/null || fail "no preflight under way"
	kill -INT "$pid"
	wait "$pid" || true
	for _ in $(seq 100); do
		left=$(pgrep -af 'plakar-pg-importer$|plakar-pg _?check|pgprobe -F' || true)
		[ -z "$left" ] && break
		sleep 0.1
	done
	[ -z "$left" ] || fail "still running after 10 s: $left"
}

@test "reader-gone: the reader of the frames closes its end" {
	run bash -c "plakar-pg backup -F 3 '$LOC' max_rate=4M 3>st 2>/dev/null | head -c 100000 >/dev/null; echo \${PIPESTATUS[0]}"
	assert_equal "$output" "$(exit_of reader-gone)"
	assert_equal "$(first_failure st)" "runpipe reader-gone 6"
	wait_sql "SELECT count(*) FROM pg_stat_replication" 0 || fail "a WAL sender left"
}

@test "silence: a relay that stops forwarding mid-stream (TCP), silence_timeout=3" {
	python3 "$BATS_TEST_DIRNAME/../helpers/relay.py" "$W/port" 127.0.0.1 "$PORT" stall &
	HELPER=$!
	for _ in $(seq 50); do [ -s "$W/port" ] && break; sleep 0.1; done
	local start loc
	loc="postgres+bin://replicator:$PW@127.0.0.1:$(cat "$W/port")"
	start=$(date +%s)
	by_wrapper silence basetar "$loc" silence_timeout=3
	[ $(($(date +%s) - start)) -le 15 ] || fail "took $(($(date +%s) - start)) s"
	# the relay resets the server's side once basetar has gone
	wait_sql "SELECT count(*) FROM pg_stat_replication" 0 || fail "a WAL sender left"
	by_importer silence basetar "$(json "$loc" silence_timeout=3)"
	wait_sql "SELECT count(*) FROM pg_stat_replication" 0 || fail "a WAL sender left"
	by_plakar silence basetar "$loc" silence_timeout=3
	kill "$HELPER"
	HELPER=
	wait_sql "SELECT count(*) FROM pg_stat_replication" 0 || fail "a WAL sender left"
}
