#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# plakar-pg-importer against a real gRPC client (python3-grpcio, stubs
# from share/proto by python3-grpc-tools), through a Unix socket bridged
# to its stdin and stdout by socat, as Plakar would drive it.

setup_file() {
	load common
	pg_suite_cluster
	mkdir "$T/stubs"
	/usr/bin/python3 -m grpc_tools.protoc -I "$BATS_TEST_DIRNAME/../share/proto" \
		--python_out="$T/stubs" --grpc_python_out="$T/stubs" \
		connectors.proto importer.proto importer_service.proto
	pgbench -i -s 1 -q >/dev/null 2>&1
	psql -qX -c "CREATE TABLE notes AS SELECT i, md5(i::text) FROM generate_series(1, 3000) i"
}

teardown_file() {
	pg_cleanup "$T"
}

setup() {
	load common
	pg_env "$T/src"
	cd "$BATS_TEST_TMPDIR"
	SOCK=$BATS_TEST_TMPDIR/importer.sock
	CONFIG="{\"location\": \"postgres+bin://postgres@localhost\", \"host\": \"$T/src\"}"
}

teardown() {
	[ -z "${SOCAT:-}" ] || kill "$SOCAT" 2>/dev/null || true
}

# One importer behind $SOCK for one connection; its stderr in importer.err.
start_importer() {
	socat "UNIX-LISTEN:$SOCK" "EXEC:$PLAKAR_PG_BIN/plakar-pg-importer" 2>importer.err &
	SOCAT=$!
	for _ in $(seq 50); do [ -S "$SOCK" ] && return 0; sleep 0.1; done
	fail "socat did not listen"
}

client() {
	/usr/bin/python3 "$BATS_TEST_DIRNAME/grpc_client.py" "$T/stubs" "$SOCK" "$@"
}

@test "Init: origin host:port, type, root and flags STREAM|NEEDACK" {
	start_importer
	run -0 client init "$CONFIG"
	assert_output "{\"origin\": \"$T/src:5432\", \"type\": \"postgres+bin\", \"root\": \"/\", \"flags\": 12}"
}

@test "round trip over gRPC: Import, Open, acks; pg_verifybackup, start, pg_dumpall equal" {
	pg_dump_of "$T/src" > before.sql
	start_importer
	mkdir "$T/grpc"
	run -0 client import "$CONFIG" "$T/grpc/data"
	assert_output --regexp '^\{"records": [0-9]+, "files": [0-9]+, "finished": true, "manifest_version": 2\}$'
	run -0 pg_verifybackup "$T/grpc/data"
	[ "$(id -u)" != 0 ] || chown -R postgres: "$T/grpc"
	pg_start "$T/grpc"
	pg_dump_of "$T/grpc" > after.sql
	pg_stop "$T/grpc"
	run -0 diff before.sql after.sql
}

@test "a bad option: Init fails with uriparse's line" {
	start_importer
	run -2 client init '{"location": "postgres+bin://db.example.com/postgres"}'
	assert_output "grpc-error INVALID_ARGUMENT: uriparse: location: a subpath is not allowed: pg_basebackup backs up the whole cluster"
}

@test "Ping: the preflight, and its line when the server is down" {
	start_importer
	run -0 client ping "$CONFIG"
	assert_output pong
	kill "$SOCAT" 2>/dev/null || true; wait "$SOCAT" 2>/dev/null || true
	rm -f "$SOCK"
	start_importer
	run -2 client ping "{\"location\": \"postgres+bin://postgres@localhost\", \"host\": \"$T/nowhere\"}"
	# a preflight failure: never UNAVAILABLE, whose message Plakar replaces
	assert_output --partial "grpc-error FAILED_PRECONDITION: plakar-pg: cannot reach the server: "
}

@test "the wrapper dies mid-stream: a gRPC error, never finished" {
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
	mkdir "$TMPDIR"
	start_importer
	( for _ in $(seq 100); do
		p=$(pgrep -f "$PLAKAR_PG_BIN/plakar-pg backup -i progress=off" | head -n 1)
		if [ -n "$p" ]; then sleep 1; kill -9 "$p"; exit 0; fi
		sleep 0.1
	done ) &
	killer=$!
	run -2 client import "{\"location\": \"postgres+bin://postgres@localhost\", \"host\": \"$T/src\", \"max_rate\": \"2M\"}" "$T/dies"
	wait "$killer"
	assert_output --regexp '^grpc-error INTERNAL: '
	refute_output --partial finished
	# what the wrapper left behind stops once the importer lets go
	for _ in $(seq 50); do
		[ "$(psql -tAXc 'SELECT count(*) FROM pg_stat_replication')" = 0 ] && break
		sleep 0.2
	done
	run -0 psql -tAXc "SELECT (SELECT count(*) FROM pg_stat_replication), (SELECT count(*) FROM pg_replication_slots)"
	assert_output '0|0'
	# a SIGKILLed wrapper cannot clean up: the importer does it for it
	for _ in $(seq 50); do
		[ -z "$(find "$TMPDIR" -mindepth 1)" ] && break
		sleep 0.1
	done
	run -0 find "$TMPDIR" -mindepth 1
	assert_output ''
}

