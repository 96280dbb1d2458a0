#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# plakar-pg (plakar-pg/plakar-pg.sh): the whole backup through the wrapper, its preflight, its
# outcomes, WAL safety, and restore.

setup_file() {
	load ../helpers/common
	pg_suite_cluster --data-checksums
	psql -qX -v ON_ERROR_STOP=1 <<-'SQL'
		CREATE DATABASE load;
		CREATE TABLE keep (id int PRIMARY KEY, v text);
		INSERT INTO keep SELECT i, md5(i::text) FROM generate_series(1, 5000) i;
		CREATE ROLE norep LOGIN;
	SQL
	pgbench -i -s 2 -q load >/dev/null 2>&1
}

teardown_file() {
	pg_cleanup "$T"
}

setup() {
	load ../helpers/common
	pg_env "$T/src"
	cd "$BATS_TEST_TMPDIR"
	LOC="postgres+bin://postgres@localhost"
}

# restore_and_start FRAMES NAME: a data directory from FRAMES, verified
# and started with its socket in $T/NAME.
restore_and_start() {
	mkdir "$T/$2"
	[ "$(id -u)" != 0 ] || chown postgres: "$T/$2"
	as_pg plakar-pg restore "$T/$2/data" < "$1"
	run -0 pg_verifybackup "$T/$2/data"
	pg_start "$T/$2"
}

@test "round trip through the wrapper while pgbench writes" {
	pgbench -n -c 2 -T 60 load >/dev/null 2>&1 &
	load=$!
	sleep 1
	plakar-pg backup "$LOC" host="$PGHOST" label=roundtrip > frames
	kill "$load"; wait "$load" || true
	assert_equal "$(last_type frames)" end
	run -0 jq -r 'select(.path == "/manifest.json") | .type' < <(headers frames)
	assert_output file

	pg_dump_of "$T/src" > /dev/null
	PGHOST=$T/src pg_dumpall --exclude-database=load | grep -v -e '^\\restrict ' -e '^\\unrestrict ' > before.sql
	restore_and_start frames rt
	PGHOST=$T/rt pg_dumpall --exclude-database=load | grep -v -e '^\\restrict ' -e '^\\unrestrict ' > after.sql
	run -0 diff before.sql after.sql
	# pgbench's own invariant holds in the copy taken under load
	run -0 psql -h "$T/rt" -d load -tAXc "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history) AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT coalesce(sum(delta), 0) FROM pgbench_history), (SELECT count(*) FROM pgbench_history) > 0"
	assert_output 't|t'
	run -0 psql -h "$T/rt" -tAXc "SELECT label FROM pg_stat_file('backup_label.old') f, LATERAL (SELECT 1) x, LATERAL (SELECT substring(pg_read_file('backup_label.old') FROM 'LABEL: ([^\n]*)') AS label) l"
	assert_output roundtrip
	pg_stop "$T/rt"
}

@test "the README's backup and restore, exactly as printed" {
	awk '/^A backup and a restore with plakar-pg/ { f = 1 } /^A backup by hand/ { f = 0 }
		f && /^    \$ / { sub(/^    \$ /, ""); print }' "$BATS_TEST_DIRNAME/../../README" > readme.sh
	assert_equal "$(wc -l < readme.sh)" 3
	run -0 sh -eu readme.sh
	assert_output --partial "backup successfully verified"
	assert_equal "$(last_type mypg.frames)" end
}

