#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# tarjoin: frames back into a tar stream or a directory; fail-closed.

setup() {
	load ../helpers/common
	cd "$BATS_TEST_TMPDIR"
	mkdir -p src/global src/sub
	printf '15\n' > src/PG_VERSION
	printf 'control' > src/global/pg_control
	printf 'hello' > src/sub/file
	ln -s PG_VERSION src/link
	chmod 640 src/sub/file
	chmod 750 src/sub
	touch -h -d @1700000000 src/sub/file src/link
	touch -d @1600000000 src/sub
	tar --format=ustar -b 1 --no-recursion -C src -cf simple.tar \
		PG_VERSION sub sub/file link global global/pg_control
	tarsplit -n < simple.tar > frames
}

B='{"type":"begin","version":1,"producer":"test"}'
F='{"type":"file","path":"/data/a","size":3,"mode":384,"mtime":0,"uid":0,"gid":0,"uname":"","gname":""}'

@test "-C restores files, modes, mtimes and links into a 0700 directory" {
	run -0 tarjoin -C out < frames
	assert_equal "$(stat -c %a out)" 700
	assert_equal "$(cat out/PG_VERSION)" 15
	assert_equal "$(stat -c '%a %Y' out/sub/file)" "640 1700000000"
	assert_equal "$(stat -c '%a %Y' out/sub)" "750 1600000000"
	assert_equal "$(readlink out/link)" PG_VERSION
	assert_equal "$(cat out/global/pg_control)" control
	[ ! -e out/global/pg_control.partial ]
}

@test "the tar stream extracts with tar -x to the same tree" {
	tarjoin < frames > back.tar
	mkdir x
	tar -C x -xpf back.tar
	run -0 diff -r src x
	assert_equal "$(stat -c %Y x/sub/file)" 1700000000
}

@test "-C refuses a directory that is not empty" {
	mkdir out
	touch out/postmaster.pid
	run -1 --separate-stderr tarjoin -C out < frames
	assert_equal "$stderr" "tarjoin: out: directory not empty"
}

@test "a stream without its end frame is refused and leaves no pg_control" {
	head -c -1 frames > cut	# drop the end frame's newline
	run -1 --separate-stderr tarjoin -C out < cut
	assert_equal "$stderr" "tarjoin: bad frame after 6 records: truncated frame header; out is incomplete and will not start"
	[ ! -e out/global/pg_control ] && [ ! -e out/global/pg_control.partial ]
	python3 -c 'import sys; d = open("frames", "rb").read(); sys.stdout.buffer.write(d[:d.rindex(b"{\"type\":\"end\"")])' > noend
	run -1 --separate-stderr tarjoin -C out2 < noend
	assert_equal "$stderr" "tarjoin: incomplete stream: it ends without an end frame; out2 is incomplete and will not start"
	[ ! -e out2/global/pg_control ]
}

@test "a stream cut anywhere fails, and tar -x fails on what came out" {
	size=$(stat -c %s frames)
	for cut in 0 10 70 100 300 $((size / 2)) $((size - 50)) $((size - 1)); do
		head -c "$cut" frames > cut
		run tarjoin -C "out$cut" < cut
		[ "$status" -eq 1 ] || fail "cut at $cut: status $status"
		[ ! -e "out$cut/global/pg_control" ] || fail "cut at $cut: pg_control"
		run bash -c "tarjoin < cut | tar -C out$cut -xf -"
		[ "$status" -ne 0 ] || fail "cut at $cut: tar -x succeeded"
	done
}

@test "the producer's error frame fails the restore with its message" {
	printf '%s\n%s\nabc{"type":"error","message":"disk on fire"}\n' "$B" "$F" > s
	run -1 --separate-stderr tarjoin -C out < s
	assert_equal "$stderr" "tarjoin: the backup failed: disk on fire; out is incomplete and will not start"
	# a message with a newline and terminal escapes: one safe line
	printf '%s\n%s\nabc{"type":"error","message":"evil\\u001b[2J\\nSTART TIMELINE: 7"}\n' "$B" "$F" > s
	run -1 --separate-stderr tarjoin -C out2 < s
	assert_equal "$stderr" "tarjoin: the backup failed: evil?[2J?START TIMELINE: 7; out2 is incomplete and will not start"
}

