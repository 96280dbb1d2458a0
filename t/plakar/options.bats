#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# The walk: every row of plakar/options, with values derived from its type
# alone (each bound, one past it, a word of the wrong kind, a control
# character), through every place a value is checked: plakar-pg options,
# plakar source check, plakar-pg backup, and plakar backup for the
# plugin's own.  One verdict per value: refused everywhere, with one line
# naming the key, before any connection to the server; or taken
# everywhere, the backup made.  A type the walk cannot derive values for
# fails it, so a new type comes with its values.  WALK_TRACE=1 shows each
# value on the way.

setup_file() {
	load ../helpers/common
	load ../helpers/plakar
	pg_suite_cluster
	psql -qX -v ON_ERROR_STOP=1 \
		-v long="$(printf 'x%.0s' $(seq 63))" -v me="$(id -un)" <<-'SQL'
		ALTER SYSTEM SET log_connections = on;
		SELECT pg_reload_conf();
		CREATE ROLE :"long" LOGIN REPLICATION;
		CREATE ROLE :"me" LOGIN REPLICATION;
	SQL
	# ports 1 and 65535: the cluster's socket under their numbers
	mkdir "$T/ports"
	ln -s "$T/src/.s.PGSQL.5432" "$T/ports/.s.PGSQL.1"
	ln -s "$T/src/.s.PGSQL.5432" "$T/ports/.s.PGSQL.65535"
	plakar_suite_plakar
	plakar pkg add "$PTAR" >/dev/null
	plakar at "$T/store" create -plaintext >/dev/null
}

teardown_file() {
	plakar_suite_end
}

setup() {
	load ../helpers/common
	load ../helpers/plakar
	pg_env "$T/src"
	export XDG_CONFIG_HOME=$T/plakar/config XDG_CACHE_HOME=$T/plakar/cache \
		XDG_DATA_HOME=$T/plakar/data
	cd "$T" || return 1
}

OPTIONS=$BATS_TEST_DIRNAME/../../plakar/options

# The table's rows as "key<TAB>program<TAB>type".
rows() {
	awk -F '\t' '!/^#/ && NF { print $1 "\t" $2 "\t" $3 }' "$OPTIONS"
}

# values TYPE...: GOOD and BAD, the values the walk tries for a type.
values() {
	local type=$1 n lo hi
	shift
	case $type in
	int)
		lo=$1 hi=$2
		GOOD=("$lo" "$hi")
		BAD=("$((lo - 1))" "$((hi + 1))" ten "$lo"$'\001') ;;
	enum)
		GOOD=("$@")
		BAD=(bogus "${1^^}" "$1"$'\t') ;;
	rate)
		lo=$1 hi=$2
		GOOD=("$lo" "${lo}k" "$hi" "$((hi / 1024))M")
		BAD=("$((lo - 1))" "$((hi + 1))" "$((hi / 1024 + 1))M" fast "$lo"$'\001') ;;
	text)
		n=$1
		GOOD=("" "$(printf 'x%.0s' $(seq "$n"))")
		BAD=("$(printf 'x%.0s' $(seq $((n + 1))))" $'a\001b') ;;
	secret)
		GOOD=(secret)
		BAD=($'a\nb') ;;
	file)
		GOOD=(/etc/hostname)
		BAD=(/nonexistent "$T" $'/etc/hostname\001') ;;
	pem)
		GOOD=($'-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
			$'-----BEGIN CERTIFICATE-----\r\nMIIB\r\n-----END CERTIFICATE-----\r\n')
		BAD=(hello $'-----BEGIN CERTIFICATE-----\001') ;;
	bindir)
		GOOD=("$PGBIN")
		BAD=(/nonexistent "$T" "$PGBIN"$'\001') ;;
	host)
		GOOD=("$T/src")
		BAD=("$T/src,$T/src" "$T/src"$'\001') ;;
	location)
		GOOD=("postgres+bin://postgres@${T//\//%2F}%2Fsrc"
			"postgres+bin://postgres:secret@${T//\//%2F}%2Fsrc:5432")
		BAD=(postgres://h postgres+bin://h/postgres 'postgres+bin://h?x=1'
			postgres+bin://h#x postgres+bin://h:0 postgres+bin://h:65536
			'postgres+bin://a,b' $'postgres+bin://h\001') ;;
	*)
		fail "plakar/options: the walk has no values for type $type" ;;
	esac
}

# The connections the server has received so far.
connections() {
	grep -c "connection received" "$T/src/server.log" || true
}

# base KEY: OPTS, the source's other options, where KEY's values can work.
base() {
	case $1 in
	location) OPTS=() ;;
	host) OPTS=(location=postgres+bin:// username=postgres) ;;
	port) OPTS=(location=postgres+bin:// host="$T/ports" username=postgres) ;;
	username) OPTS=(location=postgres+bin:// host="$T/src") ;;
	*) OPTS=(location=postgres+bin:// host="$T/src" username=postgres) ;;
	esac
}

# A value shown on one line, its first 40 bytes.
shown() {
	printf '%s=%q' "$1" "${2:0:40}"
}