@test "a slot holds the WAL while checkpoints and WAL switches race the backup" {
	# 1 MB segments and a tiny max_wal_size: the server recycles fast
	pg_cluster "$T/wal" --wal-segsize=1
	pg_stop "$T/wal"
	pg_start "$T/wal" "-c max_wal_size=4MB -c min_wal_size=2MB -c wal_keep_size=0"
	psql -h "$T/wal" -qX -c "CREATE TABLE churn (id int PRIMARY KEY, v text)"
	churn() {
		for i in $(seq 12); do
			psql -h "$T/wal" -qX -c "INSERT INTO churn SELECT g + $i * 10000, 'x' FROM generate_series(1, 2000) g" \
				-c "SELECT pg_switch_wal()" -c CHECKPOINT >/dev/null 2>&1
			sleep 0.2
		done
	}
	# without the slot, the server removes WAL the backup needs
	churn & c=$!
	run sh -c "plakar-pg backup -F 3 '$LOC' host='$T/wal' max_rate=4M hold_wal=off 3>st > /dev/null"
	wait "$c"
	assert_equal "$status" 3
	# told by where basetar was (past pg_control, no slot), not by words
	assert_equal "$(first_failure st)" "basetar wal-removed 3"
	[[ $(failure_message st) == "the server removed WAL the backup needed before it could send it: raise wal_keep_size, or hold the WAL with a slot (-S): "* ]] ||
		fail "$(cat st)"
	# with it, the same race is harmless
	churn & c=$!
	run -0 --separate-stderr sh -c "plakar-pg backup '$LOC' host='$T/wal' max_rate=4M > slot.frames"
	wait "$c"
	assert_equal "$(last_type slot.frames)" end
	pg_stop "$T/wal"
	restore_and_start slot.frames slot
	pg_stop "$T/slot"
	# and the slot went with the backup
	pg_start "$T/wal"
	run -0 psql -h "$T/wal" -tAXc 'SELECT count(*) FROM pg_replication_slots'
	assert_output 0
	pg_stop "$T/wal"
}

@test "the server stopped mid-backup: non-zero, no end frame, a clear message" {
	pg_cluster "$T/victim"
	( sleep 3; pg_stop "$T/victim" immediate ) &
	run -3 --separate-stderr sh -c "plakar-pg backup -F 3 '$LOC' host='$T/victim' max_rate=1M 3>st > victim.frames"
	wait
	assert_equal "$(first_failure st)" "basetar backup-failed 3"
	[[ $stderr == *"basetar: the base backup "* ]] || fail "$stderr"
	# an error frame where a header was due, or a payload cut short
	# (frames(5): never padded), and never the end frame
	last=$(last_type victim.frames)
	[ "$last" = error ] || [ "$last" = TRUNCATED ] || fail "last frame: $last"
}

@test "the consumer closes the pipe early: exit 6, the reader went away, nothing left running" {
	run bash -c "plakar-pg backup -F 3 '$LOC' host='$PGHOST' max_rate=4M 3>st 2>err | head -c 100000 > /dev/null; echo \${PIPESTATUS[0]}"
	assert_equal "$(tail -n 1 <<<"$output")" 6
	assert_equal "$(first_failure st)" "runpipe reader-gone 6"
	run -0 tail -n 1 err
	assert_output "runpipe: interrupted: the reader of the frames went away"
	sleep 1
	# a pg_basebackup still running would hold a WAL sender of this server
	run -0 psql -tAXc "SELECT count(*) FROM pg_stat_replication"
	assert_output 0
	run -0 psql -tAXc 'SELECT count(*) FROM pg_replication_slots'
	assert_output 0
}

@test "preflight: each failure has its line, its status line and exit status 2" {
	run -2 --separate-stderr plakar-pg backup -F 3 "$LOC" host="$T/nowhere" 3>st
	assert_regex "$stderr" "^pgprobe: cannot connect: connection to server on socket \"$T/nowhere/.s.PGSQL.5432\" failed: No such file or directory"
	assert_equal "$(first_failure st)" "pgprobe unreachable 2"
	run -2 --separate-stderr plakar-pg backup -F 3 "postgres+bin://norep@localhost" host="$PGHOST" 3>st
	assert_equal "$stderr" "pgprobe: role norep has no REPLICATION privilege: ALTER ROLE norep REPLICATION, or use another role (SQLSTATE 42501)"
	assert_equal "$(first_failure st)" "pgprobe no-replication 2"
	assert_equal "$(jq -r 'select(.status != "ok") | .sqlstate' st)" 42501
	run -1 --separate-stderr plakar-pg backup -F 3 "postgres+bin://h/db" 3>st
	assert_equal "$stderr" "uriparse: location: a subpath is not allowed: pg_basebackup backs up the whole cluster"
	assert_equal "$(first_failure st)" "uriparse usage 1"
	run -1 --separate-stderr plakar-pg backup -F 3 "$LOC" checkpoint=now 3>st
	assert_equal "$stderr" "uriparse: checkpoint: fast or spread"
	assert_equal "$(first_failure st)" "uriparse usage 1"
	# -F names an open descriptor above 2
	run -1 --separate-stderr plakar-pg backup -F 1 "$LOC"
	assert_equal "$stderr" "plakar-pg: -F 1: stdin, stdout and stderr carry other things"
	run -1 --separate-stderr plakar-pg backup -F 9 "$LOC"
	assert_equal "$stderr" "plakar-pg: -F 9: not an open descriptor"
}

