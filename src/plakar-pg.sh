#!/bin/sh
# plakar-pg: a physical backup of a whole PostgreSQL cluster as record
# frames (frames(5)) on stdout, and a data directory back from them.
#
#	plakar-pg backup [-i] [location] [key=value ...] > frames
#	plakar-pg check [-i] [location] [key=value ...]
#	plakar-pg options [-i] [location] [key=value ...]
#	plakar-pg restore directory < frames
#	plakar-pg relocate [-AO] [-B bindir] [-T old=new ...] directory
set -eu

prog=plakar-pg
# Every file of ours is private: options, passwords, stderr copies.
umask 077
# Exit statuses, one per outcome (plakar-pg(1)).
EX_USAGE=1 EX_PREFLIGHT=2 EX_BASEBACKUP=3 EX_CHECKSUM=4 EX_VERIFY=5
EX_INTERRUPTED=6 EX_SILENCE=7

# The tools of this checkout or installation come first.
here=$(cd "$(dirname "$0")" && pwd)
PATH=$here:$PATH
export PATH

# Set by make from the Makefile's VERSION.
version=@VERSION@

synopsis() {
	cat <<-EOF
		usage: $prog backup [-i] [location] [key=value ...] > frames
		       $prog check [-i] [location] [key=value ...]
		       $prog options [-i] [location] [key=value ...]
		       $prog restore directory < frames
		       $prog relocate [-AO] [-B bindir] [-T old=new ...] directory
	EOF
}

usage() {
	synopsis >&2
	exit "$EX_USAGE"
}

help() {
	synopsis
	cat <<-EOF

		Usage: a physical backup of a whole PostgreSQL cluster as record
		frames on stdout (backup), its preflight alone (check), the options
		checked and normalized (options), a data directory back from frames
		(restore), its tablespaces placed, the copy verified (relocate).
		See plakar-pg(1).
	EOF
	exit 0
}

# A closed stderr must not stop the cleanup: SIGPIPE is ignored (the
# programs we run get it back, see bg) and a failed write is let go.
trap '' PIPE

say() {
	printf '%s: %s\n' "$prog" "$*" >&2 || true
}

# What runs in the background must not outlive us: SIGTERM from the
# kernel when this shell dies, even by SIGKILL; SIGPIPE as usual.  Only
# ever called as "guarded cmd ... &": the & forks, the redirections open
# in the child (FIFOs among them), and exec keeps this shell its parent.
guarded() {
	exec setpriv --pdeathsig TERM -- env --default-signal=PIPE "$@"
}

die() {
	status=$1
	shift
	say "$*"
	exit "$status"
}

# The first line of a file, without a tool's "name: error: " prefix.
first_error() {
	sed -n -e 's/^[a-z_]*: error: //' -e 's/^[a-z_]*: //' -e '/./{p;q;}' "$1"
}

# An error frame where a header is due, so that a consumer fails.
error_frame() {
	jq -nc --arg m "$1" '{type: "error", message: $m}'
}

cleanup() {
	[ -z "${meta_pid:-}" ] || kill "$meta_pid" 2>/dev/null || true
	[ -z "${bb_pid:-}" ] || kill "$bb_pid" 2>/dev/null || true
	[ -z "${ts_pid:-}" ] || kill "$ts_pid" 2>/dev/null || true
	[ -z "${tee_pid:-}" ] || kill "$tee_pid" 2>/dev/null || true
	rm -rf "$work"
}

interrupted() {
	trap - HUP INT TERM
	say "interrupted: the backup is incomplete"
	cleanup
	exit "$EX_INTERRUPTED"
}

