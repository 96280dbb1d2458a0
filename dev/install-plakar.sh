#!/bin/sh
# Installs the Plakar that plakar-pg is tested with into DIR, from the Go
# module proxy: dev/plakar/go.mod pins its version and, with go.sum,
# every module it is built from.  Does nothing if DIR already has that
# version.
#
#	install-plakar.sh DIR
#
# The pinned version is v1.1.4: the proxy here serves neither v1.1.0 nor
# v1.1.1 nor v1.1.2, and v1.1.3 fails the checksum database.  One module
# that Plakar's web UI uses (go.omarpolo.com/ttlmap) is on a host the
# proxy does not serve: dev/plakar/ttlmap stands in for it (a map whose
# entries expire), through a replace directive.  Nothing a backup or a
# restore runs touches it.
set -eu
[ $# -eq 1 ] || { echo "usage: install-plakar.sh DIR" >&2; exit 1; }
mkdir -p "$1"
dir=$(cd "$1" && pwd)
mod=$(cd "$(dirname "$0")/plakar" && pwd)
PATH=$PATH:/usr/local/go/bin
export PATH
command -v go >/dev/null 2>&1 || {
	echo "install-plakar.sh: go is not installed (https://go.dev/dl, or /usr/local/go)" >&2
	exit 1
}
version=$(awk '$1 == "github.com/PlakarKorp/plakar" { print $2 }' "$mod/go.mod")
if [ -x "$dir/plakar" ] &&
	go version -m "$dir/plakar" 2>/dev/null | grep -q "dep[[:space:]]*github.com/PlakarKorp/plakar[[:space:]]*$version\|mod[[:space:]]*github.com/PlakarKorp/plakar[[:space:]]*$version"; then
	exit 0
fi
echo "install-plakar.sh: building Plakar $version into $dir (a few minutes the first time)" >&2
cd "$mod"
CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly GOBIN=$dir go install tool
[ -x "$dir/plakar" ] || {
	echo "install-plakar.sh: no plakar in $dir after go install" >&2
	exit 1
}
