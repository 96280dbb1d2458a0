#!/usr/bin/env bash
# make bench: the cost of each layer, measured side by side in one run on
# a cluster of about 1 GB (pgbench scale 65; BENCH_SCALE to change it):
# tarsplit and the wrapper against pg_basebackup alone; through the real
# Plakar, our importer against Plakar's filesystem importer and, on the
# second backup, against pg_basebackup alone; basetar against
# pg_basebackup; a cluster half in a tablespace against the same data
# without; pgmeta against pg_dump --schema-only; then the race against
# pgBackRest (and Plakar's Go importer).  BENCH_ROUNDS,
# BENCH_PLAKAR_ROUNDS, BENCH_RACE_ROUNDS set the rounds; BENCH_BIG_SCALE
# the big cluster's pgbench scale (0: none); BENCH_RACE=0 leaves the race
# out, BENCH_RACE_ONLY=1 runs it alone, BENCH_PLAKAR_ONLY=1 runs the
# Plakar section alone, BENCH_LAYERS_ONLY=1 the first section alone.
# CPU is counted per run, from the kernel's counters of the run's own
# process tree (dev/bench-cpu.bash).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=t/helpers/pg.bash
source t/helpers/pg.bash
scale=${BENCH_SCALE:-65}
rounds=${BENCH_ROUNDS:-7}

# shellcheck source=dev/bench-cpu.bash
source dev/bench-cpu.bash
T=$(pg_tmpdir)
trap 'pg_cleanup "$T"; cg_cleanup' EXIT
cg_init
pg_cluster "$T/src"
cg_server_adopt "$T/src/data"
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
ratio() { echo "scale=3; $(median "$1") / $(median "$2")" | bc -l; }
# rss_sampler OUT PATTERN: the peak RSS (VmHWM) of the processes that
# match, read until killed.
rss_sampler() {
	local out=$1 pattern=$2 p
	set +e
	while :; do
		for p in $(pgrep -f "$pattern"); do
			awk '/^VmHWM/ { print $2 }' "/proc/$p/status" 2>/dev/null
		done >> "$out"
		sleep 0.05
	done
}
if [ "${BENCH_RACE_ONLY:-0}" != 1 ] && [ "${BENCH_PLAKAR_ONLY:-0}" != 1 ]; then
for _ in $(seq "$rounds"); do
	run wrapper bash -c "plakar-pg backup postgres+bin://postgres@localhost host=$PGHOST > /dev/null"
	run alone bash -c "$(declare -f bb); bb > /dev/null"
	run basetar bash -c "basetar > /dev/null"
	run cat bash -c "$(declare -f bb); bb | cat > /dev/null"
	run noverify bash -c "$(declare -f bb); bb | tarsplit -n > /dev/null"
	run verify bash -c "$(declare -f bb); bb | tarsplit -w > /dev/null"
done

# Peak memory in a run of its own, so that /usr/bin/time weighs on no timing.
bb | /usr/bin/time -f %M -o "$T/rss" tarsplit -w > /dev/null

echo "bench: medians of $rounds runs"
printf 'pg_basebackup > /dev/null              %6.2f s\n' "$(median alone)"
printf 'basetar                 / alone        %s   (goal <= 1.02)\n' "$(ratio basetar alone)"
printf '| cat                   / alone        %s\n' "$(ratio cat alone)"
printf '| tarsplit -n           / alone        %s\n' "$(ratio noverify alone)"
printf '| tarsplit (verifying)  / alone        %s   (goal <= 1.10)\n' "$(ratio verify alone)"
printf '| tarsplit verifying    / -n           %s\n' "$(ratio verify noverify)"
printf 'tarsplit peak RSS                      %s KiB   (goal <= 16384)\n' "$(cat "$T/rss")"
# Its memory on a manifest of 100 000 files: the text, never a whole tree.
python3 t/helpers/tartool.py many 100000 > "$T/many.tar"
/usr/bin/time -f %M -o "$T/many.rss" tarsplit < "$T/many.tar" > /dev/null
printf 'tarsplit, 100 000-file manifest        %s KiB   (goal <= 65536)\n' "$(cat "$T/many.rss")"
rm -f "$T/many.tar"
printf 'plakar-pg backup        / alone        %s   (goal <= 1.65)\n' "$(ratio wrapper alone)"
[ "${BENCH_LAYERS_ONLY:-0}" != 1 ] || exit 0

