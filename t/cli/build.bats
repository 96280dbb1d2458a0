#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# The build: make install lays out programs and man pages; every program
# answers --version and --help in the house style.

setup() {
	load ../helpers/common
}

@test "make install PREFIX DESTDIR: programs and man pages" {
	# make install builds first: in the sanitizer run it would relink
	[[ $PLAKAR_PG_BIN != */build/asan/bin ]] || skip "tested in the normal build"
	run -0 make -s -C "$BATS_TEST_DIRNAME/../.." install OUT="$PLAKAR_PG_BIN" \
		DESTDIR="$BATS_TEST_TMPDIR/root" PREFIX=/usr
	cd "$BATS_TEST_TMPDIR/root"
	run -0 find . -type f
	for f in bin/basetar bin/pgprobe bin/pgmeta bin/plakar-pg bin/pgrelocate bin/plakar-pg-importer bin/tarjoin \
		bin/tarsplit bin/uriparse bin/runpipe share/man/man1/plakar-pg.1 share/man/man1/runpipe.1 \
		share/man/man1/tarsplit.1 share/man/man1/basetar.1 share/man/man1/pgprobe.1 share/man/man5/frames.5 share/man/man7/plakar-pg.7; do
		assert_line "./usr/$f"
	done
	[ -x usr/bin/tarsplit ] && [ -x usr/bin/plakar-pg ] && [ -x usr/bin/pgrelocate ]
	# no test program is installed, and no program links libarchive
	[ ! -e usr/bin/lib_test ] && [ ! -e usr/bin/importer_test ] && [ ! -e usr/bin/grpc_echo ]
	run -0 readelf -d usr/bin/tarsplit usr/bin/tarjoin usr/bin/basetar
	refute_output --partial libarchive
}

@test "--version and --help on stdout with exit 0, a usage error on stderr with exit 1" {
	version=$(sed -n 's/^VERSION = //p' "$BATS_TEST_DIRNAME/../../Makefile")
	for p in tarsplit tarjoin uriparse pgmeta basetar pgprobe runpipe pgrelocate plakar-pg plakar-pg-importer; do
		run -0 --separate-stderr "$p" --version
		assert_output "$p (plakar-pg) $version"
		run -0 --separate-stderr "$p" --help
		assert_line --partial "sage:"
		assert_equal "$stderr" ""
		run -1 --separate-stderr "$p" --no-such-option </dev/null
		assert_output ""
		[[ $stderr == *sage:* || $stderr == *"invalid option"* || $stderr == *"unrecognized option"* ]] ||
			fail "$p: $stderr"
	done
}

@test "every program is hardened: PIE, full RELRO, stack protector, fortified" {
	[[ $PLAKAR_PG_BIN != */build/asan/bin ]] || skip "the sanitizer build is not fortified"
	for p in tarsplit tarjoin uriparse pgmeta basetar pgprobe runpipe pgrelocate plakar-pg-importer; do
		run -0 readelf -h "$PLAKAR_PG_BIN/$p"
		assert_line --regexp 'Type: +DYN'
		run -0 readelf -d "$PLAKAR_PG_BIN/$p"
		assert_line --partial 'BIND_NOW'
		run -0 readelf -l "$PLAKAR_PG_BIN/$p"
		assert_line --partial 'GNU_RELRO'
		run -0 nm -D "$PLAKAR_PG_BIN/$p"
		assert_line --partial '__stack_chk_fail'
		assert_line --regexp '__[a-z]+_chk'
	done
}
