#!/usr/bin/env bash
# bench/ntp/run.sh — airgapd's NTP responder against chronyd 4.x, in the same
# run, on loopback (not part of `make test`). Run as root from the repository
# root:  bash bench/ntp/run.sh [DURATION] [ROUNDS] [QRUNS]
#   DURATION  full load per server and round (default 5s; ntpload caps it at 60s)
#   ROUNDS    rotating rounds, pinned and unpinned each (default 4); medians
#   QRUNS     chronyd -Q runs per server for offsets and delays (default 5)
#   CLIENTS=32 RATE=20000   clients; total request rate of the capped run
#   AIRGAPD_BEFORE=REV   also measure airgapd built from git revision REV
#   AIRGAPD_LISTEN=0.0.0.0   airgapd on the wildcard (each request's destination
#                        read, the reply sent from it), queried at 127.0.0.1
#   UNPINNED=0           skip the unpinned two-core table
# Pinned (the first table): every server on core 0 with one worker (chronyd
# is one thread; airgapd runs with GOMAXPROCS=1), ntpload and chronyd -Q on
# core 1. Unpinned: the same servers started again with both cores each
# (airgapd then reads with one goroutine per core). Both serve `local
# stratum 10` on 127.0.0.1 with no rate limit (chronyd: no `ratelimit`,
# `clientloglimit` large; airgapd: ratelimit off). Each round starts with
# the next server, so none always runs first. Every step is bounded in time.
# Prints markdown tables ready for docs/BENCHMARKS.md.
set -euo pipefail
DUR=${1:-5s}
ROUNDS=${2:-4}
QRUNS=${3:-5}
CLIENTS=${CLIENTS:-32}
RATE=${RATE:-20000}
W=$(mktemp -d /tmp/airgapd-bench-ntp.XXXXXX)
chmod 700 "$W"
PIDS=()
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; PIDS=(); }
cleanup() { stop_all; rm -rf "$W"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

go build -o "$W/airgapd" ./cmd/airgapd
go build -o "$W/ntpload" ./bench/ntp
BINS=("airgapd $W/airgapd")
if [ -n "${AIRGAPD_BEFORE:-}" ]; then
  # The same server from another revision, so before and after share this
  # run's machine and load.
  git worktree add -q --detach "$W/before-src" "$AIRGAPD_BEFORE"
  (cd "$W/before-src" && go build -o "$W/airgapd-before" ./cmd/airgapd)
  git worktree remove --force "$W/before-src"
  BINS+=("airgapd-before $W/airgapd-before")
fi
LOAD=(timeout 90)
Q=(timeout 30)

start_chronyd() { # pin-prefix… ; sets SERVERS
  local d="$W/chrony.$1"; shift
  local port; port=$(free_port)
  mkdir -m 700 "$d"
  cat > "$d/chrony.conf" <<X
port $port
bindaddress 127.0.0.1
local stratum 10
allow 127.0.0.0/8
clientloglimit 100000000
cmdport 0
bindcmdaddress $d/chronyd.sock
pidfile $d/chronyd.pid
driftfile $d/drift
logdir $d
X
  "$@" chronyd -x -d -u root -f "$d/chrony.conf" >"$d/log" 2>&1 & PIDS+=($!)
  SERVERS+=("chronyd $port")
}
start_airgapd() { # name binary tag pin-prefix… ; sets SERVERS
  local name=$1 bin=$2 tag=$3; shift 3
  local port; port=$(free_port)
  cat > "$W/$name.$tag.yaml" <<X
data_dir: $W/$name.$tag.data
runtime_dir: $W/$name.$tag.run
log: { level: warn }
ntp:
  listen: [${AIRGAPD_LISTEN:-127.0.0.1}:$port]
  allow: [127.0.0.0/8]
  local_stratum: 10
  ratelimit: { enabled: false }
X
  "$@" "$bin" serve --config "$W/$name.$tag.yaml" >"$W/$name.$tag.log" 2>&1 & PIDS+=($!)
  SERVERS+=("$name $port")
}
ready() { # each server answers one query (bounded)
  for sp in "${SERVERS[@]}"; do
    local port=${sp#* } i
    for i in $(seq 50); do
      "${LOAD[@]}" "$W/ntpload" -addr 127.0.0.1:$port -clients 1 -window 1 -duration 100ms | grep -qv 'responses/s 0	' && break
      [ "$i" = 50 ] && { echo "server on port $port does not answer" >&2; exit 1; }
    done
  done
}
# rounds TAG LOADPIN… : full load in rotating order, one result line each
rounds() {
  local tag=$1; shift
  local n=${#SERVERS[@]} r k
  for r in $(seq "$ROUNDS"); do
    for k in $(seq 0 $((n - 1))); do
      local sp=${SERVERS[$(((r - 1 + k) % n))]}
      "${LOAD[@]}" "$@" "$W/ntpload" -addr "127.0.0.1:${sp#* }" -clients "$CLIENTS" -duration "$DUR" -label "${sp% *}" >> "$W/$tag.full"
    done
  done
}
capped() { # TAG LOADPIN…
  local tag=$1; shift
  for sp in "${SERVERS[@]}"; do
    "${LOAD[@]}" "$@" "$W/ntpload" -addr "127.0.0.1:${sp#* }" -clients "$CLIENTS" -rate "$RATE" -duration "$DUR" -label "${sp% *}" >> "$W/$tag.capped"
  done
}
qruns() { # LOADPIN… : chronyd -Q offsets and the delays it measured
  local sp i
  for i in $(seq "$QRUNS"); do
    for sp in "${SERVERS[@]}"; do
      local d="$W/q.${sp#* }.$i"; mkdir -p -m 700 "$d"
      printf 'server 127.0.0.1 port %s iburst maxsamples 8\nport 0\ncmdport 0\npidfile %s/pid\nlogdir %s\nlog measurements\n' "${sp#* }" "$d" "$d" > "$d/c.conf"
      local off
      off=$("${Q[@]}" "$@" chronyd -Q -u root -t 20 -f "$d/c.conf" 2>&1 | sed -n 's/.*System clock wrong by \([-+0-9.e]*\) seconds.*/\1/p')
      # Delays: the "Peer del." column of each measurement.
      echo "${sp% *} ${off:-nan} $(awk '$3 ~ /^127/ {printf "%s ", $13}' "$d/measurements.log" 2>/dev/null)" >> "$W/q"
    done
  done
}

echo "# bench/ntp: commit $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty'), $(date -u +%FT%TZ), $(nproc) cores, $(uname -r), $(go version | cut -d' ' -f3), $(chronyd --version | cut -d' ' -f1-4)"
echo "# load: $CLIENTS clients x window 4, $DUR per server per round, $ROUNDS rotating rounds; capped run $RATE req/s; uptime at start: $(uptime | sed 's/.*load average/load average/')"

SERVERS=()
start_chronyd pinned taskset -c 0
for b in "${BINS[@]}"; do start_airgapd "${b% *}" "${b#* }" pinned env GOMAXPROCS=1 taskset -c 0; done
[ -n "${VARIANT_ENV:-}" ] && start_airgapd airgapd-variant "$W/airgapd" pinned env GOMAXPROCS=1 $VARIANT_ENV taskset -c 0
ready
rounds pinned taskset -c 1
capped pinned taskset -c 1
qruns taskset -c 1
PINNED_LOAD=$(uptime | sed 's/.*load average: //')
stop_all

if [ "${UNPINNED:-1}" != 0 ]; then
  SERVERS=()
  start_chronyd unpinned
  for b in "${BINS[@]}"; do start_airgapd "${b% *}" "${b#* }" unpinned; done
  ready
  rounds unpinned
  UNPINNED_LOAD=$(uptime | sed 's/.*load average: //')
  stop_all
fi

python3 - "$W" "$ROUNDS" "$RATE" "$PINNED_LOAD" "${UNPINNED_LOAD:-}" <<'PY'
import sys, os, re, statistics as st
w, rounds, rate, pload, uload = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def parse(path):
    rows = {}
    if not os.path.exists(path):
        return rows
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        d = {"rps": float(f[1].split()[1]), "lost": int(f[3].split()[1])}
        m = re.search(r"rtt p50 ([\d.]+)us p99 ([\d.]+)us p999 ([\d.]+)us\trx->tx p50 ([\d.]+)us p99 ([\d.]+)us", line)
        d["lat"] = [float(x) for x in m.groups()]
        rows.setdefault(f[0], []).append(d)
    return rows
def full(tag, title, load, cores):
    rows = parse(os.path.join(w, tag + ".full"))
    if not rows:
        return
    base = st.median(r["rps"] for r in rows["chronyd"])
    print(f"\n{title} (uptime load at the end: {load})\n")
    print("| server | " + " | ".join(f"round {i+1}" for i in range(rounds)) + " | median responses/s | per core | vs chronyd | rx→tx p50 / p99 µs (full load) |")
    print("|---|" + "---:|" * (rounds + 4))
    for name, rs in rows.items():
        med = st.median(r["rps"] for r in rs)
        p50 = st.median(r["lat"][3] for r in rs); p99 = st.median(r["lat"][4] for r in rs)
        print(f"| {name} | " + " | ".join(f"{r['rps']:.0f}" for r in rs) + f" | {med:.0f} | {(f'{med/cores:.0f}' if cores else '–')} | **{med/base:.2f}×** | {p50:.0f} / {p99:.0f} |")
full("pinned", "Pinned: server on core 0 with one worker, ntpload on core 1", pload, 1)
rows = parse(os.path.join(w, "pinned.capped"))
if rows:
    print(f"\nPinned, capped at {rate} requests/s (round trip seen by the client; rx→tx inside the server):\n")
    print("| server | responses/s | lost | rtt p50 µs | rtt p99 µs | rtt p99.9 µs | rx→tx p50 µs | rx→tx p99 µs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, rs in rows.items():
        r = rs[0]; l = r["lat"]
        print(f"| {name} | {r['rps']:.0f} | {r['lost']} | {l[0]:.1f} | {l[1]:.1f} | {l[2]:.1f} | {l[3]:.1f} | {l[4]:.1f} |")
q = {}
if os.path.exists(os.path.join(w, "q")):
    for line in open(os.path.join(w, "q")):
        f = line.split()
        o, dl = q.setdefault(f[0], ([], []))
        if f[1] != "nan":
            o.append(float(f[1]))
        dl.extend(float(x) for x in f[2:])
if q:
    print("\nchronyd -Q (`server 127.0.0.1 port P iburst maxsamples 8`, on core 1) against each pinned server, idle:\n")
    print("| server | runs | offset mean µs | stddev µs | max \\|offset\\| µs | measured delay median µs | delay max µs |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (o, dl) in q.items():
        if not o:
            print(f"| {name} | 0 | – | – | – | – | – |"); continue
        sd = st.stdev(o) * 1e6 if len(o) > 1 else 0
        dm = f"{st.median(dl)*1e6:.1f}" if dl else "–"; dx = f"{max(dl)*1e6:.1f}" if dl else "–"
        print(f"| {name} | {len(o)} | {st.mean(o)*1e6:+.1f} | {sd:.1f} | {max(abs(x) for x in o)*1e6:.1f} | {dm} | {dx} |")
full("unpinned", "Unpinned: servers and ntpload share both cores (airgapd may use both, chronyd one)", uload, 0)
PY