# Tablespaces: the same data twice, two pgbench databases of half the
# scale each, in two clusters (one a copy of the other); in the second,
# one database moved to a tablespace.  plakar-pg backup of each, in turn.
half=$((scale / 2))
pg_cluster "$T/flat"
PGHOST=$T/flat psql -qX -c "CREATE DATABASE a" -c "CREATE DATABASE b"
PGHOST=$T/flat pgbench -i -s "$half" -q a >/dev/null 2>&1
PGHOST=$T/flat pgbench -i -s "$half" -q b >/dev/null 2>&1
pg_stop "$T/flat"
mkdir "$T/split" "$T/split-ts"
[ "$(id -u)" != 0 ] || chown postgres: "$T/split" "$T/split-ts"
as_pg cp -a "$T/flat/data" "$T/split/data"
pg_start "$T/flat"
pg_start "$T/split"
PGHOST=$T/split psql -qX -c "CREATE TABLESPACE ts LOCATION '$T/split-ts'" \
	-c "ALTER DATABASE b SET TABLESPACE ts" -c CHECKPOINT
PGHOST=$T/flat psql -qX -c CHECKPOINT
for _ in $(seq "$rounds"); do
	run flat bash -c "plakar-pg backup postgres+bin://postgres@localhost host=$T/flat > /dev/null"
	run split bash -c "plakar-pg backup postgres+bin://postgres@localhost host=$T/split > /dev/null"
done
printf 'plakar-pg backup, half in a tablespace %6.2f s\n' "$(median split)"
printf '  / the same data without              %s   (goal <= 1.10)\n' "$(ratio split flat)"
pg_stop "$T/flat"
pg_stop "$T/split"
rm -rf "$T/flat" "$T/split" "$T/split-ts"

fi
# Through the real Plakar, the same store settings (its defaults) for
# every contender, each first backup into a fresh store: ours against
# Plakar's own filesystem importer on a plain copy of the same data
# directory (the ingest limit for these bytes), at -cpu 1 (Plakar's
# default here: NumCPU - 1) and -cpu 2 (its -concurrency follows -cpu),
# on this cluster and on a big one whose largest table spans several
# 1 GiB segments (BENCH_BIG_SCALE, 0 to leave it out), so that parallel
# gains are not bounded by one file chunked by one worker; then the
# second backup of the idle cluster against the floor of any physical
# stream, pg_basebackup alone; then Plakar's own CPU profile of each
# first backup at -cpu 1.  CPU from dev/bench-cpu.bash.
# shellcheck source=t/helpers/plakar.bash
source t/helpers/plakar.bash
plakar_env "$T/plakar"
plakar_package "$T"
plakar pkg add "$PTAR" >/dev/null
plakar source add mypg postgres+bin://postgres@localhost host="$PGHOST"
if [ "${BENCH_RACE_ONLY:-0}" != 1 ]; then
cp -a "$T/src/data" "$T/copy"
rm -f "$T/copy/postmaster.pid"
prounds=${BENCH_PLAKAR_ROUNDS:-3}
big=${BENCH_BIG_SCALE:-200}
clusters=small
if [ "$big" != 0 ]; then
	echo "bench: a big cluster, pgbench -i -s $big ..."
	pg_cluster "$T/big"
	cg_server_adopt "$T/big/data"
	PGHOST=$T/big pgbench -i -s "$big" -q >/dev/null 2>&1
	PGHOST=$T/big psql -qXc CHECKPOINT
	echo "bench: big cluster of $(PGHOST=$T/big psql -tAXc "SELECT pg_size_pretty(sum(pg_database_size(oid))) FROM pg_database"), pgbench_accounts in $(PGHOST=$T/big psql -tAXc "SELECT ceil(pg_relation_size('pgbench_accounts') / 1073741824.0)") segments of 1 GiB"
	pg_stop "$T/big"
	cp -a "$T/big/data" "$T/bigcopy"
	rm -f "$T/bigcopy/postmaster.pid"
	pg_start "$T/big"
	cg_server_adopt "$T/big/data"
	plakar source add bigpg postgres+bin://postgres@localhost host="$T/big"
	clusters="small big"
