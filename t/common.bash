# Loaded first by every .bats file.
# shellcheck shell=bash
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
# shellcheck source=t/pg.bash
source "$BATS_TEST_DIRNAME/pg.bash"

export TARTOOL="python3 $BATS_TEST_DIRNAME/tartool.py"
# t/grpcclient, built by make testprogs
export GRPCCLIENT=${GRPCCLIENT:-$BATS_TEST_DIRNAME/../build/grpcclient}

# The headers of a frame stream, one JSON line each, payloads skipped.
headers() {
	python3 "$BATS_TEST_DIRNAME/frames.py" < "$1"
}

# The last header of a stream.
last_frame() {
	headers "$1" | tail -n 1
}

# The type of the last frame of a stream ("end" only for a whole one).
last_type() {
	last_frame "$1" | jq -r .type
}
