#!/usr/bin/env bash
# The first command of the README: the install step (dev/install.sh,
# as root: Debian's packages, the locales, Plakar at its pinned version),
# the build, then back a throwaway local cluster up through
# Plakar (plakar backup @demo), restore it with the seed page's recipe
# (plakar restore -to DIR, then start a server on DIR), verify it, start
# it and compare pg_dumpall before and after.  Removes what it made.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && [ "${PLAKAR_PG_NO_INSTALL:-}" = "" ]; then
	sh dev/install.sh
fi
make -s all tools

# shellcheck source=t/helpers/pg.bash
source t/helpers/pg.bash
# shellcheck source=t/helpers/plakar.bash
source t/helpers/plakar.bash
T=$(pg_tmpdir)
cleanup() {
	plakar_stop
	pg_cleanup "$T"
}
[ -n "${DEMO_KEEP:-}" ] || trap cleanup EXIT

echo "demo: a throwaway cluster in $T/src/data; a role that needs its password over TCP"
pg_tcp_cluster "$T/src" replicator secret
pg_env "$T/src"
export PGPORT=$PORT
pgbench -i -s 5 -q >/dev/null 2>&1
pg_dump_of "$T/src" "$PORT" > "$T/before.sql"

echo "demo: Plakar $(awk '$1 == "github.com/PlakarKorp/plakar" { print $2 }' dev/plakar/go.mod) in throwaway directories; the package added"
plakar_env "$T/plakar"
make -s package PKGDIR="$T/pkg" >/dev/null
version=$(sed -n 's/^VERSION = //p' Makefile)
(cd "$T" && plakar pkg create "$T/pkg/manifest.yaml" "v$version" >/dev/null)
plakar pkg add "$T/postgresql-bin_v${version}_linux_amd64.ptar" >/dev/null

echo "demo: plakar source add demo postgres+bin://replicator:secret@127.0.0.1:$PORT"
plakar source add demo "postgres+bin://replicator:secret@127.0.0.1:$PORT"
plakar source check demo
plakar at "$T/store" create -plaintext >/dev/null
echo "demo: plakar at $T/store backup @demo"
plakar at "$T/store" backup @demo | tail -n 1
snap=$(plakar at "$T/store" ls | awk 'END { print $2 }')
echo "demo: snapshot $snap, server $(plakar at "$T/store" cat "$snap:/manifest.json" | jq -r .server_version)"

echo "demo: plakar at $T/store restore -to $T/restored/data $snap; pg_verifybackup; start"
mkdir "$T/restored"
plakar at "$T/store" restore -to "$T/restored/data" "$snap" >/dev/null
[ "$(id -u)" != 0 ] || chown -R postgres: "$T/restored"
as_pg pg_verifybackup -q -i manifest.json "$T/restored/data"
pg_start "$T/restored" -p 5433
pg_dump_of "$T/restored" 5433 > "$T/after.sql"
if cmp -s "$T/before.sql" "$T/after.sql"; then
	echo "demo: the restored cluster started; pg_dumpall before and after are identical"
else
	echo "demo: pg_dumpall differs after the restore" >&2
	exit 1
fi
