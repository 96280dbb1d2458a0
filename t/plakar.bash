# Plakar in tests: the pinned build (share/install-plakar.sh, into
# build/tools by make check), its own XDG directories per test, and the
# plakar cached helper it starts stopped by the test that caused it.
# shellcheck shell=bash

PLAKAR_TOOLS=${PLAKAR_TOOLS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/tools}
PATH=$PLAKAR_TOOLS:$PATH
export PATH PLAKAR_TOOLS

# plakar_env DIR: Plakar's configuration, cache and data under DIR, its
# update check off (it would go to the network).
plakar_env() {
	local dir=$1
	command -v plakar >/dev/null || {
		echo "plakar is not installed: make tools" >&2
		return 1
	}
	export XDG_CONFIG_HOME=$dir/config XDG_CACHE_HOME=$dir/cache XDG_DATA_HOME=$dir/data
	mkdir -p "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_DATA_HOME"
	plakar -disable-security-check >/dev/null
}

# The package of this build, made once into DIR: sets PTAR.
plakar_package() {
	local dir=$1
	make -s -C "$BATS_TEST_DIRNAME/.." package PKGDIR="$dir/pkg" \
		OUT="$PLAKAR_PG_BIN" >/dev/null
	version=$(sed -n 's/^VERSION = //p' "$BATS_TEST_DIRNAME/../Makefile")
	(cd "$dir" && plakar pkg create "$dir/pkg/manifest.yaml" "v$version" >/dev/null)
	PTAR=$dir/postgresql-bin_v${version}_linux_amd64.ptar
	export PTAR
	[ -f "$PTAR" ]
}

# Stop the plakar cached of this test's cache directory, by its pid.
plakar_stop() {
	local pid
	[ -n "${XDG_CACHE_HOME:-}" ] || return 0
	for pid in $(pgrep -f -- "-cachedir $XDG_CACHE_HOME/plakar cached"); do
		kill "$pid" 2>/dev/null || true
	done
}
