#!/bin/sh
# plakar-pg: a physical backup of a whole PostgreSQL cluster as record
# frames (frames(5)) on stdout, and a data directory back from them.
#
#	plakar-pg backup [-iJ] [-F fd] [location] [key=value ...] > frames
#	plakar-pg check [-iJ] [-F fd] [location] [key=value ...]
#	plakar-pg options [-iJ] [-F fd] [location] [key=value ...]
#	plakar-pg restore [-F fd] directory < frames
#	plakar-pg relocate [-AO] [-B bindir] [-F fd] [-T old=new ...] directory
#
# It composes and decides nothing its programs can say: each writes its
# outcome as one JSON line to the descriptor named by -F (plakar-pg(7)),
# and plakar-pg passes its own on to them.
set -eu

prog=plakar-pg
# Every file of ours is private.
umask 077

@OUTCOMES@

# The tools of this checkout or installation come first.
here=$(cd "$(dirname "$0")" && pwd)
PATH=$here:$PATH
export PATH

# Set by make from the Makefile's VERSION.
version=@VERSION@

synopsis() {
	cat <<-EOF
		usage: $prog backup [-iJ] [-F fd] [location] [key=value ...] > frames
		       $prog check [-iJ] [-F fd] [location] [key=value ...]
		       $prog options [-iJ] [-F fd] [location] [key=value ...]
		       $prog restore [-F fd] directory < frames
		       $prog relocate [-AO] [-B bindir] [-F fd] [-T old=new ...] directory
	EOF
}

usage() {
	synopsis >&2
	status usage "bad usage"
	exit "$(outcome_exit usage)"
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

# A closed stderr must not stop us: SIGPIPE is ignored (what we run
# gets it back, see guarded) and a failed write is let go.
trap '' PIPE

say() {
	printf '%s: %s\n' "$prog" "$*" >&2 || true
}

# -F: the descriptor our caller reads outcomes from, or none.
status_fd=''

# status OUTCOME [MESSAGE]: an outcome of our own as its JSON line.
status() {
	[ -n "$status_fd" ] || return 0
	jq -nc --arg p "$prog" --arg s "$1" --argjson e "$(outcome_exit "$1")" \
		--arg m "${2-}" '{program: $p, status: $s, exit: $e} +
		if $m == "" then {} else {message: $m} end' >&"$status_fd" ||
		true
}

# die OUTCOME MESSAGE
die() {
	say "$2"
	status "$1" "$2"
	exit "$(outcome_exit "$1")"
}

set_status_fd() {
	case $1 in
	'' | *[!0-9]* | ?????*) die usage "-F $1: not a descriptor number" ;;
	[012]) die usage "-F $1: stdin, stdout and stderr carry other things" ;;
	esac
	{ true >&"$1"; } 2>/dev/null || die usage "-F $1: not an open descriptor"
	status_fd=$1
}

# [-F fd] alone, for the commands that take no other option; the caller
# shifts OPTIND - 1.
status_fd_option() {
	OPTIND=1
	while getopts F: opt; do
		case $opt in
		F) set_status_fd "$OPTARG" ;;
		*) usage ;;
		esac
	done
}

# A program of ours that failed: its line went to our caller; one that
# was killed said nothing, so we say it.
child_failed() {
	if [ "$2" -gt 128 ]; then
		die backup-failed "$1 was killed by signal $(($2 - 128))"
	fi
	exit "$2"
}

# What runs must not outlive us: SIGTERM from the kernel when this shell
# dies, even by SIGKILL; SIGPIPE as usual.
guarded() {
	exec setpriv --pdeathsig TERM -- env --default-signal=PIPE "$@"
}

# A Plakar source's options, from plakar source show -json -secrets, as
# one JSON object: in memory and pipes only, never a file.  Plakar's own
# message, if it fails, is on stderr.
source_options() {
	command -v plakar >/dev/null 2>&1 ||
		die usage "$1: not a postgres+bin:// location, and plakar is not installed to look it up as a source"
	json=$(plakar source show -json -secrets "$1") ||
		die usage "$1: plakar source show failed"
	source_json=$(printf '%s\n' "$json" | jq -c --arg n "$1" '.[$n] // empty') ||
		die usage "$1: plakar source show gave no JSON"
	[ -n "$source_json" ] || die usage "$1: no such source"
}

