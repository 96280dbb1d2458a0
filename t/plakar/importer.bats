#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# plakar-pg-importer driven as Plakar drives it: t/grpcclient starts it
# with its stdin and stdout as the connection and speaks gRPC with
# grpc-go and the importer client of Plakar's own integration-grpc.

setup_file() {
	load ../helpers/common
	pg_suite_cluster
	pgbench -i -s 1 -q >/dev/null 2>&1
	psql -qX -c "CREATE TABLE notes AS SELECT i, md5(i::text) FROM generate_series(1, 3000) i"
}

teardown_file() {
	pg_cleanup "$T"
}

setup() {
	load ../helpers/common
	pg_env "$T/src"
	cd "$BATS_TEST_TMPDIR"
	# the importer's private TMPDIR goes below this one, and must go
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
	mkdir "$TMPDIR"
	CONFIG="{\"location\": \"postgres+bin://postgres@localhost\", \"host\": \"$T/src\"}"
	SLOW="{\"location\": \"postgres+bin://postgres@localhost\", \"host\": \"$T/src\", \"max_rate\": \"4M\"}"
}

client() {
	"$GRPCCLIENT" "$PLAKAR_PG_BIN/plakar-pg-importer" "$@"
}

# Within 10 seconds: no program of ours running, no WAL sender or slot on
# the server, nothing in TMPDIR.
assert_nothing_left() {
	local left
	for _ in $(seq 100); do
		left=$(pgrep -af "$PLAKAR_PG_BIN/plakar-pg" || true)
		[ -z "$left" ] && [ -z "$(find "$TMPDIR" -mindepth 1)" ] &&
			[ "$(psql -tAXc 'SELECT (SELECT count(*) FROM pg_stat_replication) + (SELECT count(*) FROM pg_replication_slots)')" = 0 ] &&
			return 0
		sleep 0.1
	done
	[ -z "$left" ] || fail "still running: $left"
	run -0 find "$TMPDIR" -mindepth 1
	assert_output ''
	run -0 psql -tAXc "SELECT (SELECT count(*) FROM pg_stat_replication), (SELECT count(*) FROM pg_replication_slots)"
	assert_output '0|0'
}

@test "Init: origin host:port, type, root and flags STREAM|NEEDACK" {
	run -0 --separate-stderr client init "$CONFIG"
	assert_line -n 0 "{\"flags\":12,\"origin\":\"$T/src:5432\",\"root\":\"/\",\"type\":\"postgres+bin\"}"
	assert_line -n 1 "plugin: exit 0"
	assert_nothing_left
}

@test "round trip over gRPC: Import, Open, acks; pg_verifybackup, start, pg_dumpall equal" {
	pg_dump_of "$T/src" > before.sql
	mkdir "$T/grpc"
	run -0 --separate-stderr client import "$CONFIG" "$T/grpc/data"
	assert_line -n 0 --regexp '^\{"files":[0-9]+,"finished":true,"manifest_version":2,"records":[0-9]+\}$'
	assert_line -n 1 "plugin: exit 0"
	assert_nothing_left
	run -0 pg_verifybackup "$T/grpc/data"
	[ "$(id -u)" != 0 ] || chown -R postgres: "$T/grpc"
	pg_start "$T/grpc"
	pg_dump_of "$T/grpc" > after.sql
	pg_stop "$T/grpc"
	run -0 diff before.sql after.sql
}

@test "a bad option: Init fails with uriparse's line" {
	run -2 --separate-stderr client init '{"location": "postgres+bin://db.example.com/postgres"}'
	assert_line -n 0 "grpc-error INVALID_ARGUMENT: uriparse: location: a subpath is not allowed: pg_basebackup backs up the whole cluster"
}

@test "Ping: the preflight, and its line when the server is down" {
	run -0 --separate-stderr client ping "$CONFIG"
	assert_line -n 0 pong
	run -2 --separate-stderr client ping "{\"location\": \"postgres+bin://postgres@localhost\", \"host\": \"$T/nowhere\"}"
	# a preflight failure: never UNAVAILABLE, whose message Plakar replaces
	assert_output --partial "grpc-error FAILED_PRECONDITION: pgprobe: cannot connect: "
}

@test "the wrapper dies mid-stream: a gRPC error, never finished" {
	( for _ in $(seq 100); do
		p=$(pgrep -f "^runpipe -F 3 basetar" | head -n 1)
		if [ -n "$p" ]; then sleep 1; kill -9 "$p"; exit 0; fi
		sleep 0.1
	done ) &
	killer=$!
	run --separate-stderr client import "{\"location\": \"postgres+bin://postgres@localhost\", \"host\": \"$T/src\", \"max_rate\": \"2M\"}" "$T/dies"
	wait "$killer"
	[ "$status" = 2 ] || fail "exit $status: $output $stderr"
	assert_line -n 0 --regexp '^grpc-error INTERNAL: '
	refute_output --partial finished
	assert_line -n 1 "plugin: exit 0"
	# a SIGKILLed wrapper cannot clean up: the importer does it for it
	assert_nothing_left
}

