#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# uriparse: the location and its options, normalized, validated and safe.

setup() {
	load ../helpers/common
	cd "$BATS_TEST_TMPDIR"
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
	mkdir -p "$TMPDIR"
}

# json LOCATION/OPTIONS... : the normalized options
json() {
	uriparse -j "$@"
}

@test "valid locations and options: the normalized result" {
	d='"ssl_cert":null,"ssl_key":null,"ssl_root_cert":null,"pg_bin_dir":null,"ssl_mode":"prefer","connect_timeout":10,"checkpoint":"fast","label":null,"max_rate":null,"progress":"auto","wal_method":"fetch","hold_wal":"on","strict":"off","silence_timeout":600,"stall_timeout":600'
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

# env_of OPTION...: the libpq environment uriparse runs a command with.
env_of() {
	env -i PATH="$PATH" uriparse "$@" -- env | grep -E '^(PG|PLAKAR_PG_)' | sort
}

@test "the command runs with libpq's environment, nothing printed, nothing evaluated" {
	run -0 env_of 'postgres+bin://rep@db:5433' ssl_mode=require
	assert_output "PGCONNECT_TIMEOUT=10
PGHOST=db
PGPORT=5433
PGSSLMODE=require
PGUSER=rep"
	# what the caller had set, the location overrides; the rest stays
	run -0 env PGHOST=other PGSSLKEY=/k PGPASSFILE=/mine uriparse 'postgres+bin://rep@db' -- sh -c 'echo "$PGHOST $PGSSLKEY $PGPASSFILE"'
	assert_output "db  /mine"
	# -j and a command are one or the other
	run -1 uriparse -j h=x -- true
	run -1 uriparse 'postgres+bin://h'
	run -1 uriparse 'postgres+bin://h' --
}

@test "invalid input: one line naming what is wrong, exit 1" {
	check() {
		run -1 --separate-stderr uriparse "${@:2}" -- true
		assert_equal "$stderr" "uriparse: $1"
		assert_output ''
	}
	check 'location: a subpath is not allowed: pg_basebackup backs up the whole cluster' 'postgres+bin://h/postgres'
	check 'location: a subpath is not allowed: pg_basebackup backs up the whole cluster' 'postgres+bin://h//'
	check 'location: a query string is not allowed; give options as key=value' 'postgres+bin://h?sslmode=require'
	check 'location: a query string is not allowed; give options as key=value' 'postgres+bin://h/?x'
	check 'location: a fragment is not allowed' 'postgres+bin://h#x'
	check 'location: not a postgres+bin:// URI' 'postgres://h'
	check 'location: port: a whole number from 1 to 65535' 'postgres+bin://h:0'
	check 'location: port: a whole number from 1 to 65535' 'postgres+bin://h:65536'
	check 'location: port: a whole number from 1 to 65535' 'postgres+bin://[::1]:x'
	check 'location: libpq cannot parse it (an IPv6 address in brackets? percent-encoding?)' 'postgres+bin://[::1'
	check 'location: libpq cannot parse it (an IPv6 address in brackets? percent-encoding?)' 'postgres+bin://[::1]x'
	check 'location: libpq cannot parse it (an IPv6 address in brackets? percent-encoding?)' 'postgres+bin://%zz@h'
	check 'location: libpq cannot parse it (an IPv6 address in brackets? percent-encoding?)' 'postgres+bin://u:%4@h'
	check 'location: libpq cannot parse it (an IPv6 address in brackets? percent-encoding?)' 'postgres+bin://a%00b'
	check 'port: a whole number from 1 to 65535' port=-1
	check 'port: a whole number from 1 to 65535' port=5432x
	check 'location: one host: a backup comes from one server, not a list' 'postgres+bin://a,b:5432'
	check 'host: one host: a backup comes from one server, not a list' host=a,b
	check 'username: longer than 63 bytes' username=$(printf 'u%.0s' {1..64})
	check 'location: username: longer than 63 bytes' postgres+bin://$(printf 'u%.0s' {1..64})@h
	check 'unknown option: sslmode' sslmode=require
	check 'not key=value: junk' junk
	check 'host: given twice' host=a host=b
	check 'ssl_mode: disable, allow, prefer, require, verify-ca or verify-full' ssl_mode=on
	check 'ssl_cert: /nonexistent.crt: No such file or directory' ssl_cert=/nonexistent.crt
	check 'ssl_root_cert: /tmp: not a regular file' ssl_root_cert=/tmp
	check 'ssl_key and ssl_key_data: give one, not both' ssl_key=/etc/hostname 'ssl_key_data=-----BEGIN PRIVATE KEY-----'
	check 'ssl_cert_data: not PEM text (-----BEGIN ...)' ssl_cert_data=hello
	check 'pg_bin_dir: /tmp has no executable pg_basebackup' pg_bin_dir=/tmp
	check 'connect_timeout: a whole number from 0 to 2147483647' connect_timeout=1s
	run -1 --separate-stderr sh -c 'printf "password=a\\nb\\n" | uriparse -i -F 3 -- true 3>st'
	assert_equal "$stderr" "uriparse: stdin line 2: not key=value"
	assert_equal "$(first_failure st)" "uriparse usage 1"
}

@test "pg_bin_dir with pg_basebackup is taken" {
	run -0 env_of pg_bin_dir="$PGBIN"
	assert_line "PLAKAR_PG_BIN_DIR=$PGBIN"
}

@test "hostile values in every field reach the command intact: no shell reads them" {
	for v in "it's" '$(touch pwned)' '`touch pwned`' 'a;touch pwned' 'sp ace' '"dq"' '\back\slash' '$HOME' '*' '-n' 'ünï'; do
		pw=$v
		# shellcheck disable=SC2016
		run -0 uriparse -i host="$v" username="$v" -- sh -c 'printf "%s\n%s\n" "$PGHOST" "$PGUSER"; stat -L -c %a "$PGPASSFILE"; cat "$PGPASSFILE"' <<<"password=$pw"
		[ ! -e pwned ] || fail "a command ran for value $v"
		assert_equal "$output" "$v
$v
600
*:*:*:*:$(printf '%s' "$pw" | sed 's/[\\:]/\\&/g')"
	done 2>/dev/null
	# a password with a newline cannot be written to a pgpass file
	run -1 --separate-stderr uriparse "password=a
b" -- true
	assert_equal "$stderr" "uriparse: password: a control character (0x0a) is not allowed: a value is one line"
}

@test "the password: never on stdout or stderr, in a sealed 0600 memfd that no file system names" {
	# shellcheck disable=SC2016
	run -0 --separate-stderr uriparse -i 'postgres+bin://u@h' -- sh -c 'readlink "$PGPASSFILE"; stat -L -c %a "$PGPASSFILE"; cat "$PGPASSFILE"; printf x >> "$PGPASSFILE" || echo sealed' <<<'password=s3cr:et\x'
	assert_line -n 0 --regexp '^/memfd:pgpass \(deleted\)$'
	assert_line -n 1 600
	assert_line -n 2 '*:*:*:*:s3cr\:et\\x'
	assert_line -n 3 sealed
	run -0 json -i <<<'password=s3cr3t'
	refute_output --partial 's3cr3t'
	# nothing in TMPDIR, ever
	run -0 find "$TMPDIR" -mindepth 1
	assert_output ''
}

@test "inline PEM data goes into 0600 memfds" {
	pem='-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----'
	# shellcheck disable=SC2016
	run -0 uriparse -i -- sh -c 'stat -L -c %a "$PGSSLROOTCERT" "$PGSSLKEY"; readlink "$PGSSLKEY"; cat "$PGSSLROOTCERT"' <<<"ssl_root_cert_data=$pem
ssl_key_data=$pem"
	assert_equal "$output" "600
600
/memfd:client.key (deleted)
$(printf '%b' "$pem")"
	run -0 find "$TMPDIR" -mindepth 1
	assert_output ''
}

# A server on 127.0.0.1 that wants a scram-sha-256 password over TCP.
start_tcp_server() {
	T=$(pg_tmpdir)
	PW='p@ss:w0rd'\''"$(x)`y`;\'
	pg_tcp_cluster "$T/src" rep "$PW"
}

@test "a connection through the command: TCP with a scram password, and the socket" {
	start_tcp_server
	unset PGHOST PGPORT PGUSER PGDATABASE
	# the password travels on stdin only
	run -0 sh -c "printf 'password=%s\n' \"\$1\" | uriparse -i 'postgres+bin://rep@127.0.0.1:$PORT' ssl_mode=disable -- psql -d postgres -tAXc 'SELECT current_user, inet_server_addr() IS NOT NULL'" sh "$PW"
	assert_output 'rep|t'
	run -0 sh -c "printf 'password=%s\n' \"\$1\" | uriparse -i 'postgres+bin://rep@127.0.0.1:$PORT' ssl_mode=disable -- sh -c 'pg_basebackup -D - -F tar -X none -c fast 2>/dev/null | tarsplit -t | grep -c /data/PG_VERSION'" sh "$PW"
	assert_output 1
	# a wrong password fails, and does not fall back to anything else
	run sh -c "printf 'password=wrong\n' | uriparse -i 'postgres+bin://rep@127.0.0.1:$PORT' ssl_mode=disable -- psql -d postgres -tAXc 'SELECT 1'"
	[ "$status" -ne 0 ]
	assert_output --partial 'password authentication failed for user "rep"'
	# the Unix socket, as an option and percent-encoded in the location
	enc=$(printf '%s' "$T/src" | sed 's,/,%2F,g')
	for args in "host=$T/src port=$PORT username=postgres" "postgres+bin://postgres@$enc:$PORT"; do
		# shellcheck disable=SC2086
		run -0 uriparse $args -- psql -d postgres -tAXc 'SELECT current_user, inet_server_addr() IS NULL'
		assert_output 'postgres|t'
	done
	pg_cleanup "$T"
}

teardown() {
	[ -z "${T:-}" ] || pg_cleanup "$T"
}