@test "the backup fails on the server: the wrapper's reason comes back" {
	start_importer
	run -2 client import "{\"location\": \"postgres+bin://norole@localhost\", \"host\": \"$T/src\"}" "$T/norole"
	assert_output --regexp '^grpc-error FAILED_PRECONDITION: plakar-pg: (cannot reach the server|authentication failed): .*role "norole" does not exist'
}

@test "the client hangs up: the importer exits, pg_basebackup does not linger" {
	start_importer
	run -0 client drop "{\"location\": \"postgres+bin://postgres@localhost\", \"host\": \"$T/src\", \"max_rate\": \"4M\"}" 20
	# this checkout's importer, not another run's
	for _ in $(seq 50); do
		pgrep -f "$PLAKAR_PG_BIN/plakar-pg-importer" >/dev/null || break
		sleep 0.1
	done
	run pgrep -f "$PLAKAR_PG_BIN/plakar-pg-importer"
	assert_equal "$status" 1
	sleep 0.5
	# a pg_basebackup still running would hold a WAL sender of this server
	run -0 psql -tAXc "SELECT count(*) FROM pg_stat_replication"
	assert_output 0
	run -0 psql -tAXc "SELECT count(*) FROM pg_replication_slots"
	assert_output 0
}

@test "the package: manifest, validator and programs that find each other" {
	run -0 make -s -C "$BATS_TEST_DIRNAME/.." package PKGDIR="$BATS_TEST_TMPDIR/pkg" OUT="$PLAKAR_PG_BIN"
	run -0 ls "$BATS_TEST_TMPDIR/pkg"
	assert_output "$(printf '%s\n' manifest.yaml pgmeta plakar-pg plakar-pg-importer schema.json tarjoin tarsplit uriparse)"
	for f in plakar-pg plakar-pg-importer tarsplit pgmeta uriparse; do
		[ -x "$BATS_TEST_TMPDIR/pkg/$f" ] || fail "$f has no run bit"
		grep -q "$f" "$BATS_TEST_TMPDIR/pkg/manifest.yaml" || fail "$f not in the manifest"
	done
	# the packaged importer runs the packaged wrapper, not one in PATH
	socat "UNIX-LISTEN:$SOCK" "EXEC:$BATS_TEST_TMPDIR/pkg/plakar-pg-importer" 2>importer.err &
	SOCAT=$!
	for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
	run -0 env PATH=/usr/bin:/bin /usr/bin/python3 "$BATS_TEST_DIRNAME/grpc_client.py" "$T/stubs" "$SOCK" ping "$CONFIG"
	assert_output pong
}

@test "the validator's options are the ones plakar-pg takes, no more" {
	schema=$BATS_TEST_DIRNAME/../share/schema.json
	declare -A sample=([location]=postgres+bin://h [host]=h [port]=5433 [username]=u
		[password]=p [pg_bin_dir]="$PGBIN" [ssl_mode]=require [ssl_cert]=/etc/hostname
		[ssl_key]=/etc/hostname [ssl_root_cert]=/etc/hostname
		[ssl_cert_data]='-----BEGIN X-----' [ssl_key_data]='-----BEGIN X-----'
		[ssl_root_cert_data]='-----BEGIN X-----' [connect_timeout]=5
		[checkpoint]=spread [label]=l [max_rate]=1M [progress]=off
		[wal_method]=none [hold_wal]=off)
	run -0 jq -r '.properties | keys[]' "$schema"
	keys=$output
	assert_equal "$(wc -l <<<"$keys")" "${#sample[@]}"
	for k in $keys; do
		[ -n "${sample[$k]+x}" ] || fail "no sample for $k"
		run plakar-pg options location=postgres+bin://h "$k=${sample[$k]}"
		[ "$status" -eq 0 ] || [ "$k" = location ] || fail "plakar-pg refuses $k: $output"
	done
	run -1 plakar-pg options location=postgres+bin://h sslmode=require
	assert_output "uriparse: unknown option: sslmode"
}
