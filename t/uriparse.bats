#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# uriparse: the location and its options, normalized, validated and safe.

setup() {
	load common
	cd "$BATS_TEST_TMPDIR"
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
	mkdir -p "$TMPDIR"
}

# json LOCATION/OPTIONS... : the normalized options
json() {
	uriparse -j "$@"
}

@test "valid locations and options: the normalized result" {
	d='"pg_bin_dir":null,"ssl_mode":"prefer","ssl_cert":null,"ssl_key":null,"ssl_root_cert":null,"connect_timeout":10'
	check() {
		run -0 json "${@:2}"
		assert_output "{$1,$d}"
	}
	check '"host":"db.example.com","port":5432,"username":null,"password":null' 'postgres+bin://db.example.com'
	check '"host":"db","port":5433,"username":"rep","password":"********"' 'postgres+bin://rep:secret@db:5433'
	check '"host":"db","port":5432,"username":"rep","password":null' 'postgres+bin://rep@db/'
	check '"host":"::1","port":5433,"username":null,"password":null' 'postgres+bin://[::1]:5433'
	check '"host":"fe80::1","port":5432,"username":null,"password":null' 'postgres+bin://[fe80::1]'
	check '"host":"/var/run/postgresql","port":5432,"username":null,"password":null' 'postgres+bin://%2Fvar%2Frun%2Fpostgresql'
	check '"host":"localhost","port":5432,"username":null,"password":"********"' 'postgres+bin://:pw@'
	check '"host":"h","port":5432,"username":"a@b","password":"********"' 'postgres+bin://a%40b:p%3Aw@h'
	check '"host":"h","port":5432,"username":"u","password":"********"' 'postgres+bin://u:p@ss@h'
	check '"host":"localhost","port":5432,"username":null,"password":null'
	check '"host":"other","port":7000,"username":"me","password":"********"' 'postgres+bin://u:p@h:1' host=other port=7000 username=me password=x
	check '"host":"/tmp/sock","port":5432,"username":null,"password":null' location=postgres+bin://h host=/tmp/sock
	check '"host":"h","port":5432,"username":null,"password":null' 'POSTGRES+BIN://h'
}

@test "the shell output: libpq's environment" {
	run -0 uriparse 'postgres+bin://rep@db:5433' ssl_mode=require
	assert_output "export PGHOST='db'
export PGPORT='5433'
export PGUSER='rep'
export PGSSLMODE='require'
unset PGSSLCERT
unset PGSSLKEY
unset PGSSLROOTCERT
export PGCONNECT_TIMEOUT='10'
unset PLAKAR_PG_BIN_DIR
unset PLAKAR_PG_TMPDIR"
}

@test "invalid input: one line naming what is wrong, exit 1" {
	check() {
		run -1 --separate-stderr uriparse "${@:2}"
		assert_equal "$stderr" "uriparse: $1"
		assert_output ''
	}
	check 'location: a subpath is not allowed: pg_basebackup backs up the whole cluster' 'postgres+bin://h/postgres'
	check 'location: a subpath is not allowed: pg_basebackup backs up the whole cluster' 'postgres+bin://h//'
	check 'location: a query string is not allowed; give options as key=value' 'postgres+bin://h?sslmode=require'
	check 'location: a query string is not allowed; give options as key=value' 'postgres+bin://h/?x'
	check 'location: a fragment is not allowed' 'postgres+bin://h#x'
	check 'location: not a postgres+bin:// URI' 'postgres://h'
	check 'location: port: not a port number from 1 to 65535' 'postgres+bin://h:0'
	check 'location: port: not a port number from 1 to 65535' 'postgres+bin://h:65536'
	check 'location: port: not a port number from 1 to 65535' 'postgres+bin://h:'
	check 'location: port: not a port number from 1 to 65535' 'postgres+bin://[::1]:x'
	check 'location: unclosed [ in the host' 'postgres+bin://[::1'
	check 'location: junk after ]' 'postgres+bin://[::1]x'
	check 'location: bad percent-encoding in the user' 'postgres+bin://%zz@h'
	check 'location: bad percent-encoding in the password' 'postgres+bin://u:%4@h'
	check 'location: %00 in the host' 'postgres+bin://a%00b'
	check 'port: not a port number from 1 to 65535' port=-1
	check 'port: not a port number from 1 to 65535' port=5432x
	check 'unknown option: sslmode' sslmode=require
	check 'not key=value: junk' junk
	check 'host: given twice' host=a host=b
	check 'ssl_mode: not one of disable, allow, prefer, require, verify-ca, verify-full' ssl_mode=on
	check 'ssl_cert: /nonexistent.crt: No such file or directory' ssl_cert=/nonexistent.crt
	check 'ssl_root_cert: /tmp: not a regular file' ssl_root_cert=/tmp
	check 'ssl_key and ssl_key_data: give one, not both' ssl_key=/etc/hostname 'ssl_key_data=-----BEGIN'
	check 'ssl_cert_data: not PEM text' ssl_cert_data=hello
	check 'pg_bin_dir: /tmp has no executable pg_basebackup' pg_bin_dir=/tmp
	check 'connect_timeout: not a number of seconds' connect_timeout=1s
	run -1 --separate-stderr sh -c 'printf "password=a\\nb\\n" | uriparse -i'
	assert_equal "$stderr" "uriparse: stdin line 2: not key=value"
}

