#!/bin/sh
# The install step: everything that the programs, the demo and make check
# need on Debian 12 with Go in /usr/local/go.  Run as root; running it
# again changes nothing that is already there.
#
#	sh dev/install.sh
#
#   - Debian's packages: dev/debian-packages, and npm where the
#     machine's Node.js does not bring it;
#   - the locales of dev/test-needs (a server that answers in German);
#   - Plakar at its pinned version, into build/tools (install-plakar.sh);
#   - the Go modules of the test client t/helpers/grpcclient.
#
# Then it checks that every command of dev/test-needs is found.  make
# check-matrix installs more itself: the servers of other majors, from
# the npm registry (dev/install-servers.sh, into build/servers).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
needs=$top/dev/test-needs

if [ "$(id -u)" != 0 ]; then
	echo "install.sh: run as root: it installs Debian packages and generates locales (sudo sh dev/install.sh)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2046
apt-get install -y -qq --no-install-recommends $(cat "$top/dev/debian-packages") >/dev/null
command -v npm >/dev/null 2>&1 ||
	apt-get install -y -qq --no-install-recommends npm >/dev/null

# localedef names a locale de_DE.utf8 whatever it was asked.
awk '$1 == "locale" { print $2 }' "$needs" | while read -r loc; do
	norm=$(printf '%s\n' "$loc" | sed 's/UTF-8$/utf8/')
	locale -a | grep -qix "$norm" ||
		localedef -i "${loc%%.*}" -f "${loc#*.}" "$loc"
done

PATH=$PATH:/usr/local/go/bin
export PATH
sh "$top/dev/install-plakar.sh" "$top/build/tools"
(cd "$top/t/helpers/grpcclient" && GOFLAGS=-mod=readonly go mod download)

# What the tests ask for by name, found where they look for it.
PATH=$top/build/tools:$(pg_config --bindir):$PATH
missing=$(awk '$1 == "command" { print $2 }' "$needs" | while read -r cmd; do
	command -v "$cmd" >/dev/null 2>&1 || printf ' %s' "$cmd"
done)
if [ -n "$missing" ]; then
	echo "install.sh: still missing after the install:$missing" >&2
	exit 1
fi
echo "install.sh: everything the build and make check need is installed"
