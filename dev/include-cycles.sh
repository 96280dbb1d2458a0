#!/bin/sh
# Imports run one way: the library (lib/) includes only its own headers,
# and a module (foo.c with foo.h, in lib/ or a program's directory) may
# include another's header only if that one, directly or not, does not
# include it back.  Prints what is wrong and exits 1.  Run by make lint.
set -eu
cd "$(dirname "$0")/.."
tmp=${TMPDIR:-/tmp}/include-cycles.$$
trap 'rm -f "$tmp"' EXIT
status=0
for f in lib/*.c lib/*.h; do
	sed -n 's/^#include "\([^"]*\)"$/\1/p' "$f" | while read -r h; do
		case $h in
		*.inc) ;;
		*) [ -f "lib/$h" ] || echo "include-cycles: $f includes $h, which is not the library's" ;;
		esac
	done
done >"$tmp"
if [ -s "$tmp" ]; then
	cat "$tmp" >&2
	status=1
fi
edges=$(for f in */*.c */*.h; do
	case $f in t/* | build/* | bin/*) continue ;; esac
	from=${f##*/}
	from=${from%.*}
	sed -n 's/^#include "\([^"]*\)\.h"$/\1/p' "$f" | while read -r to; do
		[ "$to" = "$from" ] || printf '%s %s\n' "$from" "$to"
	done
done)
if ! printf '%s\n' "$edges" | tsort >/dev/null 2>"$tmp"; then
	echo "include-cycles: modules include each other in a loop:" >&2
	sed 's/^tsort: /  /' "$tmp" >&2
	status=1
fi
exit "$status"
