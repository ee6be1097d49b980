#!/usr/bin/env bash
# bench/dns/rss.sh: memory at load. Each server (airgapd, unbound, named;
# pdns and kresd too with RSS_SERVERS) is sent NAMES distinct names under
# the stand-in's wildcard (every one a miss, then cached), one server at a
# time, pinned as run.sh pins them; then its resident set size is read.
#
#   bash bench/dns/rss.sh [NAMES]     (default 1000000)
#   RSS_SERVERS="airgapd unbound named pdns kresd" …
#
# Cache limits, set so that every name fits in each server: airgapd
# cache.max_entries NAMES+10 %, pdns max-cache-entries the same; unbound
# msg-cache-size and rrset-cache-size and named max-cache-size are bytes,
# set to RSS_CACHE_BYTES (default 2g) each, kresd cache.size to the same in
# MB. So the limit is "all of them", and the table shows what holding them
# costs. An idle server's RSS and the names that were answered are shown
# beside it. Not part of `make test`.
set -euo pipefail
names=${1:-1000000}
bytes=${RSS_CACHE_BYTES:-2g}
read -r -a servers <<<"${RSS_SERVERS:-airgapd unbound named}"
source "$(dirname "$0")/lib.sh"

build_airgapd
start_auth
awk -v n="$names" 'BEGIN {for (i = 0; i < n; i++) printf "n%d.miss.bench.test A\n", i}' >"$work/names.txt"
max=$((names + names / 10))
mb=$(numfmt --from=iec "${bytes^^}" | awk '{print int($1 / 1048576)}')
UNBOUND_EXTRA="msg-cache-size: $bytes
  rrset-cache-size: $bytes"
NAMED_MAX_CACHE=$bytes
KRESD_CACHE_MB=$mb
declare -A idle full ok took
for srv in "${servers[@]}"; do
	start_server "$srv" "$max"
	idle[$srv]=$(rss_kb "${pid_of[$srv]}")
	t0=$(date +%s)
	out=$(timeout --kill-after=5 1800 "${load_cpu[@]}" dnsperf -s 127.0.0.1 -p "${port_of[$srv]}" -d "$work/names.txt" -n 1 -c 8 -T 1 -q 500 -t 5)
	took[$srv]=$(($(date +%s) - t0))
	ok[$srv]=$(awk '/Queries completed:/ {print $3}' <<<"$out")
	full[$srv]=$(rss_kb "${pid_of[$srv]}")
	echo "$srv: ${ok[$srv]} answered in ${took[$srv]} s, RSS $((full[$srv] / 1024)) MB, load $(load)" >&2
	stop_server "$srv"
done

echo "# bench/dns/rss.sh $names — $(date -u '+%F %H:%M UTC'); $(versions)"
printf '\nRSS after %d distinct names, each server alone, pinned (core 0); cache limits: airgapd/pdns %d entries, unbound msg+rrset %s each, named %s, kresd %d MB\n\n' \
	"$names" "$max" "$bytes" "$bytes" "$mb"
printf '| server | names answered | seconds | RSS idle, MB | RSS after, MB | bytes per name | airgapd ÷ server |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
for srv in "${servers[@]}"; do
	printf '| %s | %s | %s | %.0f | %.0f | %.0f | %s |\n' "$srv" "${ok[$srv]}" "${took[$srv]}" \
		"$(awk -v k="${idle[$srv]}" 'BEGIN {print k / 1024}')" "$(awk -v k="${full[$srv]}" 'BEGIN {print k / 1024}')" \
		"$(awk -v a="${full[$srv]}" -v b="${idle[$srv]}" -v n="${ok[$srv]}" 'BEGIN {print (a - b) * 1024 / n}')" \
		"$(awk -v a="${full[airgapd]:-0}" -v b="${full[$srv]}" 'BEGIN {printf "%.2f×", a / b}')"
done
