#!/usr/bin/env bash
# make bench: the cost of each layer, measured side by side in one run on
# a cluster of about 1 GB (pgbench scale 65; BENCH_SCALE to change it):
# tarsplit, the wrapper and the gRPC path against pg_basebackup alone, and
# pgmeta against pg_dump --schema-only.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=t/pg.bash
source t/pg.bash
scale=${BENCH_SCALE:-65}
rounds=${BENCH_ROUNDS:-7}

T=$(pg_tmpdir)
trap 'pg_cleanup "$T"' EXIT
pg_cluster "$T/src"
pg_env "$T/src"
echo "bench: pgbench -i -s $scale ..."
pgbench -i -s "$scale" -q >/dev/null 2>&1
psql -qXc CHECKPOINT
size=$(psql -tAXc "SELECT pg_size_pretty(sum(pg_database_size(oid))) FROM pg_database")
echo "bench: cluster of $size, $rounds rounds, interleaved"

bb() { pg_basebackup -D - -F tar -X fetch -c fast; }
now() { date +%s.%N; }
# Each command's times, and their median: a run of a second is noisy here
# (the same backup takes from 0.5 to 1.2 s on this 2-core VM).
declare -A times
run() {
	local name=$1 t0 t1
	shift
	t0=$(now)
	"$@"
	t1=$(now)
	times[$name]="${times[$name]:-} $(echo "$t1 - $t0" | bc -l)"
}
median() {
	# shellcheck disable=SC2086
	printf '%s\n' ${times[$1]} | sort -g | awk '{ v[NR] = $1 } END {
		print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# The gRPC path: the importer behind a Unix socket, a Python client that
# reads every record and its content, as Plakar would.
/usr/bin/python3 -m grpc_tools.protoc -I share/proto --python_out="$T" \
	--grpc_python_out="$T" connectors.proto importer.proto importer_service.proto
grpc_backup() {
	rm -f "$T/imp.sock"
	socat "UNIX-LISTEN:$T/imp.sock" "EXEC:$PLAKAR_PG_BIN/plakar-pg-importer" 2>/dev/null &
	while [ ! -S "$T/imp.sock" ]; do sleep 0.05; done
	/usr/bin/python3 t/grpc_client.py "$T" "$T/imp.sock" read \
		"{\"location\": \"postgres+bin://postgres@localhost\", \"host\": \"$PGHOST\"}" >/dev/null
	wait
}
for _ in $(seq "$rounds"); do
	run wrapper bash -c "plakar-pg backup postgres+bin://postgres@localhost host=$PGHOST > /dev/null"
	run grpc grpc_backup
	run alone bash -c "$(declare -f bb); bb > /dev/null"
	run cat bash -c "$(declare -f bb); bb | cat > /dev/null"
	run noverify bash -c "$(declare -f bb); bb | tarsplit -n > /dev/null"
	run verify bash -c "$(declare -f bb); bb | tarsplit -w > /dev/null"
done

# Peak memory in a run of its own, so that /usr/bin/time weighs on no timing.
bb | /usr/bin/time -f %M -o "$T/rss" tarsplit -w > /dev/null

# Where the gRPC path's time goes: CPU of the plugin against the client's.
rm -f "$T/imp.sock"
printf '#!/bin/sh\nexec /usr/bin/time -o %s -f "%%U %%S" %s\n' "$T/importer.cpu" \
	"$PLAKAR_PG_BIN/plakar-pg-importer" > "$T/importer.sh"
chmod +x "$T/importer.sh"
socat "UNIX-LISTEN:$T/imp.sock" "EXEC:$T/importer.sh" 2>/dev/null &
while [ ! -S "$T/imp.sock" ]; do sleep 0.05; done
/usr/bin/time -o "$T/client.cpu" -f '%U %S' /usr/bin/python3 t/grpc_client.py "$T" "$T/imp.sock" read \
	"{\"location\": \"postgres+bin://postgres@localhost\", \"host\": \"$PGHOST\"}" >/dev/null
wait
cpu() { awk '{ printf "%.2f", $1 + $2 }' "$1"; }

ratio() { echo "scale=3; $(median "$1") / $(median "$2")" | bc -l; }
echo "bench: medians of $rounds runs"
printf 'pg_basebackup > /dev/null              %6.2f s\n' "$(median alone)"
printf '| cat                   / alone        %s\n' "$(ratio cat alone)"
printf '| tarsplit -n           / alone        %s\n' "$(ratio noverify alone)"
printf '| tarsplit (verifying)  / alone        %s   (goal <= 1.10)\n' "$(ratio verify alone)"
printf '| tarsplit verifying    / -n           %s\n' "$(ratio verify noverify)"
printf 'tarsplit peak RSS                      %s KiB   (goal <= 16384)\n' "$(cat "$T/rss")"
printf 'plakar-pg backup        / alone        %s   (goal <= 1.15)\n' "$(ratio wrapper alone)"
printf 'gRPC path               / plakar-pg    %s   (goal <= 1.25)\n' "$(ratio grpc wrapper)"
printf '  CPU seconds: plakar-pg-importer %s, the Python test client %s\n' "$(cpu "$T/importer.cpu")" "$(cpu "$T/client.cpu")"

# pgmeta: 10 000 relations over four databases, against pg_dump
# --schema-only of the same databases, in the same run.
for db in 1 2 3 4; do
	createdb "rel$db"
	# 250 tables a transaction: each holds locks until it commits
	for from in $(seq 1 250 2500); do
		psql -qX -d "rel$db" -c "DO \$\$ BEGIN FOR i IN $from..$((from + 249)) LOOP
			EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, name text NOT NULL, at timestamptz DEFAULT now())', i);
		END LOOP; END \$\$"
	done
done
echo "bench: 10 000 relations in 4 databases"
for _ in $(seq "$rounds"); do
	run pgmeta bash -c "pgmeta > $T/meta.json"
	# shellcheck disable=SC2016
	run pg_dump bash -c 'for db in rel1 rel2 rel3 rel4; do pg_dump --schema-only -d "$db" > /dev/null; done'
done
echo "bench: pgmeta found $(jq '[.databases[].relations // [] | length] | add' "$T/meta.json") relations"
printf 'pgmeta                                 %6.2f s\n' "$(median pgmeta)"
printf 'pgmeta / pg_dump --schema-only         %s   (goal <= 0.5)\n' "$(ratio pgmeta pg_dump)"