@test "pg_bin_dir with pg_basebackup is taken" {
	run -0 uriparse pg_bin_dir="$PGBIN"
	assert_line "export PLAKAR_PG_BIN_DIR='$PGBIN'"
}

@test "hostile values in every field are harmless under eval" {
	for v in "it's" '$(touch pwned)' '`touch pwned`' 'a;touch pwned' 'sp ace' "new
line" '"dq"' '\back\slash' '$HOME' '*' '-n'; do
		pw=${v//$'\n'/ }	# stdin has one option a line
		run -0 uriparse -i host="$v" username="$v" <<<"password=$pw"
		out=$output
		unset PGHOST PGUSER PGPASSFILE PLAKAR_PG_TMPDIR
		eval "$out"
		[ ! -e pwned ] || fail "eval ran a command for value $v"
		assert_equal "$PGHOST" "$v"
		assert_equal "$PGUSER" "$v"
		[ "$(stat -c %a "$PGPASSFILE")" = 600 ] || fail "pgpass mode"
		[ "$(cat "$PGPASSFILE")" = "*:*:*:*:$(printf '%s' "$pw" | sed 's/[\\:]/\\&/g')" ] || fail "pgpass for $v"
		rm -rf "$PLAKAR_PG_TMPDIR"
	done 2>/dev/null
	# a password with a newline cannot be written to a pgpass file
	run -1 --separate-stderr uriparse "password=a
b"
	assert_equal "$stderr" "uriparse: password: a newline cannot be passed to libpq"
}

@test "the password: never on stdout or stderr, in a 0600 pgpass file" {
	run -0 --separate-stderr uriparse -i 'postgres+bin://u@h' <<<'password=s3cr:et\x'
	refute_output --partial 's3cr'
	assert_equal "$stderr" ""
	eval "$output"
	assert_equal "$(stat -c %a "$PGPASSFILE")" 600
	assert_equal "$(stat -c %a "$PLAKAR_PG_TMPDIR")" 700
	assert_equal "$(cat "$PGPASSFILE")" '*:*:*:*:s3cr\:et\\x'
	run -0 json -i <<<'password=s3cr3t'
	refute_output --partial 's3cr3t'
	rm -rf "$PLAKAR_PG_TMPDIR"
	# nothing is left behind by what removed PLAKAR_PG_TMPDIR
	run -0 find "$TMPDIR" -mindepth 1
	assert_output ''
}

@test "inline PEM data goes into 0600 files" {
	pem='-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----'
	run -0 uriparse -i <<<"ssl_root_cert_data=$pem
ssl_key_data=$pem"
	eval "$output"
	assert_equal "$(stat -c %a "$PGSSLROOTCERT")" 600
	assert_equal "$(stat -c %a "$PGSSLKEY")" 600
	assert_equal "$(cat "$PGSSLROOTCERT")" "$(printf '%b' "$pem")"
	rm -rf "$PLAKAR_PG_TMPDIR"
}

@test "no temporary file without a secret" {
	run -0 uriparse 'postgres+bin://u@h'
	run -0 find "$TMPDIR" -mindepth 1
	assert_output ''
}

# A server on 127.0.0.1 that wants a scram-sha-256 password over TCP.
start_tcp_server() {
	T=$(pg_tmpdir)
	PW='p@ss:w0rd'\''"$(x)`y`;\'
	pg_tcp_cluster "$T/src" rep "$PW"
}

@test "a connection with the output: TCP with a scram password, and the socket" {
	start_tcp_server
	# the password travels on stdin only
	out=$(printf 'password=%s\n' "$PW" | uriparse -i "postgres+bin://rep@127.0.0.1:$PORT" ssl_mode=disable)
	(
		unset PGHOST PGPORT PGUSER PGDATABASE
		eval "$out"
		run -0 psql -d postgres -tAXc 'SELECT current_user, inet_server_addr() IS NOT NULL'
		assert_output 'rep|t'
		run -0 sh -c 'pg_basebackup -D - -F tar -X none -c fast 2>/dev/null | tarsplit -t | grep -c /data/PG_VERSION'
		assert_output 1
		rm -rf "$PLAKAR_PG_TMPDIR"
	)
	# a wrong password fails, and does not fall back to anything else
	out=$(printf 'password=wrong\n' | uriparse -i "postgres+bin://rep@127.0.0.1:$PORT" ssl_mode=disable)
	(
		eval "$out"
		run psql -d postgres -tAXc 'SELECT 1'
		[ "$status" -ne 0 ]
		assert_output --partial 'password authentication failed for user "rep"'
		rm -rf "$PLAKAR_PG_TMPDIR"
	)
	# the Unix socket, as an option and percent-encoded in the location
	enc=$(printf '%s' "$T/src" | sed 's,/,%2F,g')
	for args in "host=$T/src port=$PORT username=postgres" "postgres+bin://postgres@$enc:$PORT"; do
		# shellcheck disable=SC2086
		out=$(uriparse $args)
		(
			eval "$out"
			run -0 psql -d postgres -tAXc 'SELECT current_user, inet_server_addr() IS NULL'
			assert_output 'postgres|t'
		)
	done
	pg_cleanup "$T"
}

teardown() {
	[ -z "${T:-}" ] || pg_cleanup "$T"
}