@test "preflight: wal_level minimal, no free WAL sender, user tablespaces" {
	mkdir "$T/pf" "$T/pf/ts"
	[ "$(id -u)" != 0 ] || chown -R postgres: "$T/pf"
	pg_init "$T/pf"
	pg_start "$T/pf" "-c wal_level=minimal -c max_wal_senders=0"
	run -2 --separate-stderr plakar-pg backup -F 3 "$LOC" host="$T/pf" 3>st
	assert_equal "$stderr" "pgprobe: wal_level is minimal: set wal_level = replica and max_wal_senders > 0 in postgresql.conf and restart the server"
	assert_equal "$(first_failure st)" "pgprobe wal-level 2"
	pg_stop "$T/pf"
	pg_start "$T/pf" "-c max_wal_senders=1"
	PGHOST=$T/pf pg_basebackup -D - -F tar -X none -r 32k > /dev/null 2>&1 &
	hog=$!
	sleep 1
	run -2 --separate-stderr plakar-pg backup -F 3 "$LOC" host="$T/pf" 3>st
	kill "$hog"; wait "$hog" || true
	[[ $stderr == "pgprobe: no free WAL sender or connection (max_wal_senders, max_connections): "*"exceeds max_wal_senders (currently 1) (SQLSTATE 53300)" ]] || fail "$stderr"
	assert_equal "$(first_failure st)" "pgprobe no-wal-sender 2"
	psql -h "$T/pf" -qX -c "CREATE TABLESPACE ts1 LOCATION '$T/pf/ts'"
	sleep 1
	# pg_basebackup, which could not send them, is no producer any more
	run -1 --separate-stderr plakar-pg backup "$LOC" host="$T/pf" producer=pg_basebackup
	assert_equal "$stderr" "uriparse: unknown option: producer"
	pg_stop "$T/pf"
}

@test "a corrupt page on a cluster with data checksums: the XX001 outcome" {
	psql -qX -c "CREATE TABLE victim AS SELECT generate_series(1, 1000) AS n" -c CHECKPOINT
	rel=$(psql -tAXc "SELECT pg_relation_filepath('victim')")
	pg_stop "$T/src"
	# a byte inside the first page's tuples, not its header
	printf 'X' | dd of="$T/src/data/$rel" bs=1 seek=4000 conv=notrunc 2>/dev/null
	pg_start "$T/src"
	# a label that would turn the server's checks off, were it not quoted
	run -4 --separate-stderr sh -c "plakar-pg backup -F 3 '$LOC' host='$PGHOST' label=\"x', VERIFY_CHECKSUMS 0\" 3>st > bad.frames"
	[[ $stderr == *"checksum verification failed"* ]] || fail "$stderr"
	[[ $stderr == *"basetar: page checksum failure (SQLSTATE XX001): "* ]] || fail "$stderr"
	assert_equal "$(first_failure st)" "basetar checksum 4"
	assert_equal "$(jq -r 'select(.status != "ok") | .sqlstate' st)" XX001
	# an error frame, or a payload cut short; never the end frame
	last=$(last_type bad.frames)
	[ "$last" = error ] || [ "$last" = TRUNCATED ] || fail "last frame: $last"
	# basetar alone: its own status, and neither manifest nor tar end
	run -4 --separate-stderr sh -c "basetar > bad.tar"
	[[ $stderr == *"basetar: page checksum failure (SQLSTATE XX001): "* ]] || fail "$stderr"
	[ -s bad.tar ]
	run tar tf bad.tar
	refute_line backup_manifest
	psql -qX -c "DROP TABLE victim"
}