# A Plakar source's options, from plakar source show -json -secrets: in
# memory and pipes only, never a file.
source_options() {
	command -v plakar >/dev/null 2>&1 ||
		die "$EX_USAGE" "$1: not a postgres+bin:// location, and plakar is not installed to look it up as a source"
	json=$(plakar source show -json -secrets "$1" 2>"$work/source.err") ||
		die "$EX_USAGE" "$1: plakar source show failed: $(first_error "$work/source.err")"
	lines=$(printf '%s\n' "$json" | jq -r --arg n "$1" '
		(.[$n] // error("no such source")) | to_entries[] |
		(.value | tostring) as $v |
		if $v | test("\n") then error("\(.key): a value may not hold a newline")
		else "\(.key)=\($v)" end' 2>"$work/jq.err") ||
		die "$EX_USAGE" "$1: $(sed -n 's/^jq: error ([^)]*): //p' "$work/jq.err")"
	take_options <<-EOF
		$lines
	EOF
}

# A warning, or with strict=on the end of the backup (or of the check).
warn_or_die() {
	[ "$strict" != on ] || die "$EX_PREFLIGHT" "$* (strict=on)"
	say "warning: $*"
}

preflight() {
	# A replication connection proves the address, the authentication,
	# pg_hba's replication line, the REPLICATION privilege and a free
	# WAL sender at once, and reads the settings and the server's clock
	# without SQL, so that a role limited to replication gets all of it.
	# pgprobe says which failed by its exit status, read from SQLSTATEs,
	# so that no server's language matters.
	probe=0
	pgprobe -r -k "SHOW wal_level" "SHOW server_version_num" \
		"SHOW data_directory_mode" "SHOW max_replication_slots" \
		>"$work/preflight.out" 2>"$work/preflight.err" || probe=$?
	msg=$(first_error "$work/preflight.err")
	role=${PGUSER:-$(id -un)}
	case $probe in
	0) ;;
	2) die "$EX_PREFLIGHT" "no password supplied: the server wants one for role $role; give it in the location, the password option or the Plakar source" ;;
	3) die "$EX_PREFLIGHT" "authentication failed: $msg" ;;
	4) die "$EX_PREFLIGHT" "the server does not admit role $role from this host: $msg" ;;
	5) die "$EX_PREFLIGHT" "role $role has no REPLICATION privilege: ALTER ROLE ... REPLICATION, or use another role" ;;
	6)
		# wal_level minimal comes with max_wal_senders = 0.
		if [ "$(pgprobe "SHOW wal_level" 2>/dev/null)" = minimal ]; then
			die "$EX_PREFLIGHT" "wal_level is minimal: set wal_level = replica and max_wal_senders > 0 in postgresql.conf and restart the server"
		fi
		die "$EX_PREFLIGHT" "no free WAL sender or connection (max_wal_senders, max_connections): $msg" ;;
	*) die "$EX_PREFLIGHT" "cannot reach the server: $msg" ;;
	esac
	wal_level=$(sed -n 1p "$work/preflight.out")
	server_num=$(sed -n 2p "$work/preflight.out")
	# The data directory's own mode (0700, or 0750 with group access),
	# for the snapshot's root record.
	data_mode=$(sed -n 3p "$work/preflight.out")
	max_slots=$(sed -n 4p "$work/preflight.out")
	# Seconds since the epoch, from a keepalive: empty if unknown.
	server_clock=$(sed -n 5p "$work/preflight.out")
	[ "$wal_level" != minimal ] ||
		die "$EX_PREFLIGHT" "wal_level is minimal: set wal_level = replica in postgresql.conf and restart the server"
	server_major=$((server_num / 10000))
	[ "$server_major" -ge 13 ] ||
		die "$EX_PREFLIGHT" "the server is PostgreSQL $server_major: plakar-pg needs 13 or later (backup manifests)"
	if [ "$wal_method" = fetch ] && [ "$hold_wal" = on ] && [ "$max_slots" = 0 ]; then
		warn_or_die "the server has max_replication_slots = 0: WAL cannot be held for the backup, and a busy server may remove WAL the backup needs"
	fi
	[ -n "$server_clock" ] ||
		warn_or_die "cannot read the server's clock: every file is marked as changed, and Plakar's cache will spare no read"
	# In-place tablespaces need SQL to be seen before the backup; a role
	# limited to replication skips this, and basetar refuses one itself
	# when the server's list shows it.
	spc_oids=''
	if sql=$(pgprobe -d postgres \
		"SELECT string_agg(spcname, ', ') FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global') AND pg_tablespace_location(oid) !~ '^/'" \
		"SELECT string_agg(oid::text, ',') FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global')" \
		2>/dev/null); then
		in_place=$(printf '%s\n' "$sql" | sed -n 1p)
		# basetar checks the server's list has each of them
		spc_oids=$(printf '%s\n' "$sql" | sed -n 2p)
		[ -z "$in_place" ] ||
			die "$EX_PREFLIGHT" "tablespace $in_place is in place (allow_in_place_tablespaces): a base backup would leave its files out; move its objects to a tablespace with an absolute location"
	fi
}

