# shellcheck shell=bash disable=SC2034
# bench/dns/lib.sh: sourced by run.sh, miss.sh and rss.sh. Starts the
# stand-in authoritative named and the caching forwarders under test, each
# with one worker (../shared/PEERS.md): named -n 1, unbound num-threads: 1,
# pdns_recursor threads=1, one kresd process, airgapd seeing one CPU when
# pinned. Every process is started by this script and stopped by its PID.
# Needs: named, unbound, pdns_recursor, kresd (scripts/install-bench-deps.sh),
# dnsperf, dig, taskset, go.
PATH="$PATH:/usr/sbin:/sbin"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/airgapd-bench-dns.XXXXXX)
pids=()
declare -A pid_of port_of
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	[[ -z ${BENCH_KEEP:-} ]] && rm -rf "$work"
	return 0
}
trap cleanup EXIT

server_cpu=(taskset -c 0)
load_cpu=(taskset -c 1)
if [[ $(nproc) -lt 2 ]] || ! command -v taskset >/dev/null; then
	server_cpu=(); load_cpu=()
	echo "bench/dns: fewer than 2 cores or no taskset: running unpinned" >&2
fi
# Every dnsperf run ends within its -l; this bounds the rest too.
bound=(timeout --kill-after=5 120)

free_port() {
	python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
		shuf -i 20000-60000 -n 1
}
wait_dns() { # name port
	for _ in $(seq 1 150); do
		dig +time=1 +tries=1 @127.0.0.1 -p "$2" ns.bench.test A 2>/dev/null | grep -q "status: NOERROR" && return 0
		sleep 0.1
	done
	echo "$1 on 127.0.0.1:$2 did not come up; its log:" >&2
	tail -20 "$work/$1.log" >&2
	return 1
}
load() { uptime | sed 's/.*load average: //'; }
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
rss_kb() { ps -o rss= -p "$1" | tr -d ' '; }
# cpu_ticks PID: CPU time the process used so far, user + system, all its
# threads, in clock ticks. Queries answered per CPU second is the figure a
# busy shared machine does not distort: a server that gets half a core
# answers half as many queries a second, but not fewer per CPU second.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
clk_tck=$(getconf CLK_TCK)
# per_cpu_sec QUERIES TICKS: queries per CPU second.
per_cpu_sec() { awk -v q="$1" -v t="$2" -v hz="$clk_tck" 'BEGIN {if (t > 0) printf "%.0f\n", q * hz / t; else print 0}'; }

# The zone: 1000 names for the cached runs, and a wildcard under
# miss.bench.test for names nobody asked before.
write_zone() {
	{
		echo '$TTL 86400'
		echo '@ IN SOA ns.bench.test. h.bench.test. 1 3600 600 86400 3600'
		echo '@ IN NS ns.bench.test.'
		echo 'ns IN A 127.0.0.1'
		for i in $(seq 1 1000); do echo "host$i IN A 192.0.2.$((i % 250 + 1))"; done
		echo '*.miss IN A 198.51.100.7'
	} >"$work/bench.test.zone"
	for i in $(seq 1 1000); do echo "host$i.bench.test A"; done >"$work/queries.txt"
}

named_conf() { # dir port extra
	mkdir -p "$1"
	cat >"$1/named.conf" <<X
options { directory "$1"; pid-file "$1/named.pid"; session-keyfile "$1/s.key";
  managed-keys-directory "$1"; listen-on port $2 { 127.0.0.1; }; listen-on-v6 { none; };
  dnssec-validation no; querylog no; $3 };
controls { };
X
}

# start_auth: the authoritative stand-in, on the load generator's core.
start_auth() {
	write_zone
	auth_port=$(free_port)
	named_conf "$work/auth" "$auth_port" "recursion no;"
	echo "zone \"bench.test\" { type primary; file \"$work/bench.test.zone\"; };" >>"$work/auth/named.conf"
	"${load_cpu[@]}" named -f -u root -n 1 -c "$work/auth/named.conf" >"$work/auth.log" 2>&1 &
	pids+=($!)
	wait_dns auth "$auth_port"
}

# start_server NAME [CACHE_ENTRIES]: one forwarder under test, forward only
# to the stand-in, with its cache limit set when given (rss.sh).
start_server() {
	local name=$1 max=${2:-} port dir="$work/$1"
	port=$(free_port)
	mkdir -p "$dir"
	case $name in
	named)
		local extra=""
		# named bounds its cache in bytes only: rss.sh gives it a size.
		[[ -n ${NAMED_MAX_CACHE:-} ]] && extra="max-cache-size $NAMED_MAX_CACHE;"
		named_conf "$dir" "$port" "recursion yes; forward only; forwarders { 127.0.0.1 port $auth_port; }; query-source address 127.0.0.1; allow-query { 127.0.0.1; }; $extra"
		"${server_cpu[@]}" named -f -u root -n 1 -c "$dir/named.conf" >"$work/$name.log" 2>&1 &
		;;
	unbound)
		cat >"$dir/unbound.conf" <<X