fi
source_of() { [ "$1" = small ] && echo mypg || echo bigpg; }
copy_of() { [ "$1" = small ] && echo "$T/copy" || echo "$T/bigcopy"; }
host_of() { [ "$1" = small ] && echo "$T/src" || echo "$T/big"; }
for r in $(seq "$prounds"); do
	for cl in $clusters; do
		for c in 1 2; do
			rm -rf "$T/store" "$T/fsstore"
			plakar at "$T/store" create -plaintext >/dev/null
			plakar at "$T/fsstore" create -plaintext >/dev/null
			plakar_stop
			PGHOST=$(host_of "$cl") psql -qXc CHECKPOINT
			measure "ours.$cl.$c" sh -c "plakar -cpu $c at '$T/store' backup @$(source_of "$cl") > '$T/ours.out' 2>&1" ||
				{ echo "bench: ours.$cl.$c failed in round $r: $(tail -n 1 "$T/ours.out")" >&2; }
			measure "dir.$cl.$c" sh -c "plakar -cpu $c at '$T/fsstore' backup '$(copy_of "$cl")' > /dev/null 2>&1"
			if [ "$cl" = small ] && [ "$c" = 1 ]; then
				sleep 2
				measure second sh -c "plakar -cpu 1 at '$T/store' backup @mypg > /dev/null 2> '$T/second.err'"
				run alone2 bash -c "$(declare -f bb); bb > /dev/null"
			fi
			plakar_stop
		done
	done
done
echo "bench: through Plakar $(plakar version 2>/dev/null | head -n 1), first backups into fresh stores, medians of $prounds rounds"
echo "  wall s and CPU s of the run's own process tree (plakar, the plugin and all it ran); server: the PostgreSQL server's CPU s over the run"
printf '  %-7s %-5s %-12s %-27s %7s %7s %7s\n' cluster -cpu -concurrency contender "wall s" "CPU s" "server"
for cl in $clusters; do
	for c in 1 2; do
		for who in ours dir; do
			label="plakar backup @mypg (ours)"
			[ "$who" = ours ] || label="plakar backup DIR (a copy)"
			printf '  %-7s %-5s %-12s %-27s %7.2f %7.1f %7.1f\n' "$cl" "$c" "$c" "$label" \
				"$(median "$who.$cl.$c")" "$(cpu_median cpu_total "$who.$cl.$c")" "$(cpu_median cpu_server "$who.$cl.$c")"
		done
		goal="(#26's goal <= 1.05)"
		[ "$cl" = big ] || goal=""
		printf '  %-7s %-5s @mypg / DIR                          %s   %s\n' "$cl" "$c" "$(ratio "ours.$cl.$c" "dir.$cl.$c")" "$goal"
	done
	printf '  %-7s -cpu 2 / -cpu 1: ours %s, DIR %s\n' "$cl" "$(ratio "ours.$cl.2" "ours.$cl.1")" "$(ratio "dir.$cl.2" "dir.$cl.1")"
