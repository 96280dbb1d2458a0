# The outcome channel, put in by make (@STATUS@): a message on stderr, the
# outcome as one JSON line on -F's descriptor; prog and synopsis() are the
# script's.
# shellcheck shell=sh disable=SC2154

# A closed stderr must not stop us: SIGPIPE is ignored (what we run
# gets it back) and a failed write is let go.
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

usage() {
	synopsis >&2
	status usage "bad usage"
	exit "$(outcome_exit usage)"
}

set_status_fd() {
	case $1 in
	'' | *[!0-9]* | ?????*) die usage "-F $1: not a descriptor number" ;;
	[012]) die usage "-F $1: stdin, stdout and stderr carry other things" ;;
	esac
	{ true >&"$1"; } 2>/dev/null || die usage "-F $1: not an open descriptor"
	status_fd=$1
}
