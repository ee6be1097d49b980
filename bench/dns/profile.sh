#!/usr/bin/env bash
# bench/dns/profile.sh: where airgapd's time goes under load, pinned as in
# run.sh (airgapd on core 0, dnsperf and the stand-in named on core 1):
# `perf record` of the airgapd process during a cached run and during a
# cache-miss run, then the top of `perf report` for each (own time per
# symbol, kernel included).
#
#   bash bench/dns/profile.sh [SECONDS]    (default 5 s each)
#   AIRGAPD_BEFORE=REV …                   profile airgapd from git REV instead
#   PROFILE_OUT=DIR …                      keep the perf.data files there (NAME.perf,
#                                          for perf report --children and the like)
#
# Needs perf (Debian linux-perf) besides run.sh's tools.
set -euo pipefail
secs=${1:-5}
source "$(dirname "$0")/lib.sh"
build_airgapd
srv=${servers_airgapd[-1]}
start_auth
start_server "$srv"
port=${port_of[$srv]}
dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries.txt" -n 1 >/dev/null

profile() { # NAME QUERYFILE [dnsperf flags]
	local name=$1 file=$2
	shift 2
	"${load_cpu[@]}" timeout 60 dnsperf -s 127.0.0.1 -p "$port" -d "$file" -l $((secs + 2)) -c 8 -T 1 -q 256 "$@" >"$work/$name.dnsperf" &
	local lp=$!
	sleep 1
	timeout 60 perf record -q -g -o "$work/$name.perf" -p "${pid_of[$srv]}" -- sleep "$secs" 2>/dev/null
	wait "$lp"
	[[ -n ${PROFILE_OUT:-} ]] && cp "$work/$name.perf" "$PROFILE_OUT/"
	echo "## $name: $(awk '/Queries per second:/ {print $4}' "$work/$name.dnsperf") q/s under perf; load $(load)"
	perf report -q -i "$work/$name.perf" --no-children -g none --sort symbol --percent-limit 0.8 2>/dev/null | grep -v "^$" | head -45
	echo
}
profile cached "$work/queries.txt"
awk 'BEGIN {for (i = 0; i < 1500000; i++) printf "p%d.miss.bench.test A\n", i}' >"$work/miss.txt"
profile miss "$work/miss.txt" -n 1 -t 2