@test "restore refuses a non-empty directory, a live postmaster.pid, a cut stream" {
	plakar-pg backup "$LOC" host="$PGHOST" > good.frames
	mkdir full && touch full/x
	run -1 --separate-stderr plakar-pg restore full < good.frames
	assert_equal "$stderr" "tarjoin: full: directory not empty"
	[ "$(ls full)" = x ]
	# a live server's directory is not empty either: nothing written
	run -1 --separate-stderr plakar-pg restore "$T/src/data" < good.frames
	assert_equal "$stderr" "tarjoin: $T/src/data: directory not empty"
	[ ! -e "$T/src/data/manifest.json" ]
	head -c 5000000 good.frames > cut.frames
	run -1 --separate-stderr plakar-pg restore -F 3 cut < cut.frames 3> cut.status
	[[ $stderr == "tarjoin: "*"; cut is incomplete and will not start" ]] || fail "$stderr"
	assert_equal "$(first_failure cut.status)" "tarjoin damaged 1"
	[ ! -e cut/global/pg_control ]
	run -0 plakar-pg restore empty < good.frames
	assert_equal "$(stat -c %a empty)" 700
}

@test "a Plakar source name as the location: plakar source show -json -secrets, with hostile values intact" {
	load ../helpers/plakar
	plakar_env "$BATS_TEST_TMPDIR/plakar"
	# the role's password, as Plakar stores it: every quoting hazard
	pw='a "b" '\''c'\'' \d $(touch /tmp/pwned) `x` e f'
	psql -qX -v pw="$pw" <<<"CREATE ROLE hostile LOGIN REPLICATION PASSWORD :'pw'"
	plakar source add mypg "postgres+bin://hostile@localhost" host="$PGHOST" "password=$pw" \
		"label=it's \"$(printf 'q')\" \$(x)"
	run -0 plakar-pg options mypg
	assert_equal "$(jq -r .host <<<"$output")" "$PGHOST"
	assert_equal "$(jq -r .username <<<"$output")" hostile
	# the label reaches backup_label as given; the password lets it in
	run -0 sh -c 'plakar-pg backup mypg > named.frames'
	assert_equal "$(last_type named.frames)" end
	run -0 sh -c "tarjoin < named.frames | tar -xOf - backup_label"
	assert_line "LABEL: it's \"q\" \$(x)"
	[ ! -e /tmp/pwned ]
	psql -qX -c "DROP ROLE hostile"
	# a value with a newline is a bad option, refused before connecting
	plakar source add nl "postgres+bin://postgres@localhost" "label=a
START TIMELINE: 7"
	run -1 --separate-stderr plakar-pg backup nl
	assert_equal "$stderr" "uriparse: label: a control character (0x0a) is not allowed: a value is one line"
	run -1 --separate-stderr plakar-pg backup nosuch
	assert_equal "$(tail -n 1 <<<"$stderr")" "plakar-pg: nosuch: plakar source show failed"
	run -1 --separate-stderr env PATH=/usr/bin:/bin "$PLAKAR_PG_BIN/plakar-pg" backup mypg
	assert_equal "$stderr" "plakar-pg: mypg: not a postgres+bin:// location, and plakar is not installed to look it up as a source"
	plakar_stop
}

@test "a password: never in any argv, never on stderr, no file left behind" {
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
	mkdir "$TMPDIR"
	secret='S3cr3t-$(id)-pw'
	printf 'password=%s\n' "$secret" > pw
	( for _ in $(seq 40); do ps -eo args; sleep 0.1; done ) > ps.log &
	watcher=$!
	run -0 --separate-stderr sh -c "plakar-pg backup -i '$LOC' host='$PGHOST' max_rate=8M < pw > pw.frames"
	wait "$watcher"
	assert_equal "$(last_type pw.frames)" end
	grep -q "basetar -X fetch" ps.log || fail "the watcher saw no backup running"
	run grep -c -F "$secret" ps.log
	assert_output 0
	[[ $stderr != *"$secret"* ]]
	run -0 find "$TMPDIR" -mindepth 1
	assert_output ''
}

@test "stderr closed too (2>&1 | head): the cleanup still runs, exit 6, no file left" {
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
	mkdir "$TMPDIR"
	run bash -c "plakar-pg backup '$LOC' host='$PGHOST' max_rate=4M 2>&1 | head -c 1000 > /dev/null; echo \${PIPESTATUS[0]}"
	assert_equal "$(tail -n 1 <<<"$output")" 6
	sleep 1
	run -0 find "$TMPDIR" -mindepth 1
	assert_output ''
	run -0 psql -tAXc "SELECT (SELECT count(*) FROM pg_stat_replication), (SELECT count(*) FROM pg_replication_slots)"
	assert_output '0|0'
}