server:
  interface: 127.0.0.1@$port
  username: ""
  chroot: ""
  directory: "$dir"
  pidfile: "$dir/unbound.pid"
  do-not-query-localhost: no
  module-config: "iterator"
  local-zone: "test." nodefault
  num-threads: 1
  access-control: 127.0.0.0/8 allow
  ${UNBOUND_EXTRA:-}
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$auth_port
X
		"${server_cpu[@]}" unbound -d -c "$dir/unbound.conf" >"$work/$name.log" 2>&1 &
		;;
	pdns)
		cat >"$dir/recursor.conf" <<X
local-address=127.0.0.1
local-port=$port
threads=1
pdns-distributes-queries=no
forward-zones-recurse=.=127.0.0.1:$auth_port
dont-query=
dnssec=off
socket-dir=$dir
allow-from=127.0.0.0/8
quiet=yes
${max:+max-cache-entries=$max}
${max:+max-packetcache-entries=$max}
X
		"${server_cpu[@]}" pdns_recursor --config-dir="$dir" --daemon=no --write-pid=no >"$work/$name.log" 2>&1 &
		;;
	kresd)
		cat >"$dir/config" <<X
net.listen('127.0.0.1', $port, {kind='dns'})
trust_anchors.remove('.')
policy.add(policy.all(policy.FORWARD('127.0.0.1@$auth_port')))
cache.size = ${KRESD_CACHE_MB:-100} * MB
X
		"${server_cpu[@]}" kresd -n -q -c "$dir/config" "$dir" >"$work/$name.log" 2>&1 </dev/null &
		;;
	airgapd*)
		local bin="$work/$name.bin"
		[[ -x $bin ]] || bin="$work/airgapd.bin"
		cat >"$dir/airgapd.yaml" <<X
data_dir: $dir/data
runtime_dir: $dir/data/run
log: { level: warn }
dns:
  listen: ["${AIRGAPD_LISTEN:-127.0.0.1}:$port"]
  forwarders: ["127.0.0.1:$auth_port"]
  forward: only
  query_log: false
X
		[[ -n $max ]] && printf '  cache: { max_entries: %s }\n' "$max" >>"$dir/airgapd.yaml"
		"${server_cpu[@]}" "$bin" serve --config "$dir/airgapd.yaml" >"$work/$name.log" 2>&1 &
		;;
	*)
		echo "unknown server $name" >&2; return 1 ;;
	esac
	pids+=($!)
	pid_of[$name]=$!
	port_of[$name]=$port
	wait_dns "$name" "$port"
}

stop_server() { # NAME
	local p=${pid_of[$1]}
	kill "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

# build_airgapd: this tree's airgapd, and with AIRGAPD_BEFORE=REV the same
# server from another revision (built in a throwaway worktree; -trimpath
# lets both builds share the build cache), so before
# and after share one run's machine and load. Sets servers_airgapd.
build_airgapd() {
	airgapd_rev=$(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- . 2>/dev/null || echo +dirty)
	(cd "$root" && go build -trimpath -o "$work/airgapd.bin" ./cmd/airgapd)
	servers_airgapd=(airgapd)
	if [[ -n ${AIRGAPD_BEFORE:-} ]]; then
		git -C "$root" worktree add -q --detach "$work/before-src" "$AIRGAPD_BEFORE"
		(cd "$work/before-src" && go build -trimpath -o "$work/airgapd-before.bin" ./cmd/airgapd)
		git -C "$root" worktree remove --force "$work/before-src"
		servers_airgapd+=(airgapd-before)
	fi
}

# versions: one line naming what ran.
versions() {
	printf 'airgapd %s (%s), named %s, unbound %s, pdns_recursor %s, kresd %s, dnsperf %s; %s cores, %s\n' \
		"$airgapd_rev${AIRGAPD_BEFORE:+, airgapd-before $AIRGAPD_BEFORE}" \
		"$(go version | awk '{print $3}')" \
		"$(named -v | awk '{print $2}')" \
		"$(unbound -V 2>/dev/null | awk '/^Version/ {print $2}')" \
		"$(pdns_recursor --version 2>&1 | sed -n 's/.*PowerDNS Recursor \([^ ]*\).*/\1/p' | head -1)" \
		"$(kresd --version | awk '{print $NF}')" \
		"$(dnsperf -h 2>&1 | awk '/^Version/ {print $2}')" \
		"$(nproc)" "$(. /etc/os-release && echo "$PRETTY_NAME"), Linux $(uname -r)"
}