@test "the backup fails on the server: the wrapper's reason comes back" {
	run -2 --separate-stderr client import "{\"location\": \"postgres+bin://norole@localhost\", \"host\": \"$T/src\"}" "$T/norole"
	assert_line -n 0 --regexp '^grpc-error FAILED_PRECONDITION: pgprobe: the server does not admit role norole from this host: role "norole" does not exist \(SQLSTATE 28000\)'
}

@test "the client hangs up mid-Import: the importer stops the backup and exits 1" {
	run -0 --separate-stderr client drop "$SLOW" 20
	assert_line -n 0 dropped
	assert_line -n 1 "plugin: exit 1"
	[[ $stderr == *"plakar-pg-importer: Plakar hung up in the middle of the backup: the backup was stopped"* ]] || fail "stderr: $stderr"
	assert_nothing_left
}

@test "the client hangs up in the middle of an Open: the same" {
	run -0 --separate-stderr client drop-open "$SLOW" 30
	assert_line -n 0 "dropped in an Open"
	assert_line -n 1 "plugin: exit 1"
	assert_nothing_left
}

@test "an Open cancelled mid-record, its record acked all the same: the Import fails, never finished" {
	# kloset acks a record it could not read and commits it as a hole
	run -2 --separate-stderr client cancel-open "$SLOW" 30
	assert_line -n 0 --regexp '^cancelled /base/[0-9]+/[0-9]+$'
	assert_line -n 1 --regexp '^grpc-error ABORTED: /base/[0-9]+/[0-9]+: Plakar cancelled its read \([0-9]+ of [0-9]+ bytes sent\): the backup is stopped rather than stored with the file short$'
	refute_output --partial finished
	assert_line -n 2 "plugin: exit 0"
	assert_nothing_left
}

@test "the client stops reading, then hangs up: the same" {
	run -0 --separate-stderr client stall "$SLOW" 25 3
	assert_line -n 0 stalled
	assert_line -n 1 "plugin: exit 1"
	assert_nothing_left
}

@test "a stalled Plakar (neither reads nor acks): after stall_timeout the backup stops, the client still connected" {
	"$GRPCCLIENT" "$PLAKAR_PG_BIN/plakar-pg-importer" stall \
		"{\"location\": \"postgres+bin://postgres@localhost\", \"host\": \"$T/src\", \"max_rate\": \"4M\", \"stall_timeout\": \"2\"}" 25 12 \
		> stall.out 2> stall.err &
	client=$!
	wait_sql "SELECT count(*) FROM pg_stat_replication WHERE state = 'backup'" 1 || true
	sleep 6
	# the client sleeps on: the importer has let go of the server already
	kill -0 "$client" || fail "the client ended first"
	run -0 psql -tAXc "SELECT (SELECT count(*) FROM pg_stat_replication), (SELECT count(*) FROM pg_replication_slots)"
	assert_output '0|0'
	grep -q "plakar-pg-importer: Plakar neither read nor acknowledged anything for 2 s (stall_timeout): the backup is stopped" stall.err ||
		fail "$(cat stall.err)"
	wait "$client" || true
	assert_nothing_left
}

@test "SIGTERM mid-Import: the backup stops, nothing is left" {
	( for _ in $(seq 100); do
		p=$(pgrep -f "^runpipe -F 3 basetar" | head -n 1)
		if [ -n "$p" ]; then sleep 1; pkill -TERM -f "^$PLAKAR_PG_BIN/plakar-pg-importer"; exit 0; fi
		sleep 0.1
	done ) &
	killer=$!
	run -2 --separate-stderr client read "$SLOW"
	wait "$killer"
	refute_output --partial '"finished":true'
	[[ $stderr == *"plakar-pg-importer: interrupted"* ]] || fail "stderr: $stderr"
	assert_nothing_left
}

