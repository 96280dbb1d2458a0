#!/bin/sh
# PostgreSQL server binaries of other majors than Debian's, from the npm
# registry, at the versions and integrity hashes of dev/servers'
# package-lock.json, into DIR (default build/servers): DIR/NN/bin holds
# initdb, pg_ctl and postgres of major NN, DIR/NN/lib their libraries.
# The packages' postinstall, which recreates the library symlinks, is not
# run (npm may skip it anyway): the symlinks are made here from its list.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$top/build/servers}

command -v npm >/dev/null 2>&1 || {
	echo "install-servers: npm is needed (Debian: apt-get install npm)" >&2
	exit 1
}
mkdir -p "$dest"
cp "$top/dev/servers/package.json" "$top/dev/servers/package-lock.json" "$dest/"
(cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
for pkg in "$dest"/node_modules/pg*; do
	major=${pkg##*/pg}
	native=$pkg/native
	jq -r '.[] | "\(.source)\t\(.target)"' "$native/pg-symlinks.json" |
	while IFS="	" read -r source target; do
		ln -sf "$(basename "$source")" "$pkg/$target"
	done
	rm -f "$dest/$major"
	ln -s "node_modules/pg$major/native" "$dest/$major"
	# The cluster owner must be able to run them from anywhere.
	chmod -R a+rX "$native"
	"$dest/$major/bin/postgres" --version >/dev/null 2>&1 ||
		LD_LIBRARY_PATH=$dest/$major/lib "$dest/$major/bin/postgres" --version >/dev/null
done
majors=''
for link in "$dest"/[0-9]*; do
	majors="$majors ${link##*/}"
done
echo "install-servers:$majors in $dest"
