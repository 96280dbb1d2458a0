#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# tarsplit checks every member against backup_manifest as it streams:
# pg_verifybackup's 003_corruption cases, applied to a saved tar stream of
# a real pg_basebackup -D - -F tar -X fetch.

setup_file() {
	load ../helpers/common
	pg_suite_cluster
	psql -qX -c 'CREATE TABLE t AS SELECT generate_series(1, 50000) AS n'
	pg_basebackup -D - -F tar -X fetch -c fast > "$T/base.tar"
	pg_basebackup -D - -F tar -X fetch -c fast --manifest-checksums=SHA256 > "$T/sha.tar"
	pg_basebackup -D - -F tar -X fetch -c fast > "$T/second.tar"
	REL=$(psql -tAXc "SELECT pg_relation_filepath('t')")
	SYSID=$(pg_controldata "$T/src/data" | awk '/system identifier/ { print $NF }')
	export REL SYSID
	mkdir "$T/second"
	tar -C "$T/second" -xf "$T/second.tar" backup_manifest
}

teardown_file() {
	pg_cleanup "$T"
}

setup() {
	load ../helpers/common
	cd "$BATS_TEST_TMPDIR"
}

# verify_fails TAR MESSAGE: exit 2, MESSAGE on stderr, an error frame last.
verify_fails() {
	run -5 --separate-stderr sh -c "tarsplit < '$1' > frames"
	assert_equal "$stderr" "tarsplit: $2"
	run -0 last_type frames
	assert_output error
}

@test "the untouched stream passes, with CRC32C and with SHA256" {
	run -0 sh -c "tarsplit < '$T/base.tar' > frames"
	assert_equal "$(last_type frames)" end
	run -0 sh -c "tarsplit -a SHA256 < '$T/sha.tar' > frames"
	assert_equal "$(last_type frames)" end
}

@test "a byte changed inside a relation file" {
	$TARTOOL flip "$REL" < "$T/base.tar" > bad.tar
	verify_fails bad.tar "verification failed: 1 bad file; first: $REL: CRC32C checksum mismatch"
	last_frame frames > last
	run -0 jq -r .path last
	assert_output "/data/$REL"
}

@test "postgresql.auto.conf and recovery.signal are checked too: our streams never come from -R" {
	$TARTOOL flip postgresql.auto.conf < "$T/base.tar" > bad.tar
	verify_fails bad.tar "verification failed: 1 bad file; first: postgresql.auto.conf: CRC32C checksum mismatch"
}

@test "every member is checked, whatever its type: links and directories the manifest does not account for" {
	# a symlink at the path of a file already verified
	$TARTOOL link symlink "$REL" /etc/passwd < "$T/base.tar" > bad.tar
	verify_fails bad.tar "verification failed: 2 bad files; first: $REL: a symbolic link that the manifest does not account for"
	$TARTOOL link symlink base/1/extra /etc/passwd < "$T/base.tar" > bad.tar
	verify_fails bad.tar "verification failed: 1 bad file; first: base/1/extra: a symbolic link that the manifest does not account for"
	$TARTOOL link hardlink base/1/extra "$REL" < "$T/base.tar" > bad.tar
	verify_fails bad.tar "verification failed: 1 bad file; first: base/1/extra: a hard link, which pg_basebackup never sends"
	$TARTOOL link dir "$REL" < "$T/base.tar" > bad.tar
	verify_fails bad.tar "verification failed: 1 bad file; first: $REL: appears twice in the stream"
	# a tablespace's link is what pg_basebackup sends; a new directory holds nothing
	$TARTOOL link symlink pg_tblspc/16400 /srv/ts < "$T/base.tar" > ok.tar
	run -0 sh -c 'tarsplit < ok.tar > /dev/null'
	$TARTOOL link dir base/1/newdir < "$T/base.tar" > ok.tar
	run -0 sh -c 'tarsplit < ok.tar > /dev/null'
}

@test "a manifest of 20 000 files, one named with quotes, brackets and a backslash, verifies; one file more or less does not" {
	$TARTOOL many 20000 > many.tar
	run -0 sh -c 'tarsplit < many.tar > frames'
	run -0 last_frame frames
	assert_output '{"type":"end","records":20002,"bytes":'"$(jq -r .bytes <<<"$output")"'}'
	$TARTOOL remove 'base/1/we"ird]}{[\,' < many.tar > less.tar
	verify_fails less.tar 'verification failed: 1 bad file; first: base/1/we"ird]}{[\,: in the manifest but not in the backup'
}

@test "a byte changed, with SHA256 checksums" {
	$TARTOOL flip "$REL" < "$T/sha.tar" > bad.tar
	run -5 --separate-stderr sh -c "tarsplit -a sha256 < bad.tar > frames"
	assert_equal "$stderr" "tarsplit: verification failed: 1 bad file; first: $REL: SHA256 checksum mismatch"
}

