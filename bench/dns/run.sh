#!/usr/bin/env bash
# bench/dns: cached-answer throughput and latency of airgapd against named,
# unbound, PowerDNS Recursor (pdns) and Knot Resolver (kresd), in one run,
# on loopback.
#
#   bash bench/dns/run.sh [SECONDS [ROUNDS]]    (default 8 s, 3 rounds)
#   AIRGAPD_BEFORE=REV bash bench/dns/run.sh     also measure airgapd built
#                                               from git revision REV
#   AIRGAPD_LISTEN=0.0.0.0 …                     airgapd on the wildcard (the
#                                               path that reads each query's
#                                               destination), queried at 127.0.0.1
#   BENCH_UNPINNED=0 …                           skip the unpinned table
#
# One authoritative named on 127.0.0.1 stands in for the internet. The
# resolvers under test forward to it (forward only) and are warmed with
# every name of the 1000 in the query file, so the measured queries are all
# cache hits. First table, per core: each server on core 0 with one worker
# (named -n 1, unbound num-threads: 1, pdns_recursor threads=1, one kresd,
# airgapd seeing one CPU), dnsperf and the authoritative named on core 1
# (taskset), as ../shared/PEERS.md says. Second table: the same servers
# unpinned, where airgapd uses both cores and the one-worker peers one.
# Rounds rotate the order; the tables show medians, and beside QPS the
# queries answered per CPU second the server used (/proc/PID/stat), which a
# busy shared machine distorts less than QPS. Latency percentiles come
# from a rate-capped run (dnsperf -Q), each query's latency printed (-v).
# Compare only within one run. Not part of `make test`.
set -euo pipefail
secs=${1:-8}
rounds=${2:-3}
qcap=${BENCH_QPS_CAP:-20000}
source "$(dirname "$0")/lib.sh"

build_airgapd
start_auth
servers=(unbound pdns kresd named "${servers_airgapd[@]}")
pinned_server_cpu=("${server_cpu[@]}")
pinned_load_cpu=("${load_cpu[@]}")

# percentiles FILE: p50 p99 p99.9 of the sorted latencies in FILE (ms).
percentiles() {
	awk '{a[NR] = $1} END {if (NR == 0) {print "- - -"; exit}
		printf "%.3f %.3f %.3f\n", a[int((NR + 1) / 2)], a[int((NR * 99 + 99) / 100)], a[int((NR * 999 + 999) / 1000)]}' "$1"
}

# table LABEL: start every server, warm it, run the rounds, print a table.
table() {
	local label=$1 srv r i out key
	key=${label%% *}
	for srv in "${servers[@]}"; do
		start_server "$srv"
		"${bound[@]}" dnsperf -s 127.0.0.1 -p "${port_of[$srv]}" -d "$work/queries.txt" -n 1 >/dev/null
		: >"$work/qps.$key.$srv"; : >"$work/avg.$srv"; : >"$work/cpu.$key.$srv"
	done
	local loads=()
	for ((r = 0; r < rounds; r++)); do
		loads+=("$(load)")
		for ((i = 0; i < ${#servers[@]}; i++)); do
			srv=${servers[$(((i + r) % ${#servers[@]}))]}
			t0=$(cpu_ticks "${pid_of[$srv]}")
			out=$("${bound[@]}" "${load_cpu[@]}" dnsperf -s 127.0.0.1 -p "${port_of[$srv]}" -d "$work/queries.txt" \
				-l "$secs" -c 8 -T 1 -q 256)
			per_cpu_sec "$(awk '/Queries completed:/ {print $3}' <<<"$out")" $(($(cpu_ticks "${pid_of[$srv]}") - t0)) >>"$work/cpu.$key.$srv"
			awk '/Queries per second:/ {print $4}' <<<"$out" >>"$work/qps.$key.$srv"
			awk '/Average Latency/ {printf "%.3f\n", $4*1000}' <<<"$out" >>"$work/avg.$srv"
			echo "$label round $((r + 1)) $srv: $(tail -1 "$work/qps.$key.$srv") q/s, $(tail -1 "$work/cpu.$key.$srv") q per CPU s, lost $(awk '/Queries lost:/ {print $3}' <<<"$out"), load $(load)" >&2
		done
	done
	declare -A qps avg pct cpu
	for srv in "${servers[@]}"; do
		qps[$srv]=$(median <"$work/qps.$key.$srv")
		cpu[$srv]=$(median <"$work/cpu.$key.$srv")
		avg[$srv]=$(median <"$work/avg.$srv")
		"${bound[@]}" "${load_cpu[@]}" dnsperf -s 127.0.0.1 -p "${port_of[$srv]}" -d "$work/queries.txt" -l 3 -Q "$qcap" -v 2>/dev/null |
			awk '$1 == ">" {print $NF * 1000}' | sort -n >"$work/lat.$srv"
		pct[$srv]=$(percentiles "$work/lat.$srv")
		stop_server "$srv"
	done
	local a=${qps[airgapd]} ac=${cpu[airgapd]}
	printf '\n%s, %d rounds of %d s, load average at each round: %s\n\n' "$label" "$rounds" "$secs" "$(IFS=';'; echo "${loads[*]}")"
	printf '| server | cached QPS (median) | rounds | q per CPU s (median) | avg ms (full load) | p50 ms @%d q/s | p99 ms | p99.9 ms | airgapd ÷ server, QPS | per CPU s |\n' "$qcap"
	printf '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n'
	for srv in "${servers[@]}"; do
		read -r p50 p99 p999 <<<"${pct[$srv]}"
		printf '| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$srv" "${qps[$srv]}" \
			"$(awk '{printf "%s%.0fk", (NR > 1 ? " " : ""), $1 / 1000}' "$work/qps.$key.$srv")" \
			"${cpu[$srv]}" "${avg[$srv]}" "$p50" "$p99" "$p999" \
			"$(awk -v a="$a" -v b="${qps[$srv]}" 'BEGIN {printf "%.2f×", a / b}')" \
			"$(awk -v a="$ac" -v b="${cpu[$srv]}" 'BEGIN {printf "%.2f×", a / b}')"
	done
}

echo "# bench/dns/run.sh $secs $rounds — $(date -u '+%F %H:%M UTC'); $(versions)"
table "pinned (server core 0, one worker; dnsperf -c 8 -T 1 -q 256 on core 1)"
if [[ ${BENCH_UNPINNED:-1} != 0 ]]; then
	server_cpu=(); load_cpu=()
	table "unpinned (both cores for every process; airgapd GOMAXPROCS=2, peers one worker)"
	server_cpu=("${pinned_server_cpu[@]}"); load_cpu=("${pinned_load_cpu[@]}")
fi
