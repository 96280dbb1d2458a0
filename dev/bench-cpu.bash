# CPU of a measured run, for dev/bench.bash: counted from the kernel's
# own counters, for the run's own process tree only, never by name across
# the machine.  Each run gets a cgroup v2 directory of its own: its
# cpu.stat counts every process that ran in it, one that a parent
# SIGKILLed included, and nothing else (not a plakar cached helper of an
# earlier run, not another test).  Within it, each process's own utime
# and stime are sampled from cgroup.procs, for a breakdown by program;
# what ran after a process's last sample shows as "unsampled".  The
# server's processes (its WAL sender, its archiver) are outside the run's
# tree: the server gets a cgroup of its own, read before and after.
# Where no cgroup v2 is writable, the run's process and its descendants
# are sampled (the total is then the sum of the samples, and is said to
# be).
# shellcheck shell=bash

CG_BASE=
CG_SERVER=
cg_runs=0

# cg_init: a directory for this bench below our own cgroup v2, or none.
cg_init() {
	local mnt own
	mnt=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
	own=$(sed -n 's/^0:://p' /proc/self/cgroup)
	[ -n "$mnt" ] || return 0
	CG_BASE=$mnt${own%/}/plakar-pg-bench.$$
	if ! mkdir "$CG_BASE" 2>/dev/null || [ ! -f "$CG_BASE/cpu.stat" ]; then
		rmdir "$CG_BASE" 2>/dev/null
		CG_BASE=
		echo "bench: no writable cgroup v2: CPU is the sum of samples of each run's process tree"
		return 0
	fi
	CG_SERVER=$CG_BASE/server
	mkdir "$CG_SERVER"
}

cg_usage() {
	awk '$1 == "usage_usec" { print $2 }' "$1/cpu.stat"
}

# cg_server_adopt DATA: the postmaster of DATA and its children into the
# server's cgroup; its later children (WAL senders) follow it there.
cg_server_adopt() {
	local pm p
	[ -n "$CG_SERVER" ] || return 0
	pm=$(head -n 1 "$1/postmaster.pid")
	for p in "$pm" $(pgrep -P "$pm"); do
		echo "$p" > "$CG_SERVER/cgroup.procs" 2>/dev/null || true
	done
}

# A process and all its descendants, one pid a line.
descendants() {
	local c
	echo "$1"
	for c in $(pgrep -P "$1"); do
		descendants "$c"
	done
}

# cg_sampler DIR|PID OUT: pid, name, CPU ticks and peak RSS (KiB) of each
# process of the run, every 50 ms, until killed.
cg_sampler() {
	local where=$1 out=$2 p
	set +e
	while :; do
		if [ -n "$CG_BASE" ]; then
			cat "$where/cgroup.procs"
		else
			descendants "$where"
		fi 2>/dev/null | while read -r p; do
			awk -v p="$p" 'FNR == 1 && FILENAME ~ /stat$/ {
				sub(/^[0-9]+ \(/, ""); n = $0; sub(/\).*/, "", n); gsub(/ /, "_", n)
				sub(/^[^)]*\) /, ""); t = $12 + $13 }
				/^VmHWM/ { h = $2 } END { if (n != "") print p, n, t, h + 0 }' \
				"/proc/$p/stat" "/proc/$p/status" 2>/dev/null
		done >> "$out"
		sleep 0.05
	done
}

# measure NAME COMMAND...: runs COMMAND, its wall time into times[NAME]
# (see run), its tree's CPU seconds into cpu_total[NAME], the server's
# into cpu_server[NAME], and "name seconds ..." by program into
# cpu_by[NAME] (from the first run of NAME only), the importer's peak
# RSS in KiB into importer_rss[NAME] (the largest of all runs).  Returns COMMAND's
# status; what the run left running is killed.
declare -A cpu_total cpu_server cpu_by importer_rss
measure() {
	local name=$1 dir samples sampler s0 s1 rc=0 t0 t1 total by
	shift
	cg_runs=$((cg_runs + 1))
	samples=$(mktemp)
	s0=0
	[ -z "$CG_SERVER" ] || s0=$(cg_usage "$CG_SERVER")
	# a subshell, so that COMMAND may be a function of the bench
	if [ -n "$CG_BASE" ]; then
		dir=$CG_BASE/run$cg_runs
		mkdir "$dir"
		t0=$(now)
		( echo "$BASHPID" > "$dir/cgroup.procs"; "$@" ) &
	else
		t0=$(now)
		( "$@" ) &
		dir=$!
	fi
	local child=$!
	cg_sampler "$dir" "$samples" & sampler=$!
	wait "$child" || rc=$?
	t1=$(now)
	kill "$sampler" 2>/dev/null
	wait "$sampler" 2>/dev/null || true
	# shellcheck disable=SC2004 # times: bench.bash's associative array
	times[$name]="${times[$name]:-} $(echo "$t1 - $t0" | bc -l)"
	if [ -n "$CG_BASE" ]; then
		total=$(echo "$(cg_usage "$dir") / 1000000" | bc -l)
		s1=$(cg_usage "$CG_SERVER")
		cpu_server[$name]="${cpu_server[$name]:-} $(echo "($s1 - $s0) / 1000000" | bc -l)"
		echo 1 > "$dir/cgroup.kill"
		for _ in $(seq 50); do
			[ -s "$dir/cgroup.procs" ] || break
			sleep 0.1
		done
		rmdir "$dir" 2>/dev/null || true
	else
		total=$(awk '{ last[$1] = $3 } END { for (p in last) s += last[p]; print s / 100 }' "$samples")
		cpu_server[$name]="${cpu_server[$name]:-} 0"
	fi
	cpu_total[$name]="${cpu_total[$name]:-} $total"
	importer_rss[$name]=$(awk -v r="${importer_rss[$name]:-0}" '
		$2 ~ /^plakar-pg-impor/ && $4 > r { r = $4 } END { print r }' "$samples")
	if [ -z "${cpu_by[$name]:-}" ]; then
		by=$(awk -v total="$total" '{ last[$1] = $3; n[$1] = $2 } END {
			for (p in last) { sum[n[p]] += last[p]; all += last[p] }
			for (k in sum) if (sum[k] >= 5) printf "%s %.1f\n", k, sum[k] / 100
			if (total - all / 100 >= 0.05) printf "unsampled %.1f\n", total - all / 100 }' "$samples" |
			sort -k2 -gr | tr '\n' ' ')
		cpu_by[$name]=$by
	fi
	rm -f "$samples"
	return "$rc"
}

# The median of a measure's CPU seconds, of the tree or of the server.
cpu_median() {
	local -n m=$1
	# shellcheck disable=SC2086
	printf '%s\n' ${m[$2]} | sort -g | awk '{ v[NR] = $1 } END {
		print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

cg_cleanup() {
	local d p
	[ -n "$CG_BASE" ] && [ -d "$CG_BASE" ] || return 0
	# the server's processes go back where they came from
	if [ -d "$CG_SERVER" ]; then
		while read -r p; do
			echo "$p" > "$CG_BASE/../cgroup.procs" 2>/dev/null || true
		done < "$CG_SERVER/cgroup.procs"
	fi
	for d in "$CG_BASE"/*/; do
		[ -d "$d" ] || continue
		[ "${d%/}" = "$CG_SERVER" ] || echo 1 > "$d/cgroup.kill" 2>/dev/null
		rmdir "$d" 2>/dev/null || true
	done
	rmdir "$CG_BASE" 2>/dev/null || true
}
