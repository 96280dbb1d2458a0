#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# Through the real Plakar (the pinned build): the README's commands as
# printed, against a server that admits its role only with a
# scram-sha-256 password over TCP; what plakar source check shows; what
# leaks from Plakar's environment into ours.

setup_file() {
	load ../helpers/common
	load ../helpers/plakar
	plakar_suite secret 2
	psql -qX -v ON_ERROR_STOP=1 <<-'SQL'
		CREATE TABLE notes AS SELECT i, md5(i::text) AS h FROM generate_series(1, 5000) i;
		CREATE UNLOGGED TABLE scratch (x int);
		CREATE ROLE plain LOGIN PASSWORD 'secret';
		CHECKPOINT;
	SQL
}

teardown_file() {
	plakar_suite_end
}

setup() {
	load ../helpers/common
	load ../helpers/plakar
	plakar_test
}

teardown() {
	[ ! -f "$W/pgdata/postmaster.pid" ] ||
		as_pg pg_ctl -D "$W/pgdata" -m immediate -w stop >/dev/null 2>&1 || true
	plakar_stop
	rm -rf "$W"
}

# sudo -u postgres, which keeps the working directory, without sudo.
as_postgres() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# The README's Plakar commands, one a line, "$ " taken off.
readme_commands() {
	sed -n '/^Into Plakar$/,/^A backup and a restore/p' "$BATS_TEST_DIRNAME/../../README" |
		sed -n 's/^    \$ //p'
}

snapshots() {
	plakar at "$W/store" ls | awk '{ print $2 }'
}