# backup, check, options: [-iJ] [-F fd] [location] [key=value ...].
# Every option goes to uriparse, which checks each by the option table
# (share/options): the arguments as they are, the lines of -i and the
# JSON object of -J on its stdin, a source's options on fd 4 from memory.
# But for options, uriparse runs this script again as _backup or _check
# with the libpq environment set, the secrets in memfds and the backup's
# options as arguments: nothing is evaluated, nothing checked twice.
connect_options() {
	cmd=$1
	shift
	input=''
	OPTIND=1
	while getopts iJF: opt; do
		case $opt in
		i) input=-i ;;
		J) input=-J ;;
		F) set_status_fd "$OPTARG" ;;
		*) usage ;;
		esac
	done
	shift $((OPTIND - 1))
	# A URI (even one with '=' in its password) or a source name;
	# key=value is an option.
	source_json=''
	case ${1:-} in
	'' | *://* | *=*) ;;
	*) source_options "$1"
	   shift ;;
	esac
	[ -n "$source_json" ] || [ $# -gt 0 ] || [ -n "$input" ] || usage
	if [ -n "$source_json" ] && [ "$input" = -J ]; then
		die usage "-J and a source: give one"
	fi

	set -- ${status_fd:+-F "$status_fd"} "$@"
	case $input in
	-i) set -- -i "$@" ;;
	-J) set -- -J /dev/stdin "$@" ;;
	esac
	[ -z "$source_json" ] || set -- -J /dev/fd/4 "$@"
	case $cmd in
	options) set -- -j "$@" ;;
	# check prints the options once its preflight passed: uriparse
	# gives them on its stdin
	check) set -- -a -j "$@" -- "$0" _check ${status_fd:+-F "$status_fd"} ;;
	backup) set -- -a "$@" -- "$0" _backup ${status_fd:+-F "$status_fd"} ;;
	esac
	exec uriparse "$@" 4<<-EOF
		$source_json
	EOF
}

# _backup, _check: [-F fd] key=value ..., the backup's options as
# uriparse passed them, checked, the libpq environment set.
connected_options() {
	checkpoint='' label='' max_rate='' progress='' wal_method=''
	hold_wal='' strict='' silence=''
	status_fd_option "$@"
	shift $((OPTIND - 1))
	for arg; do
		case $arg in
		checkpoint=*) checkpoint=${arg#*=} ;;
		label=*) label=${arg#*=} ;;
		max_rate=*) max_rate=${arg#*=} ;;
		progress=*) progress=${arg#*=} ;;
		wal_method=*) wal_method=${arg#*=} ;;
		hold_wal=*) hold_wal=${arg#*=} ;;
		strict=*) strict=${arg#*=} ;;
		silence_timeout=*) silence=${arg#*=} ;;
		*) die usage "$arg: not a backup option" ;;
		esac
	done
	for arg in "$checkpoint" "$progress" "$wal_method" "$hold_wal" \
	    "$strict" "$silence"; do
		[ -n "$arg" ] ||
			die usage "$cmd: run by uriparse, with every backup option"
	done
}

# A warning, or with strict=on the end of the backup (or of the check).
warn_or_die() {
	[ "$strict" != on ] || die "$1" "$2 (strict=on)"
	say "warning: $2"
}

