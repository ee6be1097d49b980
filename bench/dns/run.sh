#!/usr/bin/env bash
# bench/dns: cached-answer throughput and latency of airgapd against BIND
# (named as a caching forwarder) and unbound, in the same run, on loopback.
#
#   bash bench/dns/run.sh [SECONDS [ROUNDS]]    (default 8 s, 3 rounds)
#   AIRGAPD_BEFORE=REV bash bench/dns/run.sh     also measure airgapd built
#                                               from git revision REV
#   AIRGAPD_LISTEN=0.0.0.0 …                     airgapd on the wildcard (the
#                                               path that reads each query's
#                                               destination), queried at 127.0.0.1
#
# One authoritative named on 127.0.0.1 stands in for the internet. The three
# resolvers under test forward to it, all with `forward only`, and are warmed
# with every name in the query file, so the measured queries are all cache
# hits. Each server under test runs on core 0 with one worker (named -n 1,
# unbound num-threads: 1, airgapd sees one CPU), dnsperf and the
# authoritative named on core 1 (taskset), as ../shared/PEERS.md says; rounds
# rotate the order and the table shows medians. Compare only within one run.
# Prints a Markdown table with QPS, latency percentiles and ratios against
# named. Needs: named, unbound, dnsperf, taskset, go. Not part of `make test`.
set -euo pipefail
secs=${1:-8}
rounds=${2:-3}
server_cpu=(taskset -c 0)
load_cpu=(taskset -c 1)
if [[ $(nproc) -lt 2 ]] || ! command -v taskset >/dev/null; then
	server_cpu=(); load_cpu=()
	echo "bench/dns: fewer than 2 cores or no taskset: running unpinned" >&2
fi
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
"${load_cpu[@]}" named -f -u root -n 1 -c "$work/auth/named.conf" >"$work/auth.log" 2>&1 & pids+=($!)

named_conf "$work/named" "$named_port" "recursion yes; forward only; forwarders { 127.0.0.1 port $auth_port; }; query-source address 127.0.0.1; allow-query { 127.0.0.1; };"
"${server_cpu[@]}" named -f -u root -n 1 -c "$work/named/named.conf" >"$work/named.log" 2>&1 & pids+=($!)

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
"${server_cpu[@]}" unbound -d -c "$work/unbound.conf" >"$work/unbound.log" 2>&1 & pids+=($!)

servers=(named unbound airgapd)
start_airgapd() { # name binary port
	cat >"$work/$1.yaml" <<X
data_dir: $work/$1.data
runtime_dir: $work/$1.data/run
log: { level: warn }
dns:
  listen: ["${AIRGAPD_LISTEN:-127.0.0.1}:$3"]
  forwarders: ["127.0.0.1:$auth_port"]
  forward: only
  query_log: false
X
	"${server_cpu[@]}" "$2" serve --config "$work/$1.yaml" >"$work/$1.log" 2>&1 & pids+=($!)
}
(cd "$root" && go build -o "$work/airgapd" ./cmd/airgapd)
start_airgapd airgapd "$work/airgapd" "$airgapd_port"
if [[ -n ${AIRGAPD_BEFORE:-} ]]; then
	# The same binary from another revision, built from a throwaway
	# worktree, so "before" and "after" share this run's machine and load.
	git -C "$root" worktree add -q --detach "$work/before-src" "$AIRGAPD_BEFORE"
	(cd "$work/before-src" && go build -o "$work/airgapd-before" ./cmd/airgapd)
	git -C "$root" worktree remove --force "$work/before-src"
	airgapd_before_port=$(free_port)
	start_airgapd airgapd-before "$work/airgapd-before" "$airgapd_before_port"
	servers+=(airgapd-before)
fi

wait_dns 127.0.0.1 "$auth_port"; wait_dns 127.0.0.1 "$named_port"
wait_dns 127.0.0.1 "$unbound_port"; wait_dns 127.0.0.1 "$airgapd_port"
[[ -z ${AIRGAPD_BEFORE:-} ]] || wait_dns 127.0.0.1 "$airgapd_before_port"

port_of() { local v="${1//-/_}_port"; echo "${!v}"; }
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
declare -A qps p50 p99 avg
for srv in "${servers[@]}"; do
	# Warm the cache with every name.
	dnsperf -s 127.0.0.1 -p "$(port_of "$srv")" -d "$work/queries.txt" -n 1 >/dev/null
done
for ((r = 0; r < rounds; r++)); do
	# Rotate the order, so no server always goes first or last.
	for ((i = 0; i < ${#servers[@]}; i++)); do
		srv=${servers[$(( (i + r) % ${#servers[@]} ))]}
		out=$("${load_cpu[@]}" dnsperf -s 127.0.0.1 -p "$(port_of "$srv")" -d "$work/queries.txt" -l "$secs" -c 8 -T 1 -q 256)
		awk '/Queries per second:/ {print $4}' <<<"$out" >>"$work/qps.$srv"
		awk '/Average Latency/ {printf "%.3f\n", $4*1000}' <<<"$out" >>"$work/avg.$srv"
		echo "round $((r + 1)) $srv: $(tail -1 "$work/qps.$srv") q/s, lost $(awk '/Queries lost:/ {print $3}' <<<"$out")" >&2
	done
done
for srv in "${servers[@]}"; do
	qps[$srv]=$(median <"$work/qps.$srv")
	avg[$srv]=$(median <"$work/avg.$srv")
	# Percentiles from a rate-capped run, each query's latency printed (-v).
	"${load_cpu[@]}" dnsperf -s 127.0.0.1 -p "$(port_of "$srv")" -d "$work/queries.txt" -l 3 -Q 20000 -v 2>/dev/null |
		awk '$1 == ">" {print $NF * 1000}' | sort -n >"$work/lat.$srv"
	n=$(wc -l <"$work/lat.$srv")
	p50[$srv]=$(sed -n "$(( (n + 1) / 2 ))p" "$work/lat.$srv")
	p99[$srv]=$(sed -n "$(( (n * 99 + 99) / 100 ))p" "$work/lat.$srv")
done

printf '\n| server | cached QPS (median of %d) | avg ms (full load) | p50 ms (20k q/s) | p99 ms (20k q/s) | QPS vs named |\n' "$rounds"
printf '|---|---:|---:|---:|---:|---:|\n'
for srv in "${servers[@]}"; do
	ratio=$(awk -v a="${qps[$srv]}" -v b="${qps[named]}" 'BEGIN {printf "%.2f", a / b}')
	printf '| %s | %.0f | %s | %.3f | %.3f | %s |\n' "$srv" "${qps[$srv]}" "${avg[$srv]}" "${p50[$srv]}" "${p99[$srv]}" "$ratio"
done