@test "the README's commands, as printed: package, source, backup @mypg, ls, cat, check, restore, verify, start, same data" {
	owner=postgres
	[ "$(id -u)" = 0 ] || owner=$(id -un)
	top=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	run -0 readme_commands
	[ "${#lines[@]}" -ge 14 ] || fail "README: ${#lines[@]} commands"
	commands=("${lines[@]}")
	snap=''
	for line in "${commands[@]}"; do
		cmd=${line//\/var\/backups/$W/store}
		cmd=${cmd//127.0.0.1:5432/127.0.0.1:$PORT}
		cmd=${cmd//<snapshot>/$snap}
		[ "$(id -u)" = 0 ] || cmd=${cmd//runuser -u postgres -- /}
		cmd=${cmd//chown -R postgres:/chown -R $owner:}
		[ "$cmd" != "make package" ] ||
			cmd="make -s -C '$top' package PKGDIR='$W/build/package' OUT='$PLAKAR_PG_BIN'"
		run bash -c "cd '$W' && $(declare -f as_postgres); $cmd"
		[ "$status" -eq 0 ] || fail "$line: exit $status: $output"
		case $line in
		*" backup @mypg") assert_line --regexp '^[0-9a-f]{8}: backup completed without errors' ;;
		*" ls") snap=$(snapshots | tail -n 1); [ -n "$snap" ] || fail "no snapshot" ;;
		*"cat <snapshot>:/manifest.json"*) assert_output "$(psql -tAXc 'SHOW server_version')" ;;
		esac
	done
	# the restore is a data directory, its mode the source's
	[ "$(stat -c %a "$W/pgdata")" = 700 ] || fail "pgdata mode $(stat -c %a "$W/pgdata")"
	[ -f "$W/pgdata/manifest.json" ] && [ -f "$W/pgdata/PG_VERSION" ]
	pg_dump_of "$T/src" "$PORT" > before.sql
	pg_dump_of "$T/src" 5433 > after.sql
	run -0 diff before.sql after.sql
	[ "$(wc -l < after.sql)" -gt 50 ]
}

@test "plakar-pg(7) shows the same commands as the README" {
	run -0 readme_commands
	readme=$output
	man=$(mandoc -Tascii "$BATS_TEST_DIRNAME/../../man/plakar-pg.7" | col -b |
		sed -n 's/^[[:space:]]*\$ //p' | sed -n '/^make package$/,/pg_ctl -D pgdata/p')
	assert_equal "$man" "$readme"
}

@test "a restored cluster backs up again: its manifest.json of ours left out with a notice, a foreign one fails" {
	plakar pkg add "$PTAR" >/dev/null
	plakar at "$W/store" create -plaintext >/dev/null
	run -0 plakar at "$W/store" backup "postgres+bin://replicator:secret@127.0.0.1:$PORT"
	snap=$(snapshots | tail -n 1)
	run -0 plakar at "$W/store" restore -to "$W/pgdata" "$snap"
	[ "$(id -u)" != 0 ] || chown -R postgres: "$W/pgdata"
	as_pg pg_ctl -D "$W/pgdata" -l "$W/pgdata.log" -o "-p 5433 -k $W" -w start >/dev/null
	run -0 --separate-stderr plakar at "$W/store" backup -o host="$W" -o port=5433 "postgres+bin://postgres@localhost"
	assert_line --regexp '^[0-9a-f]{8}: backup completed without errors'
	[[ $stderr == *"manifest.json: the /manifest.json of the snapshot this cluster was restored from; left out of the backup"* ]] ||
		fail "no notice: $stderr"
	[ "$(snapshots | wc -l)" = 2 ]
	# plakar ls: newest first
	second=$(snapshots | head -n 1)
	run -0 plakar at "$W/store" cat "$second:/manifest.json"
	assert_equal "$(jq -r .port <<<"$output")" 5433
	# a manifest.json that is not ours would be hidden: refused, named
	echo '{"mine": true}' > "$W/pgdata/manifest.json"
	run -1 --separate-stderr plakar at "$W/store" backup -o host="$W" -o port=5433 "postgres+bin://postgres@localhost"
	[[ $stderr == *"tarsplit: manifest.json: a file of this name in the data directory would be hidden by the snapshot's /manifest.json: move it away"* ]] ||
		fail "$stderr"
	[ "$(snapshots | wc -l)" = 2 ]
}

@test "plakar source check shows what is wrong before any backup; a subpath is one line; no snapshot" {
	plakar pkg add "$PTAR" >/dev/null
	plakar at "$W/store" create -plaintext >/dev/null
	plakar source add wrongpw "postgres+bin://replicator:nope@127.0.0.1:$PORT"
	plakar source add norepl "postgres+bin://plain:secret@127.0.0.1:$PORT"
	plakar source add down "postgres+bin://replicator:secret@127.0.0.1:1"
	run -1 plakar source check wrongpw
	assert_output --partial 'password authentication failed for user "replicator"'
	refute_output --partial "I/O error communicating with the integration"
	run -1 plakar source ping wrongpw
	assert_output --partial 'password authentication failed for user "replicator"'
	run -1 plakar source check norepl
	assert_output --partial "role plain has no REPLICATION privilege"
	run -1 plakar source check down
	assert_output --partial "pgprobe: cannot connect: "
	run -1 plakar at "$W/store" backup @wrongpw
	assert_output --partial 'password authentication failed for user "replicator"'
	run -1 plakar at "$W/store" backup "postgres+bin://replicator:secret@127.0.0.1:$PORT/postgres"
	assert_output --partial "a subpath is not allowed"
	run -0 snapshots
	assert_output ''
}

@test "Plakar's environment stays out: PGSSLMODE, PGPASSFILE, PGOPTIONS, PGSERVICE, PLAKAR_PASSPHRASE" {
	plakar pkg add "$PTAR" >/dev/null
	plakar at "$W/store" create -plaintext >/dev/null
	pw=pw-$RANDOM-$RANDOM-unique
	psql -qX -c "CREATE ROLE leaky LOGIN REPLICATION PASSWORD '$pw'"
	echo "127.0.0.1:$PORT:*:leaky:wrong" > "$W/pgpass"
	chmod 600 "$W/pgpass"
	# each of these would break the backup, or leak, if it reached libpq
	# in a source, not on plakar's command line, which Plakar records in
	# the snapshot
	plakar source add leaky "postgres+bin://leaky:$pw@127.0.0.1:$PORT"
	run -0 env PGSSLMODE=require PGPASSFILE="$W/pgpass" PGOPTIONS='-c no_such=1' \
		PGSERVICE=nosuch PGUSER=nobody PLAKAR_PASSPHRASE=hush \
		plakar at "$W/store" backup @leaky
	psql -qX -c "DROP ROLE leaky"
	assert_line --regexp '^[0-9a-f]{8}: backup completed without errors'
	# the password is in Plakar's sources.yml, nowhere else we or Plakar wrote
	run bash -c "grep -rl -e '$pw' -e hush '$W' ${TMPDIR:-/tmp}/plakar-pg* '$XDG_CACHE_HOME' \
		'$XDG_DATA_HOME' '$XDG_CONFIG_HOME' 2>/dev/null | sort -u"
	assert_output "$XDG_CONFIG_HOME/plakar/sources.yml"
}

@test "a file changed in place within the second its mtime names is read again, never taken from Plakar's cache" {
	plakar pkg add "$PTAR" >/dev/null
	plakar at "$W/store" create -plaintext >/dev/null
	plakar source add mypg "postgres+bin://replicator:secret@127.0.0.1:$PORT"
	# an mtime at or after the first backup's start, kept across the change
	assert_page_read_again mypg $(($(date +%s) + 3600))
}

@test "an idle cluster's second backup takes most files from Plakar's cache" {
	plakar pkg add "$PTAR" >/dev/null
	plakar at "$W/store" create -plaintext >/dev/null
	plakar source add mypg "postgres+bin://replicator:secret@127.0.0.1:$PORT"
	run -0 plakar at "$W/store" backup @mypg
	sleep 3
	run -0 --separate-stderr plakar at "$W/store" backup @mypg
	cache_share "$stderr" || fail "the second backup read (almost) every file again"
}

# A CA, a server certificate for 127.0.0.1 and a client one for ROLE, in DIR.
make_certs() {
	local dir=$1 role=$2
	mkdir -p "$dir"
	(
		cd "$dir"
		for ca in ca wrongca; do
			openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$ca" \
				-keyout "$ca.key" -out "$ca.crt" 2>/dev/null
		done
		openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
			-keyout server.key -out server.csr 2>/dev/null
		printf 'subjectAltName = IP:127.0.0.1\n' > san.ext
		openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
			-days 2 -extfile san.ext -out server.crt 2>/dev/null
		openssl req -newkey rsa:2048 -nodes -subj "/CN=$role" \
			-keyout client.key -out client.csr 2>/dev/null
		openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
			-days 2 -out client.crt 2>/dev/null
		chmod 600 ./*.key
	)
}

@test "every source option through plakar source add and -o: TLS verify-full, client certificate, password over the URI's, host and port, pg_bin_dir" {
	plakar pkg add "$PTAR" >/dev/null
	plakar at "$W/store" create -plaintext >/dev/null
	# a server that wants TLS, a client certificate and the password
	S=$W/tls
	mkdir -p "$S"
	[ "$(id -u)" != 0 ] || chown postgres: "$S"
	make_certs "$W/certs" tlsrep
	TLSPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	pg_init "$S"
	cp "$W/certs/server.crt" "$W/certs/server.key" "$W/certs/ca.crt" "$S/data/"
	[ "$(id -u)" != 0 ] || chown postgres: "$S/data/server.crt" "$S/data/server.key" "$S/data/ca.crt"
	cat >> "$S/data/postgresql.conf" <<-CONF
		ssl = on
		ssl_cert_file = 'server.crt'
		ssl_key_file = 'server.key'
		ssl_ca_file = 'ca.crt'
	CONF
	cat > "$S/data/pg_hba.conf" <<-'HBA'
		local all postgres trust
		hostssl all all 127.0.0.1/32 scram-sha-256 clientcert=verify-full
		hostssl replication all 127.0.0.1/32 scram-sha-256 clientcert=verify-full
	HBA
	pg_start "$S" "-c listen_addresses=127.0.0.1 -p $TLSPORT"
	psql -h "$S" -p "$TLSPORT" -qX -v ON_ERROR_STOP=1 <<-'SQL'
		SET password_encryption = 'scram-sha-256';
		CREATE ROLE tlsrep LOGIN REPLICATION PASSWORD 'tls-secret';
	SQL
	C=$W/certs
	bindir=$(pg_config --bindir)
	# the URI's host, port and password all wrong: the options win
	plakar source add tls "postgres+bin://tlsrep:wrong@nowhere.invalid:1" \
		host=127.0.0.1 port="$TLSPORT" username=tlsrep password=tls-secret \
		ssl_mode=verify-full ssl_root_cert="$C/ca.crt" \
		ssl_cert="$C/client.crt" ssl_key="$C/client.key" pg_bin_dir="$bindir"
	run -0 plakar source check tls
	run -0 plakar at "$W/store" backup @tls
	assert_line --regexp '^[0-9a-f]{8}: backup completed without errors'
	# -o overrides the source: another CA fails verify-full
	run -1 plakar at "$W/store" backup -o ssl_root_cert="$C/wrongca.crt" @tls
	assert_output --partial "certificate verify failed"
	# without the client certificate, the server says no
	plakar source add nocert "postgres+bin://tlsrep:tls-secret@127.0.0.1:$TLSPORT" \
		ssl_mode=verify-full ssl_root_cert="$C/ca.crt"
	run -1 plakar at "$W/store" backup @nocert
	assert_output --regexp 'certificate|connection requires a valid client certificate'
	# and without TLS there is no way in
	run -1 plakar at "$W/store" backup -o ssl_mode=disable @tls
	assert_output --partial 'no pg_hba.conf entry'
	[ "$(snapshots | wc -l)" = 1 ]
	pg_stop "$S"
}

@test "beside Plakar's own postgresql package: refused as Plakar says, added once it is removed" {
	# a package named postgresql that registers postgres+bin, as Plakar's does
	cp -r "$T/pkg" "$W/other"
	sed -i 's/^name: postgresql-bin$/name: postgresql/' "$W/other/manifest.yaml"
	(cd "$W" && plakar pkg create "$W/other/manifest.yaml" v1.1.0 >/dev/null)
	plakar pkg add "$W/postgresql_v1.1.0_linux_amd64.ptar" >/dev/null
	run -1 plakar pkg add "$PTAR"
	assert_output --partial "protocol postgres+bin already provided by another installed package"
	run -0 plakar pkg rm postgresql
	run -0 plakar pkg add "$PTAR"
	run -0 plakar pkg list
	assert_output --regexp '^postgresql-bin@v'
}

@test "a file Plakar cannot hold (a name that is not UTF-8) fails the backup, naming it: no snapshot with a hole in it" {
	plakar pkg add "$PTAR" >/dev/null
	plakar at "$W/store" create -plaintext >/dev/null
	bad=$T/src/data/$(printf 'caf\351')
	touch "$bad"
	run -1 plakar at "$W/store" backup "postgres+bin://replicator:secret@127.0.0.1:$PORT"
	rm -f "$bad"
	assert_output --partial "a file whose name is not UTF-8 (hex 2f646174612f636166e9): Plakar cannot hold it; rename it"
	refute_output --partial "completed with"
	run -0 snapshots
	assert_output ''
}

@test "no password available: it says so, and never prompts, even on a terminal" {
	# script(1) gives the wrapper a terminal, where psql would prompt
	run timeout 20 script -qec "plakar-pg check postgres+bin://replicator@127.0.0.1:$PORT" /dev/null
	[ "$status" -ne 124 ] || fail "it waited for a password on the terminal"
	assert_equal "$status" 2
	assert_output --partial 'pgprobe: no password supplied: the server wants one for role replicator'
	refute_output --partial 'Password'
}