# The preflight, in C (pgprobe -p): the connection, the role, the
# server's settings, its clock; its findings as one JSON object, read
# into data_mode, server_clock and spc_oids.  Its outcome is its own.
preflight() {
	set -- -p
	[ "$wal_method" != fetch ] || [ "$hold_wal" != on ] || set -- "$@" -S
	[ "$strict" != on ] || set -- "$@" -s
	[ -z "$status_fd" ] || set -- -F "$status_fd" "$@"
	probe=0
	facts=$(guarded pgprobe "$@") || probe=$?
	[ "$probe" -eq 0 ] || child_failed pgprobe "$probe"
	read -r data_mode server_clock spc_oids <<-EOF
		$(printf '%s\n' "$facts" | jq -r '"\(.data_directory_mode) \(.clock // "-") \(.tablespaces | if . == "" then "-" else . end)"')
	EOF
	[ "$server_clock" != - ] || server_clock=''
	[ "$spc_oids" != - ] || spc_oids=''
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

# /manifest.json from pgmeta, or the basics if it failed or took longer
# than this many seconds (a server that stalls).
PGMETA_WAIT=120
metadata() {
	set -- -b "$client"
	[ "$strict" != on ] || set -- "$@" -s
	meta_status=0
	manifest=$(guarded timeout "$PGMETA_WAIT" pgmeta "$@") || meta_status=$?
	[ "$meta_status" -ne 0 ] || return 0
	[ "$strict" != on ] ||
		die manifest-incomplete "/manifest.json would be incomplete (strict=on): grant the role pg_read_all_settings and CONNECT on each database, or let strict be off"
	say "warning: /manifest.json has the basics only"
	manifest=$(jq -nc --arg now "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
		--arg host "$PGHOST" --arg port "$PGPORT" --arg bb "$client" \
		'{version: 2, created_at: $now, connector: "postgresql+bin",
		host: $host, port: $port, basetar_version: $bb,
		dump_format: "basebackup"}')
}

# The preflight; once it passed, the options as plakar-pg options prints
# them, for the plugin's Init.
# A signal before runpipe runs: after the step under way, which is
# bounded, the documented status.  runpipe, exec'd, has its own.
interruptible() {
	trap 'die interrupted "interrupted: no backup was taken"' HUP INT TERM
}

check() {
	connected_options "$@"
	interruptible
	preflight
	cat
	status ok
}

backup() {
	connected_options "$@"
	interruptible
	# What makes the tar, and its version, for pgmeta.
	client=$(basetar --version)
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
	set -- "$@" -- tarsplit -r "$data_mode" -f "$(fresh_since)" -m /dev/fd/6
	[ "$wal_method" != fetch ] || set -- "$@" -w
	# basetar | tarsplit, by runpipe, which tells the outcome by the
	# rule of plakar-pg(7) and is interrupted at once; /manifest.json
	# on fd 6, from memory.
	exec runpipe ${status_fd:+-F "$status_fd"} "$@" 6<<-EOF
		$manifest
	EOF
}

restore() {
	status_fd_option "$@"
	shift $((OPTIND - 1))
	[ $# -eq 1 ] || usage
	dir=$1
	if [ -e "$dir/postmaster.pid" ]; then
		die usage "$dir: postmaster.pid is there: a server may be running on it; stop it, or restore to a fresh directory"
	fi
	if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
		die usage "$dir: not empty: restore into a new or empty directory"
	fi
	# In the background, so that a signal reaches us now and stops it;
	# its stdin, which an asynchronous command would lose, through fd 6.
	exec 6<&0
	guarded tarjoin ${status_fd:+-F "$status_fd"} -C "$dir" <&6 6<&- &
	tj_pid=$!
	trap 'kill "$tj_pid" 2>/dev/null; wait "$tj_pid" || true; die interrupted "interrupted: $dir is incomplete and will not start"' HUP INT TERM
	tj_status=0
	wait "$tj_pid" || tj_status=$?
	trap - HUP INT TERM
	case $tj_status in
	0) status ok ;;
	# killed: it said nothing, so we say it
	12[89] | 1[3-9][0-9] | 2[0-9][0-9])
		die damaged "restore failed: tarjoin was killed by signal $((tj_status - 128)); $dir is not usable" ;;
	# its own line said which
	*) say "restore failed: the backup is incomplete or damaged; $dir is not usable"
	   exit "$tj_status" ;;
	esac
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
		die usage "tablespace $oid ($1): no -T $1=NEW for it (or -O to put it back there, if that is absent or empty)"
	case $new/ in
	"$dir"/*) die usage "$new: inside the data directory; a tablespace goes elsewhere" ;;
	esac
	if [ -e "$new" ] || [ -L "$new" ]; then
		if [ ! -d "$new" ] || [ -L "$new" ] || [ -n "$(ls -A "$new")" ]; then
			die usage "$new: not an empty directory; a tablespace goes to a new or empty one (the source's own would be overwritten)"
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
	while getopts AB:F:OT: opt; do
		case $opt in
		A) archive_off=yes ;;
		B) bindir=$OPTARG ;;
		F) set_status_fd "$OPTARG" ;;
		O) original=yes ;;
		T)
			case $OPTARG in
			/*=/*) ;;
			*) die usage "-T $OPTARG: OLD=NEW, both absolute paths" ;;
			esac
			case $OPTARG in
			*[[:space:]]*) die usage "-T: paths with white space are not supported" ;;
			esac
			maps="$maps $OPTARG" ;;
		*) usage ;;
		esac
	done
	shift $((OPTIND - 1))
	[ $# -eq 1 ] || usage
	dir=$(cd "$1" 2>/dev/null && pwd) ||
		die usage "$1: no such directory"
	if [ ! -f "$dir/PG_VERSION" ] || [ ! -f "$dir/backup_manifest" ]; then
		die usage "$dir: not a restored backup (no PG_VERSION or backup_manifest)"
	fi
	[ ! -e "$dir/postmaster.pid" ] ||
		die usage "$dir: postmaster.pid is there: the copy has been started; relocate only a copy just restored"
	major=$(cat "$dir/PG_VERSION")
	if [ -n "$bindir" ]; then
		[ -x "$bindir/postgres" ] ||
			die usage "$bindir: no postgres there"
		[ "$(major_of "$bindir/postgres")" = "$major" ] ||
			die usage "$bindir/postgres is PostgreSQL $(major_of "$bindir/postgres") and the copy is $major: use PostgreSQL $major's binaries"
	fi
	if [ ! -f "$dir/tablespace_map" ]; then
		grep -q '"Path": "tablespace_map"' "$dir/backup_manifest" &&
			die usage "$dir: already relocated (tablespace_map is gone); nothing done"
		[ -z "$maps" ] ||
			die usage "$dir: the copy has no tablespaces, and -T names some"
	fi
	owner=$(stat -c %u:%g "$dir")

	# Every target checked before anything moves.
	moves=
	if [ -f "$dir/tablespace_map" ]; then
		! grep -q "\\\\" "$dir/tablespace_map" ||
			die usage "tablespace_map: a path with a backslash, newline or return; place that tablespace by hand"
		while read -r oid old; do
			if [ ! -d "$dir/pg_tblspc/$oid" ] || [ -L "$dir/pg_tblspc/$oid" ]; then
				die usage "pg_tblspc/$oid: not the restored directory of tablespace $old"
			fi
			new=$(target_of "$old") || exit
			case " $moves " in
			*" $oid=$new "*|*"=$new "*) die usage "$new: the target of two tablespaces" ;;
			esac
			moves="$moves $oid=$new"
		done <"$dir/tablespace_map"
		for map in $maps; do
			cut -d ' ' -f 2- "$dir/tablespace_map" | grep -Fxq -- "${map%%=/*}" ||
				die usage "-T $map: no tablespace of the copy was at ${map%%=/*}"
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
	status ok
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
		die verify-failed "$dir failed verification: global/pg_control moved aside so that it cannot start"
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
backup|check|options) connect_options "$cmd" "$@" ;;
# run by uriparse in our place, the connection set (connect_options)
_backup) backup "$@" ;;
_check) check "$@" ;;
restore) restore "$@" ;;
relocate) relocate "$@" ;;
-h|--help) help ;;
--version) printf '%s (plakar-pg) %s\n' "$prog" "$version" ;;
*) usage ;;
esac
