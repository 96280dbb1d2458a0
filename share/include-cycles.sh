#!/bin/sh
# Imports run one way: a module (foo.c with foo.h) may include another's
# header only if that one, directly or not, does not include it back.
# Prints the loop and exits 1 if there is one.  Run by make lint.
set -eu
cd "$(dirname "$0")/../src"
edges=$(for f in *.c *.h; do
	from=${f%.*}
	sed -n 's/^#include "\([^"]*\)\.h"$/\1/p' "$f" | while read -r to; do
		[ "$to" = "$from" ] || [ ! -f "$to.h" ] || printf '%s %s\n' "$from" "$to"
	done
done)
if ! printf '%s\n' "$edges" | tsort >/dev/null 2>"${TMPDIR:-/tmp}/tsort.$$"; then
	echo "include-cycles: the modules of src/ include each other in a loop:" >&2
	sed 's/^tsort: /  /' "${TMPDIR:-/tmp}/tsort.$$" >&2
	rm -f "${TMPDIR:-/tmp}/tsort.$$"
	exit 1
fi
rm -f "${TMPDIR:-/tmp}/tsort.$$"
