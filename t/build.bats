#!/usr/bin/env bats
bats_require_minimum_version 1.5.0
# The build: make install lays out programs and man pages; every program
# answers --version and --help in the house style.

setup() {
	load common
}

@test "make install PREFIX DESTDIR: programs and man pages" {
	# make install builds first: in the sanitizer run it would relink
	[[ $PLAKAR_PG_BIN != */build/asan/bin ]] || skip "tested in the normal build"
	run -0 make -s -C "$BATS_TEST_DIRNAME/.." install OUT="$PLAKAR_PG_BIN" \
		DESTDIR="$BATS_TEST_TMPDIR/root" PREFIX=/usr
	cd "$BATS_TEST_TMPDIR/root"
	run -0 find . -type f
	for f in bin/pgmeta bin/plakar-pg bin/plakar-pg-importer bin/tarjoin \
		bin/tarsplit bin/uriparse share/man/man1/plakar-pg.1 \
		share/man/man1/tarsplit.1 share/man/man5/frames.5 share/man/man7/plakar-pg.7; do
		assert_line "./usr/$f"
	done
	[ -x usr/bin/tarsplit ] && [ -x usr/bin/plakar-pg ]
}

@test "--version and --help" {
	for p in tarsplit tarjoin uriparse pgmeta; do
		run -0 "$p" --version
		assert_output "$p (plakar-pg) 0.1.0"
		run -0 "$p" --help
		assert_line --partial "Usage:"
	done
	run -0 plakar-pg-importer --version
	assert_output "plakar-pg-importer (plakar-pg) 0.1.0"
}