@test "garbage and HTTP/1 on stdin: one line, exit 1, nothing left" {
	run -1 --separate-stderr "$PLAKAR_PG_BIN/plakar-pg-importer" <<<"garbage"
	assert_equal "$stderr" "plakar-pg-importer: the input is not HTTP/2 from a gRPC client (Received bad client magic byte string)"
	run -1 --separate-stderr "$PLAKAR_PG_BIN/plakar-pg-importer" < <(printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
	assert_equal "$stderr" "plakar-pg-importer: the input is not HTTP/2 from a gRPC client (Received bad client magic byte string)"
	assert_nothing_left
}

@test "a bad protobuf, an unknown method, a message over 4 MiB: a status each, the plugin lives on" {
	run -2 --separate-stderr client raw /importer.Importer/Init ffff
	assert_line -n 0 "grpc-error INVALID_ARGUMENT: bad InitRequest"
	assert_line -n 1 "plugin: exit 0"
	run -2 --separate-stderr client raw /importer.Importer/Backup 00
	assert_line -n 0 "grpc-error UNIMPLEMENTED: unknown method"
	assert_line -n 1 "plugin: exit 0"
	run -2 --separate-stderr client big "$CONFIG" $((5 * 1024 * 1024))
	assert_line -n 0 --regexp '^grpc-error RESOURCE_EXHAUSTED: message of 52430[0-9][0-9] bytes: the limit is 4194304$'
	assert_line -n 1 "plugin: exit 0"
	assert_nothing_left
}

@test "the package: manifest, validator and programs that find each other" {
	run -0 make -s -C "$BATS_TEST_DIRNAME/../.." package PKGDIR="$BATS_TEST_TMPDIR/pkg" OUT="$PLAKAR_PG_BIN"
	run -0 ls "$BATS_TEST_TMPDIR/pkg"
	assert_output "$(printf '%s\n' basetar manifest.yaml pgmeta pgprobe pgrelocate plakar-pg plakar-pg-importer runpipe schema.json tarjoin tarsplit uriparse)"
	for f in plakar-pg plakar-pg-importer tarsplit pgmeta uriparse runpipe basetar pgprobe; do
		[ -x "$BATS_TEST_TMPDIR/pkg/$f" ] || fail "$f has no run bit"
		grep -q "$f" "$BATS_TEST_TMPDIR/pkg/manifest.yaml" || fail "$f not in the manifest"
	done
	# the packaged importer runs the packaged wrapper, not one in PATH
	run -0 env PATH=/usr/bin:/bin "$GRPCCLIENT" "$BATS_TEST_TMPDIR/pkg/plakar-pg-importer" ping "$CONFIG"
	assert_line -n 0 pong
}

# plakar/schema.json is the one table of options: these hold it and the
# programs and man pages to the same list.
schema_keys() {
	jq -r --arg p "$1" '.properties | to_entries[] | select(.value["x-program"] == $p) | .key' \
		"$BATS_TEST_DIRNAME/../../plakar/schema.json"
}

example() {
	jq -r --arg k "$1" '.properties[$k].examples[0]' "$BATS_TEST_DIRNAME/../../plakar/schema.json"
}

@test "options: each key of the table is taken with its example, everywhere it is checked" {
	for k in $(schema_keys uriparse) $(schema_keys plakar-pg) $(schema_keys plakar-pg-importer); do
		[ "$k" = location ] && continue
		run uriparse -j location=postgres+bin://h "$k=$(example "$k")"
		[ "$status" -eq 0 ] || fail "uriparse refuses $k: $output"
		run plakar-pg options location=postgres+bin://h "$k=$(example "$k")"
		[ "$status" -eq 0 ] || fail "plakar-pg options refuses $k: $output"
	done
	# the backup's, by basetar's flag for it (the table's "to"): taken,
	# and what basetar refuses names the key
	for k in $(schema_keys plakar-pg); do
		flag=$(jq -r --arg k "$k" '.properties[$k]["x-to"]' "$BATS_TEST_DIRNAME/../../plakar/schema.json")
		case $flag in
		"basetar -c" | "basetar -l" | "basetar -r" | "basetar -T" | "basetar -X")
			run -1 --separate-stderr basetar "${flag#basetar }" $'a\001'
			assert_equal "$stderr" "basetar: ${flag#basetar } ($k): a control character (0x01) is not allowed" ;;
		esac
	done
	run -1 plakar-pg options location=postgres+bin://h sslmode=require
	assert_output "uriparse: unknown option: sslmode"
}

@test "options: every enum value is taken, another is refused, defaults are the table's" {
	schema=$BATS_TEST_DIRNAME/../../plakar/schema.json
	for k in $(jq -r '.properties | to_entries[] | select(.value.enum) | .key' "$schema"); do
		for v in $(jq -r --arg k "$k" '.properties[$k].enum[]' "$schema"); do
			run plakar-pg options location=postgres+bin://h "$k=$v"
			[ "$status" -eq 0 ] || fail "$k=$v refused: $output"
		done
		run plakar-pg options location=postgres+bin://h "$k=bogus"
		[ "$status" -eq 1 ] || fail "$k=bogus taken"
	done
	run -0 plakar-pg options location=postgres+bin://
	for k in $(jq -r '.properties | to_entries[] | select(.value.default) | .key' "$schema"); do
		assert_equal "$(jq -r --arg k "$k" '.[$k] | tostring' <<<"$output")" \
			"$(jq -r --arg k "$k" '.properties[$k].default' "$schema")"
	done
}

@test "options: the man pages list exactly the table's keys" {
	man=$BATS_TEST_DIRNAME/../../man
	# ".It Cm a , b , c" or ".It Cm a Ns = Ns ...": the names before Ns
	listed() {
		awk '$1 == ".It" && $2 == "Cm" { for (i = 3; i <= NF && $i != "Ns"; i++) if ($i != ",") print $i }' "$1" | sort -u
	}
	assert_equal "$(listed "$man/uriparse.1")" "$(schema_keys uriparse | grep -vx location | sort)"
	assert_equal "$(listed "$man/plakar-pg.1")" "$(schema_keys plakar-pg | sort)"
	assert_equal "$(listed "$man/plakar-pg-importer.1")" "$(schema_keys plakar-pg-importer | sort)"
}