done
echo "  CPU s by program in the tree, first round:"
for cl in $clusters; do
	for c in 1 2; do
		printf '    %-5s -cpu %s ours: %s\n' "$cl" "$c" "${cpu_by[ours.$cl.$c]}"
		printf '    %-5s -cpu %s DIR:  %s\n' "$cl" "$c" "${cpu_by[dir.$cl.$c]}"
	done
done
printf 'plakar backup @mypg, second, idle     %6.2f s, CPU %.1f s, server %.1f s\n' "$(median second)" \
	"$(cpu_median cpu_total second)" "$(cpu_median cpu_server second)"
printf '  second / pg_basebackup alone         %s   (goal <= 1.5)\n' "$(ratio second alone2)"
printf '  %s\n' "$(grep -o '[0-9]* files, [0-9]* of them taken from.*' "$T/second.err" | tail -n 1)"
printf '  CPU s by program: %s\n' "${cpu_by[second]}"
printf 'plakar-pg-importer peak RSS           %s KiB   (goal <= 32768)\n' "$(printf '%s\n' "${importer_rss[@]}" | sort -n | tail -n 1)"

# Plakar's own profile at -cpu 1 (plakar -profile-cpu, read with go tool
# pprof): where its CPU goes for our stream and for a directory, by kind
# of work, from each function's own (flat) samples.
pprof_kinds() {
	PATH=$PATH:/usr/local/go/bin go tool pprof -top -nodecount=100000 "$PLAKAR_TOOLS/plakar" "$1" 2>/dev/null |
		awk '$2 ~ /%$/ && $1 ~ /s$/ {
			f = $6; v = $1; sub(/ms$/, "", v); if ($1 ~ /ms$/) v = v / 1000; else sub(/s$/, "", v)
			k = "other"
			if (f ~ /google\.golang\.org\/grpc|golang\.org\/x\/net\/http2|google\.golang\.org\/protobuf|integration-grpc/) k = "gRPC, HTTP/2, protobuf"
			else if (f ~ /kloset\/snapshot\.entropy/) k = "packfile padding (random bytes)"
			else if (f ~ /cdc-chunkers|chunkers/) k = "chunking"
			else if (f ~ /sha256|blake3|hmac|crypto\/internal\/fips140\/sha|hash\//) k = "hashing"
			else if (f ~ /lz4|zstd|compress/) k = "compression"
			else if (f ~ /aes|gcm|chacha|argon2/) k = "encryption"
			else if (f ~ /kloset|pebble|sqlite|modernc|btree/) k = "kloset: store, index, cache"
			else if (f ~ /syscall|^internal\/poll|^os\./) k = "system calls (pipes, files)"
			else if (f ~ /^runtime\.(memmove|memclr)/) k = "memory copies"
			else if (f ~ /^runtime\.(mallocgc|gc|scanobject|markBits|greyobject|bgsweep|sweep|mark|findObject|heapBits|wbBuf|tryDefer|spanOf)/) k = "Go runtime: allocation, GC"
			else if (f ~ /^runtime\.|^internal\/runtime/) k = "Go runtime: scheduler, other"
			if (k == "other") { o[f] += v }
			s[k] += v; t += v }
		END {
			for (k in s) printf "    %5.1f%%  %6.2f s  %s\n", 100 * s[k] / t, s[k], k
			n = 0; for (f in o) if (o[f] >= 0.02 && n++ < 6) printf "              other: %.2f s %s\n", o[f], f }' |
		sort -t% -k1,1 -gr
}
rm -rf "$T/store" "$T/fsstore"
plakar at "$T/store" create -plaintext >/dev/null
plakar at "$T/fsstore" create -plaintext >/dev/null
psql -qXc CHECKPOINT
plakar -cpu 1 -profile-cpu "$T/ours.pprof" at "$T/store" backup @mypg > /dev/null 2>&1
plakar -cpu 1 -profile-cpu "$T/dir.pprof" at "$T/fsstore" backup "$T/copy" > /dev/null 2>&1
plakar_stop
for who in ours dir; do
	[ "$who" = ours ] && echo "plakar -cpu 1 -profile-cpu, backup @mypg: Plakar's CPU by kind of work" ||
		echo "plakar -cpu 1 -profile-cpu, backup DIR: Plakar's CPU by kind of work"
	pprof_kinds "$T/$who.pprof"
	echo "  its top functions (go tool pprof -top):"
	PATH=$PATH:/usr/local/go/bin go tool pprof -top -nodecount=12 "$PLAKAR_TOOLS/plakar" "$T/$who.pprof" 2>/dev/null |
		sed -n '/flat%/,$p' | sed 's/^/    /'
