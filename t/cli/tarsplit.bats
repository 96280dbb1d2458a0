#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# tarsplit on tar streams made here: the frame format, bad input, and
# constant memory.  No server needed.

setup() {
	load ../helpers/common
	cd "$BATS_TEST_TMPDIR"
	mkdir -p src/sub
	printf '15\n' > src/PG_VERSION
	: > src/empty
	printf 'hello' > src/sub/file
	chmod 640 src/sub/file
	touch -d @1700000000 src/sub/file
	tar --format=ustar -b 1 --no-recursion -C src -cf simple.tar PG_VERSION empty sub sub/file
}

@test "frames: begin, one record per member, end with counts" {
	run -0 sh -c 'tarsplit -n < simple.tar > frames'
	headers frames > h
	run -0 jq -c "{type,path,size}" h
	assert_line -n 0 '{"type":"begin","path":null,"size":null}'
	assert_line -n 1 '{"type":"file","path":"/data/PG_VERSION","size":3}'
	assert_line -n 2 '{"type":"file","path":"/data/empty","size":0}'
	assert_line -n 3 '{"type":"dir","path":"/data/sub","size":null}'
	assert_line -n 4 '{"type":"file","path":"/data/sub/file","size":5}'
	assert_line -n 5 '{"type":"end","path":null,"size":null}'
	run -0 last_frame frames
	assert_output '{"type":"end","records":4,"bytes":8}'
	run -0 jq -c 'select(.type=="begin")' < <(head -n 1 frames)
	assert_output '{"type":"begin","version":1,"producer":"plakar-pg tarsplit 0.1.0"}'
}

@test "frames: a header carries mode, mtime and owner; the payload follows it" {
	tarsplit -n < simple.tar > frames
	run -0 sh -c 'grep -a "/data/sub/file" frames | jq -c "{mode,mtime}"'
	assert_output '{"mode":416,"mtime":1700000000}'
	run -0 sh -c 'grep -a -A1 "/data/PG_VERSION" frames | tail -n 1'
	assert_output '15'
	# the exact bytes: header line, 5 payload bytes, next header
	run -0 sh -c 'grep -a -A1 "/data/sub/file" frames | tail -n 1 | cut -c1-6'
	assert_output 'hello{'
}

@test "-t lists the record headers only" {
	run -0 sh -c 'tarsplit -n -t < simple.tar | jq -r .path'
	assert_output $'/data/PG_VERSION\n/data/empty\n/data/sub\n/data/sub/file'
}

@test "-m sends a file first as /manifest.json" {
	printf '{"version":2}\n' > meta.json
	tarsplit -n -m meta.json < simple.tar > frames
	run -0 sed -n 2p frames
	assert_output --partial '"path":"/manifest.json","size":14'
	run -0 sed -n 3p frames
	assert_output '{"version":2}'
	run -0 last_frame frames
	assert_output '{"type":"end","records":5,"bytes":22}'
}

@test "a name that is not UTF-8 goes out as path_hex; 99 bytes pass" {
	long=$(printf 'n%.0s' $(seq 99))
	printf 'x' > "src/$long"
	printf 'y' > "src/caf$(printf '\351')"
	tar --format=ustar -C src -cf names.tar "$long" "caf$(printf '\351')"
	run -0 sh -c 'tarsplit -n -t < names.tar | jq -r ".path // .path_hex"'
	assert_line -n 0 "/data/$long"
	assert_line -n 1 "$(printf '/data/caf\351' | od -An -tx1 | tr -d ' \n')"
}

@test "empty input: one line, non-zero, no frame at all" {
	run -3 --separate-stderr sh -c 'tarsplit < /dev/null'
	assert_equal "$stderr" "tarsplit: empty input: no tar stream"
	assert_output ''
}

@test "garbage: not a tar stream" {
	head -c 4096 /dev/urandom > garbage
	run -3 --separate-stderr sh -c 'tarsplit -F 3 < garbage 3>st'
	assert_equal "$stderr" "tarsplit: not a tar stream: a damaged tar header (its checksum does not match)"
	assert_equal "$(first_failure st)" "tarsplit stream-broken 3"
}

@test "a damaged header checksum is refused" {
	cp simple.tar damaged.tar
	# the second header (after PG_VERSION's header and data block)
	printf 'Z' | dd of=damaged.tar bs=1 seek=$((1024 + 150)) conv=notrunc 2>/dev/null
	run -3 --separate-stderr sh -c 'tarsplit -n < damaged.tar > frames'
	assert_equal "$stderr" "tarsplit: a damaged tar header (its checksum does not match)"
	assert_equal "$(last_type frames)" error
}

@test "a stream cut anywhere never ends with an end frame" {
	size=$(stat -c %s simple.tar)
	for cut in 0 1 100 511 512 513 1000 1024 1536 2047 2048 2560 3071 3072 $((size - 1024)) $((size - 513)) $((size - 1)); do
		head -c "$cut" simple.tar > cut.tar
		run tarsplit -n < cut.tar
		[ "$status" -ne 0 ] || fail "cut at $cut accepted"
		tarsplit -n < cut.tar > frames 2>/dev/null || true
		[ "$(last_type frames)" != end ] || fail "cut at $cut ended with an end frame"
	done
	# the whole stream still passes
	tarsplit -n < simple.tar > frames
	assert_equal "$(last_type frames)" end
}