@test "the wrapper SIGKILLed: everything it started stops within seconds; the password was never in a named file" {
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
	mkdir "$TMPDIR"
	psql -qX -c "CREATE ROLE killpw LOGIN REPLICATION PASSWORD 'kill-pw-31337'"
	plakar-pg backup "postgres+bin://killpw:kill-pw-31337@localhost" host="$PGHOST" max_rate=2M >/dev/null 2>&1 &
	pid=$!
	wait_sql 'SELECT count(*) FROM pg_stat_replication' 1 || true
	# while it runs: the password in no file that has a name
	run grep -rl kill-pw-31337 "$TMPDIR"
	assert_output ''
	kill -9 "$pid"
	for _ in $(seq 100); do
		[ "$(psql -tAXc 'SELECT (SELECT count(*) FROM pg_stat_replication) + (SELECT count(*) FROM pg_replication_slots)')" = 0 ] &&
			! pgrep -f -- "-f [0-9]+ -m $TMPDIR" >/dev/null && break
		sleep 0.1
	done
	psql -qX -c "DROP ROLE killpw"
	run -0 psql -tAXc "SELECT (SELECT count(*) FROM pg_stat_replication), (SELECT count(*) FROM pg_replication_slots)"
	assert_output '0|0'
	run pgrep -af "$TMPDIR"
	assert_output ''
	run grep -rl kill-pw-31337 "$TMPDIR"
	assert_output ''
}

@test "bad options are refused before any connection: a newline or a return in a value, max_rate out of pg_basebackup's range, a label over 1024 bytes" {
	run -1 --separate-stderr plakar-pg backup "$LOC" host="$T/nowhere" "label=$(printf 'x\nSTART TIMELINE: 7')"
	assert_equal "$stderr" "uriparse: label: a control character (0x0a) is not allowed: a value is one line"
	run -1 --separate-stderr plakar-pg backup "$LOC" host="$T/nowhere" "label=$(printf 'x\rSTART TIMELINE: 7')"
	assert_equal "$stderr" "uriparse: label: a control character (0x0d) is not allowed: a value is one line"
	run -1 --separate-stderr plakar-pg backup "$LOC" "host=$(printf 'x\npassword=y')"
	assert_equal "$stderr" "uriparse: host: a control character (0x0a) is not allowed: a value is one line"
	run -1 --separate-stderr plakar-pg backup "$LOC" host="$T/nowhere" "label=$(printf '%01025d' 0)"
	assert_equal "$stderr" "uriparse: label: longer than 1024 bytes"
	# the server takes 1024 bytes, and so does basetar
	run -0 plakar-pg options "$LOC" "label=$(printf '%01024d' 0)"
	run -1 --separate-stderr basetar -l "$(printf '%01025d' 0)"
	assert_equal "$stderr" "basetar: -l (label): longer than 1024 bytes"
	# max_rate: options, a backup and basetar give one verdict for each
	for v in abc 0 1 31 1Mk 1025M 2000M 1048577 012; do
		run -1 --separate-stderr plakar-pg options "$LOC" "max_rate=$v"
		assert_equal "$stderr" "uriparse: max_rate: kB/s from 32 to 1048576, or with k or M (32M)"
		run -1 --separate-stderr plakar-pg backup "$LOC" host="$T/nowhere" "max_rate=$v"
		assert_equal "$stderr" "uriparse: max_rate: kB/s from 32 to 1048576, or with k or M (32M)"
		run -1 --separate-stderr basetar -r "$v"
		assert_equal "$stderr" "basetar: -r (max_rate): kB/s from 32 to 1048576, or with k or M (32M)"
	done
	for v in 32 32k 1M 1024M 1048576; do
		run -0 plakar-pg options "$LOC" "max_rate=$v"
		run -1 --separate-stderr basetar -r "$v" -X nowhere
		assert_equal "$stderr" "basetar: -X (wal_method): fetch or none"
	done
}