done
[ "$big" = 0 ] || { pg_stop "$T/big"; rm -rf "$T/big" "$T/bigcopy"; }
[ "${BENCH_PLAKAR_ONLY:-0}" != 1 ] || exit 0

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

fi
# The race (BENCH_RACE=0 skips it): the same cluster, WAL archiving on
# for every contender (archive_command = pgBackRest's archive-push, its
# stanza created and checked), a CHECKPOINT before each run, the same
# compression for all: Plakar's default, LZ4 at level 9 (kloset's
# compression.NewDefaultConfiguration), and pgBackRest's compress-type=lz4
# compress-level=9.  Contenders, all over TCP (the Go importer takes no
# Unix socket): plakar backup @mypgtcp with ours; with Plakar's Go
# postgres+bin importer when BENCH_GO_IMPORTER names a built binimporter
# (the module proxy here does not serve it); plakar backup DIR of a plain
# copy; pgBackRest full backups, start-fast=y, process-max 1 and 2 (two
# repositories, so that each has its own incremental).  Then a short
# pgbench run and a second backup of each (pgBackRest: incremental).
# Printed: wall time, the checkpoint's wait (from the server log), CPU
# seconds of the run's tree by program group and of the server, the
# plugin's peak RSS, and the store or repository size after it.
[ "${BENCH_RACE:-1}" = 1 ] || exit 0
race_rounds=${BENCH_RACE_ROUNDS:-3}
# the pgbench cluster alone, as for the first sections
for db in 1 2 3 4; do
	PGOPTIONS="-c client_min_messages=warning" psql -qXc "DROP DATABASE IF EXISTS rel$db"
done
command -v pgbackrest >/dev/null || { echo "bench: the race needs pgbackrest (apt-get install pgbackrest)"; exit 1; }
R=$T/race
RPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$R"
[ "$(id -u)" != 0 ] || chown postgres: "$R"
cat > "$R/pgbackrest.conf" <<CONF
[global]
repo1-path=$R/repo1
repo2-path=$R/repo2
repo1-retention-full=1
repo2-retention-full=1
compress-type=lz4
compress-level=9
start-fast=y
log-level-console=warn
log-level-file=off
lock-path=$R/lock
spool-path=$R/spool

[bench]
pg1-path=$T/src/data
pg1-socket-path=$T/src
pg1-port=$RPORT
pg1-user=postgres
CONF
[ "$(id -u)" != 0 ] || chown postgres: "$R/pgbackrest.conf"
pgbr() { as_pg pgbackrest --config="$R/pgbackrest.conf" --stanza=bench "$@"; }
cat >> "$T/src/data/postgresql.conf" <<CONF
archive_mode = on
archive_command = 'pgbackrest --config=$R/pgbackrest.conf --stanza=bench archive-push %p'
log_checkpoints = on
log_line_prefix = '%m '
CONF
pg_stop "$T/src"
pg_start "$T/src" "-c listen_addresses=127.0.0.1 -p $RPORT"
cg_server_adopt "$T/src/data"
export PGPORT=$RPORT
plakar_env "$T/plakar"
plakar source add mypgtcp "postgres+bin://postgres@127.0.0.1:$RPORT"

