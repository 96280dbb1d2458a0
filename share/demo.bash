#!/usr/bin/env bash
# The first command of the README: install what plakar-pg needs (as root,
# from Debian's archive), build it, then back up a throwaway local cluster
# with plakar-pg backup (pg_basebackup | tarsplit), restore it, verify it,
# start it and compare pg_dumpall before and after.  Removes what it made.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && [ "${PLAKAR_PG_NO_INSTALL:-}" = "" ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2046
	apt-get install -y -qq --no-install-recommends $(cat share/debian-packages) >/dev/null
fi
make -s

# shellcheck source=t/pg.bash
source t/pg.bash
T=$(pg_tmpdir)
trap 'pg_cleanup "$T"' EXIT
echo "demo: a throwaway cluster in $T/src/data"
pg_cluster "$T/src"
pg_env "$T/src"
pgbench -i -s 5 -q >/dev/null 2>&1
pg_dump_of "$T/src" > "$T/before.sql"

echo "demo: plakar-pg backup postgres+bin://postgres@localhost host=$PGHOST > frames"
plakar-pg backup postgres+bin://postgres@localhost host="$PGHOST" > "$T/frames"
python3 t/frames.py < "$T/frames" | jq -s -r '
	"demo: \(map(select(.type == "file")) | length) files, " +
	"\(map(select(.type == "dir")) | length) directories, " +
	"end frame: \(last | tojson)"'

echo "demo: plakar-pg restore restored < frames; pg_verifybackup restored"
mkdir "$T/restored"
plakar-pg restore "$T/restored/data" < "$T/frames"
[ "$(id -u)" != 0 ] || chown -R postgres: "$T/restored"
pg_verifybackup "$T/restored/data"
pg_start "$T/restored"
pg_dump_of "$T/restored" > "$T/after.sql"
if cmp -s "$T/before.sql" "$T/after.sql"; then
	echo "demo: the restored cluster started; pg_dumpall before and after are identical"
else
	echo "demo: pg_dumpall differs after the restore" >&2
	exit 1
fi