@test "two backups of one cluster at once: two slots, each its own name" {
	plakar-pg backup "$LOC" host="$PGHOST" max_rate=4M > /dev/null 2>&1 &
	one=$!
	plakar-pg backup "$LOC" host="$PGHOST" max_rate=4M > /dev/null 2>&1 &
	two=$!
	wait_sql 'SELECT count(*) FROM pg_replication_slots' 2 || true
	run -0 psql -tAXc "SELECT count(DISTINCT slot_name) FROM pg_replication_slots WHERE slot_name ~ '^plakar_pg_[0-9]+_[0-9a-f]{12}$'"
	kill "$one" "$two"
	wait "$one" "$two" || true
	assert_output 2
}

@test "SIGTERM to plakar-pg restore: tarjoin stops with it, exit 6, nothing startable" {
	plakar-pg backup "$LOC" host="$PGHOST" > all.frames
	mkfifo slow
	# half the stream, then a writer that holds the pipe open
	( head -c 2000000 all.frames; sleep 30 ) > slow &
	writer=$!
	plakar-pg restore out < slow 2> restore.err &
	pid=$!
	for _ in $(seq 50); do pgrep -f "tarjoin -C out" >/dev/null && break; sleep 0.1; done
	sleep 0.5
	kill -TERM "$pid"
	status=0
	wait "$pid" || status=$?
	kill "$writer" 2>/dev/null || true
	assert_equal "$status" 6
	run cat restore.err
	assert_output --partial "tarjoin: interrupted (signal 15); out is incomplete and will not start"
	sleep 0.5
	run pgrep -f "tarjoin -C out"
	assert_output ''
	[ ! -e out/global/pg_control ]
}

@test "the slot is on the backup's own connection: one WAL sender; ending it (pg_terminate_backend) fails the backup, exit 3" {
	plakar-pg backup -F 3 "$LOC" host="$PGHOST" max_rate=4M > slot.frames 2> slot.err 3>slot.st &
	pid=$!
	wait_sql "SELECT count(*) FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid WHERE s.temporary AND r.state = 'backup'" 1 ||
		fail "no temporary slot held by the WAL sender of the backup"
	run -0 psql -tAXc "SELECT count(*) FROM pg_stat_replication"
	assert_output 1
	psql -qXAt -c "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots" > /dev/null
	status=0
	wait "$pid" || status=$?
	assert_equal "$status" 3
	[ "$(last_type slot.frames)" != end ] || fail "an end frame"
	assert_equal "$(first_failure slot.st)" "basetar backup-failed 3"
	run -0 psql -tAXc "SELECT count(*) FROM pg_replication_slots"
	assert_output 0
}

@test "slots refused (max_replication_slots = 0): a warning from the check and basetar, the backup goes on; strict=on fails both, exit 2" {
	pg_cluster "$T/noslot"
	pg_stop "$T/noslot"
	pg_start "$T/noslot" "-c max_replication_slots=0"
	run -0 --separate-stderr plakar-pg check "$LOC" host="$T/noslot"
	assert_equal "$stderr" "pgprobe: warning: the server has max_replication_slots = 0: WAL cannot be held for the backup, and a busy server may remove WAL the backup needs"
	run -0 --separate-stderr sh -c "plakar-pg backup '$LOC' host='$T/noslot' > noslot.frames"
	assert_equal "$(last_type noslot.frames)" end
	# 53400 on 15, though max_replication_slots = 0 is 55000 in SQL's
	# pg_create_physical_replication_slot
	[[ $stderr == *"basetar: warning: WAL is not held for the backup: "*"(SQLSTATE 53400)"* ]] || fail "$stderr"
	run -2 --separate-stderr plakar-pg check -F 3 "$LOC" host="$T/noslot" strict=on 3>st
	assert_equal "$stderr" "pgprobe: the server has max_replication_slots = 0: WAL cannot be held for the backup, and a busy server may remove WAL the backup needs (strict=on)"
	assert_equal "$(first_failure st)" "pgprobe slot-refused 2"
	run -2 --separate-stderr sh -c "plakar-pg backup '$LOC' host='$T/noslot' strict=on > strict.frames"
	[ "$(last_type strict.frames)" != end ] || fail "an end frame"
	# basetar alone, strict: the refusal is its failure
	run -2 --separate-stderr sh -c "PGHOST='$T/noslot' basetar -F 3 -S -s 3>st > /dev/null"
	[[ $stderr == "basetar: cannot hold the WAL for the backup: "*"(SQLSTATE 53400)" ]] || fail "$stderr"
	assert_equal "$(first_failure st)" "basetar slot-refused 2"
	assert_equal "$(jq -r .sqlstate st)" 53400
	pg_stop "$T/noslot"
}

