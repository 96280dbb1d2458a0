#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# pgprobe as a diagnostic: the first field of each query, the server's
# words in its own language in the message, and a failed query's
# outcome.  The preflight's outcomes, each caused against a German
# server: t/outcomes.bats.

setup_file() {
	load ../helpers/common
	locale -a | grep -qix 'de_DE.utf8' ||
		fail "locale de_DE.UTF-8 missing: localedef -i de_DE -f UTF-8 de_DE.UTF-8 (sh dev/install.sh does)"
	pg_suite_cluster
	printf "lc_messages = 'de_DE.UTF-8'\n" >> "$T/src/data/postgresql.conf"
	pg_stop "$T/src"
	pg_start "$T/src"
}

teardown_file() {
	pg_cleanup "$T"
}

setup() {
	load ../helpers/common
	pg_env "$T/src"
	cd "$BATS_TEST_TMPDIR"
	export LC_ALL=de_DE.UTF-8 LANG=de_DE.UTF-8
}

@test "pgprobe: each query's first field, on a replication connection or not" {
	run -0 pgprobe -r "SHOW wal_level" "SHOW max_wal_senders"
	assert_output "$(printf 'replica\n4')"
	run -0 pgprobe -d postgres "SELECT 1 + 1" "SELECT NULL"
	assert_output "$(printf '2\n')"
}

@test "pgprobe: the server's words in its language, the outcome in the table's: query-failed, 2" {
	run -2 --separate-stderr pgprobe -F 3 "SELECT nonsense" 3>st
	[[ $stderr == "pgprobe: query 1 failed: Spalte »nonsense« existiert nicht (SQLSTATE 42703)" ]] || fail "$stderr"
	assert_equal "$(first_failure st)" "pgprobe query-failed 2"
	run -0 pgprobe -F 3 "SELECT 1" 3>st
	assert_equal "$(jq -c . st)" '{"program":"pgprobe","status":"ok","exit":0}'
}

@test "pgprobe -p: the preflight's findings as one JSON object" {
	run -0 --separate-stderr pgprobe -p -S
	assert_equal "$(jq -r 'keys | join(" ")' <<<"$output")" "clock data_directory_mode fresh_since max_replication_slots server_version_num tablespaces"
	assert_equal "$(jq -r .data_directory_mode <<<"$output")" 0700
	now=$(date +%s)
	clock=$(jq -r .clock <<<"$output")
	[ $((now - clock)) -ge -5 ] && [ $((now - clock)) -le 5 ] || fail "clock $clock, now $now"
	assert_equal "$(jq -r .fresh_since <<<"$output")" $((clock - 2))
	run -1 pgprobe -p "SELECT 1"
	run -1 pgprobe -S "SELECT 1"
}
