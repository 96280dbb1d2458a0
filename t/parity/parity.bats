#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# Parity with Plakar's Go postgres+bin importer (make check-parity
# GO_IMPORTER=path/to/binimporter): the same rich cluster backed up by
# both under the pinned Plakar; our /manifest.json holds every key path of
# its, same types, same values but for those that differ by nature or on
# purpose (pgmeta(1) lists them, and this file holds that list); the two
# snapshots hold the same files.  The Go importer's module is not served
# by the Go module proxy here, so it is built from its repository by hand;
# without GO_IMPORTER the file says so and fails.

setup_file() {
	load ../helpers/common
	load ../helpers/plakar
	[ -n "${GO_IMPORTER:-}" ] && [ -x "$GO_IMPORTER" ] ||
		fail "GO_IMPORTER: the path of a built binimporter (github.com/PlakarKorp/integrations/postgresql/plugin/binimporter v1.1.0-beta.9)"
	T=$(pg_tmpdir)
	export T
	PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	export PORT
	mkdir "$T/src"
	[ "$(id -u)" != 0 ] || chown postgres: "$T/src"
	pg_init "$T/src"
	echo "autovacuum = off" >> "$T/src/data/postgresql.conf"
	pg_start "$T/src" "-c listen_addresses=127.0.0.1 -p $PORT"
	export PGHOST=$T/src PGPORT=$PORT PGUSER=postgres
	psql -qX -v ON_ERROR_STOP=1 -d postgres <<-'SQL'
		CREATE ROLE app LOGIN VALID UNTIL '2030-01-01' CONNECTION LIMIT 5;
		CREATE ROLE readers NOLOGIN;
		GRANT readers TO app;
		CREATE ROLE auditor LOGIN CREATEDB;
		GRANT readers TO auditor WITH ADMIN OPTION;
		CREATE DATABASE shop OWNER app;
		CREATE DATABASE empty;
	SQL
	psql -qX -v ON_ERROR_STOP=1 -d shop <<-'SQL'
		CREATE EXTENSION pgcrypto;
		CREATE EXTENSION btree_gist;
		CREATE SEQUENCE order_no START 1000;
		CREATE TABLE customer (id int PRIMARY KEY, email text UNIQUE NOT NULL,
			age int CHECK (age >= 0));
		CREATE TABLE orders (id bigint DEFAULT nextval('order_no'), cid int REFERENCES customer,
			placed date NOT NULL, total numeric, PRIMARY KEY (id, placed)) PARTITION BY RANGE (placed);
		CREATE TABLE orders_2025 PARTITION OF orders FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
		CREATE TABLE orders_2026 PARTITION OF orders FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
		CREATE TABLE booking (room int, during tsrange, EXCLUDE USING gist (room WITH =, during WITH &&));
		CREATE UNLOGGED TABLE scratch (k text, v text);
		CREATE INDEX orders_total ON orders (total);
		CREATE INDEX customer_lower ON customer (lower(email));
		CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;
		INSERT INTO customer SELECT i, 'c' || i || '@x', i % 90 FROM generate_series(1, 2000) i;
		INSERT INTO orders (cid, placed, total) SELECT 1 + i % 2000, date '2025-01-01' + i % 700, i FROM generate_series(1, 5000) i;
		CREATE MATERIALIZED VIEW per_customer AS SELECT cid, sum(total) FROM orders GROUP BY cid;
		ALTER TABLE customer ENABLE ROW LEVEL SECURITY;
		CREATE POLICY own ON customer USING (email = current_user);
		ANALYZE;
	SQL
	psql -qX -d postgres -c ANALYZE -c CHECKPOINT
	mkdir "$T/plakar" "$T/goplakar"
	plakar_env "$T/plakar"
	plakar_package "$T"
	plakar pkg add "$PTAR" >/dev/null
	plakar_env "$T/goplakar"
	plakar_go_package "$T" "$GO_IMPORTER"
	loc="postgres+bin://postgres@127.0.0.1:$PORT"
	# the start of the first backup: files older are unchanged since
	sleep 1
	date +%s > "$T/start"
	plakar at "$T/gostore" create -plaintext >/dev/null
	plakar at "$T/gostore" backup "$loc" > "$T/go.out" 2>&1 ||
		fail "the Go importer's backup: $(cat "$T/go.out")"
	plakar_stop
	plakar_env "$T/plakar"
	plakar at "$T/store" create -plaintext >/dev/null
	plakar at "$T/store" backup "$loc" > "$T/ours.out" 2>&1 ||
		fail "our backup: $(cat "$T/ours.out")"
	plakar_stop
}