# Files modified since this time may change again within the second that
# their tar header names: tarsplit -f marks them, so that Plakar's cache
# never reuses an earlier copy of one.  The server's clock, whose time the
# files carry, read by the preflight over the replication connection
# before the backup starts (earlier only marks more files), less a margin
# for the file system's coarser clock.  Unknown, every file is marked.
FRESH_MARGIN=2
fresh_since() {
	if [ -n "${server_clock:-}" ]; then
		printf '%s\n' $((server_clock - FRESH_MARGIN))
	else
		printf '0\n'
	fi
}

# pgmeta runs while the preflight and the slot are set up; then its
# outcome is read, the basics put in its place if it failed.
metadata_start() {
	set -- -b "$client" -o "$work/manifest.json"
	[ "$strict" != on ] || set -- "$@" -s
	guarded pgmeta "$@" 2>"$work/pgmeta.err" &
	meta_pid=$!
}

metadata() {
	meta_status=0
	wait "$meta_pid" || meta_status=$?
	meta_pid=
	# Its warnings, once the preflight has had its say.
	cat "$work/pgmeta.err" >&2
	if [ "$meta_status" -eq 0 ]; then
		return 0
	fi
	[ "$strict" != on ] ||
		die "$EX_PREFLIGHT" "/manifest.json would be incomplete (strict=on): grant the role pg_read_all_settings and CONNECT on each database, or let strict be off"
	say "warning: /manifest.json has the basics only"
	jq -n --arg now "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg host "$PGHOST" \
		--arg port "$PGPORT" --arg bb "$client" '{version: 2,
		created_at: $now, connector: "postgresql+bin", host: $host,
		port: $port, basetar_version: $bb,
		dump_format: "basebackup"}' >"$work/manifest.json"
}

# A backup option, not a connection one: set it and say so.
backup_option() {
	case $1 in
	checkpoint=fast|checkpoint=spread) checkpoint=${1#*=} ;;
	checkpoint=*) die "$EX_USAGE" "checkpoint: fast or spread" ;;
	label=*)
		label=${1#*=}
		# the server's limit (MAXPGPATH)
		[ "$(printf '%s' "$label" | wc -c)" -le 1024 ] ||
			die "$EX_USAGE" "label: longer than the server's 1024 bytes" ;;
	max_rate=*)
		max_rate=${1#*=}
		case $max_rate in
		'' | *[!0-9kM]* | *[kM]*[0-9kM]* | [kM]*)
			die "$EX_USAGE" "max_rate: a number of kB/s, or with k or M (32M)" ;;
		esac ;;
	progress=auto|progress=on|progress=off) progress=${1#*=} ;;
	progress=*) die "$EX_USAGE" "progress: auto, on or off" ;;
	wal_method=fetch|wal_method=none) wal_method=${1#*=} ;;
	wal_method=*) die "$EX_USAGE" "wal_method: fetch or none (stream cannot go to one stdout stream)" ;;
	hold_wal=on|hold_wal=off) hold_wal=${1#*=} ;;
	hold_wal=*) die "$EX_USAGE" "hold_wal: on or off" ;;
	strict=on|strict=off) strict=${1#*=} ;;
	strict=*) die "$EX_USAGE" "strict: on or off" ;;
	silence_timeout=*)
		silence=${1#*=}
		case $silence in
		'' | *[!0-9]* | ???????*)
			die "$EX_USAGE" "silence_timeout: seconds, at most 604800 (0: no limit)" ;;
		esac
		[ "$silence" -le 604800 ] ||
			die "$EX_USAGE" "silence_timeout: seconds, at most 604800 (0: no limit)" ;;
	# The plugin's own (plakar-pg-importer(1)): nothing to do here.
	stall_timeout=*) ;;
	*) return 1 ;;
	esac
}

nl='
'
# One key=value: a backup option is set, a connection one kept for
# uriparse.  No value may hold a newline: pgpass, backup_label and these
# lines are line formats.
add_option() {
	case $1 in
	*"$nl"*) die "$EX_USAGE" "${1%%=*}: a value may not hold a newline" ;;
	esac
	backup_option "$1" || conn_opts=$conn_opts$1$nl
}

