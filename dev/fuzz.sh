#!/bin/sh
# The fuzz runner: each target of build/fuzz SECONDS long on a copy of
# its corpus (t/fuzz/seeds/TARGET), under ASan+UBSan, with memory limits
# so that runaway memory is a finding.  One line per target; exit 1 if
# any found something.  Run by make fuzz.
#
#	sh dev/fuzz.sh SECONDS target ...
set -eu
cd "$(dirname "$0")/.."
seconds=$1
shift
status=0
for f; do
	rm -rf "build/fuzz/corpus-$f"
	mkdir -p "build/fuzz/corpus-$f"
	cp "t/fuzz/seeds/$f"/* "build/fuzz/corpus-$f/"
	rss=384
	# the longest input of each, in bytes
	case $f in
	uriparse) len=512 ;;
	frame | pgdata) len=4096 ;;
	# tarsplit's inputs are large: its memory is held by a law of its
	# own (the heap within 4 x input + 16 MiB), not by the process's
	# RSS, which ASan's quarantine and libFuzzer's corpus fill
	tarsplit) len=8388608 rss=1024 ;;
	*) len=65536 ;;
	esac
	ASAN_OPTIONS=quarantine_size_mb=16 "build/fuzz/$f" \
		-max_total_time="$seconds" -max_len="$len" \
		-rss_limit_mb="$rss" -malloc_limit_mb=128 -timeout=10 \
		"build/fuzz/corpus-$f" >"build/fuzz/$f.log" 2>&1 || status=1
	printf 'fuzz %s: %s\n' "$f" "$(grep -E '^(Done|==[0-9]+==ERROR|SUMMARY)' "build/fuzz/$f.log" | tr '\n' ' ')"
done
exit "$status"
