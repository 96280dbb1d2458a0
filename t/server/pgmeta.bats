#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# pgmeta against a real server: several databases, roles, a tablespace,
# extensions, partitions, RLS, unlogged tables, hostile names, SQL_ASCII.

setup_file() {
	load ../helpers/common
	T=$(pg_tmpdir)
	export T
	mkdir "$T/src" "$T/ts"
	[ "$(id -u)" != 0 ] || chown postgres: "$T/src" "$T/ts"
	pg_init "$T/src"
	pg_start "$T/src"
	pg_env "$T/src"
	psql -qX -v ON_ERROR_STOP=1 -v ts="$T/ts" <<-'SQL'
		CREATE ROLE readers NOLOGIN;
		CREATE ROLE alice LOGIN VALID UNTIL '2031-02-03 04:05:06+00' IN ROLE readers CONNECTION LIMIT 7;
		CREATE ROLE rep LOGIN REPLICATION PASSWORD 'md5secret';
		CREATE ROLE "role ""quoted"" \ back" NOLOGIN;
		CREATE TABLESPACE fast LOCATION :'ts';
		CREATE DATABASE shop;
		CREATE DATABASE "we""ird db";
		CREATE DATABASE secret;
		REVOKE CONNECT ON DATABASE secret FROM PUBLIC;
		CREATE DATABASE legacy ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
		CREATE DATABASE closed ALLOW_CONNECTIONS false;
	SQL
	psql -qX -v ON_ERROR_STOP=1 -d shop <<-'SQL'
		CREATE EXTENSION pg_trgm;
		CREATE EXTENSION hstore WITH SCHEMA public;
		CREATE SCHEMA sales AUTHORIZATION alice;
		CREATE TABLE sales.orders (id bigint, at date NOT NULL, note text DEFAULT 'none',
			PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
		CREATE TABLE sales.orders_2026 PARTITION OF sales.orders
			FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
		CREATE TABLE sales.items (id int PRIMARY KEY, name text UNIQUE, price numeric(10,2) CHECK (price > 0))
			WITH (fillfactor = 70) TABLESPACE fast;
		CREATE INDEX items_cheap ON sales.items (price) WHERE price < 10;
		INSERT INTO sales.items SELECT i, 'item' || i, i FROM generate_series(1, 500) i;
		ANALYZE sales.items;
		ALTER TABLE sales.items ENABLE ROW LEVEL SECURITY;
		ALTER TABLE sales.items FORCE ROW LEVEL SECURITY;
		CREATE UNLOGGED TABLE scratch (x int);
		CREATE TABLE "tab""le\with
		newline, 🐘 and" (":col" int);
		CREATE TABLE ctl ("a" int);
		CREATE VIEW v AS SELECT 1 AS one;
	SQL
	psql -qX -d shop -c "ALTER TABLE ctl RENAME TO \"ctl$(printf '\001')x\""
	# a name that is not UTF-8, in a SQL_ASCII database
	printf 'CREATE TABLE "caf\351" (a int);\n' | psql -qX -v ON_ERROR_STOP=1 -d legacy
	pgmeta -b "$(pg_basebackup --version)" > "$T/meta.json" 2> "$T/meta.err"
}

teardown_file() {
	pg_cleanup "$T"
}

setup() {
	load ../helpers/common
	pg_env "$T/src"
	M=$T/meta.json
}

@test "the top level: every field, in order, with its value" {
	run -0 jq -r 'keys_unsorted | join(" ")' "$M"
	assert_output "version created_at connector host port server_version server_version_num pg_basebackup_version cluster_system_identifier in_recovery dump_format cluster_config roles tablespaces databases"
	run -0 jq -c '[.version, .connector, .dump_format, .host, .port, .in_recovery]' "$M"
	assert_output "[2,\"postgresql+bin\",\"basebackup\",\"$T/src\",\"5432\",false]"
	assert_equal "$(jq -r .server_version_num "$M")" "$(psql -tAXc 'SHOW server_version_num')"
	assert_equal "$(jq -r .pg_basebackup_version "$M")" "$(pg_basebackup --version)"
	assert_equal "$(jq -r .cluster_system_identifier "$M")" \
		"$(pg_controldata "$T/src/data" | awk '/system identifier/ { print $NF }')"
	run -0 jq -r '.created_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")' "$M"
	assert_output true
	assert_equal "$(cat "$T/meta.err")" ""
}

@test "cluster_config: settings, lc_* from pg_database, never archive_command; empty strings left out, as the Go importer does" {
	run -0 jq -c '.cluster_config' "$M"
	assert_output "{\"data_directory\":\"$T/src/data\",\"timezone\":\"$(psql -tAXc 'SHOW TimeZone')\",\"max_connections\":100,\"wal_level\":\"replica\",\"server_encoding\":\"UTF8\",\"data_checksums\":false,\"block_size\":8192,\"wal_block_size\":8192,\"lc_collate\":\"C\",\"lc_ctype\":\"C\",\"archive_mode\":\"off\",\"archive_command_set\":false}"
}

@test "roles: attributes, expiry, memberships; no password hash" {
	run -0 jq -c '.roles[] | select(.name == "alice")' "$M"
	assert_output '{"name":"alice","superuser":false,"replication":false,"can_login":true,"create_db":false,"create_role":false,"inherit":true,"bypass_rls":false,"connection_limit":7,"valid_until":"2031-02-03T04:05:06Z","member_of":["readers"]}'
	run -0 jq -c '.roles[] | select(.name == "rep") | [.replication, .valid_until]' "$M"
	assert_output '[true,null]'
	run -0 jq -r '.roles[] | select(.name | startswith("role")) | .name' "$M"
	assert_output 'role "quoted" \ back'
	run grep -c -e md5 -e SCRAM "$M"
	assert_output 0
}

@test "tablespaces" {
	run -0 jq -c '.tablespaces[] | select(.name == "fast")' "$M"
	# options, empty, left out as the Go importer does
	assert_output "{\"name\":\"fast\",\"owner\":\"postgres\",\"location\":\"$T/ts\"}"
}

@test "databases: every one listed; detail for connectable non-templates" {
	run -0 jq -r '.databases[].name' "$M"
	assert_output "$(printf '%s\n' closed legacy postgres secret shop template0 template1 'we"ird db')"
	run -0 jq -c '.databases[] | select(.name == "legacy") | [.encoding, .collate, .allow_conn, .is_template, .default_tablespace]' "$M"
	assert_output '["SQL_ASCII","C",true,false,"pg_default"]'
	run -0 jq -c '[.databases[] | select(.extensions) | .name]' "$M"
	assert_output '["legacy","postgres","secret","shop","we\"ird db"]'
	run -0 jq -c '.databases[] | select(.name == "shop") | .extensions' "$M"
	assert_output "$(psql -d shop -tAXc "SELECT json_agg(json_build_object('name', extname, 'version', extversion, 'schema', extnamespace::regnamespace) ORDER BY extname) FROM pg_extension" | jq -c .)"
	run -0 jq -c '.databases[] | select(.name == "shop") | .schemas' "$M"
	assert_output '[{"name":"public","owner":"pg_database_owner"},{"name":"sales","owner":"alice"}]'
}

@test "relations: partitions, RLS, unlogged, columns, constraints, indexes; one-letter codes, empty keys left out" {
	shop() { jq -c ".databases[] | select(.name == \"shop\") | .relations[] | $1" "$M"; }
	run -0 shop 'select(.name == "orders") | [.kind, .partition_strategy, .has_primary_key, .is_partition]'
	assert_output '["p","range",true,false]'
	run -0 shop 'select(.name == "orders_2026") | [.kind, .is_partition, .partition_parent]'
	assert_output '["r",true,"sales.orders"]'
	run -0 shop 'select(.name == "items") | [.owner, .tablespace, .row_estimate, .rls_enabled, .rls_forced, .storage_options, .column_count]'
	assert_output '["postgres","fast",500,true,true,["fillfactor=70"],3]'
	run -0 shop 'select(.name == "items") | .columns'
	assert_output '[{"position":1,"name":"id","type":"integer","nullable":false},{"position":2,"name":"name","type":"text","nullable":true},{"position":3,"name":"price","type":"numeric(10,2)","nullable":true}]'
	run -0 shop 'select(.name == "items") | [.constraints[] | [.name, .type, .columns]]'
	assert_output '[["items_name_key","u",["name"]],["items_pkey","p",["id"]],["items_price_check","c",["price"]]]'
	run -0 shop 'select(.name == "items") | [.indexes[] | [.name, .method, .is_unique, .is_primary, .is_partial, .constraint_name]]'
	assert_output '[["items_cheap","btree",false,false,true,null],["items_name_key","btree",true,false,false,"items_name_key"],["items_pkey","btree",true,true,false,"items_pkey"]]'
	run -0 shop 'select(.name == "orders") | .columns[2].default'
	assert_output "\"'none'::text\""
	run -0 shop 'select(.name == "scratch") | .persistence'
	assert_output '"u"'
	run -0 shop 'select(.name == "orders_2026") | [has("tablespace"), has("partition_strategy"), has("storage_options")]'
	assert_output '[false,false,false]'
	run -0 shop 'select(.name == "v") | .kind'
	assert_output '"v"'
}

@test "hostile names come out as valid JSON, the same characters" {
	run -0 jq -r '.databases[] | select(.name == "shop") | .relations[] | select(.name | startswith("tab")) | .name' "$M"
	assert_output "tab\"le\\with
newline, 🐘 and"
	run -0 jq -r '.databases[] | select(.name == "shop") | .relations[] | select(.name | startswith("ctl")) | .name' "$M"
	assert_output "ctl$(printf '\001')x"
	# bytes that are not UTF-8 (SQL_ASCII) become U+FFFD
	run -0 jq -r '.databases[] | select(.name == "legacy") | .relations[].name' "$M"
	assert_output "caf�"
}

@test "--no-relations, --pretty, -o FILE written atomically" {
	run -0 pgmeta -R -o "$BATS_TEST_TMPDIR/m.json" --pretty
	assert_output ''
	run -0 jq -c '[.databases[] | has("relations")] | any' "$BATS_TEST_TMPDIR/m.json"
	assert_output false
	run -0 jq -c '[.databases[] | has("schemas")] | any' "$BATS_TEST_TMPDIR/m.json"
	assert_output true
	run -0 sed -n 2p "$BATS_TEST_TMPDIR/m.json"
	assert_output '  "version": 2,'
	run -0 ls "$BATS_TEST_TMPDIR"
	assert_output m.json
	run -1 --separate-stderr pgmeta -o /nonexistent/dir/m.json
	assert_regex "$stderr" '^pgmeta: /nonexistent/dir/m.json.[A-Za-z0-9]{6}: No such file or directory$'
}

@test "a non-superuser REPLICATION role: fields left out, warnings, exit 0" {
	run -0 --separate-stderr env PGUSER=rep pgmeta
	jq -e . <<<"$output" >/dev/null
	assert_equal "$(jq -c '.cluster_config | has("data_directory")' <<<"$output")" false
	assert_equal "$(jq -r '.roles | length > 5' <<<"$output")" true
	[[ $stderr == *"pgmeta: warning: cluster_config.data_directory left out: not readable by this role"* ]]
	[[ $stderr == *"pgmeta: warning: databases[secret]: extensions, schemas and relations left out: "*"permission denied for database \"secret\""* ]]
	assert_equal "$(jq -c '.databases[] | select(.name == "secret") | has("relations")' <<<"$output")" false
	assert_equal "$(jq -c '.databases[] | select(.name == "shop") | has("relations")' <<<"$output")" true
}

@test "-d takes a connection string, as PostgreSQL's tools do" {
	run -0 --separate-stderr pgmeta -R -d "host=$T/src dbname=shop user=alice"
	jq -e '.databases | length == 8' <<<"$output"
}

@test "a server that is down: one clear line, unreachable, 2" {
	run -2 --separate-stderr env PGHOST="$T/nowhere" pgmeta -F 3 3>"$BATS_TEST_TMPDIR/st"
	assert_equal "$(first_failure "$BATS_TEST_TMPDIR/st")" "pgmeta unreachable 2"
	assert_equal "$stderr" "pgmeta: connection to server on socket \"$T/nowhere/.s.PGSQL.5432\" failed: No such file or directory"
	assert_output ''
}

@test "statistics: live rows and vacuum times for tables; for views 0 and null, as the Go importer writes" {
	psql -qX -d shop -c "VACUUM ANALYZE sales.items"
	sleep 1	# the statistics collector reports at most twice a second
	pgmeta > "$BATS_TEST_TMPDIR/m.json"
	shop() { jq -c ".databases[] | select(.name == \"shop\") | .relations[] | $1" "$BATS_TEST_TMPDIR/m.json"; }
	run -0 shop 'select(.name == "items") | [.live_row_estimate, (.last_vacuum != null), (.last_analyze != null)]'
	assert_output '[500,true,true]'
	run -0 shop 'select(.name == "v") | [.live_row_estimate, .last_vacuum]'
	assert_output '[0,null]'
}

@test "pg_basebackup_version is what -b says; without -b it is left out, and nothing is run" {
	run -0 env PATH=/nonexistent "$PLAKAR_PG_BIN/pgmeta" -b "pg_basebackup (PostgreSQL) 99.1"
	assert_equal "$(jq -r .pg_basebackup_version <<<"$output")" "pg_basebackup (PostgreSQL) 99.1"
	run -0 --separate-stderr env PATH=/nonexistent "$PLAKAR_PG_BIN/pgmeta"
	assert_equal "$(jq -r 'has("pg_basebackup_version")' <<<"$output")" false
	assert_equal "$stderr" ""
}

@test "-B: the basics only, the server not asked (a server that is down changes nothing); -B with -d is bad usage" {
	run -0 --separate-stderr env PGHOST=/nonexistent PGPORT=6543 pgmeta -B -b "basetar (plakar-pg) 9.9"
	assert_equal "$(jq -r 'keys_unsorted | join(" ")' <<<"$output")" "version created_at connector host port basetar_version dump_format"
	assert_equal "$(jq -r '"\(.host) \(.port) \(.basetar_version) \(.dump_format)"' <<<"$output")" "/nonexistent 6543 basetar (plakar-pg) 9.9 basebackup"
	assert_equal "$stderr" ""
	run -1 pgmeta -B -d "host=/nonexistent"
}