teardown_file() {
	(plakar_env "$T/goplakar" && plakar_stop) || true
	(plakar_env "$T/plakar" && plakar_stop) || true
	pg_cleanup "$T"
}

setup() {
	load ../helpers/common
	load ../helpers/plakar
	cd "$BATS_TEST_TMPDIR"
}

# The one snapshot of a store: its /manifest.json, and its files restored.
snapshot_of() {
	local store=$1 dir=$2 snap
	snap=$(plakar at "$store" ls | awk '{ print $2 }' | head -n 1)
	plakar at "$store" cat "$snap:/manifest.json"
	plakar at "$store" restore -to "$dir" "$snap" >/dev/null
}

# Differences on purpose, as pgmeta(1) lists them (COMPARED WITH PLAKAR'S
# GO IMPORTER), on PostgreSQL 15 over TCP.
DOCUMENTED='added .basetar_version
added .cluster_config.timezone
missing .pg_basebackup_version'

@test "the Go importer and ours both back the cluster up under the pinned Plakar" {
	grep -q 'backup completed without errors' "$T/go.out" || fail "$(cat "$T/go.out")"
	grep -q 'backup completed without errors' "$T/ours.out" || fail "$(cat "$T/ours.out")"
}

@test "our /manifest.json has every key path of the Go importer's, same types and values, but the documented differences" {
	plakar_env "$T/goplakar"
	snapshot_of "$T/gostore" go > go.json
	plakar_env "$T/plakar"
	snapshot_of "$T/store" ours > ours.json
	cp go.json ours.json "$T/"
	run -0 --separate-stderr python3 "$BATS_TEST_DIRNAME/compare.py" go.json ours.json
	[ "$output" = "$DOCUMENTED" ] || fail "$stderr"
	# the list in pgmeta(1) is this one
	man=$(sed -n '/^\.Ss Compared with Plakar.s Go importer/,/^\.S[sh]/p' "$BATS_TEST_DIRNAME/../../man/pgmeta.1" |
		sed -n 's/^\.It Li \(added\|missing\|value\|type\) \(.*\)$/\1 \2/p' | sort)
	assert_equal "$man" "$DOCUMENTED"
}

@test "the two snapshots hold the same files; size, mode and time equal where the file is older than the first backup" {
	plakar_env "$T/goplakar"
	snapshot_of "$T/gostore" go > /dev/null
	plakar_env "$T/plakar"
	snapshot_of "$T/store" ours > /dev/null
	# the Go importer puts the data directory under /data
	list() { (cd "$1" && find . -mindepth 1 -printf '%P\n' | sort); }
	# members that differ by nature: the backup's own files, WAL, stats
	# that the server rewrites, and the layout (our /manifest.json beside
	# the files, its /data and /manifest.json)
	nature='^(backup_label|backup_manifest|global/pg_control|pg_wal/.*|pg_stat_tmp/.*|pg_stat/.*|pg_logical/replorigin_checkpoint|manifest\.json|data)$'
	list go/data | grep -Ev "$nature" > go.list
	list ours | grep -Ev "$nature" > ours.list
	run -0 diff go.list ours.list
	[ "$(wc -l < ours.list)" -gt 900 ]
	start=$(cat "$T/start")
	while read -r f; do
		[ -f "$T/src/data/$f" ] || continue
		[ "$(stat -c %Y "$T/src/data/$f")" -lt "$start" ] || continue
		[ "$(stat -c '%s %a %Y' "go/data/$f")" = "$(stat -c '%s %a %Y' "ours/$f")" ] ||
			fail "$f: $(stat -c '%s %a %Y' "go/data/$f") and $(stat -c '%s %a %Y' "ours/$f")"
	done < ours.list
}