# The Go importer, packaged with a manifest of ours, in Plakar
# directories of its own (it registers the same protocol as ours).
go_importer=${BENCH_GO_IMPORTER:-}
if [ -n "$go_importer" ]; then
	(
		plakar_env "$R/goplakar"
		plakar_go_package "$R" "$go_importer" &&
			plakar source add gopg "postgres+bin://postgres@127.0.0.1:$RPORT"
	)
fi

# CPU seconds by group, from measure's breakdown by program of the run's
# own tree: plakar, pgBackRest, the plugin (everything else it ran); the
# server's (its WAL sender, and the archiver's archive-push) apart.
group_report() {
	printf '%s\n' "${cpu_by[$1]}" | tr ' ' '\n' | paste - - | awk -v server="$(cpu_median cpu_server "$1")" '
		$1 == "" { next }
		$1 == "plakar" { g["plakar"] += $2; next }
		$1 == "pgbackrest" { g["pgbackrest"] += $2; next }
		$1 ~ /^(sh|bash|runuser|unsampled)$/ { next }
		{ g["plugin"] += $2 }
		END { printf "%6.1f %6.1f %6.1f %6.1f", g["plakar"], g["plugin"], server, g["pgbackrest"] }'
}
# The wait of the checkpoint a run started: its "checkpoint starting" to
# its "checkpoint complete" in the server log, lines after $1.
checkpoint_wait() {
	tail -n +"$(($1 + 1))" "$T/src/server.log" | awk '
		/checkpoint starting/ && !s { s = $1 " " $2 }
		/checkpoint complete/ && s && !e { e = $1 " " $2 }
		END { print s "|" e }' | {
		IFS='|' read -r s e
		if [ -n "$s" ] && [ -n "$e" ]; then
			echo "$(date -d "$e" +%s.%N) - $(date -d "$s" +%s.%N)" | bc -l
		else
			echo 0
		fi
	}
}
declare -A waits rss size
# race NAME SIZE-PATH COMMAND...: one timed run, its checkpoint wait, and,
# in the first round, its CPU by group and the plugin's peak RSS.
race() {
	local name=$1 sizepath=$2 lines rs
	shift 2
	psql -qXc CHECKPOINT
	lines=$(wc -l < "$T/src/server.log")
	if [ "$round" = 1 ]; then
		: > "$R/rss.$name"
		rss_sampler "$R/rss.$name" 'plakar-pg-importer$|binimporter' & rs=$!
	fi
	# a failed run is said, and its time kept: the table shows it
	if ! measure "$name" "$@"; then
		echo "bench: $name failed in round $round" >&2
		[ ! -f "$R/$name.out" ] || tail -n 2 "$R/$name.out" >&2
		failed="${failed:-} $name"
	fi
	if [ "$round" = 1 ]; then
		kill "$rs" 2>/dev/null || true
		wait "$rs" 2>/dev/null || true
		rss[$name]=$(sort -n "$R/rss.$name" | tail -n 1)
	fi
	waits[$name]="${waits[$name]:-} $(checkpoint_wait "$lines")"
	size[$name]=$(du -sb "$sizepath" | cut -f 1)
}
wait_median() {
	# shellcheck disable=SC2086
	printf '%s\n' ${waits[$1]} | sort -g | awk '{ v[NR] = $1 } END {
		print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
fresh_copy() {
	rm -rf "$R/copy"
	cp -a "$T/src/data" "$R/copy"
	rm -f "$R/copy/postmaster.pid"
}
pgbr_run() { bash -c "$(declare -f pgbr as_pg); R='$R'; pgbr $*"; }

echo "bench: the race, $race_rounds rounds"
for round in $(seq "$race_rounds"); do
	rm -rf "$R/store" "$R/gostore" "$R/dirstore" "$R/repo1" "$R/repo2"
	plakar_env "$T/plakar"
	plakar at "$R/store" create -plaintext >/dev/null
	plakar at "$R/dirstore" create -plaintext >/dev/null
	pgbr stanza-create >/dev/null
	pgbr check >/dev/null
	race ours1 "$R/store" sh -c "plakar at '$R/store' backup @mypgtcp > '$R/ours1.out' 2>&1"
	if [ -n "$go_importer" ]; then
		(plakar_env "$R/goplakar"; plakar at "$R/gostore" create -plaintext >/dev/null)
		race go1 "$R/gostore" bash -c "$(declare -f plakar_env); PATH='$PATH'; plakar_env '$R/goplakar'; plakar at '$R/gostore' backup @gopg > '$R/go1.out' 2>&1"
	fi
	fresh_copy
	race dir1 "$R/dirstore" sh -c "plakar at '$R/dirstore' backup '$R/copy' > /dev/null 2>&1"
	race pgbr1_1 "$R/repo1" pgbr_run --repo=1 --process-max=1 --type=full backup
	race pgbr2_1 "$R/repo2" pgbr_run --repo=2 --process-max=2 --type=full backup
	pgbench -n -c 2 -T 10 >/dev/null 2>&1
	race ours2 "$R/store" sh -c "plakar at '$R/store' backup @mypgtcp > '$R/ours2.out' 2>&1"
	if [ -n "$go_importer" ]; then
		race go2 "$R/gostore" bash -c "$(declare -f plakar_env); PATH='$PATH'; plakar_env '$R/goplakar'; plakar at '$R/gostore' backup @gopg > '$R/go2.out' 2>&1"
	fi
	fresh_copy
	race dir2 "$R/dirstore" sh -c "plakar at '$R/dirstore' backup '$R/copy' > /dev/null 2>&1"
	race pgbr1_2 "$R/repo1" pgbr_run --repo=1 --process-max=1 --type=incr backup
	race pgbr2_2 "$R/repo2" pgbr_run --repo=2 --process-max=2 --type=incr backup
	plakar_stop
	(plakar_env "$R/goplakar"; plakar_stop)
done
rm -rf "$R/copy"
echo "bench: the race, medians of $race_rounds rounds; CPU s (the run's tree by program, the server over the run) and RSS from the first; Plakar at its default -cpu $(($(nproc) > 1 ? $(nproc) - 1 : 1)), -concurrency the same"
printf '%-36s %7s %7s  %-27s %8s %9s\n' contender "wall s" "ckpt s" "CPU plakar plugin server pgbr" "RSS KiB" "size MB"
line() {
	printf '%-36s %7.2f %7.3f  %s %8s %9.1f\n' "$2" "$(median "$1")" "$(wait_median "$1")" \
		"$(group_report "$1")" "${rss[$1]:--}" "$(echo "${size[$1]} / 1048576" | bc -l)"
}
for pass in 1 2; do
	kind=full
	[ "$pass" = 1 ] || kind=incr
	line "ours$pass" "plakar @mypg (ours), backup $pass"
	if [ -n "$go_importer" ]; then
		line "go$pass" "plakar @gopg (Go importer), $pass"
	else
		printf '%-36s blocked: not served by the Go module proxy here\n' "plakar @gopg (Go importer), $pass"
	fi
	line "dir$pass" "plakar backup DIR (a copy), $pass"
	line "pgbr1_$pass" "pgBackRest process-max 1, $kind"
	line "pgbr2_$pass" "pgBackRest process-max 2, $kind"
done
[ -z "${failed:-}" ] || echo "bench: failed runs:$failed"
printf 'ours / pgBackRest full, pm 1 and 2    %s %s   (goal < 1)\n' "$(ratio ours1 pgbr1_1)" "$(ratio ours1 pgbr2_1)"
[ -z "$go_importer" ] || printf 'ours / Go importer, first and second   %s %s   (goal < 1 both)\n' "$(ratio ours1 go1)" "$(ratio ours2 go2)"