# A rate in kB/s.
kbps() {
	case $1 in
	*k) echo "${1%k}" ;;
	*M) echo $((${1%M} * 1024)) ;;
	*) echo "$1" ;;
	esac
}

# The source NAME in Plakar: its location first, then the rest.
source_add() {
	local name=$1 loc='' o rest=()
	shift
	for o in "$@"; do
		case $o in
		location=*) loc=${o#location=} ;;
		*) rest+=("$o") ;;
		esac
	done
	plakar source add "$name" "$loc" "${rest[@]}"
}

SOURCES=0

# refused KEY VALUE: one line naming KEY from each, exit 1, no connection.
refused() {
	local key=$1 v=$2 before line src
	base "$key"
	OPTS+=("$key=$v")
	before=$(connections)
	run --separate-stderr plakar-pg options "${OPTS[@]}"
	line=$stderr
	[ "$status" = 1 ] && [[ $line == "uriparse: $key: "* ]] &&
		[[ $line != *$'\n'* ]] ||
		fail "$(shown "$key" "$v"): plakar-pg options: exit $status: $line"
	run --separate-stderr plakar-pg backup "${OPTS[@]}"
	[ "$status" = 1 ] && [ "$stderr" = "$line" ] ||
		fail "$(shown "$key" "$v"): plakar-pg backup: exit $status: $stderr"
	# Plakar routes by scheme: another one is not ours to check
	if [ "$key" != location ] || [[ $v == postgres+bin://* ]]; then
		SOURCES=$((SOURCES + 1))
		src=walk${BATS_TEST_NUMBER}_$SOURCES
		source_add "$src" "${OPTS[@]}"
		run plakar source check "$src"
		[ "$status" = 1 ] && [[ $output == *"${line#uriparse: }"* ]] ||
			fail "$(shown "$key" "$v"): plakar source check said: $output"
		if [ "$key" = stall_timeout ]; then
			run plakar at "$T/store" backup "@$src"
			[ "$status" -ne 0 ] && [[ $output == *"${line#uriparse: }"* ]] ||
				fail "$(shown "$key" "$v"): plakar backup said ($status): $output"
		fi
	fi
	[ "$(connections)" = "$before" ] ||
		fail "$(shown "$key" "$v"): refused, but the server was connected to"
}

# taken KEY VALUE: accepted everywhere, and the backup made; at a rate
# under 1 MB/s, started and stopped by a timeout.
taken() {
	local key=$1 v=$2 before src rc
	base "$key"
	OPTS+=("$key=$v")
	run --separate-stderr plakar-pg options "${OPTS[@]}"
	[ "$status" = 0 ] || fail "$(shown "$key" "$v"): plakar-pg options: $stderr"
	SOURCES=$((SOURCES + 1))
	src=walk${BATS_TEST_NUMBER}_$SOURCES
	source_add "$src" "${OPTS[@]}"
	run plakar source check "$src"
	[ "$status" -eq 0 ] || fail "$(shown "$key" "$v"): plakar source check: $output"
	if [ "$key" = max_rate ] && [ "$(kbps "$v")" -lt 1024 ]; then
		before=$(connections)
		rc=0
		timeout 3 plakar-pg backup "${OPTS[@]}" >/dev/null 2>walk.err || rc=$?
		[ "$rc" = 124 ] && [ "$(connections)" -gt "$before" ] ||
			fail "$(shown "$key" "$v"): the slow backup: exit $rc, $(cat walk.err)"
		return 0
	fi
	rc=0
	timeout 60 plakar-pg backup -F 3 "${OPTS[@]}" >walk.frames 2>walk.err 3>walk.status || rc=$?
	[ "$rc" = 0 ] && [ "$(last_type walk.frames)" = end ] ||
		fail "$(shown "$key" "$v"): plakar-pg backup: exit $rc, $(first_failure walk.status): $(cat walk.err)"
	if [ "$key" = stall_timeout ]; then
		run plakar at "$T/store" backup "@$src"
		[ "$status" -eq 0 ] || fail "$(shown "$key" "$v"): plakar backup: $output"
	fi
}

walk() {
	local program=$1 key type v found=0
	while IFS=$'\t' read -r key prog type; do
		[ "$prog" = "$program" ] || continue
		found=1
		# shellcheck disable=SC2086 # the type's words
		values $type
		for v in "${BAD[@]}"; do
			[ -z "${WALK_TRACE:-}" ] || echo "# refused? $(shown "$key" "$v")" >&3
			refused "$key" "$v"
		done
		for v in "${GOOD[@]}"; do
			[ -z "${WALK_TRACE:-}" ] || echo "# taken? $(shown "$key" "$v")" >&3
			taken "$key" "$v"
		done
	done < <(rows)
	[ "$found" = 1 ] || fail "no rows for $program"
}

@test "the walk: the connection's options (uriparse), each value one verdict everywhere" {
	walk uriparse
}

@test "the walk: the backup's options (plakar-pg, through basetar), each value one verdict everywhere" {
	walk plakar-pg
}

@test "the walk: the plugin's own options (plakar-pg-importer), each value one verdict everywhere" {
	walk plakar-pg-importer
}