@test "strict=on: /manifest.json that would be incomplete fails the backup; pgmeta -s says why" {
	psql -qX -c "CREATE ROLE reponly LOGIN REPLICATION"
	run -0 --separate-stderr sh -c "plakar-pg backup postgres+bin://reponly@localhost host='$PGHOST' > lax.frames"
	assert_equal "$(last_type lax.frames)" end
	[[ $stderr == *"pgmeta: warning: "* ]] || fail "no warning from pgmeta: $stderr"
	run -2 --separate-stderr sh -c "plakar-pg backup -F 3 postgres+bin://reponly@localhost host='$PGHOST' strict=on 3>st > strict.frames"
	assert_equal "$(tail -n 1 <<<"$stderr")" "plakar-pg: /manifest.json would be incomplete (strict=on): grant the role pg_read_all_settings and CONNECT on each database, or let strict be off"
	assert_equal "$(first_failure st)" "plakar-pg manifest-incomplete 2"
	[ "$(last_type strict.frames)" != end ] || fail "an end frame"
	run -2 --separate-stderr env PGUSER=reponly pgmeta -s
	assert_output ''
	assert_regex "$(tail -n 1 <<<"$stderr")" '^pgmeta: [0-9]+ warnings?: the metadata is incomplete \(--strict\)$'
	psql -qX -c "DROP ROLE reponly"
}

@test "pgprobe -k: the server's clock over a replication connection, without SQL" {
	run -0 pgprobe -r -k "SHOW server_version_num"
	clock=$(sed -n 2p <<<"$output")
	now=$(psql -tAXc "SELECT floor(extract(epoch FROM clock_timestamp()))::bigint")
	[ $((now - clock)) -ge 0 ] && [ $((now - clock)) -le 5 ] || fail "clock $clock, server $now"
	run -1 pgprobe -k "SELECT 1"
}

@test "a server that goes silent mid-stream (its WAL sender stopped): exit 7 after silence_timeout, no end frame, nothing left" {
	plakar-pg backup -F 3 "$LOC" host="$PGHOST" max_rate=4M silence_timeout=3 > silent.frames 2> silent.err 3>silent.st &
	pid=$!
	wait_sql "SELECT count(*) FROM pg_stat_replication WHERE state = 'backup'" 1
	ws=$(psql -tAXc "SELECT pid FROM pg_stat_replication")
	sleep 1
	kill -STOP "$ws"
	start=$(date +%s)
	status=0
	wait "$pid" || status=$?
	took=$(($(date +%s) - start))
	kill -CONT "$ws"
	assert_equal "$status" 7
	[ "$took" -ge 2 ] && [ "$took" -le 10 ] || fail "ended after $took s"
	assert_equal "$(first_failure silent.st)" "basetar silence 7"
	run -0 grep '^basetar: ' silent.err
	assert_output "basetar: the server sent nothing for 3 s while sending the backup (-T): the backup is stopped"
	[ "$(last_type silent.frames)" != end ] || fail "an end frame"
	wait_sql "SELECT count(*) FROM pg_stat_replication" 0 || fail "a WAL sender is left"
	run -0 psql -tAXc "SELECT count(*) FROM pg_replication_slots"
	assert_output 0
}

@test "the start checkpoint never comes (the checkpointer stopped): basetar stops after -T with the silence status, 7" {
	ckpt=$(psql -tAXc "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
	psql -qXc "CREATE TABLE dirty AS SELECT generate_series(1, 1000) AS n"
	kill -STOP "$ckpt"
	run -7 --separate-stderr sh -c "basetar -T 2 > /dev/null"
	assert_equal "$stderr" "basetar: the server sent nothing for 2 s for the start checkpoint (-T): the backup is stopped"
	run --separate-stderr sh -c "plakar-pg backup -F 3 '$LOC' host='$PGHOST' silence_timeout=2 3>st > ck.frames"
	kill -CONT "$ckpt"
	assert_equal "$status" 7
	assert_equal "$(first_failure st)" "basetar silence 7"
	wait_sql "SELECT count(*) FROM pg_stat_replication" 0 || fail "a WAL sender is left"
	psql -qXc "DROP TABLE dirty"
}
