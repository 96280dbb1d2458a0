#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# The README's page for the DBA, its lines run as printed: the role and
# its grants, both pg_hba.conf lines and what each gives, an encrypted
# store, the systemd unit and timer (systemd-analyze verify, and the
# service's ExecStart line), the cron line's command, retention filtered
# to this source, and maintenance.

setup_file() {
	load ../helpers/common
	load ../helpers/plakar
	T=$(pg_tmpdir)
	export T
	pg_tcp_cluster "$T/src" bootstrap "unused-$RANDOM"
	pg_env "$T/src"
	export PGPORT=$PORT
	psql -qX -c "CREATE DATABASE appdb"
	# the README's role and grants, as printed
	while IFS= read -r sql; do
		psql -qX -v ON_ERROR_STOP=1 -c "$sql"
	done < <(dba_block 1)
	plakar_suite_plakar
}

teardown_file() {
	plakar_suite_end
}

setup() {
	load ../helpers/common
	load ../helpers/plakar
	plakar_test
	plakar pkg add "$PTAR" >/dev/null
}

teardown() {
	plakar_stop
	rm -rf "$W"
}

# The README's "For the DBA" section: its indented blocks, one per
# paragraph, numbered from 1; block N's lines.
dba_block() {
	awk -v want="$1" '
		/^For the DBA$/ { on = 1; getline; next }
		on && /^-+$/ { exit }
		on && /^    / {
			if (!inblock) { n++; inblock = 1 }
			if (n == want) { printf "%s", blanks; print substr($0, 5) }
			blanks = ""
			next
		}
		# a blank line inside a block, as in a unit file, stays in it
		on && /^$/ { if (inblock) blanks = blanks "\n"; next }
		on { inblock = 0; blanks = "" }
	' "$BATS_TEST_DIRNAME/../../README"
}

# A README line with this machine's names: the server, the paths, plakar.
localize() {
	sed -e "s#192\.0\.2\.10/32#127.0.0.1/32#g" \
		-e "s#192\.0\.2\.1:5432#127.0.0.1:$PORT#g" \
		-e "s#/etc/plakar-pg#$W/etc#g" \
		-e "s#/var/backups/pg#$W/store#g" \
		-e "s#/usr/local/bin/plakar#$(command -v plakar)#g" \
		-e 's/^# //'
}

# The lines of block N, localized, each run by bash; stops at the first failure.
run_block() {
	local line
	while IFS= read -r line; do
		run bash -c "$line"
		[ "$status" = 0 ] || fail "$line: exit $status: $output"
	done < <(dba_block "$1" | localize)
}

hba() {
	{
		printf 'local all postgres trust\nlocal replication postgres trust\n'
		dba_block 2 | localize | head -n "$1"
	} > "$T/src/data/pg_hba.conf"
	psql -qXc "SELECT pg_reload_conf()" >/dev/null
}

@test "the README's page: seven blocks, as the test reads them" {
	run -0 dba_block 1
	assert_line -n 0 "CREATE ROLE replicator LOGIN REPLICATION PASSWORD 'secret';"
	run -0 dba_block 2
	assert_line -n 0 --regexp '^host +replication +replicator '
	run -0 dba_block 4
	assert_line '[Service]'
	run -0 dba_block 7
	assert_line -n 2 --partial ' maintenance'
	run -0 dba_block 8
	assert_output ''
}

@test "the role and pg_hba.conf: the replication line alone backs up; the second completes /manifest.json" {
	run -0 psql -tAXc "SELECT rolreplication, pg_has_role('replicator', 'pg_read_all_settings', 'MEMBER'), has_database_privilege('replicator', 'appdb', 'CONNECT') FROM pg_roles WHERE rolname = 'replicator'"
	assert_output 't|t|t'
	loc="postgres+bin://replicator:secret@127.0.0.1:$PORT"
	hba 1
	run -0 --separate-stderr sh -c "plakar-pg backup '$loc' > one.frames"
	assert_equal "$(last_type one.frames)" end
	[[ $stderr == *"warning: /manifest.json has the basics only"* ]] || fail "$stderr"
	run -2 --separate-stderr sh -c "plakar-pg backup -F 3 '$loc' strict=on 3>st > strict.frames"
	assert_equal "$(first_failure st)" "plakar-pg manifest-incomplete 2"
	hba 2
	run -0 --separate-stderr sh -c "plakar-pg backup '$loc' strict=on > two.frames"
	assert_equal "$(last_type two.frames)" end
}

