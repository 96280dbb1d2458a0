# Once before every suite of this directory: the programs under test where
# the postgres user can run them (pg_reachable_bin).
# shellcheck shell=bash

setup_suite() {
	# shellcheck source=t/helpers/pg.bash
	source "$(dirname "${BASH_SOURCE[0]}")/pg.bash"
	PLAKAR_PG_COPY=$(pg_reachable_bin)
	if [ -n "$PLAKAR_PG_COPY" ]; then
		echo "# the postgres user cannot enter $(dirname "$PLAKAR_PG_BIN"): the programs are tested from a copy in $PLAKAR_PG_COPY" >&3
		PLAKAR_PG_BIN=$PLAKAR_PG_COPY
		PATH=$PLAKAR_PG_BIN:$PATH
		export PLAKAR_PG_BIN PLAKAR_PG_COPY PATH
	fi
}

teardown_suite() {
	[ -z "${PLAKAR_PG_COPY:-}" ] || rm -rf "$PLAKAR_PG_COPY"
}