@test "bad streams: each gets its own one-line reason" {
	check() {
		printf "$1" > s
		run -1 --separate-stderr tarjoin < s
		assert_equal "$stderr" "tarjoin: $2"
	}
	check '' 'empty input: no frames'
	check 'hello\n' 'not a frame stream: frame header is not a JSON object: '"'"'['"'"' or '"'"'{'"'"' expected near '"'"'hello'"'"''
	check "$F\n" 'not a frame stream: it does not start with a begin frame'
	check '{"type":"begin","version":2,"producer":"x"}\n' 'frame version 2, this reader reads version 1'
	check "$B\n$F\nabc"'{"type":"end","records":2,"bytes":3}\n' 'end frame counts 2 records and 3 bytes, the stream had 1 and 3'
	check "$B\n"'{"type":"end","records":0,"bytes":0}\nmore\n' 'data after the end frame'
	check "$B\n"'{"type":"file","path":"/data/../x","size":0,"mode":384,"mtime":0,"uid":0,"gid":0,"uname":"","gname":""}\n' 'bad frame after 0 records: unsafe record path'
	check "$B\n"'{"type":"file","path":"/data/x","mode":384,"mtime":0,"uid":0,"gid":0,"uname":"","gname":""}\n' 'bad frame after 0 records: frame without integer "size"'
	check "$B\n"'{"type":"dir","path":"/data/x","mode":99999,"mtime":0,"uid":0,"gid":0,"uname":"","gname":""}\n' 'bad frame after 0 records: frame "mode" out of range'
	check "$B\n"'{"type":"fifo","path":"/data/x"}\n' 'bad frame after 0 records: unknown frame type "fifo"'
	check "$B\n$F\nab" 'truncated stream: a file'"'"'s payload is cut short'
}

@test "path_hex names come back as the same bytes" {
	name=$(printf 'caf\351')
	printf 'y' > "src/$name"
	tar --format=ustar -C src -cf hex.tar "$name"
	tarsplit -n < hex.tar > hexframes
	grep -aq path_hex hexframes
	run -0 tarjoin -C out < hexframes
	assert_equal "$(cat "out/$name")" y
}

@test "global/pg_control only as the regular file, after the end frame: a link to a file written before is refused" {
	hdr='"mode":384,"mtime":1,"uid":0,"gid":0,"uname":"","gname":""'
	for link in "{\"type\":\"hardlink\",\"path\":\"/data/global/pg_control\",\"target\":\"/data/global/pgc\",$hdr}" \
		"{\"type\":\"symlink\",\"path\":\"/data/global/pg_control\",\"target\":\"pgc\",$hdr}"; do
		rm -rf out
		{
			printf '{"type":"begin","version":1,"producer":"crafted"}\n'
			printf '{"type":"dir","path":"/data/global",%s}\n' "$hdr"
			printf '{"type":"file","path":"/data/global/pgc","size":4,%s}\nctl\n' "$hdr"
			printf '%s\n' "$link"
		} > crafted.frames
		run -1 --separate-stderr tarjoin -C out < crafted.frames
		assert_equal "$stderr" "tarjoin: /data/global/pg_control: not the one regular file pg_basebackup sends; out is incomplete and will not start"
		[ ! -e out/global/pg_control ] && [ ! -L out/global/pg_control ] || fail "pg_control left by $link"
	done
}

@test "-t: the headers as tarsplit wrote them, payloads skipped; the same laws as -C; -t with -C is bad usage" {
	# tarsplit | tarjoin -t lists what tarsplit -t lists, begin and end around
	run -0 tarjoin -t < frames
	assert_equal "$(sed '1d;$d' <<<"$output")" "$(tarsplit -n -t < simple.tar | grep -v '"type":"\(begin\|end\)"')"
	assert_equal "$(head -n 1 <<<"$output")" "$(head -n 1 frames)"
	assert_equal "$(tail -n 1 <<<"$output")" '{"type":"end","records":6,"bytes":15}'
	# a cut stream: what came, then damaged, 1
	head -c 300 frames > cut
	run -1 --separate-stderr tarjoin -t -F 3 < cut 3> st
	assert_equal "$output" "$(head -n 2 frames)"
	assert_equal "$(first_failure st)" "tarjoin damaged 1"
	# an error frame is listed, and fails the stream
	printf '%s\n{"type":"error","message":"disk on fire"}\n' "$B" > err
	run -1 --separate-stderr tarjoin -t < err
	assert_equal "$(tail -n 1 <<<"$output")" '{"type":"error","message":"disk on fire"}'
	assert_equal "$stderr" "tarjoin: the backup failed: disk on fire"
	run -1 tarjoin -t -C out < frames
	[ ! -e out ]
}

@test "one codec both ways: tarjoin's tar read by tarsplit gives the same records, names past ustar's 100 and 255 bytes included" {
	long=$(printf 'd%.0s' {1..120})/$(printf 'f%.0s' {1..150})
	mkdir -p "src/$(dirname "$long")"
	printf 'long' > "src/$long"
	ln -s "$(printf 't%.0s' {1..130})" src/longlink
	tar --format=pax -C src -cf long.tar PG_VERSION sub sub/file link longlink "$(dirname "$long")" "$long"
	tarsplit -n < long.tar > f1
	tarjoin < f1 > back.tar
	tarsplit -n < back.tar > f2
	# the same records and payloads; only the producer line may differ
	assert_equal "$(sed 1d f2 | sha256sum)" "$(sed 1d f1 | sha256sum)"
	mkdir x
	tar -C x -xf back.tar
	assert_equal "$(cat "x/$long")" long
	assert_equal "$(readlink x/longlink)" "$(printf 't%.0s' {1..130})"
}
