#!/usr/bin/env bash
# bench/dns: cached-answer throughput and latency of airgapd against BIND
# (named as a caching forwarder) and unbound, in the same run, on loopback.
#
#   bash bench/dns/run.sh [SECONDS]      (default 10 s per server)
#
# One authoritative named on 127.0.0.1 stands in for the internet. The three
# resolvers under test forward to it, all with `forward only`, and are warmed
# with every name in the query file, so the measured queries are all cache
# hits. dnsperf shares the 2 cores with the server under test: compare only
# within one run. Prints a Markdown table with QPS, latency percentiles and
# ratios against named. Needs: named, unbound, dnsperf, go. Not part of
# `make test`.
set -euo pipefail
secs=${1:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/airgapd-bench-dns.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
PATH="$PATH:/usr/sbin:/sbin"

free_port() { python3 - <<'PY' 2>/dev/null || shuf -i 20000-60000 -n 1
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}
wait_dns() { # addr port
	for _ in $(seq 1 100); do
		dig +time=1 +tries=1 @"$1" -p "$2" version.bind TXT CH >/dev/null 2>&1 && return 0
		dig +time=1 +tries=1 @"$1" -p "$2" www.bench.test A 2>/dev/null | grep -q "status:" && return 0
		sleep 0.1
	done
	echo "server on $1:$2 did not come up" >&2; return 1
}

auth_port=$(free_port); named_port=$(free_port); unbound_port=$(free_port); airgapd_port=$(free_port)

# The zone: 1000 names, one query file line each.
{
	echo '$TTL 86400'
	echo '@ IN SOA ns.bench.test. h.bench.test. 1 3600 600 86400 60'
	echo '@ IN NS ns.bench.test.'
	echo 'ns IN A 127.0.0.1'
	for i in $(seq 1 1000); do echo "host$i IN A 192.0.2.$((i % 250 + 1))"; done
} >"$work/bench.test.zone"
for i in $(seq 1 1000); do echo "host$i.bench.test A"; done >"$work/queries.txt"

named_conf() { # dir port extra
	mkdir -p "$1"
	cat >"$1/named.conf" <<X
options { directory "$1"; pid-file "$1/named.pid"; session-keyfile "$1/s.key";
  managed-keys-directory "$1"; listen-on port $2 { 127.0.0.1; }; listen-on-v6 { none; };
  dnssec-validation no; querylog no; $3 };
controls { };
X
}
named_conf "$work/auth" "$auth_port" "recursion no;"
echo "zone \"bench.test\" { type primary; file \"$work/bench.test.zone\"; };" >>"$work/auth/named.conf"
named -f -u root -c "$work/auth/named.conf" >"$work/auth.log" 2>&1 & pids+=($!)

named_conf "$work/named" "$named_port" "recursion yes; forward only; forwarders { 127.0.0.1 port $auth_port; }; query-source address 127.0.0.1; allow-query { 127.0.0.1; };"
named -f -u root -c "$work/named/named.conf" >"$work/named.log" 2>&1 & pids+=($!)

cat >"$work/unbound.conf" <<X
server:
  interface: 127.0.0.1@$unbound_port
  username: ""
  chroot: ""
  directory: "$work"
  pidfile: "$work/unbound.pid"
  do-not-query-localhost: no
  module-config: "iterator"
  local-zone: "test." nodefault
  num-threads: 1
  access-control: 127.0.0.0/8 allow
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$auth_port
X
unbound -d -c "$work/unbound.conf" >"$work/unbound.log" 2>&1 & pids+=($!)

(cd "$root" && go build -o "$work/airgapd" ./cmd/airgapd)
cat >"$work/airgapd.yaml" <<X
data_dir: $work/ag
runtime_dir: $work/ag/run
log: { level: warn }
dns:
  listen: ["127.0.0.1:$airgapd_port"]
  forwarders: ["127.0.0.1:$auth_port"]
  forward: only
  query_log: false
X
"$work/airgapd" serve --config "$work/airgapd.yaml" >"$work/airgapd.log" 2>&1 & pids+=($!)

wait_dns 127.0.0.1 "$auth_port"; wait_dns 127.0.0.1 "$named_port"
wait_dns 127.0.0.1 "$unbound_port"; wait_dns 127.0.0.1 "$airgapd_port"

declare -A qps p50 p99 avg
for srv in named unbound airgapd; do
	port_var="${srv}_port"; port=${!port_var}
	# Warm the cache with every name, then measure.
	dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries.txt" -n 1 >/dev/null
	out=$(dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries.txt" -l "$secs" -c 4 -T 2)
	qps[$srv]=$(awk '/Queries per second:/ {print $4}' <<<"$out")
	avg[$srv]=$(awk '/Average Latency/ {printf "%.3f", $4*1000}' <<<"$out")
	lost=$(awk '/Queries lost:/ {print $3}' <<<"$out")
	# Percentiles from a rate-capped run, each query's latency printed (-v).
	dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries.txt" -l 3 -Q 20000 -v 2>/dev/null |
		awk '$1 == ">" {print $NF * 1000}' | sort -n >"$work/lat.$srv"
	n=$(wc -l <"$work/lat.$srv")
	p50[$srv]=$(sed -n "$(( (n + 1) / 2 ))p" "$work/lat.$srv")
	p99[$srv]=$(sed -n "$(( (n * 99 + 99) / 100 ))p" "$work/lat.$srv")
	echo "$srv: ${qps[$srv]} q/s, lost $lost" >&2
done

printf '\n| server | cached QPS | avg ms (full load) | p50 ms (20k q/s) | p99 ms (20k q/s) | QPS vs named |\n'
printf '|---|---:|---:|---:|---:|---:|\n'
for srv in named unbound airgapd; do
	ratio=$(awk -v a="${qps[$srv]}" -v b="${qps[named]}" 'BEGIN {printf "%.2f", a / b}')
	printf '| %s | %.0f | %s | %.3f | %.3f | %s |\n' "$srv" "${qps[$srv]}" "${avg[$srv]}" "${p50[$srv]}" "${p99[$srv]}" "$ratio"
done
