#!/bin/sh
# plakar-pg: a cluster's physical backup as record frames (frames(5)), and
# a data directory back.  It only composes: each program says its outcome
# on the descriptor -F names (plakar-pg(7)), as plakar-pg says its own.
set -eu

prog=plakar-pg
# Every file of ours is private.
umask 077

@OUTCOMES@

# The tools of this checkout or installation come first.
here=$(cd "$(dirname "$0")" && pwd)
PATH=$here:$PATH
export PATH

version=@VERSION@

synopsis() {
	cat <<-EOF
		usage: $prog backup [-iJ] [-F fd] [location] [key=value ...] > frames
		       $prog check [-iJ] [-F fd] [location] [key=value ...]
		       $prog options [-iJ] [-F fd] [location] [key=value ...]
		       $prog restore [-F fd] directory < frames
		       $prog relocate [-AOn] [-B bindir] [-F fd] [-T old=new ...] directory
	EOF
}

help() {
	synopsis
	printf '\n%s\n' "A cluster's physical backup as frames, its preflight, its options; a data directory back; the restore step. See plakar-pg(1)."
	exit 0
}

@STATUS@

# [-F fd] alone, for commands without other options (then shift OPTIND-1).
status_fd_option() {
	OPTIND=1
	while getopts F: opt; do
		case $opt in
		F) set_status_fd "$OPTARG" ;;
		*) usage ;;
		esac
	done
}

# What runs must not outlive us (SIGTERM when we die, even by SIGKILL).
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
# (plakar/options): the arguments as they are, the lines of -i and the
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

# The preflight, in C (pgprobe -p): the connection, the role, the
# server's settings, its clock; its findings as one JSON object, read
# into data_mode, fresh_since and spc_oids.  Its outcome is its own.
preflight() {
	set -- -p
	[ "$wal_method" != fetch ] || [ "$hold_wal" != on ] || set -- "$@" -S
	[ "$strict" != on ] || set -- "$@" -s
	[ -z "$status_fd" ] || set -- -F "$status_fd" "$@"
	facts=$(guarded pgprobe "$@")
	read -r data_mode fresh_since spc_oids <<-EOF
		$(printf '%s\n' "$facts" | jq -r '"\(.data_directory_mode) \(.fresh_since) \(.tablespaces)"')
	EOF
}

# /manifest.json from pgmeta, or its basics (pgmeta -B) if it failed or
# took longer than this many seconds (a server that stalls).
PGMETA_WAIT=120
metadata() {
	set -- -b "$client"
	[ "$strict" != on ] || set -- "$@" -s
	manifest=$(guarded timeout "$PGMETA_WAIT" pgmeta "$@") && return
	[ "$strict" != on ] ||
		die manifest-incomplete "/manifest.json would be incomplete (strict=on): grant the role pg_read_all_settings and CONNECT on each database, or let strict be off"
	say "warning: /manifest.json has the basics only"
	manifest=$(pgmeta -B "$@")
}

# A signal before runpipe runs: after the step under way, which is
# bounded, the documented status.  runpipe, exec'd, has its own.
interruptible() {
	trap 'die interrupted "interrupted: no backup was taken"' HUP INT TERM
}

# The preflight; once it passed, the options as plakar-pg options prints
# them (from uriparse, on our stdin), for the plugin's Init.
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
	set -- "$@" -- tarsplit -r "$data_mode" -f "$fresh_since" -m /dev/fd/6
	[ "$wal_method" != fetch ] || set -- "$@" -w
	# basetar | tarsplit, by runpipe, which tells the outcome by the
	# rule of plakar-pg(7) and is interrupted at once; /manifest.json
	# on fd 6, from memory.
	exec runpipe ${status_fd:+-F "$status_fd"} "$@" 6<<-EOF
		$manifest
	EOF
}

# tarjoin refuses a non-empty directory, and leaves one it failed unstartable.
restore() {
	status_fd_option "$@"
	shift $((OPTIND - 1))
	[ $# -eq 1 ] || usage
	exec tarjoin ${status_fd:+-F "$status_fd"} -C "$1"
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
relocate) exec pgrelocate "$@" ;;
-h|--help) help ;;
--version) printf '%s (plakar-pg) %s\n' "$prog" "$version" ;;
*) usage ;;
esac
