# Loaded first by every .bats file.
# shellcheck shell=bash
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
T_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=t/helpers/pg.bash
source "$T_DIR/pg.bash"

export TARTOOL="python3 $T_DIR/tartool.py"
# t/helpers/grpcclient, built by make testprogs
export GRPCCLIENT=${GRPCCLIENT:-$T_DIR/../../build/grpcclient}

# The headers of a frame stream, one JSON line each, payloads skipped:
# tarjoin -t, the one reader of frames.  A stream it refuses, cut short or
# not frames, ends with {"type":"TRUNCATED"}, unless its last header is
# an error frame, which says why itself.
headers() {
	local out rc=0
	out=$("$PLAKAR_PG_BIN/tarjoin" -t < "$1" 2>/dev/null) || rc=$?
	[ -z "$out" ] || printf '%s\n' "$out"
	if [ "$rc" -ne 0 ] && [ "$(tail -n 1 <<<"$out" | jq -r .type 2>/dev/null)" != error ]; then
		printf '{"type":"TRUNCATED"}\n'
	fi
}

# The last header of a stream.
last_frame() {
	headers "$1" | tail -n 1
}

# The type of the last frame of a stream ("end" only for a whole one).
last_type() {
	last_frame "$1" | jq -r .type
}

# The first failure a file of status lines (plakar-pg(7)) names, as
# "program status exit", or "ok" when none does.
first_failure() {
	local f
	f=$(jq -r 'select(.status != "ok") | "\(.program) \(.status) \(.exit)"' "$1" | head -n 1)
	printf '%s\n' "${f:-ok}"
}

# The message of that failure.
failure_message() {
	jq -r 'select(.status != "ok") | .message' "$1" | head -n 1
}
