#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# The library and the importer's service by their own entry points, no
# server: the test programs of t/unit (make testprogs, into build/test).

setup() {
	load ../helpers/common
	cd "$BATS_TEST_TMPDIR"
	export TMPDIR=$BATS_TEST_TMPDIR
}

@test "the library by its entry points: tar both ways, frames(5)'s rules, a status channel that returns" {
	run -0 --separate-stderr "$PLAKAR_PG_TESTBIN/lib_test"
	refute_output --partial "not ok"
	assert_line "24 passed, 0 failed"
	# what the library reported, it did not end the process for
	assert_equal "$stderr" $'lib_test: -F 2: not an open descriptor above 2\nlib_test: a test failure'
}

@test "the transport alone: grpc_echo's laws under grpc-go" {
	run -0 "$GRPCCLIENT" "$PLAKAR_PG_TESTBIN/grpc_echo" echo
	assert_line "echo: 8 laws hold"
	assert_line "plugin: exit 0"
}

@test "the service without HTTP/2: importer_test feeds it requests and reads what it queues" {
	run -0 --separate-stderr "$PLAKAR_PG_TESTBIN/importer_test" "$PLAKAR_PG_BIN"
	refute_output --partial "not ok"
	assert_line "15 passed, 0 failed"
}
