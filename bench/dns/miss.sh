#!/usr/bin/env bash
# bench/dns/miss.sh: cache misses. Every query is a name nobody asked
# before, under a wildcard (*.miss.bench.test) at the one authoritative
# named that stands in for the internet, so each one is forwarded: the path
# a cold cache, a cluster start or a node pulling many new names takes.
#
#   bash bench/dns/miss.sh [SECONDS [ROUNDS]]   (default 8 s, 3 rounds)
#   AIRGAPD_BEFORE=REV …                         also airgapd from git REV
#
# Each server on core 0 with one worker, dnsperf and the authoritative named
# on core 1 (as run.sh); a fresh name list for every server and round, so
# nothing is ever cached; rounds rotate the order; medians. p50/p99 come
# from further rate-capped runs (dnsperf -Q, fresh names again), one per
# server and round, that every server keeps up with, so they are
# latencies, not queueing; the medians of the rounds' percentiles. Prints a
# Markdown table with the ratios airgapd ÷ server. Not part of `make test`.
set -euo pipefail
secs=${1:-8}
rounds=${2:-3}
qcap=${BENCH_QPS_CAP:-5000}
source "$(dirname "$0")/lib.sh"

build_airgapd
start_auth
servers=(unbound pdns kresd named "${servers_airgapd[@]}")
for srv in "${servers[@]}"; do start_server "$srv"; done

# names TAG COUNT: a fresh query file of COUNT names no server has seen.
names() {
	awk -v t="$1" -v n="$2" 'BEGIN {for (i = 0; i < n; i++) printf "m%d-%s.miss.bench.test A\n", i, t}' >"$work/miss.txt"
}
# Enough names that no run comes to the end of its list (past 60k q/s).
count=$((secs * 60000))
loads=()
for ((r = 0; r < rounds; r++)); do
	loads+=("$(load)")
	for ((i = 0; i < ${#servers[@]}; i++)); do
		srv=${servers[$(((i + r) % ${#servers[@]}))]}
		names "r$r-$srv-$RANDOM" "$count"
		t0=$(cpu_ticks "${pid_of[$srv]}")
		out=$("${bound[@]}" "${load_cpu[@]}" dnsperf -s 127.0.0.1 -p "${port_of[$srv]}" -d "$work/miss.txt" -n 1 \
			-l "$secs" -c 8 -T 1 -q 256 -t 2)
		per_cpu_sec "$(awk '/Queries completed:/ {print $3}' <<<"$out")" $(($(cpu_ticks "${pid_of[$srv]}") - t0)) >>"$work/cpu.$srv"
		awk '/Queries per second:/ {print $4}' <<<"$out" >>"$work/qps.$srv"
		awk '/Average Latency/ {printf "%.3f\n", $4*1000}' <<<"$out" >>"$work/avg.$srv"
		awk '/Queries lost:/ {print $3}' <<<"$out" >>"$work/lost.$srv"
		echo "round $((r + 1)) $srv: $(tail -1 "$work/qps.$srv") q/s, $(tail -1 "$work/cpu.$srv") q per CPU s, lost $(tail -1 "$work/lost.$srv"), load $(load)" >&2
	done
done
declare -A qps avg lost p50 p99 rss cpu
for srv in "${servers[@]}"; do
	qps[$srv]=$(median <"$work/qps.$srv")
	cpu[$srv]=$(median <"$work/cpu.$srv")
	avg[$srv]=$(median <"$work/avg.$srv")
	lost[$srv]=$(median <"$work/lost.$srv")
done
# Latencies: a capped run per server and round, in rotating order like the
# full load, so one slow moment of the shared authoritative server moves
# one round's tail, not one server's; medians of the rounds' p50 and p99.
for ((r = 0; r < rounds; r++)); do
	for ((i = 0; i < ${#servers[@]}; i++)); do
		srv=${servers[$(((i + r) % ${#servers[@]}))]}
		names "lat-r$r-$srv-$RANDOM" $((qcap * 3))
		"${bound[@]}" "${load_cpu[@]}" dnsperf -s 127.0.0.1 -p "${port_of[$srv]}" -d "$work/miss.txt" -n 1 -l 3 -Q "$qcap" -t 2 -v 2>/dev/null |
			awk '$1 == ">" {print $NF * 1000}' | sort -n >"$work/lat.$srv"
		awk '{a[NR] = $1} END {printf "%.3f %.3f\n", a[int((NR + 1) / 2)], a[int((NR * 99 + 99) / 100)]}' "$work/lat.$srv" >>"$work/pct.$srv"
		echo "latency round $((r + 1)) $srv: p50 p99 ms $(tail -1 "$work/pct.$srv")" >&2
	done
done
for srv in "${servers[@]}"; do
	p50[$srv]=$(awk '{print $1}' "$work/pct.$srv" | median)
	p99[$srv]=$(awk '{print $2}' "$work/pct.$srv" | median)
	rss[$srv]=$(rss_kb "${pid_of[$srv]}")
done

echo "# bench/dns/miss.sh $secs $rounds — $(date -u '+%F %H:%M UTC'); $(versions)"
printf '\ncache misses, pinned (server core 0, one worker; dnsperf -c 8 -T 1 -q 256 on core 1), %d rounds of %d s, load average at each round: %s\n\n' \
	"$rounds" "$secs" "$(IFS=';'; echo "${loads[*]}")"
printf '| server | miss QPS (median) | rounds | q per CPU s | lost (median) | avg ms (full load) | p50 ms @%d q/s | p99 ms | RSS after, MB | airgapd ÷ server, QPS | per CPU s |\n' "$qcap"
printf '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for srv in "${servers[@]}"; do
	printf '| %s | %.0f | %s | %s | %s | %s | %s | %s | %.0f | %s | %s |\n' "$srv" "${qps[$srv]}" \
		"$(awk '{printf "%s%.1fk", (NR > 1 ? " " : ""), $1 / 1000}' "$work/qps.$srv")" "${cpu[$srv]}" \
		"${lost[$srv]}" "${avg[$srv]}" "${p50[$srv]}" "${p99[$srv]}" "$(awk -v k="${rss[$srv]}" 'BEGIN {print k / 1024}')" \
		"$(awk -v a="${qps[airgapd]}" -v b="${qps[$srv]}" 'BEGIN {printf "%.2f×", a / b}')" \
		"$(awk -v a="${cpu[airgapd]}" -v b="${cpu[$srv]}" 'BEGIN {printf "%.2f×", a / b}')"
done