# Lines of key=value on stdin.
take_options() {
	while IFS= read -r line || [ -n "$line" ]; do
		[ -z "$line" ] || add_option "$line"
	done
}

# [-i] [location] [key=value ...]: the libpq environment, evaluated, and
# the backup options set.  With -i, stdin adds lines of key=value, the
# location among them if it is not an argument.
connect_options() {
	checkpoint=fast label='' max_rate='' progress=auto wal_method=fetch
	hold_wal=on strict=off silence=600
	from_stdin=''
	OPTIND=1
	while getopts i opt; do
		case $opt in
		i) from_stdin=yes ;;
		*) usage ;;
		esac
	done
	shift $((OPTIND - 1))
	location=''
	# A URI (even one with '=' in its password) or a source name;
	# key=value is an option.
	case ${1:-} in
	'') ;;
	*=*)
		case ${1%%=*} in
		*://*) location=$1; shift ;;
		esac ;;
	*) location=$1; shift ;;
	esac
	[ -n "$location" ] || [ $# -gt 0 ] || [ -n "$from_stdin" ] || usage

	work=$(mktemp -d "${TMPDIR:-/tmp}/plakar-pg.XXXXXX")
	trap cleanup EXIT
	trap interrupted HUP INT TERM

	# Every connection option goes to uriparse on its stdin, from memory
	# through a here-document: none is on a command line or in a file.
	conn_opts=
	case $location in
	'' | *://*) ;;
	*) source_options "$location"
	   location='' ;;
	esac
	[ -z "$location" ] || add_option "location=$location"
	for arg; do
		add_option "$arg"
	done
	[ -z "$from_stdin" ] || take_options
	if [ -n "${json_only:-}" ]; then
		TMPDIR=$work uriparse -i -j <<-EOF || exit "$EX_USAGE"
			$conn_opts
		EOF
		exit 0
	fi
	if [ -n "${want_json:-}" ]; then
		TMPDIR=$work uriparse -i -j >"$work/options.json" <<-EOF || exit "$EX_USAGE"
			$conn_opts
		EOF
	fi
	out=$(TMPDIR=$work uriparse -i <<-EOF
		$conn_opts
	EOF
	) || exit "$EX_USAGE"
	conn_opts=
	eval "$out"
	# The password, and a private key given as data, in unlinked files
	# held open on fds 4 and 5: libpq reads them through /proc/self/fd,
	# and they are gone with the last process that holds them, however
	# it ends.
	if [ -n "${PGPASSFILE:-}" ] && [ -f "$PGPASSFILE" ]; then
		exec 4<"$PGPASSFILE"
		rm -f "$PGPASSFILE"
		PGPASSFILE=/proc/self/fd/4
	fi
	case ${PGSSLKEY:-} in
	"${PLAKAR_PG_TMPDIR:-/nonexistent}"/*)
		exec 5<"$PGSSLKEY"
		rm -f "$PGSSLKEY"
		PGSSLKEY=/proc/self/fd/5 ;;
	esac
	# What makes the tar, and its version, for pgmeta.
	client=$(basetar --version)
}

# The preflight; once it passed, the options as plakar-pg options prints
# them, for the plugin's Init.
check() {
	want_json=yes
	connect_options "$@"
	preflight
	cat "$work/options.json"
}

# The options checked and normalized, as JSON, the password masked.
options() {
	json_only=yes
	connect_options "$@"
}

backup() {
	connect_options "$@"

	metadata_start
	preflight
	metadata

	# basetar holds the WAL itself, with a temporary slot on the
	# connection that runs the backup (basetar(1)).
	set -- basetar -X "$wal_method" -c "$checkpoint" -T "$silence"
	[ "$wal_method" != fetch ] || [ "$hold_wal" != on ] || set -- "$@" -S
	[ "$strict" != on ] || set -- "$@" -s
	[ -z "$spc_oids" ] || set -- "$@" -t "$spc_oids"
	[ -z "$max_rate" ] || set -- "$@" -r "$max_rate"
	[ -z "$label" ] || set -- "$@" -l "$label"
	if [ "$progress" = on ] || { [ "$progress" = auto ] && [ -t 2 ]; }; then
		set -- "$@" -P
	fi
	wal_flag=
	[ "$wal_method" != fetch ] || wal_flag=-w

	# basetar | tarsplit, each waited for by its own pid, basetar's
	# stderr both shown and kept for what went wrong.
	mkfifo "$work/tar" "$work/bb.stderr"
	guarded tee "$work/bb.err" <"$work/bb.stderr" >&2 &
	tee_pid=$!
	guarded "$@" >"$work/tar" 2>"$work/bb.stderr" &
	bb_pid=$!
	since=$(fresh_since)
	guarded tarsplit $wal_flag -r "$data_mode" -f "$since" -m "$work/manifest.json" \
		-e "$work/end" <"$work/tar" 2>"$work/ts.err" &
	ts_pid=$!
	ts_status=0
	wait "$ts_pid" || ts_status=$?
	ts_pid=
	bb_status=0
	wait "$bb_pid" || bb_status=$?
	bb_pid=
	wait "$tee_pid" || true
	tee_pid=
	cat "$work/ts.err" >&2

	# Whoever reads the frames went away: nothing else matters then.
	[ "$ts_status" -ne 141 ] ||
		die "$EX_INTERRUPTED" "interrupted: the reader of the frames went away"
	# tarsplit stopped first: the producer only died of the closed pipe.
	if [ "$ts_status" -ne 0 ] && [ "$bb_status" -eq 141 ]; then
		case $ts_status in
		2) die "$EX_VERIFY" "the backup does not match its backup_manifest: $(first_error "$work/ts.err")" ;;
		*) die "$EX_BASEBACKUP" "$(first_error "$work/ts.err")" ;;
		esac
	fi
	if [ "$bb_status" -ne 0 ]; then
		status=$EX_BASEBACKUP
		if [ "$bb_status" -gt 128 ]; then
			msg="basetar was killed by signal $((bb_status - 128))"
		else
			# its last line, after any progress line's returns
			reason=$(tail -n 1 "$work/bb.err" | tr '\r' '\n' |
				sed -n -e 's/^basetar: //' -e '$p')
			# basetar's exit status says what failed, the SQLSTATE
			# in its line why (basetar(1)).
			case $bb_status in
			4) status=$EX_CHECKSUM
			   msg="page checksum failure (SQLSTATE XX001): the data arrived but is corrupt; the cluster needs repair before it can be backed up" ;;
			5) status=$EX_SILENCE
			   msg="the server sent nothing for $silence s (silence_timeout): the backup is stopped" ;;
			*) msg="basetar failed (exit $bb_status): $reason" ;;
			esac
		fi
		# tarsplit may have seen a whole stream and said nothing.
		[ "$ts_status" -ne 0 ] || error_frame "$msg"
		die "$status" "$msg"
	fi
	case $ts_status in
	0) ;;
	2) die "$EX_VERIFY" "the backup does not match its backup_manifest" ;;
	*) die "$EX_BASEBACKUP" "the tar stream from basetar was broken" ;;
	esac
	cat "$work/end"
}

restore() {
	[ $# -eq 1 ] || usage
	dir=$1
	if [ -e "$dir/postmaster.pid" ]; then
		die "$EX_USAGE" "$dir: postmaster.pid is there: a server may be running on it; stop it, or restore to a fresh directory"
	fi
	if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
		die "$EX_USAGE" "$dir: not empty: restore into a new or empty directory"
	fi
	# In the background, so that a signal reaches us now and stops it;
	# its stdin, which an asynchronous command would lose, through fd 6.
	exec 6<&0
	guarded tarjoin -C "$dir" <&6 6<&- &
	tj_pid=$!
	trap 'kill "$tj_pid" 2>/dev/null; wait "$tj_pid" || true; say "interrupted: $dir is incomplete and will not start"; exit "$EX_INTERRUPTED"' HUP INT TERM
	tj_status=0
	wait "$tj_pid" || tj_status=$?
	trap - HUP INT TERM
	[ "$tj_status" -eq 0 ] ||
		die "$EX_USAGE" "restore failed: the backup is incomplete or damaged; $dir is not usable"
}

# The major version a PostgreSQL program prints (--version).
major_of() {
	LC_ALL=C "$1" --version 2>/dev/null |
		sed -n 's/.*(PostgreSQL) \([0-9][0-9]*\).*/\1/p'
}