@test "a header or padding cut short: an error frame where the header was due" {
	head -c 2600 simple.tar > cut.tar
	run -3 --separate-stderr sh -c 'tarsplit -n < cut.tar > frames'
	assert_equal "$stderr" "tarsplit: truncated tar stream: the member's padding is cut short"
	run -0 last_frame frames
	assert_output '{"type":"error","message":"truncated tar stream: the member'"'"'s padding is cut short","path":"/data/sub/file"}'
	# inside the header of sub/file, after sub's
	head -c 2100 simple.tar > cut.tar
	run -3 --separate-stderr sh -c 'tarsplit -n < cut.tar > frames'
	assert_equal "$stderr" "tarsplit: truncated tar stream: a header cut short"
	run -0 last_frame frames
	assert_output '{"type":"error","message":"truncated tar stream: a header cut short"}'
}

# A tar of one member that claims SIZE bytes (base-256), then 1536 bytes.
claiming_tar() {
	python3 - "$1" <<-'PY'
		import sys
		h = bytearray(512)
		h[0:8] = b"base/1/1"
		h[100:108] = b"0000600\0"
		h[108:116] = h[116:124] = b"0000000\0"
		h[124] = 0x80
		h[125:136] = int(sys.argv[1]).to_bytes(11, "big")
		h[136:148] = b"00000000000\0"
		h[156] = ord("0")
		h[257:265] = b"ustar\x0000"
		h[148:156] = b" " * 8
		h[148:156] = b"%06o\0 " % sum(h)
		sys.stdout.buffer.write(bytes(h) + b"x" * 1536)
	PY
}

@test "a tiny input never makes a huge output: a member of 2^62 bytes cut short, a sparse member of 1 TiB" {
	claiming_tar $((1 << 62)) > huge.tar
	run -3 --separate-stderr sh -c 'timeout 10 tarsplit -n < huge.tar > frames'
	[ "$(stat -c %s frames)" -lt 4096 ] || fail "$(stat -c %s frames) bytes out of 2048 in"
	# cut inside the payload: no padding, no error frame, the payload short
	run -0 last_frame frames
	assert_output '{"type":"TRUNCATED"}'
	run -1 --separate-stderr tarjoin -C out < frames
	[[ $stderr == "tarjoin: "* ]] || fail "$stderr"
	truncate -s 1T sparse
	printf 'x' | dd of=sparse bs=1 seek=4096 conv=notrunc 2>/dev/null
	tar --sparse --format=pax -cf sparse.tar sparse
	[ "$(stat -c %s sparse.tar)" -lt 65536 ]
	run -3 --separate-stderr sh -c 'timeout 10 tarsplit -n < sparse.tar > frames'
	assert_equal "$stderr" "tarsplit: a sparse member: not a stream of pg_basebackup"
	[ "$(stat -c %s frames)" -lt 4096 ]
}

@test "members named ../x or /etc/x are refused, never passed on" {
	printf 'x' > x
	tar --format=ustar -cf dotdot.tar --transform 's,^x,../x,' x
	run -3 --separate-stderr sh -c 'tarsplit -n < dotdot.tar > frames'
	assert_equal "$stderr" "tarsplit: unsafe member name: ../x"
	run -0 sh -c 'grep -c "\.\./x" frames'
	assert_output 1	# only inside the error message
	assert_equal "$(last_type frames)" error
	tar --format=ustar -cf abs.tar -P --transform 's,^x,/etc/x,' x
	run -3 --separate-stderr sh -c 'tarsplit -n < abs.tar > frames'
	assert_equal "$stderr" "tarsplit: unsafe member name: /etc/x"
	tar --format=ustar -cf mid.tar --transform 's,^x,a/../../x,' x
	run -3 --separate-stderr sh -c 'tarsplit -n < mid.tar'
	assert_equal "$stderr" "tarsplit: unsafe member name: a/../../x"
}

@test "a reader that goes away: SIGPIPE, quiet" {
	head -c $((4 << 20)) /dev/zero > big
	tar --format=ustar -cf big.tar big
	run --separate-stderr bash -c 'tarsplit -n < big.tar | head -c 10 > /dev/null; echo "${PIPESTATUS[0]}"'
	assert_output 141
	assert_equal "$stderr" ""
}

@test "bad usage" {
	run -1 --separate-stderr tarsplit -x
	[[ $stderr == *"usage: tarsplit [-ntw] [-a algorithm] [-e file] [-F fd] [-f time] [-m file] [-r mode]" ]] || fail "$stderr"
	run -1 --separate-stderr tarsplit -a MD5
	assert_equal "$stderr" "tarsplit: unknown checksum algorithm: MD5"
}

@test "a member over 8 GiB (base-256 size) streams in constant memory" {
	size=$(((8 << 30) + 12345))
	# tail -c: the payload has no newline for tail -n to stop at
	run -0 bash -c "$TARTOOL big $size | /usr/bin/time -f %M -o rss tarsplit -n | tail -c 100 | tr -d '\\0'"
	assert_output "{\"type\":\"end\",\"records\":1,\"bytes\":$size}"
	rss=$(cat rss)
	echo "peak RSS ${rss} KiB" >&3
	[ "$rss" -lt $((16 * 1024)) ] || fail "peak RSS $rss KiB"
}