@test "a member truncated" {
	$TARTOOL truncate "$REL" 100 < "$T/base.tar" > bad.tar
	size=$(tar -tvf "$T/base.tar" "$REL" | awk '{ print $3 }')
	verify_fails bad.tar "verification failed: 1 bad file; first: $REL: shorter than in the manifest ($((size - 100)) bytes, manifest says $size)"
}

@test "a member appended to" {
	$TARTOOL append PG_VERSION 5 < "$T/base.tar" > bad.tar
	verify_fails bad.tar "verification failed: 1 bad file; first: PG_VERSION: longer than in the manifest (8 bytes, manifest says 3)"
}

@test "a member removed" {
	$TARTOOL remove "$REL" < "$T/base.tar" > bad.tar
	verify_fails bad.tar "verification failed: 1 bad file; first: $REL: in the manifest but not in the backup"
}

@test "an extra member" {
	$TARTOOL extra base/1/99999 < "$T/base.tar" > bad.tar
	verify_fails bad.tar "verification failed: 1 bad file; first: base/1/99999: in the backup but not in the manifest"
}

@test "several bad files: the count and the first" {
	$TARTOOL remove "$REL" < "$T/base.tar" | $TARTOOL flip PG_VERSION > bad.tar
	verify_fails bad.tar "verification failed: 2 bad files; first: PG_VERSION: CRC32C checksum mismatch"
}

@test "a byte changed in backup_manifest" {
	$TARTOOL manifest-digit < "$T/base.tar" > bad.tar
	verify_fails bad.tar "backup_manifest is damaged: its Manifest-Checksum does not match its contents"
}

@test "backup_manifest missing" {
	$TARTOOL remove backup_manifest < "$T/base.tar" > bad.tar
	verify_fails bad.tar "backup_manifest is missing: the stream is incomplete or was made with --no-manifest"
}

@test "a manifest from another backup" {
	$TARTOOL replace backup_manifest "$T/second/backup_manifest" < "$T/base.tar" > bad.tar
	run -5 --separate-stderr sh -c "tarsplit < bad.tar > frames"
	assert_regex "$stderr" '^tarsplit: backup_manifest is from another backup: no WAL range starts at backup_label.s [0-9A-F]+/[0-9A-F]+ on timeline 1$'
}

@test "version 2 manifests: System-Identifier checked against pg_control" {
	$TARTOOL manifest-v2 "$SYSID" < "$T/base.tar" > v2.tar
	run -0 sh -c "tarsplit < v2.tar > frames"
	assert_equal "$(last_type frames)" end
	$TARTOOL manifest-v2 $((SYSID + 1)) < "$T/base.tar" > other.tar
	verify_fails other.tar "backup_manifest is from another cluster: system identifier $((SYSID + 1)), pg_control says $SYSID"
}

@test "a WAL segment missing from pg_wal" {
	seg=$(tar -tf "$T/base.tar" | grep -E '^pg_wal/[0-9A-F]{24}$' | head -n 1)
	$TARTOOL remove "$seg" < "$T/base.tar" > bad.tar
	verify_fails bad.tar "$seg is missing: archive_status says it was sent"
}

@test "a member after backup_manifest" {
	$TARTOOL late late < "$T/base.tar" > bad.tar
	run -3 --separate-stderr sh -c "tarsplit < bad.tar > frames"
	assert_equal "$stderr" "tarsplit: member after backup_manifest"
}

@test "SHA256 manifest read with CRC32C: refused, with the fix" {
	verify_fails "$T/sha.tar" "backup_manifest uses SHA256 checksums and tarsplit computed CRC32C: run tarsplit -a SHA256"
}

@test "-n: no verification, the damaged stream passes" {
	$TARTOOL flip "$REL" < "$T/base.tar" > bad.tar
	run -0 sh -c "tarsplit -n < bad.tar > frames"
	assert_equal "$(last_type frames)" end
}

@test "-w: a stream without its WAL is refused" {
	seg=$(tar -tf "$T/base.tar" | grep -E '^pg_wal/[0-9A-F]{24}$' | head -n 1)
	$TARTOOL remove "$seg" < "$T/base.tar" |
		$TARTOOL remove "pg_wal/archive_status/${seg#pg_wal/}.done" > nowal.tar
	run -0 sh -c "tarsplit < nowal.tar > frames"
	run -5 --separate-stderr sh -c "tarsplit -w < nowal.tar > frames"
	assert_equal "$stderr" "tarsplit: pg_wal has no WAL segment: the backup needs the WAL of its WAL-Ranges"
	run -0 sh -c "tarsplit -w < '$T/base.tar' > frames"
}