# The value of a setting in the copy's configuration: the last line
# that sets it, postgresql.auto.conf after postgresql.conf.
conf_value() {
	cat "$dir/postgresql.conf" "$dir/postgresql.auto.conf" 2>/dev/null |
		sed -n "s/^[[:space:]]*$1[[:space:]]*=\{0,1\}[[:space:]]*'\{0,1\}\([^'#[:space:]]*\).*/\1/p" |
		tail -n 1
}

# The new place of the tablespace at $1, from -T or -O; checked, so
# that nothing of the source's can be written to: absolute, outside the
# copy, absent or empty.
target_of() {
	new=
	for map in $maps; do
		[ "${map%%=/*}" != "$1" ] || new=/${map#*=/}
	done
	[ -n "$new" ] || [ -z "$original" ] || new=$1
	[ -n "$new" ] ||
		die "$EX_USAGE" "tablespace $oid ($1): no -T $1=NEW for it (or -O to put it back there, if that is absent or empty)"
	case $new/ in
	"$dir"/*) die "$EX_USAGE" "$new: inside the data directory; a tablespace goes elsewhere" ;;
	esac
	if [ -e "$new" ] || [ -L "$new" ]; then
		if [ ! -d "$new" ] || [ -L "$new" ] || [ -n "$(ls -A "$new")" ]; then
			die "$EX_USAGE" "$new: not an empty directory; a tablespace goes to a new or empty one (the source's own would be overwritten)"
		fi
	fi
	printf '%s\n' "$new"
}

# Tablespaces to their places, pg_tblspc/OID linked to each, the copy
# verified, tablespace_map removed: the restored copy starts, and opens
# nothing of the source's.
relocate() {
	maps='' original='' archive_off='' bindir=''
	OPTIND=1
	while getopts AB:OT: opt; do
		case $opt in
		A) archive_off=yes ;;
		B) bindir=$OPTARG ;;
		O) original=yes ;;
		T)
			case $OPTARG in
			/*=/*) ;;
			*) die "$EX_USAGE" "-T $OPTARG: OLD=NEW, both absolute paths" ;;
			esac
			case $OPTARG in
			*[[:space:]]*) die "$EX_USAGE" "-T: paths with white space are not supported" ;;
			esac
			maps="$maps $OPTARG" ;;
		*) usage ;;
		esac
	done
	shift $((OPTIND - 1))
	[ $# -eq 1 ] || usage
	dir=$(cd "$1" 2>/dev/null && pwd) ||
		die "$EX_USAGE" "$1: no such directory"
	if [ ! -f "$dir/PG_VERSION" ] || [ ! -f "$dir/backup_manifest" ]; then
		die "$EX_USAGE" "$dir: not a restored backup (no PG_VERSION or backup_manifest)"
	fi
	[ ! -e "$dir/postmaster.pid" ] ||
		die "$EX_USAGE" "$dir: postmaster.pid is there: the copy has been started; relocate only a copy just restored"
	major=$(cat "$dir/PG_VERSION")
	if [ -n "$bindir" ]; then
		[ -x "$bindir/postgres" ] ||
			die "$EX_USAGE" "$bindir: no postgres there"
		[ "$(major_of "$bindir/postgres")" = "$major" ] ||
			die "$EX_USAGE" "$bindir/postgres is PostgreSQL $(major_of "$bindir/postgres") and the copy is $major: use PostgreSQL $major's binaries"
	fi
	if [ ! -f "$dir/tablespace_map" ]; then
		grep -q '"Path": "tablespace_map"' "$dir/backup_manifest" &&
			die "$EX_USAGE" "$dir: already relocated (tablespace_map is gone); nothing done"
		[ -z "$maps" ] ||
			die "$EX_USAGE" "$dir: the copy has no tablespaces, and -T names some"
	fi
	owner=$(stat -c %u:%g "$dir")

	# Every target checked before anything moves.
	moves=
	if [ -f "$dir/tablespace_map" ]; then
		! grep -q "\\\\" "$dir/tablespace_map" ||
			die "$EX_USAGE" "tablespace_map: a path with a backslash, newline or return; place that tablespace by hand"
		while read -r oid old; do
			if [ ! -d "$dir/pg_tblspc/$oid" ] || [ -L "$dir/pg_tblspc/$oid" ]; then
				die "$EX_USAGE" "pg_tblspc/$oid: not the restored directory of tablespace $old"
			fi
			new=$(target_of "$old") || exit
			case " $moves " in
			*" $oid=$new "*|*"=$new "*) die "$EX_USAGE" "$new: the target of two tablespaces" ;;
			esac
			moves="$moves $oid=$new"
		done <"$dir/tablespace_map"
		for map in $maps; do
			cut -d ' ' -f 2- "$dir/tablespace_map" | grep -Fxq -- "${map%%=/*}" ||
				die "$EX_USAGE" "-T $map: no tablespace of the copy was at ${map%%=/*}"
		done
	fi

	for move in $moves; do
		oid=${move%%=*} new=${move#*=}
		mkdir -p "$new"
		for entry in "$dir/pg_tblspc/$oid"/* "$dir/pg_tblspc/$oid"/.[!.]*; do
			[ ! -e "$entry" ] || mv "$entry" "$new/"
		done
		rmdir "$dir/pg_tblspc/$oid"
		chown -R "$owner" "$new"
		chmod 700 "$new"
		ln -s "$new" "$dir/pg_tblspc/$oid"
		chown -h "$owner" "$dir/pg_tblspc/$oid"
		say "tablespace $oid: $new"
	done

	verify_copy
	rm -f "$dir/tablespace_map"

	case $(conf_value archive_mode) in
	on|always|true|yes|1)
		if [ -n "$archive_off" ]; then
			printf "archive_mode = 'off'\n" >>"$dir/postgresql.auto.conf"
			say "archive_mode = 'off' set in the copy's postgresql.auto.conf"
		else
			say "warning: the copy archives WAL (archive_mode = $(conf_value archive_mode)): started as it is, it would push its WAL into the source's archive; rerun nothing, but set archive_mode = off or another archive_command before starting it (-A does it)"
		fi ;;
	esac
}

# pg_verifybackup of the copy's own major when there is one; another
# major's without WAL parsing (-n), or none for a manifest too new for
# it, saying which applied.  A failed copy cannot start.
verify_copy() {
	verifier=
	for cand in ${bindir:+"$bindir/pg_verifybackup"} "${PLAKAR_PG_BIN_DIR:-/nonexistent}/pg_verifybackup" \
		"/usr/lib/postgresql/$major/bin/pg_verifybackup" pg_verifybackup; do
		if command -v "$cand" >/dev/null 2>&1; then
			verifier=$cand
			break
		fi
	done
	# postmaster.opts: left by a start tried before relocate, harmless
	set -- -q -i postmaster.opts
	[ ! -f "$dir/manifest.json" ] || set -- "$@" -i manifest.json
	vmajor=$( [ -z "$verifier" ] || major_of "$verifier")
	manifest_version=$(sed -n 's/.*"PostgreSQL-Backup-Manifest-Version": \([0-9]*\).*/\1/p' "$dir/backup_manifest" | head -n 1)
	if [ -z "$verifier" ]; then
		say "no pg_verifybackup found: relying on the verification during the backup (tarsplit checked every file against backup_manifest)"
		return 0
	elif [ "$manifest_version" -ge 2 ] && [ "$vmajor" -lt 17 ]; then
		say "pg_verifybackup $vmajor cannot read this manifest (version $manifest_version): relying on the verification during the backup (tarsplit checked every file against backup_manifest)"
		return 0
	elif [ "$vmajor" != "$major" ]; then
		say "pg_verifybackup $vmajor does not know PostgreSQL $major's WAL: verifying the files only (-n)"
		set -- "$@" -n
	fi
	if ! "$verifier" "$@" "$dir" >&2; then
		mv "$dir/global/pg_control" "$dir/global/pg_control.unverified" 2>/dev/null || true
		die "$EX_VERIFY" "$dir failed verification: global/pg_control moved aside so that it cannot start"
	fi
	if [ "$vmajor" = "$major" ]; then
		say "verified by pg_verifybackup $vmajor"
	else
		say "verified by pg_verifybackup $vmajor (files only)"
	fi
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
backup) backup "$@" ;;
check) check "$@" ;;
options) options "$@" ;;
restore) restore "$@" ;;
relocate) relocate "$@" ;;
-h|--help) help ;;
--version) printf '%s (plakar-pg) %s\n' "$prog" "$version" ;;
*) usage ;;
esac