@test "an encrypted store, the systemd unit and timer, the cron line: each makes a snapshot" {
	hba 2
	run_block 3
	[ "$(stat -c %a "$W/etc/passphrase")" = 600 ] || fail "passphrase mode"
	mkdir "$W/units"
	dba_block 4 | localize > "$W/units/plakar-pg.service"
	dba_block 5 | localize > "$W/units/plakar-pg.timer"
	run -0 systemd-analyze verify "$W/units/plakar-pg.service" "$W/units/plakar-pg.timer"
	# the service's command, as systemd runs it: the credential copied
	exec_start=$(sed -n 's/^ExecStart=//p' "$W/units/plakar-pg.service")
	mkdir -m 700 "$W/cred"
	cp "$W/etc/passphrase" "$W/cred/passphrase"
	run env CREDENTIALS_DIRECTORY="$W/cred" bash -c "$exec_start"
	[ "$status" = 0 ] || fail "ExecStart: exit $status: $output"
	assert_line --regexp '^[0-9a-f]{8}: backup completed without errors'
	# the cron line: five fields of time, the user, the command
	cron=$(dba_block 6 | localize | cut -d ' ' -f 7-)
	run bash -c "$cron"
	[ "$status" = 0 ] || fail "cron: exit $status: $output"
	run -0 plakar -keyfile "$W/etc/passphrase" at "$W/store" ls
	assert_equal "${#lines[@]}" 2
	# the store is encrypted: no passphrase, no listing
	run plakar at "$W/store" ls < /dev/null
	[ "$status" != 0 ] || fail "an encrypted store listed without its passphrase"
}

@test "retention: prune prints, then -apply deletes this source's older snapshot only; maintenance" {
	hba 2
	run_block 3
	key=$W/etc/passphrase
	for _ in 1 2; do
		run -0 plakar -keyfile "$key" at "$W/store" backup @mypg
	done
	# another source in the same store: a directory
	mkdir "$W/files" && echo data > "$W/files/a"
	run -0 plakar -keyfile "$key" at "$W/store" backup "$W/files"
	run -0 plakar -keyfile "$key" at "$W/store" ls
	assert_equal "${#lines[@]}" 3
	before=$output
	dba_block 7 | localize > prune.sh
	# without -apply: nothing deleted
	run -0 bash -c "$(sed -n 1p prune.sh)"
	run -0 plakar -keyfile "$key" at "$W/store" ls
	assert_equal "$output" "$before"
	run -0 bash -c "$(sed -n 2p prune.sh)"
	run -0 plakar -keyfile "$key" at "$W/store" ls
	assert_equal "${#lines[@]}" 2
	# the newest of mypg's and the directory's are left
	newest=$(grep -v "$W/files" <<<"$before" | head -n 1)
	assert_line "$newest"
	assert_line --partial "$W/files"
	# Plakar v1.1.4 leaves each finished backup's shared lock in the
	# store until it is stale (10 minutes: kloset deletes it from a
	# goroutine the command does not wait for), and maintenance refuses
	# to run beside one; the README says to schedule it apart.  The test
	# does what the staleness check would do ten minutes later.
	# The lock's goroutine sometimes wins the race (seen under ASan):
	# then maintenance simply runs.
	run plakar -keyfile "$key" at "$W/store" maintenance
	if [[ $output == *"repository is already locked"* ]]; then
		rm -f "$W"/store/locks/*
	else
		[ "$status" = 0 ] || fail "maintenance: exit $status: $output"
	fi
	run bash -c "$(sed -n 3p prune.sh)"
	[ "$status" = 0 ] || fail "maintenance: exit $status: $output"
}
